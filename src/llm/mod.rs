//! Calls to language models: providers, retries, limits and the ledger.
//!
//! * [`ModelSpec`] names a model and the protocol to reach it with.
//! * [`LlmClient`] sends [`ChatRequest`]s over OpenAI chat completions or
//!   Anthropic messages, retries transient failures with backoff, respects
//!   one concurrency limit and pace for the whole run, and records every
//!   call in a shared [`Ledger`] that enforces [`Budgets`]. Everything a
//!   provider sends back is size-capped and passes a [`Scrubber`] that
//!   removes the keys before anyone sees it.
//! * [`wire`] holds the protocol types and pure response parsing.
//!
//! This module knows nothing of scripts or of the recursive loop.

mod client;
mod ledger;
mod limiter;
mod model;
mod prices;
mod retry;
mod secret;
pub mod wire;

pub use client::{
    CallObserver, CallOptions, CallRecord, CallTag, LlmClient, LlmConfig, LlmError, ANTHROPIC_URL,
    DEFAULT_MAX_RESPONSE_BYTES, OPENAI_URL,
};
pub use ledger::{
    cost_text, known_cost, totals_json, usage_json, Admission, BudgetExceeded, Budgets, Demand,
    Ledger, ModelUsage, Output, Refusals, Reservation, UsageTotals, MIN_USEFUL_OUTPUT,
};
pub use limiter::Limiter;
pub use model::{ModelSpec, Provider};
pub use prices::{Price, PriceTable, Tokens};
pub use retry::{RetryPolicy, MAX_RETRY_AFTER};
pub use secret::{ApiKey, Scrubber};
pub use wire::{ChatRequest, Completion, FinishReason, Message};
