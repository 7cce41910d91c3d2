//! `rlm batch`: many tasks, one results file, resumable and shardable.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use rlm::batch::{
    parse_shard, read_tasks, BatchOptions, BatchRunner, BatchSummary, Existing, ProgressCounts,
    ResultsFile, Retry, Task,
};
use rlm::driver::RunConfig;
use rlm::dsl::Limits;
use rlm::llm::{cost_text, ModelSpec};

use super::{LoadArgs, ModelArgs, SchemaArgs};

/// Options of `rlm batch`.
#[derive(clap::Args)]
pub(crate) struct BatchArgs {
    /// Task file: one JSON object per line, {"id", "query", "context": path(s)} or {"id", "query", "context_text"}.
    pub(crate) tasks: PathBuf,
    /// Results file (JSONL): one line per task, appended as tasks end; re-running resumes it. A file holding anything else is refused.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Tasks running at once, 1 to 1024.
    #[arg(long, default_value_t = 4, value_parser = super::values::jobs)]
    pub(crate) jobs: usize,
    /// Run only shard i of n (0-based), e.g. --shard 2/8.
    #[arg(long)]
    pub(crate) shard: Option<String>,
    /// Also run again tasks whose latest result has one of these statuses: failed, max_cost, max_tokens, max_calls, timeout, max_iterations, invalid_answer (comma-separated). Interrupted tasks always run again.
    #[arg(long, value_name = "STATUS,...", value_parser = Retry::parse)]
    pub(crate) retry: Option<Retry>,
    /// The same as --retry failed.
    #[arg(long)]
    pub(crate) retry_failed: bool,
    /// Write one trace per task into this directory.
    #[arg(long)]
    pub(crate) trace_dir: Option<PathBuf>,
    /// Root turns per task before it must submit.
    #[arg(long, default_value_t = 30)]
    pub(crate) max_iterations: usize,
    /// Deepest recursion of rlm_query.
    #[arg(long, default_value_t = 2)]
    pub(crate) max_depth: usize,
    /// Wall-clock limit per task, in seconds.
    #[arg(long, value_parser = super::values::seconds)]
    pub(crate) task_timeout: Option<f64>,
    /// Time limit of one code cell, in seconds.
    #[arg(long, default_value_t = 120.0, value_parser = super::values::seconds)]
    pub(crate) cell_timeout: f64,
    /// Memory one script session may hold, all its values together: e.g. 512M, 4G [default: 1G]
    #[arg(long, value_parser = super::values::memory_bytes)]
    pub(crate) max_memory: Option<usize>,

    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Print every step of every task on standard error as it happens, each line starting with the task id (replaces the progress bar).
    #[arg(long, short = 'v')]
    pub(crate) verbose: bool,
    #[command(flatten)]
    pub(crate) schema: SchemaArgs,
    #[command(flatten)]
    pub(crate) load: LoadArgs,
    #[command(flatten)]
    pub(crate) models: ModelArgs,
}

