//! Hardening through the real binary: signals mid-run and mid-batch, a full
//! disk under `--trace`, `--out` and standard output, and API keys swept
//! from every output a user or a log collector can see.
//!
//! A loopback [`MockServer`] plays the models. Synchronisation is by
//! polling what the server has seen (bounded waits), never by sleeping a
//! guessed amount.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use rlm::testing::{MockServer, Reply, Request};

mod common;
use common::{code, jsonl, rlm, text};

/// How long any wait may take before the test fails instead of hanging.
/// Generous: the machine may be busy building or running other tests.
const PATIENCE: Duration = Duration::from_secs(90);

/// Polls `ready` until it holds; fails the test after [`PATIENCE`].
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child whose stdout and stderr go to files, so they can be read after
/// it exits without a reader thread.
struct Spawned {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

fn spawn(mut cmd: Command, dir: &Path, name: &str) -> Spawned {
    let (stdout, stderr) = (
        dir.join(format!("{name}.stdout")),
        dir.join(format!("{name}.stderr")),
    );
    let child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .expect("spawn the rlm binary");
    Spawned {
        child,
        stdout,
        stderr,
    }
}

impl Spawned {
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits (bounded) for the exit; returns the code, stdout and stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "rlm did not exit; stderr so far:\n{}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            status.code(),
            std::fs::read_to_string(&self.stdout).unwrap(),
            std::fs::read_to_string(&self.stderr).unwrap(),
        )
    }
}

fn no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "rlm panicked:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------

/// One root turn fanning out four sub-calls; it would submit their answers.
const FAN_OUT: &str = r#"let answers = llm_batch(["slow a", "slow b", "slow c", "slow d"]);
submit(answers);"#;

/// `rlm run` stopped by `signal` while its cell waits on sub-calls that never answer.
fn interrupt_a_run(signal: &str, output: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, trace) = (dir.path().join("ctx.txt"), dir.path().join("trace.jsonl"));
    std::fs::write(&ctx, "a\nb\nc\nd\n").unwrap();
    let server = MockServer::start(|req| {
        if req.is_root_turn() {
            Reply::openai_text(&code(FAN_OUT), 100, 10)
        } else {
            Reply::Hang
        }
    });
    let subs = |s: &MockServer| s.requests().iter().filter(|r| !r.is_root_turn()).count();
    let mut cmd = rlm(dir.path());
    cmd.args([
        "run",
        "--max-retries",
        "0",
        "--query",
        "What is in it?",
        "--output",
        output,
    ])
    .args(common::loopback_models(&server))
    .arg("--context")
    .arg(&ctx)
    .arg("--trace")
    .arg(&trace);
    let child = spawn(cmd, dir.path(), "run");
    wait_until("all four sub-calls are in flight", || subs(&server) == 4);
    child.signal(signal);
    let (code, stdout, stderr) = child.finish();

    assert_eq!(code, Some(130), "stdout: {stdout}\nstderr: {stderr}");
    no_panic(&stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    // The run stopped where it was: no further root turn was asked for.
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.is_root_turn())
            .count(),
        1
    );
    if output == "json" {
        let result: Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        assert_eq!(result["status"], "interrupted", "{result}");
        assert!(result["answer"].is_null(), "{result}");
        assert_eq!(result["usage"]["gpt-5"]["calls"], 1, "{result}");
    } else {
        assert!(stdout.trim().is_empty(), "no answer to print: {stdout}");
    }

    let events = jsonl(&trace);
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names.first(), Some(&"run_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"final"), "{names:?}");
    assert_eq!(names.iter().filter(|n| **n == "final").count(), 1);
    let last = &events[events.len() - 1];
    assert_eq!(last["status"], "interrupted", "{last}");
    assert_eq!(last["iterations"], 1, "{last}");
    let cell = events
        .iter()
        .find(|e| e["event"] == "cell")
        .expect("the interrupted cell is traced");
    assert!(
        cell["error"]
            .as_str()
            .is_some_and(|e| e.contains("interrupted")),
        "{cell}"
    );
    assert!(cell["submitted"].is_null(), "{cell}");
}

#[test]
fn sigint_mid_run_exits_130_with_a_complete_trace() {
    interrupt_a_run("INT", "text");
}

#[test]
fn sigterm_mid_run_exits_130_with_a_complete_trace_and_json_result() {
    interrupt_a_run("TERM", "json");
}

