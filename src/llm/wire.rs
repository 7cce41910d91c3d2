//! Request bodies and response parsing for each provider's wire protocol.
//!
//! The types here are deliberately small and lenient. OpenAI-compatible
//! servers differ in details (missing `finish_reason`, extra fields, `null`
//! content, content as an array of parts), and a strict SDK type breaks on
//! them. Parsing is pure (bytes in, value out) so it can be fuzzed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::Provider;

/// A chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `user` or `assistant` (the system prompt is separate).
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Message {
        Message {
            role: "user".into(),
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Message {
        Message {
            role: "assistant".into(),
            content: content.into(),
        }
    }
}

/// One request to a model, independent of the provider.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
}

impl ChatRequest {
    /// A single-question request.
    pub fn prompt(text: impl Into<String>) -> ChatRequest {
        ChatRequest {
            messages: vec![Message::user(text)],
            ..Default::default()
        }
    }

    /// Bytes of text this request sends, for context-window checks.
    pub fn text_bytes(&self) -> usize {
        self.system.as_ref().map_or(0, String::len)
            + self.messages.iter().map(|m| m.content.len()).sum::<usize>()
    }

    /// An upper bound of the tokens this request's prompt can count as,
    /// for budgets: the byte-level BPE tokenizers of OpenAI, Anthropic and
    /// Llama give every token at least one byte, so the text's bytes bound
    /// its tokens, and [`TEMPLATE_TOKENS`] a message bounds what the chat
    /// template adds around each (and around the reply).
    pub fn max_input_tokens(&self) -> u64 {
        let messages = self.messages.len() + usize::from(self.system.is_some()) + 1;
        (self.text_bytes() as u64).saturating_add(messages as u64 * TEMPLATE_TOKENS)
    }
}

/// Tokens a chat template adds per message: role markers and separators
/// (OpenAI adds 3 or 4, Llama 3 adds 5), with room to spare.
pub const TEMPLATE_TOKENS: u64 = 8;

/// The `max_tokens` sent when a request sets none but one is needed:
/// Anthropic requires it, and a token or cost budget must bound answers.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// It finished its answer.
    Stop,
    /// It hit `max_tokens`; the answer may be cut off.
    Length,
    /// Anything else the provider said, or nothing.
    Other(String),
}

/// A model's answer and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    pub finish: FinishReason,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// How a response body failed to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseFailure {
    /// Not JSON, or JSON of the wrong shape.
    Malformed(String),
    /// A well-formed error object from the provider.
    ProviderError(String),
}

/// The JSON body for `request` to `model` over `provider`.
///
/// `openai_completion_tokens` selects `max_completion_tokens` (required by
/// OpenAI's reasoning models) over `max_tokens` (what local servers accept).
pub fn request_body(
    provider: Provider,
    model: &str,
    request: &ChatRequest,
    openai_completion_tokens: bool,
) -> Value {
    match provider {
        Provider::OpenAi | Provider::Replay => {
            let mut messages = Vec::with_capacity(request.messages.len() + 1);
            if let Some(system) = &request.system {
                messages.push(serde_json::json!({"role": "system", "content": system}));
            }
            for m in &request.messages {
                messages.push(serde_json::json!({"role": m.role, "content": m.content}));
            }
            let mut body = serde_json::json!({"model": model, "messages": messages});
            if let Some(n) = request.max_tokens {
                let key = if openai_completion_tokens {
                    "max_completion_tokens"
                } else {
                    "max_tokens"
                };
                body[key] = n.into();
            }
            if let Some(t) = request.temperature {
                body["temperature"] = t.into();
            }
            body
        }
        Provider::Anthropic => {
            // Anthropic requires max_tokens.
            let mut body = serde_json::json!({
                "model": model,
                "max_tokens": request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
                "messages": request.messages,
            });
            if let Some(system) = &request.system {
                body["system"] = system.as_str().into();
            }
            if let Some(t) = request.temperature {
                body["temperature"] = t.into();
            }
            body
        }
    }
}

/// Parses a successful (2xx) response body.
pub fn parse_response(provider: Provider, body: &[u8]) -> Result<Completion, ParseFailure> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ParseFailure::Malformed(format!("response is not JSON: {e}")))?;
    if let Some(message) = error_message(&value) {
        return Err(ParseFailure::ProviderError(message));
    }
    match provider {
        Provider::OpenAi | Provider::Replay => parse_openai(&value),
        Provider::Anthropic => parse_anthropic(&value),
    }
}

fn parse_openai(value: &Value) -> Result<Completion, ParseFailure> {
    let choice = value
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| ParseFailure::Malformed("response has no `choices[0]`".into()))?;
    let message = choice.get("message").unwrap_or(&Value::Null);
    let text = content_text(message.get("content").unwrap_or(&Value::Null));
    let finish = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("stop") | Some("eos") | Some("end_turn") => FinishReason::Stop,
        Some("length") | Some("max_tokens") => FinishReason::Length,
        Some(other) => FinishReason::Other(other.to_string()),
        None => FinishReason::Other(String::new()),
    };
    let usage = value.get("usage");
    Ok(Completion {
        text,
        finish,
        input_tokens: count(usage, "prompt_tokens"),
        output_tokens: count(usage, "completion_tokens"),
    })
}

