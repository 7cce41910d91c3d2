//! Hostile scripts through the binary: deep values, oversized results and
//! long scans end with a clear error, and the process keeps its memory
//! within the session's limit (checked under an address-space cap, as a
//! user would run it with `prlimit --as`).

use std::path::Path;
use std::process::Command;

mod common;
use common::{output, rlm};

/// A context of `mib` MiB of log-like lines, several documents' worth of
/// words and punctuation.
fn big_context(dir: &Path, mib: usize) -> std::path::PathBuf {
    let path = dir.join("big.log");
    let line = "2025-01-01 INFO engine ready. user=42 magic number: 7, value: 9\n";
    let body = line.repeat((mib << 20) / line.len());
    std::fs::write(&path, body).unwrap();
    path
}

/// `rlm exec` of `script` over `context`, under an address-space cap when
/// `prlimit` is installed (it is on Debian: util-linux).
fn exec_capped(dir: &Path, context: &Path, script: &str, cap_mib: usize) -> (i32, String, String) {
    let file = dir.join("script.rhai");
    std::fs::write(&file, script).unwrap();
    let mut c = if prlimit_works() {
        let mut c = Command::new("prlimit");
        c.arg(format!("--as={}", cap_mib << 20))
            .arg(env!("CARGO_BIN_EXE_rlm"));
        c.current_dir(dir);
        c
    } else {
        rlm(dir)
    };
    c.args(["exec", "--timeout", "60"])
        .arg(&file)
        .arg("--context")
        .arg(context);
    output(&mut c)
}

/// `rlm exec FLAGS` of `script` over a two-byte context, in `dir`.
fn exec_small(dir: &Path, script: &str, flags: &[&str]) -> (i32, String, String) {
    let (ctx, file) = (dir.join("c.txt"), dir.join("s.rhai"));
    std::fs::write(&ctx, "x\n").unwrap();
    std::fs::write(&file, script).unwrap();
    output(
        rlm(dir)
            .arg("exec")
            .args(flags)
            .arg(&file)
            .arg("--context")
            .arg(&ctx),
    )
}

