//! Calls to language models: providers, retries, limits and the ledger.
//!
//! * [`ModelSpec`] names a model and the protocol to reach it with;
//!   [`LlmConfig`] says where each model's calls go and which key goes
//!   with them ([`LlmConfig::endpoint`], the one rule of which key goes
//!   where; `[models."NAME"]` in `rlm.toml` is a [`ModelEndpoint`]).
//! * [`Model`] is the seam: one attempt of one completion call. OpenAI-
//!   compatible servers, Anthropic and Azure OpenAI are reached over HTTP;
//!   [`Replay`] answers from a recorded trace; [`ResponseCache::wrap`] and
//!   [`Recording`] compose around any model; an embedder registers its own
//!   with [`LlmClient::with_model`].
//! * [`LlmClient`] is the run-wide front: it routes each model to its
//!   [`Model`], retries transient failures with backoff, respects one
//!   concurrency limit and pace for the whole run, and records every call
//!   in a shared [`Ledger`] that enforces [`Budgets`]. Everything a
//!   provider sends back is size-capped and passes a [`Scrubber`] that
//!   removes the keys before anyone sees it.
//! * [`wire`] holds the protocol types and pure response parsing;
//!   [`structured`] asks for JSON answers in each provider's way, checks
//!   them against a schema and repairs them once.
//!
//! This module knows nothing of scripts or of the recursive loop.

mod cache;
mod client;
mod endpoint;
mod http;
mod ledger;
mod limiter;
mod model;
mod prices;
mod provider;
mod recording;
mod replay;
mod retry;
mod secret;
pub mod structured;
pub mod wire;

pub use cache::{CacheConfig, CacheMode, ResponseCache};
pub use client::{CallObserver, CallOptions, CallRecord, CallTag, LlmClient, LlmError};
pub(crate) use endpoint::toml_key;
pub use endpoint::{
    key_belongs, Endpoint, LlmConfig, ModelEndpoint, ANTHROPIC_URL, AZURE_API_VERSION,
    DEFAULT_MAX_RESPONSE_BYTES, OPENAI_URL,
};
pub use ledger::{
    cost_text, known_cost, totals_json, usage_json, Admission, BudgetExceeded, Budgets, Demand,
    Ledger, ModelUsage, Output, Refusals, Reservation, UsageTotals, MIN_USEFUL_OUTPUT,
};
pub use limiter::Limiter;
pub use model::{ModelSpec, Provider};
pub use prices::{Price, PriceTable, Tokens};
pub use provider::{BoxFuture, Failure, Model, ModelCall, Response};
pub use recording::{Exchange, ExchangeSink, Recording};
pub use replay::Replay;
pub use retry::{RetryPolicy, MAX_RETRY_AFTER};
pub use secret::{ApiKey, Scrubber};
pub use structured::{Expectation, ResponseFormat, StructuredFailure, StructuredOutput};
pub use wire::{ChatRequest, Completion, FinishReason, Message};
