//! Host functions through the real loop: `Rlm` against a loopback server
//! whose scripted root model writes code calling the embedder's functions,
//! and through sessions built by `SessionBuilder`.
//!
//! The clock tests are about limits, not speed: a 1 s cell limit, and a
//! function that sleeps 2 s, either paused out (async) or counted (sync).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use rlm::driver::{Rlm, RunConfig, RunResult, RunStatus};
use rlm::dsl::{
    HostError, HostFunction, HostFunctionError, HostFunctions, Limits, SessionBuilder, ValueType,
};
use rlm::llm::{LlmConfig, ModelSpec, RetryPolicy};
use rlm::testing::{MockServer, Reply, Request};
use rlm::Context;

/// What a scripted root model writes on turn `turn` (1-based) of the run
/// whose question is the first argument.
type Script = Arc<dyn Fn(&str, usize) -> String + Send + Sync>;

fn code(body: &str) -> String {
    format!("Let me run this.\n```rhai\n{body}\n```")
}

/// The question a root request is about, from its first user message.
fn question_of(req: &Request) -> String {
    let first = req.first_user_message();
    first
        .strip_prefix("Question: ")
        .and_then(|q| q.split("\n\n").next())
        .unwrap_or("")
        .to_string()
}

/// A server playing `script` for root turns and answering sub-calls "sub".
fn server(script: Script) -> MockServer {
    MockServer::start(move |req| {
        if req.is_root_turn() {
            let turn = req.message_count().div_ceil(2);
            Reply::openai_text(&script(&question_of(req), turn), 100, 10)
        } else {
            Reply::openai_text("sub", 10, 1)
        }
    })
}

fn rlm(server: &MockServer, functions: HostFunctions, cell_timeout: Duration) -> Rlm {
    Rlm::builder()
        .llm_config(LlmConfig {
            openai_base_url: server.openai_url(),
            retry: RetryPolicy {
                max_retries: 1,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
            },
            ..LlmConfig::default()
        })
        .config(RunConfig {
            model: ModelSpec::parse("gpt-5"),
            sub_model: Some(ModelSpec::parse("gpt-5-mini")),
            max_iterations: 6,
            limits: Limits {
                cell_timeout,
                ..Limits::default()
            },
            ..RunConfig::default()
        })
        .functions(functions)
        .build()
        .expect("build the driver")
}

/// The customer table an embedder's database would hold.
fn customers() -> Arc<HashMap<i64, (&'static str, &'static str)>> {
    Arc::new(HashMap::from([
        (42, ("Ada Lovelace", "pro")),
        (7, ("Grace Hopper", "free")),
    ]))
}

fn lookup_customer() -> HostFunction {
    let table = customers();
    HostFunction::sync("lookup_customer", move |args| {
        let id = args[0].as_i64().unwrap_or_default();
        match table.get(&id) {
            Some((name, plan)) => Ok(json!({"name": name, "plan": plan})),
            None => Err(HostError::new(format!("no customer with id {id}"))),
        }
    })
    .param("id", ValueType::Int)
    .returns(ValueType::Map)
    .doc("The customer with this id, as #{name, plan}; fails for an unknown id.")
}

/// An async function that waits like a network call would.
fn fetch_balance(wait: Duration) -> HostFunction {
    HostFunction::asynchronous("fetch_balance", move |args| async move {
        tokio::time::sleep(wait).await;
        let name = args[0].as_str().unwrap_or_default().to_string();
        Ok(json!(name.len() * 100))
    })
    .param("name", ValueType::String)
    .returns(ValueType::Int)
    .doc("The account balance of a customer, in cents, from the billing service.")
}

fn functions(list: Vec<HostFunction>) -> HostFunctions {
    let mut set = HostFunctions::new();
    for f in list {
        set.add(f).expect("a valid host function");
    }
    set
}

fn root_requests(server: &MockServer) -> Vec<Request> {
    server
        .requests()
        .into_iter()
        .filter(Request::is_root_turn)
        .collect()
}

