//! Structured sub-calls: answers that are JSON, checked against a schema.
//!
//! A [`ChatRequest`] with a [`ResponseFormat`] asks its model for JSON, in
//! the way its provider documents:
//!
//! * **OpenAI and Azure OpenAI**: `response_format`. A schema is sent as
//!   `{"type": "json_schema", "json_schema": {"name": "answer", "schema":
//!   S, "strict": B}}`; any JSON as `{"type": "json_object"}`, with a system
//!   line that says JSON (OpenAI refuses `json_object` when no message
//!   mentions JSON). `strict` is `true` only when S keeps strict mode's
//!   rules ([`strict_compatible`]): every object lists all its properties
//!   in `required` and sets `additionalProperties: false`, and none uses a
//!   keyword strict mode lacks. Otherwise `strict: false`, and the answer
//!   is checked here instead of by the provider.
//! * **Anthropic**: forced tool use. One tool, `answer`, whose
//!   `input_schema` is S, and `tool_choice: {"type": "tool", "name":
//!   "answer"}`; the answer is the `input` of the `tool_use` block. Any JSON
//!   (`json: true`) is the input schema `{"type": "object"}`: a tool's input
//!   is always an object, so on Anthropic `json: true` gives an object.
//! * Both providers want an object at the top: a schema whose root is not
//!   `"type": "object"` (an array, a string) is sent wrapped as the one
//!   property `value` of an object, and the answer unwrapped again
//!   ([`wire_schema`], [`unwrap_answer`]).
//! * **OpenAI-compatible servers without `response_format`** (one that
//!   answers 400 naming `response_format`, or a model whose table in
//!   `rlm.toml` says `structured_output = "prompt"`) get the request
//!   instead as a system instruction with the schema ([`instruction`]).
//!
//! Whatever the mechanism, [`complete_structured`] then finds the JSON in
//! the text (bare, in a fenced block, or in prose: [`extract_json`]),
//! checks it against the schema, and when either fails makes one repair
//! call that shows the model its answer and what is wrong with it. A repair
//! is a real call: the ledger counts it and budgets apply to it. When the
//! repaired answer fails too, the result is a [`StructuredFailure`] with
//! the reason and the model's last text.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use super::client::{CallOptions, LlmClient};
use super::model::ModelSpec;
use super::wire::{ChatRequest, Message};
use crate::schema::AnswerSchema;

/// The name of the OpenAI schema and of the Anthropic tool.
pub const ANSWER_NAME: &str = "answer";

/// The property a schema whose root is not an object is wrapped in.
pub const WRAPPED_KEY: &str = "value";

/// Candidate starts of embedded JSON tried in one text; the rest of a long
/// text full of braces is not searched.
const MAX_CANDIDATES: usize = 64;

/// What shape of answer a request asks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Any JSON (OpenAI's JSON mode; an object on Anthropic).
    Json,
    /// JSON that matches this JSON Schema.
    Schema(Value),
}

/// How a request's [`ResponseFormat`] reaches the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StructuredOutput {
    /// The provider's own mechanism (`response_format`, forced tool use).
    #[default]
    Native,
    /// A system instruction, for servers that lack the mechanism.
    Prompt,
}

impl StructuredOutput {
    /// Both modes, as `structured_output` in `rlm.toml` spells them.
    pub const NAMES: [&'static str; 2] = ["native", "prompt"];

    /// The mode `name` spells, if any.
    pub fn from_name(name: &str) -> Option<StructuredOutput> {
        match name {
            "native" => Some(StructuredOutput::Native),
            "prompt" => Some(StructuredOutput::Prompt),
            _ => None,
        }
    }
}

/// The schema sent to a provider for `format`, and whether it wraps the
/// caller's schema in an object (see the module docs).
pub fn wire_schema(format: &ResponseFormat) -> (Value, bool) {
    match format {
        ResponseFormat::Json => (json!({"type": "object"}), false),
        ResponseFormat::Schema(schema) if is_object_schema(schema) => (schema.clone(), false),
        ResponseFormat::Schema(schema) => (
            json!({
                "type": "object",
                "properties": {WRAPPED_KEY: schema},
                "required": [WRAPPED_KEY],
                "additionalProperties": false,
            }),
            true,
        ),
    }
}

fn is_object_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
}