fn prlimit_works() -> bool {
    Command::new("prlimit")
        .args(["--as=4000000000", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn deep_values_end_the_cell_without_aborting_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("c.txt");
    std::fs::write(&ctx, "x\n").unwrap();
    let chain = "let g = || 0; for i in 0..300000 { let h = g; g = || h; }";
    for (script, want_exit) in [
        (format!("{{ {chain} print(\"built\"); g }}"), 0),
        (format!("{chain} print(\"built\"); submit(g);"), 0),
        (format!("{chain} throw g;"), 1),
    ] {
        let (code, stdout, stderr) = exec_capped(dir.path(), &ctx, &script, 8192);
        assert_eq!(
            code, want_exit,
            "{script}\nstdout: {stdout}\nstderr: {stderr}"
        );
        assert!(!stderr.contains("overflowed its stack"), "{stderr}");
    }
}

#[test]
fn native_results_are_sized_before_they_are_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = big_context(dir.path(), 64);
    for (script, says) in [
        (r#"print(context.split_on(" ").len());"#, "array limit"),
        (
            r#"print(context.grep("engine", #{context: 100000000, max: 20}).len());"#,
            "memory limit",
        ),
        (
            r#"print(context.matches(`(?s)((((.+))))`, 1).len());"#,
            "string limit",
        ),
        ("print(str(context).len());", "string limit"),
        (r#"print(("" + context).len());"#, "string limit"),
        ("print(to_json(context).len());", "string limit"),
        (r#"print(join([context], "").len());"#, "string limit"),
        ("print(counts([context]).len());", "string limit"),
        ("print(unique([context, context]).len());", "string limit"),
        ("print(context.to_upper().len());", "string limit"),
        ("submit(context);", "string limit"),
        (
            r#"print(context.matches(".", 4000000).len());"#,
            "memory limit",
        ),
        ("print(context.parse_int());", "is not a number"),
        ("print(context.chunks(1).len());", "array limit"),
    ] {
        let (code, stdout, stderr) = exec_capped(dir.path(), &ctx, script, 3072);
        assert_eq!(code, 1, "{script}\nstdout: {stdout}\nstderr: {stderr}");
        assert!(stderr.contains(says), "{script}: {stderr}");
        // Errors quote values briefly, never the context.
        assert!(
            stderr.len() < 4000,
            "{script}: {} bytes of stderr",
            stderr.len()
        );
    }
}

#[test]
fn what_a_script_keeps_is_bounded_whatever_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("c.txt");
    std::fs::write(&ctx, "x\n").unwrap();
    let big = "let s = \"x\"; for i in 0..23 { s += s; }";
    for keep in [
        "let m = #{}; for i in 0..400 { m[\"k\" + i] = s + i; }",
        "let a = range(400); for i in 0..400 { a[i] = s + i; }",
        "let a = []; for i in 0..400 { a.push((s + i).to_text()); }",
        "let fs = []; for i in 0..400 { let v = s + i; fs.push(|| v.len()); }",
        "for i in 0..400 { print(s + i); }",
    ] {
        let script = format!("{big}\n{keep}\nprint(\"kept it all\");");
        let (code, stdout, stderr) = exec_capped(dir.path(), &ctx, &script, 3072);
        assert_eq!(
            code,
            1,
            "{keep}\nstdout: {} bytes\nstderr: {stderr}",
            stdout.len()
        );
        assert!(stderr.contains("memory limit"), "{keep}: {stderr}");
        assert!(!stdout.contains("kept it all"));
    }
}

#[test]
fn the_operation_limit_counts_callbacks_and_the_timeout_bounds_native_scans() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = exec_small(
        dir.path(),
        "let r = range(40).map(|x| { let z = 0; for i in 0..1000000 { z += i; } z }); print(r.len());",
        &["--max-operations", "5000000"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("5000000 operations"), "{stderr}");
}

/// A root model whose first turn, for a query containing "deep", builds a
/// million-link closure chain and leaves it as the cell's value; every run
/// then submits the number of lines.
fn deep_root() -> rlm::testing::MockServer {
    rlm::testing::MockServer::start(|req| {
        let first = req.first_user_message();
        let turn = req.message_count().div_ceil(2);
        let code = if first.contains("deep") && turn == 1 {
            "let g = || 0; for i in 0..1000000 { let h = g; g = || h; } print(\"built\"); g"
        } else {
            "submit(context.line_count());"
        };
        rlm::testing::Reply::openai_text(&common::code(code), 100, 10)
    })
}

#[test]
fn a_deep_value_in_a_run_or_a_batch_task_leaves_the_trace_and_the_other_tasks_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = deep_root();
    let ctx = dir.path().join("c.txt");
    std::fs::write(&ctx, "a\nb\n").unwrap();
    let trace = dir.path().join("t.jsonl");
    let (code, stdout, stderr) = output(
        rlm(dir.path())
            .args(["run", "--quiet", "--output", "json", "--query", "go deep"])
            .args(common::loopback_models(&server))
            .arg("--context")
            .arg(&ctx)
            .arg("--trace")
            .arg(&trace),
    );
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let events = common::jsonl(&trace);
    assert_eq!(events.last().unwrap()["event"], "final");
    assert_eq!(events.last().unwrap()["answer"], 2);

    let tasks = dir.path().join("tasks.jsonl");
    let lines: String = (0..6)
        .map(|i| {
            let query = if i == 2 { "go deep" } else { "count" };
            format!(
                "{}\n",
                serde_json::json!({"id": format!("t{i}"), "query": query, "context_text": "x\ny\n"})
            )
        })
        .collect();
    std::fs::write(&tasks, lines).unwrap();
    let out = dir.path().join("results.jsonl");
    let (code, stdout, stderr) = output(
        rlm(dir.path())
            .args(["batch", "--quiet", "--concurrency", "2"])
            .arg(&tasks)
            .arg("--out")
            .arg(&out)
            .args(common::loopback_models(&server)),
    );
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let results = common::jsonl(&out);
    assert_eq!(results.len(), 6);
    assert!(
        results.iter().all(|r| r["status"] == "submitted"),
        "{results:?}"
    );
}

#[test]
fn exec_timeout_bounds_a_batch_of_slow_sub_calls() {
    let dir = tempfile::tempdir().unwrap();
    let server = rlm::testing::MockServer::start(|_| {
        rlm::testing::Reply::openai_text("ok", 5, 1).after(std::time::Duration::from_millis(200))
    });
    let url = server.openai_url();
    let (code, stdout, stderr) = exec_small(
        dir.path(),
        "let a = llm_batch(range(20000).map(|i| `item ${i}`)); print(a.len());",
        &[
            "--timeout",
            "1",
            "--concurrency",
            "8",
            "--sub-model",
            "gpt-5-mini",
            "--base-url",
            &url,
        ],
    );
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("--timeout"), "{stderr}");
    // At 8 in flight and 200 ms each, a second allows about 40 calls.
    let sent = server.requests().len();
    assert!(sent < 2000, "{sent} calls were sent after the deadline");
}

#[test]
fn max_memory_sets_the_session_limit_and_is_range_checked() {
    let dir = tempfile::tempdir().unwrap();
    let script = "let s = \"x\"; for i in 0..20 { s += s; } let a = []; for i in 0..100 { a.push(s + i); } print(a.len());";
    let run = |flag: &str| exec_small(dir.path(), script, &["--max-memory", flag]);
    let (code, _, stderr) = run("64M");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("memory limit of 64.0 MiB"), "{stderr}");
    let (code, stdout, stderr) = run("2G");
    assert_eq!((code, stdout.trim()), (0, "100"), "{stderr}");
    for bad in ["0", "1k", "nope", "2T", "5.5G"] {
        let (code, _, stderr) = run(bad);
        assert_eq!(code, 2, "{bad}: {stderr}");
        assert!(stderr.contains("--max-memory"), "{bad}: {stderr}");
    }
}

#[test]
fn paid_answers_that_together_pass_the_string_limit_are_all_kept() {
    // 2,100 answers of 8,000 characters are 16.8 MB together, more than
    // the 16 MiB string limit, which used to count them as one string and
    // throw them all away with "Length of string exceeded".
    let dir = tempfile::tempdir().unwrap();
    let answer = "a".repeat(8000);
    let server = rlm::testing::MockServer::start(move |_| {
        rlm::testing::Reply::openai_text(&answer, 5, 2000)
    });
    let url = server.openai_url();
    let (code, stdout, stderr) = exec_small(
        dir.path(),
        "let a = llm_batch(range(2100).map(|i| `q ${i}`)); print(`${a.len()} ${sum(a.map(|x| x.len()))}`);",
        &["--sub-model", "gpt-5-mini", "--base-url", &url],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "2100 16800000");
}
