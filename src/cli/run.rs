//! `rlm run`: the recursive loop from the command line, with progress,
//! signals and exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;

use rlm::driver::{Rlm, RunResult};
use rlm::events::{Event, RunEvent, RunSink};
use rlm::llm::{cost_text, Ledger};
use rlm::preflight::Preflight;

use super::{OutputFormat, RunArgs};

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut settings = args.models.settings()?;
    let replay = args
        .models
        .model
        .as_deref()
        .and_then(|m| m.strip_prefix("replay:"))
        .map(std::path::PathBuf::from);
    if replay.is_some() {
        settings.model = None;
        // Sub-calls replay too, unless a real sub-model was asked for.
        if args.models.sub_model.is_none() {
            settings.sub_model = None;
        }
    }
    anyhow::ensure!(
        replay.is_some() || settings.model.is_some(),
        "no root model: pass --model (e.g. --model gpt-5), set RLM_MODEL, or replay a trace with --model replay:TRACE.jsonl"
    );
    // A missing key or an unpriced model under --max-cost is one message
    // and exit 2, not a failed run's summary after the fact.
    Preflight::new(&settings).settings_models().check()?;
    let mut config = args.limits.run_config(&settings)?;
    let timeout = config.timeout;
    let system_template = match &args.system_prompt {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading system prompt {}", p.display()))?,
        ),
        None => None,
    };
    let answer_schema = args.schema.load()?;
    let ctx = args.load.builder_within(timeout).open(&args.context)?;
    super::note_skipped(&ctx);

    let runtime = super::runtime()?;
    config.system_template = system_template;
    config.answer_schema = answer_schema;
    config.max_invalid_answers = args.schema.max_invalid_answers;
    let config_iterations = config.max_iterations;
    let mut builder = Rlm::builder()
        .settings(&settings)
        .config(config)
        .runtime(runtime.handle().clone());
    if let Some(path) = &replay {
        builder = builder.replay(path)?;
    }
    if let Some(path) = &args.trace {
        builder = builder.trace(path);
    }
    // The verbose lines replace the bar, which would draw over them.
    let show_progress = !args.quiet && !args.verbose && std::io::stderr().is_terminal();
    let progress = show_progress.then(|| Arc::new(ProgressLine::new(config_iterations)));
    if let Some(p) = &progress {
        builder = builder.sink(p.clone());
    }
    if args.verbose {
        builder = builder.sink(Arc::new(super::verbose_printer(&settings)));
    }
    let rlm = builder.build()?;

    watch_signals(&runtime, &rlm);
    if let Some(p) = &progress {
        p.show(rlm.client().ledger().clone());
    }
    let result = rlm.run(&args.query, &ctx);
    if let Some(p) = &progress {
        p.bar.finish_and_clear();
    }
    if let Err(e) = report(&result, args.output, args.quiet) {
        // The answer is what the run was for: losing it is a failure, whatever the status.
        super::eprint_text(&format!("rlm: error: {e:#}"));
        return Ok(ExitCode::from(1));
    }
    super::warn_cache(rlm.client());
    Ok(ExitCode::from(result.status.exit_code()))
}

/// Ctrl-C and SIGTERM stop the run gracefully; a second Ctrl-C exits at once.
fn watch_signals(runtime: &tokio::runtime::Runtime, rlm: &Rlm) {
    runtime.spawn(wait_for_signals(rlm.interrupter()));
}

