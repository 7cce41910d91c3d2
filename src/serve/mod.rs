//! The RLM as a service: `rlm mcp` (the Model Context Protocol over stdio,
//! for agents and editors) and `rlm serve` (an OpenAI-compatible HTTP
//! endpoint, for code written against the OpenAI SDK).
//!
//! Both are thin over the same pieces:
//!
//! * [`Root`] confines every path a client names to one directory
//!   (`--root`): no `..`, nothing through a symlink out of it.
//! * [`RunServer`] makes the runs: one [`LlmClient`](crate::llm::LlmClient)
//!   for the whole server, so one concurrency limit and ledger, and per
//!   run a child ledger with the request's budget. A run's events go to a
//!   sink the front end gives it: MCP progress notifications, SSE chunks.
//! * [`Sessions`] keeps the contexts and persistent Rhai sessions that
//!   MCP clients drive themselves (`context_open`, `rhai_run`), bounded in
//!   number and memory, and closed when idle.
//!
//! [`mcp::McpServer`] and [`openai::app`] are the two front ends. The
//! command line (`src/cli/mcp.rs`, `src/cli/serve.rs`) builds them from
//! the same model flags and limits as `rlm run`; docs/serve.md describes
//! both for users.

pub mod mcp;
pub mod openai;
mod paths;
mod progress;
mod runs;
mod sessions;

pub use paths::{PathError, Root};
pub use progress::{Progress, Step};
pub use runs::{Answered, ModelPair, RunOptions, RunServer, RunServerConfig};
pub use sessions::{
    DocumentSummary, SearchHit, SearchOptions, SessionError, SessionLimits, Sessions, Summary,
    MAX_SEARCH_HITS, SEARCH_LINE_CHARS,
};

/// Why a service call could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("loading the context: {0}")]
    Load(#[from] crate::Error),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("starting the run: {0}")]
    Build(#[from] crate::driver::BuildError),
    #[error("no paths given: name files or directories under the root")]
    NoPaths,
    #[error("no model to run: pass --model (e.g. --model gpt-5) or set RLM_MODEL")]
    NoModel,
    #[error("the call stopped on an internal error ({0}); the server goes on. Please report this")]
    Internal(String),
    #[error("cannot create the trace directory {dir}: {cause}")]
    TraceDir {
        dir: std::path::PathBuf,
        cause: std::io::Error,
    },
}
