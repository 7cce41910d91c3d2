//! Context files changed, truncated or deleted while rlm has them mapped,
//! through the binary. The loopback model's handler makes each change at a
//! known moment (before a turn, or during a cell's sub-call), so every case
//! is deterministic.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use rlm::testing::{MockServer, Reply};

mod common;
use common::output;

fn cell(code: &str) -> String {
    format!("```rhai\n{code}\n```")
}

/// `rlm COMMAND` in `dir`, with the loopback model.
fn rlm(dir: &Path, server: &MockServer, command: &str) -> Command {
    let mut c = common::rlm(dir);
    c.env("OPENAI_API_KEY", "sk-test").args([
        command,
        "--model",
        "gpt-5",
        "--base-url",
        &server.openai_url(),
    ]);
    c
}

/// 8 MiB of lines with a few `needle`s: big enough that a scan touches pages
/// well past any truncation point.
fn big_log(dir: &Path) -> PathBuf {
    let path = dir.join("big.log");
    let mut text = String::with_capacity(8 << 20);
    let mut i = 0;
    while text.len() < 8 << 20 {
        text.push_str(&format!("line {i} of the log, nothing to see\n"));
        if i % 100_000 == 50_000 {
            text.push_str("needle\n");
        }
        i += 1;
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// How many `needle` lines the file holds, as the script would print it.
fn needles(path: &Path) -> String {
    let n = std::fs::read_to_string(path)
        .unwrap()
        .matches("needle")
        .count();
    assert!(n >= 2);
    n.to_string()
}

fn truncate(path: &Path) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(0))
        .unwrap();
}

fn append(path: &Path) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(b"appended later\n").unwrap();
}

/// A sub-model whose answer to "act" first does `change` to `path`.
fn acting_server(path: PathBuf, change: fn(&Path)) -> MockServer {
    MockServer::start(move |req| {
        if req.prompt() == "act" {
            change(&path);
        }
        Reply::openai_text("done", 10, 1)
    })
}

const SCAN_AFTER_ACT: &str = "let a = llm_query(\"act\");\nprint(context.count(\"needle\"));";

fn exec(dir: &Path, server: &MockServer, extra: &[&str]) -> (i32, String, String) {
    let script = dir.join("scan.rhai");
    std::fs::write(&script, SCAN_AFTER_ACT).unwrap();
    output(
        rlm(dir, server, "exec")
            .arg(&script)
            .args(["--context", "big.log"])
            .args(extra),
    )
}

#[test]
fn truncation_during_a_scan_ends_with_an_explanation_not_a_bare_bus_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = big_log(dir.path());
    let server = acting_server(path, truncate);
    let (code, _, stderr) = exec(dir.path(), &server, &[]);
    // The mapped pages are gone: reading them faults (SIGBUS), and the
    // handler says so instead of the shell's "Bus error".
    assert_eq!(code, 135, "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
    assert!(stderr.contains("--snapshot"), "{stderr}");
}

#[test]
fn snapshot_mode_is_immune_to_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = big_log(dir.path());
    let needles = needles(&path);
    let server = acting_server(path.clone(), truncate);
    let (code, stdout, stderr) = exec(dir.path(), &server, &["--snapshot"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), needles);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        0,
        "the file was truncated"
    );
}

#[test]
fn deleting_a_mapped_file_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let path = big_log(dir.path());
    let needles = needles(&path);
    let server = acting_server(path.clone(), |p| std::fs::remove_file(p).unwrap());
    let (code, stdout, stderr) = exec(dir.path(), &server, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), needles);
    assert!(!path.exists());
}

/// `rlm run` with a root that plays `turns` and sub-calls that may act.
fn run_with(
    dir: &Path,
    turns: fn(usize) -> String,
    before_turn_2: fn(&Path),
    on_act: fn(&Path),
) -> (i32, String, String, Vec<Value>) {
    let path = dir.join("app.log");
    std::fs::write(&path, "alpha\nbeta\n").unwrap();
    let root_path = path.clone();
    let server = MockServer::start(move |req| {
        if req.is_root_turn() {
            let turn = req.message_count().div_ceil(2);
            if turn == 2 {
                before_turn_2(&root_path);
            }
            return Reply::openai_text(&turns(turn), 100, 10);
        }
        if req.prompt() == "act" {
            on_act(&root_path);
        }
        Reply::openai_text("done", 10, 1)
    });
    let trace = dir.join("trace.jsonl");
    let (code, stdout, stderr) = output(
        rlm(dir, &server, "run")
            .args(["--context", "app.log", "--query", "q", "--trace"])
            .arg(&trace),
    );
    let events = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("whole JSON lines"))
        .collect();
    (code, stdout, stderr, events)
}

fn final_event(events: &[Value]) -> &Value {
    let last = events.last().expect("a trace");
    assert_eq!(last["event"], "final", "{last}");
    last
}

fn nothing(_: &Path) {}

#[test]
fn a_file_changed_between_turns_stops_the_run_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let turns = |turn| match turn {
        1 => cell("print(context.line_count());"),
        _ => cell("submit(\"from changed data\");"),
    };
    let (code, stdout, stderr, events) = run_with(dir.path(), turns, append, nothing);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.trim().is_empty(),
        "no answer from changed data: {stdout}"
    );
    assert!(
        stderr.contains("app.log") && stderr.contains("changed on disk"),
        "{stderr}"
    );
    assert!(stderr.contains("snapshot"), "{stderr}");
    let last = final_event(&events);
    assert_eq!(last["status"], "failed", "{last}");
}

#[test]
fn a_file_changed_during_a_cell_discards_that_cells_answer() {
    let dir = tempfile::tempdir().unwrap();
    let turns = |_| cell("let a = llm_query(\"act\");\nsubmit(context.line_count());");
    let (code, stdout, stderr, events) = run_with(dir.path(), turns, nothing, append);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.trim().is_empty(), "{stdout}");
    assert!(stderr.contains("while this cell ran"), "{stderr}");
    assert_eq!(final_event(&events)["status"], "failed");
}

#[test]
fn an_unchanged_file_runs_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let turns = |turn| match turn {
        1 => cell("let a = llm_query(\"act\");\nprint(a);"),
        _ => cell("submit(context.line_count());"),
    };
    let (code, stdout, stderr, events) = run_with(dir.path(), turns, nothing, nothing);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "2");
    assert_eq!(final_event(&events)["status"], "submitted");
}