/// Sets `stop` on the first Ctrl-C or SIGTERM; exits with 130 on the second.
pub async fn wait_for_signals(stop: Arc<std::sync::atomic::AtomicBool>) {
    let mut interrupts = 0;
    loop {
        #[cfg(unix)]
        {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { return },
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        interrupts += 1;
        if interrupts > 1 {
            std::process::exit(130);
        }
        eprintln!("rlm: interrupted; finishing traces and writing what is done (Ctrl-C again to quit at once)");
        stop.store(true, Ordering::SeqCst);
    }
}

/// The progress line of `rlm run` on a terminal: a sink that redraws it
/// as events come (the spinner turns on its own between them).
struct ProgressLine {
    bar: indicatif::ProgressBar,
    max_iterations: usize,
    /// The run's ledger, for tokens and cost; set once the run is built.
    ledger: OnceLock<Arc<Ledger>>,
    counts: Mutex<Counts>,
}

/// What the line shows besides the ledger's totals.
#[derive(Default)]
struct Counts {
    /// Root turn of the top run.
    turn: usize,
    /// Cell of the top run's current turn.
    cell: usize,
    /// Sub-calls started and not yet ended.
    in_flight: usize,
    /// Root-model answers, across the tree (children's turns included).
    root_calls: usize,
    /// Sub-calls ended, answered or failed: the ledger's totals count
    /// root calls too, so the line counts them from the events.
    sub_done: usize,
    /// Child runs started.
    children: usize,
}

impl ProgressLine {
    fn new(max_iterations: usize) -> ProgressLine {
        let bar = indicatif::ProgressBar::hidden();
        ProgressLine {
            bar,
            max_iterations,
            ledger: OnceLock::new(),
            counts: Mutex::new(Counts::default()),
        }
    }

    /// Starts drawing on standard error, with the run's ledger.
    fn show(&self, ledger: Arc<Ledger>) {
        let _ = self.ledger.set(ledger);
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }
}

impl RunSink for ProgressLine {
    fn event(&self, e: &RunEvent<'_>) {
        let Ok(mut c) = self.counts.lock() else {
            return;
        };
        match &e.event {
            Event::RootRequest { iteration, .. } if e.depth == 0 => {
                c.turn = *iteration;
                c.cell = 0;
            }
            Event::CellStart(cell) if e.depth == 0 => c.cell = cell.index,
            Event::SubCallStart { .. } => c.in_flight += 1,
            Event::SubCallEnd(_) => {
                c.in_flight = c.in_flight.saturating_sub(1);
                c.sub_done += 1;
            }
            Event::RootResponse { .. } => c.root_calls += 1,
            Event::ChildStart(_) => c.children += 1,
            _ => {}
        }
        let Some(ledger) = self.ledger.get() else {
            return;
        };
        let t = ledger.totals();
        self.bar.set_message(format!(
            "turn {}/{} · cell {} · root calls {} · sub-calls {} done, {} in flight · {} children · {} tokens · {}",
            c.turn,
            self.max_iterations,
            c.cell,
            c.root_calls,
            c.sub_done,
            c.in_flight,
            c.children,
            t.input_tokens + t.output_tokens,
            cost_text(ledger.cost())
        ));
    }
}

/// Prints the answer (or the JSON result) on standard output, and on
/// standard error what the submitting cell printed (before the answer, as
/// it ran), then the status and any errors. In text mode every one of
/// them has its control characters escaped (`rlm::escape::text`): the
/// answer, the output and the errors may quote the input or a model.
///
/// Fails when standard output cannot be written (a full disk, a closed
/// pipe), where `println!` would panic; standard error is still written.
fn report(result: &RunResult, format: OutputFormat, quiet: bool) -> anyhow::Result<()> {
    let text = matches!(format, OutputFormat::Text);
    if let Some(printed) = result.final_output.as_deref().filter(|_| text && !quiet) {
        super::eprint_text(&format!(
            "rlm: the submitting cell printed:\n{}",
            printed.strip_suffix('\n').unwrap_or(printed)
        ));
    }
    let answer = match format {
        OutputFormat::Json => {
            Some(serde_json::to_string_pretty(result).context("serializing the result")?)
        }
        OutputFormat::Text => result.answer_text.clone(),
    };
    let printed = answer.map_or(Ok(()), |answer| {
        let answer = format!("{answer}\n");
        if text {
            super::write_text(&answer)
        } else {
            super::write_stdout(&answer)
        }
    });
    if text && !quiet {
        let kind = match result.answer_kind {
            Some(rlm::driver::AnswerKind::Prose) => {
                " (answer taken from the model's prose, not submitted)"
            }
            _ => "",
        };
        let hits = match result.totals.cache_hits {
            0 => String::new(),
            n => format!(", {n} answered from the response cache"),
        };
        let cached = match result.totals.cached_input_tokens {
            0 => String::new(),
            n => format!(" ({n} input tokens read from the prompt cache)"),
        };
        eprintln!(
            "rlm: {}{kind} after {} turns in {:.1}s; {} calls, {} tokens{cached}, {}{hits}",
            serde_json::to_value(result.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            result.iterations,
            result.wall_s,
            result.totals.calls,
            result.totals.input_tokens + result.totals.output_tokens,
            cost_text(result.cost())
        );
    }
    if let Some(e) = &result.error {
        super::eprint_text(&format!("rlm: {e}"));
    }
    if let Some(e) = &result.trace_error {
        super::eprint_text(&format!("rlm: warning: {e}"));
    }
    Ok(printed?)
}
