//! Budgets are hard limits: `rlm run` and `rlm batch` through the binary,
//! with many sub-calls in flight, against a loopback server that answers
//! every call with the worst usage it allows (a prompt of one token per
//! byte, an answer as long as `max_tokens`) and sums what it reported.
//! What it sums never passes the budget, the run ends with the budget's
//! exit code, and the answer holds no ERROR strings.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use rlm::testing::{MockServer, Reply, Request};

mod common;
use common::{code, loopback_models, output, rlm};

/// What the server reported, by model: calls, input and output tokens.
#[derive(Debug, Default, Clone)]
struct Reported {
    calls: u64,
    input: u64,
    output: u64,
    cost: f64,
}

type Tally = Arc<Mutex<Vec<(String, Reported)>>>;

/// List prices per million tokens of the models the tests use.
fn price(model: &str) -> Option<(f64, f64)> {
    match model {
        "gpt-5" => Some((1.25, 10.0)),
        "gpt-5-mini" => Some((0.25, 2.0)),
        _ => None,
    }
}

/// Usage near the worst a request allows: every byte of its prompt a
/// token, and an answer of 600 tokens or the whole `max_tokens` if that is
/// less (answers up to `max_tokens` leave most budgets to the first call).
fn worst_usage(req: &Request) -> (u64, u64) {
    let json = req.json();
    let input: u64 = json["messages"].as_array().map_or(0, |m| {
        m.iter()
            .map(|m| m["content"].as_str().map_or(0, str::len) as u64)
            .sum()
    });
    let output = json["max_tokens"]
        .as_u64()
        .or_else(|| json["max_completion_tokens"].as_u64())
        .map_or(4000, |n| n.min(600));
    (input, output)
}

/// The root keeps asking for `per_turn` sub-calls in one llm_batch and
/// never submits, until it is told the budget is spent; then it submits.
fn server(per_turn: usize, sub_model_option: &'static str) -> (MockServer, Tally) {
    server_ending(per_turn, sub_model_option, "print(found.len());")
}

/// [`server`] whose batch cells end with `tail` (which may submit).
fn server_ending(
    per_turn: usize,
    sub_model_option: &'static str,
    tail: &'static str,
) -> (MockServer, Tally) {
    let tally: Tally = Arc::default();
    let counted = tally.clone();
    let server = MockServer::start(move |req| {
        let (input, out) = worst_usage(req);
        let model = req.model();
        {
            let mut t = counted.lock().unwrap();
            let (pin, pout) = price(&model).unwrap_or((0.0, 0.0));
            t.push((
                model.clone(),
                Reported {
                    calls: 1,
                    input,
                    output: out,
                    cost: (input as f64 * pin + out as f64 * pout) / 1e6,
                },
            ));
        }
        if !req.is_root_turn() {
            return Reply::openai_text("a finding", input, out);
        }
        let text = if req.prompt().contains("The budget is spent") {
            code(r#"submit("summary of the findings so far");"#)
        } else {
            code(&format!(
                "let prompts = []; for i in 0..{per_turn} {{ prompts.push(`Find things in part ${{i}}.`); }}\nlet found = llm_batch(prompts{sub_model_option});\n{tail}"
            ))
        };
        Reply::openai_text(&text, input, out)
    });
    (server, tally)
}

fn totals(tally: &Tally) -> Reported {
    let t = tally.lock().unwrap();
    t.iter().fold(Reported::default(), |mut acc, (_, r)| {
        acc.calls += r.calls;
        acc.input += r.input;
        acc.output += r.output;
        acc.cost += r.cost;
        acc
    })
}

fn context(dir: &std::path::Path) -> std::path::PathBuf {
    let ctx = dir.join("notes.txt");
    std::fs::write(&ctx, "alpha\nbeta\ngamma\n").unwrap();
    ctx
}

/// Runs `rlm run` with `budget` flags at concurrency 16; returns the exit
/// code and the JSON result.
fn run(server: &MockServer, dir: &std::path::Path, budget: &[&str]) -> (i32, Value) {
    run_with(server, dir, &loopback_models(server), budget)
}

/// [`run`] with the model flags given.
fn run_with(
    server: &MockServer,
    dir: &std::path::Path,
    models: &[String],
    budget: &[&str],
) -> (i32, Value) {
    let _ = server;
    let ctx = context(dir);
    let (exit, stdout, stderr) = output(
        rlm(dir)
            .arg("run")
            .args(models)
            .args(["--concurrency", "16", "--max-iterations", "50"])
            .args(["--query", "What is in the notes?", "--output", "json"])
            .args(budget)
            .arg("--context")
            .arg(&ctx),
    );
    let result: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout}\nstderr {stderr}"));
    (exit, result)
}

/// The answer, which must be the root's final submission and no ERROR text.
fn assert_clean_answer(result: &Value) {
    let answer = result["answer"].as_str().unwrap_or_default();
    assert_eq!(answer, "summary of the findings so far", "{result}");
    assert!(!answer.contains("ERROR"), "{result}");
}

#[test]
fn a_run_never_spends_more_than_its_cost_budget_however_many_calls_are_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let (server, tally) = server(64, "");
    let (exit, result) = run(&server, dir.path(), &["--max-cost", "0.05"]);
    let spent = totals(&tally);
    eprintln!("--max-cost 0.05: {spent:?}");
    assert!(spent.cost <= 0.05, "spent ${} of $0.05", spent.cost);
    assert!(spent.calls > 3, "the budget allowed a few calls: {spent:?}");
    assert_eq!(exit, 6, "{result}");
    assert_eq!(result["status"], "max_cost");
    assert_clean_answer(&result);
    // The ledger agrees with what the server reported.
    let cost = result["cost_usd"].as_f64().unwrap();
    assert!((cost - spent.cost).abs() < 1e-9, "{cost} vs {}", spent.cost);
}

