//! `rlm batch` through the binary against a loopback server: results,
//! resume, retry, sharding, bad lines, per-task traces, and a kill mid-batch.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rlm::batch::{parse_shard, parse_tasks, shard_of, ResultsFile};
use rlm::testing::{MockServer, Reply};

mod common;

/// Root model: one turn that counts lines and asks the sub-model once,
/// except for queries containing "FAIL", which the server refuses.
fn server(delay: Duration) -> MockServer {
    MockServer::start(move |req| {
        let first = req.first_user_message();
        if first.contains("FAIL") {
            return Reply::error(400, "this task is refused");
        }
        let reply = if req.is_root_turn() {
            Reply::openai_text("```rhai\nlet n = context.line_count();\nlet w = llm_query(`word count of ${context.line(1)}`);\nsubmit(`${n} lines, ${w}`);\n```", 100, 20)
        } else {
            let words = req.prompt().split_whitespace().count();
            Reply::openai_text(&format!("{words} words"), 10, 2)
        };
        reply.after(delay)
    })
}

fn write_tasks(dir: &Path, n: usize, extra: &str) -> std::path::PathBuf {
    let mut text = String::new();
    for i in 0..n {
        let lines = "line\n".repeat(i % 5 + 1);
        text.push_str(&serde_json::json!({"id": format!("t{i}"), "query": "How many lines?", "context_text": lines}).to_string());
        text.push('\n');
    }
    text.push_str(extra);
    let path = dir.join("tasks.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

fn batch(server: &MockServer, tasks: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rlm"))
        .arg("batch")
        .arg(tasks)
        .arg("--out")
        .arg(out)
        .args(["--max-retries", "0", "--quiet"])
        .args(common::loopback_models(server))
        .args(extra)
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap()
}

fn results(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}")))
        .collect()
}

#[test]
fn runs_tasks_reports_bad_lines_and_resumes_without_repeating() {
    let server = server(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let bad = "{\"id\": \"no-context\", \"query\": \"q\"}\nnot json at all\n{\"id\": \"t0\", \"query\": \"dup\", \"context_text\": \"x\"}\n{\"id\": \"fails\", \"query\": \"please FAIL\", \"context_text\": \"x\"}\n{\"id\": \"missing\", \"query\": \"q\", \"context\": \"/no/such/file.txt\"}\n";
    let tasks = write_tasks(dir.path(), 6, bad);
    let out = dir.path().join("out.jsonl");
    let traces = dir.path().join("traces");
    let o = batch(
        &server,
        &tasks,
        &out,
        &["--jobs", "3", "--trace-dir", traces.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("tasks.jsonl:7: skipped")
            && stderr.contains("tasks.jsonl:8: skipped")
            && stderr.contains("duplicate id"),
        "{stderr}"
    );
    let rs = results(&out);
    assert_eq!(rs.len(), 8);
    let by_id: HashMap<String, &serde_json::Value> = rs
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(by_id["t2"]["answer"], "3 lines, 4 words");
    assert_eq!(by_id["t2"]["status"], "submitted");
    assert_eq!(by_id["t2"]["usage"]["gpt-5"]["calls"], 1);
    assert_eq!(by_id["t2"]["usage"]["gpt-5-mini"]["calls"], 1);
    assert!(by_id["t2"]["wall_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(by_id["fails"]["status"], "failed");
    assert!(by_id["fails"]["error"]
        .as_str()
        .unwrap()
        .contains("this task is refused"));
    assert_eq!(by_id["missing"]["status"], "error");
    assert!(by_id["missing"]["error"]
        .as_str()
        .unwrap()
        .contains("/no/such/file.txt"));
    assert!(stderr.contains("failed: the root model failed"), "{stderr}");
    // Per-task traces, each holding only its own task's calls.
    let trace = std::fs::read_to_string(traces.join("t2.jsonl")).unwrap();
    assert_eq!(
        trace
            .lines()
            .filter(|l| l.contains("\"event\":\"sub_call\""))
            .count(),
        1
    );
    assert!(trace.contains("word count of line"));

    // Re-running skips everything finished, failed ones included...
    let before = server.requests().len();
    let o = batch(&server, &tasks, &out, &[]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ran 0"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(server.requests().len(), before);
    assert_eq!(results(&out).len(), 8);
    // ...unless asked to retry failures.
    let o = batch(&server, &tasks, &out, &["--retry-failed"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ran 2"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn shards_partition_the_tasks_exactly() {
    let server = server(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let tasks = write_tasks(dir.path(), 25, "");
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for i in 0..3 {
        let out = dir.path().join(format!("out{i}.jsonl"));
        let o = batch(&server, &tasks, &out, &["--shard", &format!("{i}/3")]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        for r in results(&out) {
            let id = r["id"].as_str().unwrap().to_string();
            assert_eq!(shard_of(&id, 3), i);
            seen.insert(id);
            total += 1;
        }
    }
    assert_eq!(total, 25, "a task ran in two shards");
    assert_eq!(seen.len(), 25);
    assert!(
        parse_shard("3/3").is_err()
            && parse_shard("a/b").is_err()
            && parse_shard("1/4") == Ok((1, 4))
    );
}

#[test]
fn a_kill_mid_batch_loses_and_duplicates_nothing() {
    let server = server(Duration::from_millis(60));
    let dir = tempfile::tempdir().unwrap();
    let tasks = write_tasks(dir.path(), 30, "");
    let out = dir.path().join("out.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlm"))
        .arg("batch")
        .arg(&tasks)
        .arg("--out")
        .arg(&out)
        .args([
            "--model",
            "gpt-5",
            "--base-url",
            &server.openai_url(),
            "--jobs",
            "2",
            "--quiet",
        ])
        .env_remove("OPENAI_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once a few results are in, well before all 30 are.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&out)
        .map(|s| s.lines().count())
        .unwrap_or(0)
        < 4
    {
        assert!(std::time::Instant::now() < deadline, "no results appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = results(&out).len();
    assert!(partial < 30, "the batch finished before the kill");

    let o = batch(&server, &tasks, &out, &["--jobs", "4"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rs = results(&out);
    let ids: Vec<&str> = rs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), 30, "a task was lost");
    assert_eq!(ids.len(), 30, "a task was run twice");
    assert!(rs.iter().all(|r| r["status"] == "submitted"));
}

#[test]
fn a_torn_last_line_is_cut_before_appending() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let good = r#"{"id":"a","answer":1,"status":"submitted","answer_kind":"submitted","iterations":1,"usage":{},"cost_usd":0.0,"wall_s":0.1,"error":null}"#;
    std::fs::write(&path, format!("{good}\n{{\"id\":\"b\",\"ans")).unwrap();
    let (file, done) = ResultsFile::open(&path).unwrap();
    assert_eq!(done.torn_bytes, Some(14));
    let done = done.results;
    assert_eq!(done.len(), 1);
    assert!(done.contains_key("a"));
    let mut r = done["a"].clone();
    r.id = "c".into();
    file.append(&r).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.ends_with("\n") && !text.contains("\"ans\n"));
}

#[test]
fn task_lines_parse_with_clear_errors() {
    let (tasks, bad) = parse_tasks(concat!(
        "{\"id\": 7, \"query\": \"q\", \"context\": [\"a.txt\", \"b.txt\"], \"model\": \"anthropic:claude-sonnet-4-5\", \"max_iterations\": 5}\n",
        "\n",
        "{\"id\": \"x\", \"query\": \"q\", \"context\": \"a\", \"context_text\": \"b\"}\n",
        "{\"id\": \"y\", \"query\": \"q\", \"context_text\": \"b\", \"colour\": 1}\n",
    ));
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].id, "7");
    assert_eq!(tasks[0].max_iterations, Some(5));
    assert_eq!(bad.len(), 2);
    assert_eq!(bad[0].line, 3);
    assert!(bad[0].message.contains("not both"));
    assert!(bad[1].message.contains("colour"), "{}", bad[1].message);
}
