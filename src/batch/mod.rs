//! Many questions, one command: `rlm batch`.
//!
//! Tasks ([`Task`], read by [`read_tasks`]) run concurrently on `jobs`
//! worker threads. They share one [`LlmClient`], so one concurrency limit
//! and pace hold for the whole batch, and each task's ledger is a child of
//! the batch's, so per-task usage is exact while global budgets still
//! apply. Every result is appended to the results file the moment its task
//! ends ([`ResultsFile`]), and the file is compacted to one line per task
//! when the batch ends. Re-running with the same file skips what ended,
//! except what [`Retry`] names; the summary and exit status describe the
//! whole file, not only this invocation. `shard i/n` takes a stable share
//! of the tasks by id. With `replay`, each task replays its own recorded
//! trace (`DIR/<id>.jsonl`, as `trace_dir` wrote it).
//!
//! A task never takes the batch down with it: fields out of range
//! ([`Task::check`], [`Task::invalid`]) and panics alike end that task
//! `failed` with the reason, and the workers go on to the next.

mod results;
mod retry;
mod task;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;

use crate::driver::{Rlm, RunConfig};
use crate::llm::{Budgets, Ledger, LlmClient, ModelSpec};
use crate::trace::{ReplayBook, TraceRouter};
use crate::{Context, ContextBuilder};

pub use results::{Existing, ResultLine, ResultsError, ResultsFile};
pub use retry::{Retry, RETRYABLE};
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
    /// Which ended tasks run again (interrupted ones always do).
    pub retry: Retry,
    /// One trace file per task in this directory.
    pub trace_dir: Option<PathBuf>,
    /// Replay each task from its trace in this directory (a `trace_dir` of
    /// an earlier batch) instead of calling the root model.
    pub replay: Option<PathBuf>,
    /// Settings every task starts from.
    pub base: RunConfig,
    /// How contexts given as paths are loaded.
    pub loader: ContextBuilder,
}

/// Live counts, for progress displays; [`BatchProgress::snapshot`] reads
/// them together, so they always add up.
#[derive(Debug, Default)]
pub struct BatchProgress {
    counts: Mutex<ProgressCounts>,
}

/// The tasks of this invocation, by where they are: `queued + running +
/// submitted + not_submitted == total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressCounts {
    pub total: usize,
    pub queued: usize,
    pub running: usize,
    /// Ended with status `submitted`.
    pub submitted: usize,
    /// Ended any other way.
    pub not_submitted: usize,
}

impl ProgressCounts {
    /// Tasks that ended, either way.
    pub fn ended(&self) -> usize {
        self.submitted + self.not_submitted
    }
}

impl BatchProgress {
    /// The counts, all read at one moment.
    pub fn snapshot(&self) -> ProgressCounts {
        *lock(&self.counts)
    }

    fn update(&self, change: impl FnOnce(&mut ProgressCounts)) {
        change(&mut lock(&self.counts));
    }
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
    /// This shard's tasks by the status of their latest line in the
    /// results file, this invocation's and earlier ones' together.
    pub in_results: BTreeMap<String, usize>,
    /// This shard's tasks with no line in the results file (the batch was
    /// stopped before they ran).
    pub not_run: usize,
    /// Lines in the results file for ids that are not in the task file.
    pub other_ids: usize,
    /// Tasks of `in_results` that did not submit, by reason (status and
    /// the start of the error message).
    pub failures: BTreeMap<String, usize>,
    pub cost_usd: f64,
    pub input_tokens: u64,
    /// Of `input_tokens`, those read from the providers' prompt caches.
    pub cached_input_tokens: u64,
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
    /// The batch's own budget (not a task's) refused calls: the tasks it
    /// stopped ended with this status, and the batch exits with its code.
    pub budget_stop: Option<crate::driver::RunStatus>,
    /// Why the results file could not be compacted at the end; it then
    /// still holds every line, superseded ones included.
    pub compact_error: Option<String>,
}

impl BatchSummary {
    /// Whether every task of the shard has a latest line `submitted`.
    pub fn all_submitted(&self) -> bool {
        self.not_run == 0 && self.in_results.keys().all(|s| s == "submitted")
    }
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
    task_sink: Option<TaskSink>,
}

