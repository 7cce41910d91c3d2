//! Run events through the real loop: a loopback server plays the root model
//! and the sub-model, and what sinks receive (the JSONL trace, a custom
//! sink, the verbose printer of `rlm run -v`) is checked against it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use rlm::driver::{Rlm, RlmBuilder, RunConfig, RunStatus};
use rlm::events::{Event, RunEvent, RunSink};
use rlm::llm::{Budgets, LlmConfig, ModelSpec, RetryPolicy};
use rlm::testing::{MockServer, Reply, Request};
use rlm::Context;

mod common;

/// The root turns of a scripted model, by the question of the run (so a
/// child gets its own script) and the turn number.
type Script = Arc<dyn Fn(&str, usize) -> String + Send + Sync>;

fn question_of(req: &Request) -> String {
    req.first_user_message()
}

/// A server playing `script` for root turns and answering sub-calls with
/// the prompt's length, so every answer is known in advance.
fn server(script: Script) -> MockServer {
    MockServer::start(move |req| {
        if req.is_root_turn() {
            let turn = req.message_count().div_ceil(2);
            Reply::openai_text(&script(&question_of(req), turn), 1000, 100)
        } else {
            Reply::openai_text(&format!("len {}", req.prompt().len()), 200, 5)
        }
    })
}

fn builder(server: &MockServer) -> RlmBuilder {
    Rlm::builder()
        .llm_config(LlmConfig {
            openai_base_url: server.openai_url(),
            retry: RetryPolicy {
                max_retries: 0,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(5),
            },
            ..LlmConfig::default()
        })
        .config(RunConfig {
            model: ModelSpec::parse("gpt-5"),
            sub_model: Some(ModelSpec::parse("gpt-5-mini")),
            ..RunConfig::default()
        })
}

