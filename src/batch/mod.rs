//! Many questions, one command: `rlm batch`.
//!
//! Tasks ([`Task`], read by [`read_tasks`]) run concurrently on `jobs`
//! worker threads. They share one [`LlmClient`], so one concurrency limit
//! and pace hold for the whole batch, and each task's ledger is a child of
//! the batch's, so per-task usage is exact while global budgets still
//! apply. Every result is appended to the results file the moment its task
//! ends ([`ResultsFile`]); re-running with the same file skips what is
//! done. `shard i/n` takes a stable share of the tasks by id.
//!
//! A task never takes the batch down with it: fields out of range
//! ([`Task::check`], [`Task::invalid`]) and panics alike end that task
//! `failed` with the reason, and the workers go on to the next.

mod results;
mod task;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;

use crate::driver::{Rlm, RunConfig};
use crate::llm::{Budgets, Ledger, LlmClient, ModelSpec};
use crate::trace::TraceRouter;
use crate::{Context, ContextBuilder};

pub use results::{ResultLine, ResultsFile};
pub use task::{
    parse_shard, parse_tasks, read_tasks, shard_of, BadLine, InvalidTask, Task, TaskContext,
};

pub use crate::config::MAX_JOBS;

/// A lock that a panicking task left poisoned is still good: every value
/// behind these locks is whole between statements.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How a batch runs.
#[derive(Clone)]
pub struct BatchOptions {
    /// Tasks running at once (1 to [`MAX_JOBS`]; others are clamped).
    pub jobs: usize,
    /// Only tasks of shard `i` of `n`.
    pub shard: Option<(usize, usize)>,
    /// Run again the tasks whose last result failed.
    pub retry_failed: bool,
    /// One trace file per task in this directory.
    pub trace_dir: Option<PathBuf>,
    /// Settings every task starts from.
    pub base: RunConfig,
    /// How contexts given as paths are loaded.
    pub loader: ContextBuilder,
}

/// Live counts, for progress displays.
#[derive(Debug, Default)]
pub struct BatchProgress {
    pub total: AtomicUsize,
    pub done: AtomicUsize,
    pub failed: AtomicUsize,
    pub running: AtomicUsize,
}

/// What a batch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchSummary {
    /// Tasks in the file (valid lines).
    pub tasks: usize,
    /// Tasks of other shards.
    pub other_shards: usize,
    /// Tasks skipped because the results file already has them.
    pub already_done: usize,
    /// Tasks run now.
    pub ran: usize,
    /// Of those, how many ended `submitted`.
    pub submitted: usize,
    /// Results by status.
    pub by_status: BTreeMap<String, usize>,
    /// Failures by reason (the start of the error message).
    pub failures: BTreeMap<String, usize>,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub wall_s: f64,
    /// Whether the batch stopped before it finished: interrupted, or
    /// stopped because results could not be written.
    pub interrupted: bool,
    /// Why the results file could not be written (the first error), e.g. a
    /// full disk. The batch stops starting tasks once this happens.
    pub results_error: Option<String>,
    /// Results that could not be written, as JSON lines.
    pub unwritten: Vec<String>,
    /// Per-task traces that could not be fully written, as `(id, error)`.
    pub trace_errors: Vec<(String, String)>,
}

/// Runs tasks and appends their results. See the module docs.
pub struct BatchRunner {
    client: LlmClient,
    handle: tokio::runtime::Handle,
    options: BatchOptions,
    router: Arc<TraceRouter>,
    cancelled: Arc<AtomicBool>,
    progress: Arc<BatchProgress>,
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
    contexts: Mutex<HashMap<Vec<PathBuf>, Context>>,
}

impl BatchRunner {
    /// A runner whose tasks share `client` (and its ledger, as the parent of
    /// each task's).
    pub fn new(
        client: LlmClient,
        handle: tokio::runtime::Handle,
        options: BatchOptions,
    ) -> BatchRunner {
        let router = Arc::new(TraceRouter::default());
        client.observe(router.clone());
        BatchRunner {
            client,
            handle,
            options,
            router,
            cancelled: Arc::new(AtomicBool::new(false)),
            progress: Arc::new(BatchProgress::default()),
            running: Mutex::new(HashMap::new()),
            contexts: Mutex::new(HashMap::new()),
        }
    }

    /// Live counts.
    pub fn progress(&self) -> &Arc<BatchProgress> {
        &self.progress
    }

