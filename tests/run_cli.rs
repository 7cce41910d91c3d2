//! `rlm run` through the binary: a loopback server plays the models, and
//! the tests check exit codes, `--output json`, the trace file and replay.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use rlm::testing::{MockServer, Reply};

mod common;
use common::{code, output, rlm};

/// A fake key: long and distinctive, so any leak of it (or of a fragment) shows.
const FAKE_KEY: &str = "sk-test-FAKE-0123456789abcdefXYZ";

/// A server playing root turns from `turns` (by turn number) and answering
/// sub-calls with `sub`. Authorization headers seen are collected.
fn server(
    turns: fn(usize) -> String,
    sub: fn(&str) -> Reply,
    auth: Arc<Mutex<Vec<String>>>,
) -> MockServer {
    MockServer::start(move |req| {
        if let Ok(mut a) = auth.lock() {
            a.push(req.header("authorization").unwrap_or("").to_string());
        }
        if req.is_root_turn() {
            Reply::openai_text(&turns(req.message_count().div_ceil(2)), 1000, 100)
        } else {
            sub(&req.prompt())
        }
    })
}

const LOG: &str = "INFO start\nERROR disk full on db-1\nINFO retry\nERROR timeout in api\n";

fn three_turns(turn: usize) -> String {
    match turn {
        1 => code(
            r#"let hits = context.grep("ERROR");
print(`${hits.len()} errors`);
let s = llm_query(`Summarize: ${hits[0].text}`);
print(s);"#,
        ),
        2 => code(r#"let denied = llm_query("echo-auth"); print(denied);"#),
        3 => code("submit(s);"),
        _ => panic!("no turn {turn}"),
    }
}

/// Sub-calls: a summary, except `echo-auth`, which fails with the
/// caller's key in the message, the way providers echo bad keys.
fn summarize(prompt: &str) -> Reply {
    if prompt == "echo-auth" {
        Reply::error(401, &format!("Incorrect API key provided: {FAKE_KEY}"))
    } else {
        Reply::openai_text(
            &format!("summary of [{}]", prompt.trim_start_matches("Summarize: ")),
            200,
            5,
        )
    }
}

#[test]
fn json_output_and_a_complete_trace_without_the_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, trace) = (dir.path().join("app.log"), dir.path().join("trace.jsonl"));
    std::fs::write(&ctx, LOG).unwrap();
    let auth = Arc::new(Mutex::new(Vec::new()));
    let server = server(three_turns, summarize, auth.clone());
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .args(["run", "--max-retries", "0"])
            .args(common::loopback_models(&server))
            .args(["--query", "What went wrong?", "--output", "json", "--quiet"])
            .arg("--context")
            .arg(&ctx)
            .arg("--trace")
            .arg(&trace)
            .env("OPENAI_API_KEY", FAKE_KEY)
            // Paired with the server, so the key is sent to it.
            .env("OPENAI_BASE_URL", server.openai_url()),
    );

    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(result["answer"], "summary of [ERROR disk full on db-1]");
    assert_eq!(result["status"], "submitted");
    assert_eq!(result["iterations"], 3);
    assert_eq!(result["usage"]["gpt-5"]["calls"], 3);
    assert_eq!(result["usage"]["gpt-5-mini"]["calls"], 1);
    assert_eq!(result["usage"]["gpt-5-mini"]["errors"], 1);
    assert!(
        result["cost_usd"].as_f64().is_some_and(|c| c > 0.0),
        "{result}"
    );
    assert!(
        result["wall_s"].as_f64().is_some_and(|w| w > 0.0),
        "{result}"
    );
    // The key was sent, so its absence from the trace means something.
    let auth = auth.lock().unwrap().clone();
    assert_eq!(auth.len(), 5);
    assert!(
        auth.iter().all(|a| *a == format!("Bearer {FAKE_KEY}")),
        "{auth:?}"
    );

    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(
        !text.contains(FAKE_KEY) && !text.contains("0123456789abcdef"),
        "the trace leaks the API key"
    );
    assert!(!stdout.contains("0123456789abcdef") && !stderr.contains("0123456789abcdef"));
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for e in &events {
        assert!(
            e["event"].is_string()
                && e["run"].is_string()
                && e["depth"].is_u64()
                && e["t"].is_number(),
            "{e}"
        );
    }
    let of = |name: &str| -> Vec<&Value> { events.iter().filter(|e| e["event"] == name).collect() };
    assert_eq!(of("run_start").len(), 1);
    assert_eq!(of("root_response").len(), 3);
    assert_eq!(of("cell").len(), 3);
    assert_eq!(of("final").len(), 1);
    assert_eq!(events.last().unwrap()["event"], "final");
    assert_eq!(events[0]["event"], "run_start");

    // Each root_request carries only the messages new since the last one.
    let requests = of("root_request");
    assert_eq!(requests.len(), 3);
    let first = requests[0]["messages"].as_array().unwrap();
    assert_eq!(first.len(), 1);
    assert!(first[0]["content"]
        .as_str()
        .unwrap()
        .starts_with("Question: What went wrong?"));
    for later in &requests[1..] {
        let messages = later["messages"].as_array().unwrap();
        assert_eq!(
            messages
                .iter()
                .map(|m| m["role"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["assistant", "user"],
            "{later}"
        );
        assert!(messages.iter().all(|m| m["content"] != first[0]["content"]));
    }
    assert!(requests[1]["messages"][1]["content"]
        .as_str()
        .unwrap()
        .contains("2 errors"));

    let subs = of("sub_call");
    assert_eq!(subs.len(), 2);
    let ok = subs[0];
    assert_eq!(ok["model"], "gpt-5-mini");
    assert_eq!(
        ok["prompt_bytes"],
        "Summarize: ERROR disk full on db-1".len()
    );
    assert_eq!(ok["prompt_preview"], "Summarize: ERROR disk full on db-1");
    assert_eq!(ok["answer"], "summary of [ERROR disk full on db-1]");
    assert_eq!(
        (&ok["input_tokens"], &ok["output_tokens"]),
        (&Value::from(200), &Value::from(5))
    );
    assert!(ok["latency_s"].as_f64().is_some_and(|l| l >= 0.0), "{ok}");
    assert_eq!(
        (&ok["depth"], &ok["cell"], &ok["run"]),
        (&Value::from(0), &Value::from(1), &Value::from("0"))
    );
    let denied = subs[1];
    assert!(denied["answer"].is_null());
    assert!(
        denied["error"]
            .as_str()
            .is_some_and(|e| e.contains("401") && e.contains("[redacted]")),
        "{denied}"
    );
    assert_eq!(denied["cell"], 2);
}

#[test]
fn a_run_that_hits_max_iterations_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("app.log");
    std::fs::write(&ctx, LOG).unwrap();
    let server = server(|_| code("print(context.len());"), summarize, Arc::default());
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .args([
                "run",
                "--model",
                "gpt-5",
                "--base-url",
                &server.openai_url(),
                "--max-iterations",
                "2",
                "--query",
                "Loop.",
            ])
            .arg("--context")
            .arg(&ctx),
    );
    assert_eq!(exit, 3, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.trim().is_empty(), "{stdout}");
    assert!(
        stderr
            .to_lowercase()
            .replace('_', "")
            .contains("maxiterations"),
        "{stderr}"
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_run_without_a_model_exits_2_and_says_how_to_name_one() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("app.log");
    std::fs::write(&ctx, LOG).unwrap();
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .args(["run", "--query", "Anything?"])
            .arg("--context")
            .arg(&ctx),
    );
    assert_eq!(exit, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains("no root model") && stderr.contains("--model"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

#[test]
fn a_trace_replays_through_the_binary_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, trace) = (dir.path().join("app.log"), dir.path().join("trace.jsonl"));
    std::fs::write(&ctx, LOG).unwrap();
    let server = server(three_turns, summarize, Arc::default());
    let (exit, recorded, stderr) = output(
        rlm(dir.path())
            .args(["run", "--max-retries", "0"])
            .args(common::loopback_models(&server))
            .args(["--query", "What went wrong?"])
            .arg("--context")
            .arg(&ctx)
            .arg("--trace")
            .arg(&trace),
    );
    assert_eq!(exit, 0, "{stderr}");
    assert_eq!(recorded.trim(), "summary of [ERROR disk full on db-1]");
    drop(server);

    let replay_model = format!("replay:{}", trace.display());
    let replay = |format: &str| {
        output(
            rlm(dir.path())
                .args([
                    "run",
                    "--model",
                    &replay_model,
                    "--query",
                    "What went wrong?",
                    "--output",
                    format,
                ])
                .arg("--context")
                .arg(&ctx),
        )
    };
    let (exit, replayed, stderr) = replay("text");
    assert_eq!(exit, 0, "stdout: {replayed}\nstderr: {stderr}");
    assert_eq!(replayed, recorded);
    let (exit, json, stderr) = replay("json");
    assert_eq!(exit, 0, "stdout: {json}\nstderr: {stderr}");
    let result: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(result["answer"], recorded.trim());
    assert_eq!(result["status"], "submitted");
    assert_eq!(result["iterations"], 3);
    assert_eq!(result["usage"]["gpt-5"]["calls"], 3);
    assert_eq!(result["usage"]["gpt-5-mini"]["calls"], 1);
}