/// OpenAI's `response_format` for `format`.
pub fn openai_response_format(format: &ResponseFormat) -> Value {
    match format {
        ResponseFormat::Json => json!({"type": "json_object"}),
        ResponseFormat::Schema(_) => {
            let (schema, _) = wire_schema(format);
            let strict = strict_compatible(&schema);
            json!({
                "type": "json_schema",
                "json_schema": {"name": ANSWER_NAME, "schema": schema, "strict": strict},
            })
        }
    }
}

/// Anthropic's `tools` and `tool_choice` for `format`: one tool the model
/// is made to call, whose input is the answer.
pub fn anthropic_tool(format: &ResponseFormat) -> (Value, Value) {
    let (schema, _) = wire_schema(format);
    let tools = json!([{
        "name": ANSWER_NAME,
        "description": "Record your answer. The input is the answer itself, as JSON.",
        "input_schema": schema,
    }]);
    let choice = json!({"type": "tool", "name": ANSWER_NAME});
    (tools, choice)
}

/// The system line a request in JSON mode carries, so that a message
/// mentions JSON as OpenAI requires.
pub const JSON_MODE_LINE: &str = "Answer with a JSON object only.";

/// The system instruction that asks for `format` when the server has no
/// mechanism for it.
pub fn instruction(format: &ResponseFormat) -> String {
    match format {
        ResponseFormat::Json => {
            "Answer with JSON only: one JSON value, with no prose and no code fence.".to_string()
        }
        ResponseFormat::Schema(schema) => format!(
            "Answer with JSON only: one JSON value that matches this JSON Schema, with no prose and no code fence.\nSchema: {schema}"
        ),
    }
}

/// `system` with `line` appended on a line of its own.
pub fn with_line(system: Option<&str>, line: &str) -> String {
    match system {
        Some(s) if !s.trim().is_empty() => format!("{s}\n\n{line}"),
        _ => line.to_string(),
    }
}

/// Whether OpenAI's strict mode accepts `schema`: objects list every
/// property as required and forbid others, and no keyword outside what
/// strict mode supports appears. Conservative: `false` sends
/// `strict: false`, which costs only the provider-side guarantee.
pub fn strict_compatible(schema: &Value) -> bool {
    const UNSUPPORTED: &[&str] = &[
        "allOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "patternProperties",
        "unevaluatedProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "contains",
        "uniqueItems",
    ];
    let Some(map) = schema.as_object() else {
        return schema.is_boolean();
    };
    if UNSUPPORTED.iter().any(|k| map.contains_key(*k)) {
        return false;
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        let required: Vec<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if props.keys().any(|k| !required.contains(&k.as_str())) {
            return false;
        }
        if map.get("additionalProperties") != Some(&Value::Bool(false)) {
            return false;
        }
        if !props.values().all(strict_compatible) {
            return false;
        }
    } else if is_object_schema(schema)
        && map.get("additionalProperties") != Some(&Value::Bool(false))
    {
        return false;
    }
    let mut nested = ["items", "additionalProperties"]
        .iter()
        .filter_map(|k| map.get(*k))
        .filter(|v| v.is_object())
        .chain(
            ["anyOf", "prefixItems"]
                .iter()
                .filter_map(|k| map.get(*k).and_then(Value::as_array))
                .flatten(),
        )
        .chain(
            ["$defs", "definitions"]
                .iter()
                .filter_map(|k| map.get(*k).and_then(Value::as_object))
                .flat_map(|d| d.values()),
        );
    nested.all(strict_compatible)
}

/// The answer inside a natively structured reply: the caller's value,
/// out of the object it was wrapped in (when [`wire_schema`] wrapped it).
/// Text that is not such an object is returned as it is, to be checked
/// and repaired like any other.
pub fn unwrap_answer(format: &ResponseFormat, text: String) -> String {
    if !wire_schema(format).1 {
        return text;
    }
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(Value::Object(mut map)) if map.len() == 1 => match map.remove(WRAPPED_KEY) {
            Some(value) => value.to_string(),
            None => Value::Object(map).to_string(),
        },
        _ => text,
    }
}

