//! The run-wide front of every model call: it routes each model to the
//! [`Model`] that answers it, and around each attempt keeps what a whole
//! run shares: the ledger, the concurrency limit, retries and observers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cache::ResponseCache;
use super::endpoint::LlmConfig;
use super::http::{HttpModel, HttpShared};
use super::ledger::{BudgetExceeded, Demand, Ledger, Output, Reservation};
use super::limiter::Limiter;
use super::model::{ModelSpec, Provider};
use super::provider::{Failure, Model, ModelCall};
use super::replay::Replay;
use super::wire::{self, ChatRequest, Completion};
use crate::stats::estimate_tokens;

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
    #[error("{model}: no API key: {fix}")]
    NoApiKey {
        model: String,
        /// The environment variable the key is read from.
        var: String,
        /// What to do about it: set the variable, or point the model at a
        /// server that needs none.
        fix: String,
    },
    #[error("{model}: no endpoint: {fix}")]
    NoEndpoint { model: String, fix: String },
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
            LlmError::NoEndpoint { .. } => "no_endpoint",
            LlmError::Http { .. } => "http",
            LlmError::Transport { .. } => "transport",
            LlmError::ResponseTooLarge { .. } => "response_too_large",
            LlmError::Malformed { .. } => "malformed",
            LlmError::Empty { .. } => "empty",
            LlmError::Replay(_) => "replay",
            LlmError::Setup(_) => "setup",
        }
    }

    /// Refused before anything was sent: it cost nothing and is no error
    /// of the model.
    fn refused_before_sending(&self) -> bool {
        matches!(
            self,
            LlmError::Budget(_)
                | LlmError::PromptTooLarge { .. }
                | LlmError::NoApiKey { .. }
                | LlmError::NoEndpoint { .. }
                | LlmError::Setup(_)
        )
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
    /// Answered by the response cache: nothing was sent or spent.
    pub cached: bool,
}

/// Receives a record of every call (for traces and progress displays).
pub trait CallObserver: Send + Sync {
    /// A call is starting: before the cache, the ledger or the network
    /// see it, so a call a budget then refuses starts too.
    fn on_start(&self, model: &ModelSpec, request: &ChatRequest, tag: &CallTag) {
        let _ = (model, request, tag);
    }

    fn on_call(&self, record: &CallRecord<'_>);
}

/// A model, and the wire protocol it speaks, which admission needs: an
/// Anthropic request always carries a `max_tokens`, and a replay costs
/// nothing.
#[derive(Clone)]
struct Route {
    /// What answers: `bare` behind the response cache, if there is one.
    model: Arc<dyn Model>,
    /// The model itself, without the cache.
    bare: Arc<dyn Model>,
    provider: Provider,
}

struct Inner {
    config: LlmConfig,
    http: Arc<HttpShared>,
    cache: Option<Arc<ResponseCache>>,
    limiter: Limiter,
    observers: std::sync::RwLock<Vec<Arc<dyn CallObserver>>>,
    in_flight: std::sync::atomic::AtomicUsize,
    /// The HTTP models built so far, one per model called.
    routes: Mutex<HashMap<ModelSpec, Route>>,
}

/// The front of every model call of a run. It routes each [`ModelSpec`]
/// to the [`Model`] that answers it (an HTTP provider at its endpoint, a
/// replayed trace, or one registered with [`LlmClient::with_model`]), and
/// around each attempt keeps what the run shares: the ledger's admission
/// and settlement, the concurrency limit and pace, retries and observers.
///
/// Clones share the connection pool, the concurrency limit and the
/// ledger, which is what makes one run's budgets hold across its whole
/// recursion tree.
#[derive(Clone)]
pub struct LlmClient {
    inner: Arc<Inner>,
    ledger: Arc<Ledger>,
    /// What [`Provider::Replay`] models answer from. Per client rather
    /// than in `Inner`, so the tasks of a batch can each replay their own
    /// trace through one connection pool and one concurrency limit.
    replay: Option<Arc<dyn Model>>,
    /// Models registered by name ([`LlmClient::with_model`]).
    models: Arc<HashMap<String, Registered>>,
}

/// A model registered with [`LlmClient::with_model`].
#[derive(Clone)]
struct Registered {
    /// As it answers: behind the response cache, if there is one.
    answering: Arc<dyn Model>,
    /// As it was given.
    bare: Arc<dyn Model>,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut models: Vec<&String> = self.models.keys().collect();
        models.sort();
        f.debug_struct("LlmClient")
            .field("config", &self.inner.config)
            .field("registered_models", &models)
            .finish()
    }
}

