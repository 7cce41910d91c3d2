//! Terminal safety through the real binary: control characters from the
//! context, file names, model answers, `throw` messages and regex errors
//! are escaped in text output, on standard output and standard error, and
//! kept exact in `--output json`; a file name cannot forge a document header.

use std::path::Path;

use serde_json::Value;

use rlm::testing::{MockServer, Reply};

mod common;
use common::{code, output, rlm};

/// ESC[2J clears the screen, OSC 0 sets the window title, OSC 52 writes the
/// clipboard; CR returns to overwrite the line, and NUL and BEL ride along.
const HOSTILE: &str = "before\x1b[2J\x1b]0;owned\x07 \x1b]52;c;ZXZpbA==\x07\rfake\0end\u{9b}31m\n";

/// Fails unless `s` is free of control characters other than newline, tab
/// and the CR of a CRLF.
fn assert_no_raw_controls(label: &str, s: &str) {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let allowed = matches!(c, '\n' | '\t') || (c == '\r' && chars.peek() == Some(&'\n'));
        assert!(
            !c.is_control() || allowed,
            "{label}: raw {c:?} reaches the terminal in:\n{s:?}"
        );
    }
}

fn exec(dir: &Path, script: &str, context: &Path, json: bool) -> (i32, String, String) {
    let path = dir.join("script.rhai");
    std::fs::write(&path, script).unwrap();
    let mut cmd = rlm(dir);
    cmd.arg("exec").arg(&path).arg("--context").arg(context);
    if json {
        cmd.args(["--output", "json"]);
    }
    output(&mut cmd)
}

#[test]
fn control_characters_in_the_context_are_escaped_in_text_and_exact_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("hostile.txt");
    std::fs::write(&ctx, format!("{HOSTILE}crlf line\r\n")).unwrap();

    let (exit, stdout, stderr) = exec(
        dir.path(),
        "print(context); submit(context.line(1));",
        &ctx,
        false,
    );
    assert_eq!(exit, 0, "{stderr}");
    assert_no_raw_controls("exec output", &stdout);
    assert!(
        stdout
            .contains(r"before\x1b[2J\x1b]0;owned\x07 \x1b]52;c;ZXZpbA==\x07\rfake\0end\u{9b}31m"),
        "{stdout}"
    );
    // A CRLF line ending is a line ending, not an overwrite.
    assert!(stdout.contains("crlf line\r\n"), "{stdout:?}");

    let (exit, stdout, stderr) = exec(
        dir.path(),
        "print(context); submit(context.line(1));",
        &ctx,
        true,
    );
    assert_eq!(exit, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    // `print` adds a newline of its own.
    assert_eq!(
        v["output"].as_str().unwrap(),
        format!("{HOSTILE}crlf line\r\n\n")
    );
    assert_eq!(v["answer"].as_str().unwrap(), HOSTILE.trim_end());
}

#[test]
fn a_newline_in_a_file_name_cannot_forge_a_document_header() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    std::fs::write(corpus.join("a.txt"), "public\n").unwrap();
    std::fs::write(corpus.join("b\n==> secrets.txt <=="), "forged\n").unwrap();
    std::fs::write(corpus.join("c\x1b]0;t\x07.txt"), "titled\n").unwrap();

    let (exit, stdout, stderr) = exec(dir.path(), "print(context);", &corpus, true);
    assert_eq!(exit, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let text = v["output"].as_str().unwrap();
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("==> ")).collect();
    assert_eq!(
        headers,
        [
            "==> a.txt <==",
            r"==> b\n==> secrets.txt <== <==",
            r"==> c\x1b]0;t\x07.txt <=="
        ],
        "{text}"
    );

    let names = "for d in documents { print(d.name); }";
    let (exit, stdout, stderr) = exec(dir.path(), names, &corpus, false);
    assert_eq!(exit, 0, "{stderr}");
    assert_eq!(
        stdout,
        "a.txt\nb\\n==> secrets.txt <==\nc\\x1b]0;t\\x07.txt\n"
    );

    let (exit, stdout, stderr) = output(rlm(dir.path()).arg("stats").arg(&corpus));
    assert_eq!(exit, 0, "{stderr}");
    assert_no_raw_controls("stats", &stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.contains("secrets.txt")).count(),
        1,
        "{stdout}"
    );
    assert!(stdout.contains(r"b\n==> secrets.txt <=="), "{stdout}");
    let (_, stdout, _) = output(rlm(dir.path()).args(["stats", "--json"]).arg(&corpus));
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = v["largest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&r"b\n==> secrets.txt <=="), "{names:?}");
}

