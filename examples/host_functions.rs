//! Host functions: the embedding program gives scripts its own functions.
//!
//! A `lookup_customer(id)` backed by an in-memory table (a database in a
//! real program) and an async `open_tickets(name)` that waits as a service
//! call would. The root model is a loopback server scripted to call both,
//! so the example runs offline:
//!
//! ```text
//! cargo run --example host_functions
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use rlm::driver::{Rlm, RunConfig};
use rlm::dsl::{HostError, HostFunction, ValueType};
use rlm::llm::{LlmConfig, ModelSpec};
use rlm::testing::{MockServer, Reply};
use rlm::Context;

/// What the scripted root model writes: one cell that calls both functions.
const ROOT_REPLY: &str = r#"I will look the customer up.
```rhai
let id = parse_int(context.matches(`customer (\d+)`)[0].groups[0]);
let c = lookup_customer(id);
let open = open_tickets(c.name);
submit(`${c.name} is on the ${c.plan} plan with ${open} open tickets`);
```"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let table: Arc<HashMap<i64, (&str, &str)>> = Arc::new(HashMap::from([
        (42, ("Ada Lovelace", "pro")),
        (7, ("Grace Hopper", "free")),
    ]));
    let lookup = HostFunction::sync("lookup_customer", move |args| {
        let id = args[0].as_i64().unwrap_or_default();
        let (name, plan) = table
            .get(&id)
            .ok_or_else(|| HostError::new(format!("no customer with id {id}")))?;
        Ok(json!({"name": name, "plan": plan}))
    })
    .param("id", ValueType::Int)
    .returns(ValueType::Map)
    .doc("The customer with this id, as #{name, plan}; fails for an unknown id.");

    let tickets = HostFunction::asynchronous("open_tickets", |args| async move {
        // A service call: the cell's clock is paused while it waits.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(json!(args[0].as_str().map_or(0, |name| name.len() % 5)))
    })
    .param("name", ValueType::String)
    .returns(ValueType::Int)
    .doc("How many support tickets the customer has open.");

    let server = MockServer::start(|req| {
        if req.is_root_turn() {
            Reply::openai_text(ROOT_REPLY, 500, 60)
        } else {
            Reply::openai_text("(no sub-calls in this example)", 10, 5)
        }
    });
    let rlm = Rlm::builder()
        .llm_config(LlmConfig {
            openai_base_url: server.openai_url(),
            ..LlmConfig::default()
        })
        .config(RunConfig {
            model: ModelSpec::parse("gpt-5"),
            max_iterations: 3,
            ..RunConfig::default()
        })
        .function(lookup)?
        .function(tickets)?
        .build()?;

    let ctx = Context::from_string("ticket.txt", "From customer 42: the export is slow.\n");
    let result = rlm.run("Who wrote this ticket, and how many are open?", &ctx);
    println!(
        "{:?}: {}",
        result.status,
        result.answer_text.unwrap_or_default()
    );

    // What the model was told about the functions.
    let system = server.requests()[0].system().unwrap_or_default();
    if let Some(at) = system.find("**Host functions**") {
        println!("\n{}", system[at..].trim_end());
    }
    Ok(())
}
