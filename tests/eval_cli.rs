//! `rlm eval` end to end against a loopback server: generated tasks run
//! through the batch machinery, scored, with the direct baseline beside.

use std::process::Command;

use rlm::testing::{MockServer, Reply};

mod common;

/// A root model that finds the needle with a regex and submits it; a plain
/// model that answers with the needle's number only if it is in its prompt.
fn server() -> MockServer {
    MockServer::start(|req| {
        let system = req.system().unwrap_or_default();
        if system.contains("Recursive Language Model") {
            Reply::openai_text(
                "```rhai\nlet m = context.matches(`special magic numbers for [a-z-]+ is: ([0-9]{7})`, 1);\nsubmit(m[0].groups[0]);\n```",
                500,
                40,
            )
        } else {
            let prompt = req.prompt();
            let re = regex::Regex::new(r"is: ([0-9]{7})\.").unwrap();
            let answer = re
                .captures(&prompt)
                .map_or("I don't know".to_string(), |c| c[1].to_string());
            Reply::openai_text(&answer, (prompt.len() / 4) as u64, 3)
        }
    })
}

fn eval(server: &MockServer, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rlm"))
        .args([
            "eval",
            "niah",
            "--n",
            "3",
            "--lengths",
            "8k,16k",
            "--seed",
            "7",
            "--pool",
            "builtin",
            "--quiet",
        ])
        .args(common::loopback_models(server))
        .args(extra)
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap()
}

#[test]
fn niah_is_generated_run_scored_and_tabulated_with_the_direct_baseline() {
    let server = server();
    let o = eval(
        &server,
        &[
            "--json",
            "--baseline",
            "direct",
            "--baseline-window",
            "1000",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for r in &rows {
        assert_eq!(r["n"], 3);
        match r["method"].as_str().unwrap() {
            "rlm" => {
                assert_eq!(r["score"], 1.0, "{r}");
                assert_eq!(r["failed"], 0);
                assert_eq!(r["mean_calls"], 1.0);
                assert!(r["cost_usd"].as_f64().unwrap() > 0.0);
            }
            "direct" => {
                // 1,000 tokens of an 8k or 16k context: every one is cut.
                assert_eq!(r["truncated"], 3, "{r}");
                assert!(r["score"].as_f64().unwrap() <= 1.0);
            }
            other => panic!("unexpected method {other}"),
        }
    }
    assert_eq!(rows[0]["length"], "8k");
    // 6 RLM root calls and 6 baseline calls reached the server.
    assert_eq!(server.requests().len(), 12);
}

#[test]
fn the_markdown_table_and_clear_errors() {
    let server = server();
    let o = eval(&server, &[]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.starts_with("| task | length | method |"), "{table}");
    assert!(
        table.contains("| niah | 16k | rlm | 3 | 1.000 |"),
        "{table}"
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_rlm"))
        .args(["eval", "haystack", "--model", "m"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown eval family"));
    let bad = Command::new(env!("CARGO_BIN_EXE_rlm"))
        .args([
            "eval",
            "oolong",
            "--model",
            "m",
            "--pool",
            "/no/such/pool.jsonl",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("/no/such/pool.jsonl") && err.contains("--pool builtin"),
        "{err}"
    );
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn oolong_and_pairs_run_from_any_directory_on_the_compiled_in_pool() {
    let server = MockServer::start(|_| Reply::openai_text("```rhai\nsubmit(\"0\");\n```", 50, 5));
    let elsewhere = tempfile::tempdir().unwrap();
    for family in ["oolong", "pairs"] {
        let o = Command::new(env!("CARGO_BIN_EXE_rlm"))
            .current_dir(elsewhere.path())
            .args([
                "eval",
                family,
                "--n",
                "2",
                "--lengths",
                "4k",
                "--quiet",
                "--json",
            ])
            .args(common::loopback_models(&server))
            .env_remove("OPENAI_API_KEY")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{family}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["family"], family);
        assert_eq!(rows[0]["n"], 2);
        assert_eq!(rows[0]["failed"], 0, "{rows:?}");
    }
}
