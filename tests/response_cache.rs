//! The response cache (`--cache DIR`) through the binary and the library,
//! against loopback servers that count what reaches them: an identical
//! batch re-run makes no network call; the modes; two processes on one
//! directory; a corrupted entry; a hit under a spent budget.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rlm::llm::{
    Budgets, CacheConfig, CacheMode, CallOptions, ChatRequest, Ledger, LlmClient, LlmConfig,
    ModelSpec, PriceTable,
};
use rlm::testing::{MockServer, Reply, Request};

mod common;

/// Root turns count lines and ask the sub-model once; sub-calls count words.
fn server() -> MockServer {
    MockServer::start(|req: &Request| {
        if req.is_root_turn() {
            Reply::openai_text(
                "```rhai\nlet n = context.line_count();\nlet w = llm_query(`word count of ${context.line(1)}`);\nsubmit(`${n} lines, ${w}`);\n```",
                100,
                20,
            )
        } else {
            let words = req.prompt().split_whitespace().count();
            Reply::openai_text(&format!("{words} words"), 10, 2)
        }
    })
}

fn write_tasks(dir: &Path, n: usize) -> PathBuf {
    let mut text = String::new();
    for i in 0..n {
        let lines = format!("line {i}\n").repeat(i % 3 + 1);
        text.push_str(&serde_json::json!({"id": format!("t{i}"), "query": "How many lines?", "context_text": lines}).to_string());
        text.push('\n');
    }
    let path = dir.join("tasks.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

fn batch_command(dir: &Path, server: &MockServer, out: &str, extra: &[&str]) -> Command {
    let mut c = common::rlm(dir);
    c.args(["batch", "tasks.jsonl", "--out", out, "--jobs", "3"])
        .args(["--max-retries", "0", "--quiet"])
        .args(common::loopback_models(server))
        .args(extra);
    c
}

fn batch(dir: &Path, server: &MockServer, out: &str, extra: &[&str]) -> (i32, String) {
    let (code, _, stderr) = common::output(&mut batch_command(dir, server, out, extra));
    (code, stderr)
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The result lines, in task order (they are written as tasks end).
fn rows(path: &Path) -> Vec<serde_json::Value> {
    let mut rows = common::jsonl(path);
    rows.sort_by_key(|r| r["id"].as_str().unwrap_or_default().to_string());
    rows
}

/// Cache hits and calls over every model of a result line's usage.
fn hits_and_calls(row: &serde_json::Value) -> (u64, u64) {
    let usage = row["usage"].as_object().unwrap();
    let sum = |k: &str| usage.values().map(|u| u[k].as_u64().unwrap_or(0)).sum();
    (sum("cache_hits"), sum("calls"))
}

#[test]
fn an_identical_batch_against_its_cache_makes_no_network_call() {
    let dir = tempfile::tempdir().unwrap();
    write_tasks(dir.path(), 6);
    let server = server();
    let (code, stderr) = batch(dir.path(), &server, "first.jsonl", &["--cache", "cache"]);
    assert_eq!(code, 0, "{stderr}");
    let sent = server.requests().len();
    assert_eq!(sent, 12, "a root turn and a sub-call per task");
    let entries = files(&dir.path().join("cache"));
    assert_eq!(entries.len(), 12, "{entries:?}");
    assert!(entries
        .iter()
        .all(|p| p.extension().is_some_and(|e| e == "json")));

    let (code, stderr) = batch(
        dir.path(),
        &server,
        "second.jsonl",
        &["--cache", "cache", "--trace-dir", "traces"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        server.requests().len(),
        sent,
        "the re-run reached the server"
    );
    assert!(
        stderr.contains("12 answered from the response cache"),
        "{stderr}"
    );
    let (first, second) = (
        rows(&dir.path().join("first.jsonl")),
        rows(&dir.path().join("second.jsonl")),
    );
    assert_eq!(second.len(), 6);
    for (a, b) in first.iter().zip(&second) {
        assert_eq!((&a["id"], &a["answer"]), (&b["id"], &b["answer"]));
        assert_eq!(b["status"], "submitted");
        assert_eq!(hits_and_calls(a), (0, 2));
        assert_eq!(hits_and_calls(b), (2, 0), "{b}");
        // Free: nothing was spent, and the cost is known to be nothing.
        assert_eq!(b["cost_usd"], 0.0, "{b}");
    }
    // The trace marks the sub-calls the cache answered.
    let trace = common::jsonl(&dir.path().join("traces/t0.jsonl"));
    let subs: Vec<_> = trace.iter().filter(|e| e["event"] == "sub_call").collect();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["cached"], true, "{:?}", subs[0]);
    assert_eq!(subs[0]["answer"], "5 words");
}

#[test]
fn read_mode_never_writes_and_write_mode_never_reads() {
    let dir = tempfile::tempdir().unwrap();
    write_tasks(dir.path(), 3);
    let server = server();
    // Read mode on an empty cache: every call is sent, nothing is stored
    // (the directory is not even created).
    let (code, stderr) = batch(
        dir.path(),
        &server,
        "read.jsonl",
        &["--cache", "cache", "--cache-mode", "read"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.requests().len(), 6);
    assert!(files(&dir.path().join("cache")).is_empty());

    // Write mode stores every answer...
    let (code, stderr) = batch(
        dir.path(),
        &server,
        "write1.jsonl",
        &["--cache", "cache", "--cache-mode", "write"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.requests().len(), 12);
    let stored = files(&dir.path().join("cache"));
    assert_eq!(stored.len(), 6);
    // ...and reads none, even with all of them there.
    let (code, stderr) = batch(
        dir.path(),
        &server,
        "write2.jsonl",
        &["--cache", "cache", "--cache-mode", "write"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.requests().len(), 18);
    assert!(!stderr.contains("response cache"), "{stderr}");

    // Read mode with them there: hits only, the files untouched.
    let before: Vec<_> = stored
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    let (code, stderr) = batch(
        dir.path(),
        &server,
        "read2.jsonl",
        &["--cache", "cache", "--cache-mode", "read"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.requests().len(), 18);
    let after: Vec<_> = stored
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(files(&dir.path().join("cache")), stored);

    // Off: the directory is ignored.
    let (code, stderr) = batch(
        dir.path(),
        &server,
        "off.jsonl",
        &["--cache", "cache", "--cache-mode", "off"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.requests().len(), 24);
}

#[test]
fn two_processes_share_one_cache_directory() {
    let dir = tempfile::tempdir().unwrap();
    write_tasks(dir.path(), 12);
    let server = server();
    let spawn = |out: &str| {
        batch_command(dir.path(), &server, out, &["--cache", "cache"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("a.jsonl"), spawn("b.jsonl"));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", common::text(&out.stderr));
    }
    // Each call was made once or twice (both may miss at once), never more.
    let sent = server.requests().len();
    assert!((24..=48).contains(&sent), "{sent}");
    let entries = files(&dir.path().join("cache"));
    assert_eq!(
        entries.len(),
        24,
        "one whole entry per call, no temporary file left"
    );
    for p in &entries {
        let entry: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(entry["text"].is_string());
    }
    for out in ["a.jsonl", "b.jsonl"] {
        assert!(rows(&dir.path().join(out))
            .iter()
            .all(|r| r["status"] == "submitted"));
    }
    // And together they left a cache that answers everything.
    let (code, stderr) = batch(dir.path(), &server, "c.jsonl", &["--cache", "cache"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.requests().len(), sent);
}

#[test]
fn a_corrupted_entry_is_a_miss_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    write_tasks(dir.path(), 2);
    let server = server();
    let (code, stderr) = batch(dir.path(), &server, "a.jsonl", &["--cache", "cache"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.requests().len(), 4);
    let entries = files(&dir.path().join("cache"));
    // Torn in half, emptied, garbage, and valid JSON of the wrong shape.
    let whole = std::fs::read(&entries[0]).unwrap();
    std::fs::write(&entries[0], &whole[..whole.len() / 2]).unwrap();
    std::fs::write(&entries[1], b"").unwrap();
    std::fs::write(&entries[2], b"\x00\xff not json").unwrap();
    std::fs::write(&entries[3], b"{\"rlm_response_cache\": 1}").unwrap();
    let (code, stderr) = batch(dir.path(), &server, "b.jsonl", &["--cache", "cache"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.requests().len(), 8, "every broken entry was a miss");
    assert_eq!(
        rows(&dir.path().join("a.jsonl"))
            .iter()
            .map(|r| r["answer"].clone())
            .collect::<Vec<_>>(),
        rows(&dir.path().join("b.jsonl"))
            .iter()
            .map(|r| r["answer"].clone())
            .collect::<Vec<_>>()
    );
    // Replaced by whole entries: the next run is served from them.
    assert_eq!(std::fs::read(&entries[0]).unwrap(), whole);
    let (code, stderr) = batch(dir.path(), &server, "c.jsonl", &["--cache", "cache"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.requests().len(), 8);
}

#[test]
fn run_and_eval_take_the_cache_from_flags_or_rlm_toml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ctx.txt"), "one two\nthree\n").unwrap();
    let server = server();
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    // A relative `cache` in a config file is relative to the file.
    std::fs::write(conf.join("rlm.toml"), "cache = \"answers\"\n").unwrap();
    let run = || {
        common::output(
            common::rlm(dir.path())
                .args(["run", "--context", "ctx.txt", "--query", "How many lines?"])
                .args(common::loopback_models(&server))
                .arg("--config")
                .arg(conf.join("rlm.toml"))
                .args(["--output", "json"]),
        )
    };
    let (code, first, stderr) = run();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.requests().len(), 2);
    assert_eq!(files(&conf.join("answers")).len(), 2);
    let (code, second, stderr) = run();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.requests().len(), 2);
    let (first, second): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&first).unwrap(),
        serde_json::from_str(&second).unwrap(),
    );
    assert_eq!(first["answer"], second["answer"]);
    assert_eq!(second["usage"]["gpt-5"]["cache_hits"], 1, "{second}");
    assert_eq!(second["usage"]["gpt-5-mini"]["cache_hits"], 1);
    assert_eq!(second["usage"]["gpt-5"]["calls"], 0);

    // Text mode says so in its summary line.
    let (code, _, stderr) = common::output(
        common::rlm(dir.path())
            .args(["run", "--context", "ctx.txt", "--query", "How many lines?"])
            .args(common::loopback_models(&server))
            .args(["--cache", "conf/answers"]),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("2 answered from the response cache"),
        "{stderr}"
    );
    assert_eq!(server.requests().len(), 2);

    // rlm eval takes the same flags.
    let eval = |cache: &str| {
        common::output(
            common::rlm(dir.path())
                .args([
                    "eval",
                    "niah",
                    "--n",
                    "2",
                    "--lengths",
                    "1k",
                    "--quiet",
                    "--json",
                ])
                .args(common::loopback_models(&server))
                .args(["--cache", cache]),
        )
    };
    let (code, _, stderr) = eval("eval-cache");
    assert_eq!(code, 0, "{stderr}");
    let sent = server.requests().len();
    let (code, _, stderr) = eval("eval-cache");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        server.requests().len(),
        sent,
        "the second eval reached the server"
    );
}

fn client(dir: &Path, server: &MockServer, budgets: Budgets, mode: CacheMode) -> LlmClient {
    LlmClient::new(
        LlmConfig {
            openai_base_url: server.openai_url(),
            anthropic_base_url: server.url(),
            cache: Some(CacheConfig {
                dir: dir.to_path_buf(),
                mode,
            }),
            ..LlmConfig::default()
        },
        Arc::new(Ledger::new(PriceTable::default(), budgets)),
    )
    .unwrap()
}

#[test]
fn a_hit_is_served_free_when_every_budget_is_spent_and_the_key_covers_every_option() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start(|req: &Request| {
        if req.path.ends_with("/messages") {
            Reply::anthropic_text(&format!("claude: {}", req.prompt()), 7, 3)
        } else {
            Reply::openai_text(&format!("gpt: {}", req.prompt()), 7, 3)
        }
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ask = |c: &LlmClient, model: &str, request: &ChatRequest| {
        runtime.block_on(c.complete(&ModelSpec::parse(model), request, &CallOptions::default()))
    };
    let hi = ChatRequest::prompt("hi");
    let tokens = Budgets {
        max_tokens: Some(1_000_000),
        ..Budgets::default()
    };
    let warm = client(dir.path(), &server, tokens.clone(), CacheMode::ReadWrite);
    for model in ["gpt-5-mini", "anthropic:claude-haiku-4-5"] {
        ask(&warm, model, &hi).unwrap();
    }
    assert_eq!(server.requests().len(), 2);
    // Under a token budget (which caps answers at 8192) the same calls hit.
    let again = client(dir.path(), &server, tokens, CacheMode::ReadWrite);
    for model in ["gpt-5-mini", "anthropic:claude-haiku-4-5"] {
        assert!(ask(&again, model, &hi).unwrap().text.ends_with(": hi"));
    }
    assert_eq!(server.requests().len(), 2);

    // With every budget spent before the first call, hits are still served.
    let spent = Budgets {
        max_calls: Some(0),
        max_tokens: Some(0),
        max_cost_usd: Some(0.0),
    };
    let broke = client(dir.path(), &server, spent, CacheMode::Read);
    let answer = ask(&broke, "anthropic:claude-haiku-4-5", &hi).unwrap();
    assert_eq!(answer.text, "claude: hi");
    assert_eq!(answer.input_tokens, 7, "the answer's recorded usage");
    let usage = &broke.ledger().by_model()["claude-haiku-4-5"];
    assert_eq!(
        (
            usage.cache_hits,
            usage.calls,
            usage.input_tokens,
            usage.cost_usd
        ),
        (1, 0, 0, 0.0)
    );
    assert_eq!(broke.ledger().totals().cache_hits, 1);
    assert!(
        broke.ledger().summary().contains("1 cache hits"),
        "{}",
        broke.ledger().summary()
    );
    assert_eq!(broke.ledger().refusals().count, 0);
    // A miss under that budget is refused as ever, and sent nowhere.
    let err = ask(&broke, "gpt-5-mini", &ChatRequest::prompt("new")).unwrap_err();
    assert_eq!(err.kind(), "budget");
    assert_eq!(server.requests().len(), 2);

    // Every option that changes the answer is in the key.
    let c = client(
        dir.path(),
        &server,
        Budgets::default(),
        CacheMode::ReadWrite,
    );
    ask(&c, "gpt-5-mini", &hi).unwrap();
    assert_eq!(
        server.requests().len(),
        3,
        "no budget: sent without max_tokens, a new key"
    );
    ask(&c, "gpt-5-mini", &hi).unwrap();
    assert_eq!(server.requests().len(), 3);
    for variant in [
        ChatRequest {
            temperature: Some(0.0),
            ..hi.clone()
        },
        ChatRequest {
            max_tokens: Some(5),
            ..hi.clone()
        },
        ChatRequest {
            system: Some("be brief".into()),
            ..hi.clone()
        },
        ChatRequest::prompt("hi!"),
    ] {
        let before = server.requests().len();
        ask(&c, "gpt-5-mini", &variant).unwrap();
        assert_eq!(server.requests().len(), before + 1, "{variant:?} hit");
    }
    ask(&c, "gpt-5", &hi).unwrap();
    assert_eq!(server.requests().len(), 8, "another model is another key");
}
