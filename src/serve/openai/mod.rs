//! `rlm serve`: an OpenAI-compatible endpoint over [`RunServer`], on axum.
//!
//! * `GET /v1/models` lists the model pairs ([`ModelPair`]) as
//!   `rlm/ROOT`; a request's `model` picks one.
//! * `POST /v1/chat/completions` runs the RLM. The last user message is
//!   the question. The context is either
//!   - that message itself, as the official RLM takes its prompt as the
//!     context: the root model explores it as `context`, and is shown the
//!     message whole when it is short ([`INLINE_QUERY_CHARS`]) or its head
//!     and tail when it is long; or
//!   - files under `--root` named in the extension field
//!     `"rlm": {"paths": [...]}`, with the message as the question.
//!
//!   Earlier messages are not read: a run answers one question.
//!   `"rlm"` also carries this request's budget (`max_llm_calls`,
//!   `max_tokens`, `max_cost_usd`), `max_iterations` and `timeout_s`,
//!   each held to the server's per-request defaults.
//! * `stream: true` answers with server-sent events in OpenAI's chunk
//!   format: a role chunk, one chunk per progress step (its text in
//!   `delta.reasoning_content`, never in `content`), the answer as one
//!   `content` chunk, a chunk with `finish_reason: "stop"`, a usage chunk
//!   when `stream_options.include_usage` asks, then `data: [DONE]`.
//!
//! A run that ends without an answer (a budget, the iteration limit, a
//! failed model) is a 422 with code `rlm_<status>`, or an `error` event in
//! a stream; 422 because OpenAI clients retry 429 and 5xx, and running a
//! spent budget again would not help. Bad requests are 400 (malformed
//! JSON, missing fields), 401 (the bearer token), 404 (an unknown model or
//! path), 413 (a body over the limit), each with OpenAI's error body.

mod error;
pub mod wire;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::mpsc;

pub use error::ApiError;
use wire::{
    AssistantMessage, ChatChunk, ChatCompletion, ChatRequest, Choice, ChunkChoice, Delta,
    ModelEntry, ModelList, Usage,
};

use super::{Answered, ModelPair, Progress, RunOptions, RunServer, ServeError};
use crate::driver::RunResult;
use crate::llm::Budgets;
use crate::Context;

/// Messages up to this many characters are shown to the root model whole
/// as the question; longer ones by their head and tail (the whole message
/// is the context either way).
pub const INLINE_QUERY_CHARS: usize = 4000;

/// How `rlm serve` answers, besides its runs.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Requests must carry `Authorization: Bearer TOKEN` when set.
    pub auth_token: Option<String>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
}

struct AppState {
    runs: Arc<RunServer>,
    http: HttpConfig,
    /// When the server started, as `created` of its models.
    started: u64,
}

/// The axum app: routes, auth and the body limit.
pub fn app(runs: Arc<RunServer>, http: HttpConfig) -> Router {
    let limit = http.max_body_bytes;
    let state = Arc::new(AppState {
        runs,
        http,
        started: unix_now(),
    });
    Router::new()
        .route("/v1/models", get(models).fallback(method_not_allowed))
        .route(
            "/v1/chat/completions",
            post(chat).fallback(method_not_allowed),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Refuses requests without the bearer token, when one is set.
async fn auth(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(token) = &state.http.auth_token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if same_secret(g.trim().as_bytes(), token.as_bytes()) => next.run(request).await,
        Some(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided.",
        )
        .into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "missing_api_key",
            "You didn't provide an API key: pass it as `Authorization: Bearer TOKEN`.",
        )
        .into_response(),
    }
}

/// Compares secrets in time that depends on their length only.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "unknown_url",
        "Unknown path: rlm serve answers POST /v1/chat/completions and GET /v1/models.",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        "This path does not take that method: POST /v1/chat/completions, GET /v1/models.",
    )
}

async fn models(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: state
            .runs
            .pairs()
            .iter()
            .map(|p| ModelEntry {
                id: p.id.clone(),
                object: "model",
                created: state.started,
                owned_by: "rlm",
            })
            .collect(),
    })
}

/// A request checked and turned into a run: question, where the context
/// comes from, model pair and options.
struct Job {
    model: String,
    pair: ModelPair,
    query: String,
    source: ContextSource,
    budgets: Budgets,
    max_iterations: Option<usize>,
    timeout: Option<std::time::Duration>,
    stream: bool,
    include_usage: bool,
}

enum ContextSource {
    Message(String),
    Paths(Vec<String>),
}

async fn chat(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let job = match body
        .map_err(|e| body_error(&e))
        .and_then(|b| parse(&state, &b))
    {
        Ok(j) => j,
        Err(e) => return e.into_response(),
    };
    let context = match load(&state, &job.source).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match job.stream {
        true => stream(state, job, context),
        false => whole(&state, job, &context).await,
    }
}

