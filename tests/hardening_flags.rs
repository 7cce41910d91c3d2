//! Flags and `rlm.toml` values out of range are refused before anything
//! runs: exit status 2, and a message naming the flag (or key) and its
//! range. Each of these used to panic (exit 101), or to be accepted and
//! silently mean something else (`--max-cost NaN` disabled the budget,
//! `--max-operations 0` meant no limit).
//!
//! No model is reached: every command fails while reading its arguments,
//! so the URLs point nowhere.

use std::path::Path;
use std::process::Command;

mod common;
use common::{output, rlm};

/// `rlm COMMAND` with what it needs besides the flag under test.
fn command(dir: &Path, name: &str) -> Command {
    std::fs::write(dir.join("ctx.txt"), "alpha\n").unwrap();
    std::fs::write(dir.join("script.rhai"), "print(1);").unwrap();
    std::fs::write(
        dir.join("tasks.jsonl"),
        "{\"id\": \"a\", \"query\": \"q\", \"context_text\": \"x\"}\n",
    )
    .unwrap();
    let mut c = rlm(dir);
    c.arg(name);
    match name {
        "run" => c.args(["--context", "ctx.txt", "--query", "q", "--model", "m"]),
        "exec" => c.args(["script.rhai", "--context", "ctx.txt", "--sub-model", "m"]),
        "batch" => c.args(["tasks.jsonl", "--out", "out.jsonl", "--model", "m"]),
        "eval" => c.args(["niah", "--n", "1", "--lengths", "1k", "--model", "m"]),
        other => panic!("no such command {other}"),
    };
    c.args(["--base-url", "http://127.0.0.1:9/v1", "--max-retries", "0"]);
    c
}

/// Runs `rlm COMMAND --FLAG=VALUE` and requires exit 2 naming the flag and `range`.
fn refused(name: &str, flag: &str, value: &str, range: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = command(dir.path(), name);
    c.arg(format!("{flag}={value}"));
    let (code, _, stderr) = output(&mut c);
    let what = format!("rlm {name} {flag}={value}");
    assert!(!stderr.contains("panicked"), "{what} panicked:\n{stderr}");
    assert_eq!(code, 2, "{what}: {stderr}");
    assert!(
        stderr.contains(flag),
        "{what} does not name the flag:\n{stderr}"
    );
    assert!(
        stderr.contains(range),
        "{what} does not give the range:\n{stderr}"
    );
}

const SECONDS: &str = "more than 0 and at most 2592000 (30 days)";

#[test]
fn time_limits_out_of_range_exit_2_naming_the_flag_in_every_command() {
    let cases: &[(&str, &str)] = &[
        ("run", "--timeout"),
        ("run", "--cell-timeout"),
        ("run", "--request-timeout"),
        ("exec", "--timeout"),
        ("exec", "--request-timeout"),
        ("batch", "--task-timeout"),
        ("batch", "--cell-timeout"),
        ("batch", "--request-timeout"),
        ("eval", "--task-timeout"),
        ("eval", "--request-timeout"),
    ];
    for (name, flag) in cases {
        for value in ["1e30", "NaN", "inf", "-1", "0", "2592001"] {
            refused(name, flag, value, SECONDS);
        }
    }
}

#[test]
fn nan_and_negative_budgets_exit_2_instead_of_disabling_the_budget() {
    for name in ["run", "exec", "batch", "eval"] {
        for value in ["NaN", "-1", "inf", "-0.01"] {
            refused(
                name,
                "--max-cost",
                value,
                "a finite number of US dollars, 0 or more",
            );
        }
    }
}

#[test]
fn absurd_concurrency_and_jobs_exit_2_with_the_documented_maximum() {
    for name in ["run", "exec", "batch", "eval"] {
        for value in ["1000000", "1025", "0"] {
            refused(name, "--concurrency", value, "from 1 to 1024");
        }
    }
    for name in ["batch", "eval"] {
        for value in ["1000000", "0"] {
            refused(name, "--jobs", value, "from 1 to 1024");
        }
    }
}

#[test]
fn zero_operations_exits_2_instead_of_meaning_unlimited() {
    refused("exec", "--max-operations", "0", "at least 1 operation");
}

#[test]
fn response_sizes_out_of_range_exit_2() {
    for name in ["run", "exec", "batch", "eval"] {
        for value in ["10", "2G", "lots"] {
            refused(name, "--max-response-bytes", value, "--max-response-bytes");
        }
    }
}

#[test]
fn values_at_the_edges_of_their_ranges_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = command(dir.path(), "exec");
    c.args([
        "--timeout=2592000",
        "--request-timeout=0.001",
        "--max-cost=0",
        "--concurrency=1024",
        "--max-operations=1",
        "--max-response-bytes=1K",
    ]);
    let (code, stdout, stderr) = output(&mut c);
    // One operation is too few for the script, and says so: the flags passed.
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(!stderr.contains("invalid value"), "{stderr}");
}

#[test]
fn out_of_range_values_in_rlm_toml_exit_2_naming_the_key() {
    let cases = [
        ("request_timeout_s = 1e30", "request_timeout_s"),
        ("request_timeout_s = nan", "request_timeout_s"),
        ("request_timeout_s = -1.0", "request_timeout_s"),
        ("concurrency = 1000000", "concurrency"),
        ("max_response_bytes = 10", "max_response_bytes"),
        ("[budgets]\nmax_cost_usd = nan", "max_cost_usd"),
        ("[budgets]\nmax_cost_usd = -2.0", "max_cost_usd"),
    ];
    for name in ["run", "exec", "batch", "eval"] {
        for (line, key) in cases {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("rlm.toml"), format!("{line}\n")).unwrap();
            let (code, _, stderr) = output(&mut command(dir.path(), name));
            let what = format!("rlm {name} with {line:?}");
            assert!(!stderr.contains("panicked"), "{what} panicked:\n{stderr}");
            assert_eq!(code, 2, "{what}: {stderr}");
            assert!(
                stderr.contains(&format!("invalid value for {key}")),
                "{what}: {stderr}"
            );
        }
    }
}
