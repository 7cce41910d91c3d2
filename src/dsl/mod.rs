//! The scripting layer: a sandboxed Rhai session over a context.
//!
//! * [`SessionBuilder`] makes a [`Session`]: a sandboxed Rhai engine, a
//!   persistent scope holding `context`, `documents` and `query`, and a
//!   library of the script functions defined so far.
//! * [`Session::run_cell`] runs one cell and returns a [`CellOutcome`]:
//!   captured, capped output; an error with line, column and a hint; and
//!   the answer if the cell called `submit`.
//! * The functions scripts can call are thin registrations over the
//!   context engine ([`crate::Text`]) and a few utilities. Their reference
//!   is `dsl-docs/`, and the model's quick reference is `prompts/`.
//!
//! ```
//! let ctx = rlm::Context::from_string("log", "ok\nERROR disk\nok\nERROR net\n");
//! let mut session = rlm::dsl::SessionBuilder::new().build(&ctx);
//! let out = session.run_cell(r#"
//!     let hits = context.grep("ERROR");
//!     print(`${hits.len()} errors, first on line ${hits[0].line}`);
//! "#);
//! assert_eq!(out.output, "2 errors, first on line 2\n");
//! ```

mod api_array;
mod api_llm;
mod api_print;
mod api_sized;
mod api_text;
mod api_util;
mod budget;
mod clock;
pub(crate) mod convert;
mod engine;
mod hints;
mod host;
mod limits;
mod output;
mod session;
mod source;

pub use api_llm::LlmAccess;
pub use clock::{CellClock, ExternalStop, PauseGuard, StopReason};
pub use host::{
    HostError, HostFunction, HostFunctionError, HostFunctions, HostFuture, HostResult, ValueType,
};
pub use limits::Limits;
pub use session::{Answer, CellOutcome, Extension, Session, SessionBuilder, Shared, NO_OUTPUT};
