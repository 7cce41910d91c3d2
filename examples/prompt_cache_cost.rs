//! What prompt caching saves on a 20-turn run, for each provider.
//!
//! A loopback server plays the root model for 20 turns
//! ([`rlm::testing::scripted_root_reply`]) and reports every prompt's
//! tokens as the provider's cache would bill them
//! ([`rlm::testing::PromptCache`]: Anthropic writes the prefix up to its
//! last `cache_control` breakpoint and reads what an earlier request
//! wrote; OpenAI reads the longest prefix it saw before, in blocks of 128
//! tokens from 1024), or, for the baseline, every token uncached. The run
//! goes through the real loop and ledger, and the figures are the ledger's.
//! `tests/prompt_caching.rs` asserts the same arithmetic.
//!
//! ```text
//! cargo run --example prompt_cache_cost
//! ```

use rlm::driver::{Rlm, RunConfig, RunResult};
use rlm::llm::LlmConfig;
use rlm::testing::{prompt_cache_server, CachingProvider};
use rlm::Context;

const TURNS: usize = 20;

async fn run(
    provider: CachingProvider,
    caching: bool,
) -> Result<RunResult, Box<dyn std::error::Error>> {
    let (server, _) = prompt_cache_server(provider, caching, TURNS);
    let model = match provider {
        CachingProvider::Anthropic => "anthropic:claude-sonnet-4-5",
        CachingProvider::OpenAi => "gpt-5",
    };
    // The settings first: they hold the model too.
    let rlm = Rlm::builder()
        .config(RunConfig {
            max_iterations: TURNS + 5,
            root_max_tokens: Some(500),
            ..RunConfig::default()
        })
        .model(model)
        .llm_config(LlmConfig {
            openai_base_url: server.openai_url(),
            anthropic_base_url: server.url(),
            ..LlmConfig::default()
        })
        .build()?;
    let context = Context::from_string("notes.txt", "alpha\nbeta\ngamma\n");
    let result = rlm.complete("Walk through the notes.", &context).await;
    if result.iterations != TURNS {
        return Err(format!(
            "the run took {} turns, not {TURNS}: {:?}",
            result.iterations, result.error
        )
        .into());
    }
    Ok(result)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("{TURNS} root turns, 150 output tokens each; cost in USD at list price\n");
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>10} {:>10} {:>6}",
        "model", "input", "cached", "written", "without", "with", "ratio"
    );
    for provider in [CachingProvider::Anthropic, CachingProvider::OpenAi] {
        let with = run(provider, true).await?;
        let without = run(provider, false).await?;
        let (w, wo) = (with.cost_usd, without.cost_usd);
        let model = with.usage.keys().next().cloned().unwrap_or_default();
        println!(
            "{:<28} {:>8} {:>8} {:>8} {:>10.6} {:>10.6} {:>6.3}",
            model,
            with.totals.input_tokens,
            with.totals.cached_input_tokens,
            with.totals.cache_write_tokens,
            wo,
            w,
            w / wo
        );
        // Input alone: the output (the same in both runs) taken out.
        let output = without.totals.output_tokens;
        let out_cost = match provider {
            CachingProvider::Anthropic => output as f64 * 15.0 / 1e6,
            CachingProvider::OpenAi => output as f64 * 10.0 / 1e6,
        };
        println!(
            "{:<28} input only: {:.6} without, {:.6} with, ratio {:.3}",
            "",
            wo - out_cost,
            w - out_cost,
            (w - out_cost) / (wo - out_cost)
        );
    }
    Ok(())
}
