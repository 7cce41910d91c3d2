//! `rlm eval`: generate a task family, run it as RLM tasks through the batch
//! machinery (and optionally as plain model calls), score, and tabulate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use rlm::batch::{BatchOptions, BatchRunner, Retry, Task, TaskContext};
use rlm::driver::RunConfig;
use rlm::dsl::Limits;
use rlm::eval::{self, EvalTask, Family, Pool};
use rlm::llm::{CallOptions, CallTag, ChatRequest, LlmClient, ModelSpec};
use rlm::stats::BYTES_PER_TOKEN;

use super::{LoadArgs, ModelArgs};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Baseline {
    /// The plain model on the whole context, truncated to its window.
    Direct,
}

/// Options of `rlm eval`.
#[derive(clap::Args)]
pub(crate) struct EvalArgs {
    /// The task family: niah, oolong or pairs.
    pub(crate) task: String,
    /// Tasks per length.
    #[arg(long, default_value_t = 5)]
    pub(crate) n: usize,
    /// Context lengths in tokens (k = 1024, m = 1048576).
    #[arg(long, default_value = "8k,32k")]
    pub(crate) lengths: String,
    /// Seed of the generator; the same seed gives the same tasks.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Question pool for oolong and pairs: a JSON-lines file with `input` and `label`, or `builtin` for the compiled-in 4,151 TREC questions.
    #[arg(long, default_value = "builtin")]
    pub(crate) pool: String,
    /// Also run the plain model on each context, for comparison.
    #[arg(long, value_enum)]
    pub(crate) baseline: Option<Baseline>,
    /// The baseline model's context window in tokens (contexts are cut to fit) [default: --sub-context-tokens]
    #[arg(long)]
    pub(crate) baseline_window: Option<usize>,
    /// Tasks running at once, 1 to 1024.
    #[arg(long, default_value_t = 4, value_parser = super::values::jobs)]
    pub(crate) jobs: usize,
    /// Keep the RLM results (JSONL) here; re-running resumes.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// One trace per task in this directory.
    #[arg(long)]
    pub(crate) trace_dir: Option<PathBuf>,
    /// Root turns per task.
    #[arg(long, default_value_t = 30)]
    pub(crate) max_iterations: usize,
    /// Wall-clock limit per task, in seconds.
    #[arg(long, value_parser = super::values::seconds)]
    pub(crate) task_timeout: Option<f64>,
    /// Print the table as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Print every step of every task on standard error as it happens, each line starting with the task id (replaces the progress bar).
    #[arg(long, short = 'v')]
    pub(crate) verbose: bool,
    #[command(flatten)]
    pub(crate) models: ModelArgs,
}

/// One line of the results table.
#[derive(Debug, Clone, Serialize)]
struct Row {
    family: String,
    length: String,
    method: String,
    n: usize,
    score: f64,
    /// `None` (null) when a model used has no known price.
    cost_usd: Option<f64>,
    mean_wall_s: f64,
    p95_wall_s: f64,
    mean_calls: f64,
    /// For the baseline: tasks whose context was cut to fit the window.
    truncated: usize,
    failed: usize,
}

/// One scored attempt.
struct Attempt {
    task: usize,
    method: &'static str,
    score: f64,
    cost_usd: Option<f64>,
    wall_s: f64,
    calls: u64,
    truncated: bool,
    failed: bool,
}

