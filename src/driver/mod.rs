//! The recursive loop: a root model drives Rhai cells to a submitted answer.
//!
//! * [`Rlm`] (built with [`Rlm::builder`]) holds what a run needs: the root
//!   and sub-models, one [`LlmClient`] (so one ledger and one concurrency
//!   limit for the whole recursion tree), the limits and an optional trace.
//! * [`Rlm::complete`] (async) and [`Rlm::run`] (blocking) answer a query
//!   about a [`Context`] and return a [`RunResult`], the same object
//!   `rlm run --output json` prints.
//! * Each turn: the root model's response is searched for code blocks
//!   ([`extract_blocks`]); each runs as a cell in a persistent
//!   [`Session`](crate::dsl::Session); the capped outputs go back as the
//!   next user message. `submit(value)` ends the run. Scripts can start
//!   child runs with `rlm_query`/`rlm_batch`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use rlm::{driver::Rlm, Context};
//! let rlm = Rlm::builder().model("gpt-5").sub_model("gpt-5-mini").build()?;
//! let ctx = Context::open(&["./corpus"])?;
//! let result = rlm.complete("Which vendors missed a delivery in 2025?", &ctx).await;
//! println!("{} ({:?})", result.answer_text.unwrap_or_default(), result.status);
//! # Ok(()) }
//! ```

mod budget;
mod fences;
mod prompt;
mod recursion;
mod run;
mod tree;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Settings;
use crate::dsl::Limits;
use crate::events::{RunSink, Sinks};
use crate::llm::CallObserver;
use crate::llm::{
    Budgets, Ledger, LlmClient, LlmConfig, LlmError, ModelSpec, ModelUsage, PriceTable, Provider,
    UsageTotals,
};
use crate::schema::AnswerSchema;
use crate::trace::{ReplayBook, TraceWriter};
use crate::Context;

/// Schema-failing submits a run allows before it ends `invalid_answer`.
pub const DEFAULT_MAX_INVALID_ANSWERS: usize = 3;

pub use fences::{extract_blocks, Blocks};
pub use prompt::{
    context_summary, render as render_prompt, PromptValues, QUICK_REFERENCE, SYSTEM_TEMPLATE,
};
pub use recursion::without_root_model;
pub(crate) use tree::task_of;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// A cell called `submit`.
    Submitted,
    /// The turn limit was reached; the answer, if any, is the model's prose.
    MaxIterations,
    /// The budget of model calls ran out. Like the token and cost
    /// budgets, it ends the run once it refused a call anywhere in the
    /// tree, after the root's final turn: an answer that turn gives is
    /// reported with this status, never as `Submitted`.
    MaxLlmCalls,
    /// The token budget refused a call.
    MaxTokens,
    /// The cost budget refused a call (or a model with no known price,
    /// which a cost budget cannot bound).
    MaxCost,
    /// The run's time limit passed.
    Timeout,
    /// The run was interrupted (Ctrl-C, SIGTERM).
    Interrupted,
    /// Every value passed to `submit` failed the run's answer schema, as
    /// many times as the run allows; the answer is the last value tried.
    InvalidAnswer,
    /// The root model could not be reached or kept failing, or the
    /// context's files changed on disk during the run.
    Failed,
}

impl RunStatus {
    /// The status of a run that `budget` stopped.
    pub fn from_budget(budget: &crate::llm::BudgetExceeded) -> RunStatus {
        use crate::llm::BudgetExceeded;
        match budget {
            BudgetExceeded::Calls(_) => RunStatus::MaxLlmCalls,
            BudgetExceeded::Tokens { .. } => RunStatus::MaxTokens,
            BudgetExceeded::Cost { .. } | BudgetExceeded::Unpriced { .. } => RunStatus::MaxCost,
        }
    }