/// The JSON value in a model's answer: the whole text, else the first
/// fenced block (```` ```json ````, or untagged) that is JSON, else the
/// first object or array embedded in prose that parses whole.
///
/// ```
/// use rlm::llm::structured::extract_json;
/// use serde_json::json;
/// assert_eq!(extract_json(" {\"a\": 1} "), Some(json!({"a": 1})));
/// assert_eq!(extract_json("Here:\n```json\n[1, 2]\n```\nDone."), Some(json!([1, 2])));
/// assert_eq!(extract_json("The result is {\"n\": 3}, as asked."), Some(json!({"n": 3})));
/// assert_eq!(extract_json("no json here"), None);
/// ```
pub fn extract_json(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        return Some(value);
    }
    if let Some(value) = fenced_blocks(text)
        .into_iter()
        .find_map(|b| serde_json::from_str::<Value>(b.trim()).ok())
    {
        return Some(value);
    }
    text.char_indices()
        .filter(|(_, c)| *c == '{' || *c == '[')
        .take(MAX_CANDIDATES)
        .find_map(|(i, _)| {
            let mut values = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
            values.next().and_then(Result::ok)
        })
}

/// The bodies of fenced blocks tagged `json` or untagged, in order.
fn fenced_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut open: Option<(bool, Vec<&str>)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let is_fence = trimmed.starts_with("```");
        match open.take() {
            None if is_fence => {
                let tag = trimmed.trim_start_matches('`').trim().to_ascii_lowercase();
                open = Some((tag.is_empty() || tag == "json", Vec::new()));
            }
            None => {}
            Some((true, lines)) if is_fence && is_closing(trimmed) => {
                blocks.push(lines.join("\n"));
            }
            Some((false, _)) if is_fence && is_closing(trimmed) => {}
            Some((wanted, mut lines)) => {
                lines.push(line);
                open = Some((wanted, lines));
            }
        }
    }
    if let Some((true, lines)) = open {
        blocks.push(lines.join("\n"));
    }
    blocks
}

/// A fence line with no info string, which closes a block.
fn is_closing(fence: &str) -> bool {
    fence.trim_start_matches('`').trim().is_empty()
}

/// What a structured call expects back: the format to ask for, and the
/// compiled schema its answer is checked against (none for any JSON).
#[derive(Debug, Clone)]
pub struct Expectation {
    pub format: ResponseFormat,
    pub schema: Option<Arc<AnswerSchema>>,
}

impl Expectation {
    /// Any JSON value.
    pub fn json() -> Expectation {
        Expectation {
            format: ResponseFormat::Json,
            schema: None,
        }
    }

    /// JSON that matches `schema`.
    pub fn schema(schema: AnswerSchema) -> Expectation {
        Expectation {
            format: ResponseFormat::Schema(schema.source().clone()),
            schema: Some(Arc::new(schema)),
        }
    }

    /// The value in `text`, or why it is not an acceptable answer: one
    /// line per problem.
    pub fn accept(&self, text: &str) -> Result<Value, Vec<String>> {
        let value = extract_json(text)
            .ok_or_else(|| vec!["$: the answer contains no JSON value".to_string()])?;
        match &self.schema {
            Some(schema) => schema.check(&value).map(|()| value),
            None => Ok(value),
        }
    }
}

/// A structured call that did not produce an acceptable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructuredFailure {
    /// Why: the call's error, or the problems of the repaired answer.
    pub error: String,
    /// The model's last answer, as it was ("" when no call answered).
    pub raw: String,
}

/// The repair prompt: the problems of the last answer, and what to send.
pub fn repair_prompt(problems: &[String]) -> String {
    let mut prompt = String::from("Your answer is not valid:\n");
    for p in problems {
        prompt.push_str("- ");
        prompt.push_str(p);
        prompt.push('\n');
    }
    prompt.push_str("Reply with only the corrected JSON.");
    prompt
}

