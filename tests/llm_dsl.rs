//! `llm_query`, `llm_batch` and `usage()` from scripts, against a loopback
//! server, and through the `rlm exec` binary.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rlm::dsl::{Limits, LlmAccess, SessionBuilder};
use rlm::llm::{Budgets, Ledger, LlmClient, LlmConfig, ModelSpec, PriceTable, RetryPolicy};
use rlm::testing::{MockServer, Reply};
use rlm::Context;

struct Rig {
    _runtime: tokio::runtime::Runtime,
    access: LlmAccess,
}

fn rig(server: &MockServer, budgets: Budgets, window: Option<usize>) -> Rig {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = LlmConfig {
        openai_base_url: server.openai_url(),
        retry: RetryPolicy {
            max_retries: 1,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
        },
        concurrency: 8,
        ..LlmConfig::default()
    };
    let client = LlmClient::new(
        config,
        Arc::new(Ledger::new(PriceTable::default(), budgets)),
    )
    .unwrap();
    let access = LlmAccess {
        client,
        runtime: runtime.handle().clone(),
        sub_model: Some(ModelSpec::parse("gpt-5-mini")),
        context_window: window,
        depth: 0,
        run_id: None,
        scope: None,
    };
    Rig {
        _runtime: runtime,
        access,
    }
}

/// Answers "LEN=<n>" for a prompt of n bytes, and fails prompts containing "FAIL".
fn rule_server() -> MockServer {
    MockServer::start(|req| {
        let prompt = req.prompt();
        if prompt.contains("FAIL") {
            Reply::error(400, "refused by policy")
        } else {
            Reply::openai_text(&format!("LEN={}", prompt.len()), prompt.len() as u64, 1)
        }
    })
}