    /// The process exit code `rlm run` uses for this status.
    ///
    /// | status | code |
    /// |---|---|
    /// | submitted | 0 |
    /// | failed | 1 |
    /// | (bad arguments or input) | 2 |
    /// | max_iterations | 3 |
    /// | max_llm_calls | 4 |
    /// | max_tokens | 5 |
    /// | max_cost | 6 |
    /// | timeout | 7 |
    /// | invalid_answer | 8 |
    /// | interrupted | 130 |
    pub fn exit_code(self) -> u8 {
        match self {
            RunStatus::InvalidAnswer => 8,
            RunStatus::Submitted => 0,
            RunStatus::Failed => 1,
            RunStatus::MaxIterations => 3,
            RunStatus::MaxLlmCalls => 4,
            RunStatus::MaxTokens => 5,
            RunStatus::MaxCost => 6,
            RunStatus::Timeout => 7,
            RunStatus::Interrupted => 130,
        }
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    /// A value passed to `submit`.
    Submitted,
    /// The model's prose on its final turn, when it did not submit.
    Prose,
}

/// The outcome of a run: what `rlm run --output json` prints.
///
/// In JSON, a cost that is not known is `null`, not 0: `cost_usd` and
/// `totals.cost_usd` when some model called has no known price, and that
/// model's `usage` entry (see [`RunResult::cost`]).
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The answer as JSON (strings stay strings), if there is one.
    pub answer: Option<serde_json::Value>,
    /// The answer as text.
    pub answer_text: Option<String>,
    pub answer_kind: Option<AnswerKind>,
    /// What the cell that called `submit` printed before it did (capped as
    /// the model's cell outputs are); `None` when no cell submitted or it
    /// printed nothing. The model never sees it, since the run ends there,
    /// so this is the only place it is kept besides the trace.
    pub final_output: Option<String>,
    pub status: RunStatus,
    /// Root turns taken.
    pub iterations: usize,
    /// Usage per model, for the whole recursion tree.
    pub usage: std::collections::BTreeMap<String, ModelUsage>,
    pub totals: UsageTotals,
    /// The cost of the calls to models with a known price; 0 for the
    /// others. [`RunResult::cost`] says whether that is the whole cost.
    pub cost_usd: f64,
    pub wall_s: f64,
    /// What went wrong, for `failed` and other early stops.
    pub error: Option<String>,
    /// Set when the trace could not be fully written.
    pub trace_error: Option<String>,
}

impl RunResult {
    /// The run's cost in USD, or `None` when some model it called has no
    /// known price (so the true cost is unknown, not 0).
    pub fn cost(&self) -> Option<f64> {
        crate::llm::known_cost(&self.usage)
    }
}

impl Serialize for RunResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The JSON form, where unknown costs are null.
        #[derive(Serialize)]
        struct Json<'a> {
            answer: &'a Option<serde_json::Value>,
            answer_text: &'a Option<String>,
            answer_kind: &'a Option<AnswerKind>,
            final_output: &'a Option<String>,
            status: RunStatus,
            iterations: usize,
            usage: serde_json::Value,
            totals: serde_json::Value,
            cost_usd: Option<f64>,
            wall_s: f64,
            error: &'a Option<String>,
            trace_error: &'a Option<String>,
        }
        let cost = self.cost();
        Json {
            answer: &self.answer,
            answer_text: &self.answer_text,
            answer_kind: &self.answer_kind,
            final_output: &self.final_output,
            status: self.status,
            iterations: self.iterations,
            usage: crate::llm::usage_json(&self.usage),
            totals: crate::llm::totals_json(&self.totals, cost),
            cost_usd: cost,
            wall_s: self.wall_s,
            error: &self.error,
            trace_error: &self.trace_error,
        }
        .serialize(serializer)
    }
}

/// Settings of the loop itself.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub model: ModelSpec,
    /// `None` uses the root model.
    pub sub_model: Option<ModelSpec>,
    pub max_iterations: usize,
    /// Deepest recursion: depth 0 is the top run; at `max_depth - 1`,
    /// `rlm_query` falls back to `llm_query`.
    pub max_depth: usize,
    /// Wall-clock limit of the whole run.
    pub timeout: Option<Duration>,
    pub limits: Limits,
    pub sub_context_tokens: usize,
    /// Root model `max_tokens` per turn (`None`: the provider's default).
    pub root_max_tokens: Option<u32>,
    /// A system prompt template replacing the built-in one.
    pub system_template: Option<String>,
    /// The schema a submitted answer must match; shown to the root model
    /// and checked on every `submit` of the top run.
    pub answer_schema: Option<Arc<AnswerSchema>>,
    /// Submits that fail the schema before the run ends `invalid_answer`.
    pub max_invalid_answers: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            model: ModelSpec::parse("gpt-5"),
            sub_model: None,
            max_iterations: 30,
            max_depth: 2,
            timeout: None,
            limits: Limits::default(),
            sub_context_tokens: crate::config::DEFAULT_SUB_CONTEXT_TOKENS,
            root_max_tokens: None,
            system_template: None,
            answer_schema: None,
            max_invalid_answers: DEFAULT_MAX_INVALID_ANSWERS,
        }
    }
}