pub fn run(args: BatchArgs) -> anyhow::Result<ExitCode> {
    let mut settings = args.models.settings()?;
    let replay = replay_dir(args.models.model.as_deref())?;
    if replay.is_some() {
        settings.model = None;
        // Sub-calls replay too, unless a real sub-model was asked for.
        if args.models.sub_model.is_none() {
            settings.sub_model = None;
        }
    }
    let shard = args
        .shard
        .as_deref()
        .map(parse_shard)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let answer_schema = args.schema.load()?;
    let (tasks, bad) = read_tasks(&args.tasks)
        .with_context(|| format!("reading tasks {}", args.tasks.display()))?;
    for b in &bad {
        super::eprint_text(&format!(
            "rlm: {}:{}: skipped: {}",
            args.tasks.display(),
            b.line,
            b.message
        ));
    }
    let needs_model = tasks.iter().any(|t| t.model.is_none());
    anyhow::ensure!(
        !needs_model || settings.model.is_some() || replay.is_some(),
        "no root model: pass --model, set RLM_MODEL, or give every task a \"model\""
    );
    rlm::preflight::Preflight::new(&settings)
        .tasks(&tasks)
        .check()?;
    // Before anything is created: a refused --out leaves no trace directory.
    check_out(&args.out, &args.tasks, args.trace_dir.as_deref())?;
    prepare_trace_dir(args.trace_dir.as_deref(), replay.as_deref())?;
    let (out, existing) = open_results(&args.out)?;

    let super::Models { runtime, client } = super::Models::new(&settings)?;
    let base = RunConfig {
        model: ModelSpec::parse(settings.model.as_deref().unwrap_or("gpt-5")),
        sub_model: settings.sub_model.as_deref().map(ModelSpec::parse),
        max_iterations: args.max_iterations.max(1),
        max_depth: args.max_depth.max(1),
        // Both are in range: their flags' parsers checked them.
        timeout: args.task_timeout.map(Duration::from_secs_f64),
        limits: Limits {
            cell_timeout: Duration::from_secs_f64(args.cell_timeout),
            max_memory_bytes: args
                .max_memory
                .unwrap_or(Limits::default().max_memory_bytes),
            ..Limits::default()
        },
        sub_context_tokens: settings.sub_context_tokens,
        answer_schema,
        max_invalid_answers: args.schema.max_invalid_answers,
        ..RunConfig::default()
    };
    let runner = BatchRunner::new(
        client,
        runtime.handle().clone(),
        BatchOptions {
            jobs: args.jobs,
            shard,
            retry: retry(args.retry.as_ref(), args.retry_failed),
            trace_dir: args.trace_dir.clone(),
            replay: replay.clone(),
            base,
            loader: args.load.builder(),
        },
    );
    let runner = super::verbose_tasks(runner, args.verbose, &settings);
    let summary = run_with_progress(
        &runtime,
        &runner,
        tasks,
        &out,
        &existing,
        args.quiet || args.verbose,
    );
    let ledger = runner.client().ledger();
    let usage = (ledger.cost(), ledger.totals().cache_hits);
    print_summary(&summary, usage, bad.len(), &out);
    super::warn_cache(runner.client());
    Ok(ExitCode::from(exit_code(&summary, bad.len())))
}

/// The exit status of a batch: it describes the whole results file, so a
/// resume that had nothing left to run still fails while a task's latest
/// line is not `submitted`.
fn exit_code(s: &BatchSummary, bad_lines: usize) -> u8 {
    if s.results_error.is_some() {
        // Not 130: nobody interrupted it, and a script must not take it for Ctrl-C.
        1
    } else if s.interrupted {
        130
    } else if let Some(status) = s.budget_stop.filter(|_| !s.all_submitted()) {
        // The batch's budget is what stopped it: 4, 5 or 6, as for a run.
        status.exit_code()
    } else if !s.all_submitted() || bad_lines > 0 {
        3
    } else {
        0
    }
}

/// `--retry` and its synonym `--retry-failed`, together.
pub(crate) fn retry(list: Option<&Retry>, failed: bool) -> Retry {
    let base = list.cloned().unwrap_or_default();
    if failed {
        base.union(&Retry::failed())
    } else {
        base
    }
}

