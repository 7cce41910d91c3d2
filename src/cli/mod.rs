//! The `rlm` command line: a thin shell over the library. Each command
//! has its module; this one holds the shared flags and the entry point.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use std::sync::Arc;

use rlm::config::{Overrides, Settings};
use rlm::dsl::{Limits, LlmAccess, SessionBuilder};
use rlm::llm::{Ledger, LlmClient, ModelSpec};
use rlm::stats::ContextStats;

mod batch;
mod eval;
mod install;
mod mcp;
mod parse;
mod run;
mod serve;
mod sigbus;
mod values;
mod view;
use rlm::ContextBuilder;

#[derive(Parser)]
#[command(
    name = "rlm",
    version,
    about = "A fast, sandboxed runtime for Recursive Language Models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every command that loads a context.
#[derive(clap::Args)]
pub(crate) struct LoadArgs {
    /// Include hidden files and directories when walking a directory.
    #[arg(long)]
    hidden: bool,
    /// Include files that look binary when walking a directory or glob.
    #[arg(long)]
    binary: bool,
    /// Walk into what .gitignore, .ignore and git's excludes leave out (they apply outside git repositories too).
    #[arg(long)]
    no_ignore: bool,
    /// Load .gz, .zst, .bz2 and .xz files as they are instead of decompressing them (found by their first bytes).
    #[arg(long)]
    no_decompress: bool,
    /// Copy the input into memory instead of mapping it (immune to files changing underneath).
    #[arg(long)]
    snapshot: bool,
    /// Most bytes read from standard input or a FIFO, or decompressed from one compressed file (plain files are mapped, not read): e.g. 512M, 4G [default: 4G]
    #[arg(long, value_parser = values::nonzero_size)]
    max_stream_size: Option<u64>,
    /// Seconds standard input or a FIFO may send nothing before loading fails [default: 60]
    #[arg(long, value_parser = values::seconds)]
    read_timeout: Option<f64>,
}

impl LoadArgs {
    /// The default loader, for commands without load flags.
    pub(crate) fn default_builder() -> ContextBuilder {
        ContextBuilder::new()
    }

    pub(crate) fn builder(&self) -> ContextBuilder {
        ContextBuilder::new()
            .hidden(self.hidden)
            .binary(self.binary)
            .ignore(!self.no_ignore)
            .decompress(!self.no_decompress)
            .snapshot(self.snapshot)
            .max_stream_bytes(
                self.max_stream_size
                    .unwrap_or(rlm::context::DEFAULT_MAX_STREAM_BYTES),
            )
            .read_timeout(self.read_timeout())
    }

    /// `--read-timeout`, range-checked by its parser.
    fn read_timeout(&self) -> Duration {
        self.read_timeout
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(rlm::context::DEFAULT_READ_TIMEOUT)
    }

    /// The loader of a command with a wall-clock limit: a stream waits for
    /// data no longer than that either.
    pub(crate) fn builder_within(&self, timeout: Option<Duration>) -> ContextBuilder {
        let wait = self.read_timeout();
        let wait = timeout
            .filter(|t| !t.is_zero())
            .map_or(wait, |t| t.min(wait));
        self.builder().read_timeout(wait)
    }
}

