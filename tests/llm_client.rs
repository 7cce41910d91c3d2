//! The model client against a real HTTP server on loopback: both wire
//! protocols, every failure mode, budgets and limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rlm::llm::{
    ApiKey, Budgets, CallOptions, ChatRequest, Ledger, LlmClient, LlmConfig, LlmError, ModelSpec,
    PriceTable, RetryPolicy,
};
use rlm::testing::{MockServer, Reply};

const FAKE_KEY: &str = "sk-fake-KEY-0123456789abcdefXYZ";

fn config(server: &MockServer) -> LlmConfig {
    LlmConfig {
        openai_base_url: server.openai_url(),
        anthropic_base_url: server.url(),
        request_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
        },
        ..LlmConfig::default()
    }
}

fn client(config: LlmConfig, budgets: Budgets) -> LlmClient {
    LlmClient::new(
        config,
        Arc::new(Ledger::new(PriceTable::default(), budgets)),
    )
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn ask(c: &LlmClient, model: &str, prompt: &str) -> Result<rlm::llm::Completion, LlmError> {
    runtime().block_on(c.complete(
        &ModelSpec::parse(model),
        &ChatRequest::prompt(prompt),
        &CallOptions::default(),
    ))
}

/// Replies with `first` for the first `n` requests, then a normal answer.
fn flaky(n: usize, first: Reply) -> MockServer {
    MockServer::start(move |req| {
        if req.index < n {
            first.clone()
        } else {
            Reply::openai_text("recovered", 10, 2)
        }
    })
}

#[test]
fn openai_protocol_round_trip() {
    let server =
        MockServer::start(|req| Reply::openai_text(&format!("you said {}", req.prompt()), 11, 3));
    let mut cfg = config(&server);
    cfg.openai_api_key = ApiKey::new(FAKE_KEY);
    // A key goes only to the public endpoint or the base URL it was paired with.
    cfg.openai_key_base_url = Some(server.openai_url());
    let c = client(cfg, Budgets::default());
    let req = ChatRequest {
        system: Some("be brief".into()),
        max_tokens: Some(64),
        temperature: Some(0.0),
        ..ChatRequest::prompt("hello")
    };
    let out = runtime()
        .block_on(c.complete(
            &ModelSpec::parse("gpt-5-mini"),
            &req,
            &CallOptions::default(),
        ))
        .unwrap();
    assert_eq!(out.text, "you said hello");
    let seen = &server.requests()[0];
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {FAKE_KEY}").as_str())
    );
    let body = seen.json();
    assert_eq!(body["model"], "gpt-5-mini");
    assert_eq!(
        body["messages"][0],
        serde_json::json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(
        body["messages"][1],
        serde_json::json!({"role": "user", "content": "hello"})
    );
    // Local servers get `max_tokens`; only api.openai.com gets `max_completion_tokens`.
    assert_eq!(body["max_tokens"], 64);
    let usage = &c.ledger().by_model()["gpt-5-mini"];
    assert_eq!(
        (usage.calls, usage.input_tokens, usage.output_tokens),
        (1, 11, 3)
    );
    assert!(usage.cost_usd > 0.0);
}

#[test]
fn local_servers_need_no_key_and_get_no_auth_header() {
    let server = MockServer::start(|_| Reply::openai_text("ok", 1, 1));
    let c = client(config(&server), Budgets::default());
    assert_eq!(ask(&c, "qwen2.5-coder:32b", "hi").unwrap().text, "ok");
    let seen = &server.requests()[0];
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.model(), "qwen2.5-coder:32b");
}

#[test]
fn the_public_endpoints_without_a_key_fail_fast_naming_the_variable() {
    let c = client(LlmConfig::default(), Budgets::default());
    let err = ask(&c, "gpt-5-mini", "hi").unwrap_err();
    assert!(err.to_string().contains("OPENAI_API_KEY"), "{err}");
    let err = ask(&c, "anthropic:claude-sonnet-4-5", "hi").unwrap_err();
    assert!(err.to_string().contains("ANTHROPIC_API_KEY"), "{err}");
}

