//! The `rlm` command line: a thin shell over the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use rlm::dsl::{Limits, SessionBuilder};
use rlm::stats::ContextStats;
use rlm::ContextBuilder;

#[derive(Parser)]
#[command(
    name = "rlm",
    version,
    about = "A fast, sandboxed runtime for Recursive Language Models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every command that loads a context.
#[derive(clap::Args)]
struct LoadArgs {
    /// Include hidden files and directories when walking a directory.
    #[arg(long)]
    hidden: bool,
    /// Include files that look binary when walking a directory or glob.
    #[arg(long)]
    binary: bool,
    /// Copy the input into memory instead of mapping it (immune to files changing underneath).
    #[arg(long)]
    snapshot: bool,
}

impl LoadArgs {
    fn builder(&self) -> ContextBuilder {
        ContextBuilder::new()
            .hidden(self.hidden)
            .binary(self.binary)
            .snapshot(self.snapshot)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Print size, line count and document count of a context.
    Stats {
        /// Files, directories, globs, or `-` for standard input.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// How many of the largest documents to list.
        #[arg(long, default_value_t = 10)]
        top: usize,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Run a Rhai script over a context, with no root model.
    Exec {
        /// The script file (`-` reads it from standard input).
        script: PathBuf,
        /// Files, directories, globs, or `-` for standard input.
        #[arg(long = "context", short = 'c', required = true, num_args = 1..)]
        context: Vec<PathBuf>,
        /// The question, visible to the script as `query`.
        #[arg(long, short = 'q', default_value = "")]
        query: String,
        /// Print the output and answer as text or as one JSON object.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        /// Wall-clock limit for the script, in seconds.
        #[arg(long, default_value_t = 600.0)]
        timeout: f64,
        /// Operation limit for the script.
        #[arg(long)]
        max_operations: Option<u64>,
        #[command(flatten)]
        load: LoadArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rlm: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Stats {
            paths,
            json,
            top,
            load,
        } => {
            let ctx = load.builder().open(&paths)?;
            let stats = ContextStats::compute(&ctx, top)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&stats).context("serializing stats")?
                );
            } else {
                print!("{}", stats.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Exec {
            script,
            context,
            query,
            output,
            timeout,
            max_operations,
            load,
        } => exec(
            &script,
            &context,
            query,
            output,
            timeout,
            max_operations,
            &load,
        ),
    }
}

fn read_script(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading the script from standard input")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading script {}", path.display()))
}

fn exec(
    script: &PathBuf,
    paths: &[PathBuf],
    query: String,
    format: OutputFormat,
    timeout: f64,
    max_operations: Option<u64>,
    load: &LoadArgs,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !(script.as_os_str() == "-" && paths.iter().any(|p| p.as_os_str() == "-")),
        "the script and the context cannot both come from standard input"
    );
    let code = read_script(script)?;
    let started = Instant::now();
    let ctx = load.builder().open(paths)?;
    let load_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        timeout > 0.0 && timeout.is_finite(),
        "--timeout must be a positive number of seconds"
    );
    let mut limits = Limits {
        cell_timeout: Duration::from_secs_f64(timeout),
        // A person running a script wants all of its output.
        output_chars: usize::MAX / 4,
        ..Limits::default()
    };
    if let Some(ops) = max_operations {
        limits.max_operations = ops;
    }
    let mut session = SessionBuilder::new()
        .query(query)
        .limits(limits)
        .build(&ctx);
    let outcome = session.run_cell(&code);
    let run_s = outcome.duration.as_secs_f64();
    match format {
        OutputFormat::Text => {
            if outcome.output != rlm::dsl::NO_OUTPUT {
                print!("{}", outcome.output);
            }
            if let Some(answer) = &outcome.submitted {
                println!("{}", answer.text);
            }
        }
        OutputFormat::Json => {
            let json = serde_json::json!({
                "answer": outcome.submitted.as_ref().map(|a| a.value.clone()),
                "output": if outcome.output == rlm::dsl::NO_OUTPUT { "" } else { outcome.output.as_str() },
                "error": outcome.error,
                "timing": { "load_s": load_s, "run_s": run_s },
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&json).context("serializing the result")?
            );
        }
    }
    match &outcome.error {
        Some(e) => {
            eprintln!("rlm: script error: {e}");
            Ok(ExitCode::from(1))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