/// Model and provider options shared by every command that calls models.
#[derive(clap::Args)]
pub(crate) struct ModelArgs {
    /// The root model, e.g. gpt-5, anthropic:claude-sonnet-4-5, qwen2.5-coder:32b [env: RLM_MODEL]
    #[arg(long)]
    model: Option<String>,
    /// The model llm_query and llm_batch call; defaults to --model [env: RLM_SUB_MODEL]
    #[arg(long)]
    sub_model: Option<String>,
    /// Base URL of an OpenAI-compatible API, e.g. http://localhost:11434/v1; OPENAI_API_KEY goes to it only when OPENAI_BASE_URL names it too [env: OPENAI_BASE_URL]
    #[arg(long)]
    base_url: Option<String>,
    /// Base URL of the Anthropic API; ANTHROPIC_API_KEY goes to it only when ANTHROPIC_BASE_URL names it too [env: ANTHROPIC_BASE_URL]
    #[arg(long)]
    anthropic_base_url: Option<String>,
    /// Base URL of the sub-model's endpoint when it is not the root's, e.g. a local server for sub-calls; needs a --sub-model of its own, and gets no key unless one is paired with it
    #[arg(long)]
    sub_base_url: Option<String>,
    /// Directory of the response cache: a call made before with the same model, endpoint, messages and options is answered from it, free, sent nowhere and counted in no budget
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// How --cache is used: read (hits only, never writes), write (never reads), readwrite, or off [default: readwrite]
    #[arg(long, value_name = "MODE", value_parser = values::cache_mode)]
    cache_mode: Option<rlm::llm::CacheMode>,
    /// Sub-model calls in flight at once, across the whole run, 1 to 1024 [default: 16]
    #[arg(long, value_parser = values::concurrency)]
    concurrency: Option<usize>,
    /// Call starts per minute, across the whole run
    #[arg(long)]
    rpm: Option<u32>,
    /// Seconds allowed for one attempt of one call, the whole response included [default: 600]
    #[arg(long, value_parser = values::seconds)]
    request_timeout: Option<f64>,
    /// The largest response body read, e.g. 64M; a longer one fails the call (1K to 1G) [default: 16M]
    #[arg(long, value_parser = values::response_bytes)]
    max_response_bytes: Option<u64>,
    /// Retries of a call after 429, 5xx, timeouts or dropped connections [default: 5]
    #[arg(long)]
    max_retries: Option<u32>,
    /// The sub-model's context window in tokens; larger prompts are refused [default: 128000]
    #[arg(long)]
    sub_context_tokens: Option<usize>,
    /// Stop making model calls after this many [env: RLM_MAX_LLM_CALLS]
    #[arg(long)]
    max_llm_calls: Option<u64>,
    /// Stop making model calls after this many tokens in total [env: RLM_MAX_TOKENS]
    #[arg(long)]
    max_tokens: Option<u64>,
    /// Stop making model calls after this cost in USD (0 or more)
    #[arg(long, value_parser = values::dollars)]
    max_cost: Option<f64>,
    /// Config file [default: ./rlm.toml when present]
    #[arg(long)]
    config: Option<PathBuf>,
}

impl ModelArgs {
    pub(crate) fn settings(&self) -> anyhow::Result<Settings> {
        let overrides = Overrides {
            model: self.model.clone(),
            sub_model: self.sub_model.clone(),
            base_url: self.base_url.clone(),
            anthropic_base_url: self.anthropic_base_url.clone(),
            sub_base_url: self.sub_base_url.clone(),
            cache: self.cache.clone(),
            cache_mode: self.cache_mode,
            concurrency: self.concurrency,
            requests_per_minute: self.rpm,
            request_timeout_s: self.request_timeout,
            max_retries: self.max_retries,
            sub_context_tokens: self.sub_context_tokens,
            max_llm_calls: self.max_llm_calls,
            max_tokens: self.max_tokens,
            max_cost_usd: self.max_cost,
            max_response_bytes: self.max_response_bytes,
            config: self.config.clone(),
        };
        Ok(Settings::resolve(&overrides)?)
    }
}

/// Says on standard error that the response cache could not be written,
/// if so: the answers were good, but the next run will pay for them again.
pub(crate) fn warn_cache(client: &LlmClient) {
    if let Some(e) = client.cache().and_then(|c| c.error()) {
        eprint_text(&format!(
            "rlm: warning: {e}; answers that were not stored will be fetched again next time"
        ));
    }
}

