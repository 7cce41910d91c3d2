//! `rlm mcp`: the RLM as Model Context Protocol tools, over the official
//! Rust SDK (`rmcp`).
//!
//! Two ways to use it, as the peers that inspired it offer them:
//!
//! * `rlm_answer`: a whole RLM run with the server's models (aleph and
//!   better-rlm's "hand the big file to the RLM"); it returns the answer,
//!   status, usage, cost and the trace path, and sends a progress
//!   notification at each step when the client asked for them (a
//!   `progressToken` in the request's `_meta`).
//! * `context_open`, `rhai_run`, `context_search`, `context_close`: the
//!   client's own model is the root (aleph's pattern). It opens a context,
//!   then runs Rhai cells in a persistent session over it, with the
//!   limits, errors and hints of `rlm run`'s cells ([`Sessions`]).
//!
//! Every path is confined to the server's root ([`super::Root`]). A
//! refused path, a failed load, a script error or a budget stop is a tool
//! result with `isError: true` and a message for the client's model; only
//! malformed calls are protocol errors.

use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, Implementation, ProgressNotificationParam, RequestMetaObject,
    ServerCapabilities, ServerConfig,
};
use rmcp::{tool, tool_handler, tool_router, ErrorData, Peer, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::{Progress, RunOptions, RunServer, SearchOptions, ServeError, Sessions};
use crate::llm::Budgets;

/// What the server tells a client's model about itself.
const INSTRUCTIONS: &str = "rlm answers questions about files too large for a prompt. \
rlm_answer runs a whole Recursive Language Model over the files and returns its answer. \
To explore the files yourself, context_open them, then run Rhai code with rhai_run: \
`context` is the whole text, `documents` each file; print() what you want to see \
(e.g. `print(context.grep(\"ERROR\").len());`, `print(context.lines(1, 20));`). \
Variables persist between rhai_run calls on the same id. context_search finds lines by regex. \
Paths are relative to the server's root directory; nothing outside it can be read.";

/// The tools of `rlm mcp`. See the module docs.
#[derive(Clone)]
pub struct McpServer {
    runs: Arc<RunServer>,
    sessions: Arc<Sessions>,
    #[allow(dead_code)] // read by the code `tool_handler` generates
    tool_router: ToolRouter<McpServer>,
}

/// `rlm_answer`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AnswerArgs {
    /// The question to answer about the files.
    pub question: String,
    /// Files or directories, relative to the server's root (or absolute
    /// paths under it). Directories are read recursively, honouring .gitignore.
    pub paths: Vec<String>,
    /// Limits for this run; the server's own limits still apply.
    #[serde(default)]
    pub options: Option<AnswerOptions>,
}

/// Limits of one `rlm_answer` run.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct AnswerOptions {
    /// Root-model turns before the run must answer (at most the server's limit).
    pub max_iterations: Option<usize>,
    /// Model calls this run may make.
    pub max_llm_calls: Option<u64>,
    /// Tokens this run may use, input and output together.
    pub max_tokens: Option<u64>,
    /// Dollars this run may spend.
    pub max_cost_usd: Option<f64>,
    /// Seconds the whole run may take.
    pub timeout_s: Option<f64>,
}

/// `context_open`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct OpenArgs {
    /// Files or directories, relative to the server's root (or absolute
    /// paths under it). Directories are read recursively, honouring .gitignore.
    pub paths: Vec<String>,
}

/// `rhai_run`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunArgs {
    /// The id context_open returned.
    pub id: String,
    /// Rhai code. `context` is the whole text, `documents` an array of the
    /// files; print() shows values; variables persist between calls.
    pub code: String,
}

/// `context_search`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// The id context_open returned.
    pub id: String,
    /// A regular expression (Rust syntax), matched line by line.
    pub pattern: String,
    #[serde(default)]
    pub options: Option<SearchArgOptions>,
}

