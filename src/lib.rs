//! # rlm: a runtime for Recursive Language Models
//!
//! A Recursive Language Model answers questions about inputs far larger than
//! a model's context window by keeping the input *outside* the prompt, in a
//! sandboxed scripting environment, and letting the model write programs
//! that search it, cut it up and call sub-models on the pieces.
//!
//! This crate's foundation is the context engine:
//!
//! * [`Context`] loads files, directories, globs or stdin. Files are
//!   memory-mapped, so opening a multi-gigabyte input costs milliseconds.
//! * [`Text`] is a zero-copy view of a byte range of a context. Slicing,
//!   line access, search and chunking all return further views.
//! * Searches ([`Text::find_all`], [`Text::matches`], [`Text::grep`],
//!   [`Text::find_any`], ...) split the text at line boundaries and run on
//!   every core with rayon.
//!
//! Data flows one way: paths → [`Context`] → [`Text`] views → search and
//! chunking → results that hold more views.
//!
//! ```
//! use rlm::{Context, GrepOptions};
//!
//! let ctx = Context::from_string("log", "ok\nERROR: disk full\nok\nERROR: net down\n");
//! let text = ctx.text();
//! let hits = text.grep("ERROR", &GrepOptions::default())?;
//! assert_eq!(hits.len(), 2);
//! assert_eq!(hits[1].line, 4);
//! assert_eq!(text.count_matches(r"\bok\b")?, 2);
//! let parts = text.parts(2)?;
//! assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), text.len());
//! # Ok::<(), rlm::Error>(())
//! ```
//!
//! ## The model seam
//!
//! Every model call of a run goes through one [`llm::LlmClient`], which
//! routes each model name to an [`llm::Model`]: one attempt of one
//! completion call, a [`llm::ModelCall`] (the request's messages and
//! options, and its [`llm::CallTag`], so a root turn is told from a
//! sub-call) in, a [`llm::Completion`] out. OpenAI-compatible servers,
//! Anthropic and Azure OpenAI are models over HTTP, at the endpoint
//! [`llm::LlmConfig::endpoint`] resolves (which also decides which key may
//! go there); a recorded trace is one too ([`llm::Replay`]); a response
//! cache ([`llm::ResponseCache::wrap`]) and [`llm::Recording`] wrap any
//! model. Around each call the client keeps what the whole run shares:
//! the ledger and its budgets, the concurrency limit and pace, retries and
//! observers. A program routes a name to its own stack with
//! [`driver::RlmBuilder::custom_model`] (or, on a client it shares between
//! runs, [`llm::LlmClient::with_model`]); here a model in-house drives the
//! real loop:
//!
//! ```
//! use std::sync::Arc;
//! use rlm::llm::{BoxFuture, Completion, Failure, Model, ModelCall, Response};
//!
//! /// Root turns submit the context's length; sub-calls answer "42".
//! struct InHouse;
//!
//! impl Model for InHouse {
//!     fn complete<'a>(&'a self, call: ModelCall<'a>) -> BoxFuture<'a, Result<Response, Failure>> {
//!         let text = match call.tag.kind {
//!             "root" => "```rhai\nsubmit(context.len());\n```",
//!             _ => "42",
//!         };
//!         Box::pin(async move { Ok(Completion { text: text.into(), ..Completion::default() }.into()) })
//!     }
//! }
//!
//! let rlm = rlm::driver::Rlm::builder()
//!     .model("in-house")
//!     .custom_model("in-house", Arc::new(InHouse))
//!     .build()?;
//! let result = rlm.run("How long is it?", &rlm::Context::from_string("t", "hello"));
//! assert_eq!(result.answer, Some(serde_json::json!(5)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## The run-events seam
//!
//! A run tells the outside world what it does through one trait, as
//! `grep-searcher` hands matches to a `Sink`: the driver emits typed
//! [`events::Event`]s (run start and end, each root request and response,
//! each cell's start and end, each sub-call's start and end, child runs,
//! budget stops, the answer), each in an [`events::RunEvent`] naming its
//! run, to every [`events::RunSink`] given to
//! [`driver::RlmBuilder::sink`]. The driver never opens a file or writes to
//! a terminal: the JSONL trace ([`trace::TraceWriter`], which
//! [`driver::RlmBuilder::trace`] adds), the progress line of `rlm run` and
//! its `--verbose` printer ([`events::VerbosePrinter`]) are sinks, and a
//! live viewer or a metrics counter is one more ([`view`] turns a written
//! trace into an HTML page). Events borrow from the
//! run, so a sink copies only what it keeps. Here a sink counts cells and
//! collects sub-call latencies while a loopback server plays the models:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! use rlm::events::{Event, RunEvent, RunSink};
//! use rlm::testing::{MockServer, Reply};
//!
//! #[derive(Default)]
//! struct Stats {
//!     cells: Mutex<usize>,
//!     latencies: Mutex<Vec<Duration>>,
//! }
//!
//! impl RunSink for Stats {
//!     fn event(&self, e: &RunEvent<'_>) {
//!         match &e.event {
//!             Event::CellEnd { .. } => *self.cells.lock().unwrap() += 1,
//!             Event::SubCallEnd(call) => self.latencies.lock().unwrap().push(call.latency),
//!             _ => {}
//!         }
//!     }
//! }
//!
//! // The root asks the sub-model once and submits its answer.
//! let server = MockServer::start(|req| match req.is_root_turn() {
//!     true => Reply::openai_text("```rhai\nsubmit(llm_query(\"2 + 2?\"));\n```", 100, 10),
//!     false => Reply::openai_text("4", 10, 1),
//! });
//! let stats = Arc::new(Stats::default());
//! let rlm = rlm::driver::Rlm::builder()
//!     .model("gpt-5")
//!     .llm_config(rlm::llm::LlmConfig {
//!         openai_base_url: server.openai_url(),
//!         ..Default::default()
//!     })
//!     .sink(stats.clone())
//!     .build()?;
//! let result = rlm.run("What is 2 + 2?", &rlm::Context::from_string("t", "2 + 2"));
//! assert_eq!(result.answer_text.as_deref(), Some("4"));
//! assert_eq!(*stats.cells.lock().unwrap(), 1);
//! assert_eq!(stats.latencies.lock().unwrap().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Host functions
//!
//! A program that embeds `rlm` can give scripts its own functions, as
//! DSPy's `tools=` does: a [`dsl::HostFunction`] is a name, a declared
//! signature, a doc string and a closure over [`serde_json::Value`]s, sync
//! or async. [`driver::RlmBuilder::function`] adds one to every session of
//! a run, children's included, and lists its signature and doc in the
//! model's quick reference; [`dsl::SessionBuilder::function`] adds one to a
//! single session. A sync function's time counts against the cell's time
//! limit; an async one runs on the runtime with the cell clock paused, as
//! `llm_query` does, and an interrupt stops the wait. Errors and panics
//! become script errors that name the function. `examples/host_functions.rs`
//! runs one through the loop against a loopback model.
//!
//! ```
//! use rlm::dsl::{HostError, HostFunction, SessionBuilder, ValueType};
//!
//! let lookup = HostFunction::sync("lookup_customer", |args| match args[0].as_i64() {
//!     Some(42) => Ok(serde_json::json!({"name": "Ada", "plan": "pro"})),
//!     other => Err(HostError::new(format!("no customer with id {other:?}"))),
//! })
//! .param("id", ValueType::Int)
//! .returns(ValueType::Map)
//! .doc("The customer with this id, as #{name, plan}.");
//!
//! let ctx = rlm::Context::from_string("ticket", "From customer 42: export is slow\n");
//! let mut session = SessionBuilder::new().function(lookup)?.build(&ctx);
//! let out = session.run_cell("print(lookup_customer(42).plan);");
//! assert_eq!(out.output, "pro\n");
//! # Ok::<(), rlm::dsl::HostFunctionError>(())
//! ```

pub mod alloc;
mod chunk;
pub mod context;
mod error;
pub mod escape;
mod interrupt;
pub mod search;
pub mod text;

pub use context::{Context, ContextBuilder, Document, Skipped};
pub use error::{Error, Result};
pub use interrupt::Interrupt;
pub use search::{AnyMatch, Pattern, PatternOptions};
pub use search::{GrepHit, GrepOptions, IntoPattern, Match};
pub use text::Text;
pub mod batch;
pub mod config;
pub mod driver;
pub mod dsl;
pub mod eval;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod llm;
pub mod preflight;
pub mod schema;
pub mod serve;
pub mod stats;
pub mod testing;
pub mod trace;
pub mod view;
