//! Run events: what a run tells the outside world as it happens.
//!
//! The driver ([`Rlm`](crate::driver::Rlm)) never opens a file or writes to
//! a terminal. It emits typed [`Event`]s, each wrapped in a [`RunEvent`]
//! that says which run it belongs to, to every [`RunSink`] it was given
//! with [`RlmBuilder::sink`](crate::driver::RlmBuilder::sink). The JSONL
//! trace ([`TraceWriter`](crate::trace::TraceWriter)), the progress bar of
//! `rlm run` and its `--verbose` printer ([`VerbosePrinter`]) are sinks; so
//! is anything an embedder writes (a live viewer, a metrics counter).
//!
//! Events borrow from the run (the cell's code and output, the call's
//! request and answer), so emitting one copies nothing; a sink that keeps
//! something copies what it keeps. Sinks are called on the run's threads,
//! from several at once when `llm_batch` or `rlm_batch` runs work in
//! parallel, so a sink must be `Send + Sync` and quick: a slow sink slows
//! the run.
//!
//! The order, for one run: [`Event::RunStart`] (or [`Event::ChildStart`]
//! for a child), then per turn a [`Event::RootRequest`] and its
//! [`Event::RootResponse`], then per code block a [`Event::CellStart`], the
//! cell's sub-calls ([`Event::SubCallStart`], [`Event::SubCallEnd`]) and
//! child runs, and its [`Event::CellEnd`]; at the end [`Event::Budget`]
//! (when a budget stopped the run), [`Event::Final`] (when there is an
//! answer) and [`Event::ChildEnd`] or, for the top run, [`Event::RunEnd`].

mod verbose;

use std::sync::Arc;
use std::time::Duration;

use crate::driver::{AnswerKind, RunConfig, RunResult, RunStatus};
use crate::dsl::CellOutcome;
use crate::llm::{
    BudgetExceeded, Budgets, CallRecord, CallTag, ChatRequest, Completion, Message, ModelSpec,
};
use crate::Text;

pub use verbose::VerbosePrinter;

/// One event, and the run it belongs to.
#[derive(Debug)]
pub struct RunEvent<'a> {
    /// Which top run of its [`Rlm`](crate::driver::Rlm) this is: 1 for the
    /// first [`complete`](crate::driver::Rlm::complete) or
    /// [`run`](crate::driver::Rlm::run), 2 for the next, and so on, so the
    /// events of concurrent runs on one `Rlm` can be told apart.
    pub top: u64,
    /// The run's id in its tree: `"0"` for the top run, `"0.1"` for its
    /// first child, `"0.1.2"` for that child's second child.
    pub run: &'a str,
    /// Recursion depth of the run (0 for the top run).
    pub depth: usize,
    pub event: Event<'a>,
}