/// The runtime every command's model calls run on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The `--verbose` printer on standard error: coloured on a terminal
/// unless `NO_COLOR` is set, each cell's sub-calls priced from `settings`.
pub(crate) fn verbose_printer(settings: &Settings) -> rlm::events::VerbosePrinter<std::io::Stderr> {
    use std::io::IsTerminal as _;
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    rlm::events::VerbosePrinter::new(std::io::stderr())
        .colour(colour)
        .prices(settings.prices.clone())
}

/// `runner`, printing each task's steps labelled with its id when `verbose`.
pub(crate) fn verbose_tasks(
    runner: rlm::batch::BatchRunner,
    verbose: bool,
    settings: &Settings,
) -> rlm::batch::BatchRunner {
    if !verbose {
        return runner;
    }
    let settings = settings.clone();
    runner.with_task_sink(move |id| {
        Arc::new(verbose_printer(&settings).label(format!("{id}:")))
            as Arc<dyn rlm::events::RunSink>
    })
}

/// A tokio runtime and a client with a fresh ledger, when a command calls models.
pub(crate) struct Models {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) client: LlmClient,
}

impl Models {
    pub(crate) fn new(settings: &Settings) -> anyhow::Result<Models> {
        let runtime = runtime()?;
        let ledger = Arc::new(Ledger::new(
            settings.prices.clone(),
            settings.budgets.clone(),
        ));
        let client = LlmClient::new(settings.llm.clone(), ledger)?;
        Ok(Models { runtime, client })
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum OutputFormat {
    Text,
    Json,
}

/// Options of `rlm exec`. The model flags are shared with the commands
/// that have a root model; exec has none, so `--model` only stands in for
/// `--sub-model`, and its help says so.
#[derive(clap::Args)]
#[command(mut_arg("model", |a| a.help(
    "The model llm_query and llm_batch call when --sub-model is not given (exec has no root model) [env: RLM_MODEL]"
)))]
#[command(mut_arg("sub_model", |a| a.help(
    "The model llm_query and llm_batch call, e.g. gpt-5-mini; without it (or --model), they fail [env: RLM_SUB_MODEL]"
)))]
pub(crate) struct ExecArgs {
    /// The script file (`-` reads it from standard input). Written after
    /// --context, it is the last value there that ends in .rhai, or the
    /// first after `--`.
    #[arg(value_name = "SCRIPT")]
    script: Option<PathBuf>,
    /// Files, directories, globs, or `-` for standard input.
    #[arg(long = "context", short = 'c', required = true, num_args = 1..)]
    context: Vec<PathBuf>,
    /// The question, visible to the script as `query`.
    #[arg(long, short = 'q', default_value = "")]
    query: String,
    /// Print the output and answer as text or as one JSON object.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    /// Wall-clock limit for the script, in seconds.
    #[arg(long, default_value_t = 600.0, value_parser = values::seconds)]
    timeout: f64,
    /// Operation limit for the script (1 or more).
    #[arg(long, value_parser = values::operations)]
    max_operations: Option<u64>,
    /// Memory one script session may hold, all its values together: e.g. 512M, 4G [default: 1G]
    #[arg(long, value_parser = values::memory_bytes)]
    max_memory: Option<usize>,
    /// Print the script's sub-calls on standard error as they happen, and the cell's output and sub-call totals when it ends.
    #[arg(long, short = 'v')]
    verbose: bool,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    models: ModelArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Print size, line count and document count of a context.
    Stats {
        /// Files, directories, globs, or `-` for standard input.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// How many of the largest documents to list.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// List every skipped file with its reason, not only the count per reason.
        #[arg(long)]
        list_skipped: bool,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Answer a question about a context with a root model driving Rhai code.
    ///
    /// Exit status: 0 submitted, 1 failed, 2 bad arguments or input,
    /// 3 max iterations, 4 call budget, 5 token budget, 6 cost budget,
    /// 7 timeout, 130 interrupted.
    Run(Box<RunArgs>),
    /// Run many tasks from a JSONL file, one result line per task; resumable and shardable.
    ///
    /// Exit status, for the whole results file: 0 every task's latest line is
    /// submitted, 3 some task's is not, 4/5/6 the batch's call/token/cost budget
    /// stopped tasks, 1 results file cannot be written, 2 bad arguments or a
    /// file that is not a results file, 130 interrupted.
    Batch(Box<batch::BatchArgs>),
    /// Generate a benchmark family (niah, oolong, pairs), run it, score it the paper's way.
    Eval(Box<eval::EvalArgs>),
    /// Run a Rhai script over a context, with no root model.
    Exec(Box<ExecArgs>),
    /// Serve the RLM to agents and editors as Model Context Protocol tools, over standard input and output.
    ///
    /// Tools: rlm_answer (a whole run, with progress notifications), and for
    /// a client whose own model is the root, context_open, rhai_run,
    /// context_search and context_close. Every path is confined to --root.
    Mcp(Box<mcp::McpArgs>),
    /// Serve an OpenAI-compatible endpoint: POST /v1/chat/completions and GET /v1/models.
    ///
    /// A request's model (rlm/ROOT) picks the model pair; the last user
    /// message is the question, and the context is that message or the
    /// files under --root named in "rlm": {"paths": [...]}. Binds loopback
    /// unless --allow-remote.
    Serve(Box<serve::ServeArgs>),
    /// Write a trace (or a batch's trace directory) as one self-contained HTML page.
    View(view::ViewArgs),
    /// Print a shell's completion script: bash, zsh, fish, powershell or elvish.
    Completions(install::CompletionsArgs),
    /// Print a man page (roff): rlm(1), or rlm-COMMAND(1) for one command.
    Man(install::ManArgs),
}

/// Options of `rlm run`.
#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// Files, directories, globs, or `-` for standard input.
    #[arg(long = "context", short = 'c', required = true, num_args = 1..)]
    context: Vec<PathBuf>,
    /// The question to answer.
    #[arg(long, short = 'q')]
    query: String,
    #[command(flatten)]
    limits: RunLimitArgs,
    /// Write a JSONL trace of every step to this file.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Replace the built-in system prompt template with this file.
    #[arg(long)]
    system_prompt: Option<PathBuf>,
    /// Print the answer as text, or the whole result as JSON.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
    /// Print every step on standard error as it happens: turns, cells,
    /// sub-calls, child runs and the answer (replaces the progress display).
    #[arg(long, short = 'v')]
    verbose: bool,
    #[command(flatten)]
    schema: SchemaArgs,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    models: ModelArgs,
}

