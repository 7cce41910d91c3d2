//! `rlm serve`: the OpenAI-compatible endpoint, and the options it shares
//! with `rlm mcp` (the root, traces, runs at once, per-request budgets).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use rlm::config::Settings;
use rlm::llm::{Budgets, ModelSpec};
use rlm::preflight::Preflight;
use rlm::serve::{ModelPair, Root, RunServer, RunServerConfig};

use super::{values, LoadArgs, ModelArgs, RunLimitArgs};

/// What `rlm mcp` and `rlm serve` share besides models and limits.
#[derive(clap::Args)]
pub(crate) struct ServiceArgs {
    /// The directory every path a client names must be under; `..` and symlinks out of it are refused [default: the working directory]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Write one JSONL trace per run into this directory
    #[arg(long, value_name = "DIR")]
    trace_dir: Option<PathBuf>,
    /// Runs at once; more requests wait for a slot (1 to 4096)
    #[arg(long, default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    max_runs: usize,
    /// Model calls one run may make, unless its request asks for fewer
    #[arg(long, value_name = "N")]
    request_max_llm_calls: Option<u64>,
    /// Tokens one run may use, unless its request asks for fewer
    #[arg(long, value_name = "N")]
    request_max_tokens: Option<u64>,
    /// Dollars one run may spend, unless its request asks for less
    #[arg(long, value_name = "USD", value_parser = values::dollars)]
    request_max_cost: Option<f64>,
}

impl ServiceArgs {
    /// The run server every request of `rlm mcp` or `rlm serve` goes through.
    pub(crate) fn run_server(
        &self,
        settings: &Settings,
        limits: &RunLimitArgs,
        load: &LoadArgs,
        pairs: Vec<ModelPair>,
        models: &super::Models,
    ) -> anyhow::Result<RunServer> {
        let root = match &self.root {
            Some(dir) => Root::new(dir)?,
            None => Root::new(&std::env::current_dir().context("reading the working directory")?)?,
        };
        let base = limits.run_config(settings)?;
        let config = RunServerConfig {
            base,
            pairs,
            root,
            loader: load.builder_within(limits.timeout()?),
            trace_dir: self.trace_dir.clone(),
            per_request: Budgets {
                max_calls: self.request_max_llm_calls,
                max_tokens: self.request_max_tokens,
                max_cost_usd: self.request_max_cost,
            },
            max_runs: self.max_runs,
        };
        Ok(RunServer::new(
            models.client.clone(),
            models.runtime.handle().clone(),
            config,
        )?)
    }
}

/// The model pairs a server offers: `--model` with `--sub-model` first,
/// then each `--serve-model`.
pub(crate) fn model_pairs(settings: &Settings, more: &[String]) -> Vec<ModelPair> {
    let first = settings.model.as_deref().map(|m| {
        ModelPair::new(
            ModelSpec::parse(m),
            settings.sub_model.as_deref().map(ModelSpec::parse),
        )
    });
    first
        .into_iter()
        .chain(more.iter().map(|m| ModelPair::parse(m)))
        .collect()
}

/// Options of `rlm serve`.
#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; a port of 0 picks a free one (printed on standard error)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    listen: String,
    /// Allow --listen on an address other than loopback (then set --auth-token-env too)
    #[arg(long)]
    allow_remote: bool,
    /// Require `Authorization: Bearer TOKEN`, TOKEN read from this environment variable
    #[arg(long, value_name = "VAR")]
    auth_token_env: Option<String>,
    /// Largest request body, e.g. 32M; a larger one gets 413 (1K to 1G)
    #[arg(long, default_value = "32M", value_parser = values::response_bytes)]
    max_body_size: u64,
    /// Another model pair to offer, ROOT or ROOT,SUB, as the model `rlm/ROOT` (repeatable); --model and --sub-model are the first
    #[arg(long, value_name = "ROOT[,SUB]")]
    serve_model: Vec<String>,
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    limits: RunLimitArgs,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    models: ModelArgs,
}

/// The address to bind: every address `listen` names must be loopback
/// unless `allow_remote`.
fn listen_address(listen: &str, allow_remote: bool) -> anyhow::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = listen
        .to_socket_addrs()
        .with_context(|| format!("--listen {listen:?} is not a HOST:PORT address"))?
        .collect();
    let Some(first) = addrs.first().copied() else {
        anyhow::bail!("--listen {listen:?} names no address");
    };
    if !allow_remote {
        if let Some(remote) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            anyhow::bail!(
                "--listen {listen} is not a loopback address ({remote}): anyone who can reach it could spend your model budget. Add --allow-remote (and --auth-token-env) to serve it"
            );
        }
    }
    Ok(first)
}

/// The bearer token, from the variable `--auth-token-env` names.
fn auth_token(var: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(var) = var else {
        return Ok(None);
    };
    match std::env::var(var) {
        Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
        _ => anyhow::bail!(
            "--auth-token-env {var}: the environment variable {var} is not set or empty"
        ),
    }
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = args.models.settings()?;
    anyhow::ensure!(
        settings.model.is_some(),
        "no root model: pass --model (e.g. --model gpt-5) or set RLM_MODEL; requests name it as rlm/MODEL"
    );
    Preflight::new(&settings).settings_models().check()?;
    let addr = listen_address(&args.listen, args.allow_remote)?;
    let token = auth_token(args.auth_token_env.as_deref())?;
    if token.is_none() && !addr.ip().is_loopback() {
        super::eprint_text(&format!(
            "rlm serve: warning: {addr} is not loopback and no --auth-token-env is set: anyone who reaches it can run models on your keys"
        ));
    }
    let pairs = model_pairs(&settings, &args.serve_model);
    let models = super::Models::new(&settings)?;
    let runs = args
        .service
        .run_server(&settings, &args.limits, &args.load, pairs, &models)?;
    let ids: Vec<String> = runs.pairs().iter().map(|p| p.id.clone()).collect();
    let http = rlm::serve::openai::HttpConfig {
        auth_token: token,
        max_body_bytes: usize::try_from(args.max_body_size).unwrap_or(usize::MAX),
    };
    let app = rlm::serve::openai::app(Arc::new(runs), http);
    models.runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        super::eprint_text(&format!(
            "rlm serve: listening on http://{bound}/v1 (models: {})",
            ids.join(", ")
        ));
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")
    })?;
    super::warn_cache(&models.client);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_served_and_other_addresses_need_allow_remote() {
        assert!(listen_address("127.0.0.1:0", false).is_ok());
        assert!(listen_address("[::1]:0", false).is_ok());
        let e = listen_address("0.0.0.0:8080", false).unwrap_err();
        assert!(e.to_string().contains("--allow-remote"), "{e}");
        assert!(listen_address("0.0.0.0:8080", true).is_ok());
    }
}
