//! `rlm batch`: many tasks, one results file, resumable and shardable.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use rlm::batch::{
    parse_shard, read_tasks, BatchOptions, BatchRunner, BatchSummary, ResultsFile, Task,
};
use rlm::driver::RunConfig;
use rlm::dsl::Limits;
use rlm::llm::{cost_text, ModelSpec};

use super::{LoadArgs, ModelArgs};

/// Options of `rlm batch`.
#[derive(clap::Args)]
pub(crate) struct BatchArgs {
    /// Task file: one JSON object per line, {"id", "query", "context": path(s)} or {"id", "query", "context_text"}.
    pub(crate) tasks: PathBuf,
    /// Results file (JSONL), appended as tasks finish; re-running skips finished ids.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Tasks running at once, 1 to 1024.
    #[arg(long, default_value_t = 4, value_parser = super::cli_values::jobs)]
    pub(crate) jobs: usize,
    /// Run only shard i of n (0-based), e.g. --shard 2/8.
    #[arg(long)]
    pub(crate) shard: Option<String>,
    /// Also run again tasks whose last result failed.
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
    #[arg(long, value_parser = super::cli_values::seconds)]
    pub(crate) task_timeout: Option<f64>,
    /// Time limit of one code cell, in seconds.
    #[arg(long, default_value_t = 120.0, value_parser = super::cli_values::seconds)]
    pub(crate) cell_timeout: f64,
    /// Memory one script session may hold, all its values together: e.g. 512M, 4G [default: 1G]
    #[arg(long, value_parser = super::cli_values::memory_bytes)]
    pub(crate) max_memory: Option<usize>,

    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub(crate) load: LoadArgs,
    #[command(flatten)]
    pub(crate) models: ModelArgs,
}

pub fn run(args: BatchArgs) -> anyhow::Result<ExitCode> {
    let settings = args.models.settings()?;
    let shard = args
        .shard
        .as_deref()
        .map(parse_shard)
        .transpose()
        .map_err(anyhow::Error::msg)?;
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
        !needs_model || settings.model.is_some(),
        "no root model: pass --model, set RLM_MODEL, or give every task a \"model\""
    );
    rlm::preflight::Preflight::new(&settings)
        .tasks(&tasks)
        .check()?;
    if let Some(dir) = &args.trace_dir {
        // create_dir_all on a file says only "File exists".
        anyhow::ensure!(
            !dir.exists() || dir.is_dir(),
            "--trace-dir {} exists and is not a directory",
            dir.display()
        );
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating trace directory {}", dir.display()))?;
    }
    let (out, existing) = ResultsFile::open(&args.out)
        .with_context(|| format!("opening results file {}", args.out.display()))?;

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
        ..RunConfig::default()
    };
    let runner = BatchRunner::new(
        client,
        runtime.handle().clone(),
        BatchOptions {
            jobs: args.jobs,
            shard,
            retry_failed: args.retry_failed,
            trace_dir: args.trace_dir.clone(),
            base,
            loader: args.load.builder(),
        },
    );
    let summary = run_with_progress(&runtime, &runner, tasks, &out, &existing, args.quiet);
    print_summary(&summary, runner.client().ledger().cost(), bad.len(), &out);
    Ok(ExitCode::from(if summary.results_error.is_some() {
        // Not 130: nobody interrupted it, and a script must not take it for Ctrl-C.
        1
    } else if summary.interrupted {
        130
    } else if summary.ran > summary.submitted {
        3
    } else {
        0
    }))
}

/// Runs the batch with a progress bar on a terminal and graceful Ctrl-C.
pub fn run_with_progress(
    runtime: &tokio::runtime::Runtime,
    runner: &BatchRunner,
    tasks: Vec<Task>,
    out: &ResultsFile,
    existing: &std::collections::HashMap<String, rlm::batch::ResultLine>,
    quiet: bool,
) -> BatchSummary {
    let stop = runner.interrupter();
    runtime.spawn(super::cli_run::wait_for_signals(stop.clone()));
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
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} tasks · {msg} · ETA {eta}",
            ) {
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
                while !done.load(Ordering::SeqCst) {
                    let t = client.ledger().totals();
                    bar.set_length(p.total.load(Ordering::Relaxed) as u64);
                    bar.set_position(p.done.load(Ordering::Relaxed) as u64);
                    bar.set_message(format!(
                        "{} failed, {} running · {} tokens · {}",
                        p.failed.load(Ordering::Relaxed),
                        p.running.load(Ordering::Relaxed),
                        t.input_tokens + t.output_tokens,
                        cost_text(client.ledger().cost())
                    ));
                    std::thread::sleep(Duration::from_millis(150));
                }
                bar.finish_and_clear();
            });
        }
        runner.run(tasks, out, existing)
    })
}

/// Sets its flag when dropped, unwinding included.
struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// `cost` is the batch's cost, `None` when a model used has no known price.
fn print_summary(s: &BatchSummary, cost: Option<f64>, bad_lines: usize, out: &ResultsFile) {
    let stopped = if s.results_error.is_some() {
        " (stopped: the results file cannot be written)"
    } else if s.interrupted {
        " (interrupted: re-run the same command to resume)"
    } else {
        ""
    };
    super::eprint_text(&format!(
        "rlm batch: {} tasks: ran {} ({} submitted), {} already done, {} in other shards, {} bad lines; {:.1}s, {} tokens, {}{}",
        s.tasks,
        s.ran,
        s.submitted,
        s.already_done,
        s.other_shards,
        bad_lines,
        s.wall_s,
        s.input_tokens + s.output_tokens,
        cost_text(cost),
        stopped
    ));
    for (reason, n) in &s.failures {
        super::eprint_text(&format!("  {n:>6}  {reason}"));
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
