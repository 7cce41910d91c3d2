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
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string()
    }

    /// The first user message's text (a root turn's task), in either protocol.
    pub fn first_user_message(&self) -> String {
        self.json()["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string()
    }

    /// The system prompt, in either protocol.
    pub fn system(&self) -> Option<String> {
        let json = self.json();
        if let Some(s) = json["system"].as_str() {
            return Some(s.to_string());
        }
        json["messages"]
            .as_array()?
            .iter()
            .find(|m| m["role"] == "system")
            .and_then(|m| m["content"].as_str())
            .map(str::to_string)
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