/// What happened.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The top run begins.
    RunStart(RunStart<'a>),
    /// A child run (from `rlm_query` or `rlm_batch`) begins.
    ChildStart(RunStart<'a>),
    /// A request to the root model is about to be sent.
    RootRequest {
        /// The turn, from 1.
        iteration: usize,
        /// The messages added since the previous request (the first holds
        /// the question; later ones the model's reply and the cell report).
        messages: &'a [Message],
    },
    /// The root model answered.
    RootResponse {
        iteration: usize,
        completion: &'a Completion,
        latency: Duration,
    },
    /// A code block of the root model's reply is about to run.
    CellStart(Cell<'a>),
    /// A code block ran.
    CellEnd {
        cell: Cell<'a>,
        /// The session's cell counter (cells of every turn, from 1).
        number: usize,
        /// Output (capped as the model sees it), error, submitted value
        /// and duration.
        outcome: &'a CellOutcome,
    },
    /// An `llm_query` or `llm_batch` item (or the fallback of `rlm_query`
    /// at the depth limit) is about to be admitted and sent.
    SubCallStart {
        model: &'a ModelSpec,
        request: &'a ChatRequest,
        tag: &'a CallTag,
    },
    /// A sub-call ended: its answer or error, tokens, latency, retries.
    SubCallEnd(&'a CallRecord<'a>),
    /// A budget refused a call or stopped the run.
    Budget(Budget<'a>),
    /// The run ends with this answer (a value passed to `submit`, or the
    /// model's prose on its final turn).
    Final(Answer<'a>),
    /// A child run ended.
    ChildEnd(ChildEnd<'a>),
    /// The top run ended; the result is what [`Rlm::run`](crate::driver::Rlm::run) returns
    /// (without `trace_error`, which sinks are asked for after this event).
    RunEnd(&'a RunResult),
}

/// How a run (top or child) starts.
#[derive(Debug)]
pub struct RunStart<'a> {
    /// The id of the run that started this one (`None` for the top run).
    pub parent: Option<&'a str>,
    pub query: &'a str,
    pub config: &'a RunConfig,
    /// The model `llm_query` calls (the root model when none is set).
    pub sub_model: &'a ModelSpec,
    /// Sub-calls in flight at most, across the whole tree.
    pub concurrency: usize,
    pub budgets: &'a Budgets,
    /// What the run explores: the whole context, or a child's piece.
    pub context: &'a Text,
    pub system_prompt: &'a str,
}

/// A code block of a root reply.
#[derive(Debug, Clone, Copy)]
pub struct Cell<'a> {
    pub iteration: usize,
    /// The block's number within the reply, from 1.
    pub index: usize,
    /// Blocks in the reply.
    pub count: usize,
    pub code: &'a str,
}

/// What a budget did.
#[derive(Debug)]
pub enum Budget<'a> {
    /// A budget refused a call of the run's tree: the turn about to start
    /// is the run's last.
    Refused(&'a BudgetExceeded),
    /// The run ends on a budget (`status` is `max_llm_calls`, `max_tokens`
    /// or `max_cost`); `reason` says which and why.
    Stopped {
        status: RunStatus,
        reason: Option<&'a str>,
    },
}

/// The answer a run ends with.
#[derive(Debug)]
pub struct Answer<'a> {
    /// The answer as JSON (strings stay strings).
    pub value: &'a serde_json::Value,
    pub text: &'a str,
    pub kind: AnswerKind,
}

/// How a child run ended.
#[derive(Debug)]
pub struct ChildEnd<'a> {
    pub answer: Option<&'a serde_json::Value>,
    pub status: RunStatus,
    /// Root turns the child took.
    pub iterations: usize,
    pub wall: Duration,
    pub error: Option<&'a str>,
}

/// Receives the events of runs.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use rlm::events::{Event, RunEvent, RunSink};
///
/// /// Counts the cells that ended with an error.
/// #[derive(Default)]
/// struct FailedCells(AtomicUsize);
///
/// impl RunSink for FailedCells {
///     fn event(&self, e: &RunEvent<'_>) {
///         if let Event::CellEnd { outcome, .. } = &e.event {
///             if outcome.error.is_some() {
///                 self.0.fetch_add(1, Ordering::Relaxed);
///             }
///         }
///     }
/// }
/// ```
pub trait RunSink: Send + Sync {
    /// Receives one event, on the thread of the run it belongs to.
    fn event(&self, event: &RunEvent<'_>);

    /// Why this sink could not record everything (a full disk), if it
    /// failed; asked once a top run ends, and reported as its
    /// [`RunResult::trace_error`].
    fn error(&self) -> Option<String> {
        None
    }
}

/// Several sinks as one: each event goes to every sink, in the order they
/// were added.
#[derive(Clone, Default)]
pub struct Sinks(Vec<Arc<dyn RunSink>>);

impl Sinks {
    /// Adds a sink.
    pub fn push(&mut self, sink: Arc<dyn RunSink>) {
        self.0.push(sink);
    }

    /// Adds every sink of `other`, after these.
    pub fn extend(&mut self, other: Sinks) {
        self.0.extend(other.0);
    }

    /// Whether there is no sink at all, so nothing needs to be emitted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sinks({})", self.0.len())
    }
}

impl RunSink for Sinks {
    fn event(&self, event: &RunEvent<'_>) {
        for sink in &self.0 {
            sink.event(event);
        }
    }

    /// The first sink's error, in the order they were added.
    fn error(&self) -> Option<String> {
        self.0.iter().find_map(|s| s.error())
    }
}