/// A root model that checks a value and submits it in the same cell.
fn print_then_submit(_turn: usize) -> String {
    code(r#"print("check 42"); submit(42);"#)
}

#[test]
fn what_the_submitting_cell_printed_is_kept_in_the_json_result_and_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, trace) = (dir.path().join("app.log"), dir.path().join("trace.jsonl"));
    std::fs::write(&ctx, LOG).unwrap();
    let server = server(print_then_submit, summarize, Arc::default());
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .arg("run")
            .args(common::loopback_models(&server))
            .args(["--query", "Check.", "--output", "json", "--quiet"])
            .arg("--context")
            .arg(&ctx)
            .arg("--trace")
            .arg(&trace),
    );
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(result["answer"], 42);
    assert_eq!(result["final_output"], "check 42\n", "{result}");

    let events = common::jsonl(&trace);
    let cells: Vec<&Value> = events.iter().filter(|e| e["event"] == "cell").collect();
    assert_eq!(cells.len(), 1);
    assert_eq!(cells[0]["output"], "check 42\n", "{}", cells[0]);
    assert_eq!(cells[0]["submitted"], 42);
}

#[test]
fn text_mode_shows_the_submitting_cell_s_output_on_stderr_and_only_the_answer_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("app.log");
    std::fs::write(&ctx, LOG).unwrap();
    let server = server(print_then_submit, summarize, Arc::default());
    let run = |quiet: bool| {
        let mut c = rlm(dir.path());
        c.arg("run")
            .args(common::loopback_models(&server))
            .args(["--query", "Check."])
            .arg("--context")
            .arg(&ctx);
        if quiet {
            c.arg("--quiet");
        }
        output(&mut c)
    };
    let (exit, stdout, stderr) = run(false);
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout, "42\n");
    let printed = stderr
        .find("the submitting cell printed:\ncheck 42\n")
        .unwrap_or_else(|| panic!("{stderr}"));
    let status = stderr
        .find("rlm: submitted")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(printed < status, "{stderr}");

    let (exit, stdout, stderr) = run(true);
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout, "42\n");
    assert!(
        stderr.is_empty(),
        "--quiet prints only the answer: {stderr}"
    );
}

#[test]
fn a_run_that_submits_without_printing_has_no_final_output() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("app.log");
    std::fs::write(&ctx, LOG).unwrap();
    let server = server(|_| code("submit(7);"), summarize, Arc::default());
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .arg("run")
            .args(common::loopback_models(&server))
            .args(["--query", "Seven?", "--output", "json"])
            .arg("--context")
            .arg(&ctx),
    );
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(result["final_output"].is_null(), "{result}");
    assert!(!stderr.contains("printed"), "{stderr}");
}
