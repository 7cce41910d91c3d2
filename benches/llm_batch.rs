//! `llm_batch` of 1,000 prompts against a loopback server with 100 ms of
//! latency per call, at concurrency 64, driven from a Rhai cell.
//!
//! Prints the wall time against the ideal (1000 / 64 × 100 ms), the
//! client's CPU time per call, and peak memory with the calls in flight.
//!
//! ```text
//! cargo bench --bench llm_batch
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use rlm::dsl::{LlmAccess, SessionBuilder};
use rlm::llm::{Budgets, Ledger, LlmClient, LlmConfig, ModelSpec, PriceTable};
use rlm::testing::{MockServer, Reply};
use rlm::Context;

const CALLS: usize = 1000;
const CONCURRENCY: usize = 64;
const LATENCY: Duration = Duration::from_millis(100);

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 here.
    let hz = 100; // USER_HZ on Linux
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A session whose sub-calls go to `server`, `concurrency` at a time.
fn loopback_session(
    server: &MockServer,
    concurrency: usize,
    runtime: &tokio::runtime::Handle,
    ctx: &Context,
) -> rlm::dsl::Session {
    let client = LlmClient::new(
        LlmConfig {
            openai_base_url: server.openai_url(),
            concurrency,
            ..LlmConfig::default()
        },
        Arc::new(Ledger::new(PriceTable::default(), Budgets::default())),
    )
    .unwrap();
    let access = LlmAccess {
        client,
        runtime: runtime.clone(),
        sub_model: Some(ModelSpec::parse("gpt-5-mini")),
        context_window: None,
        depth: 0,
        run_id: None,
        scope: None,
    };
    SessionBuilder::new().llm(access).build(ctx)
}

fn main() {
    // The server runs on its own threads; its CPU counts in this process
    // too, so it is measured separately with a zero-latency run below.
    let server = MockServer::start(|req| {
        Reply::openai_text(&format!("answer to {}", req.prompt().len()), 50, 5).after(LATENCY)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ctx = Context::from_string("bench", "x".repeat(1000));
    let mut session = loopback_session(&server, CONCURRENCY, runtime.handle(), &ctx);
    let script = format!("let a = llm_batch(range({CALLS}).map(|i| `question ${{i}}: ` + context.slice(0, 200))); print(a.len());");

    // Warm the connection pool once, as a long run would be.
    let warm = session.run_cell("llm_batch(range(64).map(|i| `warm ${i}`)).len()");
    assert!(warm.error.is_none(), "{}", warm.render());

    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let out = session.run_cell(&script);
    let wall = t0.elapsed();
    let cpu = cpu_time() - cpu0;
    assert_eq!(out.output.trim(), CALLS.to_string(), "{}", out.render());

    let ideal = LATENCY * (CALLS.div_ceil(CONCURRENCY)) as u32;
    println!(
        "llm_batch: {CALLS} calls, {} ms latency, concurrency {CONCURRENCY}",
        LATENCY.as_millis()
    );
    println!("  wall      {:>8.3} s", wall.as_secs_f64());
    println!(
        "  ideal     {:>8.3} s  (ceil({CALLS}/{CONCURRENCY}) x {} ms)",
        ideal.as_secs_f64(),
        LATENCY.as_millis()
    );
    println!(
        "  ratio     {:>8.3}x  (target <= 1.25x)",
        wall.as_secs_f64() / ideal.as_secs_f64()
    );
    println!(
        "  cpu       {:>8.3} s total, {:.0} us per call (client and loopback server together)",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / CALLS as f64
    );
    println!(
        "  peak RSS  {:>8} KiB with {CONCURRENCY} calls in flight",
        peak_rss_kib()
    );

    // All 1,000 in flight at once: memory of the in-flight state.
    let mut s2 = loopback_session(&server, CALLS, runtime.handle(), &ctx);
    let rss0 = peak_rss_kib();
    let t0 = Instant::now();
    let out = s2.run_cell(&script);
    assert!(out.error.is_none(), "{}", out.render());
    println!(
        "  1000 in flight: wall {:.3} s, peak RSS {} KiB (+{} KiB)",
        t0.elapsed().as_secs_f64(),
        peak_rss_kib(),
        peak_rss_kib().saturating_sub(rss0)
    );

    // The large case: 10,000 calls at concurrency 256 (a regression in the
    // limiter or the JoinSet window shows here first).
    const LARGE: usize = 10_000;
    const WIDE: usize = 256;
    let mut s3 = loopback_session(&server, WIDE, runtime.handle(), &ctx);
    let large =
        format!("let a = llm_batch(range({LARGE}).map(|i| `question ${{i}}`)); print(a.len());");
    let rss0 = peak_rss_kib();
    let t0 = Instant::now();
    let out = s3.run_cell(&large);
    let wall = t0.elapsed();
    assert_eq!(out.output.trim(), LARGE.to_string(), "{}", out.render());
    let ideal = LATENCY * (LARGE.div_ceil(WIDE)) as u32;
    println!(
        "  {LARGE} calls at concurrency {WIDE}: wall {:.3} s, ideal {:.3} s, ratio {:.3}x, peak RSS {} KiB (+{} KiB)",
        wall.as_secs_f64(),
        ideal.as_secs_f64(),
        wall.as_secs_f64() / ideal.as_secs_f64(),
        peak_rss_kib(),
        peak_rss_kib().saturating_sub(rss0)
    );
}