fn assert_submitted(result: &RunResult) {
    assert_eq!(
        result.status,
        RunStatus::Submitted,
        "error: {:?}",
        result.error
    );
}

#[test]
fn a_root_model_calls_sync_and_async_host_functions_and_their_docs_are_in_its_prompt() {
    let server = server(Arc::new(|_, _| {
        code(
            r#"let c = lookup_customer(42);
let cents = fetch_balance(c.name);
submit(`${c.name} (${c.plan}): ${cents}`);"#,
        )
    }));
    let fns = functions(vec![
        lookup_customer(),
        fetch_balance(Duration::from_millis(20)),
    ]);
    let ctx = Context::from_string("tickets", "ticket 1: customer 42 asks about billing\n");
    let result = rlm(&server, fns, Duration::from_secs(30)).run("Who is customer 42?", &ctx);
    assert_submitted(&result);
    assert_eq!(
        result.answer_text.as_deref(),
        Some("Ada Lovelace (pro): 1200")
    );

    let system = root_requests(&server)[0].system().expect("a system prompt");
    assert!(system.contains("**Host functions**"), "{system}");
    assert!(
        system.contains(
            "- `lookup_customer(id: int) -> map`: The customer with this id, as #{name, plan}; fails for an unknown id."
        ),
        "{system}"
    );
    assert!(
        system.contains("- `fetch_balance(name: string) -> int` (waiting does not count against a cell's limit): The account balance"),
        "{system}"
    );
}

#[test]
fn without_host_functions_the_prompt_has_no_host_section() {
    let server = server(Arc::new(|_, _| code("submit(1);")));
    let ctx = Context::from_string("doc", "x\n");
    let result = rlm(&server, HostFunctions::new(), Duration::from_secs(30)).run("q", &ctx);
    assert_submitted(&result);
    let system = root_requests(&server)[0].system().expect("a system prompt");
    assert!(!system.contains("Host functions"), "{system}");
}

