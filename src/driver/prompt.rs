//! The root model's system prompt, built from `prompts/` and the run.

use std::fmt::Write;

use crate::dsl::{HostFunctions, Limits};
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
}

/// Renders `template`, replacing each `{{name}}` with its value.
pub fn render(template: &str, v: &PromptValues<'_>) -> String {
    let depth_note = if v.depth + 1 >= v.max_depth {
        "This session is at the recursion limit: here `rlm_query` falls back to a single `llm_query`.".to_string()
    } else {
        format!("This session is at depth {} of {}.", v.depth, v.max_depth)
    };
    let values: [(&str, String); 9] = [
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