#[test]
fn llm_query_and_options() {
    let server = rule_server();
    let r = rig(&server, Budgets::default(), None);
    let ctx = Context::from_string("d", "alpha\nbeta\n");
    let mut s = SessionBuilder::new().llm(r.access.clone()).build(&ctx);
    let out = s.run_cell(r#"print(llm_query("hello")); print(llm_query(context.line(2), #{system: "s", max_tokens: 5, model: "other-model"}));"#);
    assert_eq!(out.output, "LEN=5\nLEN=4\n", "{}", out.render());
    let reqs = server.requests();
    assert_eq!(reqs[1].model(), "other-model");
    assert_eq!(reqs[1].system().as_deref(), Some("s"));
    assert_eq!(reqs[1].json()["max_tokens"], 5);
    let bad = s.run_cell(r#"llm_query("x", #{modle: "typo"})"#);
    assert!(bad.error.unwrap().contains("unknown option `modle`"));
    let failed = s.run_cell(r#"llm_query("please FAIL")"#);
    let e = failed.error.unwrap();
    assert!(
        e.contains("HTTP 400") && e.contains("refused by policy"),
        "{e}"
    );
}

#[test]
fn llm_batch_keeps_order_marks_failures_and_counts_usage() {
    let server = rule_server();
    let r = rig(&server, Budgets::default(), None);
    let ctx = Context::from_string("d", "0123456789\n".repeat(200));
    let mut s = SessionBuilder::new().llm(r.access.clone()).build(&ctx);
    let out = s.run_cell(
        r#"
        let prompts = context.chunks(110).map(|c| c);
        prompts.push("this one will FAIL");
        let answers = llm_batch(prompts);
        print(answers.len());
        print(answers[0]);
        print(answers[answers.len() - 1]);
        let u = usage();
        print(`${u.calls} ${u.errors} ${u.by_model["gpt-5-mini"].input_tokens}`);
    "#,
    );
    let lines: Vec<&str> = out.output.lines().collect();
    assert_eq!(lines[0], "21", "{}", out.render());
    assert_eq!(lines[1], "LEN=110");
    assert!(
        lines[2].starts_with("ERROR: ") && lines[2].contains("refused by policy"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "20 1 2200");
}

#[test]
fn batch_items_over_budget_are_errors_and_never_sent() {
    let server = rule_server();
    let r = rig(
        &server,
        Budgets {
            max_calls: Some(5),
            ..Default::default()
        },
        None,
    );
    let ctx = Context::from_string("d", "x");
    let mut s = SessionBuilder::new().llm(r.access.clone()).build(&ctx);
    let out = s.run_cell(r#"let a = llm_batch(range(12).map(|i| `q${i}`)); print(a.filter(|x| x.starts_with("ERROR")).len()); print(a[11]);"#);
    let lines: Vec<&str> = out.output.lines().collect();
    assert_eq!(lines[0], "7", "{}", out.render());
    assert!(lines[1].contains("budget of 5 model calls"), "{}", lines[1]);
    assert_eq!(server.requests().len(), 5);
    let q = s.run_cell(r#"llm_query("one more")"#);
    assert!(q.error.unwrap().contains("budget"));
}

#[test]
fn oversized_prompts_are_refused_with_a_hint_to_chunk() {
    let server = rule_server();
    let r = rig(&server, Budgets::default(), Some(50));
    let ctx = Context::from_string("d", "word ".repeat(1000));
    let mut s = SessionBuilder::new().llm(r.access.clone()).build(&ctx);
    let out = s.run_cell("llm_query(context)");
    let e = out.error.unwrap();
    assert!(
        e.contains("context window of 50 tokens") && e.contains("chunks()"),
        "{e}"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn waiting_on_sub_models_does_not_count_against_the_cell_time_limit() {
    let server =
        MockServer::start(|_| Reply::openai_text("slow", 1, 1).after(Duration::from_millis(400)));
    let r = rig(&server, Budgets::default(), None);
    let ctx = Context::from_string("d", "x");
    let limits = Limits {
        cell_timeout: Duration::from_millis(250),
        ..Limits::default()
    };
    let mut s = SessionBuilder::new()
        .limits(limits)
        .llm(r.access.clone())
        .build(&ctx);
    let out =
        s.run_cell(r#"let a = llm_query("1"); let b = llm_batch(["2", "3"]); print(a + b[1]);"#);
    assert_eq!(out.error, None);
    assert_eq!(out.output, "slowslow\n");
}

#[test]
fn without_a_sub_model_the_error_says_how_to_configure_one() {
    let ctx = Context::from_string("d", "x");
    let mut s = SessionBuilder::new().build(&ctx);
    let e = s.run_cell(r#"llm_query("hi")"#).error.unwrap();
    assert!(
        e.contains("--sub-model") && e.contains("RLM_SUB_MODEL"),
        "{e}"
    );
}

#[test]
fn rlm_exec_runs_a_thousand_prompt_batch_end_to_end() {
    let server = rule_server();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("batch.rhai");
    std::fs::write(
        &script,
        r#"
        let prompts = range(1000).map(|i| `question ${i}: ` + context.line(1 + i % 3));
        let answers = llm_batch(prompts);
        let ok = answers.filter(|a| a.starts_with("LEN="));
        print(`${ok.len()} answered`);
        submit(answers[999]);
        "#,
    )
    .unwrap();
    let context = dir.path().join("ctx.txt");
    std::fs::write(&context, "a\nbb\nccc\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rlm"))
        .args([
            "exec",
            script.to_str().unwrap(),
            "--context",
            context.to_str().unwrap(),
        ])
        .args([
            "--sub-model",
            "gpt-5-mini",
            "--base-url",
            &server.openai_url(),
            "--concurrency",
            "64",
            "--output",
            "json",
        ])
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["output"], "1000 answered\n");
    // "question 999: " is 14 bytes, then line 1 + 999 % 3 = line 1, "a".
    assert_eq!(json["answer"], "LEN=15");
    assert_eq!(json["usage"]["total"]["calls"], 1000);
    assert_eq!(server.requests().len(), 1000);
}
