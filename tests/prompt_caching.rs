//! Prompt caching through the binary, against loopback servers that
//! report cache tokens the way each provider does
//! ([`rlm::testing::PromptCache`]): the breakpoints Anthropic is sent, no
//! `cache_control` for an OpenAI-compatible server, the cached tokens
//! priced at the cached price in the run's cost, and a cost budget that
//! counts them so.
//!
//! The 20-turn measurement is also `cargo run --example prompt_cache_cost`,
//! which prints the figures.

use serde_json::Value;

use rlm::testing::{
    prompt_cache_server, CacheUsage, CachingProvider, MockServer, Reply, Request,
    SCRIPTED_OUTPUT_TOKENS,
};

mod common;
use common::{code, output, rlm};

const TURNS: usize = 20;

/// List prices per million tokens (input, cache read, cache write,
/// output) of the models the tests use, as the providers publish them.
fn price(provider: CachingProvider) -> (f64, f64, f64, f64) {
    match provider {
        CachingProvider::Anthropic => (3.0, 0.30, 3.75, 15.0),
        CachingProvider::OpenAi => (1.25, 0.125, 1.25, 10.0),
    }
}

/// The model flags that put the root on `server`, speaking `provider`'s protocol.
fn model_flags(provider: CachingProvider, server: &MockServer) -> Vec<String> {
    match provider {
        CachingProvider::Anthropic => vec![
            "--model".into(),
            "anthropic:claude-sonnet-4-5".into(),
            "--anthropic-base-url".into(),
            server.url(),
        ],
        CachingProvider::OpenAi => vec![
            "--model".into(),
            "gpt-5".into(),
            "--base-url".into(),
            server.openai_url(),
        ],
    }
}

/// Runs `rlm run --output json` with `flags`; returns the exit code and the result.
fn run(dir: &std::path::Path, flags: &[String]) -> (i32, Value) {
    let ctx = dir.join("notes.txt");
    std::fs::write(&ctx, "alpha\nbeta\ngamma\n").unwrap();
    let (exit, stdout, stderr) = output(
        rlm(dir)
            .arg("run")
            .args(flags)
            .args(["--max-iterations", "25", "--root-max-tokens", "500"])
            .args(["--query", "Walk through the notes.", "--output", "json"])
            .arg("--context")
            .arg(&ctx),
    );
    let result: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout}\nstderr {stderr}"));
    (exit, result)
}

/// What `reported` costs at `provider`'s list prices, each kind of token at its price.
fn cost(provider: CachingProvider, reported: &[CacheUsage]) -> f64 {
    let (input, read, write, out) = price(provider);
    reported
        .iter()
        .map(|u| {
            (u.uncached as f64 * input
                + u.read as f64 * read
                + u.written as f64 * write
                + SCRIPTED_OUTPUT_TOKENS as f64 * out)
                / 1e6
        })
        .sum()
}

/// One 20-turn run against `provider`'s loopback server: its result, what
/// the server reported, and the requests it received.
fn twenty_turns(
    provider: CachingProvider,
    caching: bool,
) -> (Value, Vec<CacheUsage>, Vec<Request>) {
    let dir = tempfile::tempdir().unwrap();
    let (server, reported) = prompt_cache_server(provider, caching, TURNS);
    let (exit, result) = run(dir.path(), &model_flags(provider, &server));
    assert_eq!(exit, 0, "{result}");
    assert_eq!(
        result["answer"],
        format!("done after {TURNS} turns"),
        "{result}"
    );
    assert_eq!(result["iterations"], TURNS, "{result}");
    let reported = reported.lock().unwrap().clone();
    assert_eq!(reported.len(), TURNS);
    (result, reported, server.requests())
}

fn assert_close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
        "{what}: {a} vs {b}"
    );
}

