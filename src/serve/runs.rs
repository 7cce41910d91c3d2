//! The runs a server makes: every request's run shares one client, so one
//! concurrency limit, one pace and one ledger hold for the whole server,
//! and each run's ledger is a child of it with the request's own budget
//! (as `rlm batch` gives each task one).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::driver::{Rlm, RunConfig, RunResult};
use crate::events::RunSink;
use crate::llm::{Budgets, Ledger, LlmClient, ModelSpec};
use crate::trace::TraceRouter;
use crate::{Context, ContextBuilder};

use super::paths::Root;
use super::ServeError;

/// A root model and the sub-model its scripts call, offered under one id
/// (`rlm/gpt-5` in `rlm serve`'s `GET /v1/models`).
#[derive(Debug, Clone)]
pub struct ModelPair {
    /// What a request's `model` names.
    pub id: String,
    pub root: ModelSpec,
    /// `None`: the root model answers sub-calls too.
    pub sub: Option<ModelSpec>,
}

impl ModelPair {
    /// The pair `ROOT` or `ROOT,SUB` (as `--serve-model` takes it), offered
    /// as `rlm/ROOT`.
    pub fn parse(spec: &str) -> ModelPair {
        let (root, sub) = match spec.split_once(',') {
            Some((r, s)) => (r.trim(), Some(s.trim()).filter(|s| !s.is_empty())),
            None => (spec.trim(), None),
        };
        ModelPair::new(ModelSpec::parse(root), sub.map(ModelSpec::parse))
    }

    /// The pair, offered as `rlm/ROOT`.
    pub fn new(root: ModelSpec, sub: Option<ModelSpec>) -> ModelPair {
        ModelPair {
            id: format!("rlm/{root}"),
            root,
            sub,
        }
    }
}

/// What one run asks for, beyond the question and the context.
#[derive(Default)]
pub struct RunOptions {
    /// The pair to run with (`None`: the server's first).
    pub pair: Option<ModelPair>,
    /// The request's budget; each limit is held to the server's
    /// per-request default when that is lower.
    pub budgets: Budgets,
    /// Root turns, at most the server's.
    pub max_iterations: Option<usize>,
    /// Wall-clock limit, at most the server's when it has one.
    pub timeout: Option<std::time::Duration>,
    /// Where the run's events go as well as its trace (MCP progress, SSE).
    pub sink: Option<Arc<dyn RunSink>>,
}

/// A run's result, and the trace it wrote.
pub struct Answered {
    /// The run's id: its scope on the shared client and its trace's name.
    pub id: String,
    pub result: RunResult,
    pub trace: Option<PathBuf>,
}

/// How a server runs. See the module docs.
pub struct RunServer {
    client: LlmClient,
    router: Arc<TraceRouter>,
    handle: tokio::runtime::Handle,
    base: RunConfig,
    pairs: Vec<ModelPair>,
    root: Root,
    loader: ContextBuilder,
    trace_dir: Option<PathBuf>,
    /// Each request's budget when it names none, and its ceiling.
    per_request: Budgets,
    /// Runs at once; more wait for a slot.
    slots: Arc<tokio::sync::Semaphore>,
    serial: AtomicU64,
}

/// What a [`RunServer`] is made of.
pub struct RunServerConfig {
    /// Its runs' settings; `model` and `sub_model` are those of the first pair.
    pub base: RunConfig,
    /// The model pairs offered, the first the default; with none, runs
    /// are refused ([`ServeError::NoModel`]) and only sessions work.
    pub pairs: Vec<ModelPair>,
    pub root: Root,
    pub loader: ContextBuilder,
    /// One JSONL trace per run in this directory (created when missing).
    pub trace_dir: Option<PathBuf>,
    pub per_request: Budgets,
    /// Runs at once (at least 1).
    pub max_runs: usize,
}

impl RunServer {
    /// A server whose runs share `client` (and its ledger, the parent of
    /// every run's) on `handle`'s runtime.
    pub fn new(
        client: LlmClient,
        handle: tokio::runtime::Handle,
        config: RunServerConfig,
    ) -> Result<RunServer, ServeError> {
        if let Some(dir) = &config.trace_dir {
            std::fs::create_dir_all(dir).map_err(|cause| ServeError::TraceDir {
                dir: dir.clone(),
                cause,
            })?;
        }
        let router = Arc::new(TraceRouter::default());
        client.observe(router.clone());
        Ok(RunServer {
            client,
            router,
            handle,
            base: config.base,
            pairs: config.pairs,
            root: config.root,
            loader: config.loader,
            trace_dir: config.trace_dir,
            per_request: config.per_request,
            slots: Arc::new(tokio::sync::Semaphore::new(config.max_runs.max(1))),
            serial: AtomicU64::new(0),
        })
    }

