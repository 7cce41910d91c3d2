//! A scripted model server on loopback, for tests and benchmarks.
//!
//! [`MockServer`] speaks real HTTP/1.1 (keep-alive, `Content-Length`
//! bodies) on `127.0.0.1`, so the client under test goes through its real
//! path: DNS-free connect, headers, JSON, status codes, timeouts. A handler
//! decides each reply, including the failures providers produce: 429 with
//! `Retry-After`, 5xx, malformed JSON, a dropped connection, a hang, and a
//! body that never ends or trickles in ([`Reply::Stream`]).
//!
//! ```
//! use rlm::testing::{MockServer, Reply};
//! let server = MockServer::start(|req| Reply::openai_text(&format!("echo: {}", req.prompt()), 3, 2));
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names are lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// 0-based arrival order across the server's lifetime.
    pub index: usize,
}

impl Request {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `model` field of the body.
    pub fn model(&self) -> String {
        self.json()["model"].as_str().unwrap_or("").to_string()
    }

    /// The last message's text, in either protocol.
    pub fn prompt(&self) -> String {
        let json = self.json();
        json["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| content_text(&m["content"]))
            .unwrap_or_default()
    }

    /// The first user message's text (a root turn's task), in either protocol.
    pub fn first_user_message(&self) -> String {
        self.json()["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["role"] == "user"))
            .and_then(|m| content_text(&m["content"]))
            .unwrap_or_default()
    }

    /// The system prompt, in either protocol.
    pub fn system(&self) -> Option<String> {
        let json = self.json();
        if let Some(s) = content_text(&json["system"]) {
            return Some(s);
        }
        json["messages"]
            .as_array()?
            .iter()
            .find(|m| m["role"] == "system")
            .and_then(|m| content_text(&m["content"]))
    }

    /// How many `cache_control` breakpoints the body carries, anywhere.
    pub fn cache_breakpoints(&self) -> usize {
        fn count(v: &Value) -> usize {
            match v {
                Value::Object(fields) => fields
                    .iter()
                    .map(|(k, v)| usize::from(k == "cache_control") + count(v))
                    .sum(),
                Value::Array(items) => items.iter().map(count).sum(),
                _ => 0,
            }
        }
        count(&self.json())
    }

    /// Whether this is a turn of a root model (its system prompt is rlm's
    /// root prompt), rather than a sub-call.
    pub fn is_root_turn(&self) -> bool {
        self.system()
            .is_some_and(|s| s.starts_with("You are the root of a Recursive Language Model"))
    }

    /// Number of user/assistant messages (excluding an OpenAI system message).
    pub fn message_count(&self) -> usize {
        self.json()["messages"]
            .as_array()
            .map_or(0, |m| m.iter().filter(|m| m["role"] != "system").count())
    }
}

/// A message's content as text: a string, or the text of its blocks
/// (Anthropic's form when a block carries `cache_control`).
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => Some(
            blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
        ),
        _ => None,
    }
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A response with a status, extra headers and a body.
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A chunked body: `head`, then `chunk` repeated `repeat` times (for
    /// ever when `None`) with `every` between chunks, then the end. Ends
    /// early when the client hangs up.
    Stream {
        status: u16,
        head: Vec<u8>,
        chunk: Vec<u8>,
        repeat: Option<usize>,
        every: Duration,
    },
    /// Close the connection without answering.
    Drop,
    /// Never answer (until the server stops).
    Hang,
    /// Wait, then do the inner reply.
    After(Duration, Box<Reply>),
}

impl Reply {
    /// A 200 with a JSON body.
    pub fn json(body: Value) -> Reply {
        Reply::status_json(200, body)
    }