/// The limits of a run, shared by `rlm run`, `rlm mcp` and `rlm serve`
/// (for the servers, the limits of each request's run).
#[derive(clap::Args)]
pub(crate) struct RunLimitArgs {
    /// Root turns before the model must submit.
    #[arg(long, default_value_t = 30)]
    max_iterations: usize,
    /// Deepest recursion of rlm_query; at the limit it falls back to llm_query.
    #[arg(long, default_value_t = 2)]
    max_depth: usize,
    /// Wall-clock limit of the whole run, in seconds.
    #[arg(long, value_parser = values::seconds)]
    timeout: Option<f64>,
    /// Time limit of one code cell, in seconds (waiting on sub-models does not count).
    #[arg(long, default_value_t = 120.0, value_parser = values::seconds)]
    cell_timeout: f64,
    /// Memory one script session may hold, all its values together: e.g. 512M, 4G [default: 1G]
    #[arg(long, value_parser = values::memory_bytes)]
    pub(crate) max_memory: Option<usize>,

    /// Root model max_tokens per turn.
    #[arg(long)]
    root_max_tokens: Option<u32>,
}

impl RunLimitArgs {
    /// `--timeout`, checked.
    pub(crate) fn timeout(&self) -> anyhow::Result<Option<Duration>> {
        match self.timeout {
            Some(t) if !(t > 0.0 && t.is_finite()) => {
                anyhow::bail!("--timeout must be a positive number of seconds")
            }
            t => Ok(t.map(Duration::from_secs_f64)),
        }
    }

