//! `rlm batch` machinery: 200 tasks against a loopback server with 50 ms
//! latency per call. Each task is one root turn that makes one sub-call and
//! submits (two calls, 100 ms of model latency).
//!
//! Prints tasks per second, the ideal for the job count, and the overhead
//! per task beyond model latency.
//!
//! ```text
//! cargo bench --bench batch_throughput
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use rlm::batch::{BatchOptions, BatchRunner, ResultsFile, Task, TaskContext};
use rlm::driver::RunConfig;
use rlm::llm::{Budgets, Ledger, LlmClient, LlmConfig, ModelSpec, PriceTable};
use rlm::testing::{MockServer, Reply};
use rlm::ContextBuilder;

const TASKS: usize = 200;
const LATENCY: Duration = Duration::from_millis(50);

fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn main() {
    let server = MockServer::start(|req| {
        let root = req
            .system()
            .is_some_and(|s| s.contains("Recursive Language Model"));
        let reply = if root {
            Reply::openai_text("```rhai\nlet n = context.count(\"x\");\nlet a = llm_query(`say ${n}`);\nsubmit(a);\n```", 900, 40)
        } else {
            Reply::openai_text(&req.prompt().replace("say ", ""), 20, 2)
        };
        reply.after(LATENCY)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for jobs in [16, 64] {
        let client = LlmClient::new(
            LlmConfig {
                openai_base_url: server.openai_url(),
                concurrency: 128,
                ..LlmConfig::default()
            },
            Arc::new(Ledger::new(PriceTable::default(), Budgets::default())),
        )
        .unwrap();
        let runner = BatchRunner::new(
            client.clone(),
            runtime.handle().clone(),
            BatchOptions {
                jobs,
                shard: None,
                retry: rlm::batch::Retry::default(),
                replay: None,
                trace_dir: None,
                base: RunConfig {
                    model: ModelSpec::parse("gpt-5"),
                    sub_model: Some(ModelSpec::parse("gpt-5-mini")),
                    ..RunConfig::default()
                },
                loader: ContextBuilder::new(),
            },
        );
        let tasks: Vec<Task> = (0..TASKS)
            .map(|i| {
                Task::new(
                    format!("t{i}"),
                    "How many x?",
                    TaskContext::Inline("x".repeat(i % 7 + 1)),
                )
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let (out, existing) = ResultsFile::open(&dir.path().join("out.jsonl")).unwrap();
        let cpu0 = cpu_time();
        let t0 = Instant::now();
        let summary = runner.run(tasks, &out, &existing.results);
        let wall = t0.elapsed().as_secs_f64();
        let cpu = (cpu_time() - cpu0).as_secs_f64();
        assert_eq!(summary.submitted, TASKS, "{summary:?}");
        let ideal = (TASKS as f64 / jobs as f64).ceil() * 2.0 * LATENCY.as_secs_f64();
        println!(
            "rlm batch: {TASKS} tasks, 2 calls of {} ms each, --jobs {jobs}",
            LATENCY.as_millis()
        );
        println!(
            "  wall        {wall:.3} s   ({:.1} tasks/s)",
            TASKS as f64 / wall
        );
        println!(
            "  ideal       {ideal:.3} s   ({:.1} tasks/s)",
            TASKS as f64 / ideal
        );
        println!(
            "  overhead    {:.1} ms per task beyond model latency",
            (wall - ideal) * jobs as f64 / TASKS as f64 * 1000.0
        );
        println!(
            "  cpu         {:.1} ms per task (client, sessions, cells and loopback server)",
            cpu * 1000.0 / TASKS as f64
        );
    }
}