/// Six tasks: `fast` ones finish, `slow` ones hang in their sub-call.
/// With two workers, t0 and t1 finish, t2 and t3 hang, t4 and t5 wait.
fn batch_tasks(dir: &Path) -> PathBuf {
    let kinds = ["fast", "fast", "slow", "slow", "fast", "fast"];
    let mut lines = String::new();
    for (i, kind) in kinds.iter().enumerate() {
        let task = serde_json::json!({
            "id": format!("t{i}"),
            "query": "What is the first line?",
            "context_text": format!("{kind}-{i}\n"),
        });
        lines.push_str(&format!("{task}\n"));
    }
    let path = dir.join("tasks.jsonl");
    std::fs::write(&path, lines).unwrap();
    path
}

/// Root: ask the sub-model about the first line and submit its answer.
/// Sub-model: echo the prompt, or hang on `slow` prompts when `hang` is set.
fn batch_server(hang: bool) -> MockServer {
    MockServer::start(move |req| {
        if req.is_root_turn() {
            return Reply::openai_text(
                &code("let a = llm_query(`about ${context.line(1)}`);\nsubmit(a);"),
                100,
                10,
            );
        }
        let prompt = req.prompt();
        if hang && prompt.contains("slow") {
            Reply::Hang
        } else {
            Reply::openai_text(&format!("seen {prompt}"), 10, 2)
        }
    })
}

fn batch_command(dir: &Path, server: &MockServer, tasks: &Path, out: &Path) -> Command {
    let mut cmd = batch_with_jobs(dir, server, tasks, out, 2);
    cmd.arg("--trace-dir").arg(dir.join("traces"));
    cmd
}

fn by_id(rows: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in rows {
        m.entry(r["id"].as_str().unwrap().to_string())
            .or_default()
            .push(r.clone());
    }
    m
}

fn interrupt_a_batch(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tasks = batch_tasks(dir.path());
    let out = dir.path().join("out.jsonl");
    let server = batch_server(true);
    let hanging = |s: &MockServer| {
        s.requests()
            .iter()
            .filter(|r| !r.is_root_turn() && r.prompt().contains("slow"))
            .count()
    };
    let child = spawn(
        batch_command(dir.path(), &server, &tasks, &out),
        dir.path(),
        "batch",
    );
    wait_until("t0 and t1 are written and t2, t3 hang", || {
        hanging(&server) == 2 && std::fs::read_to_string(&out).is_ok_and(|s| s.lines().count() == 2)
    });
    child.signal(signal);
    let (code, stdout, stderr) = child.finish();

    assert_eq!(code, Some(130), "stdout: {stdout}\nstderr: {stderr}");
    no_panic(&stderr);
    assert!(
        stderr.contains("re-run the same command to resume"),
        "{stderr}"
    );
    assert!(stdout.trim().is_empty(), "{stdout}");
    let rows = jsonl(&out);
    let ids = by_id(&rows);
    assert_eq!(
        ids.keys().map(String::as_str).collect::<Vec<_>>(),
        ["t0", "t1", "t2", "t3"],
        "finished and interrupted tasks are written, unstarted ones are not"
    );
    for (id, n) in [("t0", 0), ("t1", 1)] {
        let r = &ids[id][0];
        assert_eq!(r["status"], "submitted", "{r}");
        assert_eq!(r["answer"], format!("seen about fast-{n}"), "{r}");
    }
    for id in ["t2", "t3"] {
        let r = &ids[id][0];
        assert_eq!(r["status"], "interrupted", "{r}");
        assert!(r["answer"].is_null(), "{r}");
    }
    for (id, status) in [
        ("t0", "submitted"),
        ("t1", "submitted"),
        ("t2", "interrupted"),
        ("t3", "interrupted"),
    ] {
        let events = jsonl(&dir.path().join("traces").join(format!("{id}.jsonl")));
        let last = events.last().unwrap();
        assert_eq!(
            (&last["event"], &last["status"]),
            (&Value::from("final"), &Value::from(status)),
            "{id}: {last}"
        );
    }
    assert!(!dir.path().join("traces/t4.jsonl").exists());

    // Resume, against a provider that now answers everything: only the
    // interrupted and unstarted tasks run; finished ones are not asked again.
    let server = batch_server(false);
    let o = batch_command(dir.path(), &server, &tasks, &out)
        .output()
        .unwrap();
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("ran 4 now (4 submitted), 2 already ended")
            && stderr.contains("6 in ")
            && stderr.contains("6 submitted"),
        "{stderr}"
    );
    let asked: BTreeSet<String> = server
        .requests()
        .iter()
        .filter(|r| !r.is_root_turn())
        .map(|r| r.prompt())
        .collect();
    assert_eq!(
        asked,
        [
            "about fast-4",
            "about fast-5",
            "about slow-2",
            "about slow-3"
        ]
        .map(String::from)
        .into(),
    );
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.is_root_turn())
            .count(),
        4
    );
    let ids = by_id(&jsonl(&out));
    assert_eq!(ids.len(), 6);
    for (id, rows) in &ids {
        // The interrupted tasks' lines were superseded and compacted away.
        assert_eq!(rows.len(), 1, "{id}: {rows:?}");
        let last = rows.last().unwrap();
        assert_eq!(last["status"], "submitted", "{last}");
        assert!(
            last["answer"]
                .as_str()
                .is_some_and(|a| a.starts_with("seen about ")),
            "{last}"
        );
    }
}

