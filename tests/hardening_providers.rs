//! Hostile providers and hostile task lines, through the real binary: a
//! `Retry-After` of 1e30, a body that never ends or trickles in, a 200
//! answer that echoes the key in every form, and a batch task whose
//! fields are out of range. Each ends with a clear error, the other work
//! carries on, and the process exits.
//!
//! A loopback [`MockServer`] plays the provider. Every child is waited on
//! with a generous bound, so a hang fails the test instead of CI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use rlm::testing::{MockServer, Reply, Request};

mod common;
use common::{code, jsonl, rlm, text};

/// How long a child may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(120);

/// Runs `cmd` to its end, with stdout and stderr in files so a full pipe
/// cannot block it; kills it and fails after [`PATIENCE`].
fn finish(mut cmd: Command, dir: &Path) -> (i32, String, String) {
    let (out, err) = (dir.join("child.stdout"), dir.join("child.stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn the rlm binary");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "rlm did not exit (a hang); stderr so far:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &PathBuf| text(&std::fs::read(p).unwrap());
    (status.code().unwrap_or(-1), read(&out), read(&err))
}

fn no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "rlm panicked:\n{stderr}"
    );
}

/// `rlm run` of one question over a small file, against `server`.
fn run_command(dir: &Path, server: &MockServer, trace: &Path) -> Command {
    let ctx = dir.join("ctx.txt");
    std::fs::write(&ctx, "alpha\nbeta\n").unwrap();
    let mut c = rlm(dir);
    c.args(["run", "--query", "What is in it?", "--quiet"])
        .args(common::loopback_models(server))
        .arg("--context")
        .arg(&ctx)
        .arg("--trace")
        .arg(trace);
    c
}

/// The trace ends with exactly one `final` event, and returns it.
fn final_event(trace: &Path) -> Value {
    let events = jsonl(trace);
    let finals: Vec<&Value> = events.iter().filter(|e| e["event"] == "final").collect();
    assert_eq!(finals.len(), 1, "{events:?}");
    assert_eq!(events.last(), Some(finals[0]), "final is not last");
    finals[0].clone()
}

/// A 429 carrying `header: value`.
fn slow_down(header: &str, value: &str) -> Reply {
    Reply::Raw {
        status: 429,
        headers: vec![(header.into(), value.into())],
        body: br#"{"error": {"message": "slow down", "type": "rate_limit"}}"#.to_vec(),
    }
}

// ---------------------------------------------------------------------------
// Retry-After
// ---------------------------------------------------------------------------

#[test]
fn a_retry_after_of_1e30_or_1e300_ms_is_an_http_error_not_a_panic() {
    for (header, value) in [("retry-after", "1e30"), ("retry-after-ms", "1e300")] {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace.jsonl");
        let (h, v) = (header.to_string(), value.to_string());
        let server = MockServer::start(move |_| slow_down(&h, &v));
        let mut cmd = run_command(dir.path(), &server, &trace);
        cmd.args(["--max-retries", "0"]);
        let (code, _, stderr) = finish(cmd, dir.path());
        no_panic(&stderr);
        assert_eq!(code, 1, "{header}: {value}: {stderr}");
        assert!(stderr.contains("HTTP 429"), "{stderr}");
        assert_eq!(final_event(&trace)["status"], "failed");
    }
}

#[test]
fn a_retry_after_of_1e30_waits_no_longer_than_the_runs_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    let server = MockServer::start(|_| slow_down("retry-after", "1e30"));
    let mut cmd = run_command(dir.path(), &server, &trace);
    // Five retries would wait 5 minutes at the 60 s cap; the deadline is 2 s.
    cmd.args(["--max-retries", "5", "--timeout", "2"]);
    let (code, _, stderr) = finish(cmd, dir.path());
    no_panic(&stderr);
    assert_eq!(code, 7, "the timeout status: {stderr}");
    assert_eq!(final_event(&trace)["status"], "timeout");
    assert_eq!(server.requests().len(), 1, "the wait was cut, not retried");
}