    /// The model pairs offered, the default first.
    pub fn pairs(&self) -> &[ModelPair] {
        &self.pairs
    }

    /// The pair offered as `id`.
    pub fn pair(&self, id: &str) -> Option<&ModelPair> {
        self.pairs.iter().find(|p| p.id == id)
    }

    /// The directory paths are confined to.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The client every run shares (its ledger holds the server's totals).
    pub fn client(&self) -> &LlmClient {
        &self.client
    }

    /// The runtime the runs call models on.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Loads the files and directories `paths` names under the root.
    /// Blocking: the files are opened and mapped here.
    pub fn load(&self, paths: &[String]) -> Result<Context, ServeError> {
        if paths.is_empty() {
            return Err(ServeError::NoPaths);
        }
        let resolved = self.root.resolve_all(paths)?;
        Ok(self.loader.open(&resolved)?)
    }

    /// Runs `query` over `context`. If the future is dropped (the client
    /// went away), the run is interrupted.
    pub async fn answer(
        &self,
        query: &str,
        context: &Context,
        options: RunOptions,
    ) -> Result<Answered, ServeError> {
        let pair = match options.pair.or_else(|| self.pairs.first().cloned()) {
            Some(p) => p,
            None => return Err(ServeError::NoModel),
        };
        let _slot = self.slots.clone().acquire_owned().await.ok();
        let serial = self.serial.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!(
            "run-{}-{serial}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        );
        let mut config = self.base.clone();
        config.model = pair.root;
        config.sub_model = pair.sub;
        if let Some(n) = options.max_iterations {
            config.max_iterations = n.clamp(1, self.base.max_iterations);
        }
        config.timeout = match (options.timeout, self.base.timeout) {
            (Some(t), Some(max)) => Some(t.min(max)),
            (t, max) => t.or(max),
        };
        let budgets = tighter(&options.budgets, &self.per_request);
        let ledger = Arc::new(Ledger::child(self.client.ledger(), budgets));
        let mut builder = Rlm::builder()
            .config(config)
            .shared_client(self.client.with_ledger(ledger), &id)
            .runtime(self.handle.clone());
        let trace = self
            .trace_dir
            .as_ref()
            .map(|d| d.join(format!("{id}.jsonl")));
        if let Some(path) = &trace {
            builder = builder.trace(path);
        }
        if let Some(sink) = options.sink {
            builder = builder.sink(sink);
        }
        let rlm = builder.build()?;
        self.router.add(&id, rlm.call_events());
        let _routed = Unroute {
            router: &self.router,
            id: id.clone(),
        };
        let _stop = InterruptOnDrop(rlm.interrupter());
        let result = rlm.complete(query, context).await;
        Ok(Answered { id, result, trace })
    }
}

/// Each limit of `asked`, held to `ceiling`'s when that is lower; a limit
/// not asked for is the ceiling's.
fn tighter(asked: &Budgets, ceiling: &Budgets) -> Budgets {
    fn min<T: PartialOrd + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if a < b { a } else { b }),
            (a, b) => a.or(b),
        }
    }
    Budgets {
        max_calls: min(asked.max_calls, ceiling.max_calls),
        max_tokens: min(asked.max_tokens, ceiling.max_tokens),
        max_cost_usd: min(asked.max_cost_usd, ceiling.max_cost_usd),
    }
}

/// Takes a run's route off the shared client when the run ends or is dropped.
struct Unroute<'a> {
    router: &'a TraceRouter,
    id: String,
}

impl Drop for Unroute<'_> {
    fn drop(&mut self) {
        self.router.remove(&self.id);
    }
}

/// Interrupts a run whose caller stopped waiting for it; after the run
/// ended, setting the flag does nothing.
struct InterruptOnDrop(Arc<AtomicBool>);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_budget_is_held_to_the_server_ceiling() {
        let ceiling = Budgets {
            max_calls: Some(10),
            max_tokens: None,
            max_cost_usd: Some(1.0),
        };
        let asked = Budgets {
            max_calls: Some(50),
            max_tokens: Some(1000),
            max_cost_usd: None,
        };
        let b = tighter(&asked, &ceiling);
        assert_eq!(b.max_calls, Some(10));
        assert_eq!(b.max_tokens, Some(1000));
        assert_eq!(b.max_cost_usd, Some(1.0));
    }

    #[test]
    fn pairs_are_offered_under_the_root_name() {
        let p = ModelPair::parse("gpt-5, gpt-5-mini");
        assert_eq!(p.id, "rlm/gpt-5");
        assert_eq!(p.sub.map(|s| s.to_string()).as_deref(), Some("gpt-5-mini"));
        let a = ModelPair::parse("anthropic:claude-sonnet-4-5");
        assert_eq!(a.id, "rlm/anthropic:claude-sonnet-4-5");
        assert!(a.sub.is_none());
    }
}