#[test]
fn sigint_mid_batch_keeps_finished_results_and_resumes_the_rest() {
    interrupt_a_batch("INT");
}

#[test]
fn sigterm_mid_batch_keeps_finished_results_and_resumes_the_rest() {
    interrupt_a_batch("TERM");
}

// ---------------------------------------------------------------------------
// A full disk
// ---------------------------------------------------------------------------

/// `/dev/full` fails every write with ENOSPC, like a full disk.
fn dev_full() -> Option<&'static Path> {
    let path = Path::new("/dev/full");
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipped: this system has no /dev/full to stand in for a full disk");
        None
    }
}

/// A root that asks the sub-model once and submits the answer.
fn one_call_server() -> MockServer {
    MockServer::start(|req| {
        if req.is_root_turn() {
            Reply::openai_text(&code(r#"submit(llm_query("the answer?"));"#), 100, 10)
        } else {
            Reply::openai_text("forty-two", 10, 2)
        }
    })
}

fn run_command(dir: &Path, server: &MockServer) -> Command {
    let ctx = dir.join("ctx.txt");
    std::fs::write(&ctx, "some context\n").unwrap();
    let mut cmd = rlm(dir);
    cmd.args([
        "run",
        "--max-retries",
        "0",
        "--query",
        "What is the answer?",
    ])
    .args(common::loopback_models(server))
    .arg("--context")
    .arg(&ctx);
    cmd
}

#[test]
fn a_run_whose_trace_disk_is_full_still_answers_and_warns() {
    let Some(full) = dev_full() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = one_call_server();

    let o = run_command(dir.path(), &server)
        .arg("--trace")
        .arg(full)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    no_panic(&stderr);
    assert_eq!(stdout, "forty-two\n");
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("rlm: warning:"))
        .unwrap_or_else(|| panic!("no warning about the trace:\n{stderr}"));
    assert!(
        warning.contains("/dev/full") && warning.contains("No space left on device"),
        "{warning}"
    );

    let o = run_command(dir.path(), &server)
        .args(["--output", "json", "--trace"])
        .arg(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let result: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(result["answer"], "forty-two");
    assert!(
        result["trace_error"]
            .as_str()
            .is_some_and(|e| e.contains("/dev/full") && e.contains("No space left on device")),
        "{result}"
    );
}

/// A command whose standard output was `/dev/full` exits 1 naming the
/// problem, without a panic.
fn assert_full_stdout_error(o: &std::process::Output, label: &str) {
    let stderr = text(&o.stderr);
    no_panic(&stderr);
    assert_eq!(o.status.code(), Some(1), "{label}: {stderr}");
    assert!(
        stderr.contains("rlm: error: writing to standard output")
            && stderr.contains("No space left on device"),
        "{label}: {stderr}"
    );
}

/// `exec` and `stats` print through the same path as `run`: a full disk is a
/// clear error (exit 1), a reader that went away (`| head`) a quiet exit.
#[test]
fn exec_and_stats_on_a_full_or_closed_standard_output_do_not_panic() {
    let Some(full) = dev_full() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (log, script) = (dir.path().join("app.log"), dir.path().join("many.rhai"));
    std::fs::write(&log, "alpha\nbeta\n").unwrap();
    std::fs::write(&script, "for i in 0..20000 { print(`line ${i}`); }").unwrap();
    let exec = |c: &mut Command| {
        c.arg("exec").arg(&script).arg("--context").arg(&log);
    };
    let stats = |c: &mut Command| {
        c.arg("stats").arg(&log).arg("--json");
    };
    for (name, args) in [("exec", &exec as &dyn Fn(&mut Command)), ("stats", &stats)] {
        let mut c = rlm(dir.path());
        args(&mut c);
        let o = c
            .stdout(File::options().write(true).open(full).unwrap())
            .output()
            .unwrap();
        assert_full_stdout_error(&o, name);

        // A pipe whose reader has gone.
        let mut c = rlm(dir.path());
        args(&mut c);
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let stderr = text(&o.stderr);
        no_panic(&stderr);
        assert_eq!(o.status.code(), Some(0), "{name}: {stderr}");
        assert!(stderr.is_empty(), "{name}: {stderr}");
    }
}

#[test]
fn a_run_whose_standard_output_is_full_fails_clearly_instead_of_panicking() {
    let Some(full) = dev_full() else { return };
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    let server = one_call_server();
    for output in ["text", "json"] {
        let o = run_command(dir.path(), &server)
            .args(["--output", output, "--trace"])
            .arg(&trace)
            .stdout(File::options().write(true).open(full).unwrap())
            .output()
            .unwrap();
        assert_full_stdout_error(&o, output);
        // The trace, on another disk, still holds the answer.
        let events = jsonl(&trace);
        let last = events.last().unwrap();
        assert_eq!(
            (&last["event"], &last["answer"]),
            (&Value::from("final"), &Value::from("forty-two"))
        );
    }
}

fn three_tasks(dir: &Path) -> PathBuf {
    let tasks = dir.join("tasks.jsonl");
    let lines: String = (0..3)
        .map(|i| format!("{{\"id\": \"t{i}\", \"query\": \"q\", \"context_text\": \"x\"}}\n"))
        .collect();
    std::fs::write(&tasks, lines).unwrap();
    tasks
}

fn simple_batch(dir: &Path, server: &MockServer, tasks: &Path, out: &Path) -> Command {
    batch_with_jobs(dir, server, tasks, out, 1)
}

/// `rlm batch` over the loopback model, without retries.
fn batch_with_jobs(dir: &Path, server: &MockServer, tasks: &Path, out: &Path, jobs: u8) -> Command {
    let mut cmd = rlm(dir);
    cmd.arg("batch")
        .arg(tasks)
        .arg("--out")
        .arg(out)
        .args(["--max-retries", "0", "--jobs", &jobs.to_string()])
        .args(common::loopback_models(server));
    cmd
}

#[test]
fn a_batch_whose_results_disk_is_full_stops_and_says_so() {
    let Some(full) = dev_full() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tasks = three_tasks(dir.path());
    let server = one_call_server();
    let o = simple_batch(dir.path(), &server, &tasks, full)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    no_panic(&stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("rlm: error:"))
        .unwrap_or_else(|| panic!("no error line:\n{stderr}"));
    assert!(
        error.contains("/dev/full") && error.contains("No space left on device"),
        "{error}"
    );
    assert!(
        !stderr.contains("interrupted"),
        "nobody interrupted it: {stderr}"
    );
    // The first result could not be written, so no further task was started
    // (one root call), and that result is on standard output, whole.
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.is_root_turn())
            .count(),
        1
    );
    let rescued: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(rescued.len(), 1, "{stdout}");
    assert_eq!(
        (
            &rescued[0]["id"],
            &rescued[0]["status"],
            &rescued[0]["answer"]
        ),
        (
            &Value::from("t0"),
            &Value::from("submitted"),
            &Value::from("forty-two")
        )
    );
}

