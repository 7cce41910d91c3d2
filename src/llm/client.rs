//! The HTTP client that sends calls, retries them and counts them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ledger::{BudgetExceeded, Demand, Ledger, Output, Reservation};
use super::limiter::Limiter;
use super::model::{ModelSpec, Provider};
use super::retry::{retry_after, retryable_status, RetryPolicy};
use super::secret::{ApiKey, Scrubber};
use super::wire::{self, ChatRequest, Completion, FinishReason, ParseFailure};
use crate::stats::estimate_tokens;

/// Where and how to reach the providers.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Base URL of the OpenAI-compatible API, up to and including `/v1`.
    pub openai_base_url: String,
    pub openai_api_key: Option<ApiKey>,
    /// Base URL of the Anthropic API, without `/v1`.
    pub anthropic_base_url: String,
    pub anthropic_api_key: Option<ApiKey>,
    /// Time for one attempt, from sending to the whole body received: a
    /// body that trickles in counts against it too.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// Calls in flight at once, across the whole run.
    pub concurrency: usize,
    /// Call starts per minute, across the whole run.
    pub requests_per_minute: Option<u32>,
    /// The largest response body read; a longer one fails the call with
    /// [`LlmError::ResponseTooLarge`] once this much has arrived, so an
    /// endless body costs this much memory and no more.
    pub max_response_bytes: usize,
}

/// The default [`LlmConfig::max_response_bytes`]: 16 MiB, far above any
/// completion (a million tokens of text is about 4 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;

/// The public OpenAI endpoint.
pub const OPENAI_URL: &str = "https://api.openai.com/v1";
/// The public Anthropic endpoint.
pub const ANTHROPIC_URL: &str = "https://api.anthropic.com";

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            openai_base_url: OPENAI_URL.into(),
            openai_api_key: None,
            anthropic_base_url: ANTHROPIC_URL.into(),
            anthropic_api_key: None,
            request_timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            concurrency: 16,
            requests_per_minute: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl LlmConfig {
    /// The URL a call to `model` is sent to, and the key it carries.
    ///
    /// Only the public endpoints ([`OPENAI_URL`], [`ANTHROPIC_URL`]) are
    /// known to need a key, so only there is a missing one refused, with
    /// [`LlmError::NoApiKey`]; a local or other server (Ollama, vLLM, a
    /// proxy) is sent the call without. Replay models have no URL. Every
    /// call goes through this, and so does `rlm::preflight`, so a command
    /// refuses up front exactly what its calls would.
    pub fn endpoint(&self, model: &ModelSpec) -> Result<(String, Option<&ApiKey>), LlmError> {
        // Each provider: its base URL, key, public endpoint, the variable
        // and flag that fix a missing key, and the path of its chat API.
        let (base, key, public, var, flag, path) = match model.provider {
            Provider::OpenAi => (
                &self.openai_base_url,
                self.openai_api_key.as_ref(),
                OPENAI_URL,
                "OPENAI_API_KEY",
                "--base-url",
                "chat/completions",
            ),
            Provider::Anthropic => (
                &self.anthropic_base_url,
                self.anthropic_api_key.as_ref(),
                ANTHROPIC_URL,
                "ANTHROPIC_API_KEY",
                "--anthropic-base-url",
                "v1/messages",
            ),
            Provider::Replay => {
                return Err(LlmError::Replay(
                    "replay models are not sent over HTTP".into(),
                ))
            }
        };
        if key.is_none() && base.starts_with(public) {
            return Err(LlmError::NoApiKey {
                model: model.to_string(),
                var,
                flag,
            });
        }
        Ok((format!("{}/{path}", base.trim_end_matches('/')), key))
    }
}

