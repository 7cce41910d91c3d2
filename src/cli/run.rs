//! `rlm run`: the recursive loop from the command line, with progress,
//! signals and exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use rlm::driver::{Rlm, RunConfig, RunResult};
use rlm::dsl::Limits;
use rlm::llm::{cost_text, ModelSpec};
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
    anyhow::ensure!(
        args.cell_timeout > 0.0 && args.cell_timeout.is_finite(),
        "--cell-timeout must be a positive number of seconds"
    );
    let timeout = match args.timeout {
        Some(t) if !(t > 0.0 && t.is_finite()) => {
            anyhow::bail!("--timeout must be a positive number of seconds")
        }
        t => t.map(Duration::from_secs_f64),
    };
    let system_template = match &args.system_prompt {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading system prompt {}", p.display()))?,
        ),
        None => None,
    };
    let ctx = args.load.builder_within(timeout).open(&args.context)?;
    super::note_skipped(&ctx);

    let runtime = super::runtime()?;
    let config = RunConfig {
        model: ModelSpec::parse(settings.model.as_deref().unwrap_or("replay")),
        sub_model: settings.sub_model.as_deref().map(ModelSpec::parse),
        max_iterations: args.max_iterations.max(1),
        max_depth: args.max_depth.max(1),
        timeout,
        limits: Limits {
            cell_timeout: Duration::from_secs_f64(args.cell_timeout),
            max_memory_bytes: args
                .max_memory
                .unwrap_or(Limits::default().max_memory_bytes),
            ..Limits::default()
        },
        sub_context_tokens: settings.sub_context_tokens,
        root_max_tokens: args.root_max_tokens,
        system_template,
    };
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
    let rlm = builder.build()?;

    watch_signals(&runtime, &rlm);
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let progress = show_progress.then(|| spawn_progress(&rlm));
    let result = rlm.run(&args.query, &ctx);
    if let Some((bar, stop)) = progress {
        stop.store(true, Ordering::SeqCst);
        bar.finish_and_clear();
    }
    if let Err(e) = report(&result, args.output, args.quiet) {
        // The answer is what the run was for: losing it is a failure, whatever the status.
        super::eprint_text(&format!("rlm: error: {e:#}"));
        return Ok(ExitCode::from(1));
    }
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

fn spawn_progress(rlm: &Rlm) -> (indicatif::ProgressBar, Arc<std::sync::atomic::AtomicBool>) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (progress, client, max) = (
        rlm.progress().clone(),
        rlm.client().clone(),
        rlm.config().max_iterations,
    );
    let (b, s) = (bar.clone(), stop.clone());
    std::thread::spawn(move || {
        while !s.load(Ordering::SeqCst) {
            let t = client.ledger().totals();
            b.set_message(format!(
                "turn {}/{max} · cell {} · sub-calls {} done, {} in flight · {} children · {} tokens · {}",
                progress.turn.load(Ordering::Relaxed),
                progress.cell.load(Ordering::Relaxed),
                t.calls + t.errors,
                client.in_flight(),
                progress.children.load(Ordering::Relaxed),
                t.input_tokens + t.output_tokens,
                cost_text(client.ledger().cost())
            ));
            b.tick();
            std::thread::sleep(Duration::from_millis(120));
        }
    });
    (bar, stop)
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
        eprintln!(
            "rlm: {}{kind} after {} turns in {:.1}s; {} calls, {} tokens, {}",
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