#[test]
fn a_batch_whose_trace_disk_is_full_finishes_and_warns() {
    let Some(full) = dev_full() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tasks = three_tasks(dir.path());
    let out = dir.path().join("out.jsonl");
    let server = one_call_server();

    // A trace directory that is a device is refused before any call.
    let o = simple_batch(dir.path(), &server, &tasks, &out)
        .arg("--trace-dir")
        .arg(full)
        .output()
        .unwrap();
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--trace-dir /dev/full exists and is not a directory"),
        "{stderr}"
    );
    assert!(server.requests().is_empty());

    // One task's trace lands on the full disk: the batch finishes, and
    // that task's result and the summary say its trace is incomplete.
    let traces = dir.path().join("traces");
    std::fs::create_dir(&traces).unwrap();
    std::os::unix::fs::symlink(full, traces.join("t1.jsonl")).unwrap();
    let o = simple_batch(dir.path(), &server, &tasks, &out)
        .arg("--trace-dir")
        .arg(&traces)
        .output()
        .unwrap();
    let stderr = text(&o.stderr);
    no_panic(&stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "rlm: warning: 1 task trace(s) are incomplete; the first, task t1: writing trace"
        ) && stderr.contains("No space left on device"),
        "{stderr}"
    );
    let rows = by_id(&jsonl(&out));
    assert_eq!(rows.len(), 3);
    for (id, rows) in &rows {
        let r = &rows[0];
        assert_eq!(r["answer"], "forty-two", "{r}");
        if id == "t1" {
            assert!(
                r["trace_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("No space left on device")),
                "{r}"
            );
        } else {
            assert!(r.get("trace_error").is_none(), "{r}");
            assert_eq!(jsonl(&traces.join(format!("{id}.jsonl"))).len(), 6);
        }
    }
}

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