    /// The run's settings: these limits, and the models of `settings`
    /// (`replay` when there is no root model, as with a replayed trace).
    pub(crate) fn run_config(&self, settings: &Settings) -> anyhow::Result<rlm::driver::RunConfig> {
        anyhow::ensure!(
            self.cell_timeout > 0.0 && self.cell_timeout.is_finite(),
            "--cell-timeout must be a positive number of seconds"
        );
        Ok(rlm::driver::RunConfig {
            model: ModelSpec::parse(settings.model.as_deref().unwrap_or("replay")),
            sub_model: settings.sub_model.as_deref().map(ModelSpec::parse),
            max_iterations: self.max_iterations.max(1),
            max_depth: self.max_depth.max(1),
            timeout: self.timeout()?,
            limits: Limits {
                cell_timeout: Duration::from_secs_f64(self.cell_timeout),
                max_memory_bytes: self
                    .max_memory
                    .unwrap_or(Limits::default().max_memory_bytes),
                ..Limits::default()
            },
            sub_context_tokens: settings.sub_context_tokens,
            root_max_tokens: self.root_max_tokens,
            ..rlm::driver::RunConfig::default()
        })
    }
}

/// The answer's JSON Schema, for `rlm run` and `rlm batch`.
#[derive(clap::Args)]
pub(crate) struct SchemaArgs {
    /// A JSON Schema file the answer must match: shown to the model and checked on every submit (in a batch, a task's own "schema" replaces it).
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// Submits the schema refuses before the run ends with status invalid_answer (exit 8), keeping the last value.
    #[arg(
        long,
        value_name = "N",
        default_value_t = rlm::driver::DEFAULT_MAX_INVALID_ANSWERS,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000),
    )]
    pub(crate) max_invalid_answers: usize,
}

impl SchemaArgs {
    /// The compiled schema, if one was given: read before the context
    /// loads, so a bad schema costs nothing.
    pub(crate) fn load(&self) -> anyhow::Result<Option<Arc<rlm::schema::AnswerSchema>>> {
        let Some(path) = &self.schema else {
            return Ok(None);
        };
        let schema = rlm::schema::AnswerSchema::from_file(path)?;
        Ok(Some(Arc::new(schema)))
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    sigbus::install();
    let cli = parse::parse();
    if let Err(e) = start_workers() {
        eprint_text(&format!("rlm: error: {e:#}"));
        return ExitCode::from(1);
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<StdoutError>() {
            // The reader went away (`rlm ... | head`): nothing to report.
            Some(StdoutError(io)) if io.kind() == std::io::ErrorKind::BrokenPipe => {
                ExitCode::SUCCESS
            }
            Some(_) => {
                eprint_text(&format!("rlm: error: {e:#}"));
                ExitCode::from(1)
            }
            None => {
                eprint_text(&format!("rlm: error: {e:#}"));
                ExitCode::from(2)
            }
        },
    }
}

/// Standard output could not be written (a full disk, a closed pipe).
#[derive(Debug, thiserror::Error)]
#[error("writing to standard output: {0}")]
pub(crate) struct StdoutError(std::io::Error);

/// Starts rayon's worker threads before anything is loaded. Started lazily,
/// a worker that cannot be created (the address space or the kernel's
/// maps used up) is a panic inside the first parallel scan; here it is an
/// error, and once these threads run no later load can starve them.
fn start_workers() -> anyhow::Result<()> {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("rlm-scan-{i}"))
        .build_global()
        .context("starting the worker threads for parallel scans")
}

/// Writes text meant for a person to standard output: control characters
/// (which could come from the input or a model) are escaped, whether
/// standard output is a terminal or a pipe (`rlm::escape::text`). Text
/// mode is for reading; `--output json` is the exact channel.
pub(crate) fn write_text(text: &str) -> Result<(), StdoutError> {
    write_stdout(&rlm::escape::text(text))
}