/// What a body the extractor refused means to a client.
fn body_error(e: &axum::extract::rejection::BytesRejection) -> ApiError {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            "The request body is larger than this server's --max-body-size; name large files with \"rlm\": {\"paths\": [...]} instead of sending them.",
        ),
        status => ApiError {
            status,
            ..ApiError::invalid(format!("The request body could not be read: {e}"), None)
        },
    }
}

/// Checks a body and makes it a [`Job`].
fn parse(state: &AppState, body: &[u8]) -> Result<Job, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            format!("We could not parse the JSON body of your request ({e})."),
            None,
        )
    })?;
    let request: ChatRequest = serde_json::from_value(value)
        .map_err(|e| ApiError::invalid(format!("Invalid request body: {e}."), None))?;
    let pair = state.runs.pair(&request.model).cloned().ok_or_else(|| {
        let offered: Vec<&str> = state.runs.pairs().iter().map(|p| p.id.as_str()).collect();
        ApiError {
            param: Some("model".into()),
            ..ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
                format!(
                    "The model `{}` does not exist here; this server offers: {}.",
                    request.model,
                    offered.join(", ")
                ),
            )
        }
    })?;
    let last_user = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .ok_or_else(|| {
            ApiError::invalid(
                "No message has role `user`: the last user message is the question.",
                Some("messages"),
            )
        })?;
    let text = match &last_user.content {
        None => String::new(),
        Some(c) => c.text().map_err(|kind| {
            ApiError::invalid(
                format!(
                    "Only text content is read; the last user message has a part of type `{kind}`."
                ),
                Some("messages"),
            )
        })?,
    };
    if text.trim().is_empty() {
        return Err(ApiError::invalid(
            "The last user message is empty: it is the question.",
            Some("messages"),
        ));
    }
    let ext = request.rlm.unwrap_or_default();
    let timeout = ext
        .timeout_s
        .map(crate::config::seconds)
        .transpose()
        .map_err(|e| ApiError::invalid(format!("rlm.timeout_s {e}"), Some("rlm.timeout_s")))?;
    if ext
        .max_cost_usd
        .is_some_and(|c| !(c >= 0.0 && c.is_finite()))
    {
        return Err(ApiError::invalid(
            "rlm.max_cost_usd must be 0 or more.",
            Some("rlm.max_cost_usd"),
        ));
    }
    let (query, source) = match ext.paths {
        Some(paths) => (text, ContextSource::Paths(paths)),
        None => (question_of(&text), ContextSource::Message(text)),
    };
    Ok(Job {
        model: request.model,
        pair,
        query,
        source,
        budgets: Budgets {
            max_calls: ext.max_llm_calls,
            max_tokens: ext.max_tokens,
            max_cost_usd: ext.max_cost_usd,
        },
        max_iterations: ext.max_iterations,
        timeout,
        stream: request.stream,
        include_usage: request.stream_options.is_some_and(|o| o.include_usage),
    })
}

/// The question shown to the root model for a message that is also the
/// context: the whole message when short, else its head and tail.
fn question_of(message: &str) -> String {
    let chars = message.chars().count();
    if chars <= INLINE_QUERY_CHARS {
        return message.to_string();
    }
    let part = INLINE_QUERY_CHARS / 2;
    let head: String = message.chars().take(part).collect();
    let tail: String = message.chars().skip(chars - part).collect();
    format!(
        "{head}\n[… {} characters left out here; the whole message, {chars} characters, is `context` …]\n{tail}",
        chars - 2 * part
    )
}

/// The context of a job: the message, or the files it names.
async fn load(state: &Arc<AppState>, source: &ContextSource) -> Result<Context, ApiError> {
    let paths = match source {
        ContextSource::Message(text) => return Ok(Context::from_string("message", text.as_str())),
        ContextSource::Paths(p) => p.clone(),
    };
    let runs = state.runs.clone();
    match tokio::task::spawn_blocking(move || runs.load(&paths)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(load_error(&e)),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal",
            format!("Loading the files stopped on an internal error ({e})."),
        )),
    }
}

