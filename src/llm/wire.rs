//! Request bodies and response parsing for each provider's wire protocol.
//!
//! The types here are deliberately small and lenient. OpenAI-compatible
//! servers differ in details (missing `finish_reason`, extra fields, `null`
//! content, content as an array of parts), and a strict SDK type breaks on
//! them. Parsing is pure (bytes in, value out) so it can be fuzzed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::Provider;
use super::prices::Tokens;
use super::structured::{self, ResponseFormat};

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
    /// The conversation will be sent again with more turns after it (a
    /// root turn): ask the provider to cache its prefix ([`request_body`]).
    /// It changes the bill, never the answer.
    pub cache_prefix: bool,
    /// Ask for JSON, or JSON that matches a schema, by the provider's own
    /// mechanism ([`structured`](super::structured)).
    pub format: Option<ResponseFormat>,
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
        let format = match &self.format {
            Some(ResponseFormat::Schema(schema)) => schema.to_string().len(),
            Some(ResponseFormat::Json) => structured::JSON_MODE_LINE.len(),
            None => 0,
        };
        self.system.as_ref().map_or(0, String::len)
            + self.messages.iter().map(|m| m.content.len()).sum::<usize>()
            + format
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

impl Default for FinishReason {
    /// Nothing said.
    fn default() -> Self {
        FinishReason::Other(String::new())
    }
}

/// A model's answer and what it cost.
///
/// The token counts are the same whichever provider answered: the
/// parser normalises them here, once. `input_tokens` is every prompt
/// token, cached or not (OpenAI's `prompt_tokens` already is; Anthropic's
/// `input_tokens` leaves out its cache reads and writes, which are added
/// in), and the two cache counts are parts of it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Completion {
    pub text: String,
    pub finish: FinishReason,
    /// Every prompt token, including the cached and cache-written ones.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Of `input_tokens`, those read from the provider's prompt cache
    /// (OpenAI's `prompt_tokens_details.cached_tokens`, Anthropic's
    /// `cache_read_input_tokens`).
    pub cached_input_tokens: u64,
    /// Of `input_tokens`, those written to the provider's prompt cache
    /// (Anthropic's `cache_creation_input_tokens`; OpenAI reports none).
    pub cache_write_tokens: u64,
}

impl Completion {
    /// The call's tokens by how they are billed, for the ledger.
    pub fn tokens(&self) -> Tokens {
        Tokens {
            input: self.input_tokens,
            cached_input: self.cached_input_tokens,
            cache_write: self.cache_write_tokens,
            output: self.output_tokens,
        }
    }
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
/// Prompt caching: OpenAI caches every prompt prefix of 1024 tokens or
/// more by itself, so its body asks for nothing (and a strict
/// OpenAI-compatible server, which refuses unknown fields, is sent none).
/// Anthropic caches only up to the blocks marked with `cache_control`, so
/// a request with [`ChatRequest::cache_prefix`] gets breakpoints
/// ([`anthropic_messages`]).
///
/// `openai_completion_tokens` selects `max_completion_tokens` (required by
/// OpenAI's reasoning models) over `max_tokens` (what local servers accept).
///
/// A request with a [`ChatRequest::format`] gets the provider's mechanism
/// for it when `native_format` (`response_format`, or forced tool use),
/// and otherwise a system instruction ([`structured::instruction`]).
pub fn request_body(
    provider: Provider,
    model: &str,
    request: &ChatRequest,
    openai_completion_tokens: bool,
    native_format: bool,
) -> Value {
    let system = system_text(provider, request, native_format);
    let mut body = match provider {
        Provider::OpenAi | Provider::Azure | Provider::Replay => {
            let mut messages = Vec::with_capacity(request.messages.len() + 1);
            if let Some(system) = &system {
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
                "messages": anthropic_messages(request),
            });
            if let Some(system) = &system {
                body["system"] = if request.cache_prefix {
                    serde_json::json!([cached_text(system)])
                } else {
                    system.as_str().into()
                };
            }
            if let Some(t) = request.temperature {
                body["temperature"] = t.into();
            }
            body
        }
    };
    if let (Some(format), true) = (&request.format, native_format) {
        match provider {
            Provider::Anthropic => {
                let (tools, choice) = structured::anthropic_tool(format);
                body["tools"] = tools;
                body["tool_choice"] = choice;
            }
            _ => body["response_format"] = structured::openai_response_format(format),
        }
    }
    body
}

/// The system prompt sent: the request's, plus what its format needs. JSON
/// mode on OpenAI needs the word JSON in a message; without a native
/// mechanism, the instruction carries the whole request for JSON.
fn system_text(provider: Provider, request: &ChatRequest, native: bool) -> Option<String> {
    let system = request.system.as_deref();
    match (&request.format, native) {
        (None, _) => request.system.clone(),
        (Some(format), false) => Some(structured::with_line(
            system,
            &structured::instruction(format),
        )),
        (Some(ResponseFormat::Json), true) if provider != Provider::Anthropic => {
            Some(structured::with_line(system, structured::JSON_MODE_LINE))
        }
        (Some(_), true) => request.system.clone(),
    }
}