/// Errors building an [`Rlm`].
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Replay(#[from] crate::trace::ReplayError),
    // The OS error is in the message, so it is not also a `source`.
    #[error("cannot create trace file {path}: {cause}")]
    Trace { path: String, cause: std::io::Error },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// A configured runtime for recursive runs.
///
/// It holds only what its runs share (settings, client, runtime, sinks,
/// the interrupt); each call of [`Rlm::complete`] or [`Rlm::run`] is a top
/// run with its own clock, budget refusals and serial number
/// ([`RunEvent::top`](crate::events::RunEvent::top)), so one `Rlm` can
/// answer several queries at once.
pub struct Rlm {
    shared: Arc<tree::Shared>,
    /// Turns sub-call records into events for the sinks.
    calls: Arc<tree::CallEvents>,
    /// Owned when the builder was not given a runtime handle.
    _runtime: Option<tokio::runtime::Runtime>,
}

/// Builds an [`Rlm`].
#[derive(Default)]
pub struct RlmBuilder {
    config: RunConfig,
    llm: LlmConfig,
    prices: PriceTable,
    budgets: Budgets,
    trace: Option<std::path::PathBuf>,
    sinks: Sinks,
    replay: Option<Arc<ReplayBook>>,
    handle: Option<tokio::runtime::Handle>,
    /// A client shared with other runs, and this run's scope on it.
    shared_client: Option<(LlmClient, String)>,
    /// Script functions the embedder provides, in every session of a run.
    functions: crate::dsl::HostFunctions,
    /// The embedder's own models, by the name runs call them with.
    custom_models: Vec<(String, Arc<dyn crate::llm::Model>)>,
}

impl Rlm {
    /// A builder with the defaults: GPT-5, 30 iterations, depth 2.
    pub fn builder() -> RlmBuilder {
        RlmBuilder::default()
    }

    /// Answers `query` about `context`, on a blocking thread of the runtime.
    pub async fn complete(&self, query: &str, context: &Context) -> RunResult {
        let started = Instant::now();
        let tree = run::begin_top(&self.shared, started);
        let (query, context) = (query.to_string(), context.clone());
        let top = tree.clone();
        match tokio::task::spawn_blocking(move || run::run_top(&top, &query, &context, started))
            .await
        {
            Ok(r) => r,
            Err(e) => run::failed_result(&tree, format!("the run panicked: {e}"), started),
        }
    }

    /// Answers `query` about `context`, blocking the calling thread. Must
    /// not be called from inside an async task; use [`Rlm::complete`] there.
    pub fn run(&self, query: &str, context: &Context) -> RunResult {
        let started = Instant::now();
        run::run_top(
            &run::begin_top(&self.shared, started),
            query,
            context,
            started,
        )
    }

    /// Asks the run to stop: running cells and calls are abandoned, the
    /// trace gets its final event, and the result says `interrupted`.
    pub fn interrupt(&self) {
        self.shared.cancelled.store(true, Ordering::SeqCst);
    }

    /// A handle that interrupts this run from another thread or a signal handler.
    pub fn interrupter(&self) -> Arc<AtomicBool> {
        self.shared.cancelled.clone()
    }

    /// The client shared by every call of the run.
    pub fn client(&self) -> &LlmClient {
        &self.shared.client
    }

    /// The loop's settings.
    pub fn config(&self) -> &RunConfig {
        &self.shared.config
    }

    /// The observer that turns this `Rlm`'s sub-calls into events for its
    /// sinks. It is registered on the client the builder makes; with a
    /// [`shared_client`](RlmBuilder::shared_client), route the shared
    /// client's calls to it with a [`TraceRouter`](crate::trace::TraceRouter).
    pub fn call_events(&self) -> Arc<dyn CallObserver> {
        self.calls.clone()
    }
}

impl RlmBuilder {
    /// The root model, e.g. `gpt-5`, `anthropic:claude-sonnet-4-5`.
    pub fn model(mut self, model: &str) -> Self {
        self.config.model = ModelSpec::parse(model);
        self
    }

    /// The model `llm_query` calls (default: the root model).
    pub fn sub_model(mut self, model: &str) -> Self {
        self.config.sub_model = Some(ModelSpec::parse(model));
        self
    }

    /// The loop settings, all at once.
    pub fn config(mut self, config: RunConfig) -> Self {
        self.config = config;
        self
    }

    /// Provider endpoints, keys, timeouts, retries and concurrency.
    pub fn llm_config(mut self, llm: LlmConfig) -> Self {
        self.llm = llm;
        self
    }

    /// Budgets for the whole run, children included.
    pub fn budgets(mut self, budgets: Budgets) -> Self {
        self.budgets = budgets;
        self
    }

    /// Model prices for the ledger.
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// Providers, budgets and prices from resolved [`Settings`], with the
    /// models when they are set.
    pub fn settings(mut self, s: &Settings) -> Self {
        if let Some(m) = &s.model {
            self.config.model = ModelSpec::parse(m);
        }
        if let Some(m) = &s.sub_model {
            self.config.sub_model = Some(ModelSpec::parse(m));
        }
        self.config.sub_context_tokens = s.sub_context_tokens;
        self.llm = s.llm.clone();
        self.budgets = s.budgets.clone();
        self.prices = s.prices.clone();
        self
    }

    /// Writes a JSONL trace of the run to `path`: adds a
    /// [`TraceWriter`] sink, created (truncated) by [`RlmBuilder::build`].
    pub fn trace(mut self, path: impl AsRef<Path>) -> Self {
        self.trace = Some(path.as_ref().to_path_buf());
        self
    }

    /// Sends the events of every run to `sink`, after the sinks added
    /// before it (the trace of [`RlmBuilder::trace`] comes first).
    pub fn sink(mut self, sink: Arc<dyn RunSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Drives the run from a recorded trace: root responses come from it,
    /// and so do sub-call answers unless a sub-model is set.
    pub fn replay(self, path: impl AsRef<Path>) -> Result<Self, BuildError> {
        Ok(self.replay_book(Arc::new(ReplayBook::load(path.as_ref())?)))
    }

    /// [`RlmBuilder::replay`] from a trace already loaded; with a
    /// [`shared_client`](RlmBuilder::shared_client), the shared client
    /// replays from it for this run alone.
    pub fn replay_book(mut self, book: Arc<ReplayBook>) -> Self {
        let name = book
            .recorded_model
            .clone()
            .unwrap_or_else(|| "replay".into());
        self.config.model = ModelSpec {
            provider: Provider::Replay,
            name,
        };
        self.replay = Some(book);
        self
    }

    /// Uses `client` (shared with other runs: its connections, concurrency
    /// limit and observers) instead of building one; `scope` tags this run's
    /// calls. Nothing is registered on the shared client: route its
    /// sub-calls to this run's sinks with a
    /// [`TraceRouter`](crate::trace::TraceRouter) and [`Rlm::call_events`].
    pub fn shared_client(mut self, client: LlmClient, scope: &str) -> Self {
        self.shared_client = Some((client, scope.to_string()));
        self
    }

    /// Adds a script function of the embedding program (see
    /// [`HostFunctions`](crate::dsl::HostFunctions)) to every session the
    /// runs build, children's included, and to the model's quick reference.
    /// Refused when its name is not usable or is already taken.
    pub fn function(
        mut self,
        function: crate::dsl::HostFunction,
    ) -> Result<Self, crate::dsl::HostFunctionError> {
        self.functions.add(function)?;
        Ok(self)
    }

    /// Sets every host function at once, replacing any added before.
    pub fn functions(mut self, functions: crate::dsl::HostFunctions) -> Self {
        self.functions = functions;
        self
    }

    /// Answers calls to the model named `name` (as `.model(..)` and
    /// `.sub_model(..)` name it) with the embedder's own `model`, through
    /// the run's ledger, limits, retries, response cache and event sinks
    /// like any built-in provider ([`LlmClient::with_model`]).
    pub fn custom_model(mut self, name: &str, model: Arc<dyn crate::llm::Model>) -> Self {
        self.custom_models.push((name.to_string(), model));
        self
    }

    /// Runs calls on an existing tokio runtime instead of starting one.
    pub fn runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.handle = Some(handle);
        self
    }

    pub fn build(mut self) -> Result<Rlm, BuildError> {
        let scope = self.shared_client.as_ref().map(|(_, s)| s.clone());
        let client = match (self.shared_client.take(), &self.replay) {
            (Some((client, _)), Some(book)) => client.replaying(book.clone()),
            (Some((client, _)), None) => client,
            (None, Some(book)) => LlmClient::with_replay(
                self.llm,
                Arc::new(Ledger::new(self.prices, self.budgets)),
                book.clone(),
            )?,
            (None, None) => {
                LlmClient::new(self.llm, Arc::new(Ledger::new(self.prices, self.budgets)))?
            }
        };
        let client = std::mem::take(&mut self.custom_models)
            .into_iter()
            .fold(client, |client, (name, model)| {
                client.with_model(&name, model)
            });
        if self.replay.is_some() && self.config.sub_model.is_none() {
            self.config.sub_model = Some(self.config.model.clone());
        }
        let mut sinks = Sinks::default();
        if let Some(path) = &self.trace {
            let writer = TraceWriter::create(path)
                .map_err(|cause| BuildError::Trace {
                    path: path.display().to_string(),
                    cause,
                })?
                .with_prices(client.ledger().prices().clone());
            sinks.push(Arc::new(writer));
        }
        sinks.extend(self.sinks);
        let calls = Arc::new(tree::CallEvents {
            sinks: sinks.clone(),
        });
        if scope.is_none() {
            client.observe(calls.clone());
        }
        let (handle, owned) = match self
            .handle
            .take()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        {
            Some(h) => (h, None),
            None => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(BuildError::Runtime)?;
                (rt.handle().clone(), Some(rt))
            }
        };
        Ok(Rlm {
            shared: Arc::new(tree::Shared {
                config: self.config,
                client,
                handle,
                sinks,
                cancelled: Arc::new(AtomicBool::new(false)),
                scope,
                started: AtomicU64::new(0),
                active: AtomicUsize::new(0),
                functions: self.functions,
            }),
            calls,
            _runtime: owned,
        })
    }
}