#[test]
fn a_run_never_spends_more_than_its_token_budget_however_many_calls_are_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let (server, tally) = server(64, "");
    let (exit, result) = run(&server, dir.path(), &["--max-tokens", "50000"]);
    let spent = totals(&tally);
    eprintln!("--max-tokens 50000: {spent:?}");
    assert!(
        spent.input + spent.output <= 50_000,
        "spent {} of 50000 tokens",
        spent.input + spent.output
    );
    assert!(spent.calls > 3, "{spent:?}");
    assert_eq!(exit, 5, "{result}");
    assert_eq!(result["status"], "max_tokens");
    assert_clean_answer(&result);
}

#[test]
fn a_run_never_makes_more_calls_than_its_call_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (server, tally) = server(64, "");
    let (exit, result) = run(&server, dir.path(), &["--max-llm-calls", "20"]);
    let spent = totals(&tally);
    assert!(spent.calls <= 20, "{spent:?}");
    assert_eq!(exit, 4, "{result}");
    assert_eq!(result["status"], "max_llm_calls");
    // A call was kept for the final turn, which submitted.
    assert_clean_answer(&result);
}

#[test]
fn a_sub_model_without_a_price_is_never_called_under_a_cost_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (server, tally) = server(64, r#", #{model: "local-llama-7b"}"#);
    // A cent pays for a gpt-5-mini root turn, not a gpt-5 one.
    let models = ["--model", "gpt-5-mini", "--base-url", &server.openai_url()].map(String::from);
    let (exit, result) = run_with(&server, dir.path(), &models, &["--max-cost", "0.01"]);
    let spent = totals(&tally);
    eprintln!("--max-cost 0.01, unpriced sub-model: {spent:?}");
    let unpriced = tally
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, _)| m == "local-llama-7b")
        .count();
    assert_eq!(unpriced, 0, "the unpriced model was called");
    assert!(spent.cost <= 0.01, "{spent:?}");
    assert_eq!(exit, 6, "{result}");
    assert_eq!(result["status"], "max_cost");
    assert_clean_answer(&result);
    let error = result["error"].as_str().unwrap_or_default();
    assert!(error.contains("[prices.\"local-llama-7b\"]"), "{error}");
}

#[test]
fn an_unpriced_root_model_spends_nothing_under_a_cost_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (server, tally) = server(64, "");
    let ctx = context(dir.path());
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .args(["run", "--model", "local-llama-7b", "--base-url"])
            .arg(server.openai_url())
            .args(["--concurrency", "16", "--max-cost", "0.01"])
            .args(["--query", "What is in the notes?", "--output", "json"])
            .arg("--context")
            .arg(&ctx),
    );
    let spent = totals(&tally);
    eprintln!("--max-cost 0.01, unpriced root: {spent:?}, exit {exit}");
    assert_eq!(spent.calls, 0, "{spent:?}");
    // Refused up front (exit 2) or by the ledger (exit 6), never run.
    assert!(exit == 2 || exit == 6, "exit {exit}: {stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("local-llama-7b"),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn a_batch_never_spends_more_than_its_global_cost_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (server, tally) = server(32, "");
    let mut tasks = String::new();
    for i in 0..12 {
        tasks.push_str(
            &serde_json::json!({"id": format!("t{i}"), "query": "What is here?", "context_text": format!("part {i}\n")})
                .to_string(),
        );
        tasks.push('\n');
    }
    let tasks_path = dir.path().join("tasks.jsonl");
    std::fs::write(&tasks_path, tasks).unwrap();
    let out = dir.path().join("out.jsonl");
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .arg("batch")
            .arg(&tasks_path)
            .arg("--out")
            .arg(&out)
            .args(["--quiet", "--jobs", "4", "--concurrency", "16"])
            .args(["--max-cost", "0.5", "--max-iterations", "50"])
            .args(loopback_models(&server)),
    );
    let spent = totals(&tally);
    eprintln!("batch --max-cost 0.5: {spent:?}, exit {exit}");
    assert!(spent.cost <= 0.5, "spent ${} of $0.5", spent.cost);
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12, "{stdout}\n{stderr}");
    let mut stopped = 0;
    for line in &lines {
        let answer = line["answer"].as_str().unwrap_or_default();
        assert!(!answer.contains("ERROR"), "{line}");
        assert_ne!(
            line["status"], "submitted",
            "every task runs into the budget: {line}"
        );
        if line["status"] == "max_cost" {
            stopped += 1;
        }
    }
    assert_eq!(stopped, 12, "{lines:?}");
    // The batch's own budget stopped it: it exits as a run would, 6.
    assert_eq!(exit, 6, "{stderr}");
    assert!(stderr.contains("stopped by the batch's budget"), "{stderr}");
}

#[test]
fn an_answer_submitted_from_refused_calls_is_set_aside_for_the_final_turn() {
    let dir = tempfile::tempdir().unwrap();
    let (server, tally) = server_ending(64, "", r#"submit(found.join("\n"));"#);
    let (exit, result) = run(&server, dir.path(), &["--max-cost", "0.05"]);
    assert!(totals(&tally).cost <= 0.05, "{:?}", totals(&tally));
    assert_eq!(exit, 6, "{result}");
    assert_eq!(result["status"], "max_cost");
    assert_clean_answer(&result);
    let final_turn = server
        .requests()
        .into_iter()
        .rfind(|r| r.is_root_turn())
        .map(|r| r.prompt())
        .unwrap_or_default();
    assert!(
        final_turn.contains("that answer was set aside"),
        "{final_turn}"
    );
}