pub(crate) fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let family: Family = args.task.parse()?;
    let lengths = eval::parse_lengths(&args.lengths)?;
    let mut settings = args.models.settings()?;
    let replay = super::batch::replay_dir(args.models.model.as_deref())?;
    if replay.is_some() {
        settings.model = None;
        if args.models.sub_model.is_none() {
            settings.sub_model = None;
        }
        anyhow::ensure!(
            args.baseline.is_none(),
            "--baseline direct cannot be replayed: its calls are not recorded in the task traces"
        );
    }
    anyhow::ensure!(
        settings.model.is_some() || replay.is_some(),
        "no model to evaluate: pass --model (and optionally --sub-model), or set RLM_MODEL"
    );
    anyhow::ensure!(args.n > 0, "--n must be at least 1");
    let pool = if args.pool == "builtin" {
        Pool::builtin()
    } else {
        // The error names the path and the OS error; add only the way out.
        Pool::load(&args.pool).map_err(|e| {
            anyhow::anyhow!(
                "{e}; leave out --pool (or pass --pool builtin) for the compiled-in 4,151 questions"
            )
        })?
    };
    let tasks = eval::generate(family, args.seed, args.n, &lengths, &pool)?;
    rlm::preflight::Preflight::new(&settings)
        .settings_models()
        .check()?;

    let super::Models { runtime, client } = super::Models::new(&settings)?;
    let model = ModelSpec::parse(settings.model.as_deref().unwrap_or_default());

    let mut attempts = run_rlm(&args, &settings, &runtime, &client, &tasks, replay)?;
    if args.baseline == Some(Baseline::Direct) {
        let window = args.baseline_window.unwrap_or(settings.sub_context_tokens);
        attempts.extend(run_direct(&runtime, &client, &model, &tasks, window));
    }
    let rows = tabulate(&tasks, &attempts);
    if args.json {
        super::write_stdout(&format!("{}\n", serde_json::to_string_pretty(&rows)?))?;
    } else {
        super::write_text(&markdown(&rows))?;
    }
    super::warn_cache(&client);
    Ok(ExitCode::SUCCESS)
}

fn run_rlm(
    args: &EvalArgs,
    settings: &rlm::config::Settings,
    runtime: &tokio::runtime::Runtime,
    client: &LlmClient,
    tasks: &[EvalTask],
    replay: Option<PathBuf>,
) -> anyhow::Result<Vec<Attempt>> {
    let temp;
    let out_path = match &args.out {
        Some(p) => p.clone(),
        None => {
            temp = tempfile::NamedTempFile::new().context("creating a temporary results file")?;
            temp.path().to_path_buf()
        }
    };
    super::batch::prepare_trace_dir(args.trace_dir.as_deref(), replay.as_deref())?;
    let (out, existing) = super::batch::open_results(&out_path)?;
    let base = RunConfig {
        model: ModelSpec::parse(settings.model.as_deref().unwrap_or_default()),
        sub_model: settings.sub_model.as_deref().map(ModelSpec::parse),
        max_iterations: args.max_iterations.max(1),
        // In range: the flag's parser checked it.
        timeout: args.task_timeout.map(Duration::from_secs_f64),
        limits: Limits::default(),
        sub_context_tokens: settings.sub_context_tokens,
        ..RunConfig::default()
    };
    let runner = BatchRunner::new(
        client.clone(),
        runtime.handle().clone(),
        BatchOptions {
            jobs: args.jobs,
            shard: None,
            retry: Retry::default(),
            trace_dir: args.trace_dir.clone(),
            replay,
            base,
            loader: LoadArgs::default_builder(),
        },
    );
    let runner = super::verbose_tasks(runner, args.verbose, settings);
    let batch: Vec<Task> = tasks
        .iter()
        .map(|t| {
            Task::new(
                t.id.clone(),
                t.query.clone(),
                TaskContext::Inline(t.context.clone()),
            )
        })
        .collect();
    let summary = super::batch::run_with_progress(
        runtime,
        &runner,
        batch,
        &out,
        &existing,
        args.quiet || args.verbose,
    );
    if let Some(e) = &summary.results_error {
        anyhow::bail!("{e}; the scores need every result written");
    }
    anyhow::ensure!(
        !summary.interrupted,
        "interrupted; re-run with the same --out to resume"
    );
    let results = out.results()?;
    Ok(tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let r = results.get(&t.id);
            let answer = r.and_then(|r| r.answer.as_ref()).map(|a| match a {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            let calls = r
                .and_then(|r| r.usage.as_object())
                .map(|m| m.values().filter_map(|u| u["calls"].as_u64()).sum())
                .unwrap_or(0);
            Attempt {
                task: i,
                method: "rlm",
                score: answer.as_deref().map_or(0.0, |a| eval::score(t, a)),
                cost_usd: r.map_or(Some(0.0), |r| r.cost_usd.filter(|_| all_priced(&r.usage))),
                wall_s: r.map_or(0.0, |r| r.wall_s),
                calls,
                truncated: false,
                failed: r.is_none_or(|r| r.status != "submitted"),
            }
        })
        .collect())
}

