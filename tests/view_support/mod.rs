//! A recorded recursive run for the viewer's tests: `rlm run` against a
//! loopback model, three runs deep, with a cell that prints HTML.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rlm::testing::{MockServer, Reply};

/// What the top run's cell prints besides the child's answer: it must show
/// as text, never run.
pub const HOSTILE: &str =
    "</script><script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">";

/// The loopback model: the top run asks a child, the child asks a
/// grandchild, the grandchild asks a sub-model, and each submits.
pub fn server() -> MockServer {
    MockServer::start(|req| {
        if !req.is_root_turn() {
            return Reply::openai_text("seven words", 40, 3);
        }
        let first = req.first_user_message();
        let body = if first.contains("QGRAND") {
            "let w = llm_query(`How many words? ${context}`);\nsubmit(w);".to_string()
        } else if first.contains("QCHILD") {
            "let g = rlm_query(\"QGRAND count the words\", context);\nprint(`grandchild said ${g}`);\nsubmit(g);".to_string()
        } else {
            format!(
                "let a = rlm_query(\"QCHILD ask a grandchild\", context.lines(1, 2));\nprint(`child said ${{a}}`);\nprint({HOSTILE:?});\nsubmit(a);"
            )
        };
        Reply::openai_text(&format!("One step.\n```rhai\n{body}\n```"), 500, 60)
    })
}

/// Runs the recursive run in `dir` and returns its trace.
pub fn record(dir: &Path, server: &MockServer) -> PathBuf {
    let context = dir.join("context.txt");
    std::fs::write(&context, "alpha beta gamma\ndelta epsilon\nzeta eta\n").unwrap();
    let trace = dir.join("run.jsonl");
    let out = crate::common::rlm(dir)
        .args([
            "run",
            "--quiet",
            "--max-depth",
            "3",
            "--query",
            "QTOP what is here?",
        ])
        .arg("--context")
        .arg(&context)
        .arg("--trace")
        .arg(&trace)
        .args(crate::common::loopback_models(server))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    trace
}