/// Writes a line to standard error with control characters escaped: every
/// message may quote a file name, the input, a model or a script.
pub(crate) fn eprint_text(line: &str) {
    eprintln!("{}", rlm::escape::text(line));
}

/// Writes `text` to standard output and flushes it; unlike `print!`, a
/// failure is an error rather than a panic. Writes it as it is: text for
/// a person goes through [`write_text`].
pub(crate) fn write_stdout(text: &str) -> Result<(), StdoutError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(StdoutError)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Stats {
            paths,
            json,
            top,
            list_skipped,
            load,
        } => {
            let ctx = load.builder().open(&paths)?;
            let stats = ContextStats::compute(&ctx, top)?;
            if json {
                let json = serde_json::to_string_pretty(&stats).context("serializing stats")?;
                write_stdout(&format!("{json}\n"))?;
            } else {
                write_text(&stats.render(list_skipped))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => run::run(*args),
        Command::Batch(args) => batch::run(*args),
        Command::Eval(args) => eval::run(*args),
        Command::Exec(args) => {
            let ExecArgs {
                script,
                mut context,
                query,
                output,
                timeout,
                max_operations,
                max_memory,
                verbose,
                load,
                models,
            } = *args;
            let script = parse::exec_script(script, &mut context)?;
            let opts = ExecOptions {
                query,
                format: output,
                timeout,
                max_operations,
                max_memory,
                verbose,
            };
            exec(&script, &context, opts, &load, &models)
        }
        Command::Mcp(args) => mcp::run(*args),
        Command::Serve(args) => serve::run(*args),
        Command::View(args) => view::run(args),
        Command::Completions(args) => install::completions(args),
        Command::Man(args) => install::man(args),
    }
}

/// Says on standard error how many files loading passed over, one line
/// per reason: a script or model seeing fewer documents than the user has
/// should not be a silent surprise.
pub(crate) fn note_skipped(ctx: &rlm::Context) {
    for note in rlm::stats::skipped_notes(ctx) {
        eprint_text(&format!(
            "rlm: {note} (rlm stats --list-skipped lists them)"
        ));
    }
}

fn read_script(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading the script from standard input")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading script {}", path.display()))
}

struct ExecOptions {
    query: String,
    format: OutputFormat,
    timeout: f64,
    max_operations: Option<u64>,
    max_memory: Option<usize>,
    verbose: bool,
}

/// `rlm exec -v`: the script's sub-calls, seen by the client, as the
/// events of a one-cell run named `exec`, printed as `rlm run -v` does.
struct ExecEvents(rlm::events::VerbosePrinter<std::io::Stderr>);

impl ExecEvents {
    fn emit(&self, event: rlm::events::Event<'_>) {
        use rlm::events::RunSink as _;
        self.0.event(&rlm::events::RunEvent {
            top: 1,
            run: "exec",
            depth: 0,
            event,
        });
    }
}

impl rlm::llm::CallObserver for ExecEvents {
    fn on_start(
        &self,
        model: &ModelSpec,
        request: &rlm::llm::ChatRequest,
        tag: &rlm::llm::CallTag,
    ) {
        self.emit(rlm::events::Event::SubCallStart {
            model,
            request,
            tag,
        });
    }

    fn on_call(&self, record: &rlm::llm::CallRecord<'_>) {
        self.emit(rlm::events::Event::SubCallEnd(record));
    }
}