#[test]
fn child_runs_have_the_host_functions_and_list_them_too() {
    let server = server(Arc::new(|question, _| {
        if question == "Which plan?" {
            code("submit(lookup_customer(7).plan);")
        } else {
            code(r#"submit(rlm_query("Which plan?", context));"#)
        }
    }));
    let ctx = Context::from_string("doc", "customer 7\n");
    let result = rlm(
        &server,
        functions(vec![lookup_customer()]),
        Duration::from_secs(30),
    )
    .run("Top question", &ctx);
    assert_submitted(&result);
    assert_eq!(result.answer_text.as_deref(), Some("free"));
    let child = root_requests(&server)
        .into_iter()
        .find(|r| question_of(r) == "Which plan?")
        .expect("the child run asked its root model");
    assert!(child
        .system()
        .unwrap_or_default()
        .contains("`lookup_customer(id: int) -> map`"));
}

#[test]
fn an_async_host_function_pauses_the_cell_clock() {
    let server = server(Arc::new(|_, _| {
        code(r#"let cents = fetch_balance("Ada"); submit(cents);"#)
    }));
    let ctx = Context::from_string("doc", "x\n");
    let fns = functions(vec![fetch_balance(Duration::from_secs(2))]);
    let result = rlm(&server, fns, Duration::from_secs(1)).run("q", &ctx);
    assert_submitted(&result);
    assert_eq!(result.answer, Some(json!(300)));
}

#[test]
fn a_sync_host_function_counts_against_the_cell_clock() {
    let slow = HostFunction::sync("slow_lookup", |_| {
        std::thread::sleep(Duration::from_secs(2));
        Ok(json!("late"))
    })
    .returns(ValueType::String)
    .doc("Takes two seconds.");
    let server = server(Arc::new(|_, turn| match turn {
        1 => code("let x = slow_lookup(); submit(x);"),
        _ => code(r#"submit("recovered");"#),
    }));
    let ctx = Context::from_string("doc", "x\n");
    let result = rlm(&server, functions(vec![slow]), Duration::from_secs(1)).run("q", &ctx);
    assert_submitted(&result);
    assert_eq!(result.answer_text.as_deref(), Some("recovered"));
    let second = root_requests(&server)
        .into_iter()
        .find(|r| r.message_count() == 3)
        .expect("a second turn");
    let seen = second.prompt();
    assert!(seen.contains("time limit of 1s"), "{seen}");
    assert!(seen.contains("`slow_lookup` took 2."), "{seen}");
}

#[test]
fn an_interrupt_stops_a_cell_waiting_in_an_async_host_function() {
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let entered_tx = Mutex::new(entered_tx);
    let finished = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let (f, d) = (finished.clone(), dropped.clone());
    let wait_forever = HostFunction::asynchronous("wait_for_approval", move |_| {
        if let Ok(tx) = entered_tx.lock() {
            let _ = tx.send(());
        }
        let (finished, dropped) = (f.clone(), d.clone());
        async move {
            /// Notes that the future was dropped, finished or not.
            struct OnDrop(Arc<AtomicBool>);
            impl Drop for OnDrop {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::SeqCst);
                }
            }
            let _guard = OnDrop(dropped);
            tokio::time::sleep(Duration::from_secs(120)).await;
            finished.store(true, Ordering::SeqCst);
            Ok(Value::Null)
        }
    })
    .doc("Waits for a human to approve.");
    let server = server(Arc::new(|_, _| {
        code("wait_for_approval(); submit(\"approved\");")
    }));
    let rlm = rlm(
        &server,
        functions(vec![wait_forever]),
        Duration::from_secs(30),
    );
    let stop = rlm.interrupter();
    let interrupter = std::thread::spawn(move || {
        if entered_rx.recv_timeout(Duration::from_secs(60)).is_ok() {
            stop.store(true, Ordering::SeqCst);
        }
    });
    let ctx = Context::from_string("doc", "x\n");
    let result = rlm.run("q", &ctx);
    interrupter.join().expect("the interrupter thread");
    assert_eq!(result.status, RunStatus::Interrupted, "{:?}", result.error);
    assert!(!finished.load(Ordering::SeqCst), "the wait ran to its end");
    // The task is aborted as the cell stops; give the runtime a moment to drop it.
    for _ in 0..100 {
        if dropped.load(Ordering::SeqCst) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        dropped.load(Ordering::SeqCst),
        "the waiting future was never dropped"
    );
}

#[test]
fn failing_and_panicking_host_functions_give_the_model_readable_errors_and_the_run_continues() {
    let explode = HostFunction::sync("explode", |_| -> Result<Value, HostError> {
        panic!("boom")
    })
    .doc("Always panics.");
    let explode_later = HostFunction::asynchronous("explode_later", |_| async {
        if true {
            panic!("async boom");
        }
        Ok(Value::Null)
    })
    .doc("Panics on the runtime.");
    let wrong_type = HostFunction::sync("count_orders", |_| Ok(json!("many")))
        .returns(ValueType::Int)
        .doc("Returns the wrong type.");
    let cells = [
        "lookup_customer(1);",
        "explode();",
        "explode_later();",
        "lookup_customer(1, 2);",
        r#"lookup_customer("42");"#,
        "count_orders();",
        r#"let name = "nobody"; try { name = lookup_customer(1).name; } catch (e) { } submit(name + " " + lookup_customer(42).name);"#,
    ];
    let server = server(Arc::new(move |_, turn| code(cells[(turn - 1).min(6)])));
    let ctx = Context::from_string("doc", "x\n");
    let fns = functions(vec![lookup_customer(), explode, explode_later, wrong_type]);
    let rlm = Rlm::builder()
        .llm_config(LlmConfig {
            openai_base_url: server.openai_url(),
            ..LlmConfig::default()
        })
        .config(RunConfig {
            model: ModelSpec::parse("gpt-5"),
            sub_model: Some(ModelSpec::parse("gpt-5-mini")),
            max_iterations: 8,
            ..RunConfig::default()
        })
        .functions(fns)
        .build()
        .expect("build the driver");
    let result = rlm.run("q", &ctx);
    assert_submitted(&result);
    assert_eq!(result.answer_text.as_deref(), Some("nobody Ada Lovelace"));
    let seen: Vec<String> = root_requests(&server)
        .iter()
        .skip(1)
        .map(Request::prompt)
        .collect();
    let expected = [
        "lookup_customer(id: int) failed: no customer with id 1",
        "explode() failed: the host function panicked (boom); the session is still usable",
        "explode_later() failed: the host function panicked (async boom)",
        "`lookup_customer` takes 1 argument, but was called with 2: call it as `lookup_customer(id: int) -> map`",
        "`lookup_customer`: argument 1 (`id`) must be an int, not a string",
        "count_orders() failed: it returned a string, but its signature says int",
    ];
    for (i, want) in expected.iter().enumerate() {
        assert!(seen[i].contains(want), "turn {}: {}", i + 2, seen[i]);
        assert!(seen[i].contains("at line 1"), "turn {}: {}", i + 2, seen[i]);
    }
}

#[test]
fn registering_a_name_that_is_taken_is_refused_with_a_typed_error() {
    let noop = |name: &str| HostFunction::sync(name, |_| Ok(Value::Null));
    assert_eq!(
        Rlm::builder().function(noop("grep")).err(),
        Some(HostFunctionError::ShadowsBuiltin("grep".into()))
    );
    assert_eq!(
        Rlm::builder().function(noop("while")).err(),
        Some(HostFunctionError::Keyword("while".into()))
    );
    assert_eq!(
        SessionBuilder::new().function(noop("rlm_batch")).err(),
        Some(HostFunctionError::ShadowsBuiltin("rlm_batch".into()))
    );
    let twice = HostFunctions::new()
        .with(noop("audit"))
        .and_then(|f| f.with(noop("audit")));
    assert_eq!(
        twice.err(),
        Some(HostFunctionError::Duplicate("audit".into()))
    );
}

#[test]
fn a_session_without_sub_models_runs_async_host_functions_on_its_own_runtime() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let echo = HostFunction::asynchronous("echo_later", move |args| {
        seen.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(json!({"got": args}))
        }
    })
    .param("text", ValueType::String)
    .param("n", ValueType::Int)
    .param("flags", ValueType::Array);
    let ctx = Context::from_string("doc", "alpha\nbeta\n");
    let mut session = SessionBuilder::new()
        .function(echo)
        .expect("a valid host function")
        .build(&ctx);
    // A Text view arrives as its string.
    let out = session.run_cell("print(to_json(echo_later(context.line(2), 3, [true])));");
    assert_eq!(out.error, None);
    assert_eq!(out.output, "{\"got\":[\"beta\",3,[true]]}\n");
    // And as a method on its first argument.
    let out = session.run_cell("print(context.line(1).echo_later(1, []).got[0]);");
    assert_eq!(out.error, None);
    assert_eq!(out.output, "alpha\n");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_host_result_larger_than_the_session_allows_is_refused_before_it_becomes_a_value() {
    let big = HostFunction::sync("dump_table", |_| Ok(json!("x".repeat(2 << 20))))
        .returns(ValueType::String)
        .doc("Returns 2 MiB.");
    let ctx = Context::from_string("doc", "x\n");
    let mut session = SessionBuilder::new()
        .limits(Limits {
            max_string_bytes: 1 << 20,
            ..Limits::default()
        })
        .function(big)
        .expect("a valid host function")
        .build(&ctx);
    let out = session.run_cell("let t = dump_table(); print(t.len());");
    let error = out.error.expect("refused");
    assert!(
        error.contains("the result of `dump_table` would copy 2097152 bytes of text, more than the string limit of 1048576 bytes"),
        "{error}"
    );
    // The session is still usable.
    let out = session.run_cell("print(1 + 1);");
    assert_eq!(out.output, "2\n");
}
