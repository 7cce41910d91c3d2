//! The recursive loop end to end: a loopback server plays scripted root
//! turns and answers sub-calls by rule, and `Rlm` drives real Rhai cells
//! over real contexts. The `rlm run` binary is covered in `run_cli.rs`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use rlm::driver::{AnswerKind, Rlm, RlmBuilder, RunConfig, RunResult, RunStatus};
use rlm::llm::{Budgets, LlmConfig, ModelSpec, RetryPolicy};
use rlm::testing::{MockServer, Reply, Request};
use rlm::Context;

/// Turns of a scripted root model, chosen by the question in the first
/// message (so children get their own script) and the turn number.
type Script = Arc<dyn Fn(&str, usize, &Request) -> String + Send + Sync>;

/// Like [`Script`], but the turn decides the whole reply (delays, `null`
/// content, errors).
type ReplyScript = Arc<dyn Fn(&str, usize, &Request) -> Reply + Send + Sync>;

fn first_user_message(req: &Request) -> String {
    req.json()["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string()
}

/// The root turn a request asks for (1-based).
fn turn_of(req: &Request) -> usize {
    req.message_count().div_ceil(2)
}

/// A server whose root turns come from `script` and whose sub-calls are answered by `sub`.
fn server(script: Script, sub: impl Fn(&str) -> String + Send + Sync + 'static) -> MockServer {
    server_with(
        Arc::new(move |question, turn, req| {
            Reply::openai_text(&script(question, turn, req), 1000, 100)
        }),
        move |prompt| Reply::openai_text(&sub(prompt), 200, 5),
    )
}

/// [`server`] with whole replies chosen by the script and the sub-call rule.
fn server_with(
    script: ReplyScript,
    sub: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> MockServer {
    MockServer::start(move |req| {
        if req.is_root_turn() {
            script(&first_user_message(req), turn_of(req), req)
        } else {
            sub(&req.prompt())
        }
    })
}

fn code(body: &str) -> String {
    format!("Let me run this.\n```rhai\n{body}\n```")
}

fn builder(server: &MockServer, config: RunConfig, budgets: Budgets) -> RlmBuilder {
    Rlm::builder()
        .llm_config(LlmConfig {
            openai_base_url: server.openai_url(),
            retry: RetryPolicy {
                max_retries: 2,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(50),
            },
            ..LlmConfig::default()
        })
        .budgets(budgets)
        .config(RunConfig {
            model: ModelSpec::parse("gpt-5"),
            sub_model: Some(ModelSpec::parse("gpt-5-mini")),
            ..config
        })
}

fn rlm(server: &MockServer, config: RunConfig, budgets: Budgets) -> Rlm {
    builder(server, config, budgets).build().unwrap()
}

fn last_user_message(req: &Request) -> String {
    req.prompt()
}

/// Root requests the server received, in arrival order.
fn root_requests(server: &MockServer) -> Vec<Request> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.is_root_turn())
        .collect()
}

/// Sub-call requests the server received, in arrival order.
fn sub_requests(server: &MockServer) -> Vec<Request> {
    server
        .requests()
        .into_iter()
        .filter(|r| !r.is_root_turn())
        .collect()
}

/// Every event of a JSONL trace.
fn read_trace(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("trace line is not JSON ({e}): {l}"))
        })
        .collect()
}

fn events<'a>(trace: &'a [Value], name: &str) -> Vec<&'a Value> {
    trace.iter().filter(|e| e["event"] == name).collect()
}

