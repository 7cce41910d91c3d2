//! Checks the DSL reference (`dsl-docs/*.md`) and the model's quick
//! reference (`prompts/quick_reference.md`) against the engine.
//!
//! * Every `rhai example` block runs in a session over the example context
//!   that `dsl-docs/README.md` defines, and must give exactly the result
//!   written below it. Examples marked `bug` show the correct behaviour of a
//!   known bug and are checked by their own test, which fails until the bug
//!   is fixed.
//! * Every function the crate registers ([`Session::function_signatures`],
//!   plus the driver's functions) must be documented with each of its
//!   argument counts, and every documented signature must be registered.
//! * Every entry has a signature, a cost and an example.
//! * Every registered name appears in the quick reference, which fits on
//!   one screen. (`tests/quick_reference.rs` runs every form it shows.)
//!
//! `dsl-docs/README.md` ("How examples are checked") describes the format;
//! this file is its only parser.

/// Examples run as in the `rlm` binary, with the session memory limit.
#[global_allocator]
static ALLOCATOR: rlm::alloc::Counting = rlm::alloc::Counting::system();

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rlm::dsl::{CellOutcome, Limits, LlmAccess, Session, SessionBuilder};
use rlm::llm::{Budgets, Ledger, LlmClient, LlmConfig, ModelSpec, PriceTable, RetryPolicy};
use rlm::testing::{MockServer, Reply};
use rlm::{Context, ContextBuilder};

/// Functions added as custom syntax, which `function_signatures` does not list.
const CUSTOM_SYNTAX: &[&str] = &["show_vars"];

/// Functions the driver registers into its sessions (`SessionBuilder::extend`),
/// which a plain session does not have: name and number of arguments.
/// `registered_in_source` keeps this list honest.
const DRIVER_FUNCTIONS: &[(&str, usize)] = &[("rlm_query", 2), ("rlm_batch", 2)];

/// The most lines the quick reference may take: the model reads it every turn.
const QUICK_REFERENCE_MAX_LINES: usize = 60;

/// The example sub-model's context window, in tokens.
const SUB_MODEL_WINDOW: usize = 64;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---- reading the markdown ---------------------------------------------------

/// One markdown file of the reference.
struct Doc {
    /// File name, e.g. `search.md`.
    name: String,
    text: String,
}

fn docs() -> Vec<Doc> {
    let dir = root().join("dsl-docs");
    let mut docs: Vec<Doc> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| Doc {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            text: std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display())),
        })
        .collect();
    docs.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!docs.is_empty(), "no .md files in {}", dir.display());
    docs
}

/// A fenced code block (fences at column 0 only).
struct Block {
    /// The words after the opening fence, e.g. `["rhai", "example", "llm"]`.
    info: Vec<String>,
    body: String,
    /// 1-based line of the opening fence.
    line: usize,
}

impl Block {
    /// Whether the info string starts with `words`.
    fn is(&self, words: &[&str]) -> bool {
        self.info.len() >= words.len() && self.info.iter().zip(words).all(|(a, b)| a == b)
    }
}

/// What the checks look at in a file, in order.
enum Item {
    /// A `### ` heading: one entry of the reference.
    Entry {
        line: usize,
        text: String,
    },
    /// A `#` or `## ` heading, which ends the current entry.
    Section,
    /// A line starting with `**Cost:**`, outside code blocks.
    Cost,
    Block(Block),
}

fn items(doc: &Doc) -> Vec<Item> {
    let mut out = Vec::new();
    let mut open: Option<(Vec<String>, usize, Vec<&str>)> = None;
    for (i, line) in doc.text.lines().enumerate() {
        let n = i + 1;
        match open.take() {
            Some((info, start, body)) if line.trim_end() == "```" => out.push(Item::Block(Block {
                info,
                body: body.join("\n"),
                line: start,
            })),
            Some((info, start, mut body)) => {
                body.push(line);
                open = Some((info, start, body));
            }
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    let info = info.split_whitespace().map(str::to_string).collect();
                    open = Some((info, n, Vec::new()));
                } else if let Some(text) = line.strip_prefix("### ") {
                    out.push(Item::Entry {
                        line: n,
                        text: text.to_string(),
                    });
                } else if line.starts_with("# ") || line.starts_with("## ") {
                    out.push(Item::Section);
                } else if line.starts_with("**Cost:**") {
                    out.push(Item::Cost);
                }
            }
        }
    }
    if let Some((_, start, _)) = open {
        panic!("{}:{start}: code block is never closed", doc.name);
    }
    out
}