#[test]
fn anthropic_protocol_round_trip() {
    let server = MockServer::start(|req| Reply::anthropic_text(&req.prompt().to_uppercase(), 7, 2));
    let mut cfg = config(&server);
    cfg.anthropic_api_key = ApiKey::new(FAKE_KEY);
    cfg.anthropic_key_base_url = Some(server.url());
    let c = client(cfg, Budgets::default());
    let req = ChatRequest {
        system: Some("sys".into()),
        ..ChatRequest::prompt("quiet")
    };
    let out = runtime()
        .block_on(c.complete(
            &ModelSpec::parse("anthropic:claude-sonnet-4-5"),
            &req,
            &CallOptions::default(),
        ))
        .unwrap();
    assert_eq!(out.text, "QUIET");
    let seen = &server.requests()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some(FAKE_KEY));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("authorization"), None);
    let body = seen.json();
    assert_eq!(body["system"], "sys");
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert!(body["max_tokens"].as_u64().unwrap() > 0);
    assert_eq!(c.ledger().by_model()["claude-sonnet-4-5"].input_tokens, 7);
}

#[test]
fn rate_limits_are_retried_after_the_servers_delay() {
    let server = flaky(1, Reply::rate_limited(0.3));
    let c = client(config(&server), Budgets::default());
    let t0 = Instant::now();
    assert_eq!(ask(&c, "m", "x").unwrap().text, "recovered");
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "Retry-After not honoured: {:?}",
        t0.elapsed()
    );
    let u = &c.ledger().by_model()["m"];
    assert_eq!((u.calls, u.retries, u.errors), (1, 1, 0));
}

#[test]
fn server_errors_malformed_json_and_dropped_connections_are_retried() {
    for (name, first) in [
        ("500", Reply::error(500, "boom")),
        ("529", Reply::error(529, "overloaded")),
        (
            "malformed",
            Reply::Raw {
                status: 200,
                headers: vec![],
                body: b"{not json".to_vec(),
            },
        ),
        ("dropped", Reply::Drop),
    ] {
        let server = flaky(2, first);
        let c = client(config(&server), Budgets::default());
        assert_eq!(ask(&c, "m", "x").unwrap().text, "recovered", "{name}");
        assert_eq!(c.ledger().by_model()["m"].retries, 2, "{name}");
        assert_eq!(server.requests().len(), 3, "{name}");
    }
}