#[test]
fn a_throw_message_and_a_regex_error_reach_standard_error_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx.txt");
    std::fs::write(&ctx, "plain\n").unwrap();

    let throw = r#"throw "\x1b[2J\x1b]0;owned\x07 boom\rfake";"#;
    let (exit, stdout, stderr) = exec(dir.path(), throw, &ctx, false);
    assert_eq!(exit, 1, "{stdout}{stderr}");
    assert_no_raw_controls("throw", &stderr);
    assert!(
        stderr.contains(r"\x1b[2J\x1b]0;owned\x07 boom\rfake"),
        "{stderr}"
    );

    let regex = r#"context.matches("\x1b]0;x\x07(");"#;
    let (exit, _, stderr) = exec(dir.path(), regex, &ctx, false);
    assert_eq!(exit, 1, "{stderr}");
    assert_no_raw_controls("regex error", &stderr);
    assert!(stderr.contains(r"\x1b]0;x\x07"), "{stderr}");
}

#[test]
fn a_path_with_control_characters_is_escaped_in_error_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (exit, _, stderr) = output(
        rlm(dir.path())
            .arg("stats")
            .arg("missing\x1b]0;owned\x07\nrlm: all good"),
    );
    assert_eq!(exit, 2);
    assert_no_raw_controls("missing path", &stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(r"missing\x1b]0;owned\x07\nrlm: all good"),
        "{stderr}"
    );
}

/// A root model whose cell prints and submits what the sub-model answered,
/// and a sub-model whose answer is hostile.
fn hostile_models() -> MockServer {
    MockServer::start(|req| {
        if req.is_root_turn() {
            Reply::openai_text(
                &code(r#"let a = llm_query("say it"); print("sub said: " + a); submit(a);"#),
                100,
                10,
            )
        } else {
            Reply::openai_text(HOSTILE, 10, 10)
        }
    })
}

#[test]
fn a_model_answer_with_escape_sequences_is_escaped_in_text_and_exact_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx.txt");
    std::fs::write(&ctx, "plain\n").unwrap();
    let server = hostile_models();

    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .args(["run", "--query", "q"])
            .args(common::loopback_models(&server))
            .arg("--context")
            .arg(&ctx),
    );
    assert_eq!(exit, 0, "{stderr}");
    assert_no_raw_controls("answer", &stdout);
    assert_no_raw_controls("run's standard error", &stderr);
    assert!(stdout.contains(r"\x1b[2J\x1b]0;owned\x07"), "{stdout}");
    assert!(stderr.contains(r"sub said: before\x1b[2J"), "{stderr}");

    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .args(["run", "--query", "q", "--output", "json"])
            .args(common::loopback_models(&server))
            .arg("--context")
            .arg(&ctx),
    );
    assert_eq!(exit, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["answer"].as_str(), Some(HOSTILE), "{v}");
}

#[test]
fn a_throw_in_a_run_reaches_the_model_exactly_and_the_terminal_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx.txt");
    std::fs::write(&ctx, "plain\n").unwrap();
    let server =
        MockServer::start(|_| Reply::openai_text(&code(r#"throw "\x1b[2Jwiped\r";"#), 100, 10));
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .args(["run", "--query", "q", "--max-iterations", "2"])
            .args(common::loopback_models(&server))
            .arg("--context")
            .arg(&ctx),
    );
    assert_ne!(exit, 0, "{stdout}{stderr}");
    assert_no_raw_controls("stdout", &stdout);
    assert_no_raw_controls("stderr", &stderr);
    // The model saw the message as the script threw it.
    let second = &server.requests()[1];
    let seen = second.json()["messages"].to_string();
    assert!(seen.contains(r"\u001b[2Jwiped\r"), "{seen}");
}