    /// A JSON body with any status.
    pub fn status_json(status: u16, body: Value) -> Reply {
        Reply::Raw {
            status,
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }

    /// An OpenAI chat completion answering `text`.
    pub fn openai_text(text: &str, input_tokens: u64, output_tokens: u64) -> Reply {
        Reply::json(serde_json::json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}
        }))
    }

    /// An Anthropic message answering `text`.
    pub fn anthropic_text(text: &str, input_tokens: u64, output_tokens: u64) -> Reply {
        Reply::json(serde_json::json!({
            "id": "msg_mock",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}
        }))
    }

    /// An Anthropic message that calls the tool `name` with `input`, as a
    /// forced tool call answers (a structured sub-call): a short text block
    /// beside the `tool_use` block, and `stop_reason: "tool_use"`.
    pub fn anthropic_tool_use(
        name: &str,
        input: Value,
        input_tokens: u64,
        output_tokens: u64,
    ) -> Reply {
        Reply::json(serde_json::json!({
            "id": "msg_mock",
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Recording the answer."},
                {"type": "tool_use", "id": "toolu_mock", "name": name, "input": input}
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}
        }))
    }

    /// An OpenAI chat completion of `prompt_tokens`, `cached_tokens` of
    /// them read from the prompt cache (OpenAI counts them in both).
    pub fn openai_cached(
        text: &str,
        prompt_tokens: u64,
        cached_tokens: u64,
        output_tokens: u64,
    ) -> Reply {
        Reply::json(serde_json::json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": prompt_tokens + output_tokens,
                "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0}
            }
        }))
    }

    /// An Anthropic message whose usage reports cache writes and reads
    /// beside `input_tokens`, which (as Anthropic counts) leaves them out.
    pub fn anthropic_cached(text: &str, usage: CacheUsage, output_tokens: u64) -> Reply {
        Reply::json(serde_json::json!({
            "id": "msg_mock",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": usage.uncached,
                "cache_creation_input_tokens": usage.written,
                "cache_read_input_tokens": usage.read,
                "output_tokens": output_tokens
            }
        }))
    }

    /// An OpenAI-style error with `status`.
    pub fn error(status: u16, message: &str) -> Reply {
        Reply::status_json(
            status,
            serde_json::json!({"error": {"message": message, "type": "mock_error"}}),
        )
    }

    /// A 429 asking the client to wait `seconds`.
    pub fn rate_limited(seconds: f64) -> Reply {
        match Reply::error(429, "rate limited") {
            Reply::Raw { status, body, .. } => Reply::Raw {
                status,
                headers: vec![("retry-after".into(), format!("{seconds}"))],
                body,
            },
            other => other,
        }
    }

    /// This reply, after a delay.
    pub fn after(self, delay: Duration) -> Reply {
        Reply::After(delay, Box::new(self))
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A loopback HTTP server answering with a handler. Stops when dropped.
pub struct MockServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockServer {
    /// Starts a server on a free loopback port, on its own threads.
    ///
    /// # Panics
    /// If no loopback port can be bound; this is test support.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> MockServer {
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = std_listener.local_addr().expect("listener address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = requests.clone();
        let thread = std::thread::Builder::new()
            .name("rlm-mock-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("mock server runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                    let counter = Arc::new(AtomicUsize::new(0));
                    let accept = async {
                        loop {
                            let Ok((stream, _)) = listener.accept().await else {
                                continue;
                            };
                            let handler = handler.clone();
                            let recorded = recorded.clone();
                            let counter = counter.clone();
                            tokio::spawn(serve(stream, handler, recorded, counter));
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = stop_rx => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .expect("spawn the mock server thread");
        MockServer {
            addr,
            requests,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL for the OpenAI-compatible client: `http://127.0.0.1:PORT/v1`.
    pub fn openai_url(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        let mut r = self.requests.lock().map(|r| r.clone()).unwrap_or_default();
        r.sort_by_key(|r| r.index);
        r
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves one connection: requests one after another (keep-alive).
async fn serve(
    mut stream: TcpStream,
    handler: Arc<Handler>,
    recorded: Arc<Mutex<Vec<Request>>>,
    counter: Arc<AtomicUsize>,
) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf, &counter).await else {
            return;
        };
        if let Ok(mut r) = recorded.lock() {
            r.push(request.clone());
        }
        let mut reply = handler(&request);
        loop {
            match reply {
                Reply::After(delay, inner) => {
                    tokio::time::sleep(delay).await;
                    reply = *inner;
                }
                Reply::Drop => return,
                Reply::Stream {
                    status,
                    head,
                    chunk,
                    repeat,
                    every,
                } => {
                    if stream_body(&mut stream, status, &head, &chunk, repeat, every)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    break;
                }
                Reply::Hang => {
                    std::future::pending::<()>().await;
                    return;
                }
                Reply::Raw {
                    status,
                    headers,
                    body,
                } => {
                    let mut head = format!(
                        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                        reason(status),
                        body.len()
                    );
                    for (k, v) in headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    // One write: a separate small write for the body would
                    // wait on the client's delayed ACK (40 ms) under Nagle.
                    let mut response = head.into_bytes();
                    response.extend_from_slice(&body);
                    if stream.write_all(&response).await.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

/// Writes a chunked response; an error means the client went away.
async fn stream_body(
    stream: &mut TcpStream,
    status: u16,
    head: &[u8],
    chunk: &[u8],
    repeat: Option<usize>,
    every: Duration,
) -> std::io::Result<()> {
    fn framed(data: &[u8]) -> Vec<u8> {
        let mut out = format!("{:x}\r\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        out
    }
    let mut response = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        reason(status)
    )
    .into_bytes();
    if !head.is_empty() {
        response.extend(framed(head));
    }
    stream.write_all(&response).await?;
    let chunk = framed(chunk);
    let mut sent = 0;
    while repeat.is_none_or(|n| sent < n) {
        if !every.is_zero() {
            tokio::time::sleep(every).await;
        }
        stream.write_all(&chunk).await?;
        sent += 1;
    }
    stream.write_all(b"0\r\n\r\n").await
}

async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    counter: &AtomicUsize,
) -> Option<Request> {
    const MAX_HEAD: usize = 64 << 10;
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = vec![0u8; (head_end + len - buf.len()).min(1 << 20)];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some(Request {
        method,
        path,
        headers,
        body,
        index: counter.fetch_add(1, Ordering::SeqCst),
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// A prompt's tokens as a provider's cache would bill them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUsage {
    /// Tokens neither read from nor written to the cache.
    pub uncached: u64,
    /// Tokens read from the cache.
    pub read: u64,
    /// Tokens written to the cache (Anthropic only).
    pub written: u64,
}

impl CacheUsage {
    /// Every prompt token.
    pub fn total(&self) -> u64 {
        self.uncached + self.read + self.written
    }
}

/// A provider's prompt cache, simulated the way each provider documents
/// it, so a loopback server can report cache tokens as the real one would.
///
/// A prompt is its blocks in order: the system prompt, then each message
/// (its role and text). A block counts a token per 4 bytes, rounded up,
/// plus [`PromptCache::TEMPLATE`]; a prefix is cacheable from
/// [`PromptCache::MIN_TOKENS`]. It never expires (a test is far shorter
/// than the providers' 5 minutes).
///
/// * [`PromptCache::anthropic`]: only prefixes ending at a block with
///   `cache_control` are cached. The prefix up to the last breakpoint is
///   read from the cache as far as an earlier request wrote it and written
///   for the rest; later blocks are uncached. Every breakpoint's prefix is
///   then in the cache.
/// * [`PromptCache::openai`]: every prompt is cached. The longest prefix
///   an earlier prompt shared is read, in whole blocks of 128 tokens, once
///   it reaches 1024.
#[derive(Debug, Default)]
pub struct PromptCache {
    /// Prefixes in the cache, as their blocks.
    entries: Mutex<Vec<Vec<String>>>,
}

impl PromptCache {
    /// The shortest prefix either provider caches, in tokens.
    pub const MIN_TOKENS: u64 = 1024;
    /// Tokens a chat template adds to each block.
    pub const TEMPLATE: u64 = 4;

    /// An empty cache.
    pub fn new() -> PromptCache {
        PromptCache::default()
    }

    /// The tokens of one block.
    pub fn tokens(block: &str) -> u64 {
        (block.len() as u64).div_ceil(4) + Self::TEMPLATE
    }

    /// The request's blocks, each with whether it carries a breakpoint.
    fn blocks(request: &Request) -> Vec<(String, bool)> {
        let json = request.json();
        let marked = |v: &Value| {
            v.as_array()
                .is_some_and(|b| b.iter().any(|b| b.get("cache_control").is_some()))
        };
        let mut blocks = Vec::new();
        if let Some(system) = content_text(&json["system"]) {
            blocks.push((format!("system: {system}"), marked(&json["system"])));
        }
        for m in json["messages"].as_array().into_iter().flatten() {
            let role = m["role"].as_str().unwrap_or("");
            let text = content_text(&m["content"]).unwrap_or_default();
            blocks.push((format!("{role}: {text}"), marked(&m["content"])));
        }
        blocks
    }

    fn sum(blocks: &[String]) -> u64 {
        blocks.iter().map(|b| Self::tokens(b)).sum()
    }

    /// The longest cached prefix of `blocks`, in blocks.
    fn longest(entries: &[Vec<String>], blocks: &[String]) -> usize {
        entries
            .iter()
            .map(|e| e.iter().zip(blocks).take_while(|(a, b)| a == b).count())
            .max()
            .unwrap_or(0)
    }

    /// What Anthropic would bill `request`'s prompt as, and caches its
    /// breakpoints' prefixes.
    pub fn anthropic(&self, request: &Request) -> CacheUsage {
        let blocks = Self::blocks(request);
        let texts: Vec<String> = blocks.iter().map(|(t, _)| t.clone()).collect();
        let total = Self::sum(&texts);
        let Some(last) = blocks.iter().rposition(|(_, marked)| *marked) else {
            return CacheUsage {
                uncached: total,
                ..CacheUsage::default()
            };
        };
        let prefix = &texts[..=last];
        let prefix_tokens = Self::sum(prefix);
        if prefix_tokens < Self::MIN_TOKENS {
            return CacheUsage {
                uncached: total,
                ..CacheUsage::default()
            };
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Entries end where breakpoints were, so a match is whole entries.
        let hit = entries
            .iter()
            .filter(|e| prefix.starts_with(e))
            .map(|e| e.len())
            .max()
            .unwrap_or(0);
        let read = Self::sum(&texts[..hit]);
        for (i, (_, marked)) in blocks.iter().enumerate().take(last + 1) {
            let entry = texts[..=i].to_vec();
            if *marked && Self::sum(&entry) >= Self::MIN_TOKENS && !entries.contains(&entry) {
                entries.push(entry);
            }
        }
        CacheUsage {
            uncached: total - prefix_tokens,
            read,
            written: prefix_tokens - read,
        }
    }

    /// What OpenAI would bill `request`'s prompt as, and caches it.
    pub fn openai(&self, request: &Request) -> CacheUsage {
        let texts: Vec<String> = Self::blocks(request).into_iter().map(|(t, _)| t).collect();
        let total = Self::sum(&texts);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let shared = Self::sum(&texts[..Self::longest(&entries, &texts)]);
        let read = if shared >= Self::MIN_TOKENS {
            shared / 128 * 128
        } else {
            0
        };
        entries.push(texts);
        CacheUsage {
            uncached: total - read,
            read,
            written: 0,
        }
    }
}

/// Which provider's way of caching prompts a [`prompt_cache_server`] plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachingProvider {
    /// Anthropic: breakpoints, cache writes and reads ([`PromptCache::anthropic`]).
    Anthropic,
    /// OpenAI: every prefix, reads only ([`PromptCache::openai`]).
    OpenAi,
}

/// Output tokens each turn of a [`prompt_cache_server`] reports.
pub const SCRIPTED_OUTPUT_TOKENS: u64 = 150;

/// The reply of turn `turn` (1-based) of a scripted root of `turns` turns:
/// some prose and a cell that prints a line, every turn the same length,
/// and on the last turn a cell that submits.
pub fn scripted_root_reply(turn: usize, turns: usize) -> String {
    if turn >= turns {
        return format!("All steps are done.\n```rhai\nsubmit(\"done after {turns} turns\");\n```");
    }
    let reasoning =
        format!("Step {turn:02}: I look at the next part of the context before deciding. ")
            .repeat(8);
    format!(
        "{reasoning}\n```rhai\nlet n = context.len();\nprint(`step {turn:02} of {turns}: the context has ${{n}} bytes; {}`);\n```",
        "noted ".repeat(40)
    )
}

/// A loopback root model that plays `turns` turns of
/// [`scripted_root_reply`] and reports each prompt's tokens as `provider`
/// bills them when `caching` (or, when not, every token uncached, as a
/// provider without a prompt cache would), in that provider's usage shape.
/// Returns the server and what it reported, request by request.
pub fn prompt_cache_server(
    provider: CachingProvider,
    caching: bool,
    turns: usize,
) -> (MockServer, Arc<Mutex<Vec<CacheUsage>>>) {
    let reported: Arc<Mutex<Vec<CacheUsage>>> = Arc::default();
    let log = reported.clone();
    let cache = PromptCache::new();
    let server = MockServer::start(move |req| {
        let usage = match (caching, provider) {
            (true, CachingProvider::Anthropic) => cache.anthropic(req),
            (true, CachingProvider::OpenAi) => cache.openai(req),
            (false, _) => CacheUsage {
                uncached: PromptCache::sum(
                    &PromptCache::blocks(req)
                        .into_iter()
                        .map(|(t, _)| t)
                        .collect::<Vec<_>>(),
                ),
                ..CacheUsage::default()
            },
        };
        if let Ok(mut log) = log.lock() {
            log.push(usage);
        }
        let turn = req.message_count().div_ceil(2);
        let text = scripted_root_reply(turn, turns);
        match provider {
            CachingProvider::Anthropic => {
                Reply::anthropic_cached(&text, usage, SCRIPTED_OUTPUT_TOKENS)
            }
            CachingProvider::OpenAi => {
                Reply::openai_cached(&text, usage.total(), usage.read, SCRIPTED_OUTPUT_TOKENS)
            }
        }
    });
    (server, reported)
}
