//! `rlm mcp` driven by the official MCP Python SDK (tests/python/mcp_client.py)
//! as an editor or agent drives it: the real binary as a stdio subprocess,
//! its models a scripted loopback server.

use std::path::{Path, PathBuf};
use std::process::Command;

use rlm::testing::{MockServer, Reply};

mod common;
use common::{code, venv_python};

/// A root that counts ERROR lines in two turns and asks the sub-model once.
fn model() -> MockServer {
    MockServer::start(|req| {
        if !req.is_root_turn() {
            return Reply::openai_text("4", 12, 1);
        }
        if req.message_count() <= 1 {
            Reply::openai_text(
                &code(r#"let hits = context.grep("ERROR"); print(hits.len());"#),
                400,
                30,
            )
        } else {
            Reply::openai_text(
                &code(
                    r#"submit(`errors: ${context.grep("ERROR").len()}, sub: ${llm_query("2 + 2?")}`);"#,
                ),
                600,
                40,
            )
        }
    })
}

/// root/notes.txt, root/sub/data.log, a secret outside the root, and two
/// symlinks from inside the root to it.
fn tree(dir: &Path) -> (PathBuf, PathBuf) {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(
        root.join("notes.txt"),
        "ok\nERROR disk full\nok\nERROR net down\n",
    )
    .unwrap();
    std::fs::write(root.join("sub/data.log"), "ERROR late\nerror lowercase\n").unwrap();
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET: the key is 1234\n").unwrap();
    std::os::unix::fs::symlink(&secret, root.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(dir, root.join("up")).unwrap();
    (root, secret)
}

#[test]
fn an_mcp_client_lists_and_calls_every_tool_and_paths_out_of_the_root_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (root, secret) = tree(dir.path());
    let traces = dir.path().join("traces");
    let server = model();
    let out = Command::new(venv_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/mcp_client.py"))
        .env("RLM_BIN", env!("CARGO_BIN_EXE_rlm"))
        .env("RLM_ROOT", &root)
        .env("RLM_MODEL_URL", server.openai_url())
        .env("RLM_OUTSIDE", &secret)
        .env("RLM_TRACES", &traces)
        .env_remove("OPENAI_API_KEY")
        .env_remove("RLM_MODEL")
        .output()
        .expect("run the MCP client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the MCP client failed:\nstdout: {stdout}\nstderr: {stderr}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("no summary ({e}): {stdout}"));
    eprintln!("{summary:#}");
    assert_eq!(summary["tools"].as_array().map(Vec::len), Some(5));

    // The trace rlm_answer named is the run's, whole.
    let trace_path = Path::new(summary["trace"].as_str().unwrap());
    assert!(trace_path.starts_with(&traces), "{}", trace_path.display());
    let trace = common::jsonl(trace_path);
    assert!(trace.len() > 4, "{trace:?}");

    // The refusals say why, in terms a model can act on.
    let refusals = &summary["refusals"];
    let why = |k: &str| refusals[k].as_str().unwrap_or_default().to_string();
    assert!(
        why("context_open:parent").contains("`..` may not appear"),
        "{refusals}"
    );
    assert!(
        why("context_open:absolute").contains("outside the root"),
        "{refusals}"
    );
    assert!(
        why("context_open:system").contains("outside the root"),
        "{refusals}"
    );
    assert!(
        why("context_open:symlink").contains("through a symlink"),
        "{refusals}"
    );
    assert!(
        why("context_open:symlinked_dir").contains("through a symlink"),
        "{refusals}"
    );
    assert!(
        why("rlm_answer:symlink").contains("through a symlink"),
        "{refusals}"
    );

    // The hostile cells were stopped by the limit each one ran into.
    let loop_error = summary["loop_error"].as_str().unwrap();
    assert!(loop_error.contains("operations"), "{loop_error}");
    let memory = summary["memory_bomb_error"].as_str().unwrap();
    assert!(memory.contains("memory limit"), "{memory}");
    let string = summary["string_bomb_error"].as_str().unwrap();
    assert!(
        string.contains("string") || string.contains("memory"),
        "{string}"
    );

    // The secret never reached the model either.
    for req in server.requests() {
        let body = String::from_utf8_lossy(&req.body);
        assert!(!body.contains("TOP-SECRET"), "the model saw the secret");
    }
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.is_root_turn())
            .count(),
        2,
        "only the one rlm_answer that was allowed ran"
    );
}