/// The most `cache_control` breakpoints Anthropic accepts in one request.
pub const MAX_CACHE_BREAKPOINTS: usize = 4;

/// A text block that ends a cached prefix: Anthropic caches the prompt up
/// to and including it, for 5 minutes from its last use.
fn cached_text(text: &str) -> Value {
    serde_json::json!({"type": "text", "text": text, "cache_control": {"type": "ephemeral"}})
}

/// Anthropic's `messages`, with cache breakpoints when the request asks.
///
/// A root turn resends the whole conversation plus one reply and one
/// output, so its breakpoints are the system prompt (the same for every
/// turn, and for every run of a batch) and the last message (the prefix
/// the next turn resends), plus the previous turn's last message, where
/// this turn's prefix was cached: Anthropic looks back only 20 blocks from
/// a breakpoint for an earlier cache entry, and the explicit one finds it
/// however long the lookback. Three breakpoints, within
/// [`MAX_CACHE_BREAKPOINTS`]; one on a prefix already cached is a read, not
/// a second write.
///
/// Sub-calls (`llm_query`, `llm_batch`) are single-shot and get none.
/// Their prompts are each a different slice of the context, so a write
/// (1.25 times the input price) would rarely be read again; and below 1024
/// tokens (2048 for Haiku) Anthropic ignores a breakpoint anyway.
fn anthropic_messages(request: &ChatRequest) -> Vec<Value> {
    let n = request.messages.len();
    let breakpoint = |i: usize| request.cache_prefix && (i + 1 == n || i + 3 == n);
    request
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let content = if breakpoint(i) {
                serde_json::json!([cached_text(&m.content)])
            } else {
                m.content.as_str().into()
            };
            serde_json::json!({"role": m.role, "content": content})
        })
        .collect()
}

/// Parses a successful (2xx) response body.
pub fn parse_response(provider: Provider, body: &[u8]) -> Result<Completion, ParseFailure> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ParseFailure::Malformed(format!("response is not JSON: {e}")))?;
    if let Some(message) = error_message(&value) {
        return Err(ParseFailure::ProviderError(message));
    }
    match provider {
        Provider::OpenAi | Provider::Azure | Provider::Replay => parse_openai(&value),
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
        // OpenAI's prompt_tokens already include the cached ones.
        input_tokens: count(usage, "prompt_tokens"),
        output_tokens: count(usage, "completion_tokens"),
        cached_input_tokens: count(
            usage.and_then(|u| u.get("prompt_tokens_details")),
            "cached_tokens",
        ),
        cache_write_tokens: 0,
    })
}