/// How `context_search` searches.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SearchArgOptions {
    /// Match regardless of case.
    #[serde(default)]
    pub case_insensitive: bool,
    /// Most lines returned (default 100, at most 1000).
    pub max_results: Option<usize>,
    /// Lines of context before each hit (at most 20).
    #[serde(default)]
    pub before: usize,
    /// Lines of context after each hit (at most 20).
    #[serde(default)]
    pub after: usize,
}

/// `context_close`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CloseArgs {
    /// The id context_open returned.
    pub id: String,
}

impl McpServer {
    /// The tools over `runs` (models, root, limits) and `sessions`.
    pub fn new(runs: Arc<RunServer>, sessions: Arc<Sessions>) -> McpServer {
        McpServer {
            runs,
            sessions,
            tool_router: Self::tool_router(),
        }
    }

    /// Closes idle sessions every `every`, until the runtime stops.
    pub fn sweep_sessions(&self, every: Duration) {
        let sessions = self.sessions.clone();
        self.runs.handle().spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
            loop {
                tick.tick().await;
                sessions.expire();
            }
        });
    }

    /// Runs blocking work (loading files, running a cell) off the
    /// runtime's workers.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, ServeError> + Send + 'static,
    ) -> Result<T, ServeError> {
        match tokio::task::spawn_blocking(work).await {
            Ok(r) => r,
            Err(e) => Err(ServeError::Internal(e.to_string())),
        }
    }
}

/// A tool result saying what went wrong, for the client's model.
fn refused(e: &ServeError) -> CallToolResult {
    CallToolResult::structured_error(json!({ "error": e.to_string() }))
}