/// The plain model on each context, cut to `window` tokens.
fn run_direct(
    runtime: &tokio::runtime::Runtime,
    client: &LlmClient,
    model: &ModelSpec,
    tasks: &[EvalTask],
    window: usize,
) -> Vec<Attempt> {
    let budget_bytes = window.saturating_mul(BYTES_PER_TOKEN).saturating_sub(2048);
    runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (i, t) in tasks.iter().enumerate() {
            let (client, model) = (client.clone(), model.clone());
            let truncated = t.context.len() > budget_bytes;
            let mut cut = budget_bytes.min(t.context.len());
            while !t.context.is_char_boundary(cut) {
                cut -= 1;
            }
            let prompt = format!(
                "{}{}\n\nQuestion: {}",
                &t.context[..cut],
                if truncated {
                    "\n[... context truncated to fit the model's window ...]"
                } else {
                    ""
                },
                t.query
            );
            set.spawn(async move {
                let request = ChatRequest {
                    system: Some("Answer the question about the text.".into()),
                    ..ChatRequest::prompt(prompt)
                };
                let options = CallOptions {
                    context_window: None,
                    tag: CallTag {
                        kind: "baseline",
                        ..CallTag::default()
                    },
                };
                let before = client.ledger().totals().cost_usd;
                let started = Instant::now();
                let result = client.complete(&model, &request, &options).await;
                let cost = (client.ledger().totals().cost_usd - before).max(0.0);
                let priced = client
                    .ledger()
                    .by_model()
                    .get(&model.name)
                    .is_none_or(|u| u.cost().is_some());
                let cost = priced.then_some(cost);
                (i, result, started.elapsed().as_secs_f64(), cost, truncated)
            });
        }
        let mut out = Vec::new();
        while let Some(done) = set.join_next().await {
            let Ok((i, result, wall_s, cost_usd, truncated)) = done else {
                continue;
            };
            out.push(Attempt {
                task: i,
                method: "direct",
                score: result
                    .as_ref()
                    .map_or(0.0, |c| eval::score(&tasks[i], &c.text)),
                cost_usd,
                wall_s,
                calls: 1,
                truncated,
                failed: result.is_err(),
            });
        }
        out
    })
}

/// Whether every model in a result line's `usage` had a known price (or
/// used no tokens), so its `cost_usd` is the whole cost.
fn all_priced(usage: &serde_json::Value) -> bool {
    usage.as_object().is_none_or(|models| {
        models.values().all(|u| {
            let tokens =
                u["input_tokens"].as_u64().unwrap_or(0) + u["output_tokens"].as_u64().unwrap_or(0);
            u["priced"].as_bool() != Some(false) || tokens == 0
        })
    })
}

fn tabulate(tasks: &[EvalTask], attempts: &[Attempt]) -> Vec<Row> {
    let mut groups: BTreeMap<(Family, usize, &str), Vec<&Attempt>> = BTreeMap::new();
    for a in attempts {
        let t = &tasks[a.task];
        groups
            .entry((t.family, t.length_tokens, a.method))
            .or_default()
            .push(a);
    }
    groups
        .into_iter()
        .map(|((family, length, method), group)| {
            let n = group.len();
            let mut walls: Vec<f64> = group.iter().map(|a| a.wall_s).collect();
            walls.sort_by(f64::total_cmp);
            let p95 = walls[((n as f64 * 0.95).ceil() as usize).clamp(1, n) - 1];
            Row {
                family: family.to_string(),
                length: eval::format_length(length),
                method: method.to_string(),
                n,
                score: group.iter().map(|a| a.score).sum::<f64>() / n as f64,
                cost_usd: group.iter().map(|a| a.cost_usd).sum(),
                mean_wall_s: walls.iter().sum::<f64>() / n as f64,
                p95_wall_s: p95,
                mean_calls: group.iter().map(|a| a.calls as f64).sum::<f64>() / n as f64,
                truncated: group.iter().filter(|a| a.truncated).count(),
                failed: group.iter().filter(|a| a.failed).count(),
            }
        })
        .collect()
}

fn markdown(rows: &[Row]) -> String {
    let mut s = String::from("| task | length | method | n | score | cost $ | mean wall s | p95 wall s | calls/task | truncated | failed |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.3} | {} | {:.2} | {:.2} | {:.1} | {} | {} |\n",
            r.family,
            r.length,
            r.method,
            r.n,
            r.score,
            r.cost_usd
                .map_or_else(|| "unknown".to_string(), |c| format!("{c:.4}")),
            r.mean_wall_s,
            r.p95_wall_s,
            r.mean_calls,
            r.truncated,
            r.failed
        ));
    }
    s
}
