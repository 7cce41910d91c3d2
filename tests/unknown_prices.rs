//! A model with no known price: every command says its cost is unknown
//! (`null` in JSON, "no price known" in text) instead of reporting $0.

use serde_json::Value;

use rlm::testing::{MockServer, Reply};

mod common;
use common::{code, output, rlm};

/// Not in the price table, as local models (Ollama, vLLM) are not.
const LOCAL: &str = "local-llama-7b";

/// Root turns call the sub-model once and submit; sub-calls answer "ok".
fn server() -> MockServer {
    MockServer::start(|req| {
        if req.is_root_turn() {
            Reply::openai_text(&code(r#"submit(llm_query("Say ok."));"#), 1000, 100)
        } else {
            Reply::openai_text("ok", 200, 5)
        }
    })
}

fn context(dir: &std::path::Path) -> std::path::PathBuf {
    let ctx = dir.join("notes.txt");
    std::fs::write(&ctx, "alpha\nbeta\n").unwrap();
    ctx
}

fn no_dollar_zero(text: &str) {
    assert!(
        !text.contains("$0.0000"),
        "a cost of $0 is reported: {text}"
    );
}

#[test]
fn rlm_run_with_an_unpriced_root_model_reports_its_cost_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let server = server();
    let run = |format: &str| {
        output(
            rlm(dir.path())
                .args(["run", "--model", LOCAL, "--base-url", &server.openai_url()])
                .args(["--query", "Ok?", "--output", format])
                .arg("--context")
                .arg(&ctx),
        )
    };
    let (exit, stdout, stderr) = run("text");
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("no price known"), "{stderr}");
    no_dollar_zero(&stderr);

    let (exit, stdout, stderr) = run("json");
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(result["cost_usd"].is_null(), "{result}");
    assert!(result["totals"]["cost_usd"].is_null(), "{result}");
    assert!(result["usage"][LOCAL]["cost_usd"].is_null(), "{result}");
    assert_eq!(result["usage"][LOCAL]["priced"], false);
    assert_eq!(result["usage"][LOCAL]["calls"], 2);
}

#[test]
fn a_priced_root_with_an_unpriced_sub_model_has_an_unknown_total_but_a_known_root_cost() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let server = server();
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .args(["run", "--model", "gpt-5", "--sub-model", LOCAL])
            .args(["--base-url", &server.openai_url()])
            .args(["--query", "Ok?", "--output", "json"])
            .arg("--context")
            .arg(&ctx),
    );
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(result["cost_usd"].is_null(), "{result}");
    assert!(result["usage"][LOCAL]["cost_usd"].is_null(), "{result}");
    assert!(
        result["usage"]["gpt-5"]["cost_usd"]
            .as_f64()
            .is_some_and(|c| c > 0.0),
        "{result}"
    );
}

#[test]
fn rlm_exec_with_an_unpriced_sub_model_reports_its_cost_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let script = dir.path().join("ask.rhai");
    std::fs::write(&script, r#"print(llm_query("Say ok."));"#).unwrap();
    let server = server();
    let exec = |format: &str| {
        output(
            rlm(dir.path())
                .arg("exec")
                .arg(&script)
                .args(["--sub-model", LOCAL, "--base-url", &server.openai_url()])
                .args(["--output", format])
                .arg("--context")
                .arg(&ctx),
        )
    };
    let (exit, stdout, stderr) = exec("text");
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout, "ok\n");
    assert!(stderr.starts_with("usage: "), "{stderr}");
    assert_eq!(stderr.matches("no price known").count(), 2, "{stderr}");
    no_dollar_zero(&stderr);

    let (exit, stdout, stderr) = exec("json");
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(result["usage"]["total"]["cost_usd"].is_null(), "{result}");
    assert!(
        result["usage"]["by_model"][LOCAL]["cost_usd"].is_null(),
        "{result}"
    );
}

#[test]
fn rlm_batch_with_an_unpriced_model_reports_its_cost_as_unknown_in_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (tasks, out) = (dir.path().join("tasks.jsonl"), dir.path().join("out.jsonl"));
    std::fs::write(
        &tasks,
        "{\"id\": \"a\", \"query\": \"Ok?\", \"context_text\": \"alpha\"}\n",
    )
    .unwrap();
    let server = server();
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .arg("batch")
            .arg(&tasks)
            .arg("--out")
            .arg(&out)
            .args(["--model", LOCAL, "--base-url", &server.openai_url()])
            .arg("--quiet"),
    );
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("no price known"), "{stderr}");
    no_dollar_zero(&stderr);
    // The result line says unknown too, not 0.0.
    let results = common::jsonl(&out);
    assert_eq!(results.len(), 1);
    assert!(results[0]["cost_usd"].is_null(), "{}", results[0]);
}