#[tool_router]
impl McpServer {
    #[tool(
        description = "Answer a question about files too large to read whole: runs a Recursive Language Model (a root model writing Rhai code over the files, calling sub-models on pieces) and returns {answer, status, usage, cost_usd, trace}. status is \"submitted\" when the run answered; otherwise `error` says why (a budget, the iteration limit, a failed model). Sends progress notifications while it runs. Takes seconds to minutes."
    )]
    async fn rlm_answer(
        &self,
        Parameters(args): Parameters<AnswerArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let runs = self.runs.clone();
        let paths = args.paths.clone();
        let context = match self.blocking(move || runs.load(&paths)).await {
            Ok(c) => c,
            Err(e) => return Ok(refused(&e)),
        };
        let opts = args.options.unwrap_or_default();
        let timeout = match opts.timeout_s.map(crate::config::seconds) {
            Some(Err(e)) => {
                return Err(ErrorData::invalid_params(
                    format!("options.timeout_s: {e}"),
                    None,
                ))
            }
            Some(Ok(t)) => Some(t),
            None => None,
        };
        let mut options = RunOptions {
            budgets: Budgets {
                max_calls: opts.max_llm_calls,
                max_tokens: opts.max_tokens,
                max_cost_usd: opts.max_cost_usd,
            },
            max_iterations: opts.max_iterations,
            timeout,
            ..RunOptions::default()
        };
        let forwarder = meta.get_progress_token().map(|token| {
            let (sink, mut steps) = Progress::channel();
            options.sink = Some(sink);
            tokio::spawn(async move {
                while let Some(step) = steps.recv().await {
                    let note = ProgressNotificationParam::new(token.clone(), step.number as f64)
                        .with_message(step.message);
                    if peer.notify_progress(note).await.is_err() {
                        break;
                    }
                }
            })
        });
        let answered = self.runs.answer(&args.question, &context, options).await;
        // The last notifications go out before the result does.
        if let Some(f) = forwarder {
            let _ = tokio::time::timeout(Duration::from_secs(5), f).await;
        }
        let answered = match answered {
            Ok(a) => a,
            Err(e) => return Ok(refused(&e)),
        };
        let r = &answered.result;
        let body = json!({
            "answer": r.answer,
            "answer_text": r.answer_text,
            "status": r.status,
            "iterations": r.iterations,
            "usage": crate::llm::usage_json(&r.usage),
            "totals": crate::llm::totals_json(&r.totals, r.cost()),
            "cost_usd": r.cost(),
            "wall_s": r.wall_s,
            "error": r.error,
            "trace": answered.trace.as_ref().map(|p| p.display().to_string()),
        });
        Ok(match r.answer {
            Some(_) => CallToolResult::structured(body),
            None => CallToolResult::structured_error(body),
        })
    }

    #[tool(
        description = "Open files or directories as one context for rhai_run and context_search. Returns {id, summary: {documents, bytes, lines, listed: [{name, bytes}], skipped}}. Close it with context_close when done; unused contexts close on their own after a while."
    )]
    async fn context_open(
        &self,
        Parameters(args): Parameters<OpenArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let runs = self.runs.clone();
        let sessions = self.sessions.clone();
        let opened = self
            .blocking(move || {
                let context = runs.load(&args.paths)?;
                Ok(sessions.open(context)?)
            })
            .await;
        Ok(match opened {
            Ok((id, summary)) => CallToolResult::structured(json!({
                "id": id,
                "summary": summary,
                "limits": self.limits_json(),
            })),
            Err(e) => refused(&e),
        })
    }

    #[tool(
        description = "Run Rhai code in the persistent session of an open context. `context` is the whole text and `documents` the files (each a text with .name()); useful calls: context.grep(pattern), context.find_all(s), context.lines(from, to), context.line(n), text.chunks(n), len(). print() what you want to see; variables and fn definitions persist between calls. Returns {output, error, truncated, submitted, duration_s}. Errors carry the line, column and a hint. Cells are limited in time, operations and memory."
    )]
    async fn rhai_run(
        &self,
        Parameters(args): Parameters<RunArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let sessions = self.sessions.clone();
        let ran = self
            .blocking(move || Ok(sessions.run(&args.id, &args.code)?))
            .await;
        let outcome = match ran {
            Ok(o) => o,
            Err(e) => return Ok(refused(&e)),
        };
        let output = match outcome.output.as_str() {
            crate::dsl::NO_OUTPUT if outcome.error.is_some() => "",
            o => o,
        };
        let body = json!({
            "output": output,
            "error": outcome.error,
            "truncated": outcome.truncated,
            "submitted": outcome.submitted.as_ref().map(|a| a.value.clone()),
            "duration_s": outcome.duration.as_secs_f64(),
        });
        Ok(match outcome.error {
            Some(_) => CallToolResult::structured_error(body),
            None => CallToolResult::structured(body),
        })
    }

    #[tool(
        description = "Find the lines of an open context that match a regular expression. Returns {hits: [{document, line, offset, text, context?}], count}; `line` is the line number context.line(n) reads in rhai_run."
    )]
    async fn context_search(
        &self,
        Parameters(args): Parameters<SearchArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let o = args.options.unwrap_or_default();
        let options = SearchOptions {
            case_insensitive: o.case_insensitive,
            max: o.max_results,
            before: o.before,
            after: o.after,
        };
        let sessions = self.sessions.clone();
        let found = self
            .blocking(move || Ok(sessions.search(&args.id, &args.pattern, &options)?))
            .await;
        Ok(match found {
            Ok(hits) => CallToolResult::structured(json!({ "count": hits.len(), "hits": hits })),
            Err(e) => refused(&e),
        })
    }

    #[tool(
        description = "Close an open context and free what its session holds. Returns {closed}."
    )]
    async fn context_close(
        &self,
        Parameters(args): Parameters<CloseArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let closed = self.sessions.close(&args.id);
        Ok(match closed {
            true => CallToolResult::structured(json!({ "closed": true })),
            false => CallToolResult::structured_error(json!({
                "closed": false,
                "error": format!("no open context has id {:?}", args.id),
            })),
        })
    }
}

impl McpServer {
    fn limits_json(&self) -> serde_json::Value {
        let s = self.sessions.limits();
        json!({
            "cell_timeout_s": s.limits.cell_timeout.as_secs_f64(),
            "max_operations": s.limits.max_operations,
            "max_memory_bytes": s.limits.max_memory_bytes,
            "idle_expiry_s": s.idle.as_secs(),
            "max_open_contexts": s.max_sessions,
        })
    }
}

#[tool_handler]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("rlm", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}