/// Why a call failed. Messages name the model and never contain a key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("prompt is about {tokens} tokens, more than {model}'s context window of {window} tokens: split the text with chunks() or parts() and use llm_batch()")]
    PromptTooLarge {
        model: String,
        tokens: usize,
        window: usize,
    },
    #[error("{0}; this call was not sent")]
    Budget(#[from] BudgetExceeded),
    #[error("{model}: no API key: set {var}, or point {flag} at a server that needs none")]
    NoApiKey {
        model: String,
        /// The environment variable the key is read from.
        var: &'static str,
        /// The flag that points the provider at another server.
        flag: &'static str,
    },
    #[error("{model}: HTTP {status}: {message}")]
    Http {
        model: String,
        status: u16,
        message: String,
    },
    #[error("{model}: {message}")]
    Transport { model: String, message: String },
    #[error("{model}: the response body is larger than the limit of {limit} bytes, and was not read further: raise --max-response-bytes (max_response_bytes in rlm.toml) if the provider really sends answers that long")]
    ResponseTooLarge { model: String, limit: usize },
    #[error("{model}: malformed response: {message}")]
    Malformed { model: String, message: String },
    #[error("replay: {0}")]
    Replay(String),
    #[error("{model} returned no text and stopped at its token limit (reasoning models can spend it all on thinking): raise max_tokens")]
    Empty { model: String },
    #[error("cannot build the HTTP client: {0}")]
    Setup(String),
}

impl LlmError {
    /// A short category, for summaries of failures.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::PromptTooLarge { .. } => "prompt_too_large",
            LlmError::Budget(_) => "budget",
            LlmError::NoApiKey { .. } => "no_api_key",
            LlmError::Http { .. } => "http",
            LlmError::Transport { .. } => "transport",
            LlmError::ResponseTooLarge { .. } => "response_too_large",
            LlmError::Malformed { .. } => "malformed",
            LlmError::Empty { .. } => "empty",
            LlmError::Replay(_) => "replay",
            LlmError::Setup(_) => "setup",
        }
    }
}

/// Per-call options.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Refuse, before sending, prompts estimated above this many tokens.
    pub context_window: Option<usize>,
    /// Labels for observers (traces): recursion depth, cell, and so on.
    pub tag: CallTag,
}

/// Where in a run a call was made.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CallTag {
    /// `sub` for llm_query/llm_batch, `root` for the root model.
    pub kind: &'static str,
    /// Recursion depth of the run making the call (0 is the top run).
    pub depth: usize,
    /// The cell that made the call, if any.
    pub cell: Option<usize>,
    /// The run that made the call, for nested runs.
    pub run: Option<String>,
    /// The task the run belongs to, when many runs share a client (`rlm batch`).
    pub scope: Option<String>,
}

/// What observers learn about each finished call.
#[derive(Debug, Clone)]
pub struct CallRecord<'a> {
    pub model: &'a ModelSpec,
    pub request: &'a ChatRequest,
    pub result: &'a Result<Completion, LlmError>,
    pub latency: Duration,
    pub retries: u64,
    pub tag: &'a CallTag,
}

/// Receives a record of every call (for traces and progress displays).
pub trait CallObserver: Send + Sync {
    fn on_call(&self, record: &CallRecord<'_>);

    /// A call is about to be admitted and sent; [`CallObserver::on_call`]
    /// follows when it ends (for live displays of calls in flight).
    fn on_start(&self, _model: &ModelSpec, _request: &ChatRequest, _tag: &CallTag) {}
}

struct Inner {
    http: reqwest::Client,
    config: LlmConfig,
    limiter: Limiter,
    observers: std::sync::RwLock<Vec<Arc<dyn CallObserver>>>,
    in_flight: std::sync::atomic::AtomicUsize,
    /// Removes every configured key from all a provider sends back.
    scrubber: Scrubber,
}

/// A client for every model of a run. Clones share the connection pool,
/// the concurrency limit and the ledger, which is what makes one run's
/// budgets hold across its whole recursion tree.
#[derive(Clone)]
pub struct LlmClient {
    inner: Arc<Inner>,
    ledger: Arc<Ledger>,
    /// Where [`Provider::Replay`] models answer from. Per client rather
    /// than in `Inner`, so the tasks of a batch can each replay their own
    /// trace through one connection pool and one concurrency limit.
    replay: Option<Arc<crate::trace::ReplayBook>>,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("config", &self.inner.config)
            .finish()
    }
}

