//! Parsing the command line: clap, plus the help clap cannot give alone.
//!
//! - **Did you mean.** clap suggests a subcommand when its Jaro similarity
//!   passes 0.7, which a swap of two letters in a short name never does
//!   (`rnu` against `run` scores 0.56). A name one edit away (a letter
//!   added, dropped, changed, or two swapped) is suggested here too.
//! - **`--context` takes every value after it** (`num_args = 1..`), so a
//!   positional written after it is read as one more path. `rlm exec
//!   --context a.log script.rhai` works: with no SCRIPT before `--context`,
//!   a last context value ending in `.rhai` is the script (a script must
//!   be Rhai; a context rarely ends in `.rhai`, and at least one path must
//!   stay a context). Anything else gets an error naming the two fixes:
//!   the script before `--context`, or `--` to end the list.
//! - **`rlm run` takes its question only from `--query`.** A positional
//!   question beside `--context`'s open list would be read as a path
//!   whenever it came last, so there is one way to write it, and the
//!   errors for the other orderings say which.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::StyledStr;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory as _, Parser as _};

use super::Cli;

/// Parses the process's arguments, or prints the error (with our tips)
/// and exits with clap's status: 2 for a usage error, 0 for `--help`.
pub(crate) fn parse() -> Cli {
    let args: Vec<OsString> = std::env::args_os().collect();
    match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(mut e) => {
            explain(&mut e, &args);
            e.exit()
        }
    }
}

/// Adds a suggestion or tips to clap's error where we know the fix.
fn explain(e: &mut clap::Error, args: &[OsString]) {
    let command = args.get(1).and_then(|a| a.to_str()).unwrap_or_default();
    let last = args.last().and_then(|a| a.to_str()).unwrap_or_default();
    match e.kind() {
        ErrorKind::InvalidSubcommand if e.get(ContextKind::SuggestedSubcommand).is_none() => {
            let typed = match e.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => return,
            };
            if let Some(name) = one_edit_away(&typed) {
                e.insert(ContextKind::SuggestedSubcommand, ContextValue::String(name));
            }
        }
        ErrorKind::UnknownArgument => {
            let arg = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => return,
            };
            if arg.starts_with('-') {
                return;
            }
            match command {
                "run" => add_tip(
                    e,
                    format!(
                        "rlm run takes no positional arguments: pass the question with --query {}, and paths after --context",
                        quoted(&arg)
                    ),
                ),
                "exec" => add_tip(
                    e,
                    "rlm exec takes one SCRIPT; the paths to read go after --context (rlm exec SCRIPT --context PATH...)".into(),
                ),
                _ => {}
            }
        }
        ErrorKind::MissingRequiredArgument if command == "run" => {
            let missing_query = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::Strings(v)) => v.iter().any(|a| a.starts_with("--query")),
                _ => false,
            };
            if !missing_query {
                return;
            }
            let read_as_path = !last.starts_with('-') && !std::path::Path::new(last).exists();
            if read_as_path && args.len() > 3 {
                add_tip(
                    e,
                    format!(
                        "--context takes every value after it, so {} was read as a path; if it is the question, pass it with --query {}",
                        quoted(last),
                        quoted(last)
                    ),
                );
            } else {
                add_tip(e, "pass the question with --query \"...\"".into());
            }
        }
        _ => {}
    }
}

/// The script of `rlm exec`: SCRIPT, or else the last `--context` value if
/// it ends in `.rhai` and is not the only one (see the module doc).
pub(crate) fn exec_script(
    script: Option<PathBuf>,
    context: &mut Vec<PathBuf>,
) -> anyhow::Result<PathBuf> {
    if let Some(script) = script {
        return Ok(script);
    }
    let is_script = |p: &PathBuf| p.extension().is_some_and(|e| e == "rhai");
    if context.len() > 1 && context.last().is_some_and(is_script) {
        if let Some(script) = context.pop() {
            return Ok(script);
        }
    }
    anyhow::bail!(
        "no SCRIPT given: --context takes every value after it, so a script written after it is read as a context path; \
         put the script first (rlm exec SCRIPT --context PATH...) or end the context list with -- (rlm exec --context PATH... -- SCRIPT)"
    )
}

/// The subcommand one edit away from `typed`, when exactly one is.
fn one_edit_away(typed: &str) -> Option<String> {
    if typed.chars().count() < 2 {
        return None;
    }
    let cmd = Cli::command();
    let mut near = cmd
        .get_subcommands()
        .map(|s| s.get_name())
        .filter(|name| edit_distance(typed, name) == 1);
    match (near.next(), near.next()) {
        (Some(one), None) => Some(one.to_string()),
        _ => None,
    }
}

/// Optimal string alignment distance: insertions, deletions, changes and
/// swaps of adjacent characters, each costing 1.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Appends a `tip:` line to the error, after any clap gave.
fn add_tip(e: &mut clap::Error, tip: String) {
    let mut tips = match e.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(v)) => v.clone(),
        _ => Vec::new(),
    };
    tips.push(StyledStr::from(tip));
    e.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
}

/// `text` in double quotes, escaped so that a shell reads it back as it is.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_a_drop_or_a_change_is_one_edit() {
        assert_eq!(edit_distance("rnu", "run"), 1);
        assert_eq!(edit_distance("ru", "run"), 1);
        assert_eq!(edit_distance("rum", "run"), 1);
        assert_eq!(edit_distance("exce", "exec"), 1);
        assert_eq!(edit_distance("nur", "run"), 2);
        assert_eq!(one_edit_away("rnu").as_deref(), Some("run"));
        assert_eq!(one_edit_away("bacth").as_deref(), Some("batch"));
        assert_eq!(one_edit_away("zzz"), None);
    }

    #[test]
    fn a_trailing_rhai_context_is_the_script_only_when_a_context_remains() {
        let mut ctx = vec![PathBuf::from("a.log"), PathBuf::from("s.rhai")];
        let script = exec_script(None, &mut ctx).unwrap();
        assert_eq!(
            (script, ctx),
            (PathBuf::from("s.rhai"), vec![PathBuf::from("a.log")])
        );
        let mut only = vec![PathBuf::from("s.rhai")];
        assert!(exec_script(None, &mut only).is_err());
        let mut not_rhai = vec![PathBuf::from("a.log"), PathBuf::from("b.log")];
        let err = exec_script(None, &mut not_rhai).unwrap_err().to_string();
        assert!(err.contains("--context PATH... -- SCRIPT"), "{err}");
    }
}
