//! `-v` through the binary: each cell's line sums its sub-calls, batch
//! lines carry their task's id, and piped output has no colour.

mod common;
mod view_support;

use rlm::testing::{MockServer, Reply};

#[test]
fn a_recursive_run_prints_each_cells_sub_calls_with_their_cost_indented_by_depth() {
    let dir = tempfile::tempdir().unwrap();
    let server = view_support::server();
    std::fs::write(dir.path().join("c.txt"), "alpha beta\ngamma\n").unwrap();
    let (code, _, err) = common::output(
        common::rlm(dir.path())
            .args(["run", "-v", "--max-depth", "3", "--context", "c.txt"])
            .args(["--query", "QTOP what?"])
            .args(common::loopback_models(&server))
            .env("OPENAI_API_KEY", "sk-test-never-printed"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains('\x1b'), "no colour when piped: {err}");
    assert!(!err.contains("sk-test-never-printed"));
    // The grandchild's cell made the one sub-call: priced gpt-5-mini.
    let cell = err
        .lines()
        .find(|l| l.starts_with("    [0.1.1] turn 1 cell 1/1 done"))
        .unwrap_or_else(|| panic!("no indented grandchild cell line:\n{err}"));
    assert!(cell.contains("; 1 sub-call(s), "), "{cell}");
    assert!(cell.contains(", $0.0000"), "{cell}");
    let top = err
        .lines()
        .find(|l| l.starts_with("[0] turn 1 cell 1/1 done"))
        .unwrap();
    assert!(
        top.contains("; 0 sub-call(s)") || !top.contains("sub-call"),
        "{top}"
    );
}

#[test]
fn batch_verbose_lines_start_with_their_task_id() {
    let server = MockServer::start(|req| {
        if req.is_root_turn() {
            Reply::openai_text(
                "```rhai\nsubmit(llm_query(`lines: ${context.line_count()}`));\n```",
                100,
                20,
            )
        } else {
            Reply::openai_text("two", 10, 2)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut tasks = String::new();
    for id in ["first", "second"] {
        tasks.push_str(
            &serde_json::json!({"id": id, "query": "Lines?", "context_text": "a\nb\n"}).to_string(),
        );
        tasks.push('\n');
    }
    std::fs::write(dir.path().join("tasks.jsonl"), tasks).unwrap();
    let (code, _, err) = common::output(
        common::rlm(dir.path())
            .args(["batch", "tasks.jsonl", "--out", "out.jsonl", "-v"])
            .args(common::loopback_models(&server)),
    );
    assert_eq!(code, 0, "{err}");
    for id in ["first", "second"] {
        let cell = err
            .lines()
            .find(|l| l.starts_with(&format!("{id}: [0] turn 1 cell 1/1 done")))
            .unwrap_or_else(|| panic!("no cell line of {id}:\n{err}"));
        assert!(cell.contains("; 1 sub-call(s), "), "{cell}");
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("{id}: [0] run end: submitted"))),
            "{err}"
        );
    }
}

#[test]
fn exec_verbose_prints_the_scripts_sub_calls_and_their_sum() {
    let server = MockServer::start(|_| Reply::openai_text("fine", 10, 2));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), "a\nb\n").unwrap();
    std::fs::write(
        dir.path().join("s.rhai"),
        "let xs = llm_batch([\"one\", \"two\"]);\nprint(xs.len());",
    )
    .unwrap();
    let (code, out, err) = common::output(
        common::rlm(dir.path())
            .args(["exec", "s.rhai", "-v", "--context", "c.txt"])
            .args([
                "--sub-model",
                "gpt-5-mini",
                "--base-url",
                &server.openai_url(),
            ]),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "2");
    assert_eq!(
        err.matches("[exec] sub-call to gpt-5-mini done").count(),
        2,
        "{err}"
    );
    let cell = err
        .lines()
        .find(|l| l.starts_with("[exec] turn 1 cell 1/1 done"))
        .unwrap_or_else(|| panic!("no cell line:\n{err}"));
    assert!(
        cell.contains("; 2 sub-call(s), ") && cell.contains(", $0."),
        "{cell}"
    );
}

#[test]
fn eval_verbose_labels_each_tasks_lines_and_its_trace_directory_has_a_page_per_task() {
    let server = MockServer::start(|req| {
        if req
            .system()
            .unwrap_or_default()
            .contains("Recursive Language Model")
        {
            Reply::openai_text(
                "```rhai\nlet m = context.matches(`special magic numbers for [a-z-]+ is: ([0-9]{7})`, 1);\nsubmit(m[0].groups[0]);\n```",
                500,
                40,
            )
        } else {
            Reply::openai_text("I don't know", 10, 3)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = common::output(
        common::rlm(dir.path())
            .args(["eval", "niah", "--n", "2", "--lengths", "8k", "--seed", "7"])
            .args(["--pool", "builtin", "-v", "--trace-dir", "traces"])
            .args(common::loopback_models(&server)),
    );
    assert!(code == 0 || code == 3, "{err}");
    let cells: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(": [0] turn 1 cell 1/1 done"))
        .collect();
    assert_eq!(
        cells.len(),
        2,
        "one cell line per task, each labelled:\n{err}"
    );
    let (code, _, err) = common::output(common::rlm(dir.path()).args(["view", "traces"]));
    assert_eq!(code, 0, "{err}");
    let index = std::fs::read_to_string(dir.path().join("traces/index.html")).unwrap();
    let pages = std::fs::read_dir(dir.path().join("traces"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".html") && name != "index.html"
        })
        .count();
    assert_eq!(pages, 2, "{index}");
}