/// The HTTP client, trusting the system's CA store.
///
/// Where there is none (a scratch container, a chroot, a static binary on a
/// bare system) the platform verifier cannot start; Mozilla's roots,
/// compiled in, stand in for it so HTTPS still works. `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` point the system store elsewhere.
fn http_client(config: &LlmConfig) -> Result<reqwest::Client, LlmError> {
    let builder = || {
        reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_max_idle_per_host(config.concurrency.max(1))
            .user_agent(concat!("rlm/", env!("CARGO_PKG_VERSION")))
    };
    builder().build().or_else(|system| {
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok());
        builder().tls_certs_only(roots).build().map_err(|builtin| {
            LlmError::Setup(format!(
                "with the system's CA store: {}; with built-in roots: {}",
                error_chain(&system),
                error_chain(&builtin)
            ))
        })
    })
}

/// An error and its causes, as one line (reqwest's own `Display` says only
/// "builder error").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl LlmClient {
    /// A client with the given configuration and ledger.
    pub fn new(config: LlmConfig, ledger: Arc<Ledger>) -> Result<LlmClient, LlmError> {
        let http = http_client(&config)?;
        let limiter = Limiter::new(config.concurrency, config.requests_per_minute);
        let scrubber = Scrubber::new(
            [&config.openai_api_key, &config.anthropic_api_key]
                .into_iter()
                .flatten(),
        );
        Ok(LlmClient {
            inner: Arc::new(Inner {
                http,
                config,
                limiter,
                observers: std::sync::RwLock::new(Vec::new()),
                in_flight: std::sync::atomic::AtomicUsize::new(0),
                scrubber,
            }),
            ledger,
            replay: None,
        })
    }

    /// A client that answers [`Provider::Replay`] models from a recorded
    /// trace; other models still go over HTTP.
    pub fn with_replay(
        config: LlmConfig,
        ledger: Arc<Ledger>,
        book: Arc<crate::trace::ReplayBook>,
    ) -> Result<LlmClient, LlmError> {
        Ok(LlmClient::new(config, ledger)?.replaying(book))
    }

    /// The same client (connections, concurrency limit, pace, observers,
    /// ledger) answering [`Provider::Replay`] models from `book`.
    pub fn replaying(&self, book: Arc<crate::trace::ReplayBook>) -> LlmClient {
        LlmClient {
            replay: Some(book),
            ..self.clone()
        }
    }

    /// The same client (connections, concurrency limit, pace, observers)
    /// counting into another ledger: a batch gives each task a child of
    /// its global ledger this way.
    pub fn with_ledger(&self, ledger: Arc<Ledger>) -> LlmClient {
        LlmClient {
            inner: self.inner.clone(),
            ledger,
            replay: self.replay.clone(),
        }
    }

    /// The ledger this client counts into.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The configuration.
    pub fn config(&self) -> &LlmConfig {
        &self.inner.config
    }

    /// Calls being sent or retried right now.
    pub fn in_flight(&self) -> usize {
        self.inner
            .in_flight
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Adds an observer of every call made through this client and its clones.
    pub fn observe(&self, observer: Arc<dyn CallObserver>) {
        if let Ok(mut o) = self.inner.observers.write() {
            o.push(observer);
        }
    }

    /// Sends `request` to `model`, retrying transient failures, and records
    /// the outcome in the ledger.
    ///
    /// The ledger admits the call first, reserving its worst case
    /// ([`Ledger::admit`]); this may wait for calls in flight to settle, or
    /// fail with [`LlmError::Budget`] without sending anything. When a token
    /// or cost budget is in force and `request` sets no `max_tokens`, the
    /// call is sent with the cap admission granted (at most
    /// [`wire::DEFAULT_MAX_TOKENS`]), so its answer is bounded too.
    pub async fn complete(
        &self,
        model: &ModelSpec,
        request: &ChatRequest,
        options: &CallOptions,
    ) -> Result<Completion, LlmError> {
        if let Ok(observers) = self.inner.observers.read() {
            for o in observers.iter() {
                o.on_start(model, request, &options.tag);
            }
        }
        let started = Instant::now();
        let mut call = Counted::default();
        let result = self
            .complete_counted(model, request, options, &mut call)
            .await;
        // A replayed sub-call is counted under the model that originally answered it.
        let name = call.recorded_as.as_deref().unwrap_or(model.name.as_str());
        let retries = call.retries;
        match (&result, call.reservation.take()) {
            (Ok(c), Some(r)) => r.settle_tokens(name, c.tokens(), retries),
            (Ok(c), None) => self.ledger.record_tokens(name, c.tokens(), retries),
            // Calls refused before sending cost nothing and are not errors of the model.
            (
                Err(
                    LlmError::Budget(_)
                    | LlmError::PromptTooLarge { .. }
                    | LlmError::NoApiKey { .. },
                ),
                _,
            ) => {}
            (Err(_), Some(r)) => r.fail(name, retries),
            (Err(_), None) => self.ledger.record_failure(name, retries),
        }
        let record = CallRecord {
            model,
            request: call.sent.as_ref().unwrap_or(request),
            result: &result,
            latency: started.elapsed(),
            retries,
            tag: &options.tag,
        };
        if let Ok(observers) = self.inner.observers.read() {
            for o in observers.iter() {
                o.on_call(&record);
            }
        }
        result
    }

    /// The worst case of `request` to `model`, for admission.
    fn demand<'a>(&self, model: &'a ModelSpec, request: &ChatRequest) -> Demand<'a> {
        let output = match request.max_tokens {
            Some(n) => Output::Exactly(n.into()),
            // Anthropic's body carries the default cap whatever the budget.
            None if model.provider == Provider::Anthropic || self.ledger.bounds_output() => {
                Output::UpTo(wire::DEFAULT_MAX_TOKENS.into())
            }
            // No token or cost budget: the answer's size does not matter here.
            None => Output::Exactly(0),
        };
        Demand {
            model: &model.name,
            input_tokens: request.max_input_tokens(),
            output,
            free: model.provider == Provider::Replay,
        }
    }

    async fn complete_counted(
        &self,
        model: &ModelSpec,
        request: &ChatRequest,
        options: &CallOptions,
        call: &mut Counted,
    ) -> Result<Completion, LlmError> {
        if let Some(window) = options.context_window {
            let tokens = estimate_tokens(request.text_bytes());
            if tokens > window {
                return Err(LlmError::PromptTooLarge {
                    model: model.to_string(),
                    tokens,
                    window,
                });
            }
        }
        let demand = self.demand(model, request);
        if model.provider == Provider::Replay {
            call.reservation = Some(self.ledger.admit(&demand).await?);
            return self.replayed(request, options, &mut call.recorded_as);
        }
        let (url, key) = self.inner.config.endpoint(model)?;
        let reservation = self.ledger.admit(&demand).await?;
        if request.max_tokens.is_none() && matches!(demand.output, Output::UpTo(_)) {
            let cap = u32::try_from(reservation.output_tokens()).unwrap_or(u32::MAX);
            call.sent = Some(ChatRequest {
                max_tokens: Some(cap),
                ..request.clone()
            });
        }
        call.reservation = Some(reservation);
        let request = call.sent.as_ref().unwrap_or(request);
        let retries = &mut call.retries;
        let body = wire::request_body(
            model.provider,
            &model.name,
            request,
            self.inner.config.openai_base_url.starts_with(OPENAI_URL),
        );
        let policy = &self.inner.config.retry;
        let mut attempt = 0;
        loop {
            let permit = self.inner.limiter.acquire().await;
            let _counted = InFlight::new(&self.inner.in_flight);
            let outcome = self.attempt(model, &url, key, &body).await;
            drop(permit);
            match outcome {
                Attempt::Done(result) => return result,
                Attempt::Retry { error, after } => {
                    if attempt >= policy.max_retries {
                        return Err(error);
                    }
                    // Wait without holding a slot, so other calls proceed.
                    tokio::time::sleep(policy.delay(attempt, after)).await;
                    attempt += 1;
                    *retries += 1;
                }
            }
        }
    }

    fn replayed(
        &self,
        request: &ChatRequest,
        options: &CallOptions,
        recorded_as: &mut Option<String>,
    ) -> Result<Completion, LlmError> {
        let book = self
            .replay
            .as_ref()
            .ok_or_else(|| LlmError::Replay("no trace loaded for a replay model".into()))?;
        if options.tag.kind == "root" {
            let run = options.tag.run.as_deref().unwrap_or("0");
            let turn = book.next_turn(run).ok_or_else(|| {
                LlmError::Replay(format!(
                    "the trace has no more root responses for run {run}"
                ))
            })?;
            return Ok(Completion {
                text: turn.text,
                finish: FinishReason::Stop,
                input_tokens: turn.input_tokens,
                output_tokens: turn.output_tokens,
                ..Completion::default()
            });
        }
        let prompt = request.messages.last().map_or("", |m| m.content.as_str());
        let recorded = book
            .answer(prompt)
            .ok_or_else(|| LlmError::Replay("the trace has no recorded answer for this prompt (did the code or the context change?)".into()))?;
        *recorded_as = Some(ModelSpec::parse(&recorded.model).name);
        match recorded.answer {
            Ok(text) => Ok(Completion {
                text,
                finish: FinishReason::Stop,
                input_tokens: recorded.input_tokens,
                output_tokens: recorded.output_tokens,
                ..Completion::default()
            }),
            Err(e) => Err(LlmError::Replay(format!("recorded error: {e}"))),
        }
    }

    /// One attempt, bounded by the request timeout from sending to the last
    /// byte of the body (reqwest's own timeout covers that too; this makes
    /// it hold whatever the HTTP client does).
    async fn attempt(
        &self,
        model: &ModelSpec,
        url: &str,
        key: Option<&ApiKey>,
        body: &serde_json::Value,
    ) -> Attempt {
        let timeout = self.inner.config.request_timeout;
        match tokio::time::timeout(timeout, self.attempt_unbounded(model, url, key, body)).await {
            Ok(attempt) => attempt,
            Err(_) => Attempt::Retry {
                error: LlmError::Transport {
                    model: model.to_string(),
                    message: format!(
                        "timed out waiting for the server (the whole response took more than {}s)",
                        timeout.as_secs_f64()
                    ),
                },
                after: None,
            },
        }
    }

    async fn attempt_unbounded(
        &self,
        model: &ModelSpec,
        url: &str,
        key: Option<&ApiKey>,
        body: &serde_json::Value,
    ) -> Attempt {
        let name = model.to_string();
        // Everything a provider sends back is scrubbed, answers included:
        // a server can echo the Authorization header in a 200 as well.
        let scrub = |text: String| self.inner.scrubber.scrub(&text);
        let mut req = self.inner.http.post(url).json(body);
        req = match (model.provider, key) {
            (Provider::OpenAi, Some(k)) => req.bearer_auth(k.expose()),
            (Provider::Anthropic, Some(k)) => req.header("x-api-key", k.expose()),
            (Provider::Replay, _) | (_, None) => req,
        };
        if model.provider == Provider::Anthropic {
            req = req.header("anthropic-version", "2023-06-01");
        }
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    error: LlmError::Transport {
                        model: name,
                        message: scrub(describe_transport(&e)),
                    },
                    after: None,
                }
            }
        };
        let status = response.status().as_u16();
        let after = retry_after(response.headers());
        let success = (200..300).contains(&status);
        let limit = self.inner.config.max_response_bytes;
        let bytes = match read_body(response, limit).await {
            Ok(Body::Whole(b)) => b,
            // An error body is only quoted: its start says enough.
            Ok(Body::Cut(b)) if !success => b,
            Ok(Body::Cut(_)) => {
                return Attempt::Done(Err(LlmError::ResponseTooLarge { model: name, limit }))
            }
            Err(e) => {
                return Attempt::Retry {
                    error: LlmError::Transport {
                        model: name,
                        message: scrub(describe_transport(&e)),
                    },
                    after,
                }
            }
        };
        if !success {
            let error = LlmError::Http {
                model: name,
                status,
                message: scrub(wire::error_text(&bytes)),
            };
            return if retryable_status(status) {
                Attempt::Retry { error, after }
            } else {
                Attempt::Done(Err(error))
            };
        }
        match wire::parse_response(model.provider, &bytes) {
            Ok(c) if c.text.is_empty() && c.finish == FinishReason::Length => {
                Attempt::Done(Err(LlmError::Empty { model: name }))
            }
            Ok(c) => Attempt::Done(Ok(Completion {
                text: scrub(c.text),
                finish: match c.finish {
                    FinishReason::Other(reason) => FinishReason::Other(scrub(reason)),
                    finish => finish,
                },
                ..c
            })),
            // A 200 with garbage is usually a proxy hiccup: worth another try.
            Err(ParseFailure::Malformed(m)) => Attempt::Retry {
                error: LlmError::Malformed {
                    model: name,
                    message: scrub(m),
                },
                after: None,
            },
            Err(ParseFailure::ProviderError(m)) => Attempt::Retry {
                error: LlmError::Http {
                    model: name,
                    status,
                    message: scrub(m),
                },
                after,
            },
        }
    }
}