// ---- the example context and sub-model ------------------------------------------

/// What every example runs against: the `text file=NAME` blocks of
/// README.md, written to a directory and opened as one context; the `text
/// query` block; and the example sub-model.
struct Fixture {
    _dir: tempfile::TempDir,
    context: Context,
    query: String,
    sub_model: SubModel,
}

fn fixture() -> Fixture {
    let readme = docs()
        .into_iter()
        .find(|d| d.name == "README.md")
        .expect("dsl-docs/README.md defines the example context");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut query = None;
    let mut files = 0;
    for item in items(&readme) {
        let Item::Block(b) = item else { continue };
        if b.is(&["text", "query"]) {
            query = Some(b.body.clone());
        } else if let Some(name) = b.info.get(1).and_then(|w| w.strip_prefix("file=")) {
            std::fs::write(dir.path().join(name), format!("{}\n", b.body))
                .expect("write example file");
            files += 1;
        }
    }
    assert!(files > 0, "README.md has no ```text file=NAME blocks");
    let context = ContextBuilder::new()
        .snapshot(true)
        .open(&[dir.path()])
        .expect("open the example context");
    Fixture {
        _dir: dir,
        context,
        query: query.expect("README.md has no ```text query block"),
        sub_model: SubModel::start(),
    }
}

/// The example sub-model of README.md: a loopback server that answers
/// `echo: <first line of the prompt>` (prefixed with `(<system>) ` when a
/// system prompt is given), refuses prompts containing `FAIL` with HTTP
/// 400, and reports ceil(bytes / 4) input tokens and 2 output tokens.
struct SubModel {
    server: MockServer,
}

impl SubModel {
    fn start() -> SubModel {
        let server = MockServer::start(|req| {
            let prompt = req.prompt();
            if prompt.contains("FAIL") {
                return Reply::error(400, "refused by policy");
            }
            let first = prompt.lines().next().unwrap_or("");
            if req.json().get("response_format").is_some() {
                let words = first.split_whitespace().count();
                let answer = serde_json::json!({"echo": first, "words": words}).to_string();
                return Reply::openai_text(&answer, prompt.len().div_ceil(4) as u64, 2);
            }
            let answer = match req.system() {
                Some(system) => format!("({system}) echo: {first}"),
                None => format!("echo: {first}"),
            };
            Reply::openai_text(&answer, prompt.len().div_ceil(4) as u64, 2)
        });
        SubModel { server }
    }

    /// Access for one session, with its own runtime and ledger, so that
    /// usage counts start at zero in every example.
    fn access(&self) -> (tokio::runtime::Runtime, LlmAccess) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let config = LlmConfig {
            openai_base_url: self.server.openai_url(),
            retry: RetryPolicy {
                max_retries: 0,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(1),
            },
            concurrency: 4,
            ..LlmConfig::default()
        };
        let ledger = Arc::new(Ledger::new(PriceTable::default(), Budgets::default()));
        let access = LlmAccess {
            client: LlmClient::new(config, ledger).expect("llm client"),
            runtime: runtime.handle().clone(),
            sub_model: Some(ModelSpec::parse("sub-model")),
            context_window: Some(SUB_MODEL_WINDOW),
            depth: 0,
            run_id: None,
            scope: None,
        };
        (runtime, access)
    }
}

// ---- examples -----------------------------------------------------------------

/// What the words after `rhai example` ask for.
#[derive(Clone, Default)]
struct RunOptions {
    limits: Limits,
    /// Run in the previous example's session.
    continues: bool,
    /// Shows the correct behaviour of a known bug in `src/`.
    bug: bool,
    /// Give the session the example sub-model.
    llm: bool,
}

fn parse_options(words: &[String], at: &str) -> RunOptions {
    let mut o = RunOptions::default();
    for word in words {
        match word.as_str() {
            "continue" => o.continues = true,
            "bug" => o.bug = true,
            "llm" => o.llm = true,
            _ => set_limit(&mut o.limits, word, at),
        }
    }
    o
}

