//! The root model's system prompt, built from `prompts/` and the run.

use std::fmt::Write;

use crate::dsl::{HostFunctions, Limits};
use crate::schema::AnswerSchema;
use crate::stats::{estimate_tokens, human_bytes};
use crate::Text;

/// The system prompt template, compiled into the binary.
pub const SYSTEM_TEMPLATE: &str = include_str!("../../prompts/system.md");
/// The DSL quick reference, compiled into the binary; kept in sync with the
/// registered functions by the test suite.
pub const QUICK_REFERENCE: &str = include_str!("../../prompts/quick_reference.md");

/// Characters of the context shown as a preview.
const PREVIEW_CHARS: usize = 600;
/// Documents listed by name.
const LISTED_DOCUMENTS: usize = 10;

/// The values a template is rendered with.
pub struct PromptValues<'a> {
    pub context: &'a Text,
    pub limits: &'a Limits,
    pub max_iterations: usize,
    pub sub_context_tokens: usize,
    pub concurrency: usize,
    pub depth: usize,
    pub max_depth: usize,
    /// The embedder's host functions, listed after the quick reference.
    pub functions: &'a HostFunctions,
    /// The schema `submit` must match, and how many refusals end the run
    /// (top run only).
    pub answer_schema: Option<(&'a AnswerSchema, usize)>,
}

/// Renders `template`, replacing each `{{name}}` with its value.
pub fn render(template: &str, v: &PromptValues<'_>) -> String {
    let depth_note = if v.depth + 1 >= v.max_depth {
        "This session is at the recursion limit: here `rlm_query` falls back to a single `llm_query`.".to_string()
    } else {
        format!("This session is at depth {} of {}.", v.depth, v.max_depth)
    };
    let values: [(&str, String); 10] = [
        ("answer_schema", answer_schema_rule(v.answer_schema)),
        ("context_summary", context_summary(v.context)),
        ("quick_reference", quick_reference(v.functions)),
        ("max_iterations", v.max_iterations.to_string()),
        ("sub_context_tokens", v.sub_context_tokens.to_string()),
        ("concurrency", v.concurrency.to_string()),
        ("output_chars", v.limits.output_chars.to_string()),
        (
            "cell_timeout_s",
            format!("{:.0}", v.limits.cell_timeout.as_secs_f64()),
        ),
        ("max_operations", v.limits.max_operations.to_string()),
        ("depth_note", depth_note),
    ];
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), &value);
    }
    out
}

/// The rule a schema adds to "How a turn works", or nothing.
fn answer_schema_rule(schema: Option<(&AnswerSchema, usize)>) -> String {
    let Some((schema, tries)) = schema else {
        return String::new();
    };
    format!(
        "- The answer must be a value (a map, array, number or string, not JSON text) matching this JSON Schema:\n  ```json\n  {}\n  ```\n  `submit` checks it. A value that does not match is refused with each error's path (`$.items[2].name: ...`) and the run goes on so you can fix it; after {tries} refused submits the run ends as failed.\n",
        schema.compact()
    )
}

/// The quick reference, with a section for the host functions if there are any.
fn quick_reference(functions: &HostFunctions) -> String {
    let mut s = QUICK_REFERENCE.trim().to_string();
    if let Some(section) = functions.quick_reference() {
        s.push_str("\n\n");
        s.push_str(section.trim_end());
    }
    s
}

/// Size, shape and a preview of the context, for the model.
pub fn context_summary(t: &Text) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "- size: {} bytes ({}), about {} tokens",
        t.len(),
        human_bytes(t.len()),
        estimate_tokens(t.len())
    );
    let _ = writeln!(s, "- lines: {}", t.line_count());
    let docs = t.documents();
    if docs.len() > 1 {
        let _ = writeln!(s, "- documents: {} (also in `documents`, each with `.name`); each starts with a header line `==> name <==`", docs.len());
        for d in docs.iter().take(LISTED_DOCUMENTS) {
            let _ = writeln!(s, "  - {} ({})", d.name(), human_bytes(d.len()));
        }
        if docs.len() > LISTED_DOCUMENTS {
            let _ = writeln!(s, "  - ... and {} more", docs.len() - LISTED_DOCUMENTS);
        }
    } else {
        let _ = writeln!(s, "- documents: 1");
    }
    let head = t.head(PREVIEW_CHARS * 4).to_string();
    let preview: String = head.chars().take(PREVIEW_CHARS).collect();
    let _ = writeln!(
        s,
        "- first {} characters:\n```text\n{}\n```",
        preview.chars().count(),
        preview
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(schema: Option<(&AnswerSchema, usize)>) -> String {
        let context = crate::Context::from_string("doc", "alpha\nbeta\n").text();
        render(
            SYSTEM_TEMPLATE,
            &PromptValues {
                context: &context,
                limits: &Limits::default(),
                max_iterations: 30,
                sub_context_tokens: 100_000,
                concurrency: 8,
                depth: 0,
                max_depth: 2,
                functions: &HostFunctions::default(),
                answer_schema: schema,
            },
        )
    }

    #[test]
    fn every_placeholder_of_the_built_in_prompt_is_filled() {
        let schema = AnswerSchema::from_json(serde_json::json!({"type": "integer"})).unwrap();
        for prompt in [rendered(None), rendered(Some((&schema, 3)))] {
            assert!(!prompt.contains("{{"), "an unfilled placeholder:\n{prompt}");
        }
    }

    #[test]
    fn the_schema_rule_appears_only_with_a_schema() {
        let schema = AnswerSchema::from_json(serde_json::json!({"type": "integer"})).unwrap();
        let with = rendered(Some((&schema, 4)));
        assert!(
            with.contains("matching this JSON Schema:\n  ```json\n  {\"type\":\"integer\"}\n  ```"),
            "{with}"
        );
        assert!(with.contains("after 4 refused submits"), "{with}");
        let without = rendered(None);
        assert!(!without.contains("JSON Schema"), "{without}");
        // The rule sits in "How a turn works", right after submit's own.
        let submit_rule = without.find("Nothing after `submit` runs.\n").unwrap();
        assert!(
            without[submit_rule..].starts_with("Nothing after `submit` runs.\n\n## The context")
        );
    }
}
