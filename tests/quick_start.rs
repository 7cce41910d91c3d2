//! The README's quick start, run exactly as written: the bundled replay
//! must re-execute cleanly, every sub-call must find its recorded answer,
//! and the answer must be the vendors the bundled log names.

use serde_json::Value;

mod common;
use common::{output, rlm};

/// The `cargo run ... -- run ...` command of the README's quick start, as
/// arguments to the binary.
fn quick_start_arguments() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("cargo run --release -- run")
        .expect("the quick start command");
    let command: String = readme[start..]
        .lines()
        .take_while(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
        .replace('\\', " ");
    let after = command.split_once(" -- ").expect("arguments after --").1;
    // Split like a shell: the query is one double-quoted argument.
    let mut args = Vec::new();
    let mut rest = after.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').expect("a closing quote");
            args.push(quoted[..end].to_string());
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            args.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    args
}

#[test]
fn the_quick_start_replay_answers_with_every_sub_call_recorded() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let trace = tempfile::NamedTempFile::new().unwrap();
    let args = quick_start_arguments();
    assert_eq!(args[0], "run", "{args:?}");
    let (code, stdout, stderr) = output(
        rlm(root)
            .args(&args)
            .args(["--output", "json", "--quiet", "--trace"])
            .arg(trace.path()),
    );
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["status"], "submitted");
    let answer = result["answer"].to_string();
    assert!(
        !answer.contains("ERROR"),
        "the replay missed sub-call answers: {answer}"
    );
    assert!(
        result["answer"].as_array().is_some_and(|a| !a.is_empty()),
        "{answer}"
    );
    for event in common::jsonl(trace.path()) {
        if event["event"] == "sub_call" {
            assert!(
                event["error"].is_null(),
                "a sub-call failed in the replay: {event}"
            );
        }
    }
}

/// The quick start's test command is the one CI runs, and `.ci/run` ends
/// in the workspace's whole test suite, so a green CI is a green quick start.
#[test]
fn the_quick_start_test_command_is_what_ci_runs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let quick_start = &readme[readme.find("## Quick start").unwrap()..];
    let block = &quick_start[..quick_start.find("\n```\n").expect("the quick start block")];
    let commands: Vec<&str> = block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("```"))
        .collect();
    assert_eq!(commands.last(), Some(&"bash .ci/run"), "{commands:?}");
    let run = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    let last = run
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap();
    assert_eq!(last, "cargo test --workspace");
}
