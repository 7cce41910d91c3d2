//! Regenerates `examples/traces/missed_deliveries.jsonl`, the trace the
//! README's quick start replays.
//!
//! No model is reachable where this project is built, so the root turns
//! below are written out by hand in the style a model uses, and a loopback
//! server plays them (and answers the sub-calls by rule). The run itself is
//! real: the cells execute against `examples/data/deliveries.log`.
//!
//! ```text
//! cargo run --example record_demo_trace
//! ```

use std::time::Duration;

use rlm::driver::{Rlm, RunConfig};
use rlm::llm::{LlmConfig, ModelSpec};
use rlm::testing::{MockServer, Reply};
use rlm::Context;

const TURNS: &[&str] = &[
    "I'll start by looking at the size and shape of the context.\n```rhai\nprint(`${context.len()} bytes, ${context.line_count()} lines`);\nprint(context.lines(1, 3));\n```",
    "Each line is a delivery with a status. Let me find the 2025 lines whose status is not on time.\n```rhai\nlet late = context.grep(`^2025-.*status=MISSED`);\nprint(`${late.len()} missed deliveries in 2025`);\nfor hit in late { print(hit.text); }\n```",
    "I'll have a sub-model read each line and name the vendor, in parallel, then tally.\n```rhai\nlet prompts = late.map(|h| `Which vendor is named in this delivery record? Answer with the vendor name only.\\n${h.text}`);\nlet vendors = llm_batch(prompts);\nlet tally = counts(vendors);\nprint(top(tally, 10));\nlet names = tally.keys();\nnames.sort();\nsubmit(names);\n```",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = MockServer::start(|req| {
        let is_root = req
            .system()
            .is_some_and(|s| s.contains("Recursive Language Model"));
        if is_root {
            let turn = req.message_count().div_ceil(2);
            let text = TURNS
                .get(turn - 1)
                .copied()
                .unwrap_or("```rhai\nsubmit(\"done\");\n```");
            Reply::openai_text(text, 2400 + 600 * turn as u64, 120)
        } else {
            let prompt = req.prompt();
            let vendor = prompt
                .split("vendor=")
                .nth(1)
                .and_then(|rest| rest.split(" |").next())
                .unwrap_or("unknown");
            Reply::openai_text(vendor, 60, 4).after(Duration::from_millis(30))
        }
    });
    let ctx = Context::open(&["examples/data/deliveries.log"])?;
    let rlm = Rlm::builder()
        .llm_config(LlmConfig {
            openai_base_url: server.openai_url(),
            ..LlmConfig::default()
        })
        .config(RunConfig {
            model: ModelSpec::parse("gpt-5"),
            sub_model: Some(ModelSpec::parse("gpt-5-mini")),
            ..RunConfig::default()
        })
        .trace("examples/traces/missed_deliveries.jsonl")
        .build()?;
    let result = rlm.run("Which vendors missed a delivery in 2025?", &ctx);
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