#[test]
fn negative_nan_garbage_and_date_retry_afters_fall_back_to_backoff_and_succeed() {
    for (header, value) in [
        ("retry-after", "-5"),
        ("retry-after", "NaN"),
        ("retry-after", "soon, maybe"),
        ("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("retry-after-ms", "-1e300"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace.jsonl");
        let (h, v) = (header.to_string(), value.to_string());
        let server = MockServer::start(move |req| {
            if req.index == 0 {
                slow_down(&h, &v)
            } else {
                Reply::openai_text(&code(r#"submit("done");"#), 10, 5)
            }
        });
        let mut cmd = run_command(dir.path(), &server, &trace);
        cmd.args(["--max-retries", "1"]);
        let (code, stdout, stderr) = finish(cmd, dir.path());
        no_panic(&stderr);
        assert_eq!(code, 0, "{header}: {value}: {stderr}");
        assert_eq!(stdout.trim(), "done");
    }
}

#[test]
fn a_batch_whose_provider_says_retry_after_1e30_fails_each_task_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("tasks.jsonl");
    let lines: String = (0..4)
        .map(|i| format!("{{\"id\": \"t{i}\", \"query\": \"q\", \"context_text\": \"x\"}}\n"))
        .collect();
    std::fs::write(&tasks, lines).unwrap();
    let out = dir.path().join("out.jsonl");
    let server = MockServer::start(|_| slow_down("retry-after", "1e30"));
    let mut cmd = rlm(dir.path());
    cmd.arg("batch")
        .arg(&tasks)
        .arg("--out")
        .arg(&out)
        .args(["--jobs", "2", "--max-retries", "0", "--quiet"])
        .args(common::loopback_models(&server));
    let (code, _, stderr) = finish(cmd, dir.path());
    no_panic(&stderr);
    assert_eq!(code, 3, "{stderr}");
    let rows = jsonl(&out);
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(r["status"], "failed", "{r}");
        assert!(r["error"].as_str().unwrap().contains("HTTP 429"), "{r}");
    }
}

// ---------------------------------------------------------------------------
// Response size and time
// ---------------------------------------------------------------------------

/// Caps the child's address space, so a body read without limit ends the
/// child (as an allocation failure) instead of taking the machine.
fn address_space_cap(cmd: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe and touches only this process.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// A 200 whose body never ends: a completion's start, then 1 MiB chunks.
fn endless() -> Reply {
    Reply::Stream {
        status: 200,
        head: br#"{"choices": [{"message": {"role": "assistant", "content": ""#.to_vec(),
        chunk: vec![b'x'; 1 << 20],
        repeat: None,
        every: Duration::ZERO,
    }
}

#[test]
fn an_endless_200_body_fails_at_the_size_limit_under_a_2_gib_address_space() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    let server = MockServer::start(|_| endless());
    let mut cmd = run_command(dir.path(), &server, &trace);
    cmd.args(["--max-retries", "3"]);
    address_space_cap(&mut cmd, 2 << 30);
    let (code, _, stderr) = finish(cmd, dir.path());
    no_panic(&stderr);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("larger than the limit of 16777216 bytes")
            && stderr.contains("--max-response-bytes"),
        "{stderr}"
    );
    // Too large is not worth another try.
    assert_eq!(server.requests().len(), 1);
    assert_eq!(final_event(&trace)["status"], "failed");
}