fn load_error(e: &ServeError) -> ApiError {
    let status = match e {
        ServeError::Path(super::PathError::Missing { .. }) => StatusCode::NOT_FOUND,
        ServeError::Path(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError {
        status,
        param: Some("rlm.paths".into()),
        ..ApiError::invalid(e.to_string(), None)
    }
}

fn options(job: &Job) -> RunOptions {
    RunOptions {
        pair: Some(job.pair.clone()),
        budgets: job.budgets.clone(),
        max_iterations: job.max_iterations,
        timeout: job.timeout,
        sink: None,
    }
}

fn usage(result: &RunResult) -> Usage {
    Usage::new(result.totals.input_tokens, result.totals.output_tokens)
}

/// How the run went, in every response's `rlm` field.
fn run_report(a: &Answered) -> serde_json::Value {
    serde_json::json!({
        "status": a.result.status,
        "iterations": a.result.iterations,
        "cost_usd": a.result.cost(),
        "wall_s": a.result.wall_s,
        "trace": a.trace.as_ref().map(|p| p.display().to_string()),
    })
}

/// Why a run has no answer, as an error a client sees.
fn no_answer(a: &Answered) -> ApiError {
    let status = serde_json::to_value(a.result.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let why = a.result.error.as_deref().unwrap_or("no answer was given");
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "rlm_run_error",
        &format!("rlm_{status}"),
        format!("The run ended without an answer ({status}): {why}"),
    )
}

fn run_failed(e: &ServeError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "rlm_start_failed",
        e.to_string(),
    )
}

async fn whole(state: &AppState, job: Job, context: &Context) -> Response {
    let answered = match state.runs.answer(&job.query, context, options(&job)).await {
        Ok(a) => a,
        Err(e) => return run_failed(&e).into_response(),
    };
    let Some(answer) = answered.result.answer_text.clone() else {
        return no_answer(&answered).into_response();
    };
    Json(ChatCompletion {
        id: format!("chatcmpl-{}", answered.id),
        object: "chat.completion",
        created: unix_now(),
        model: job.model,
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: answer,
            },
            finish_reason: "stop",
            logprobs: None,
        }],
        usage: usage(&answered.result),
        rlm: run_report(&answered),
    })
    .into_response()
}

/// Builds the chunks of one streamed response.
struct Chunks {
    id: String,
    created: u64,
    model: String,
}

impl Chunks {
    fn chunk(&self, delta: Delta, finish: Option<&'static str>) -> String {
        self.event(&ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
            }],
            usage: None,
        })
    }

    fn usage(&self, usage: Usage) -> String {
        self.event(&ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices: Vec::new(),
            usage: Some(usage),
        })
    }

    fn event(&self, body: &impl serde::Serialize) -> String {
        format!(
            "data: {}\n\n",
            serde_json::to_string(body).unwrap_or_default()
        )
    }
}

/// Answers with SSE: the run goes on in a task that sends chunks as it
/// goes; if the client leaves, the task stops and so does the run.
fn stream(state: Arc<AppState>, job: Job, context: Context) -> Response {
    let (tx, rx) = mpsc::channel::<String>(64);
    let chunks = Chunks {
        id: format!("chatcmpl-{:016x}", fastrand::u64(..)),
        created: unix_now(),
        model: job.model.clone(),
    };
    tokio::spawn(async move {
        let (sink, mut steps) = Progress::channel();
        let mut opts = options(&job);
        opts.sink = Some(sink);
        let first = Delta {
            role: Some("assistant"),
            content: Some(String::new()),
            ..Delta::default()
        };
        if tx.send(chunks.chunk(first, None)).await.is_err() {
            return;
        }
        let run = state.runs.answer(&job.query, &context, opts);
        tokio::pin!(run);
        let answered = loop {
            tokio::select! {
                done = &mut run => break done,
                Some(step) = steps.recv() => {
                    let delta = Delta { reasoning_content: Some(format!("{}\n", step.message)), ..Delta::default() };
                    if tx.send(chunks.chunk(delta, None)).await.is_err() {
                        return;
                    }
                }
                _ = tx.closed() => return,
            }
        };
        while let Ok(step) = steps.try_recv() {
            let delta = Delta {
                reasoning_content: Some(format!("{}\n", step.message)),
                ..Delta::default()
            };
            let _ = tx.send(chunks.chunk(delta, None)).await;
        }
        let answered = match answered {
            Ok(a) => a,
            Err(e) => {
                let _ = tx.send(chunks.event(&run_failed(&e).body())).await;
                return;
            }
        };
        let Some(answer) = answered.result.answer_text.clone() else {
            let _ = tx.send(chunks.event(&no_answer(&answered).body())).await;
            return;
        };
        let content = Delta {
            content: Some(answer),
            ..Delta::default()
        };
        let _ = tx.send(chunks.chunk(content, None)).await;
        let _ = tx.send(chunks.chunk(Delta::default(), Some("stop"))).await;
        if job.include_usage {
            let _ = tx.send(chunks.usage(usage(&answered.result))).await;
        }
        let _ = tx.send("data: [DONE]\n\n".to_string()).await;
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|s| (Ok::<_, Infallible>(s), rx))
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    (headers, Body::from_stream(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_shown_by_its_head_and_tail() {
        let long = format!("{}QUESTION?", "x".repeat(10_000));
        let q = question_of(&long);
        assert!(q.len() < 5000);
        assert!(q.ends_with("QUESTION?"));
        assert!(q.contains("is `context`"));
        assert_eq!(question_of("short?"), "short?");
    }

    #[test]
    fn secrets_compare_by_content_and_length() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