/// Fake keys, long and distinctive, so a leak of any 8-character piece shows.
const OPENAI_KEY: &str = "sk-test-Zq7HvR2mWx9KpL4nJ8bT5cY3dF6gQ0sE";
const ANTHROPIC_KEY: &str = "sk-ant-api03-Mu8Xe1Wk6Ro4Ty9Pa2Ls7Dn3Vb5Hc0Jf";

/// Fails if `output` holds either key or any 8-character run of one.
fn assert_no_key(label: &str, output: &str) {
    for key in [OPENAI_KEY, ANTHROPIC_KEY] {
        for start in 0..=key.len() - 8 {
            let fragment = &key[start..start + 8];
            assert!(
                !output.contains(fragment),
                "{label} leaks {fragment:?} of a key:\n{output}"
            );
        }
    }
}

/// Sub-calls that fail the ways providers and proxies echo keys back.
fn echo_key(req: &Request) -> Reply {
    if req.path.ends_with("/messages") {
        return Reply::status_json(
            401,
            serde_json::json!({"type": "error", "error": {"type": "authentication_error",
                "message": format!("invalid x-api-key: {ANTHROPIC_KEY}")}}),
        );
    }
    let raw = |status: u16, body: String| Reply::Raw {
        status,
        headers: Vec::new(),
        body: body.into_bytes(),
    };
    match req.prompt().as_str() {
        "echo-401" => Reply::error(
            401,
            &format!("Incorrect API key provided: {OPENAI_KEY}. Also seen as sk-test-****************Q0sE."),
        ),
        "echo-500" => Reply::error(500, &format!("upstream failed for key {OPENAI_KEY}")),
        "echo-502" => raw(
            502,
            format!("<html><body>Bad gateway. Authorization: Bearer {OPENAI_KEY}</body></html>"),
        ),
        "echo-malformed" => raw(200, format!("not json; key={OPENAI_KEY}")),
        other => Reply::openai_text(&format!("fine: {other}"), 10, 2),
    }
}