/// A run that touches every event: cells with output and an error,
/// `llm_query`, `llm_batch`, a child run with its own sub-call, and a submit.
fn everything() -> Script {
    Arc::new(|question, turn| {
        if question.contains("Question: Which word?") {
            return match turn {
                1 => common::code(r#"let a = llm_query("child asks"); print(a);"#),
                _ => common::code(r#"submit("PLOVER");"#),
            };
        }
        match turn {
            1 => common::code(
                r#"print(context.len()); let a = llm_query("how long?"); print(a); let b = llm_batch(["x", "yy"]); print(b);"#,
            ),
            2 => common::code("let x = undefined_thing;"),
            3 => common::code(r#"let w = rlm_query("Which word?", context); print(w);"#),
            _ => common::code(r#"print("done"); submit(`the word is PLOVER`);"#),
        }
    })
}

/// A run that never submits, under a call budget.
fn never_submits() -> Script {
    Arc::new(|_, _| common::code(r#"print(llm_query("ping"));"#))
}

/// A trace's lines without the fields that measure time, which differ
/// from run to run.
fn timeless(path: &Path) -> Vec<Value> {
    common::jsonl(path)
        .into_iter()
        .map(|mut e| {
            if let Some(o) = e.as_object_mut() {
                for k in ["t", "latency_s", "duration_s", "wall_s"] {
                    o.remove(k);
                }
            }
            e
        })
        .collect()
}

/// Writes the traces of the scenarios to `RLM_EVENTS_BASELINE` (a
/// directory), for comparing the trace of one build with another's.
#[test]
fn scenario_traces_can_be_written_for_comparison() {
    let Some(dir) = std::env::var_os("RLM_EVENTS_BASELINE") else {
        return;
    };
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let ctx = Context::from_string("doc", "the word is PLOVER\n".repeat(10));
    for (name, script, budgets) in [
        ("everything", everything(), Budgets::default()),
        (
            "budget",
            never_submits(),
            Budgets {
                max_calls: Some(5),
                ..Budgets::default()
            },
        ),
    ] {
        let server = server(script);
        let path = dir.join(format!("{name}.jsonl"));
        let result = builder(&server)
            .budgets(budgets)
            .trace(&path)
            .build()
            .unwrap()
            .run("Find the word.", &ctx);
        let lines = timeless(&path);
        let mut sorted: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        sorted.sort();
        std::fs::write(
            dir.join(format!("{name}.norm")),
            format!("{:?}\n{}\n", result.status, sorted.join("\n")),
        )
        .unwrap();
    }
}

/// One event as a test keeps it: the top run, the run, and what happened.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    top: u64,
    run: String,
    what: String,
}

/// A custom sink, as an embedder writes one: it keeps a line per event.
#[derive(Default)]
struct Recorder(Mutex<Vec<Seen>>);

impl RunSink for Recorder {
    fn event(&self, e: &RunEvent<'_>) {
        let what = match &e.event {
            Event::RunStart(s) => format!("run_start {}", s.query),
            Event::ChildStart(s) => format!("child_start {} from {:?}", s.query, s.parent),
            Event::RootRequest { iteration, .. } => format!("root_request {iteration}"),
            Event::RootResponse { iteration, .. } => format!("root_response {iteration}"),
            Event::CellStart(c) => format!("cell_start {}.{}", c.iteration, c.index),
            Event::CellEnd { cell, outcome, .. } => format!(
                "cell_end {}.{} {:?}",
                cell.iteration,
                cell.index,
                outcome.output.trim()
            ),
            Event::SubCallStart { model, tag, .. } => {
                format!("sub_call_start {model} cell {:?}", tag.cell)
            }
            Event::SubCallEnd(r) => format!(
                "sub_call_end {} {:?}",
                r.model,
                r.result.as_ref().map(|c| c.text.clone()).ok()
            ),
            Event::Budget(b) => format!("budget {b:?}"),
            Event::Final(a) => format!("final {} {:?}", a.text, a.kind),
            Event::ChildEnd(c) => format!("child_end {:?} {}", c.status, c.iterations),
            Event::RunEnd(r) => format!("run_end {:?} {}", r.status, r.iterations),
            other => format!("other {other:?}"),
        };
        self.0.lock().unwrap().push(Seen {
            top: e.top,
            run: e.run.to_string(),
            what,
        });
    }
}

impl Recorder {
    fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

fn seen(run: &str, what: &str) -> Seen {
    Seen {
        top: 1,
        run: run.into(),
        what: what.into(),
    }
}

#[test]
fn a_custom_sink_receives_every_event_of_a_run_in_order() {
    let script: Script = Arc::new(|question, turn| {
        if question.contains("Question: Which word?") {
            return common::code(r#"submit("PLOVER");"#);
        }
        match turn {
            1 => common::code(r#"print(llm_query("how long?"));"#),
            2 => common::code(r#"print(rlm_query("Which word?", context));"#),
            _ => common::code(r#"submit("the word is PLOVER");"#),
        }
    });
    let server = server(script);
    let recorder = Arc::new(Recorder::default());
    let ctx = Context::from_string("doc", "the word is PLOVER\n");
    let result = builder(&server)
        .sink(recorder.clone())
        .build()
        .unwrap()
        .run("Find the word.", &ctx);

    assert_eq!(result.answer_text.as_deref(), Some("the word is PLOVER"));
    let mut expected = vec![
        seen("0", "run_start Find the word."),
        seen("0", "root_request 1"),
        seen("0", "root_response 1"),
        seen("0", "cell_start 1.1"),
        seen("0", "sub_call_start gpt-5-mini cell Some(1)"),
        seen("0", "sub_call_end gpt-5-mini Some(\"len 9\")"),
        seen("0", "cell_end 1.1 \"len 9\""),
        seen("0", "root_request 2"),
        seen("0", "root_response 2"),
        seen("0", "cell_start 2.1"),
        seen("0.1", "child_start Which word? from Some(\"0\")"),
        seen("0.1", "root_request 1"),
        seen("0.1", "root_response 1"),
        seen("0.1", "cell_start 1.1"),
        seen("0.1", "cell_end 1.1 \"\""),
        seen("0.1", "final PLOVER Submitted"),
        seen("0.1", "child_end Submitted 1"),
        seen("0", "cell_end 2.1 \"PLOVER\""),
        seen("0", "root_request 3"),
        seen("0", "root_response 3"),
        seen("0", "cell_start 3.1"),
        seen("0", "cell_end 3.1 \"\""),
        seen("0", "final the word is PLOVER Submitted"),
        seen("0", "run_end Submitted 3"),
    ];
    assert_eq!(recorder.seen(), expected);

    // A second run on the same `Rlm` is top run 2, with the same events.
    let rlm = builder(&server).sink(recorder.clone()).build().unwrap();
    let before = recorder.seen().len();
    rlm.run("Find the word.", &ctx);
    rlm.run("Find the word.", &ctx);
    let second: Vec<Seen> = recorder.seen()[before..]
        .iter()
        .filter(|s| s.top == 2)
        .cloned()
        .collect();
    for s in &mut expected {
        s.top = 2;
    }
    assert_eq!(second, expected);
}

#[test]
fn a_budget_stop_is_an_event_before_the_end() {
    let server = server(never_submits());
    let recorder = Arc::new(Recorder::default());
    let ctx = Context::from_string("doc", "text\n");
    let result = builder(&server)
        .budgets(Budgets {
            max_calls: Some(5),
            ..Budgets::default()
        })
        .sink(recorder.clone())
        .build()
        .unwrap()
        .run("Go on forever.", &ctx);

    assert_eq!(result.status, RunStatus::MaxLlmCalls, "{result:?}");
    let seen = recorder.seen();
    let n = seen.len();
    assert!(
        seen[n - 2]
            .what
            .starts_with("budget Stopped { status: MaxLlmCalls"),
        "{seen:#?}"
    );
    assert_eq!(seen[n - 1].what, "run_end MaxLlmCalls 3");
}

/// Lines of a trace of one top run (`top` absent means the first).
fn lines_of(trace: &[Value], top: u64) -> Vec<&Value> {
    trace
        .iter()
        .filter(|e| e["top"].as_u64().unwrap_or(1) == top)
        .collect()
}

#[test]
fn two_concurrent_runs_on_one_rlm_each_get_their_own_result_turns_and_trace_lines() {
    // Run A's sub-call is slow and run B starts once A has asked its first
    // turn, so the two are in flight together (the checks hold either way).
    let server = MockServer::start(move |req| {
        if !req.is_root_turn() {
            return Reply::openai_text("sub answer", 200, 5).after(Duration::from_millis(300));
        }
        let turn = req.message_count().div_ceil(2);
        let text = if question_of(req).contains("Question: Run A") {
            match turn {
                1 => common::code(r#"print(llm_query("a sub-call"));"#),
                _ => common::code(r#"submit("answer A");"#),
            }
        } else {
            match turn {
                1 | 2 => common::code("print(context.len());"),
                _ => common::code(r#"submit("answer B");"#),
            }
        };
        Reply::openai_text(&text, 1000, 100)
    });
    let dir = tempfile::tempdir().unwrap();
    let trace_path = dir.path().join("trace.jsonl");
    let recorder = Arc::new(Recorder::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rlm = builder(&server)
        .trace(&trace_path)
        .sink(recorder.clone())
        .runtime(runtime.handle().clone())
        .build()
        .unwrap();
    let ctx = Context::from_string("doc", "some text\n");
    let (a, b) = runtime.block_on(async {
        tokio::join!(rlm.complete("Run A", &ctx), async {
            // A asks first, so its sub-call is the one that waits.
            while !server
                .requests()
                .iter()
                .any(|r| question_of(r).contains("Run A"))
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            rlm.complete("Run B", &ctx).await
        })
    });

    assert_eq!(
        (a.answer_text.as_deref(), a.status, a.iterations),
        (Some("answer A"), RunStatus::Submitted, 2),
        "{a:?}"
    );
    assert_eq!(
        (b.answer_text.as_deref(), b.status, b.iterations),
        (Some("answer B"), RunStatus::Submitted, 3),
        "{b:?}"
    );
    let trace = common::jsonl(&trace_path);
    for (top, query, turns, answer) in [(1, "Run A", 2, "answer A"), (2, "Run B", 3, "answer B")] {
        let lines = lines_of(&trace, top);
        let of = |name: &str| lines.iter().filter(|e| e["event"] == name).count();
        assert_eq!(lines[0]["event"], "run_start", "{lines:#?}");
        assert_eq!(lines[0]["query"], query);
        assert_eq!((of("root_request"), of("root_response")), (turns, turns));
        assert_eq!(of("sub_call"), usize::from(top == 1));
        let last = lines.last().unwrap();
        assert_eq!(
            (&last["event"], &last["answer"]),
            (&json!("final"), &json!(answer))
        );
        assert_eq!(last["iterations"], turns);
        // The sink saw the same runs, each from start to end.
        let seen: Vec<String> = recorder
            .seen()
            .into_iter()
            .filter(|s| s.top == top)
            .map(|s| s.what)
            .collect();
        assert_eq!(seen[0], format!("run_start {query}"));
        assert_eq!(seen.last().unwrap(), &format!("run_end Submitted {turns}"));
    }
}

/// A key the child process has in its environment, which must never be printed.
const FAKE_KEY: &str = "sk-test-verbose-0123456789abcdef";

/// `rlm run` against `server`, with a trace at `trace`, and `extra` flags.
fn rlm_run(server: &MockServer, dir: &Path, trace: &Path, extra: &[&str]) -> (i32, String, String) {
    let ctx = dir.join("notes.txt");
    std::fs::write(&ctx, "the word is PLOVER\n").unwrap();
    common::output(
        common::rlm(dir)
            .args(["run", "--max-retries", "0", "--query", "Find the word."])
            .args(common::loopback_models(server))
            .arg("--context")
            .arg(&ctx)
            .arg("--trace")
            .arg(trace)
            .args(extra)
            .env("OPENAI_API_KEY", FAKE_KEY),
    )
}

#[test]
fn rlm_run_verbose_prints_each_step_on_stderr_and_leaves_the_trace_as_it_was() {
    // Turn 1 asks a sub-model that answers with a terminal escape, and one
    // that fails quoting the key, as providers echo bad keys; turn 2
    // starts a child; turn 3 submits.
    let script: Script = Arc::new(|question, turn| {
        if question.contains("Question: Which word?") {
            return common::code(r#"submit("PLOVER");"#);
        }
        match turn {
            1 => common::code(r#"print(llm_query("how long?")); print(llm_query("echo-auth"));"#),
            2 => common::code(r#"print(rlm_query("Which word?", context));"#),
            _ => common::code(r#"submit("the word is PLOVER");"#),
        }
    });
    let server = MockServer::start(move |req| {
        if req.is_root_turn() {
            let turn = req.message_count().div_ceil(2);
            return Reply::openai_text(&script(&question_of(req), turn), 1000, 100);
        }
        match req.prompt().as_str() {
            "echo-auth" => Reply::error(401, &format!("Incorrect API key provided: {FAKE_KEY}")),
            _ => Reply::openai_text("red \x1b[31mtext", 200, 5),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (quiet_trace, verbose_trace) = (dir.path().join("quiet.jsonl"), dir.path().join("v.jsonl"));
    let (code, _, quiet_err) = rlm_run(&server, dir.path(), &quiet_trace, &["--quiet"]);
    assert_eq!(code, 0, "{quiet_err}");
    let (code, stdout, stderr) = rlm_run(&server, dir.path(), &verbose_trace, &["-v"]);

    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "the word is PLOVER\n");
    let lines: Vec<&str> = stderr.lines().collect();
    let find = |needle: &str| -> usize {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{stderr}"))
    };
    let order = [
        "[0] run start: gpt-5 (sub-calls: gpt-5-mini), 19 bytes of context in 1 document(s); query: \"Find the word.\"",
        "[0] turn 1: root request with 1 new message(s)",
        "[0] turn 1: root reply, 1000 in / 100 out tokens",
        "[0] turn 1 cell 1/1: print(llm_query(\"how long?\")); print(llm_query(\"echo-auth\"));",
        "[0] sub-call to gpt-5-mini from cell 1: \"how long?\"",
        "[0] sub-call to gpt-5-mini done, 200 in / 5 out tokens",
        "[0] sub-call to gpt-5-mini failed after",
        "[0] turn 1 cell 1/1 done in",
        "[0] turn 2: root request with 2 new message(s)",
        "  [0.1] child run of 0 on 19 bytes; query: \"Which word?\"",
        "  [0.1] turn 1: root request",
        "  [0.1] answer (submitted): PLOVER",
        "  [0.1] child run ended: submitted after 1 turn(s)",
        "[0] turn 3 cell 1/1 done in",
        "[0] answer (submitted): the word is PLOVER",
        "[0] run end: submitted after 3 turn(s)",
    ];
    let at: Vec<usize> = order.iter().map(|n| find(n)).collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "out of order ({at:?}):\n{stderr}"
    );
    // A child's lines are indented; the top run's are not.
    assert!(lines[find("[0.1] turn 1: root reply")].starts_with("  [0.1]"));
    // The sub-model's escape is shown escaped, and nothing raw reaches the terminal.
    assert!(stderr.contains(r#"red \x1b[31mtext"#), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    assert!(
        !stderr.contains(FAKE_KEY) && !stderr.contains("0123456789abcdef"),
        "{stderr}"
    );

    // The trace says the same with or without -v.
    let sorted = |path: &Path| {
        let mut v: Vec<String> = timeless(path).iter().map(Value::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&quiet_trace), sorted(&verbose_trace));
    // Top run: start, 3 turns of request and reply, 3 cells, 2 sub-calls,
    // final; the child: start, 1 turn, 1 cell, its end.
    assert_eq!(timeless(&verbose_trace).len(), 18);
}
