//! The `rlm` command line: a thin shell over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

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
    }
}