/// Sends `request` to `model` asking for `expect`'s format, and returns
/// the accepted value: at most two calls, the second a repair (module
/// docs). Both go through `client`, so both are counted and budgeted.
pub async fn complete_structured(
    client: &LlmClient,
    model: &ModelSpec,
    request: &ChatRequest,
    expect: &Expectation,
    options: &CallOptions,
) -> Result<Value, StructuredFailure> {
    let request: Cow<'_, ChatRequest> = if request.format.as_ref() == Some(&expect.format) {
        Cow::Borrowed(request)
    } else {
        Cow::Owned(ChatRequest {
            format: Some(expect.format.clone()),
            ..request.clone()
        })
    };
    let failed = |e: super::LlmError| StructuredFailure {
        error: e.to_string(),
        raw: String::new(),
    };
    let first = client
        .complete(model, &request, options)
        .await
        .map_err(failed)?;
    let problems = match expect.accept(&first.text) {
        Ok(value) => return Ok(value),
        Err(problems) => problems,
    };
    let mut repair = request.into_owned();
    repair.messages.push(Message::assistant(first.text.clone()));
    repair
        .messages
        .push(Message::user(repair_prompt(&problems)));
    let second = client
        .complete(model, &repair, options)
        .await
        .map_err(|e| StructuredFailure {
            error: format!(
                "the answer did not validate ({}), and the repair call failed: {e}",
                problems.join("; ")
            ),
            raw: first.text.clone(),
        })?;
    expect
        .accept(&second.text)
        .map_err(|problems| StructuredFailure {
            error: format!(
                "the answer did not validate after one repair: {}",
                problems.join("; ")
            ),
            raw: second.text,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_mode_needs_every_property_required_and_no_others() {
        let strict = json!({"type": "object", "properties": {"a": {"type": "string"},
            "b": {"type": "array", "items": {"type": "object", "properties": {"c": {"type": "integer"}},
                "required": ["c"], "additionalProperties": false}}},
            "required": ["a", "b"], "additionalProperties": false});
        assert!(strict_compatible(&strict));
        let mut optional = strict.clone();
        optional["required"] = json!(["a"]);
        assert!(!strict_compatible(&optional));
        let mut open = strict.clone();
        open["properties"]["b"]["items"]
            .as_object_mut()
            .unwrap()
            .remove("additionalProperties");
        assert!(!strict_compatible(&open), "nested objects are checked too");
        assert!(!strict_compatible(&json!({"type": "object"})));
        assert!(!strict_compatible(&json!({"oneOf": [{"type": "string"}]})));
    }

    #[test]
    fn non_object_schemas_are_wrapped_and_unwrapped() {
        let format = ResponseFormat::Schema(json!({"type": "array", "items": {"type": "string"}}));
        let (schema, wrapped) = wire_schema(&format);
        assert!(wrapped);
        assert_eq!(schema["properties"][WRAPPED_KEY]["type"], "array");
        assert!(strict_compatible(&schema));
        assert_eq!(
            unwrap_answer(&format, r#"{"value": ["a"]}"#.into()),
            r#"["a"]"#
        );
        assert_eq!(unwrap_answer(&format, "not json".into()), "not json");
        let object = ResponseFormat::Schema(json!({"type": "object"}));
        assert_eq!(
            unwrap_answer(&object, r#"{"value": 1}"#.into()),
            r#"{"value": 1}"#
        );
    }

    #[test]
    fn json_is_found_bare_fenced_or_in_prose() {
        assert_eq!(extract_json("42"), Some(json!(42)));
        assert_eq!(
            extract_json("```\n{\"a\": true}\n```"),
            Some(json!({"a": true}))
        );
        assert_eq!(
            extract_json("```python\n{1: 2}\n```\n```json\n{\"b\": 2}\n```"),
            Some(json!({"b": 2}))
        );
        assert_eq!(extract_json("cut off:\n```json\n[1]\n"), Some(json!([1])));
        assert_eq!(
            extract_json("Sure [note] the value is [1, 2] ok"),
            Some(json!([1, 2])),
            "a bracket that does not start JSON is skipped"
        );
        assert_eq!(extract_json("{\"a\": "), None);
    }

    #[test]
    fn answers_are_accepted_or_refused_with_paths() {
        let schema = AnswerSchema::from_json(json!({"type": "object",
            "properties": {"n": {"type": "integer"}}, "required": ["n"]}))
        .unwrap();
        let expect = Expectation::schema(schema);
        assert_eq!(expect.accept("{\"n\": 2}"), Ok(json!({"n": 2})));
        assert_eq!(
            expect.accept("{\"n\": \"two\"}"),
            Err(vec!["$.n: \"two\" is not of type \"integer\"".to_string()])
        );
        assert_eq!(
            expect.accept("two"),
            Err(vec!["$: the answer contains no JSON value".to_string()])
        );
        assert_eq!(Expectation::json().accept("[1]"), Ok(json!([1])));
    }

    #[test]
    fn the_repair_prompt_lists_every_problem() {
        let p = repair_prompt(&["$.a: x".into(), "$.b: y".into()]);
        assert!(p.contains("- $.a: x\n- $.b: y\n"), "{p}");
    }
}