fn set_limit(limits: &mut Limits, word: &str, at: &str) {
    let (key, value) = word
        .split_once('=')
        .unwrap_or_else(|| panic!("{at}: unknown example option `{word}`"));
    let n: u64 = value
        .replace('_', "")
        .parse()
        .unwrap_or_else(|_| panic!("{at}: `{word}` needs a whole number"));
    let size = usize::try_from(n).expect("limit fits usize");
    match key {
        "max_operations" => limits.max_operations = n,
        "cell_timeout_ms" => limits.cell_timeout = Duration::from_millis(n),
        "max_string_bytes" => limits.max_string_bytes = size,
        "max_array_len" => limits.max_array_len = size,
        "max_map_len" => limits.max_map_len = size,
        "max_call_depth" => limits.max_call_depth = size,
        "max_variables" => limits.max_variables = size,
        "output_chars" => limits.output_chars = size,
        _ => panic!("{at}: unknown limit `{key}`"),
    }
}

/// A `rhai example` block and the expectation blocks that follow it.
struct Example {
    file: String,
    line: usize,
    code: String,
    options: RunOptions,
    output: Option<String>,
    error: Option<String>,
    answer: Option<String>,
}

fn examples(doc: &Doc) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut current: Option<Example> = None;
    for item in items(doc) {
        let Item::Block(b) = item else { continue };
        let at = format!("{}:{}", doc.name, b.line);
        if b.is(&["rhai", "example"]) {
            out.extend(current.take());
            current = Some(Example {
                file: doc.name.clone(),
                line: b.line,
                code: b.body.clone(),
                options: parse_options(&b.info[2..], &at),
                output: None,
                error: None,
                answer: None,
            });
            continue;
        }
        let kind = b.info.first().map_or("", String::as_str);
        if !matches!(kind, "expect" | "expect-error" | "expect-answer") {
            out.extend(current.take());
            continue;
        }
        let example = current.as_mut().unwrap_or_else(|| {
            panic!("{at}: ```{kind} block without a ```rhai example block before it")
        });
        let slot = match kind {
            "expect" => &mut example.output,
            "expect-error" => &mut example.error,
            _ => &mut example.answer,
        };
        assert!(
            slot.is_none(),
            "{at}: a second ```{kind} block for one example"
        );
        *slot = Some(b.body);
    }
    out.extend(current);
    for e in &out {
        assert!(
            e.output.is_some() || e.error.is_some() || e.answer.is_some(),
            "{}:{}: a ```rhai example block must be followed by ```expect, ```expect-error or ```expect-answer",
            e.file,
            e.line
        );
    }
    out
}

/// What is wrong with an outcome, if anything.
fn mismatch(example: &Example, got: &CellOutcome) -> Option<String> {
    let mut problems = Vec::new();
    let output = got.output.strip_suffix('\n').unwrap_or(&got.output);
    let want = example.output.as_deref().unwrap_or("");
    if output != want {
        problems.push(format!(
            "output differs.\n--- expected\n{want}\n--- got\n{output}\n---"
        ));
    }
    match (&example.error, &got.error) {
        (None, None) => {}
        (None, Some(e)) => problems.push(format!("unexpected error:\n{e}")),
        (Some(_), None) => problems.push("expected an error, got none".into()),
        (Some(want), Some(e)) => {
            for line in want.lines().filter(|l| !l.trim().is_empty()) {
                if !e.contains(line) {
                    problems.push(format!("the error does not contain {line:?}; it is:\n{e}"));
                }
            }
        }
    }
    let answer = got
        .submitted
        .as_ref()
        .map(|a| a.text.strip_suffix('\n').unwrap_or(&a.text));
    match (example.answer.as_deref(), answer) {
        (None, None) => {}
        (None, Some(a)) => problems.push(format!("unexpected submitted answer: {a}")),
        (Some(_), None) => problems.push("expected a submitted answer, got none".into()),
        (Some(want), Some(a)) if want != a => problems.push(format!(
            "answer differs.\n--- expected\n{want}\n--- got\n{a}\n---"
        )),
        _ => {}
    }
    (!problems.is_empty()).then(|| problems.join("\n"))
}

/// A session and the runtime its sub-model calls need.
struct Running {
    session: Session,
    _runtime: Option<tokio::runtime::Runtime>,
}