#[test]
fn persistent_failures_end_with_a_clear_error_after_the_retries() {
    let server = MockServer::start(|_| Reply::error(503, "service unavailable"));
    let c = client(config(&server), Budgets::default());
    let err = ask(&c, "m", "x").unwrap_err();
    assert!(matches!(err, LlmError::Http { status: 503, .. }));
    assert!(
        err.to_string().contains("service unavailable") && err.to_string().contains("m:"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 4);
    let u = &c.ledger().by_model()["m"];
    assert_eq!((u.calls, u.errors, u.retries), (0, 1, 3));
}

#[test]
fn a_hanging_server_times_out() {
    let server = MockServer::start(|_| Reply::Hang);
    let mut cfg = config(&server);
    cfg.request_timeout = Duration::from_millis(200);
    cfg.retry.max_retries = 1;
    let c = client(cfg, Budgets::default());
    let err = ask(&c, "m", "x").unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn auth_and_bad_request_errors_fail_fast_without_showing_the_key() {
    let server = MockServer::start(|req| {
        let key = req.header("authorization").unwrap_or("").to_string();
        Reply::error(401, &format!("Incorrect API key provided: {key}"))
    });
    let mut cfg = config(&server);
    cfg.openai_api_key = ApiKey::new(FAKE_KEY);
    // A key goes only to the public endpoint or the base URL it was paired with.
    cfg.openai_key_base_url = Some(server.openai_url());
    let c = client(cfg, Budgets::default());
    let err = ask(&c, "gpt-5-mini", "x").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("HTTP 401") && msg.contains("gpt-5-mini") && msg.contains("Incorrect API key"),
        "{msg}"
    );
    assert!(
        !msg.contains(FAKE_KEY) && !msg.contains("0123456789"),
        "key leaked: {msg}"
    );
    assert!(!format!("{err:?}").contains(FAKE_KEY));
    assert_eq!(server.requests().len(), 1, "a 401 must not be retried");

    let bad = MockServer::start(|_| Reply::error(400, "max_tokens is too large"));
    let c = client(config(&bad), Budgets::default());
    assert!(ask(&c, "m", "x")
        .unwrap_err()
        .to_string()
        .contains("max_tokens is too large"));
    assert_eq!(bad.requests().len(), 1);
}

#[test]
fn empty_content_is_handled() {
    let server = MockServer::start(|req| {
        let finish = if req.prompt() == "think hard" {
            "length"
        } else {
            "stop"
        };
        Reply::json(serde_json::json!({
            "choices": [{"message": {"role": "assistant", "content": null}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 100}
        }))
    });
    let c = client(config(&server), Budgets::default());
    assert_eq!(ask(&c, "m", "say nothing").unwrap().text, "");
    let err = ask(&c, "m", "think hard").unwrap_err();
    assert!(matches!(err, LlmError::Empty { .. }));
    assert!(err.to_string().contains("raise max_tokens"));
}

#[test]
fn prompts_over_the_context_window_are_refused_before_sending() {
    let server = MockServer::start(|_| Reply::openai_text("never", 1, 1));
    let c = client(config(&server), Budgets::default());
    let opts = CallOptions {
        context_window: Some(100),
        ..Default::default()
    };
    let big = "word ".repeat(1000);
    let err = runtime()
        .block_on(c.complete(&ModelSpec::parse("m"), &ChatRequest::prompt(big), &opts))
        .unwrap_err();
    assert!(matches!(err, LlmError::PromptTooLarge { window: 100, .. }));
    assert!(err.to_string().contains("chunks()"), "{err}");
    assert!(server.requests().is_empty());
    assert_eq!(c.ledger().totals().errors, 0);
}

#[test]
fn call_budgets_stop_further_calls_and_unsent_calls_cost_nothing() {
    let server = MockServer::start(|_| Reply::openai_text("ok", 100, 10));
    let c = client(
        config(&server),
        Budgets {
            max_calls: Some(3),
            ..Default::default()
        },
    );
    let rt = runtime();
    let results: Vec<_> = (0..10)
        .map(|_| {
            rt.block_on(c.complete(
                &ModelSpec::parse("m"),
                &ChatRequest::prompt("x"),
                &CallOptions::default(),
            ))
        })
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert!(matches!(results[5], Err(LlmError::Budget(_))));
    assert_eq!(server.requests().len(), 3);
    assert_eq!(c.ledger().totals().calls, 3);
    assert_eq!(c.ledger().totals().input_tokens, 300);
}

#[test]
fn concurrency_is_limited_across_the_run() {
    let server =
        MockServer::start(|_| Reply::openai_text("ok", 1, 1).after(Duration::from_millis(100)));
    let mut cfg = config(&server);
    cfg.concurrency = 4;
    let c = client(cfg, Budgets::default());
    let rt = runtime();
    let t0 = Instant::now();
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let c = c.clone();
            tasks.spawn(async move {
                c.complete(
                    &ModelSpec::parse("m"),
                    &ChatRequest::prompt("x"),
                    &CallOptions::default(),
                )
                .await
            });
        }
        while let Some(r) = tasks.join_next().await {
            assert!(r.unwrap().is_ok());
        }
    });
    // 20 calls of 100 ms, 4 at a time, cannot finish in under 500 ms.
    assert!(
        t0.elapsed() >= Duration::from_millis(480),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(c.ledger().totals().calls, 20);
}