    /// The client every task shares.
    pub fn client(&self) -> &LlmClient {
        &self.client
    }

    /// Stops starting tasks and interrupts running ones; their results are
    /// written with status `interrupted` and run again next time.
    pub fn interrupt(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        for flag in lock(&self.running).values() {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// A flag that interrupts the batch when set (for signal handlers).
    pub fn interrupter(&self) -> Arc<AtomicBool> {
        self.cancelled.clone()
    }

    /// Runs the tasks not already in `out` (and in this shard), appending results.
    pub fn run(
        &self,
        tasks: Vec<Task>,
        out: &ResultsFile,
        existing: &HashMap<String, ResultLine>,
    ) -> BatchSummary {
        let started = Instant::now();
        let mut summary = BatchSummary {
            tasks: tasks.len(),
            ..Default::default()
        };
        let mut queue = VecDeque::new();
        for task in tasks {
            if let Some((i, n)) = self.options.shard {
                if shard_of(&task.id, n) != i {
                    summary.other_shards += 1;
                    continue;
                }
            }
            if existing
                .get(&task.id)
                .is_some_and(|r| !r.needs_rerun(self.options.retry_failed))
            {
                summary.already_done += 1;
                continue;
            }
            queue.push_back(task);
        }
        self.progress.total.store(queue.len(), Ordering::SeqCst);
        let queue = Mutex::new(queue);
        let summary = Mutex::new(summary);
        let work = || loop {
            if self.cancelled.load(Ordering::SeqCst) {
                break;
            }
            let Some(task) = lock(&queue).pop_front() else {
                break;
            };
            self.progress.running.fetch_add(1, Ordering::SeqCst);
            let result = self.run_task(&task);
            self.progress.running.fetch_sub(1, Ordering::SeqCst);
            self.record(&result, out, &mut lock(&summary));
        };
        let workers = self.options.jobs.clamp(1, MAX_JOBS);
        std::thread::scope(|scope| {
            let started = (0..workers)
                .filter(|i| {
                    std::thread::Builder::new()
                        .name(format!("rlm-batch-{i}"))
                        .spawn_scoped(scope, work)
                        .is_ok()
                })
                .count();
            // Not even one thread (the system is out of them): work here.
            if started == 0 {
                work();
            }
        });
        let mut summary = summary
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let totals = self.client.ledger().totals();
        summary.cost_usd = totals.cost_usd;
        summary.input_tokens = totals.input_tokens;
        summary.output_tokens = totals.output_tokens;
        summary.interrupted = self.cancelled.load(Ordering::SeqCst);
        summary.wall_s = started.elapsed().as_secs_f64();
        summary
    }

    /// Counts a finished task and appends its result.
    fn record(&self, result: &ResultLine, out: &ResultsFile, s: &mut BatchSummary) {
        if result.status != "submitted" {
            self.progress.failed.fetch_add(1, Ordering::SeqCst);
        }
        self.progress.done.fetch_add(1, Ordering::SeqCst);
        let write = out.append(result);
        s.ran += 1;
        *s.by_status.entry(result.status.clone()).or_default() += 1;
        if result.status == "submitted" {
            s.submitted += 1;
        } else if let Some(e) = &result.error {
            *s.failures.entry(reason(&result.status, e)).or_default() += 1;
        } else {
            *s.failures.entry(result.status.clone()).or_default() += 1;
        }
        if let Some(e) = &result.trace_error {
            s.trace_errors.push((result.id.clone(), e.clone()));
        }
        if let Err(e) = write {
            // Nothing is lost: the line goes back to the caller to print.
            s.unwritten
                .push(serde_json::to_string(result).unwrap_or_default());
            if s.results_error.is_none() {
                s.results_error = Some(format!("writing results to {}: {e}", out.path().display()));
            }
            // Every later result would fail too; stop spending on them.
            self.cancelled.store(true, Ordering::SeqCst);
        }
    }

    fn context(&self, task: &Task) -> Result<Context, String> {
        match &task.context {
            TaskContext::Inline(text) => Ok(Context::from_string(&task.id, text.as_str())),
            TaskContext::Paths(paths) => {
                if let Some(c) = lock(&self.contexts).get(paths).cloned() {
                    return Ok(c);
                }
                // Tasks over the same corpus share one mapping and line index.
                let ctx = self.options.loader.open(paths).map_err(|e| e.to_string())?;
                lock(&self.contexts).insert(paths.clone(), ctx.clone());
                Ok(ctx)
            }
        }
    }

    /// Runs one task; whatever goes wrong, even a panic, is its result.
    fn run_task(&self, task: &Task) -> ResultLine {
        let started = Instant::now();
        if let Some(why) = task
            .invalid
            .clone()
            .or_else(|| task.check().err().map(|e| e.to_string()))
        {
            return not_run(task, "failed", why, started);
        }
        match catch_unwind(AssertUnwindSafe(|| self.try_task(task, started))) {
            Ok(line) => line,
            Err(panic) => {
                // What the task registered, it can no longer unregister.
                lock(&self.running).remove(&task.id);
                self.router.remove(&task.id);
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                let why = format!(
                    "the task stopped on an internal error ({what}); the batch went on without it. Please report this with the task line"
                );
                not_run(task, "failed", why, started)
            }
        }
    }

    fn try_task(&self, task: &Task, started: Instant) -> ResultLine {
        let error_line = |e: String| not_run(task, "error", e, started);
        let ctx = match self.context(task) {
            Ok(c) => c,
            Err(e) => return error_line(e),
        };
        let mut config = self.options.base.clone();
        if let Some(m) = &task.model {
            config.model = ModelSpec::parse(m);
        }
        if let Some(m) = &task.sub_model {
            config.sub_model = Some(ModelSpec::parse(m));
        }
        if let Some(n) = task.max_iterations {
            config.max_iterations = n.max(1);
        }
        if let Some(n) = task.max_depth {
            config.max_depth = n.max(1);
        }
        if let Some(t) = task.timeout_s {
            // Checked by `run_task`; out of range it would overflow the clock.
            match crate::config::seconds(t) {
                Ok(t) => config.timeout = Some(t),
                Err(e) => return not_run(task, "failed", format!("timeout_s: {e}"), started),
            }
        }
        let budgets = Budgets {
            max_calls: task.max_llm_calls,
            max_tokens: task.max_tokens,
            max_cost_usd: task.max_cost_usd,
        };
        let ledger = Arc::new(Ledger::child(self.client.ledger(), budgets));
        let mut builder = Rlm::builder()
            .config(config)
            .shared_client(self.client.with_ledger(ledger), &task.id)
            .runtime(self.handle.clone());
        if let Some(dir) = &self.options.trace_dir {
            builder = builder.trace(dir.join(format!("{}.jsonl", file_safe(&task.id))));
        }
        let rlm = match builder.build() {
            Ok(r) => r,
            Err(e) => return error_line(e.to_string()),
        };
        if let Some(w) = rlm.trace_writer() {
            self.router.add(&task.id, w.clone());
        }
        let flag = rlm.interrupter();
        lock(&self.running).insert(task.id.clone(), flag.clone());
        if self.cancelled.load(Ordering::SeqCst) {
            flag.store(true, Ordering::SeqCst);
        }
        let result = rlm.run(&task.query, &ctx);
        lock(&self.running).remove(&task.id);
        self.router.remove(&task.id);
        let cost_usd = result.cost();
        ResultLine {
            id: task.id.clone(),
            answer: result.answer,
            status: status_name(&result.status),
            answer_kind: result
                .answer_kind
                .and_then(|k| serde_json::to_value(k).ok())
                .and_then(|v| v.as_str().map(str::to_string)),
            iterations: result.iterations,
            usage: serde_json::to_value(&result.usage).unwrap_or_default(),
            cost_usd,
            wall_s: result.wall_s,
            error: result.error,
            trace_error: result.trace_error,
        }
    }
}

/// The result of a task that did not run, or stopped before its run could
/// say how it ended.
fn not_run(task: &Task, status: &str, error: String, started: Instant) -> ResultLine {
    ResultLine {
        id: task.id.clone(),
        answer: None,
        status: status.into(),
        answer_kind: None,
        iterations: 0,
        usage: serde_json::json!({}),
        cost_usd: Some(0.0),
        wall_s: started.elapsed().as_secs_f64(),
        error: Some(error),
        trace_error: None,
    }
}

fn status_name(status: &crate::driver::RunStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A failure's reason for the summary: its status and the first words of its error.
fn reason(status: &str, error: &str) -> String {
    let short: String = error
        .split([':', '('])
        .next()
        .unwrap_or(error)
        .chars()
        .take(60)
        .collect();
    format!("{status}: {}", short.trim())
}

/// A task id as a file name: path separators and odd characters become `_`.
fn file_safe(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("task_{s}")
    } else {
        s
    }
}