fn parse_anthropic(value: &Value) -> Result<Completion, ParseFailure> {
    let blocks = value
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseFailure::Malformed("response has no `content` array".into()))?;
    // A forced tool call (a structured sub-call) answers with the tool's
    // input: that JSON is the answer, whatever text came beside it.
    let tool_input = blocks
        .iter()
        .find(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
        .and_then(|b| b.get("input"));
    let text = match tool_input {
        Some(input) => input.to_string(),
        None => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
    };
    let finish = match value.get("stop_reason").and_then(Value::as_str) {
        Some("end_turn") | Some("stop_sequence") | Some("tool_use") => FinishReason::Stop,
        Some("max_tokens") => FinishReason::Length,
        Some(other) => FinishReason::Other(other.to_string()),
        None => FinishReason::Other(String::new()),
    };
    let usage = value.get("usage");
    // Anthropic's input_tokens are only those after the last cache
    // breakpoint: the cache reads and writes come beside them.
    let (read, written) = (
        count(usage, "cache_read_input_tokens"),
        count(usage, "cache_creation_input_tokens"),
    );
    Ok(Completion {
        text,
        finish,
        input_tokens: count(usage, "input_tokens")
            .saturating_add(read)
            .saturating_add(written),
        output_tokens: count(usage, "output_tokens"),
        cached_input_tokens: read,
        cache_write_tokens: written,
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

    /// The `cache_control` markers anywhere in a body.
    fn breakpoints(v: &Value) -> usize {
        match v {
            Value::Object(f) => f
                .iter()
                .map(|(k, v)| usize::from(k == "cache_control") + breakpoints(v))
                .sum(),
            Value::Array(a) => a.iter().map(breakpoints).sum(),
            _ => 0,
        }
    }

    fn conversation(turns: usize) -> ChatRequest {
        let mut messages = vec![Message::user("the task")];
        for i in 0..turns {
            messages.push(Message::assistant(format!("code {i}")));
            messages.push(Message::user(format!("output {i}")));
        }
        ChatRequest {
            system: Some("the root prompt".into()),
            messages,
            cache_prefix: true,
            ..ChatRequest::default()
        }
    }

    #[test]
    fn an_anthropic_root_turn_marks_the_system_the_last_message_and_the_previous_turns() {
        let first = request_body(
            Provider::Anthropic,
            "claude-sonnet-4-5",
            &conversation(0),
            false,
            true,
        );
        assert_eq!(first["system"][0]["text"], "the root prompt");
        assert_eq!(first["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(first["messages"][0]["content"][0]["text"], "the task");
        assert_eq!(breakpoints(&first), 2);
        for turns in 1..30 {
            let body = request_body(
                Provider::Anthropic,
                "claude-sonnet-4-5",
                &conversation(turns),
                false,
                true,
            );
            let messages = body["messages"].as_array().unwrap();
            let marked: Vec<usize> = (0..messages.len())
                .filter(|&i| breakpoints(&messages[i]) > 0)
                .collect();
            let n = messages.len();
            // The last message, and the previous turn's last message.
            assert_eq!(marked, vec![n - 3, n - 1], "{turns} turns");
            assert!(breakpoints(&body) <= MAX_CACHE_BREAKPOINTS);
            // Unmarked messages keep the plain string form.
            assert!(messages[n - 2]["content"].is_string());
        }
    }

    #[test]
    fn sub_calls_and_openai_bodies_carry_no_cache_control() {
        let sub = ChatRequest {
            system: Some("be brief".into()),
            ..ChatRequest::prompt("a slice of the context")
        };
        let a = request_body(Provider::Anthropic, "claude-sonnet-4-5", &sub, false, true);
        assert_eq!(breakpoints(&a), 0);
        assert_eq!(a["system"], "be brief");
        assert_eq!(a["messages"][0]["content"], "a slice of the context");
        let o = request_body(Provider::OpenAi, "gpt-5", &conversation(3), true, true);
        assert_eq!(breakpoints(&o), 0);
        assert!(o["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["content"].is_string()));
    }

    #[test]
    fn openai_cached_tokens_are_part_of_the_prompt_tokens() {
        let body = br#"{"choices":[{"message":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":2048,"completion_tokens":10,"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0}}}"#;
        let c = parse_response(Provider::OpenAi, body).unwrap();
        assert_eq!(
            (
                c.input_tokens,
                c.cached_input_tokens,
                c.cache_write_tokens,
                c.output_tokens
            ),
            (2048, 1920, 0, 10)
        );
        assert_eq!(c.tokens().uncached_input(), 128);
        // Servers without caching send no details, or null ones.
        for usage in [
            r#"{"prompt_tokens":5,"completion_tokens":1}"#,
            r#"{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":null}"#,
            r#"{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{}}"#,
        ] {
            let body =
                format!(r#"{{"choices":[{{"message":{{"content":"x"}}}}],"usage":{usage}}}"#);
            let c = parse_response(Provider::OpenAi, body.as_bytes()).unwrap();
            assert_eq!((c.input_tokens, c.cached_input_tokens), (5, 0), "{usage}");
        }
    }

    #[test]
    fn anthropic_cache_reads_and_writes_are_added_to_its_input_tokens() {
        let body = br#"{"content":[{"type":"text","text":"x"}],"stop_reason":"end_turn","usage":{"input_tokens":50,"cache_creation_input_tokens":300,"cache_read_input_tokens":2000,"output_tokens":7}}"#;
        let c = parse_response(Provider::Anthropic, body).unwrap();
        assert_eq!(
            (
                c.input_tokens,
                c.cached_input_tokens,
                c.cache_write_tokens,
                c.output_tokens
            ),
            (2350, 2000, 300, 7)
        );
        assert_eq!(c.tokens().uncached_input(), 50);
        let bare = br#"{"content":[],"usage":{"input_tokens":9,"output_tokens":1,"cache_read_input_tokens":null}}"#;
        let c = parse_response(Provider::Anthropic, bare).unwrap();
        assert_eq!(
            (c.input_tokens, c.cached_input_tokens, c.cache_write_tokens),
            (9, 0, 0)
        );
    }

    #[test]
    fn bodies_follow_each_protocol() {
        let req = ChatRequest {
            system: Some("be brief".into()),
            max_tokens: Some(50),
            ..ChatRequest::prompt("hi")
        };
        let o = request_body(Provider::OpenAi, "gpt-5-mini", &req, true, true);
        assert_eq!(o["messages"][0]["role"], "system");
        assert_eq!(o["max_completion_tokens"], 50);
        assert!(o.get("temperature").is_none());
        let local = request_body(Provider::OpenAi, "llama", &req, false, true);
        assert_eq!(local["max_tokens"], 50);
        let a = request_body(
            Provider::Anthropic,
            "claude-sonnet-4-5",
            &ChatRequest::prompt("hi"),
            false,
            true,
        );
        assert_eq!(a["max_tokens"], 8192);
        assert_eq!(a["messages"][0]["content"], "hi");
        assert!(a.get("system").is_none());
    }
}