/// The run's cost and token totals are exactly what the server reported,
/// priced kind by kind.
fn assert_ledger_matches(provider: CachingProvider, result: &Value, reported: &[CacheUsage]) {
    let totals = &result["totals"];
    let sum = |f: fn(&CacheUsage) -> u64| reported.iter().map(f).sum::<u64>();
    assert_eq!(totals["input_tokens"], sum(CacheUsage::total), "{totals}");
    assert_eq!(totals["cached_input_tokens"], sum(|u| u.read), "{totals}");
    assert_eq!(totals["cache_write_tokens"], sum(|u| u.written), "{totals}");
    assert_eq!(
        totals["output_tokens"],
        TURNS as u64 * SCRIPTED_OUTPUT_TOKENS
    );
    let charged = result["cost_usd"].as_f64().unwrap();
    assert_close(charged, cost(provider, reported), "the run's cost");
    let model = result["usage"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert_eq!(model["cached_input_tokens"], totals["cached_input_tokens"]);
}

#[test]
fn twenty_anthropic_turns_cost_less_with_breakpoints_and_are_priced_kind_by_kind() {
    let provider = CachingProvider::Anthropic;
    let (with, reported, requests) = twenty_turns(provider, true);
    assert_ledger_matches(provider, &with, &reported);
    // The first turn writes the system prompt and the task; every later
    // one reads what the turn before wrote and writes only what is new.
    assert_eq!(reported[0].read, 0);
    assert!(reported[0].written > 1024, "{:?}", reported[0]);
    for (turn, pair) in reported.windows(2).enumerate() {
        let (before, now) = (pair[0], pair[1]);
        assert_eq!(now.read, before.read + before.written, "turn {}", turn + 2);
        assert_eq!(now.uncached, 0, "the last message is a breakpoint");
    }
    let (without, plain, _) = twenty_turns(provider, false);
    assert_ledger_matches(provider, &without, &plain);
    // The same conversation, token for token.
    let totals = |r: &[CacheUsage]| r.iter().map(CacheUsage::total).collect::<Vec<_>>();
    assert_eq!(totals(&reported), totals(&plain));
    let (w, wo) = (cost(provider, &reported), cost(provider, &plain));
    eprintln!(
        "anthropic, {TURNS} turns: ${w:.6} with caching, ${wo:.6} without, {:.3}",
        w / wo
    );
    assert!(w < 0.5 * wo, "${w} with caching, ${wo} without");
    for r in requests {
        assert!(r.cache_breakpoints() <= 4, "{}", r.cache_breakpoints());
    }
}

#[test]
fn twenty_openai_turns_price_the_cached_tokens_it_reports_at_the_cached_price() {
    let provider = CachingProvider::OpenAi;
    let (with, reported, requests) = twenty_turns(provider, true);
    assert_ledger_matches(provider, &with, &reported);
    assert!(reported
        .iter()
        .skip(1)
        .all(|u| u.read >= 1024 && u.read % 128 == 0));
    assert!(requests.iter().all(|r| r.cache_breakpoints() == 0));
    let (without, plain, _) = twenty_turns(provider, false);
    assert_ledger_matches(provider, &without, &plain);
    let (w, wo) = (cost(provider, &reported), cost(provider, &plain));
    eprintln!(
        "openai, {TURNS} turns: ${w:.6} with caching, ${wo:.6} without, {:.3}",
        w / wo
    );
    assert!(w < wo);
}

/// Root turns of a run whose cells each make one sub-call.
fn root_with_sub_calls(req: &Request) -> Reply {
    if !req.is_root_turn() {
        return Reply::anthropic_text("a finding", 40, 5);
    }
    let text = if req.message_count() >= 5 {
        code(r#"submit("found it");"#)
    } else {
        code(r#"let a = llm_query("Look at this part of the notes."); print(a);"#)
    };
    Reply::anthropic_text(&text, 500, 50)
}

#[test]
fn anthropic_root_turns_carry_breakpoints_on_the_system_and_the_prefix_and_sub_calls_none() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start(root_with_sub_calls);
    let mut flags = model_flags(CachingProvider::Anthropic, &server);
    flags.extend(["--sub-model".into(), "anthropic:claude-haiku-4-5".into()]);
    let (exit, result) = run(dir.path(), &flags);
    assert_eq!(exit, 0, "{result}");
    assert_eq!(result["answer"], "found it");
    let requests = server.requests();
    let (roots, subs): (Vec<_>, Vec<_>) = requests.iter().partition(|r| r.is_root_turn());
    assert_eq!((roots.len(), subs.len()), (3, 2));
    for r in &roots {
        let body = r.json();
        assert_eq!(
            body["system"][0]["cache_control"]["type"], "ephemeral",
            "{body}"
        );
        let messages = body["messages"].as_array().unwrap();
        let n = messages.len();
        let last = &messages[n - 1]["content"];
        assert_eq!(last[0]["cache_control"]["type"], "ephemeral", "{body}");
        if n >= 3 {
            // The previous turn's last message: where this prefix was cached.
            let previous = &messages[n - 3]["content"];
            assert_eq!(previous[0]["cache_control"]["type"], "ephemeral");
        }
        assert_eq!(r.cache_breakpoints(), if n >= 3 { 3 } else { 2 });
    }
    for r in &subs {
        assert_eq!(r.cache_breakpoints(), 0, "{}", r.json());
        assert!(r.json()["messages"][0]["content"].is_string());
    }
}

/// An OpenAI-compatible server that, like some strict proxies and local
/// servers, refuses a body with a field it does not know or content that
/// is not a string.
fn strict_openai(req: &Request) -> Reply {
    let body = req.json();
    let known = [
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
    ];
    let fields_ok = body
        .as_object()
        .is_some_and(|o| o.keys().all(|k| known.contains(&k.as_str())));
    let messages_ok = body["messages"].as_array().is_some_and(|m| {
        m.iter().all(|m| {
            m.as_object()
                .is_some_and(|o| o.keys().all(|k| k == "role" || k == "content"))
                && m["content"].is_string()
        })
    });
    if !(fields_ok && messages_ok) || req.cache_breakpoints() > 0 {
        return Reply::error(400, &format!("unknown field in {body}"));
    }
    let text = if req.message_count() >= 3 {
        code(r#"submit("strict is fine");"#)
    } else {
        code("print(context.len());")
    };
    Reply::openai_text(&text, 900, 20)
}

#[test]
fn a_strict_openai_compatible_server_is_sent_no_cache_fields() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start(strict_openai);
    let flags: Vec<String> = ["--model", "local-model", "--base-url", &server.openai_url()]
        .map(String::from)
        .to_vec();
    let (exit, result) = run(dir.path(), &flags);
    assert_eq!(exit, 0, "{result}");
    assert_eq!(result["answer"], "strict is fine");
    assert_eq!(result["totals"]["cached_input_tokens"], 0);
}

#[test]
fn a_cost_budget_counts_cached_tokens_at_the_cached_price() {
    let provider = CachingProvider::Anthropic;
    // What the 20 turns cost with and without caching.
    let (_, reported, _) = twenty_turns(provider, true);
    let (_, plain, _) = twenty_turns(provider, false);
    let (with, without) = (cost(provider, &reported), cost(provider, &plain));
    // Room for the cached run and each turn's worst case (its prompt at
    // one token a byte, all written at $3.75/M, and 500 output tokens:
    // about $0.13 by the last turn), but not for the same turns uncached.
    let budget = 0.8 * without;
    assert!(with + 0.15 < budget, "${with} cached, ${without} not");
    for (caching, status) in [(true, "submitted"), (false, "max_cost")] {
        let dir = tempfile::tempdir().unwrap();
        let (server, log) = prompt_cache_server(provider, caching, TURNS);
        let mut flags = model_flags(provider, &server);
        flags.extend(["--max-cost".into(), format!("{budget}")]);
        let (_, result) = run(dir.path(), &flags);
        assert_eq!(result["status"], status, "caching {caching}: {result}");
        let spent = cost(provider, &log.lock().unwrap());
        assert!(
            spent <= budget,
            "caching {caching}: spent ${spent} of ${budget}"
        );
        assert_close(
            result["cost_usd"].as_f64().unwrap(),
            spent,
            "the ledger's cost",
        );
    }
}
