//! Setup errors stop a command once, up front, with exit 2: a missing
//! key, an unknown provider, a context path every task names and that
//! cannot be read, and a cost budget over a model with no price. Nothing
//! is sent (a loopback server that would answer gets no request), no
//! results file is created, and no key is ever printed.

use std::path::{Path, PathBuf};

use rlm::testing::{MockServer, Reply};

mod common;
use common::{code, output, rlm};

/// A fake key, set where a key is set, and never to appear in any output.
const KEY: &str = "sk-test-SECRET123";

/// Not in the price table, as local models are not.
const LOCAL: &str = "my-local-model";

/// Answers every turn by submitting "ok".
fn submitting_server() -> MockServer {
    MockServer::start(|_| Reply::openai_text(&code(r#"submit("ok");"#), 10, 5))
}

/// `n` tasks, each line made by `line(i)`, in `dir/tasks.jsonl`.
fn tasks(dir: &Path, n: usize, line: impl Fn(usize) -> serde_json::Value) -> PathBuf {
    let text: String = (0..n).map(|i| format!("{}\n", line(i))).collect();
    let path = dir.join("tasks.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

/// `n` tasks over inline text, with no overrides.
fn plain_tasks(dir: &Path, n: usize) -> PathBuf {
    tasks(
        dir,
        n,
        |i| serde_json::json!({"id": format!("t{i}"), "query": "Ok?", "context_text": "alpha"}),
    )
}

/// `rlm batch TASKS --out DIR/out.jsonl --quiet` plus `args`.
fn batch(dir: &Path, tasks: &Path, args: &[&str]) -> (i32, String, String) {
    output(
        rlm(dir)
            .arg("batch")
            .arg(tasks)
            .args(["--out", "out.jsonl", "--quiet", "--max-retries", "0"])
            .args(args),
    )
}

/// `rlm run` over a small context, plus `args`.
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    std::fs::write(dir.join("notes.txt"), "alpha\nbeta\n").unwrap();
    output(
        rlm(dir)
            .args(["run", "--context", "notes.txt", "--query", "Ok?"])
            .args(["--max-retries", "0"])
            .args(args),
    )
}

/// The command stopped up front: exit 2 and one error, no batch summary
/// or run summary, nothing on standard output, and no key anywhere.
fn stopped_up_front(what: &str, (exit, stdout, stderr): &(i32, String, String)) {
    assert_eq!(exit, &2, "{what}: stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stderr.matches("rlm: error:").count(), 1, "{what}: {stderr}");
    assert!(stderr.starts_with("rlm: error:"), "{what}: {stderr}");
    assert!(!stderr.contains("rlm batch:"), "{what}: {stderr}");
    assert!(!stderr.contains(" turns in "), "{what}: {stderr}");
    assert!(stdout.is_empty(), "{what}: {stdout}");
    assert!(!stdout.contains("SECRET") && !stderr.contains("SECRET"));
}

#[test]
fn a_batch_of_40_tasks_without_an_openai_key_stops_with_one_message_and_no_results_file() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = plain_tasks(dir.path(), 40);
    // The root model would go to the public endpoint; the sub-model to a
    // loopback server, which must not be called either.
    let server = submitting_server();
    let url = server.url();
    let result = batch(
        dir.path(),
        &tasks,
        &[
            "--model",
            "gpt-5",
            "--sub-model",
            "anthropic:claude-haiku-4-5",
            "--anthropic-base-url",
            &url,
        ],
    );
    stopped_up_front("batch without OPENAI_API_KEY", &result);
    let stderr = &result.2;
    assert!(stderr.contains("OPENAI_API_KEY"), "{stderr}");
    assert!(stderr.contains("--base-url"), "{stderr}");
    assert!(!dir.path().join("out.jsonl").exists());
    assert!(server.requests().is_empty());
}

#[test]
fn a_results_file_that_exists_is_left_untouched_by_a_setup_error() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = plain_tasks(dir.path(), 3);
    let before = "{\"id\":\"t0\",\"status\":\"submitted\",\"answer\":\"ok\"}\n";
    std::fs::write(dir.path().join("out.jsonl"), before).unwrap();
    let result = batch(dir.path(), &tasks, &["--model", "gpt-5"]);
    stopped_up_front("batch resumed without a key", &result);
    let after = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert_eq!(after, before);
}

#[test]
fn a_batch_without_an_anthropic_key_names_anthropic_base_url_and_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = plain_tasks(dir.path(), 40);
    let server = submitting_server();
    let result = output(
        rlm(dir.path())
            .arg("batch")
            .arg(&tasks)
            .args(["--out", "out.jsonl", "--quiet"])
            .args(["--model", "anthropic:claude-sonnet-4-5"])
            .args(["--base-url", &server.openai_url()])
            .env("OPENAI_API_KEY", KEY),
    );
    stopped_up_front("batch without ANTHROPIC_API_KEY", &result);
    let stderr = &result.2;
    assert!(stderr.contains("ANTHROPIC_API_KEY"), "{stderr}");
    assert!(stderr.contains("--anthropic-base-url"), "{stderr}");
    assert!(!stderr.contains("point --base-url"), "{stderr}");
    assert!(!dir.path().join("out.jsonl").exists());
    assert!(server.requests().is_empty());
}

#[test]
fn a_misspelt_provider_in_one_task_line_stops_the_batch_naming_the_task_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = tasks(dir.path(), 10, |i| {
        let mut t =
            serde_json::json!({"id": format!("t{i}"), "query": "Ok?", "context_text": "alpha"});
        if i == 7 {
            t["model"] = "antropic:claude-x".into();
        }
        t
    });
    let server = submitting_server();
    let result = batch(
        dir.path(),
        &tasks,
        &["--model", "gpt-5", "--base-url", &server.openai_url()],
    );
    stopped_up_front("batch with antropic:", &result);
    let stderr = &result.2;
    assert!(stderr.contains("antropic:claude-x"), "{stderr}");
    assert!(stderr.contains("\"t7\""), "{stderr}");
    assert!(stderr.contains("did you mean `anthropic:`"), "{stderr}");
    assert!(!dir.path().join("out.jsonl").exists());
    assert!(server.requests().is_empty());
}

#[test]
fn names_with_colons_still_go_verbatim_to_a_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = tasks(
        dir.path(),
        2,
        |i| serde_json::json!({"id": format!("t{i}"), "query": "Ok?", "context_text": "alpha", "model": "qwen2.5-coder:32b"}),
    );
    let server = submitting_server();
    let (exit, stdout, stderr) = batch(dir.path(), &tasks, &["--base-url", &server.openai_url()]);
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.model() == "qwen2.5-coder:32b"));
}