fn exec(
    script: &PathBuf,
    paths: &[PathBuf],
    opts: ExecOptions,
    load: &LoadArgs,
    model_args: &ModelArgs,
) -> anyhow::Result<ExitCode> {
    let ExecOptions {
        query,
        format,
        timeout,
        max_operations,
        max_memory,
        verbose,
    } = opts;
    let settings = model_args.settings()?;
    anyhow::ensure!(
        !(script.as_os_str() == "-" && paths.iter().any(|p| p.as_os_str() == "-")),
        "the script and the context cannot both come from standard input"
    );
    let code = read_script(script)?;
    let started = Instant::now();
    let ctx = load
        .builder_within(Duration::try_from_secs_f64(timeout).ok())
        .open(paths)?;
    let load_s = started.elapsed().as_secs_f64();
    note_skipped(&ctx);
    anyhow::ensure!(
        timeout > 0.0 && timeout.is_finite(),
        "--timeout must be a positive number of seconds"
    );
    let mut limits = Limits {
        cell_timeout: Duration::from_secs_f64(timeout),
        // A person running a script wants all of its output.
        output_chars: usize::MAX / 4,
        ..Limits::default()
    };
    if let Some(ops) = max_operations {
        limits.max_operations = ops;
    }
    if let Some(bytes) = max_memory {
        limits.max_memory_bytes = bytes;
    }
    let models = match &settings.sub_model {
        Some(_) => Some(Models::new(&settings)?),
        None => None,
    };
    // `--timeout` bounds the whole script, time waiting on sub-models
    // included: the cell clock alone pauses during those waits.
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    let past_deadline = move || {
        (Instant::now() >= deadline).then(|| {
            format!(
                "the script ran past --timeout {timeout}s (time waiting on sub-models included)"
            )
        })
    };
    let mut builder = SessionBuilder::new()
        .query(query)
        .limits(limits)
        .stop_when(Arc::new(past_deadline))
        .extend(rlm::driver::without_root_model);
    if let Some(m) = &models {
        builder = builder.llm(LlmAccess {
            client: m.client.clone(),
            runtime: m.runtime.handle().clone(),
            sub_model: settings.sub_model.as_deref().map(ModelSpec::parse),
            context_window: Some(settings.sub_context_tokens),
            depth: 0,
            run_id: None,
            scope: None,
        });
    }
    let printer = verbose.then(|| Arc::new(ExecEvents(verbose_printer(&settings))));
    if let (Some(p), Some(m)) = (&printer, &models) {
        m.client.observe(p.clone());
    }
    let cell = rlm::events::Cell {
        iteration: 1,
        index: 1,
        count: 1,
        code: &code,
    };
    if let Some(p) = &printer {
        p.emit(rlm::events::Event::CellStart(cell));
    }
    let mut session = builder.build(&ctx);
    let outcome = session.run_cell(&code);
    if let Some(p) = &printer {
        p.emit(rlm::events::Event::CellEnd {
            cell,
            number: 1,
            outcome: &outcome,
        });
    }
    let ledger = models.as_ref().map(|m| m.client.ledger().clone());
    let run_s = outcome.duration.as_secs_f64();
    match format {
        OutputFormat::Text => {
            if outcome.output != rlm::dsl::NO_OUTPUT {
                write_text(&outcome.output)?;
            }
            if let Some(answer) = &outcome.submitted {
                write_text(&format!("{}\n", answer.text))?;
            }
            if let Some(ledger) = ledger
                .as_ref()
                .filter(|l| l.totals().calls + l.totals().errors > 0)
            {
                eprint_text(&ledger.summary());
            }
        }
        OutputFormat::Json => {
            let json = serde_json::json!({
                "answer": outcome.submitted.as_ref().map(|a| a.value.clone()),
                "output": if outcome.output == rlm::dsl::NO_OUTPUT { "" } else { outcome.output.as_str() },
                "error": outcome.error,
                "timing": { "load_s": load_s, "run_s": run_s },
                "usage": ledger.as_ref().map(|l| serde_json::json!({
                    "by_model": rlm::llm::usage_json(&l.by_model()),
                    "total": rlm::llm::totals_json(&l.totals(), l.cost()),
                })),
            });
            let json = serde_json::to_string_pretty(&json).context("serializing the result")?;
            write_stdout(&format!("{json}\n"))?;
        }
    }
    if let Some(m) = &models {
        warn_cache(&m.client);
    }
    match &outcome.error {
        Some(e) => {
            eprint_text(&format!("rlm: script error: {e}"));
            Ok(ExitCode::from(1))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