/// Makes the extra sink of one task's run, from its id.
type TaskSink = Box<dyn Fn(&str) -> Arc<dyn crate::events::RunSink> + Send + Sync>;

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
            task_sink: None,
        }
    }

    /// Gives each task's run a sink of its own as well as its trace: `make`
    /// is called with the task's id as the task starts (`rlm batch -v`
    /// prints each task's steps, labelled with its id).
    pub fn with_task_sink(
        mut self,
        make: impl Fn(&str) -> Arc<dyn crate::events::RunSink> + Send + Sync + 'static,
    ) -> Self {
        self.task_sink = Some(Box::new(make));
        self
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

    /// Runs the tasks of this shard that `existing` (the results file's
    /// latest lines, from [`ResultsFile::open`]) does not hold as ended,
    /// appends their results, and compacts the file when done.
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
        let mut shard_ids = Vec::new();
        let all_ids: std::collections::HashSet<String> =
            tasks.iter().map(|t| t.id.clone()).collect();
        for task in tasks {
            if let Some((i, n)) = self.options.shard {
                if shard_of(&task.id, n) != i {
                    summary.other_shards += 1;
                    continue;
                }
            }
            shard_ids.push(task.id.clone());
            if existing
                .get(&task.id)
                .is_some_and(|r| !self.options.retry.covers(&r.status))
            {
                summary.already_done += 1;
                continue;
            }
            queue.push_back(task);
        }
        self.progress.update(|c| {
            c.total = queue.len();
            c.queued = queue.len();
        });
        let queue = Mutex::new(queue);
        let summary = Mutex::new(summary);
        let latest: Mutex<HashMap<String, ResultLine>> = Mutex::new(HashMap::new());
        let work = || loop {
            if self.cancelled.load(Ordering::SeqCst) {
                break;
            }
            let Some(task) = lock(&queue).pop_front() else {
                break;
            };
            self.progress.update(|c| {
                c.queued = c.queued.saturating_sub(1);
                c.running += 1;
            });
            let result = self.run_task(&task);
            self.record(&result, out, &mut lock(&summary));
            lock(&latest).insert(result.id.clone(), result);
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
        let mut latest = latest
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Results that could not be written are not in the file.
        if summary.results_error.is_some() {
            for line in &summary.unwritten {
                if let Ok(r) = serde_json::from_str::<ResultLine>(line) {
                    latest.remove(&r.id);
                }
            }
        }
        describe_file(&mut summary, &shard_ids, &all_ids, existing, &latest);
        if summary.results_error.is_none() {
            if let Err(e) = out.compact() {
                summary.compact_error = Some(e.to_string());
            }
        }
        summary.budget_stop = self
            .client
            .ledger()
            .refusals()
            .last
            .map(|b| crate::driver::RunStatus::from_budget(&b));
        let totals = self.client.ledger().totals();
        summary.cost_usd = totals.cost_usd;
        summary.input_tokens = totals.input_tokens;
        summary.cached_input_tokens = totals.cached_input_tokens;
        summary.output_tokens = totals.output_tokens;
        summary.interrupted = self.cancelled.load(Ordering::SeqCst);
        summary.wall_s = started.elapsed().as_secs_f64();
        summary
    }

    /// Counts an ended task and appends its result.
    fn record(&self, result: &ResultLine, out: &ResultsFile, s: &mut BatchSummary) {
        let write = out.append(result);
        let submitted = result.status == "submitted";
        self.progress.update(|c| {
            c.running = c.running.saturating_sub(1);
            if submitted {
                c.submitted += 1;
            } else {
                c.not_submitted += 1;
            }
        });
        s.ran += 1;
        if submitted {
            s.submitted += 1;
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
        if let Some(schema) = &task.schema {
            config.answer_schema = Some(schema.clone());
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
        if let Some(dir) = &self.options.replay {
            let path = dir.join(format!("{}.jsonl", file_safe(&task.id)));
            match ReplayBook::load(&path) {
                Ok(book) => builder = builder.replay_book(Arc::new(book)),
                Err(e) => {
                    return error_line(format!(
                        "replay: no usable trace for task {} ({e})",
                        task.id
                    ))
                }
            }
        }
        if let Some(dir) = &self.options.trace_dir {
            builder = builder.trace(dir.join(format!("{}.jsonl", file_safe(&task.id))));
        }
        if let Some(make) = &self.task_sink {
            builder = builder.sink(make(&task.id));
        }
        let rlm = match builder.build() {
            Ok(r) => r,
            Err(e) => return error_line(e.to_string()),
        };
        self.router.add(&task.id, rlm.call_events());
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

/// Fills in what the results file holds for the shard's tasks: the latest
/// line of each, from this run (`now`) or an earlier one (`before`).
fn describe_file(
    s: &mut BatchSummary,
    shard_ids: &[String],
    all_ids: &std::collections::HashSet<String>,
    before: &HashMap<String, ResultLine>,
    now: &HashMap<String, ResultLine>,
) {
    for id in shard_ids {
        let Some(r) = now.get(id).or_else(|| before.get(id)) else {
            s.not_run += 1;
            continue;
        };
        *s.in_results.entry(r.status.clone()).or_default() += 1;
        if r.status != "submitted" {
            let why = match &r.error {
                Some(e) => reason(&r.status, e),
                None => r.status.clone(),
            };
            *s.failures.entry(why).or_default() += 1;
        }
    }
    s.other_ids = before
        .keys()
        .chain(now.keys())
        .filter(|id| !all_ids.contains(id.as_str()))
        .collect::<std::collections::HashSet<_>>()
        .len();
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

/// A failure's reason for the summary: its status and the first words of
/// its error that say what happened. "the root model failed: gpt-5: HTTP
/// 401: …" groups as `failed: the root model failed: HTTP 401`, so tasks
/// that failed alike count together whatever the details.
fn reason(status: &str, error: &str) -> String {
    let mut parts = error.split(": ").map(str::trim);
    let first = parts.next().unwrap_or(error);
    let mut short = first.to_string();
    if first.ends_with(" failed") {
        // The next part is the model's name (one word), then what it said.
        let mut next = parts.next();
        if next.is_some_and(|p| !p.contains(' ')) {
            next = parts.next();
        }
        if let Some(what) = next {
            short = format!("{first}: {what}");
        }
    }
    let short: String = short
        .split(['(', '\n'])
        .next()
        .unwrap_or(&short)
        .chars()
        .take(80)
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

#[cfg(test)]
mod tests {
    use super::reason;

    #[test]
    fn failures_group_by_what_happened_not_by_their_details() {
        assert_eq!(
            reason("failed", "the root model failed: gpt-5: HTTP 401: bad key"),
            "failed: the root model failed: HTTP 401"
        );
        assert_eq!(
            reason(
                "failed",
                "the root model failed: gpt-5: error sending request for url (http://x/v1)"
            ),
            "failed: the root model failed: error sending request for url"
        );
        assert_eq!(
            reason("error", "/no/such/file.txt: No such file or directory"),
            "error: /no/such/file.txt"
        );
        assert_eq!(
            reason("max_cost", "the budget of $0.0500 is used up"),
            "max_cost: the budget of $0.0500 is used up"
        );
    }
}