fn start(fixture: &Fixture, options: &RunOptions) -> Running {
    let mut builder = SessionBuilder::new()
        .limits(options.limits.clone())
        .query(fixture.query.clone());
    let mut runtime = None;
    if options.llm {
        let (rt, access) = fixture.sub_model.access();
        builder = builder.llm(access);
        runtime = Some(rt);
    }
    Running {
        session: builder.build(&fixture.context),
        _runtime: runtime,
    }
}

/// The outcome of one example.
struct Checked {
    /// `file:line`.
    at: String,
    bug: bool,
    problem: Option<String>,
}

/// Runs every example in order, each in a fresh session unless it
/// continues the previous one.
fn run_examples() -> Vec<Checked> {
    let fixture = fixture();
    let mut out = Vec::new();
    for doc in docs() {
        let mut running: Option<Running> = None;
        for example in examples(&doc) {
            let at = format!("{}:{}", example.file, example.line);
            let o = &example.options;
            assert!(
                !o.continues || running.is_some(),
                "{at}: `continue` needs an example before it in the same file"
            );
            if !o.continues {
                running = None;
            }
            let session = &mut running.get_or_insert_with(|| start(&fixture, o)).session;
            let got = session.run_cell(&example.code);
            out.push(Checked {
                problem: mismatch(&example, &got)
                    .map(|p| format!("{at}: example\n{}\n{p}", example.code)),
                at,
                bug: o.bug,
            });
        }
    }
    out
}

#[test]
fn every_example_gives_its_documented_result() {
    let checked: Vec<Checked> = run_examples().into_iter().filter(|c| !c.bug).collect();
    assert!(!checked.is_empty(), "no examples found");
    let failures: Vec<&str> = checked
        .iter()
        .filter_map(|c| c.problem.as_deref())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} examples failed:\n\n{}",
        failures.len(),
        checked.len(),
        failures.join("\n\n")
    );
}

