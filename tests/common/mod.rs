//! Helpers shared by the tests that drive the `rlm` binary.
//!
//! Each test crate compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Environment variables that would point the binary at a real model or
/// change its budgets; every test starts without them.
const MODEL_ENV: &[&str] = &[
    "RLM_MODEL",
    "RLM_SUB_MODEL",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "RLM_MAX_LLM_CALLS",
    "RLM_MAX_TOKENS",
];

/// The binary, run in `dir` (so no stray `rlm.toml` is read) with no model
/// settings or keys inherited from the environment.
pub fn rlm(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rlm"));
    c.current_dir(dir);
    for var in MODEL_ENV {
        c.env_remove(var);
    }
    c
}

/// Runs a command to its end: exit code (-1 if killed), stdout, stderr.
pub fn output(c: &mut Command) -> (i32, String, String) {
    let out = c.output().expect("run the rlm binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A root model's reply that runs `body` as one Rhai cell.
pub fn code(body: &str) -> String {
    format!("Here is the next step.\n```rhai\n{body}\n```")
}

/// Every line of a JSONL file, each required to be whole JSON, and the
/// file to end in a newline (no torn last line).
pub fn jsonl(path: &Path) -> Vec<Value> {
    let body =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        body.is_empty() || body.ends_with('\n'),
        "{} ends with a torn line",
        path.display()
    );
    body.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {l}", path.display()))
        })
        .collect()
}

/// Process output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Flags that make `server` the root model (`gpt-5`) and the sub-model
/// (`gpt-5-mini`) of a command.
pub fn loopback_models(server: &rlm::testing::MockServer) -> Vec<String> {
    let url = server.openai_url();
    [
        "--model",
        "gpt-5",
        "--sub-model",
        "gpt-5-mini",
        "--base-url",
        &url,
    ]
    .map(String::from)
    .to_vec()
}

/// The Python the tests drive clients with: `.ci/venv`, made by `.ci/setup`
/// with the pinned `mcp` and `openai` packages.
pub fn venv_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run .ci/setup to create the venv with the pinned mcp and openai clients",
        venv.display()
    );
    venv
}
