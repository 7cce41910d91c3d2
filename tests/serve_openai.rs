//! `rlm serve` driven by the official OpenAI Python client
//! (tests/python/openai_client.py) as code written against the OpenAI SDK
//! drives it: the real binary on a loopback port, its models a scripted
//! loopback server.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use rlm::testing::{MockServer, Reply};

mod common;
use common::{code, rlm, venv_python};

/// A root that counts the context's "FAIL:" lines in two turns and asks
/// the sub-model once: "k failures, sub says 4".
fn model() -> MockServer {
    MockServer::start(|req| {
        if !req.is_root_turn() {
            return Reply::openai_text("4", 12, 1);
        }
        if req.message_count() <= 1 {
            Reply::openai_text(
                &code(r#"let n = context.grep("FAIL:").len(); print(n);"#),
                400,
                30,
            )
        } else {
            Reply::openai_text(
                &code(
                    r#"submit(`${context.grep("FAIL:").len()} failures, sub says ${llm_query("2 + 2?")}`);"#,
                ),
                600,
                40,
            )
        }
    })
}

/// A running `rlm serve`, killed when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Starts `rlm serve` on a free loopback port and waits for its
    /// "listening" line; standard error is drained from then on.
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut cmd = rlm(dir);
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start rlm serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let url = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("rlm serve exited before listening: {seen:?}");
            };
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
            seen.push(line);
        };
        std::thread::spawn(move || for _ in lines {});
        Served { child, url }
    }
}

#[test]
fn the_openai_client_gets_plain_streamed_and_concurrent_answers_and_bad_requests_get_openai_errors()
{
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("logs")).unwrap();
    let log: String = (0..9)
        .map(|i| {
            if i % 2 == 0 {
                format!("FAIL: step {i}\n")
            } else {
                format!("ok: step {i}\n")
            }
        })
        .collect();
    std::fs::write(root.join("logs/run.log"), log).unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET FAIL: hidden\n").unwrap();
    std::os::unix::fs::symlink(&secret, root.join("leak.txt")).unwrap();
    let model = model();
    let url = model.openai_url();
    let traces = dir.path().join("traces");
    let server = Served::start(
        dir.path(),
        &[
            "--root",
            root.to_str().unwrap(),
            "--model",
            "gpt-5",
            "--sub-model",
            "gpt-5-mini",
            "--serve-model",
            "other-root",
            "--base-url",
            &url,
            "--auth-token-env",
            "RLM_SERVE_TOKEN",
            "--max-body-size",
            "64K",
            "--trace-dir",
            traces.to_str().unwrap(),
        ],
        &[("RLM_SERVE_TOKEN", "s3cret-token")],
    );
    let out = Command::new(venv_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/openai_client.py"))
        .env("RLM_SERVE_URL", &server.url)
        .env("RLM_SERVE_TOKEN", "s3cret-token")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .output()
        .expect("run the OpenAI client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the OpenAI client failed:\nstdout: {stdout}\nstderr: {stderr}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("no summary ({e}): {stdout}"));
    eprintln!("{summary:#}");
    assert_eq!(summary["concurrent_right"], 50, "{summary}");

    // Every answered request left a trace; the secret reached no model.
    let traced = std::fs::read_dir(&traces).unwrap().count();
    assert!(traced >= 54, "{traced} traces");
    for req in model.requests() {
        assert!(!String::from_utf8_lossy(&req.body).contains("TOP-SECRET"));
    }
}

#[test]
fn serve_refuses_a_remote_address_without_allow_remote_and_a_missing_token_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = common::output(rlm(dir.path()).args([
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--model",
        "gpt-5",
        "--base-url",
        "http://127.0.0.1:9/v1",
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--allow-remote"), "{stderr}");
    let (code, _, stderr) = common::output(
        rlm(dir.path())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--model",
                "gpt-5",
                "--base-url",
                "http://127.0.0.1:9/v1",
                "--auth-token-env",
                "RLM_TEST_NO_SUCH_TOKEN",
            ])
            .env_remove("RLM_TEST_NO_SUCH_TOKEN"),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("RLM_TEST_NO_SUCH_TOKEN is not set"),
        "{stderr}"
    );
}
