//! A flaky provider that fails one call in five with 429 or 500, during a
//! full run and a batch: nothing is lost, usage stays exact, and answers
//! match the fault-free run.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rlm::driver::{Rlm, RunConfig, RunStatus};
use rlm::llm::{LlmConfig, ModelSpec, RetryPolicy};
use rlm::testing::{MockServer, Reply, Request};
use rlm::Context;

mod common;

const ROOT_TURN: &str = "```rhai\nlet parts = context.chunks(400);\nlet counts = llm_batch(parts.map(|p| `count the x in: ${p}`));\nlet total = sum(counts.map(|c| parse_int(c)));\nlet check = llm_query(`double ${total}`);\nsubmit(`${total} ${check}`);\n```";

/// The scripted model: the root writes one cell; sub-calls count `x` or double a number.
fn answer(req: &Request) -> Reply {
    if req.is_root_turn() {
        return Reply::openai_text(ROOT_TURN, 1000, 50);
    }
    let prompt = req.prompt();
    let text = match prompt.strip_prefix("double ") {
        Some(n) => (n.trim().parse::<i64>().unwrap_or(0) * 2).to_string(),
        None => prompt.matches('x').count().saturating_sub(1).to_string(),
    };
    Reply::openai_text(&text, prompt.len() as u64, 1)
}

/// Fails every fifth request, alternating 429 (with Retry-After) and 500,
/// and counts the failures it served.
fn flaky(failures: Arc<AtomicUsize>) -> MockServer {
    MockServer::start(move |req| {
        if req.index % 5 == 4 {
            let n = failures.fetch_add(1, Ordering::SeqCst);
            return if n % 2 == 0 {
                Reply::rate_limited(0.01)
            } else {
                Reply::error(500, "transient")
            };
        }
        answer(req)
    })
}

fn context() -> Context {
    let mut text = String::new();
    for i in 0..3000 {
        text.push_str(&"x".repeat(i % 4));
        text.push_str(" line\n");
    }
    Context::from_string("data", text)
}

fn run(server: &MockServer) -> rlm::driver::RunResult {
    Rlm::builder()
        .llm_config(LlmConfig {
            openai_base_url: server.openai_url(),
            retry: RetryPolicy {
                max_retries: 6,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(50),
            },
            concurrency: 4,
            ..LlmConfig::default()
        })
        .config(RunConfig {
            model: ModelSpec::parse("gpt-5"),
            sub_model: Some(ModelSpec::parse("gpt-5-mini")),
            ..RunConfig::default()
        })
        .build()
        .unwrap()
        .run("How many x are there?", &context())
}

#[test]
fn a_full_run_survives_a_flaky_provider_with_exact_usage() {
    let clean = MockServer::start(answer);
    let expected = run(&clean);
    assert_eq!(expected.status, RunStatus::Submitted, "{expected:?}");
    let x_total: usize = (0..3000).map(|i| i % 4).sum();
    assert_eq!(
        expected.answer_text,
        Some(format!("{x_total} {}", x_total * 2))
    );

    let failures = Arc::new(AtomicUsize::new(0));
    let server = flaky(failures.clone());
    let got = run(&server);
    assert_eq!(got.status, RunStatus::Submitted, "{got:?}");
    assert_eq!(got.answer, expected.answer);
    let injected = failures.load(Ordering::SeqCst) as u64;
    assert!(
        injected >= 2,
        "the provider was not flaky enough to test anything"
    );
    // Successful calls and their tokens are exactly those of the clean run;
    // every injected failure shows up as one retry, none as an error.
    for (model, clean_usage) in &expected.usage {
        let u = &got.usage[model];
        assert_eq!(
            (u.calls, u.input_tokens, u.output_tokens, u.errors),
            (
                clean_usage.calls,
                clean_usage.input_tokens,
                clean_usage.output_tokens,
                0
            ),
            "{model}"
        );
    }
    assert_eq!(got.totals.retries, injected);
    assert_eq!(
        server.requests().len() as u64,
        expected.totals.calls + injected
    );
}

#[test]
fn a_batch_survives_a_flaky_provider_and_matches_the_clean_results() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("tasks.jsonl");
    let mut lines = String::new();
    for i in 0..12 {
        let text = "x".repeat(i + 1) + "\n";
        lines.push_str(
            &serde_json::json!({"id": format!("t{i}"), "query": "count", "context_text": text})
                .to_string(),
        );
        lines.push('\n');
    }
    std::fs::write(&tasks, lines).unwrap();
    let batch = |server: &MockServer, out: &std::path::Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_rlm"))
            .arg("batch")
            .arg(&tasks)
            .arg("--out")
            .arg(out)
            .args(["--jobs", "3", "--quiet", "--max-retries", "6"])
            .args(common::loopback_models(server))
            .env_remove("OPENAI_API_KEY")
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut rows: Vec<(String, serde_json::Value, serde_json::Value)> =
            std::fs::read_to_string(out)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .map(|r| {
                    (
                        r["id"].as_str().unwrap().to_string(),
                        r["answer"].clone(),
                        r["usage"]["gpt-5-mini"]["calls"].clone(),
                    )
                })
                .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    };
    let clean = MockServer::start(answer);
    let expected = batch(&clean, &dir.path().join("clean.jsonl"));
    let failures = Arc::new(AtomicUsize::new(0));
    let server = flaky(failures.clone());
    let got = batch(&server, &dir.path().join("flaky.jsonl"));
    assert!(failures.load(Ordering::SeqCst) >= 2);
    assert_eq!(
        got, expected,
        "answers or per-task sub-call counts differ under faults"
    );
    assert_eq!(got.len(), 12);
}
