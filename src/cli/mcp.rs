//! `rlm mcp`: the MCP server over stdio. Standard output carries the
//! protocol alone; everything for a person goes to standard error.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rmcp::ServiceExt as _;

use rlm::preflight::Preflight;
use rlm::serve::mcp::McpServer;
use rlm::serve::{SessionLimits, Sessions};

use super::serve::{model_pairs, ServiceArgs};
use super::{values, LoadArgs, ModelArgs, RunLimitArgs};

/// Options of `rlm mcp`.
#[derive(clap::Args)]
pub(crate) struct McpArgs {
    /// Contexts open at once for context_open and rhai_run (1 to 1024)
    #[arg(long, default_value_t = 8, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    max_sessions: usize,
    /// Seconds an open context may go unused before it is closed
    #[arg(long, default_value_t = 1800.0, value_parser = values::seconds)]
    session_idle: f64,
    /// Memory one rhai_run session may hold, all its values together: e.g. 256M, 1G; all sessions together hold at most --max-sessions times this
    #[arg(long, default_value = "256M", value_parser = values::memory_bytes)]
    session_memory: usize,
    /// Operation limit of one rhai_run cell (1 or more) [default: 50000000]
    #[arg(long, value_parser = values::operations)]
    max_operations: Option<u64>,
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    limits: RunLimitArgs,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    models: ModelArgs,
}

pub(crate) fn run(args: McpArgs) -> anyhow::Result<ExitCode> {
    let settings = args.models.settings()?;
    if settings.model.is_some() {
        Preflight::new(&settings).settings_models().check()?;
    }
    let pairs = model_pairs(&settings, &[]);
    let models = super::Models::new(&settings)?;
    let runs = args
        .service
        .run_server(&settings, &args.limits, &args.load, pairs, &models)?;
    let mut cell = args.limits.run_config(&settings)?.limits;
    cell.max_memory_bytes = args.session_memory;
    if let Some(ops) = args.max_operations {
        cell.max_operations = ops;
    }
    let idle = Duration::from_secs_f64(args.session_idle);
    let sessions = Sessions::new(SessionLimits {
        max_sessions: args.max_sessions,
        idle,
        limits: cell,
    });
    super::eprint_text(&format!(
        "rlm mcp: serving on standard input and output; root {}{}",
        runs.root().dir().display(),
        match runs.pairs().first() {
            Some(p) => format!(", model {}", p.id),
            None => ", no --model: rlm_answer is unavailable".into(),
        }
    ));
    let server = McpServer::new(Arc::new(runs), Arc::new(sessions));
    let runtime = models.runtime;
    let served: anyhow::Result<()> = runtime.block_on(async {
        server.sweep_sessions(idle / 4);
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .context("starting the MCP session")?;
        running.waiting().await.context("serving MCP")?;
        Ok(())
    });
    // A read of standard input cannot be cancelled: do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    served?;
    super::warn_cache(&models.client);
    Ok(ExitCode::SUCCESS)
}
