//! Using rlm as a library: `Rlm::builder()...build()` and the async
//! `complete`, which returns what `rlm run --output json` prints.
//!
//! With no network here, a loopback server plays the root model. Point
//! `llm_config` at a real provider (or leave the defaults and set
//! `OPENAI_API_KEY`) to ask a real one.
//!
//! ```text
//! cargo run --example library
//! ```

use rlm::driver::Rlm;
use rlm::llm::LlmConfig;
use rlm::testing::{MockServer, Reply};
use rlm::Context;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = MockServer::start(|_| {
        Reply::openai_text(
            "```rhai\nlet errors = context.grep(`ERROR`);\nsubmit(errors.len());\n```",
            800,
            30,
        )
    });
    let rlm = Rlm::builder()
        .model("gpt-5")
        .sub_model("gpt-5-mini")
        .llm_config(LlmConfig {
            openai_base_url: server.openai_url(),
            ..LlmConfig::default()
        })
        .build()?;
    let context = Context::from_string("app.log", "ok\nERROR disk full\nok\nERROR timeout\n");
    let result = rlm.complete("How many errors are logged?", &context).await;
    println!("{}", serde_json::to_string_pretty(&result)?);
    assert_eq!(result.answer, Some(serde_json::json!(2)));
    Ok(())
}