/// Refuses an `--out` that would overwrite the task file or a trace: the
/// results file is rewritten when it is compacted.
pub(crate) fn check_out(
    out: &std::path::Path,
    tasks: &std::path::Path,
    trace_dir: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !same_file(out, tasks),
        "--out {} is the task file: the results would replace the tasks. Name a new file, e.g. --out results.jsonl",
        out.display()
    );
    if let Some(dir) = trace_dir {
        // Either may not exist yet: then compare absolute paths, whose
        // components drop the `.`s of another spelling.
        let resolved = |p: &std::path::Path| {
            std::fs::canonicalize(p)
                .or_else(|_| std::path::absolute(p))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        let dir = resolved(dir);
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        let parent = resolved(parent);
        anyhow::ensure!(
            !parent.starts_with(&dir),
            "--out {} is inside --trace-dir {}, where each task's trace is written: a task's trace could replace the results. Put the results file elsewhere",
            out.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Creates `--trace-dir`, refusing the directory being replayed (its
/// traces would be overwritten as they are read) and a path that is a file.
pub(crate) fn prepare_trace_dir(
    dir: Option<&std::path::Path>,
    replay: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let Some(dir) = dir else { return Ok(()) };
    if let Some(from) = replay {
        anyhow::ensure!(
            !same_file(dir, from),
            "--trace-dir {} is the directory being replayed: the new traces would replace the recorded ones. Record the replay elsewhere",
            dir.display()
        );
    }
    // create_dir_all on a file says only "File exists".
    anyhow::ensure!(
        !dir.exists() || dir.is_dir(),
        "--trace-dir {} exists and is not a directory",
        dir.display()
    );
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating trace directory {}", dir.display()))
}

/// Whether two paths name one existing file (through links too).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        #[cfg(unix)]
        (Ok(x), Ok(y)) => {
            use std::os::unix::fs::MetadataExt as _;
            x.dev() == y.dev() && x.ino() == y.ino()
        }
        #[cfg(not(unix))]
        (Ok(_), Ok(_)) => std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok(),
        _ => false,
    }
}

/// Opens the results file, saying what was dropped and compacted.
pub(crate) fn open_results(path: &std::path::Path) -> anyhow::Result<(ResultsFile, Existing)> {
    let (out, existing) = ResultsFile::open(path)?;
    if let Some(bytes) = existing.torn_bytes {
        super::eprint_text(&format!(
            "rlm: warning: {}: dropped a torn last line ({bytes} bytes), left by a batch killed while writing it; that task runs again",
            path.display()
        ));
    }
    Ok((out, existing))
}

/// `--model replay:DIR`: the directory whose traces the tasks replay.
pub(crate) fn replay_dir(model: Option<&str>) -> anyhow::Result<Option<PathBuf>> {
    let Some(dir) = model.and_then(|m| m.strip_prefix("replay:")) else {
        return Ok(None);
    };
    let dir = PathBuf::from(dir);
    anyhow::ensure!(
        dir.is_dir(),
        "--model replay:{} : a batch replays a directory of traces, one per task, as --trace-dir wrote them; {} is not a directory",
        dir.display(),
        dir.display()
    );
    Ok(Some(dir))
}

/// Runs the batch with a progress bar on a terminal and graceful Ctrl-C.
pub fn run_with_progress(
    runtime: &tokio::runtime::Runtime,
    runner: &BatchRunner,
    tasks: Vec<Task>,
    out: &ResultsFile,
    existing: &Existing,
    quiet: bool,
) -> BatchSummary {
    let stop = runner.interrupter();
    runtime.spawn(super::run::wait_for_signals(stop.clone()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::scope(|scope| {
        // The watchers stop however the batch ends, a panic included: a
        // scope waits for its threads, and a watcher left looping would
        // turn any crash into a hang.
        let _finished = SetOnDrop(done.clone());
        // Turns the signal flag into interrupting the running tasks.
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if stop.load(Ordering::SeqCst) {
                    runner.interrupt();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            // indicatif's own ETA guesses from the first tick; ours waits
            // for a task to end (`progress_message`).
            if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {msg}") {
                bar.set_style(style);
            }
            bar
        });
        if let Some(bar) = bar.clone() {
            let (p, client, done) = (
                runner.progress().clone(),
                runner.client().clone(),
                done.clone(),
            );
            scope.spawn(move || {
                let started = std::time::Instant::now();
                while !done.load(Ordering::SeqCst) {
                    let counts = p.snapshot();
                    if counts.total == 0 {
                        // Not queued yet (or nothing to run): no bar to draw.
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    let t = client.ledger().totals();
                    bar.set_length(counts.total as u64);
                    bar.set_position(counts.ended() as u64);
                    bar.set_message(format!(
                        "{} · {} tokens · {}",
                        progress_message(&counts, started.elapsed()),
                        t.input_tokens + t.output_tokens,
                        cost_text(client.ledger().cost())
                    ));
                    std::thread::sleep(Duration::from_millis(150));
                }
                bar.finish_and_clear();
            });
        }
        runner.run(tasks, out, &existing.results)
    })
}

/// Sets its flag when dropped, unwinding included.
struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The progress line: counts that add up to the total, and an ETA only
/// once a task has ended (before that there is nothing to estimate from).
fn progress_message(c: &ProgressCounts, elapsed: Duration) -> String {
    let mut text = format!(
        "{}/{} tasks: {} submitted, {} not, {} running, {} queued",
        c.ended(),
        c.total,
        c.submitted,
        c.not_submitted,
        c.running,
        c.queued
    );
    let left = c.total.saturating_sub(c.ended());
    if c.ended() > 0 && left > 0 {
        let eta = elapsed.as_secs_f64() / c.ended() as f64 * left as f64;
        text.push_str(&format!(" · ETA {}", duration_text(eta)));
    }
    text
}

/// Seconds as `42s`, `3m07s` or `2h05m`.
fn duration_text(secs: f64) -> String {
    let s = secs.round().min(1e9) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// `usage` is this invocation's cost (`None` when a model used has no known
/// price) and its answers from the response cache.
fn print_summary(
    s: &BatchSummary,
    (cost, cache_hits): (Option<f64>, u64),
    bad_lines: usize,
    out: &ResultsFile,
) {
    let stopped = if s.results_error.is_some() {
        " (stopped: the results file cannot be written)"
    } else if s.interrupted {
        " (interrupted: re-run the same command to resume)"
    } else if s.budget_stop.is_some() {
        " (stopped by the batch's budget: raise it and re-run with --retry to run the tasks it stopped)"
    } else {
        ""
    };
    let mut scope = format!("{} tasks", s.tasks);
    if s.other_shards > 0 {
        scope.push_str(&format!(" ({} in this shard)", s.tasks - s.other_shards));
    }
    if bad_lines > 0 {
        scope.push_str(&format!(", {bad_lines} bad lines not run"));
    }
    let hits = match cache_hits {
        0 => String::new(),
        n => format!(", {n} answered from the response cache"),
    };
    let cached = match s.cached_input_tokens {
        0 => String::new(),
        n => format!(" ({n} input tokens read from the prompt cache)"),
    };
    super::eprint_text(&format!(
        "rlm batch: {scope}; ran {} now ({} submitted), {} already ended; {:.1}s, {} tokens{cached}, {}{hits}{stopped}",
        s.ran,
        s.submitted,
        s.already_done,
        s.wall_s,
        s.input_tokens + s.output_tokens,
        cost_text(cost),
    ));
    let held: usize = s.in_results.values().sum();
    let mut statuses: Vec<String> = s
        .in_results
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    if s.not_run > 0 {
        statuses.push(format!("{} not run yet", s.not_run));
    }
    let others = if s.other_ids > 0 {
        format!(" (and {} lines for ids not in the task file)", s.other_ids)
    } else {
        String::new()
    };
    super::eprint_text(&format!(
        "rlm batch: {held} in {}: {}{others}",
        out.path().display(),
        if statuses.is_empty() {
            "nothing yet".to_string()
        } else {
            statuses.join(", ")
        }
    ));
    for (reason, n) in &s.failures {
        super::eprint_text(&format!("  {n:>6}  {reason}"));
    }
    let retryable: std::collections::BTreeSet<&str> = s
        .in_results
        .keys()
        .filter_map(|status| match status.as_str() {
            "submitted" | "interrupted" => None,
            "error" => Some("failed"),
            "max_llm_calls" => Some("max_calls"),
            other => rlm::batch::RETRYABLE.iter().copied().find(|r| *r == other),
        })
        .collect();
    if !retryable.is_empty() {
        super::eprint_text(&format!(
            "  to run those again, add --retry {}",
            retryable.into_iter().collect::<Vec<_>>().join(",")
        ));
    }
    if let Some(e) = &s.compact_error {
        super::eprint_text(&format!(
            "rlm: warning: could not compact {}: {e}; it still holds every result, and superseded lines are dropped on the next run",
            out.path().display()
        ));
    }
    if let Some((id, first)) = s.trace_errors.first() {
        super::eprint_text(&format!(
            "rlm: warning: {} task trace(s) are incomplete; the first, task {id}: {first}",
            s.trace_errors.len()
        ));
    }
    if let Some(e) = &s.results_error {
        super::eprint_text(&format!("rlm: error: {e}"));
    }
    if !s.unwritten.is_empty() {
        super::eprint_text(&format!(
            "rlm: {} result(s) could not be written to {}; they follow on standard output",
            s.unwritten.len(),
            out.path().display()
        ));
        // Standard output may be the same full disk; then say so rather than panic.
        let lines: String = s.unwritten.iter().map(|l| format!("{l}\n")).collect();
        if let Err(super::StdoutError(e)) = super::write_stdout(&lines) {
            super::eprint_text(&format!(
                "rlm: error: writing those results to standard output: {e}; they are lost, re-run the same command once there is space"
            ));
        }
    }
}