impl LlmClient {
    /// A client with the given configuration and ledger.
    pub fn new(config: LlmConfig, ledger: Arc<Ledger>) -> Result<LlmClient, LlmError> {
        let http = Arc::new(HttpShared::new(&config)?);
        let limiter = Limiter::new(config.concurrency, config.requests_per_minute);
        let cache = match &config.cache {
            Some(c) if c.mode != super::CacheMode::Off => {
                // An entry holds one answer: far less than this.
                let max_entry = (config.max_response_bytes as u64).saturating_mul(8);
                let cache = ResponseCache::open(c, max_entry).map_err(|e| {
                    LlmError::Setup(format!(
                        "cannot create the response cache {}: {e}",
                        c.dir.display()
                    ))
                })?;
                Some(Arc::new(cache))
            }
            _ => None,
        };
        Ok(LlmClient {
            inner: Arc::new(Inner {
                config,
                http,
                cache,
                limiter,
                observers: std::sync::RwLock::new(Vec::new()),
                in_flight: std::sync::atomic::AtomicUsize::new(0),
                routes: Mutex::new(HashMap::new()),
            }),
            ledger,
            replay: None,
            models: Arc::new(HashMap::new()),
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
            replay: Some(Arc::new(Replay::new(book))),
            ..self.clone()
        }
    }

    /// The same client (connections, concurrency limit, pace, observers)
    /// counting into another ledger: a batch gives each task a child of
    /// its global ledger this way.
    pub fn with_ledger(&self, ledger: Arc<Ledger>) -> LlmClient {
        LlmClient {
            ledger,
            ..self.clone()
        }
    }

    /// The same client, with calls to the model named `name` (as
    /// [`ModelSpec::parse`] reads it: `my-model`, `anthropic:x`) answered
    /// by `model`: an embedder's own stack, a test double, or a built-in
    /// model wrapped ([`LlmClient::model`], [`Recording`](super::Recording)).
    /// The call still goes through this client's ledger, limits, retries
    /// and observers, and through its response cache when it has one.
    /// `[models."NAME"]` defaults (`max_tokens`, `temperature`) apply to it
    /// too.
    pub fn with_model(&self, name: &str, model: Arc<dyn Model>) -> LlmClient {
        let answering = match &self.inner.cache {
            Some(cache) => cache.wrap(model.clone()),
            None => model.clone(),
        };
        let mut models = (*self.models).clone();
        let registered = Registered {
            answering,
            bare: model,
        };
        models.insert(ModelSpec::parse(name).to_string(), registered);
        LlmClient {
            models: Arc::new(models),
            ..self.clone()
        }
    }

    /// The model that answers calls to `spec`, without the client's
    /// response cache: to wrap it ([`Recording`](super::Recording)) and
    /// register the wrapper with [`LlmClient::with_model`], which puts the
    /// cache back in front of it.
    pub fn model(&self, spec: &ModelSpec) -> Result<Arc<dyn Model>, LlmError> {
        self.route(spec).map(|r| r.bare)
    }

    /// The ledger this client counts into.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The configuration.
    pub fn config(&self) -> &LlmConfig {
        &self.inner.config
    }

    /// The response cache, when one is configured (and not `off`).
    pub fn cache(&self) -> Option<&Arc<ResponseCache>> {
        self.inner.cache.as_ref()
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
    /// A stored answer ([`Model::stored`], a response cache's hit) is
    /// served first: it is not admitted, costs nothing and counts as a
    /// cache hit, even when a budget is spent. Otherwise the ledger admits
    /// the call, reserving its worst case ([`Ledger::admit`]); this may
    /// wait for calls in flight to settle, or fail with
    /// [`LlmError::Budget`] without sending anything. When a token or cost
    /// budget is in force and `request` sets no `max_tokens`, the call is
    /// sent with the cap admission granted (at most
    /// [`wire::DEFAULT_MAX_TOKENS`]), so its answer is bounded too.
    pub async fn complete(
        &self,
        model: &ModelSpec,
        request: &ChatRequest,
        options: &CallOptions,
    ) -> Result<Completion, LlmError> {
        let started = Instant::now();
        if let Ok(observers) = self.inner.observers.read() {
            for o in observers.iter() {
                o.on_start(model, request, &options.tag);
            }
        }
        let mut call = Counted::default();
        let result = self
            .complete_counted(model, request, options, &mut call)
            .await;
        // A replayed sub-call is counted under the model that originally answered it.
        let name = call.counted_as.as_deref().unwrap_or(model.name.as_str());
        let retries = call.retries;
        match (&result, call.reservation.take()) {
            (Ok(_), _) if call.cached => self.ledger.record_cache_hit(name),
            (Ok(c), Some(r)) => r.settle_tokens(name, c.tokens(), retries),
            (Ok(c), None) => self.ledger.record_tokens(name, c.tokens(), retries),
            (Err(e), _) if e.refused_before_sending() => {}
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
            cached: call.cached,
        };
        if let Ok(observers) = self.inner.observers.read() {
            for o in observers.iter() {
                o.on_call(&record);
            }
        }
        result
    }

    /// The model that answers `model`, and its protocol.
    fn route(&self, model: &ModelSpec) -> Result<Route, LlmError> {
        if model.provider == Provider::Replay {
            let replay = self
                .replay
                .clone()
                .ok_or_else(|| LlmError::Replay("no trace loaded for a replay model".into()))?;
            return Ok(Route {
                model: replay.clone(),
                bare: replay,
                provider: Provider::Replay,
            });
        }
        if let Some(registered) = self.models.get(&model.to_string()) {
            return Ok(Route {
                model: registered.answering.clone(),
                bare: registered.bare.clone(),
                provider: self.inner.config.provider(model),
            });
        }
        let mut routes = self.inner.routes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(route) = routes.get(model) {
            return Ok(route.clone());
        }
        let endpoint = self.inner.config.endpoint(model)?;
        let provider = endpoint.provider;
        let http: Arc<dyn Model> = Arc::new(HttpModel::new(self.inner.http.clone(), endpoint)?);
        let route = Route {
            model: match &self.inner.cache {
                Some(cache) => cache.wrap(http.clone()),
                None => http.clone(),
            },
            bare: http,
            provider,
        };
        routes.insert(model.clone(), route.clone());
        Ok(route)
    }

    /// `request` with the defaults of `model`'s `[models."NAME"]` table
    /// filled in, when it has any that the request does not set.
    fn with_defaults(&self, model: &ModelSpec, request: &ChatRequest) -> Option<ChatRequest> {
        let table = self.inner.config.model_endpoint(model)?;
        let max_tokens = request.max_tokens.or(table.max_tokens);
        let temperature = request.temperature.or(table.temperature);
        (max_tokens != request.max_tokens || temperature != request.temperature).then(|| {
            ChatRequest {
                max_tokens,
                temperature,
                ..request.clone()
            }
        })
    }

    /// The output `request` asks for, for admission.
    fn output(&self, route: &Route, request: &ChatRequest) -> Output {
        match request.max_tokens {
            Some(n) => Output::Exactly(n.into()),
            // Anthropic's body carries the default cap whatever the budget.
            None if route.provider == Provider::Anthropic || self.ledger.bounds_output() => {
                Output::UpTo(wire::DEFAULT_MAX_TOKENS.into())
            }
            // No token or cost budget: the answer's size does not matter here.
            None => Output::Exactly(0),
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
        let route = self.route(model)?;
        let defaulted = self.with_defaults(model, request);
        let asked = defaulted.as_ref().unwrap_or(request);
        let output = self.output(&route, asked);
        // The request as it is sent when admission grants the default cap:
        // what a stored answer was stored under.
        let nominal = match output {
            Output::UpTo(cap) if asked.max_tokens.is_none() => Some(ChatRequest {
                max_tokens: Some(u32::try_from(cap).unwrap_or(u32::MAX)),
                ..asked.clone()
            }),
            _ => None,
        };
        let lookup = ModelCall {
            model,
            request: nominal.as_ref().unwrap_or(asked),
            tag: &options.tag,
        };
        if let Some(hit) = route.model.stored(lookup).await {
            call.cached = true;
            call.sent = nominal.or(defaulted);
            return Ok(hit);
        }
        let demand = Demand {
            model: &model.name,
            input_tokens: asked.max_input_tokens(),
            output,
            free: route.provider == Provider::Replay,
        };
        let reservation = self.ledger.admit(&demand).await?;
        let granted = u32::try_from(reservation.output_tokens()).unwrap_or(u32::MAX);
        call.reservation = Some(reservation);
        call.sent = match nominal {
            Some(n) if n.max_tokens == Some(granted) => Some(n),
            Some(n) => Some(ChatRequest {
                max_tokens: Some(granted),
                ..n
            }),
            None => defaulted,
        };
        let sent = ModelCall {
            model,
            request: call.sent.as_ref().unwrap_or(request),
            tag: &options.tag,
        };
        let (result, retries, counted_as) = self.attempts(&route, sent).await;
        call.retries = retries;
        call.counted_as = counted_as;
        result
    }

    /// Attempts `call` until it succeeds, fails for good or runs out of
    /// retries: each under the concurrency limit (a replay, which sends
    /// nothing, is not) and the request timeout, with backoff between them,
    /// during which no slot is held.
    async fn attempts(
        &self,
        route: &Route,
        call: ModelCall<'_>,
    ) -> (Result<Completion, LlmError>, u64, Option<String>) {
        let config = &self.inner.config;
        let local = route.provider == Provider::Replay;
        let mut retries = 0;
        loop {
            let permit = if local {
                None
            } else {
                Some(self.inner.limiter.acquire().await)
            };
            let counted = (!local).then(|| InFlight::new(&self.inner.in_flight));
            let outcome =
                match tokio::time::timeout(config.request_timeout, route.model.complete(call))
                    .await
                {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Failure::retryable(
                        LlmError::Transport {
                            model: call.model.to_string(),
                            message: format!(
                                "timed out waiting for the server (the whole response took more than {}s)",
                                config.request_timeout.as_secs_f64()
                            ),
                        },
                        None,
                    )),
                };
            drop((permit, counted));
            match outcome {
                Ok(response) => return (Ok(response.completion), retries, response.counted_as),
                Err(f) if !f.retryable || retries >= u64::from(config.retry.max_retries) => {
                    return (Err(f.error), retries, f.counted_as)
                }
                Err(f) => {
                    // Wait without holding a slot, so other calls proceed.
                    let attempt = u32::try_from(retries).unwrap_or(u32::MAX);
                    tokio::time::sleep(config.retry.delay(attempt, f.retry_after)).await;
                    retries += 1;
                }
            }
        }
    }
}

/// What one call leaves behind besides its result, for the ledger and observers.
#[derive(Default)]
struct Counted {
    retries: u64,
    /// The model the call counts under, when not the one asked.
    counted_as: Option<String>,
    /// The call's worst case, held from admission until it settles.
    reservation: Option<Reservation>,
    /// The request as sent, when defaults or admission changed it.
    sent: Option<ChatRequest>,
    /// Answered by [`Model::stored`]: nothing sent or spent.
    cached: bool,
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