#[test]
fn the_response_size_limit_is_set_by_flag_or_config_and_holds_for_sub_calls() {
    let big = "y".repeat(8 << 10);
    let server = MockServer::start(move |req| {
        if !req.is_root_turn() {
            return Reply::openai_text(&big, 10, 2000);
        }
        if req.message_count() == 1 {
            Reply::openai_text(
                &code(r#"let a = llm_query("big please"); print(a.len());"#),
                10,
                5,
            )
        } else {
            Reply::openai_text(&code(r#"submit("after the error");"#), 10, 5)
        }
    });
    for how in ["flag", "config"] {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace.jsonl");
        let mut cmd = run_command(dir.path(), &server, &trace);
        cmd.args(["--max-retries", "0"]);
        if how == "flag" {
            cmd.args(["--max-response-bytes", "4K"]);
        } else {
            std::fs::write(dir.path().join("rlm.toml"), "max_response_bytes = 4096\n").unwrap();
        }
        let (code, stdout, stderr) = finish(cmd, dir.path());
        no_panic(&stderr);
        assert_eq!(code, 0, "{how}: {stderr}");
        assert_eq!(stdout.trim(), "after the error");
        let events = jsonl(&trace);
        let sub = events
            .iter()
            .find(|e| e["event"] == "sub_call")
            .expect("the sub-call is traced");
        assert!(
            sub["error"]
                .as_str()
                .is_some_and(|e| e.contains("larger than the limit of 4096 bytes")),
            "{how}: {sub}"
        );
    }
}

#[test]
fn a_body_that_trickles_in_is_cut_off_by_the_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    let server = MockServer::start(|_| Reply::Stream {
        status: 200,
        head: b"{".to_vec(),
        chunk: b" ".to_vec(),
        repeat: None,
        every: Duration::from_millis(100),
    });
    let mut cmd = run_command(dir.path(), &server, &trace);
    cmd.args(["--max-retries", "0", "--request-timeout", "1"]);
    let (code, _, stderr) = finish(cmd, dir.path());
    no_panic(&stderr);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
}

// ---------------------------------------------------------------------------
// Keys echoed in answers
// ---------------------------------------------------------------------------

/// A fake key, random-looking so a leak of any piece of it shows.
const KEY: &str = "sk-canary-Q7HvR2mWx9KpL4nJ8bT5cYzWqXvK";

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    data.chunks(3)
        .flat_map(|g| {
            let mut b = [0u8; 3];
            b[..g.len()].copy_from_slice(g);
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            [18, 12, 6, 0]
                .map(|s| ABC[((n >> s) & 63) as usize] as char)
                .into_iter()
                .take(g.len() + 1)
        })
        .collect()
}

/// Every transformed form of the key a provider might echo, one a line.
fn echoes(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    [
        format!("Authorization: Bearer {key}"),
        key.to_uppercase(),
        key.chars().map(|c| format!("{c} ")).collect(),
        key.chars().rev().collect(),
        base64(format!("Authorization: Bearer {key}").as_bytes()),
        base64(key.as_bytes()),
        hex,
        format!("{}****{}", &key[..7], &key[key.len() - 6..]),
    ]
    .join("\n")
}

/// Fails if `output` holds any 8-character run of the key in any of the
/// covered forms, or the masked form's visible end.
fn assert_no_key(label: &str, output: &str) {
    let squeezed: String = output
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    let lower = KEY.to_lowercase();
    let reversed: String = lower.chars().rev().collect();
    let hex: String = KEY.bytes().map(|b| format!("{b:02x}")).collect();
    // The characters of the key's base64 that depend on its bytes alone,
    // at each of the three alignments it can have in a longer text.
    let cores: Vec<String> = (0..3)
        .map(|align| {
            let mut bytes = vec![0u8; align];
            bytes.extend_from_slice(KEY.as_bytes());
            let encoded = base64(&bytes);
            encoded[(8 * align).div_ceil(6)..(8 * (align + KEY.len())) / 6].to_string()
        })
        .collect();
    for start in 0..=KEY.len() - 8 {
        for (form, fragment) in [
            ("any case or spacing", &lower[start..start + 8]),
            ("reversed", &reversed[start..start + 8]),
        ] {
            assert!(
                !squeezed.contains(fragment),
                "{label} leaks {fragment:?} ({form}):\n{output}"
            );
        }
        if 2 * start + 16 <= hex.len() {
            let h = &hex[2 * start..2 * start + 16];
            assert!(!squeezed.contains(h), "{label} leaks hex {h}:\n{output}");
        }
    }
    for core in &cores {
        for w in core.as_bytes().windows(8) {
            let w = std::str::from_utf8(w).unwrap();
            assert!(!output.contains(w), "{label} leaks base64 {w}:\n{output}");
        }
    }
    assert!(
        !output.contains(&KEY[KEY.len() - 6..]),
        "{label} leaks the masked key's end:\n{output}"
    );
}

/// Root turns that echo the key themselves, print a sub-answer that echoes
/// it, then submit that answer; sub-calls echo the key they were sent.
fn echo_server() -> MockServer {
    MockServer::start(|req: &Request| {
        let key = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("")
            .to_string();
        if !req.is_root_turn() {
            return Reply::openai_text(&format!("I saw:\n{}", echoes(&key)), 10, 50);
        }
        let step = if req.message_count() == 1 {
            code(r#"let a = llm_query("what did you see?"); print(a);"#)
        } else {
            code("submit(a);")
        };
        Reply::openai_text(&format!("{step}\nBy the way:\n{}", echoes(&key)), 10, 50)
    })
}

#[test]
fn a_key_echoed_in_200_answers_reaches_no_output_trace_result_or_root_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = echo_server();
    let mut seen: Vec<(String, String)> = Vec::new();

    for output in ["text", "json"] {
        let trace = dir.path().join(format!("run-{output}.jsonl"));
        let mut cmd = run_command(dir.path(), &server, &trace);
        // Paired: OPENAI_BASE_URL names the server beside the key, so the
        // key is sent there (an unpaired --base-url gets none).
        cmd.env("OPENAI_API_KEY", KEY)
            .env("OPENAI_BASE_URL", server.openai_url())
            .args(["--max-retries", "0", "--output", output]);
        let (code, stdout, stderr) = finish(cmd, dir.path());
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains("I saw") && stdout.contains("[redacted]"),
            "{stdout}"
        );
        seen.push((format!("run {output} stdout"), stdout));
        seen.push((format!("run {output} stderr"), stderr));
        seen.push((
            format!("run {output} trace"),
            std::fs::read_to_string(&trace).unwrap(),
        ));
    }

    let tasks = dir.path().join("tasks.jsonl");
    std::fs::write(
        &tasks,
        "{\"id\": \"echo\", \"query\": \"q\", \"context_text\": \"alpha\"}\n",
    )
    .unwrap();
    let (out, traces) = (dir.path().join("out.jsonl"), dir.path().join("traces"));
    let mut cmd = rlm(dir.path());
    cmd.arg("batch")
        .arg(&tasks)
        .arg("--out")
        .arg(&out)
        .arg("--trace-dir")
        .arg(&traces)
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", server.openai_url())
        .args(["--max-retries", "0", "--quiet"])
        .args(common::loopback_models(&server));
    let (code, stdout, stderr) = finish(cmd, dir.path());
    assert_eq!(code, 0, "{stderr}");
    let rows = jsonl(&out);
    assert_eq!(rows[0]["status"], "submitted", "{rows:?}");
    seen.push(("batch stdout".into(), stdout));
    seen.push(("batch stderr".into(), stderr));
    seen.push((
        "batch results".into(),
        std::fs::read_to_string(&out).unwrap(),
    ));
    seen.push((
        "batch trace".into(),
        std::fs::read_to_string(traces.join("echo.jsonl")).unwrap(),
    ));

    let script = dir.path().join("probe.rhai");
    std::fs::write(&script, r#"print(llm_query("what did you see?"));"#).unwrap();
    let mut cmd = rlm(dir.path());
    cmd.arg("exec")
        .arg(&script)
        .arg("--context")
        .arg(dir.path().join("ctx.txt"))
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", server.openai_url())
        .args([
            "--sub-model",
            "gpt-5-mini",
            "--base-url",
            &server.openai_url(),
        ]);
    let (code, stdout, stderr) = finish(cmd, dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("I saw"), "{stdout}");
    seen.push(("exec stdout".into(), stdout));
    seen.push(("exec stderr".into(), stderr));

    // The key was sent, and echoed: its absence everywhere means something.
    let requests = server.requests();
    assert!(requests
        .iter()
        .all(|r| r.header("authorization") == Some(&format!("Bearer {KEY}"))));
    // What root models were sent carries the earlier answers and outputs.
    let later_turns: Vec<&Request> = requests
        .iter()
        .filter(|r| r.is_root_turn() && r.message_count() > 1)
        .collect();
    assert!(!later_turns.is_empty());
    for r in &requests {
        seen.push((format!("request {} body", r.index), text(&r.body)));
    }
    for (label, output) in &seen {
        assert_no_key(label, output);
    }
}

// ---------------------------------------------------------------------------
// Bad task lines
// ---------------------------------------------------------------------------

fn by_id(rows: &[Value]) -> BTreeMap<String, Value> {
    rows.iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

fn submitting_server() -> MockServer {
    MockServer::start(|_| Reply::openai_text(&code(r#"submit("ok");"#), 10, 5))
}

#[test]
fn tasks_with_out_of_range_fields_fail_alone_naming_the_field_and_the_batch_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("tasks.jsonl");
    let bad = [
        ("huge_timeout", r#""timeout_s": 1e30"#, "timeout_s"),
        ("zero_timeout", r#""timeout_s": 0"#, "timeout_s"),
        ("negative_timeout", r#""timeout_s": -3"#, "timeout_s"),
        ("negative_cost", r#""max_cost_usd": -1"#, "max_cost_usd"),
        ("negative_tokens", r#""max_tokens": -5"#, "max_tokens"),
        (
            "fractional_calls",
            r#""max_llm_calls": 2.5"#,
            "max_llm_calls",
        ),
    ];
    let mut lines = String::new();
    for (i, (id, field, _)) in bad.iter().enumerate() {
        lines.push_str(&format!(
            "{{\"id\": \"good{i}\", \"query\": \"q\", \"context_text\": \"x\"}}\n"
        ));
        lines.push_str(&format!(
            "{{\"id\": \"{id}\", \"query\": \"q\", \"context_text\": \"x\", {field}}}\n"
        ));
    }
    std::fs::write(&tasks, lines).unwrap();
    let out = dir.path().join("out.jsonl");
    let server = submitting_server();
    let batch = |extra: &[&str]| {
        let mut cmd = rlm(dir.path());
        cmd.arg("batch")
            .arg(&tasks)
            .arg("--out")
            .arg(&out)
            .args(["--jobs", "3", "--quiet"])
            .args(extra)
            .args(common::loopback_models(&server));
        finish(cmd, dir.path())
    };

    let (code, _, stderr) = batch(&[]);
    no_panic(&stderr);
    assert_eq!(code, 3, "some tasks did not submit: {stderr}");
    let rows = by_id(&jsonl(&out));
    assert_eq!(rows.len(), 2 * bad.len(), "{rows:?}");
    for i in 0..bad.len() {
        assert_eq!(rows[&format!("good{i}")]["status"], "submitted");
    }
    for (id, _, field) in bad {
        let r = &rows[id];
        assert_eq!(r["status"], "failed", "{r}");
        let error = r["error"].as_str().unwrap();
        assert!(error.contains(&format!("`{field}`")), "{id}: {error}");
    }
    assert!(stderr.contains("invalid task"), "{stderr}");
    // Only the good tasks reached the provider.
    assert_eq!(server.requests().len(), bad.len());

    // A resume does not run them again, and ends at once, still saying
    // (and exiting with) what the file holds.
    let (code, _, stderr) = batch(&[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("ran 0 now") && stderr.contains("failed: invalid task"));
    assert_eq!(jsonl(&out).len(), 2 * bad.len());
    // Asked to, it runs them again, and they fail again the same way; their
    // new lines replace the old ones.
    let (code, _, stderr) = batch(&["--retry-failed"]);
    no_panic(&stderr);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains(&format!("ran {} now", bad.len())),
        "{stderr}"
    );
    assert_eq!(jsonl(&out).len(), 2 * bad.len());
    assert_eq!(server.requests().len(), bad.len());
}

/// Panics inside one task's run (here: an observer of its calls, the
/// library's extension point that runs on the task's own thread).
struct PanicsFor(&'static str);

impl rlm::llm::CallObserver for PanicsFor {
    fn on_call(&self, record: &rlm::llm::CallRecord<'_>) {
        if record.tag.scope.as_deref() == Some(self.0) {
            panic!("observer exploded on purpose");
        }
    }
}

#[test]
fn a_task_that_panics_is_a_failed_result_and_the_other_tasks_finish() {
    use rlm::batch::{BatchOptions, BatchRunner, ResultsFile, Task, TaskContext};
    use rlm::driver::RunConfig;
    use rlm::llm::{Ledger, LlmClient, LlmConfig, ModelSpec, PriceTable};

    let server = submitting_server();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = LlmClient::new(
        LlmConfig {
            openai_base_url: server.openai_url(),
            ..LlmConfig::default()
        },
        Arc::new(Ledger::new(PriceTable::default(), Default::default())),
    )
    .unwrap();
    client.observe(Arc::new(PanicsFor("boom")));
    let runner = BatchRunner::new(
        client,
        runtime.handle().clone(),
        BatchOptions {
            jobs: 2,
            shard: None,
            retry: rlm::batch::Retry::default(),
            replay: None,
            trace_dir: None,
            base: RunConfig {
                model: ModelSpec::parse("gpt-5"),
                ..RunConfig::default()
            },
            loader: rlm::ContextBuilder::new(),
        },
    );
    let tasks: Vec<Task> = ["a", "boom", "b", "c"]
        .into_iter()
        .map(|id| Task::new(id, "q", TaskContext::Inline("x".into())))
        .collect();
    let mut bad_timeout = Task::new("built_with_1e30", "q", TaskContext::Inline("x".into()));
    bad_timeout.timeout_s = Some(1e30);
    let dir = tempfile::tempdir().unwrap();
    let (out, existing) = ResultsFile::open(&dir.path().join("out.jsonl")).unwrap();
    let summary = runner.run(
        tasks.into_iter().chain([bad_timeout]).collect(),
        &out,
        &existing.results,
    );
    assert_eq!((summary.ran, summary.submitted), (5, 3), "{summary:?}");
    let rows = by_id(&jsonl(&dir.path().join("out.jsonl")));
    let boom = &rows["boom"];
    assert_eq!(boom["status"], "failed");
    assert!(
        boom["error"]
            .as_str()
            .is_some_and(|e| e.contains("observer exploded on purpose")),
        "{boom}"
    );
    assert!(rows["built_with_1e30"]["error"]
        .as_str()
        .is_some_and(|e| e.contains("`timeout_s`")));
    // The runner is still whole: it runs another batch.
    let again = runner.run(
        vec![Task::new("d", "q", TaskContext::Inline("x".into()))],
        &out,
        &existing.results,
    );
    assert_eq!(again.submitted, 1);
}