#[test]
fn a_context_path_every_task_names_that_does_not_exist_stops_the_batch_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("here.txt"), "alpha\n").unwrap();
    let tasks = tasks(
        dir.path(),
        40,
        |i| serde_json::json!({"id": format!("t{i}"), "query": "Ok?", "context": ["here.txt", "corpus/missing.txt"]}),
    );
    let server = submitting_server();
    let result = batch(
        dir.path(),
        &tasks,
        &["--model", "gpt-5", "--base-url", &server.openai_url()],
    );
    stopped_up_front("batch over a missing corpus", &result);
    let stderr = &result.2;
    assert!(stderr.contains("corpus/missing.txt"), "{stderr}");
    assert!(!stderr.contains("here.txt"), "{stderr}");
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
    assert!(!dir.path().join("out.jsonl").exists());
    assert!(server.requests().is_empty());
}

#[test]
fn a_missing_path_only_some_tasks_name_still_fails_only_those_tasks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("here.txt"), "alpha\n").unwrap();
    let tasks = tasks(dir.path(), 4, |i| {
        let context = if i % 2 == 0 {
            serde_json::json!(["here.txt", "missing.txt"])
        } else {
            serde_json::json!("here.txt")
        };
        serde_json::json!({"id": format!("t{i}"), "query": "Ok?", "context": context})
    });
    let server = submitting_server();
    let (exit, stdout, stderr) = batch(
        dir.path(),
        &tasks,
        &["--model", "gpt-5", "--base-url", &server.openai_url()],
    );
    assert_eq!(exit, 3, "stdout: {stdout}\nstderr: {stderr}");
    let results = common::jsonl(&dir.path().join("out.jsonl"));
    assert_eq!(results.len(), 4);
    for r in &results {
        let even = r["id"] == "t0" || r["id"] == "t2";
        let expected = if even { "error" } else { "submitted" };
        assert_eq!(r["status"], expected, "{r}");
        if even {
            assert!(r["error"].as_str().unwrap().contains("missing.txt"), "{r}");
        }
    }
}

