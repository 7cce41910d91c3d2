//! `rlm completions` and `rlm man`: what a user or a package installs
//! beside the binary.
//!
//! Both are generated at run time from the same clap definition the parser
//! uses ([`super::Cli`]), so neither can fall behind a new flag, and the
//! binary needs no build script or files shipped beside it.
//!
//! Man pages come one per command, as git's do: `rlm man` prints rlm(1),
//! which lists the commands, and `rlm man run` prints rlm-run(1), with
//! every option of `rlm run`. One page holding every command would repeat
//! the model and loading options four times over, and `man rlm-run` finds
//! the options of the command at hand directly.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;

/// Options of `rlm completions`.
#[derive(clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to print completions for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Options of `rlm man`.
#[derive(clap::Args)]
pub(crate) struct ManArgs {
    /// The command whose page to print (e.g. run, giving rlm-run(1)); without it, rlm(1).
    command: Option<String>,
}

/// Prints the completion script for a shell on standard output.
pub(crate) fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "rlm", &mut script);
    // The script is made of our own names and help texts, all UTF-8.
    super::write_stdout(&String::from_utf8_lossy(&script))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a man page, roff, on standard output.
pub(crate) fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    // Built, subcommands get their page names (rlm-run) and full usage
    // (rlm run ...); `rlm help` is clap's, and has no page of its own.
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let page = match &args.command {
        None => cmd,
        Some(name) => match cmd.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
                anyhow::bail!(
                    "no man page for {name:?}: the commands are {}",
                    names.join(", ")
                );
            }
        },
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .context("rendering the man page")?;
    super::write_stdout(&String::from_utf8_lossy(&roff))?;
    Ok(ExitCode::SUCCESS)
}