/// Examples marked `bug` show the correct behaviour of a known bug in
/// `src/`: this test fails until each is fixed, and then asks for the mark
/// to be removed.
#[test]
fn examples_marked_bug_now_pass() {
    let checked: Vec<Checked> = run_examples().into_iter().filter(|c| c.bug).collect();
    let failures: Vec<&str> = checked
        .iter()
        .filter_map(|c| c.problem.as_deref())
        .collect();
    let fixed: Vec<&str> = checked
        .iter()
        .filter(|c| c.problem.is_none())
        .map(|c| c.at.as_str())
        .collect();
    let mut problems = Vec::new();
    if !failures.is_empty() {
        problems.push(format!(
            "{} known bug(s) in src/ are not fixed; each example shows the correct behaviour:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        ));
    }
    if !fixed.is_empty() {
        problems.push(format!(
            "fixed: remove the `bug` mark, and the \"Known bug\" note above it, at {}",
            fixed.join(", ")
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

// ---- function names -------------------------------------------------------------

/// A callable form: a function with an argument count (receiver included),
/// a property, or the indexer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Form {
    Function(String, usize),
    Property(String),
    Indexer,
}

impl Form {
    /// How the form is named in headings and in the quick reference.
    fn name(&self) -> String {
        match self {
            Form::Function(name, _) => name.clone(),
            Form::Property(name) => format!(".{name}"),
            Form::Indexer => "[]".into(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Form::Function(name, n) => format!("`{name}` with {n} argument(s), receiver included"),
            Form::Property(name) => format!("the property `.{name}`"),
            Form::Indexer => "the indexer `t[a..b]`".into(),
        }
    }

    /// Whether a heading name documents this form.
    fn named_by(&self, heading: &str) -> bool {
        match self {
            Form::Indexer => heading.contains('['),
            _ => self.name() == heading,
        }
    }
}

fn is_identifier(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// The forms registered by the crate, each with one signature as an
/// illustration: a plain session's, plus the driver's. Operators (`+`,
/// `==`, ...) are left out.
fn registered() -> BTreeMap<Form, String> {
    let ctx = Context::from_string("doc", "");
    let session = SessionBuilder::new().build(&ctx);
    let mut out = BTreeMap::new();
    for sig in session.function_signatures() {
        let (name, rest) = sig.split_once('(').unwrap_or((&sig, ""));
        let form = if let Some(p) = name
            .strip_prefix("get$")
            .or_else(|| name.strip_prefix("set$"))
        {
            Form::Property(p.to_string())
        } else if name.starts_with("index$") {
            Form::Indexer
        } else if is_identifier(name) {
            let params = rest.split(')').next().unwrap_or("");
            let n = if params.trim().is_empty() {
                0
            } else {
                params.split(',').count()
            };
            Form::Function(name.to_string(), n)
        } else {
            continue;
        };
        out.entry(form).or_insert(sig);
    }
    for &(name, n) in DRIVER_FUNCTIONS {
        out.insert(
            Form::Function(name.to_string(), n),
            format!("{name}(...), registered by the driver"),
        );
    }
    out
}

/// Names passed to `register_fn("name", ...)` anywhere in `src/`, with the
/// file that registers each: catches functions registered outside a plain
/// session that `DRIVER_FUNCTIONS` does not list.
fn registered_in_source() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        paths.sort();
        for path in paths {
            if path.is_dir() {
                walk(&path, out);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let shown = path
                .strip_prefix(root())
                .unwrap_or(&path)
                .display()
                .to_string();
            for (i, call) in text.match_indices("register_fn(") {
                let rest = text[i + call.len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let name = rest.split('"').next().unwrap_or("");
                if is_identifier(name) {
                    out.entry(name.to_string()).or_insert_with(|| shown.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&root().join("src"), &mut out);
    out
}

/// One `### ` entry of the reference.
struct Entry {
    /// `file:line` of the heading.
    at: String,
    /// The backticked names in the heading.
    names: Vec<String>,
    /// Forms parsed from the entry's ```sig blocks, with `file:line`.
    forms: Vec<(Form, String)>,
    examples: usize,
    /// `rhai no-run` blocks, accepted as the only example of driver functions.
    no_run: usize,
    has_cost: bool,
}

/// Parses one signature line: `text.grep(re: string, opts: map) -> array`
/// (a method: the receiver counts), `submit(value: any)`, `text.name ->
/// string` (a property) or `text[a..b] -> Text` (the indexer).
fn parse_signature(line: &str) -> Option<Form> {
    let head = line.split(" -> ").next()?.trim();
    if let Some(open) = head.find('(') {
        let callee = &head[..open];
        let (receiver, name) = match callee.rsplit_once('.') {
            Some((_, name)) => (1, name),
            None => (0, callee),
        };
        let params = head[open + 1..].strip_suffix(')')?;
        let n = if params.trim().is_empty() {
            0
        } else {
            params.split(',').count()
        };
        return is_identifier(name).then(|| Form::Function(name.to_string(), receiver + n));
    }
    if head.contains('[') {
        return Some(Form::Indexer);
    }
    let (_, name) = head.rsplit_once('.')?;
    is_identifier(name).then(|| Form::Property(name.to_string()))
}

fn entries(doc: &Doc) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut open = false;
    for item in items(doc) {
        match item {
            Item::Entry { line, text } => {
                let names: Vec<String> = text
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect();
                assert!(
                    !names.is_empty(),
                    "{}:{line}: a `### ` heading names its functions in backticks, e.g. ### `grep`",
                    doc.name
                );
                out.push(Entry {
                    at: format!("{}:{line}", doc.name),
                    names,
                    forms: Vec::new(),
                    examples: 0,
                    no_run: 0,
                    has_cost: false,
                });
                open = true;
            }
            Item::Section => open = false,
            Item::Cost => {
                if let Some(entry) = out.last_mut().filter(|_| open) {
                    entry.has_cost = true;
                }
            }
            Item::Block(b) => {
                let Some(entry) = out.last_mut().filter(|_| open) else {
                    continue;
                };
                if b.is(&["sig"]) {
                    for (i, line) in b.body.lines().enumerate() {
                        let at = format!("{}:{}", doc.name, b.line + 1 + i);
                        let form = parse_signature(line)
                            .unwrap_or_else(|| panic!("{at}: cannot parse the signature {line:?}"));
                        entry.forms.push((form, at));
                    }
                } else if b.is(&["rhai", "example"]) {
                    entry.examples += 1;
                } else if b.is(&["rhai", "no-run"]) {
                    entry.no_run += 1;
                }
            }
        }
    }
    out
}

fn all_entries() -> Vec<Entry> {
    docs().iter().flat_map(entries).collect()
}

#[test]
fn every_registered_function_is_documented_and_nothing_else() {
    let registered = registered();
    let mut documented: BTreeMap<Form, String> = BTreeMap::new();
    let mut problems = Vec::new();
    for e in all_entries() {
        for (form, at) in e.forms {
            if !e.names.iter().any(|n| form.named_by(n)) {
                problems.push(format!(
                    "{at}: the signature of {} sits under the heading at {} naming {:?}, which does not name it",
                    form.describe(),
                    e.at,
                    e.names
                ));
            }
            documented.entry(form).or_insert(at);
        }
    }
    for (form, sig) in &registered {
        if !documented.contains_key(form) {
            problems.push(format!(
                "{} is registered (`{sig}`) but no ```sig block in dsl-docs/*.md documents it",
                form.describe()
            ));
        }
    }
    for (form, at) in &documented {
        let custom =
            matches!(form, Form::Function(name, _) if CUSTOM_SYNTAX.contains(&name.as_str()));
        if !registered.contains_key(form) && !custom {
            problems.push(format!(
                "{at}: documents {}, which is not registered",
                form.describe()
            ));
        }
    }
    let registered_names: BTreeSet<String> = registered.keys().map(Form::name).collect();
    let documented_names: BTreeSet<String> = documented.keys().map(Form::name).collect();
    for (name, file) in registered_in_source() {
        if !registered_names.contains(&name) {
            problems.push(format!(
                "`{name}` is registered in {file} but a plain session does not have it; \
                 if another component registers it, add it to DRIVER_FUNCTIONS in tests/dsl_docs.rs"
            ));
        }
        if !documented_names.contains(&name) {
            problems.push(format!(
                "`{name}` is registered in {file} but not documented in dsl-docs/*.md"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the reference and the engine disagree:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_entry_has_a_signature_a_cost_and_an_example() {
    let mut problems = Vec::new();
    for e in all_entries() {
        let at = format!("{} ({})", e.at, e.names.join(", "));
        if e.forms.is_empty() {
            problems.push(format!("{at}: no ```sig block"));
        }
        if !e.has_cost {
            problems.push(format!("{at}: no line starting with **Cost:**"));
        }
        let driver_only = e
            .names
            .iter()
            .all(|n| DRIVER_FUNCTIONS.iter().any(|(d, _)| d == n));
        if e.examples == 0 && !(driver_only && e.no_run > 0) {
            problems.push(format!("{at}: no ```rhai example block"));
        }
        for name in &e.names {
            if !e.forms.iter().any(|(f, _)| f.named_by(name)) {
                problems.push(format!(
                    "{at}: `{name}` is in the heading but has no signature"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "incomplete entries:\n{}",
        problems.join("\n")
    );
}

// ---- the quick reference ----------------------------------------------------------

/// Whether `word` occurs in `text` and is not part of a longer identifier.
fn mentions(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let starts_ident = word.chars().next().is_some_and(ident);
    text.match_indices(word).any(|(i, _)| {
        let glued_before = starts_ident && text[..i].chars().next_back().is_some_and(ident);
        let glued_after = text[i + word.len()..].chars().next().is_some_and(ident);
        !glued_before && !glued_after
    })
}

fn quick_reference() -> String {
    let path = root().join("prompts/quick_reference.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn quick_reference_names_every_function() {
    let text = quick_reference();
    let mut names: BTreeSet<String> = registered()
        .keys()
        .filter(|f| !matches!(f, Form::Indexer))
        .map(Form::name)
        .collect();
    names.extend(CUSTOM_SYNTAX.iter().map(|s| s.to_string()));
    let missing: Vec<String> = names.into_iter().filter(|n| !mentions(&text, n)).collect();
    assert!(
        missing.is_empty(),
        "prompts/quick_reference.md does not mention these registered functions: {}",
        missing.join(", ")
    );
    assert!(
        mentions(&text, "t[a..b]"),
        "prompts/quick_reference.md does not show the indexer `t[a..b]`"
    );
}

#[test]
fn quick_reference_fits_on_one_screen() {
    let n = quick_reference().lines().count();
    assert!(
        n <= QUICK_REFERENCE_MAX_LINES,
        "prompts/quick_reference.md has {n} lines; keep it to {QUICK_REFERENCE_MAX_LINES}"
    );
}