#[test]
fn rlm_run_without_a_key_exits_2_with_the_reason_and_no_run_summary() {
    let dir = tempfile::tempdir().unwrap();
    let result = run(dir.path(), &["--model", "gpt-5"]);
    stopped_up_front("run without OPENAI_API_KEY", &result);
    assert!(result.2.contains("OPENAI_API_KEY"), "{}", result.2);
    assert!(!result.2.contains("failed"), "{}", result.2);

    let server = submitting_server();
    let result = output(
        rlm(dir.path())
            .args(["run", "--context", "notes.txt", "--query", "Ok?"])
            .args([
                "--model",
                "gpt-5",
                "--sub-model",
                "anthropic:claude-haiku-4-5",
            ])
            .args(["--base-url", &server.openai_url()])
            .env("OPENAI_API_KEY", KEY),
    );
    stopped_up_front("run without ANTHROPIC_API_KEY for its sub-model", &result);
    assert!(result.2.contains("--anthropic-base-url"), "{}", result.2);
    assert!(server.requests().is_empty());
}

/// The rlm.toml snippet that prices [`LOCAL`], as the message shows it.
fn snippet_shown(stderr: &str) {
    for part in [
        "[prices.\"my-local-model\"]",
        "input_per_million",
        "output_per_million",
        "rlm.toml",
    ] {
        assert!(stderr.contains(part), "no {part} in: {stderr}");
    }
}

#[test]
fn max_cost_with_an_unpriced_model_refuses_to_start_run_and_batch_naming_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let server = submitting_server();
    let url = server.openai_url();
    let local = ["--model", LOCAL, "--base-url", &url];

    let result = run(dir.path(), &[&local[..], &["--max-cost", "0.01"]].concat());
    stopped_up_front("run --max-cost over an unpriced model", &result);
    snippet_shown(&result.2);
    assert!(result.2.contains("--max-cost"), "{}", result.2);

    let forty = plain_tasks(dir.path(), 40);
    let result = batch(
        dir.path(),
        &forty,
        &[&local[..], &["--max-cost", "0.01"]].concat(),
    );
    stopped_up_front("batch --max-cost over an unpriced model", &result);
    snippet_shown(&result.2);

    std::fs::write(
        dir.path().join("budget.toml"),
        "[budgets]\nmax_cost_usd = 1.0\n",
    )
    .unwrap();
    let result = batch(
        dir.path(),
        &forty,
        &[&local[..], &["--config", "budget.toml"]].concat(),
    );
    stopped_up_front("batch with [budgets] max_cost_usd", &result);
    snippet_shown(&result.2);

    let priced_tasks = tasks(dir.path(), 3, |i| {
        let mut t =
            serde_json::json!({"id": format!("t{i}"), "query": "Ok?", "context_text": "alpha"});
        if i == 1 {
            t["max_cost_usd"] = 0.5.into();
        }
        t
    });
    let result = batch(dir.path(), &priced_tasks, &local);
    stopped_up_front("a task's max_cost_usd over an unpriced model", &result);
    snippet_shown(&result.2);
    assert!(result.2.contains("task \"t1\""), "{}", result.2);

    assert!(!dir.path().join("out.jsonl").exists());
    assert!(server.requests().is_empty());
}

#[test]
fn max_cost_with_a_price_given_in_rlm_toml_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = submitting_server();
    let url = server.openai_url();
    std::fs::write(
        dir.path().join("prices.toml"),
        "[prices.\"my-local-model\"]\ninput_per_million = 0.0\noutput_per_million = 0.0\n",
    )
    .unwrap();
    let flags = [
        "--model",
        LOCAL,
        "--base-url",
        &url,
        "--max-cost",
        "0.01",
        "--config",
        "prices.toml",
    ];
    let (exit, stdout, stderr) = run(dir.path(), &flags);
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout, "ok\n");

    let tasks = plain_tasks(dir.path(), 2);
    let (exit, stdout, stderr) = batch(dir.path(), &tasks, &flags);
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(common::jsonl(&dir.path().join("out.jsonl")).len(), 2);
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn rlm_eval_gets_the_same_checks() {
    let dir = tempfile::tempdir().unwrap();
    let eval = |args: &[&str]| {
        output(
            rlm(dir.path())
                .args(["eval", "niah", "--n", "1", "--lengths", "1k", "--quiet"])
                .args(args)
                .env("ANTHROPIC_API_KEY", KEY),
        )
    };
    let result = eval(&["--model", "gpt-5"]);
    stopped_up_front("eval without OPENAI_API_KEY", &result);
    assert!(result.2.contains("OPENAI_API_KEY"), "{}", result.2);

    let server = submitting_server();
    let url = server.openai_url();
    let result = eval(&["--model", LOCAL, "--base-url", &url, "--max-cost", "1"]);
    stopped_up_front("eval --max-cost over an unpriced model", &result);
    snippet_shown(&result.2);
    assert!(server.requests().is_empty());
}
