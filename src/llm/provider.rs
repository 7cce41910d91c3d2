//! The [`Model`] trait: the seam between [`LlmClient`](super::LlmClient)
//! and whatever answers a call.
//!
//! A model answers one attempt of one completion call: a [`ModelCall`]
//! (the model's name, the [`ChatRequest`] and the [`CallTag`]) in, a
//! [`Response`] (the [`Completion`]: text, finish reason, usage) or a
//! [`Failure`] out. The client keeps everything around the attempt that
//! must be shared by a whole run: the context-window check, the ledger's
//! admission and settlement, the concurrency limit and pace, retries with
//! backoff (no slot is held while waiting, and a [`Failure::retry_after`]
//! is honoured), the per-attempt timeout and the observers.
//!
//! Built in: the HTTP providers (OpenAI-compatible, Anthropic, Azure
//! OpenAI), [`Replay`](super::Replay) (answers from a recorded trace), and
//! two wrappers that compose around any model, the response cache
//! ([`ResponseCache::wrap`](super::ResponseCache::wrap)) and
//! [`Recording`](super::Recording). An embedder registers its own with
//! [`LlmClient::with_model`](super::LlmClient::with_model).
//!
//! The trait is object safe: methods return a [`BoxFuture`], so models
//! live as `Arc<dyn Model>` and no async-trait machinery is needed.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::client::{CallTag, LlmError};
use super::model::ModelSpec;
use super::wire::{ChatRequest, Completion};

/// A boxed, sendable future: what [`Model`]'s methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One call, as a [`Model`] receives it.
#[derive(Debug, Clone, Copy)]
pub struct ModelCall<'a> {
    /// The model asked for, as the caller named it.
    pub model: &'a ModelSpec,
    /// The messages and the options to send. Defaults from the model's
    /// `[models."NAME"]` in `rlm.toml` are already applied, and so is the
    /// `max_tokens` the ledger granted when a budget needs one.
    pub request: &'a ChatRequest,
    /// Where in the run the call was made: `tag.kind` is `"root"` for a
    /// root turn and `"sub"` for `llm_query`/`llm_batch`.
    pub tag: &'a CallTag,
}

impl ModelCall<'_> {
    /// The last message's text: a sub-call's prompt.
    pub fn prompt(&self) -> &str {
        self.request
            .messages
            .last()
            .map_or("", |m| m.content.as_str())
    }
}

/// What a model answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub completion: Completion,
    /// The model the ledger counts the call under when it is not the one
    /// asked: a replayed sub-call counts under the model that answered it
    /// when it was recorded.
    pub counted_as: Option<String>,
}

impl From<Completion> for Response {
    fn from(completion: Completion) -> Response {
        Response {
            completion,
            counted_as: None,
        }
    }
}

/// Why an attempt failed, and whether another may succeed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: LlmError,
    /// Another attempt may succeed: a rate limit, a 5xx, a timeout, a
    /// dropped connection, a garbled body. The client retries it, up to
    /// [`RetryPolicy::max_retries`](super::RetryPolicy::max_retries).
    pub retryable: bool,
    /// How long the server asked to wait before the next attempt
    /// (`Retry-After`), when it said.
    pub retry_after: Option<Duration>,
    /// The model the ledger counts the failure under, as in [`Response`].
    pub counted_as: Option<String>,
}

impl Failure {
    /// A failure worth another attempt, after `retry_after` if the server said.
    pub fn retryable(error: LlmError, retry_after: Option<Duration>) -> Failure {
        Failure {
            error,
            retryable: true,
            retry_after,
            counted_as: None,
        }
    }
}

impl From<LlmError> for Failure {
    /// A failure that another attempt would repeat (a 401, a bad request).
    fn from(error: LlmError) -> Failure {
        Failure {
            error,
            retryable: false,
            retry_after: None,
            counted_as: None,
        }
    }
}

/// Something that answers completion calls: a provider's API, a recorded
/// trace, a cache in front of either, or an embedder's own stack.
///
/// A custom model that answers every call with its prompt reversed, used
/// through the client (and so under its ledger, limits and retries):
///
/// ```
/// use std::sync::Arc;
/// use rlm::llm::{
///     BoxFuture, CallOptions, ChatRequest, Completion, Failure, Ledger, LlmClient, LlmConfig,
///     Model, ModelCall, ModelSpec, PriceTable, Response,
/// };
///
/// struct Reverse;
///
/// impl Model for Reverse {
///     fn complete<'a>(&'a self, call: ModelCall<'a>) -> BoxFuture<'a, Result<Response, Failure>> {
///         Box::pin(async move {
///             let text: String = call.prompt().chars().rev().collect();
///             Ok(Completion { text, output_tokens: 1, ..Completion::default() }.into())
///         })
///     }
/// }
///
/// let ledger = Arc::new(Ledger::new(PriceTable::default(), Default::default()));
/// let client = LlmClient::new(LlmConfig::default(), ledger)?.with_model("reverse", Arc::new(Reverse));
/// let runtime = tokio::runtime::Runtime::new()?;
/// let answer = runtime.block_on(client.complete(
///     &ModelSpec::parse("reverse"),
///     &ChatRequest::prompt("stressed"),
///     &CallOptions::default(),
/// ))?;
/// assert_eq!(answer.text, "desserts");
/// assert_eq!(client.ledger().by_model()["reverse"].calls, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Model: Send + Sync {
    /// Answers one attempt of `call`. A [`Failure`] that is
    /// [`retryable`](Failure::retryable) is tried again by the client
    /// after a backoff; any other ends the call.
    fn complete<'a>(&'a self, call: ModelCall<'a>) -> BoxFuture<'a, Result<Response, Failure>>;

    /// An answer to `call` that costs nothing and sends nothing (a
    /// response cache's hit), or `None`. The client asks this first,
    /// before the ledger admits the call, so a stored answer is served
    /// even when a budget is spent, and counts as a cache hit, not a call.
    fn stored<'a>(&'a self, call: ModelCall<'a>) -> BoxFuture<'a, Option<Completion>> {
        let _ = call;
        Box::pin(std::future::ready(None))
    }

    /// What tells this model's answers apart from another's of the same
    /// name: its provider and endpoint, and the options it adds to every
    /// request (never a key). A response cache keys entries on it.
    fn identity(&self) -> String {
        String::new()
    }
}