/// Root turns that drive every sub-call failure, then try to reach the
/// environment from scripts, then let an error end a cell, then submit.
fn sweep_turn(turn: usize) -> String {
    match turn {
        1 => code(
            r#"print(llm_batch(["echo-401", "echo-500", "echo-502", "echo-malformed", "ok"]));
print(llm_batch(["echo-anthropic"], #{model: "anthropic:claude-test"}));"#,
        ),
        2 => [
            r#"print(env("OPENAI_API_KEY"));"#,
            r#"import "/proc/self/environ" as e; print(e);"#,
            r#"print(`${OPENAI_API_KEY} ${ANTHROPIC_API_KEY}`);"#,
        ]
        .map(code)
        .join("\n"),
        3 => code(r#"let x = llm_query("echo-401"); print(x);"#),
        _ => code(r#"submit("swept");"#),
    }
}

/// The sweep's server: root turns by number, except a root that refuses
/// queries containing `REFUSE` with the key echoed, on either protocol.
fn sweep_server() -> MockServer {
    MockServer::start(|req| {
        // A root turn's Anthropic content is a list of blocks (its cache breakpoints).
        let first_user = req.first_user_message();
        if !req.is_root_turn() {
            return echo_key(req);
        }
        if first_user.contains("REFUSE") {
            return if req.path.ends_with("/messages") {
                Reply::error(500, &format!("overloaded, key {ANTHROPIC_KEY}"))
            } else {
                Reply::error(401, &format!("Incorrect API key provided: {OPENAI_KEY}"))
            };
        }
        Reply::openai_text(&sweep_turn(req.message_count().div_ceil(2)), 100, 10)
    })
}

/// The binary running `command` with both keys set and paired with the
/// loopback server (a key goes only to a base URL set beside it), every
/// log switch a user might try, and the server for both protocols.
fn keyed(dir: &Path, server: &MockServer, command: &str) -> Command {
    let mut c = rlm(dir);
    c.arg(command)
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .env("OPENAI_BASE_URL", server.openai_url())
        .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        .env("ANTHROPIC_BASE_URL", server.url())
        .env("RUST_LOG", "trace")
        .env("RUST_BACKTRACE", "full")
        .env("RLM_LOG", "debug")
        .args(["--base-url", &server.openai_url()])
        .args(["--anthropic-base-url", &server.url()])
        .args(["--max-retries", "0"]);
    c
}

/// Everything a process printed, labelled.
fn outputs(label: &str, o: &std::process::Output) -> [(String, String); 2] {
    [
        (format!("{label} stdout"), text(&o.stdout)),
        (format!("{label} stderr"), text(&o.stderr)),
    ]
}

#[test]
fn no_key_or_key_fragment_reaches_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx.txt");
    std::fs::write(&ctx, "alpha\nbeta\n").unwrap();
    let server = sweep_server();
    let mut seen: Vec<(String, String)> = Vec::new();
    let run = |args: &[&str], trace: Option<&Path>| {
        let mut c = keyed(dir.path(), &server, "run");
        c.args(args).arg("--context").arg(&ctx);
        if let Some(t) = trace {
            c.arg("--trace").arg(t);
        }
        c.output().unwrap()
    };

    // A run through every sub-call failure, env probes and a failing cell.
    let trace = dir.path().join("run.jsonl");
    let o = run(
        &[
            "--model",
            "gpt-5",
            "--sub-model",
            "gpt-5-mini",
            "--query",
            "Sweep.",
            "--output",
            "json",
        ],
        Some(&trace),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let result: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(result["answer"], "swept");
    assert_eq!(result["usage"]["gpt-5-mini"]["errors"], 5, "{result}");
    let events = jsonl(&trace);
    let sub_errors: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "sub_call")
        .filter_map(|e| e["error"].as_str())
        .collect();
    for status in [
        "HTTP 401",
        "HTTP 500",
        "HTTP 502",
        "malformed",
        "claude-test: HTTP 401",
    ] {
        assert!(
            sub_errors.iter().any(|e| e.contains(status)),
            "no {status} error traced: {sub_errors:?}"
        );
    }
    // The echoes really carried the key: they arrive scrubbed (a malformed
    // body is not quoted at all).
    assert!(
        sub_errors
            .iter()
            .all(|e| e.contains("[redacted]") || e.contains("malformed")),
        "{sub_errors:?}"
    );
    let cells: Vec<&Value> = events.iter().filter(|e| e["event"] == "cell").collect();
    assert_eq!(
        cells.len(),
        6,
        "turn 1, three env probes, the failing call, submit"
    );
    assert!(
        cells[1..5].iter().all(|c| c["error"].is_string()),
        "scripts reached the environment: {cells:?}"
    );
    seen.extend(outputs("run", &o));
    seen.push(("run trace".into(), std::fs::read_to_string(&trace).unwrap()));

    // Root failures: OpenAI 401 in JSON, Anthropic 500 in text.
    let o = run(
        &[
            "--model",
            "gpt-5",
            "--query",
            "REFUSE me",
            "--output",
            "json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let result: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        result["error"]
            .as_str()
            .is_some_and(|e| e.contains("HTTP 401") && e.contains("[redacted]")),
        "{result}"
    );
    seen.extend(outputs("refused run (json)", &o));
    let trace = dir.path().join("refused.jsonl");
    let o = run(
        &["--model", "anthropic:claude-root", "--query", "REFUSE me"],
        Some(&trace),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("HTTP 500"), "{}", text(&o.stderr));
    seen.extend(outputs("refused run (text)", &o));
    seen.push((
        "refused trace".into(),
        std::fs::read_to_string(&trace).unwrap(),
    ));

    // A batch with the same sweep as one task and a refused root as another.
    let tasks = dir.path().join("tasks.jsonl");
    std::fs::write(
        &tasks,
        "{\"id\": \"sweep\", \"query\": \"Sweep.\", \"context_text\": \"alpha\"}\n{\"id\": \"refused\", \"query\": \"REFUSE me\", \"context_text\": \"beta\"}\n",
    )
    .unwrap();
    let (out, traces) = (dir.path().join("out.jsonl"), dir.path().join("traces"));
    let o = keyed(dir.path(), &server, "batch")
        .arg(&tasks)
        .arg("--out")
        .arg(&out)
        .arg("--trace-dir")
        .arg(&traces)
        .args(["--model", "gpt-5", "--sub-model", "gpt-5-mini"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let rows = by_id(&jsonl(&out));
    assert_eq!(rows["sweep"][0]["answer"], "swept");
    assert!(rows["refused"][0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("HTTP 401") && e.contains("[redacted]")));
    seen.extend(outputs("batch", &o));
    seen.push((
        "batch results".into(),
        std::fs::read_to_string(&out).unwrap(),
    ));
    for id in ["sweep", "refused"] {
        let path = traces.join(format!("{id}.jsonl"));
        seen.push((
            format!("batch trace {id}"),
            std::fs::read_to_string(path).unwrap(),
        ));
    }

    // A script run directly, whose call fails and ends it with an error.
    let script = dir.path().join("probe.rhai");
    std::fs::write(
        &script,
        r#"print(llm_batch(["echo-401", "echo-502"])); llm_query("echo-500");"#,
    )
    .unwrap();
    for output in ["text", "json"] {
        let o = keyed(dir.path(), &server, "exec")
            .arg(&script)
            .arg("--context")
            .arg(&ctx)
            .args(["--sub-model", "gpt-5-mini", "--output", output])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains("HTTP 500"), "{}", text(&o.stderr));
        seen.extend(outputs(&format!("exec ({output})"), &o));
    }

    // The keys were sent, so their absence everywhere else means something.
    let requests = server.requests();
    assert!(requests
        .iter()
        .any(|r| r.header("authorization") == Some(&format!("Bearer {OPENAI_KEY}"))));
    assert!(requests
        .iter()
        .any(|r| r.header("x-api-key") == Some(ANTHROPIC_KEY)));
    // Nor do echoed keys travel on to the root model in cell outputs.
    for r in &requests {
        seen.push((format!("request {} body", r.index), text(&r.body)));
    }
    for (label, output) in &seen {
        assert_no_key(label, output);
    }
}

#[test]
fn debug_formatting_of_configs_and_clients_never_shows_a_key() {
    use rlm::config::{Overrides, Settings};
    use rlm::llm::{ApiKey, Ledger, LlmClient, LlmConfig, PriceTable};

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("rlm.toml");
    std::fs::write(&empty, "").unwrap();
    let overrides = Overrides {
        config: Some(empty),
        ..Overrides::default()
    };
    let settings = Settings::resolve_with(&overrides, |name| match name {
        "OPENAI_API_KEY" => Some(OPENAI_KEY.to_string()),
        "ANTHROPIC_API_KEY" => Some(format!("  {ANTHROPIC_KEY}\n")),
        _ => None,
    })
    .unwrap();
    assert!(settings.llm.openai_api_key.is_some() && settings.llm.anthropic_api_key.is_some());
    let config = LlmConfig {
        openai_api_key: ApiKey::new(OPENAI_KEY),
        ..settings.llm.clone()
    };
    let client = LlmClient::new(
        config.clone(),
        Arc::new(Ledger::new(PriceTable::default(), Default::default())),
    )
    .unwrap();
    let key = ApiKey::new(ANTHROPIC_KEY).unwrap();
    for (label, shown) in [
        ("Settings", format!("{settings:?} {settings:#?}")),
        ("LlmConfig", format!("{config:?} {config:#?}")),
        ("LlmClient", format!("{client:?} {client:#?}")),
        ("ApiKey", format!("{key} {key:?} {key:#?}")),
    ] {
        assert!(shown.contains("redacted"), "{label}: {shown}");
        assert_no_key(label, &shown);
    }
}