#[test]
fn needle_in_a_100_mb_haystack_is_found_with_grep_and_one_llm_query() {
    const BLOCKS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haystack.log");
    // One 1 MiB block of varied lines, written 100 times; the needle goes
    // between blocks 50 and 51.
    let mut block = String::with_capacity((1 << 20) + 100);
    let mut lines_per_block = 0;
    while block.len() < 1 << 20 {
        let n = lines_per_block;
        block.push_str(&format!(
            "{n:07} INFO worker={} latency_ms={} status=ok path=/api/v{}/items\n",
            n % 17,
            (n * 7919) % 1000,
            n % 3
        ));
        lines_per_block += 1;
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for b in 0..BLOCKS {
        if b == BLOCKS / 2 {
            file.write_all(b"0000000 WARN the magic number is 4242.\n")
                .unwrap();
        }
        file.write_all(block.as_bytes()).unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let ctx = Context::open(&[&path]).unwrap();
    assert!(ctx.len() > 100_000_000, "{}", ctx.len());

    let script: Script = Arc::new(|_, turn, _| match turn {
        1 => code(
            r#"let hits = context.grep("magic number");
print(hits.len());
let a = llm_query(`Extract the number: ${hits[0].text}`);
submit(`${a} at line ${hits[0].line}`);"#,
        ),
        _ => panic!("no turn {turn}"),
    });
    let server = server(script, |p| {
        p.rsplit(' ')
            .next()
            .unwrap_or("")
            .trim_end_matches('.')
            .to_string()
    });
    let result = rlm(&server, RunConfig::default(), Budgets::default())
        .run("What is the magic number?", &ctx);

    let needle_line = BLOCKS / 2 * lines_per_block + 1;
    assert_eq!(result.status, RunStatus::Submitted, "{result:?}");
    assert_eq!(
        result.answer_text,
        Some(format!("4242 at line {needle_line}"))
    );
    assert_eq!(result.iterations, 1);
    let subs = sub_requests(&server);
    assert_eq!(subs.len(), 1);
    assert_eq!(
        subs[0].prompt(),
        "Extract the number: 0000000 WARN the magic number is 4242."
    );
    assert_eq!(result.usage["gpt-5-mini"].calls, 1);
}

#[test]
fn a_counting_task_fans_out_over_chunks_with_llm_batch() {
    let mut text = String::new();
    let mut errors = 0;
    for i in 0..20_000 {
        let error = i % 7 == 3 || i % 13 == 0;
        errors += usize::from(error);
        text.push_str(&format!(
            "row {i:05}: {}\n",
            if error { "ERROR disk" } else { "ok" }
        ));
    }
    let ctx = Context::from_string("rows", text);
    let chunks = ctx.text().chunks(4000, 0).unwrap().len();
    assert!(chunks > 20, "{chunks}");

    let script: Script = Arc::new(|_, turn, _| match turn {
        1 => code(
            r#"let parts = context.chunks(4000);
let answers = llm_batch(parts.map(|c| "Count the rows that say ERROR. Reply with a number.\n\n" + c));
let total = 0;
for a in answers { total += int(a); }
print(`${parts.len()} chunks, ${total} errors`);"#,
        ),
        2 => code("submit(total);"),
        _ => panic!("no turn {turn}"),
    });
    let server = server(script, |p| {
        p.lines()
            .filter(|l| l.starts_with("row ") && l.contains("ERROR"))
            .count()
            .to_string()
    });
    let result = rlm(&server, RunConfig::default(), Budgets::default())
        .run("How many rows are errors?", &ctx);

    assert_eq!(result.status, RunStatus::Submitted, "{result:?}");
    assert_eq!(result.answer, Some(json!(errors)));
    assert_eq!(sub_requests(&server).len(), chunks);
    assert_eq!(result.usage["gpt-5-mini"].calls, chunks as u64);
    let second = &root_requests(&server)[1];
    assert!(
        last_user_message(second).contains(&format!("{chunks} chunks, {errors} errors")),
        "{}",
        last_user_message(second)
    );
}

#[test]
fn a_depth_2_run_recurses_into_a_child_that_runs_its_own_turns() {
    let dir = tempfile::tempdir().unwrap();
    let trace_path = dir.path().join("trace.jsonl");
    let script: Script = Arc::new(|question, turn, _| {
        if question.starts_with("Question: What is the code word?") {
            return match turn {
                1 => code(r#"print(context.grep("code word").len());"#),
                2 => code(r#"submit(context.matches("code word is (\\w+)")[0].groups[0]);"#),
                _ => panic!("no child turn {turn}"),
            };
        }
        match turn {
            1 => code(
                r#"let half = context.parts(2)[1]; let a = rlm_query("What is the code word?", half); submit(`child said ${a}`);"#,
            ),
            _ => panic!("no root turn {turn}"),
        }
    });
    let server = server(script, |_| panic!("no sub-calls expected"));
    let mut text = "chatter\n".repeat(200);
    text.push_str(&"more chatter\n".repeat(200));
    text.push_str("the code word is PLOVER\n");
    let ctx = Context::from_string("doc", text);
    let half_len = ctx.text().parts(2).unwrap()[1].len();
    let result = builder(&server, RunConfig::default(), Budgets::default())
        .trace(&trace_path)
        .build()
        .unwrap()
        .run("Find the code word.", &ctx);

    assert_eq!(result.status, RunStatus::Submitted, "{result:?}");
    assert_eq!(result.answer_text.as_deref(), Some("child said PLOVER"));
    assert_eq!(result.iterations, 1);
    // One root turn, two child turns, all on the root model.
    assert_eq!(result.usage["gpt-5"].calls, 3);
    let child_first = root_requests(&server)
        .into_iter()
        .find(|r| first_user_message(r).contains("code word?"))
        .unwrap();
    assert!(
        first_user_message(&child_first).contains(&format!("({half_len} bytes)")),
        "{}",
        first_user_message(&child_first)
    );

    let trace = read_trace(&trace_path);
    let starts = events(&trace, "run_start");
    let child = starts
        .iter()
        .find(|e| e["run"] == "0.1")
        .expect("a run_start for the child");
    assert_eq!(child["depth"], 1);
    assert_eq!(child["parent"], "0");
    assert_eq!(child["query"], "What is the code word?");
    let ends = events(&trace, "child_end");
    assert_eq!(ends.len(), 1);
    assert_eq!(
        (&ends[0]["run"], &ends[0]["depth"], &ends[0]["status"]),
        (&json!("0.1"), &json!(1), &json!("submitted"))
    );
    assert_eq!(ends[0]["answer"], "PLOVER");
    assert_eq!(ends[0]["iterations"], 2);
    let cells: Vec<_> = events(&trace, "cell")
        .into_iter()
        .filter(|e| e["run"] == "0.1")
        .collect();
    assert_eq!(cells.len(), 2);
    assert_eq!(cells[0]["output"], "1\n");
    let last = trace.last().unwrap();
    assert_eq!(
        (&last["event"], &last["run"]),
        (&json!("final"), &json!("0"))
    );
}

#[test]
fn rlm_batch_runs_children_in_parallel_and_keeps_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let trace_path = dir.path().join("trace.jsonl");
    let script: ReplyScript = Arc::new(|question, turn, _| {
        if question.starts_with("Question: Shout the fruit") {
            let reply = match turn {
                1 => code("print(context.len());"),
                2 => code("submit(context.to_upper());"),
                _ => panic!("no child turn {turn}"),
            };
            // Every child's first turn is slow, the first child's slowest, so
            // children overlap and the first one finishes last.
            let delay = match (turn, question.contains("(3 bytes)")) {
                (1, true) => 600,
                (1, false) => 300,
                _ => 0,
            };
            return Reply::openai_text(&reply, 100, 10).after(Duration::from_millis(delay));
        }
        match turn {
            1 => Reply::openai_text(
                &code(r#"submit(rlm_batch("Shout the fruit", ["fig", "banana", "kiwi fruit"]));"#),
                1000,
                100,
            ),
            _ => panic!("no root turn {turn}"),
        }
    });
    let server = server_with(script, |_| panic!("no sub-calls expected"));
    let ctx = Context::from_string("doc", "fig\nbanana\nkiwi fruit\n");
    let result = builder(&server, RunConfig::default(), Budgets::default())
        .trace(&trace_path)
        .build()
        .unwrap()
        .run("Which fruits are listed?", &ctx);

    assert_eq!(result.status, RunStatus::Submitted, "{result:?}");
    assert_eq!(result.answer, Some(json!(["FIG", "BANANA", "KIWI FRUIT"])));
    // Parallel: every child asked for its first turn before any child got to its second.
    let child_turns: Vec<usize> = root_requests(&server)
        .iter()
        .filter(|r| first_user_message(r).contains("Shout the fruit"))
        .map(turn_of)
        .collect();
    assert_eq!(child_turns, [1, 1, 1, 2, 2, 2]);
    let trace = read_trace(&trace_path);
    let mut children: Vec<_> = events(&trace, "run_start")
        .iter()
        .filter(|e| e["depth"] == 1)
        .map(|e| (e["run"].clone(), e["parent"].clone()))
        .collect();
    children.sort_by_key(|(run, _)| run.to_string());
    assert_eq!(
        children,
        [
            (json!("0.1"), json!("0")),
            (json!("0.2"), json!("0")),
            (json!("0.3"), json!("0"))
        ]
    );
    // The first child (the fig) finished last, yet its answer comes first.
    let ended: Vec<_> = events(&trace, "child_end")
        .iter()
        .map(|e| e["run"].clone())
        .collect();
    assert_eq!(ended.len(), 3);
    assert_eq!(ended[2], "0.1");
}

#[test]
fn at_max_depth_1_rlm_query_falls_back_to_llm_query() {
    let dir = tempfile::tempdir().unwrap();
    let trace_path = dir.path().join("trace.jsonl");
    let script: Script = Arc::new(|_, turn, _| match turn {
        1 => code(r#"submit(rlm_query("What is the code word?", "the code word is PLOVER"));"#),
        _ => panic!("no turn {turn}"),
    });
    let server = server(script, |p| format!("sub saw: {p}"));
    let ctx = Context::from_string("doc", "anything\n");
    let result = builder(
        &server,
        RunConfig {
            max_depth: 1,
            ..RunConfig::default()
        },
        Budgets::default(),
    )
    .trace(&trace_path)
    .build()
    .unwrap()
    .run("Find the code word.", &ctx);

    assert_eq!(result.status, RunStatus::Submitted, "{result:?}");
    assert_eq!(
        result.answer_text.as_deref(),
        Some("sub saw: What is the code word?\n\nthe code word is PLOVER")
    );
    assert_eq!(root_requests(&server).len(), 1);
    assert_eq!(sub_requests(&server).len(), 1);
    let trace = read_trace(&trace_path);
    assert_eq!(events(&trace, "run_start").len(), 1);
    assert!(events(&trace, "child_end").is_empty());
    assert_eq!(events(&trace, "sub_call")[0]["model"], "gpt-5-mini");
}

#[test]
fn a_script_error_is_shown_to_the_model_which_fixes_it() {
    let script: Script = Arc::new(|_, turn, req| match turn {
        1 => code("let n = context.line_count()\nprint(n);"),
        2 => {
            let feedback = last_user_message(req);
            assert!(
                feedback.contains("Expecting ';'") && feedback.contains("at line 2, column 1"),
                "{feedback}"
            );
            code("let n = context.line_count();\nsubmit(n);")
        }
        _ => panic!("no turn {turn}"),
    });
    let server = server(script, |_| String::new());
    let ctx = Context::from_string("doc", "a\nb\nc\n");
    let result =
        rlm(&server, RunConfig::default(), Budgets::default()).run("How many lines?", &ctx);
    assert_eq!(result.status, RunStatus::Submitted, "{result:?}");
    assert_eq!(result.answer, Some(serde_json::json!(3)));
    assert_eq!(result.iterations, 2);
    assert_eq!(result.usage["gpt-5"].calls, 2);
}

#[test]
fn smoke_needle_with_grep_and_llm_query() {
    let script: Script = Arc::new(|_, turn, _| match turn {
        1 => code(
            r#"let hits = context.grep("magic number"); print(hits.len()); let a = llm_query(`Extract the number: ${hits[0].text}`); submit(a);"#,
        ),
        _ => panic!("no turn {turn}"),
    });
    let server = server(script, |p| {
        p.rsplit(' ')
            .next()
            .unwrap_or("")
            .trim_end_matches('.')
            .to_string()
    });
    let mut text = "filler line\n".repeat(1000);
    text.push_str("the magic number is 4242.\n");
    let ctx = Context::from_string("doc", text);
    let result: RunResult = rlm(&server, RunConfig::default(), Budgets::default())
        .run("What is the magic number?", &ctx);
    assert_eq!(result.answer_text.as_deref(), Some("4242"), "{result:?}");
    assert_eq!(result.answer_kind, Some(AnswerKind::Submitted));
    assert_eq!(result.usage["gpt-5-mini"].calls, 1);
}

#[test]
fn at_max_iterations_the_model_is_told_it_is_the_final_turn_and_its_prose_is_the_answer() {
    let script: Script = Arc::new(|_, turn, _| match turn {
        1 | 2 => code("print(context.len());"),
        3 => "I could not finish, but the answer is probably 42.".to_string(),
        _ => panic!("no turn {turn}"),
    });
    let server = server(script, |_| String::new());
    let ctx = Context::from_string("doc", "some text\n");
    let result = rlm(
        &server,
        RunConfig {
            max_iterations: 3,
            ..RunConfig::default()
        },
        Budgets::default(),
    )
    .run("What is it?", &ctx);

    assert_eq!(result.status, RunStatus::MaxIterations, "{result:?}");
    assert_eq!(result.answer_kind, Some(AnswerKind::Prose));
    assert_eq!(
        result.answer_text.as_deref(),
        Some("I could not finish, but the answer is probably 42.")
    );
    assert_eq!(result.iterations, 3);
    assert_eq!(result.status.exit_code(), 3);
    let turns = root_requests(&server);
    assert_eq!(turns.len(), 3);
    assert!(!last_user_message(&turns[0]).contains("final turn"));
    assert!(!last_user_message(&turns[1]).contains("final turn"));
    assert!(
        last_user_message(&turns[2]).contains("final turn"),
        "{}",
        last_user_message(&turns[2])
    );
}

/// A root that never submits: each turn prints, and makes one sub-call when `sub` is set.
fn never_submits(sub: bool) -> Script {
    Arc::new(move |_, _, _| {
        code(if sub {
            r#"print(llm_query("ping"));"#
        } else {
            "print(context.len());"
        })
    })
}

#[test]
fn the_call_budget_stops_a_run_after_a_final_turn() {
    let server = server(never_submits(true), |_| "pong".into());
    let ctx = Context::from_string("doc", "text\n");
    let budgets = Budgets {
        max_calls: Some(3),
        ..Budgets::default()
    };
    let result = rlm(&server, RunConfig::default(), budgets).run("Go on forever.", &ctx);

    assert_eq!(result.status, RunStatus::MaxLlmCalls, "{result:?}");
    assert_eq!(result.status.exit_code(), 4);
    assert!(
        result.totals.calls + result.totals.errors <= 3,
        "{:?}",
        result.totals
    );
    assert!(server.requests().len() <= 3, "{}", server.requests().len());
    // Turn 1 spends two calls (root and sub), so turn 2 is the final one.
    let turns = root_requests(&server);
    assert_eq!(turns.len(), 2);
    assert!(
        last_user_message(&turns[1]).contains("final turn"),
        "{}",
        last_user_message(&turns[1])
    );
}

#[test]
fn on_the_last_call_of_the_budget_prose_is_taken_as_the_answer() {
    let script: Script = Arc::new(|_, _, req| {
        if last_user_message(req).contains("final turn") {
            "Best guess: 5 bytes.".to_string()
        } else {
            code("print(context.len());")
        }
    });
    let server = server(script, |_| String::new());
    let ctx = Context::from_string("doc", "text\n");
    let budgets = Budgets {
        max_calls: Some(4),
        ..Budgets::default()
    };
    let result = rlm(&server, RunConfig::default(), budgets).run("How long?", &ctx);

    assert_eq!(result.status, RunStatus::MaxLlmCalls, "{result:?}");
    assert_eq!(result.answer_kind, Some(AnswerKind::Prose));
    assert_eq!(result.answer_text.as_deref(), Some("Best guess: 5 bytes."));
    assert_eq!(result.iterations, 4);
    assert_eq!(server.requests().len(), 4);
}

#[test]
fn the_token_budget_stops_a_run_before_it_is_passed() {
    let server = server(never_submits(false), |_| String::new());
    let ctx = Context::from_string("doc", "text\n");
    // Each root turn reports 1000 + 100 tokens, but reserves its prompt at
    // a token per byte (the system prompt alone is thousands) plus its
    // answer cap, so the run stops while that worst case still fits.
    let budgets = Budgets {
        max_tokens: Some(30_000),
        ..Budgets::default()
    };
    let result = rlm(&server, RunConfig::default(), budgets).run("Go on forever.", &ctx);

    assert_eq!(result.status, RunStatus::MaxTokens, "{result:?}");
    assert_eq!(result.status.exit_code(), 5);
    let spent = result.totals.input_tokens + result.totals.output_tokens;
    assert!(spent <= 30_000, "{spent}");
    assert!(result.iterations >= 3, "{result:?}");
    assert_eq!(spent, 1100 * server.requests().len() as u64);
    assert!(
        result
            .error
            .as_deref()
            .is_some_and(|e| e.contains("30000 tokens")),
        "{:?}",
        result.error
    );
}

#[test]
fn the_cost_budget_stops_a_run_before_it_is_passed() {
    let server = server(never_submits(false), |_| String::new());
    let ctx = Context::from_string("doc", "text\n");
    // gpt-5 at $1.25 / $10 per million: a root turn of 1000 + 100 tokens costs $0.00225.
    let budgets = Budgets {
        max_cost_usd: Some(0.05),
        ..Budgets::default()
    };
    let result = rlm(&server, RunConfig::default(), budgets).run("Go on forever.", &ctx);

    assert_eq!(result.status, RunStatus::MaxCost, "{result:?}");
    assert_eq!(result.status.exit_code(), 6);
    assert!(result.cost_usd <= 0.05, "{}", result.cost_usd);
    let turns = server.requests().len();
    assert!(turns >= 3, "{turns}");
    assert!(
        (result.cost_usd - turns as f64 * 0.00225).abs() < 1e-9,
        "{}",
        result.cost_usd
    );
}

/// Runs `server`'s script with a 1 s run timeout and checks the run stops with `Timeout` promptly.
fn assert_times_out(server: &MockServer) -> RunResult {
    let ctx = Context::from_string("doc", "text\n");
    let config = RunConfig {
        timeout: Some(Duration::from_secs(1)),
        max_iterations: 1000,
        ..RunConfig::default()
    };
    let started = Instant::now();
    let result = rlm(server, config, Budgets::default()).run("Go on forever.", &ctx);
    let wall = started.elapsed();
    assert_eq!(result.status, RunStatus::Timeout, "{result:?}");
    assert_eq!(result.status.exit_code(), 7);
    assert!(
        wall >= Duration::from_secs(1) && wall < Duration::from_secs(10),
        "{wall:?}"
    );
    assert!(
        result
            .error
            .as_deref()
            .is_some_and(|e| e.contains("time limit")),
        "{:?}",
        result.error
    );
    result
}

#[test]
fn the_run_timeout_stops_a_sleeping_cell() {
    let script: Script = Arc::new(|_, turn, _| {
        code(if turn == 1 {
            "print(1);"
        } else {
            "sleep(60); print(2);"
        })
    });
    let server = server(script, |_| String::new());
    let result = assert_times_out(&server);
    assert_eq!(result.iterations, 2);
}

#[test]
fn the_run_timeout_stops_a_slow_root_model() {
    let script: ReplyScript = Arc::new(|_, turn, _| {
        let reply = Reply::openai_text(&code("print(1);"), 100, 10);
        if turn == 1 {
            reply
        } else {
            reply.after(Duration::from_secs(60))
        }
    });
    let server = server_with(script, |_| Reply::openai_text("", 1, 1));
    let result = assert_times_out(&server);
    assert_eq!(result.iterations, 2);
}

#[test]
fn the_run_timeout_stops_a_slow_sub_call() {
    let server = server_with(
        Arc::new(|_, _, _| Reply::openai_text(&code(r#"print(llm_query("ping"));"#), 100, 10)),
        |_| Reply::Hang,
    );
    let result = assert_times_out(&server);
    assert_eq!(result.iterations, 1);
}

#[test]
fn the_run_timeout_stops_a_slow_llm_batch() {
    let server = server_with(
        Arc::new(|_, _, _| Reply::openai_text(&code(r#"print(llm_batch(["a", "b"]));"#), 100, 10)),
        |_| Reply::Hang,
    );
    let ctx = Context::from_string("doc", "text\n");
    let config = RunConfig {
        timeout: Some(Duration::from_secs(1)),
        ..RunConfig::default()
    };
    // A short request timeout turns the bug into a failure after 6 s instead of a 10-minute hang.
    let rlm = builder(&server, config, Budgets::default())
        .llm_config(LlmConfig {
            openai_base_url: server.openai_url(),
            request_timeout: Duration::from_secs(6),
            retry: RetryPolicy {
                max_retries: 0,
                ..RetryPolicy::default()
            },
            ..LlmConfig::default()
        })
        .build()
        .unwrap();
    let started = Instant::now();
    let result = rlm.run("Go on forever.", &ctx);
    let wall = started.elapsed();
    assert_eq!(result.status, RunStatus::Timeout, "{result:?}");
    assert!(
        wall < Duration::from_secs(5),
        "the run outlived its 1 s limit: {wall:?}"
    );
}

#[test]
fn an_empty_response_gets_a_nudge_and_the_run_continues() {
    let script: ReplyScript = Arc::new(|_, turn, _| match turn {
        1 => Reply::openai_text("", 100, 0),
        2 => Reply::json(json!({
            "id": "chatcmpl-null",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 0, "total_tokens": 100}
        })),
        3 => Reply::openai_text(&code("submit(context.line_count());"), 100, 10),
        _ => panic!("no turn {turn}"),
    });
    let server = server_with(script, |_| Reply::openai_text("", 1, 1));
    let ctx = Context::from_string("doc", "a\nb\n");
    let result =
        rlm(&server, RunConfig::default(), Budgets::default()).run("How many lines?", &ctx);

    assert_eq!(result.status, RunStatus::Submitted, "{result:?}");
    assert_eq!(result.answer, Some(json!(2)));
    assert_eq!(result.iterations, 3);
    let turns = root_requests(&server);
    for t in &turns[1..] {
        assert!(
            last_user_message(t).contains("empty"),
            "{}",
            last_user_message(t)
        );
    }
}

/// A reply that spent its whole token limit thinking: no text, finish `length`.
fn thought_to_the_limit() -> Reply {
    Reply::json(json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 4000}
    }))
}

#[test]
fn a_root_reply_cut_off_before_any_text_is_nudged_once_then_fails_naming_the_fix() {
    // Once: the run is told to be brief and carries on.
    let script: ReplyScript = Arc::new(|_, turn, _| match turn {
        1 => thought_to_the_limit(),
        _ => Reply::openai_text(&code("submit(context.line_count());"), 100, 10),
    });
    let server = server_with(script, |_| Reply::openai_text("", 1, 1));
    let ctx = Context::from_string("doc", "a\nb\n");
    let result =
        rlm(&server, RunConfig::default(), Budgets::default()).run("How many lines?", &ctx);
    assert_eq!(result.status, RunStatus::Submitted, "{result:?}");
    assert_eq!(result.answer, Some(json!(2)));
    let turns = root_requests(&server);
    assert_eq!(turns.len(), 2);
    assert!(last_user_message(&turns[1]).contains("Think less"));
    // Every message sent is non-empty: Anthropic rejects empty ones.
    let messages = turns[1].json()["messages"].as_array().unwrap().clone();
    assert!(messages
        .iter()
        .all(|m| m["content"].as_str().is_some_and(|c| !c.is_empty())));

    // Every time: one nudge, then the run fails and says which flag helps.
    let always: ReplyScript = Arc::new(|_, _, _| thought_to_the_limit());
    let server = server_with(always, |_| Reply::openai_text("", 1, 1));
    let result =
        rlm(&server, RunConfig::default(), Budgets::default()).run("How many lines?", &ctx);
    assert_eq!(result.status, RunStatus::Failed, "{result:?}");
    let error = result.error.unwrap_or_default();
    assert!(error.contains("--root-max-tokens"), "{error}");
    assert_eq!(root_requests(&server).len(), 2);
}

#[test]
fn a_python_block_is_not_run_and_the_model_is_told_to_rewrite_it_in_rhai() {
    let script: Script = Arc::new(|_, turn, _| {
        match turn {
        1 => "```python\nimport re\ndef count(text):\n    return len(re.findall('ERROR', text))\nprint(f\"{count(context)} errors\")\n```".into(),
        2 => code(r#"submit(context.count_matches("ERROR"));"#),
        _ => panic!("no turn {turn}"),
    }
    });
    let server = server(script, |_| String::new());
    let ctx = Context::from_string("log", "ERROR a\nINFO b\nERROR c\n");
    let result =
        rlm(&server, RunConfig::default(), Budgets::default()).run("How many errors?", &ctx);

    assert_eq!(result.status, RunStatus::Submitted, "{result:?}");
    assert_eq!(result.answer, Some(json!(2)));
    let nudge = last_user_message(&root_requests(&server)[1]);
    assert!(
        nudge.contains("```python") && nudge.contains("not run") && nudge.contains("Rhai"),
        "{nudge}"
    );
}

#[test]
fn python_habits_in_a_rhai_block_get_targeted_hints_and_the_model_recovers() {
    let script: Script = Arc::new(|_, turn, _| match turn {
        1 => code("def count(text):\n    return text.len()"),
        2 => code("import re\nprint(1);"),
        3 => code("let n = context.count_matches(\"ERROR\");\nprint(f\"found {n} errors\");"),
        4 => code("let n = context.count_matches(\"ERROR\");\nsubmit(`found ${n} errors`);"),
        _ => panic!("no turn {turn}"),
    });
    let server = server(script, |_| String::new());
    let ctx = Context::from_string("log", "ERROR a\nINFO b\nERROR c\n");
    let result =
        rlm(&server, RunConfig::default(), Budgets::default()).run("How many errors?", &ctx);

    assert_eq!(result.status, RunStatus::Submitted, "{result:?}");
    assert_eq!(result.answer_text.as_deref(), Some("found 2 errors"));
    assert_eq!(result.iterations, 4);
    let feedback: Vec<String> = root_requests(&server)
        .iter()
        .skip(1)
        .map(last_user_message)
        .collect();
    assert!(
        feedback[0].contains("Hint:") && feedback[0].contains("fn name("),
        "{}",
        feedback[0]
    );
    assert!(
        feedback[1].contains("Hint:") && feedback[1].contains("`import`"),
        "{}",
        feedback[1]
    );
    assert!(
        feedback[2].contains("Hint:")
            && feedback[2].contains("f-strings")
            && feedback[2].contains("${"),
        "{}",
        feedback[2]
    );
}

/// Cell events without their timing fields.
fn cells_without_timing(trace: &[Value]) -> Vec<Value> {
    events(trace, "cell")
        .into_iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(o) = e.as_object_mut() {
                o.remove("t");
                o.remove("duration_s");
            }
            e
        })
        .collect()
}

#[test]
fn replay_reproduces_a_recorded_run_without_any_server() {
    let dir = tempfile::tempdir().unwrap();
    let (recorded, replayed) = (
        dir.path().join("recorded.jsonl"),
        dir.path().join("replayed.jsonl"),
    );
    let script: Script = Arc::new(|question, turn, _| {
        if question.starts_with("Question: Which service failed?") {
            return code(
                r#"submit(llm_query(`Name the service: ${context.grep("ERROR")[0].text}`));"#,
            );
        }
        match turn {
            1 => code(
                r#"let hits = context.grep("ERROR");
print(`${hits.len()} errors`);
let first = llm_query(`Summarize: ${hits[0].text}`);
print(first);"#,
            ),
            2 => code(
                r#"let each = llm_batch(hits.map(|h| `Summarize: ${h.text}`));
let who = rlm_query("Which service failed?", context.slice(hits[1].start, context.len()));
submit(#{count: hits.len(), first: first, each: each, who: who});"#,
            ),
            _ => panic!("no turn {turn}"),
        }
    });
    let server = server(script, |p| {
        format!("summary of [{}]", p.trim_start_matches("Summarize: "))
    });
    let ctx = Context::from_string(
        "log",
        "INFO up\nERROR disk full on db\nINFO retry\nERROR timeout in api\n",
    );
    let query = "What went wrong?";
    let original = builder(&server, RunConfig::default(), Budgets::default())
        .trace(&recorded)
        .build()
        .unwrap()
        .run(query, &ctx);
    assert_eq!(original.status, RunStatus::Submitted, "{original:?}");
    let calls_to_server = server.requests().len();
    drop(server);

    let replay = Rlm::builder()
        .replay(&recorded)
        .unwrap()
        .trace(&replayed)
        .build()
        .unwrap()
        .run(query, &ctx);
    assert_eq!(replay.status, original.status, "{replay:?}");
    assert_eq!(replay.answer, original.answer);
    assert_eq!(replay.answer_text, original.answer_text);
    assert_eq!(replay.answer_kind, original.answer_kind);
    assert_eq!(replay.iterations, original.iterations);
    let tokens = |r: &RunResult| -> Vec<(String, u64, u64, u64)> {
        r.usage
            .iter()
            .map(|(m, u)| (m.clone(), u.calls, u.input_tokens, u.output_tokens))
            .collect()
    };
    assert_eq!(tokens(&replay), tokens(&original));
    assert_eq!(original.totals.calls as usize, calls_to_server);
    assert!(
        (replay.cost_usd - original.cost_usd).abs() < 1e-12,
        "{} vs {}",
        replay.cost_usd,
        original.cost_usd
    );
    let (old, new) = (read_trace(&recorded), read_trace(&replayed));
    let cells = cells_without_timing(&old);
    assert_eq!(cells.len(), 3, "{cells:?}");
    assert_eq!(cells_without_timing(&new), cells);
    assert_eq!(
        events(&new, "sub_call").len(),
        events(&old, "sub_call").len()
    );
}