fn parse_anthropic(value: &Value) -> Result<Completion, ParseFailure> {
    let blocks = value
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseFailure::Malformed("response has no `content` array".into()))?;
    let text = blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("");
    let finish = match value.get("stop_reason").and_then(Value::as_str) {
        Some("end_turn") | Some("stop_sequence") => FinishReason::Stop,
        Some("max_tokens") => FinishReason::Length,
        Some(other) => FinishReason::Other(other.to_string()),
        None => FinishReason::Other(String::new()),
    };
    let usage = value.get("usage");
    Ok(Completion {
        text,
        finish,
        input_tokens: count(usage, "input_tokens")
            + count(usage, "cache_read_input_tokens")
            + count(usage, "cache_creation_input_tokens"),
        output_tokens: count(usage, "output_tokens"),
    })
}

/// OpenAI content: a string, `null`, or an array of parts with `text`.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str).or_else(|| p.as_str()))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn count(usage: Option<&Value>, key: &str) -> u64 {
    usage
        .and_then(|u| u.get(key))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// The human message of a provider error body, in either protocol's shape.
pub fn error_message(value: &Value) -> Option<String> {
    let err = value.get("error")?;
    if err.is_null() {
        return None;
    }
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| err.as_str().map(str::to_string))
        .unwrap_or_else(|| err.to_string());
    let message = if message.trim().is_empty() {
        // Found by fuzzing: `{"error": ""}` left the user an empty reason.
        "(the provider's error message is empty)".to_string()
    } else {
        message
    };
    let kind = err.get("type").and_then(Value::as_str);
    Some(match kind {
        Some(kind) => format!("{kind}: {message}"),
        None => message,
    })
}

/// The message from an error response body, or a short excerpt of it.
pub fn error_text(body: &[u8]) -> String {
    const EXCERPT: usize = 300;
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        if let Some(m) = error_message(&value) {
            return m;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    match text.char_indices().nth(EXCERPT) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_error_messages_still_say_something() {
        for body in [
            &br#"{"error":""}"#[..],
            br#"{"error":{"message":"  ","type":"server_error"}}"#,
        ] {
            let text = error_text(body);
            assert!(text.contains("error message is empty"), "{text}");
        }
        assert_eq!(
            error_text(br#"{"error":{"message":"slow down"}}"#),
            "slow down"
        );
    }

    #[test]
    fn openai_null_content_and_length_finish() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"length"}],"usage":{"prompt_tokens":12,"completion_tokens":400}}"#;
        let c = parse_response(Provider::OpenAi, body).unwrap();
        assert_eq!(c.text, "");
        assert_eq!(c.finish, FinishReason::Length);
        assert_eq!((c.input_tokens, c.output_tokens), (12, 400));
    }

    #[test]
    fn openai_lenient_shapes() {
        let parts = br#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}],"extra":1}"#;
        let c = parse_response(Provider::OpenAi, parts).unwrap();
        assert_eq!(c.text, "ab");
        assert_eq!(c.finish, FinishReason::Other(String::new()));
        assert_eq!(c.input_tokens, 0);
        assert!(matches!(
            parse_response(Provider::OpenAi, b"{\"choices\":[]}"),
            Err(ParseFailure::Malformed(_))
        ));
        assert!(matches!(
            parse_response(Provider::OpenAi, b"<html>"),
            Err(ParseFailure::Malformed(_))
        ));
    }

    #[test]
    fn anthropic_text_blocks_and_errors() {
        let body = br#"{"content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"42"}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":1}}"#;
        let c = parse_response(Provider::Anthropic, body).unwrap();
        assert_eq!(
            (c.text.as_str(), c.finish.clone()),
            ("42", FinishReason::Stop)
        );
        let err = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            parse_response(Provider::Anthropic, err),
            Err(ParseFailure::ProviderError(
                "overloaded_error: Overloaded".into()
            ))
        );
    }

    #[test]
    fn the_prompt_bound_counts_every_byte_and_each_message_of_the_template() {
        let req = ChatRequest {
            system: Some("héllo".into()),
            ..ChatRequest::prompt("abc")
        };
        // 6 + 3 bytes; system, user and the reply's header.
        assert_eq!(req.max_input_tokens(), 9 + 3 * TEMPLATE_TOKENS);
    }

    #[test]
    fn bodies_follow_each_protocol() {
        let req = ChatRequest {
            system: Some("be brief".into()),
            max_tokens: Some(50),
            ..ChatRequest::prompt("hi")
        };
        let o = request_body(Provider::OpenAi, "gpt-5-mini", &req, true);
        assert_eq!(o["messages"][0]["role"], "system");
        assert_eq!(o["max_completion_tokens"], 50);
        assert!(o.get("temperature").is_none());
        let local = request_body(Provider::OpenAi, "llama", &req, false);
        assert_eq!(local["max_tokens"], 50);
        let a = request_body(
            Provider::Anthropic,
            "claude-sonnet-4-5",
            &ChatRequest::prompt("hi"),
            false,
        );
        assert_eq!(a["max_tokens"], 8192);
        assert_eq!(a["messages"][0]["content"], "hi");
        assert!(a.get("system").is_none());
    }
}