/// What one call leaves behind besides its result, for the ledger and observers.
#[derive(Default)]
struct Counted {
    retries: u64,
    /// The model a replayed call was recorded under.
    recorded_as: Option<String>,
    /// The call's worst case, held from admission until it settles.
    reservation: Option<Reservation>,
    /// The request as sent, when admission gave it a `max_tokens`.
    sent: Option<ChatRequest>,
}

/// A response body, whole or cut at the size limit.
enum Body {
    Whole(Vec<u8>),
    Cut(Vec<u8>),
}

/// Reads `response`'s body chunk by chunk, stopping at `limit` bytes: a
/// `Content-Length` over the limit is refused before reading anything, and
/// an endless body is cut once the limit has arrived.
async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Body, reqwest::Error> {
    let declared = response.content_length().unwrap_or(0);
    if declared > limit as u64 {
        return Ok(Body::Cut(Vec::new()));
    }
    let mut body = Vec::with_capacity(declared as usize);
    while let Some(chunk) = response.chunk().await? {
        if chunk.len() > limit - body.len() {
            let room = limit - body.len();
            body.extend_from_slice(&chunk[..room]);
            return Ok(Body::Cut(body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Body::Whole(body))
}

enum Attempt {
    Done(Result<Completion, LlmError>),
    Retry {
        error: LlmError,
        after: Option<Duration>,
    },
}

/// Counts a call as in flight for as long as it lives.
struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(counter: &'a std::sync::atomic::AtomicUsize) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A transport error in words, without the URL's query (keys never go in
/// URLs here, but proxies' might).
fn describe_transport(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out waiting for the server"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the response"
    } else if e.is_request() {
        "the request failed"
    } else {
        "transport error"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what} ({detail})")
    }
}
