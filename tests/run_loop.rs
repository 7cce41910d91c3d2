//! The recursive loop end to end: a loopback server plays scripted root
//! turns and answers sub-calls by rule, and `Rlm` / `rlm run` drive real
//! Rhai cells over real contexts.

use std::sync::Arc;
use std::time::Duration;

use rlm::driver::{AnswerKind, Rlm, RunConfig, RunResult, RunStatus};
use rlm::llm::{Budgets, LlmConfig, ModelSpec, RetryPolicy};
use rlm::testing::{MockServer, Reply, Request};
use rlm::Context;

/// Turns of a scripted root model, chosen by the question in the first
/// message (so children get their own script) and the turn number.
type Script = Arc<dyn Fn(&str, usize, &Request) -> String + Send + Sync>;

fn is_root(req: &Request) -> bool {
    req.system().is_some_and(|s| s.contains("You are the root of a Recursive Language Model"))
}

fn first_user_message(req: &Request) -> String {
    req.json()["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string()
}

/// A server whose root turns come from `script` and whose sub-calls are answered by `sub`.
fn server(script: Script, sub: impl Fn(&str) -> String + Send + Sync + 'static) -> MockServer {
    MockServer::start(move |req| {
        if is_root(req) {
            let turn = req.message_count().div_ceil(2);
            Reply::openai_text(&script(&first_user_message(req), turn, req), 1000, 100)
        } else {
            Reply::openai_text(&sub(&req.prompt()), 200, 5)
        }
    })
}

fn code(body: &str) -> String {
    format!("Let me run this.\n```rhai\n{body}\n```")
}

fn rlm(server: &MockServer, config: RunConfig, budgets: Budgets) -> Rlm {
    Rlm::builder()
        .llm_config(LlmConfig {
            openai_base_url: server.openai_url(),
            retry: RetryPolicy { max_retries: 2, base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(50) },
            ..LlmConfig::default()
        })
        .budgets(budgets)
        .config(RunConfig { model: ModelSpec::parse("gpt-5"), sub_model: Some(ModelSpec::parse("gpt-5-mini")), ..config })
        .build()
        .unwrap()
}

fn last_user_message(req: &Request) -> String {
    req.prompt()
}

#[test]
fn a_script_error_is_shown_to_the_model_which_fixes_it() {
    let script: Script = Arc::new(|_, turn, req| match turn {
        1 => code("let n = context.line_count()\nprint(n);"),
        2 => {
            let feedback = last_user_message(req);
            assert!(feedback.contains("Expecting ';'") && feedback.contains("at line 2, column 1"), "{feedback}");
            code("let n = context.line_count();\nsubmit(n);")
        }
        _ => panic!("no turn {turn}"),
    });
    let server = server(script, |_| String::new());
    let ctx = Context::from_string("doc", "a\nb\nc\n");
    let result = rlm(&server, RunConfig::default(), Budgets::default()).run("How many lines?", &ctx);
    assert_eq!(result.status, RunStatus::Submitted, "{result:?}");
    assert_eq!(result.answer, Some(serde_json::json!(3)));
    assert_eq!(result.iterations, 2);
    assert_eq!(result.usage["gpt-5"].calls, 2);
}

#[test]
fn smoke_needle_with_grep_and_llm_query() {
    let script: Script = Arc::new(|_, turn, _| match turn {
        1 => code(r#"let hits = context.grep("magic number"); print(hits.len()); let a = llm_query(`Extract the number: ${hits[0].text}`); submit(a);"#),
        _ => panic!("no turn {turn}"),
    });
    let server = server(script, |p| p.rsplit(' ').next().unwrap_or("").trim_end_matches('.').to_string());
    let mut text = "filler line\n".repeat(1000);
    text.push_str("the magic number is 4242.\n");
    let ctx = Context::from_string("doc", text);
    let result: RunResult = rlm(&server, RunConfig::default(), Budgets::default()).run("What is the magic number?", &ctx);
    assert_eq!(result.answer_text.as_deref(), Some("4242"), "{result:?}");
    assert_eq!(result.answer_kind, Some(AnswerKind::Submitted));
    assert_eq!(result.usage["gpt-5-mini"].calls, 1);
}
