//! A persistent scripting session: cells run one after another on one scope.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{
    Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, ParseError, Position, Scope, AST,
};

use super::clock::{CellClock, ExternalStop, StopReason};
use super::convert::{display, estimated_size, to_json};
use super::output::OutputBuffer;
use super::source::{self, Prepared};
use super::{engine, hints, HostFunction, HostFunctionError, HostFunctions, Limits, LlmAccess};
use crate::alloc::Ledger;
use crate::{Context, Text};

/// Marks the termination raised by `submit`.
pub(crate) const SUBMIT_TOKEN: &str = "__rlm_submit__";
/// Marks a termination raised by the clock or cancellation.
pub(crate) const STOP_TOKEN: &str = "__rlm_stop__";

/// State shared between a session and the closures registered in its engine.
pub struct Shared {
    output: Mutex<Option<OutputBuffer>>,
    pub(crate) submitted: Mutex<Option<Dynamic>>,
    /// The running cell's clock; sub-call waits pause it.
    pub clock: Arc<CellClock>,
    context: Text,
    documents: Array,
    query: ImmutableString,
    /// 1-based number of the cell running (or last run).
    cell: std::sync::atomic::AtomicUsize,
    /// Where the cell being compiled has backtick strings (see `source`).
    backtick_pieces: Mutex<HashSet<(usize, usize)>>,
    /// An error that must stop the cell at its next step, raised where Rhai
    /// would otherwise swallow it (see `api_print`).
    cell_failure: Mutex<Option<String>>,
    cell_failed: std::sync::atomic::AtomicBool,
    /// Operations of the running cell, callbacks included: Rhai counts
    /// each `sort`, `map` or `filter` callback from zero on its own.
    operations: std::sync::atomic::AtomicU64,
    /// What the session holds, where the allocator can count it.
    pub(crate) memory: Option<Ledger>,
    /// Bytes held when the running cell started.
    memory_at_start: std::sync::atomic::AtomicUsize,
}

impl Shared {
    /// The 1-based number of the current cell.
    pub fn cell_index(&self) -> usize {
        self.cell.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn print(&self, s: &str) {
        if let Ok(mut out) = self.output.lock() {
            if let Some(buf) = out.as_mut() {
                buf.push_line(s);
            }
        }
    }

    /// The text of a string token at `pos` with backtick escapes applied,
    /// if it is a piece of a backtick string that has any.
    pub(crate) fn backtick_escapes(&self, pos: Position, raw: &str) -> Option<String> {
        let at = (pos.line()?, pos.position()?);
        let pieces = self.backtick_pieces.lock().ok()?;
        if !pieces.contains(&at) {
            return None;
        }
        source::backtick_escapes(raw)
    }

    /// Stops the running cell at its next step with `message`, even where
    /// the error that prompted it is swallowed by Rhai.
    pub(crate) fn fail_cell(&self, message: String) {
        if let Ok(mut slot) = self.cell_failure.lock() {
            slot.get_or_insert(message);
        }
        self.cell_failed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Heap bytes the session holds, where the program's allocator is
    /// [`crate::alloc::Counting`] (as in the `rlm` binary).
    pub fn memory_held(&self) -> Option<usize> {
        self.memory.as_ref().map(Ledger::held)
    }

    /// Counts one operation of the running cell and returns the count.
    pub(crate) fn count_operation(&self) -> u64 {
        self.operations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    /// Why the session must stop growing, if it holds more than `limit`
    /// bytes and more than when the cell started (a cell that starts over
    /// the limit may still run, to free what it holds: `x = ();`).
    pub(crate) fn memory_exceeded(&self, limit: usize) -> Option<String> {
        let held = self.memory.as_ref()?.held();
        let at_start = self
            .memory_at_start
            .load(std::sync::atomic::Ordering::Relaxed);
        (held > limit && held > at_start).then(|| {
            format!(
                "the session holds {} of data, more than its memory limit of {}. Keep large text as views \
                 (slice, chunks, matches offsets) instead of strings, free variables you no longer need \
                 (`x = ();`), and keep summaries rather than copies",
                mebibytes(held),
                mebibytes(limit)
            )
        })
    }

    /// Whether [`Shared::fail_cell`] was called in this cell.
    pub(crate) fn cell_failed(&self) -> bool {
        self.cell_failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn take_cell_failure(&self) -> Option<String> {
        self.cell_failed
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.cell_failure.lock().ok().and_then(|mut s| s.take())
    }

    pub(crate) fn global(&self, name: &str) -> Option<Dynamic> {
        let value = match name {
            "context" => Dynamic::from(self.context.clone()),
            "documents" => Dynamic::from(self.documents.clone()),
            "query" => Dynamic::from(self.query.clone()),
            _ => return None,
        };
        Some(value.into_read_only())
    }
}

/// A value passed to `submit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The value as JSON (strings stay strings).
    pub value: serde_json::Value,
    /// The value as text: strings bare, other values as JSON.
    pub text: String,
}

/// What running one cell produced.
#[derive(Debug, Clone)]
pub struct CellOutcome {
    /// Printed output, capped, with a note when there was none.
    pub output: String,
    /// Whether the output was cut to fit the cap.
    pub truncated: bool,
    /// The error that stopped the cell, formatted for a reader, if any.
    pub error: Option<String>,
    /// The answer, if the cell called `submit`.
    pub submitted: Option<Answer>,
    /// The context's files changed on disk before or while the cell ran
    /// (`error` says which and how). Nothing the script does can fix that,
    /// so a run should stop rather than let the model try again.
    pub context_changed: bool,
    /// How long the cell ran.
    pub duration: Duration,
}

impl CellOutcome {
    /// Output and error as one block, as a model should see them.
    pub fn render(&self) -> String {
        match &self.error {
            None => self.output.clone(),
            Some(e) if self.output.is_empty() || self.output == NO_OUTPUT => format!("Error: {e}"),
            Some(e) => format!("{}\nError: {e}", self.output.trim_end()),
        }
    }
}

/// The output of a cell that printed nothing: a nudge to print.
pub const NO_OUTPUT: &str = "(no output: use print() to see values)";

/// Builds a [`Session`].
///
/// ```
/// use rlm::dsl::SessionBuilder;
/// let ctx = rlm::Context::from_string("doc", "alpha\nbeta\n");
/// let mut session = SessionBuilder::new().query("how many lines?").build(&ctx);
/// let out = session.run_cell("let n = context.line_count(); print(n);");
/// assert_eq!(out.output, "2\n");
/// let out = session.run_cell("submit(n * 10);");
/// assert_eq!(out.submitted.unwrap().text, "20");
/// ```
#[derive(Default)]
pub struct SessionBuilder {
    limits: Limits,
    query: String,
    extensions: Vec<Box<Extension>>,
    llm: Option<LlmAccess>,
    stop: Option<ExternalStop>,
    functions: HostFunctions,
}

/// A hook that registers more functions into a session's engine.
pub type Extension = dyn Fn(&mut Engine, &Arc<Shared>) + Send + Sync;

impl SessionBuilder {
    pub fn new() -> SessionBuilder {
        SessionBuilder::default()
    }

    /// The sandbox limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The user's question, visible to scripts as `query`.
    pub fn query(mut self, query: impl Into<String>) -> Self {
        self.query = query.into();
        self
    }

    /// Lets scripts call sub-models with `llm_query` and `llm_batch`.
    pub fn llm(mut self, access: LlmAccess) -> Self {
        self.llm = Some(access);
        self
    }

    /// Lets scripts call the embedding program's own functions (see
    /// [`HostFunctions`]), replacing any set before. Async ones run on the
    /// runtime of [`SessionBuilder::llm`] when it is given.
    pub fn functions(mut self, functions: HostFunctions) -> Self {
        self.functions = functions;
        self
    }

    /// Adds one host function to those set so far; refused as
    /// [`HostFunctions::add`] refuses it.
    pub fn function(mut self, function: HostFunction) -> Result<Self, HostFunctionError> {
        self.functions.add(function)?;
        Ok(self)
    }

    /// Stops any cell, and any native scan or sub-model wait in it, when
    /// `check` returns a reason (the run's deadline, Ctrl-C).
    pub fn stop_when(mut self, check: ExternalStop) -> Self {
        self.stop = Some(check);
        self
    }

    /// Registers more functions (recursion, test hooks) into the engine.
    pub fn extend(
        mut self,
        ext: impl Fn(&mut Engine, &Arc<Shared>) + Send + Sync + 'static,
    ) -> Self {
        self.extensions.push(Box::new(ext));
        self
    }

    /// Creates the session over `context`. Costs no pass over the context.
    pub fn build(self, context: &Context) -> Session {
        self.build_view(context.text(), Some(context.clone()))
    }

    /// Creates the session over a view, as child runs do. `origin` is the
    /// context the view belongs to, checked for changes on disk before each cell.
    pub fn build_view(self, view: Text, origin: Option<Context>) -> Session {
        let clock = Arc::new(CellClock::new(self.limits.cell_timeout, self.stop.clone()));
        let interrupt = Some(clock.interrupt());
        let text = view.with_interrupt(interrupt.clone());
        let documents: Array = text
            .documents()
            .into_iter()
            .map(|d| Dynamic::from(d.with_interrupt(interrupt.clone())))
            .collect();
        let shared = Arc::new(Shared {
            output: Mutex::new(None),
            submitted: Mutex::new(None),
            clock,
            context: text.clone(),
            documents: documents.clone(),
            query: self.query.as_str().into(),
            cell: std::sync::atomic::AtomicUsize::new(0),
            backtick_pieces: Mutex::new(HashSet::new()),
            cell_failure: Mutex::new(None),
            cell_failed: std::sync::atomic::AtomicBool::new(false),
            operations: std::sync::atomic::AtomicU64::new(0),
            memory: crate::alloc::is_installed().then(Ledger::new),
            memory_at_start: std::sync::atomic::AtomicUsize::new(0),
        });
        let mut engine = engine::build(&self.limits, &shared);
        let runtime = self.llm.as_ref().map(|access| access.runtime.clone());
        let budget = super::budget::Budget::new(&shared, &self.limits);
        super::host::register(&mut engine, &shared, &budget, &self.functions, runtime);
        super::api_llm::register(&mut engine, &shared, self.llm);
        for ext in &self.extensions {
            ext(&mut engine, &shared);
        }
        // `context` and `query` are not in the scope: the engine's variable
        // hook hands out a fresh read-only copy (a few bytes) at each use,
        // so a method that changes strings in place (`query.to_upper()`)
        // changes only that copy. `documents` is a constant array: copying
        // it at each use would cost O(documents).
        let mut scope = Scope::new();
        scope.push_constant("documents", documents);
        Session {
            engine,
            scope,
            library: AST::empty(),
            shared,
            limits: self.limits,
            origin,
        }
    }
}

/// Runs cells one after another on one persistent scope.
///
/// Variables and `fn` definitions persist between cells; a failing cell
/// keeps what it assigned before the error. Output is captured per session.
pub struct Session {
    engine: Engine,
    scope: Scope<'static>,
    /// Script functions defined by earlier cells.
    library: AST,
    shared: Arc<Shared>,
    limits: Limits,
    origin: Option<Context>,
}

impl Session {
    /// Signatures of every function registered by this crate (not Rhai's
    /// standard library), e.g. `count(t: &mut Text, needle: &str) -> i64`.
    /// The reference in `dsl-docs/` is checked against this list.
    pub fn function_signatures(&self) -> Vec<String> {
        self.engine.gen_fn_signatures(false)
    }

    /// Signatures of every function a script can call, Rhai's standard
    /// library included (host functions check their names against these).
    pub(crate) fn all_function_signatures(&self) -> Vec<String> {
        self.engine.gen_fn_signatures(true)
    }

    /// The script's own variables, oldest first, as JSON (`context`,
    /// `documents` and `query` are left out). This is what persists from
    /// cell to cell; `show_vars()` prints the same list.
    ///
    /// ```
    /// let ctx = rlm::Context::from_string("doc", "a\n");
    /// let mut session = rlm::dsl::SessionBuilder::new().build(&ctx);
    /// session.run_cell("let n = 1; let names = [\"x\"];");
    /// session.run_cell("let n = 2;");
    /// let vars = session.variables();
    /// // `n` keeps its place and takes its latest value.
    /// assert_eq!(vars[0], ("n".to_string(), serde_json::json!(2)));
    /// assert_eq!(vars[1], ("names".to_string(), serde_json::json!(["x"])));
    /// ```
    pub fn variables(&self) -> Vec<(String, serde_json::Value)> {
        let mut vars: Vec<(String, serde_json::Value)> = self
            .scope
            .iter_raw()
            .filter(|(name, _, _)| !is_global(name))
            .map(|(name, _, value)| (name.to_string(), to_json(value)))
            .collect();
        // `iter_raw` walks newest first.
        vars.reverse();
        vars
    }

    /// The state shared with registered functions (clock, submission).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The limits this session enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Runs one cell and reports its output, error and any submitted answer.
    pub fn run_cell(&mut self, code: &str) -> CellOutcome {
        let started = Instant::now();
        self.shared
            .cell
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.shared.clock.restart();
        self.shared.clock.clear_cancel();
        self.shared.take_cell_failure();
        self.shared
            .operations
            .store(0, std::sync::atomic::Ordering::Relaxed);
        let held = self.shared.memory.as_ref().map_or(0, Ledger::held);
        self.shared
            .memory_at_start
            .store(held, std::sync::atomic::Ordering::Relaxed);
        self.set_output(Some(OutputBuffer::new(self.limits.output_chars)));
        if let Ok(mut s) = self.shared.submitted.lock() {
            *s = None;
        }

        let unchanged = self
            .origin
            .as_ref()
            .map_or(Ok(()), Context::check_unchanged);
        let mut context_changed = unchanged.is_err();
        if code.len() > self.limits.max_script_bytes {
            self.set_output(None);
            return CellOutcome {
                output: String::new(),
                truncated: false,
                error: Some(format!(
                    "the cell's code is {} bytes, more than the limit of {} bytes: keep data in the \
                     context or in sub-model answers, not in the code",
                    code.len(),
                    self.limits.max_script_bytes
                )),
                submitted: None,
                context_changed: false,
                duration: started.elapsed(),
            };
        }
        let prepared = source::prepare(code);
        if let Ok(mut pieces) = self.shared.backtick_pieces.lock() {
            pieces.clone_from(&prepared.backtick_pieces);
        }
        let mut result = match unchanged {
            Err(e) => Evaluated::failed(format!("{e}")),
            // Compiled without the session's scope: Rhai's optimizer would
            // fold its constants into the code, and it renders a constant
            // Text (`${context}`) by its type name instead of its contents.
            Ok(()) => match self.engine.compile(&prepared.code) {
                Err(e) => Evaluated::failed(describe_parse_error(&e, code, &prepared)),
                Ok(ast) => match redefined_builtin(&ast) {
                    Some(name) => Evaluated::failed(describe_redefinition(name, code)),
                    None => self.evaluate(ast, code, &prepared),
                },
            },
        };

        if !context_changed {
            // A file rewritten while the cell ran may have mixed old and new
            // bytes into its results.
            if let Some(Err(e)) = self.origin.as_ref().map(Context::check_unchanged) {
                context_changed = true;
                result.error = Some(format!(
                    "{e} (while this cell ran: its results may mix old and new contents)"
                ));
            }
        }
        let (mut output, truncated) = self
            .set_output(None)
            .map_or((String::new(), false), OutputBuffer::render);
        let Evaluated {
            shown,
            error,
            submitted,
        } = result;
        if let (Some(shown), None, None) = (shown, &error, &submitted) {
            // Like a REPL, show the value of a final expression.
            output.push_str(&format!("=> {shown}\n"));
        }
        if output.is_empty() && error.is_none() && submitted.is_none() {
            output = NO_OUTPUT.to_string();
        }
        CellOutcome {
            output,
            truncated,
            error,
            submitted,
            context_changed,
            duration: started.elapsed(),
        }
    }

    fn set_output(&self, buf: Option<OutputBuffer>) -> Option<OutputBuffer> {
        self.shared
            .output
            .lock()
            .ok()
            .and_then(|mut o| std::mem::replace(&mut *o, buf))
    }

    /// Runs a compiled cell with the library of earlier functions, on a
    /// thread with a stack large enough for the call-depth limit.
    ///
    /// Everything the cell produced is turned into text and dropped on
    /// that thread too: its value, the submitted answer, and the error
    /// (a thrown value travels inside it). Any of them may nest as deeply
    /// as the script made them, and dropping a chain of a million closures
    /// overflows an ordinary stack.
    fn evaluate(&mut self, ast: AST, code: &str, prepared: &Prepared) -> Evaluated {
        let program = self.library.merge(&ast);
        let engine = &self.engine;
        let scope = &mut self.scope;
        let (limits, shared) = (&self.limits, &self.shared);
        let stack = limits.stack_bytes();
        let vars_before = scope.len();
        let outcome = std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("rlm-cell".into())
                .stack_size(stack)
                .spawn_scoped(s, || {
                    let _charged = shared.memory.as_ref().map(Ledger::enter);
                    let result = engine.eval_ast_with_scope::<Dynamic>(scope, &program);
                    let over_memory = shared.memory_exceeded(limits.max_memory_bytes).is_some();
                    let too_many_variables = matches!(
                        result.as_ref().map_err(|e| innermost(e)),
                        Err(EvalAltResult::ErrorTooManyVariables(_))
                    );
                    if too_many_variables || over_memory {
                        // Otherwise every later `let` (or every later
                        // operation, over the memory limit) would fail too.
                        scope.rewind(vars_before);
                    }
                    let submitted = shared
                        .submitted
                        .lock()
                        .ok()
                        .and_then(|mut s| s.take())
                        .map(|v| answer(&v, limits));
                    let evaluated = match result {
                        Ok(value) if value.is_unit() => Evaluated::default(),
                        Ok(value) => Evaluated {
                            shown: Some(display(&value)),
                            ..Evaluated::default()
                        },
                        // `submit` inside a `map` closure or a function
                        // arrives wrapped in the calls it passed through.
                        Err(err) => match innermost(&err) {
                            EvalAltResult::ErrorTerminated(token, _)
                                if token.to_string() == SUBMIT_TOKEN =>
                            {
                                Evaluated::default()
                            }
                            _ => Evaluated::failed(describe_eval_error(
                                limits, shared, &err, code, prepared,
                            )),
                        },
                    };
                    // Dropping replaced values can recurse as deep as the
                    // script nested them: do it here, on the big stack.
                    dedupe(scope);
                    match submitted {
                        Some(Err(e)) => Evaluated::failed(e),
                        Some(Ok(a)) => Evaluated {
                            submitted: Some(a),
                            ..evaluated
                        },
                        None => evaluated,
                    }
                })
                .map(|h| h.join())
        });
        self.library = program;
        self.library.clear_statements();
        match outcome {
            Err(spawn) => Evaluated::failed(format!("could not start the cell's thread: {spawn}")),
            Ok(Err(_panic)) => Evaluated::failed("internal error: the cell panicked; the session is still usable. Please report this script.".into()),
            Ok(Ok(evaluated)) => evaluated,
        }
    }
}

/// What a cell's evaluation produced, already turned into text.
#[derive(Default)]
struct Evaluated {
    /// The final expression's value as shown after `=>`, if not `()`.
    shown: Option<String>,
    error: Option<String>,
    submitted: Option<Answer>,
}

impl Evaluated {
    fn failed(error: String) -> Evaluated {
        Evaluated {
            error: Some(error),
            ..Evaluated::default()
        }
    }
}

/// The submitted value as an answer, or why it cannot be one: an answer
/// larger than the string limit is refused before it is copied.
fn answer(value: &Dynamic, limits: &Limits) -> Result<Answer, String> {
    let size = estimated_size(value);
    if size > limits.max_string_bytes {
        return Err(format!(
            "the submitted answer is about {size} bytes, more than the string limit of {} bytes: \
             submit a summary, counts or a short list instead of the text itself",
            limits.max_string_bytes
        ));
    }
    Ok(Answer {
        value: to_json(value),
        text: display(value),
    })
}

fn describe_eval_error(
    limits: &Limits,
    shared: &Shared,
    err: &EvalAltResult,
    code: &str,
    prepared: &Prepared,
) -> String {
    let root = innermost(err);
    let failure = shared.take_cell_failure();
    let message = match root {
        EvalAltResult::ErrorTerminated(..) if failure.is_some() => failure.unwrap_or_default(),
        EvalAltResult::ErrorTerminated(..) => match shared.clock.stop_reason() {
            Some(reason) => reason.to_string(),
            None => StopReason::Timeout(limits.cell_timeout).to_string(),
        },
        EvalAltResult::ErrorTooManyOperations(_) => too_many_operations(limits.max_operations),
        EvalAltResult::ErrorDataTooLarge(what, _) => format!(
            "{what} exceeded its limit (strings {} bytes, arrays {} items, maps {} entries). \
             Keep large text as views (slice, chunks) rather than strings, and print summaries",
            limits.max_string_bytes, limits.max_array_len, limits.max_map_len
        ),
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "call depth limit of {} exceeded: the recursion is too deep; use a loop instead",
            limits.max_call_depth
        ),
        EvalAltResult::ErrorTooManyVariables(_) => {
            format!("more than {} variables are defined; reuse variables or keep values in arrays and maps", limits.max_variables)
        }
        EvalAltResult::ErrorModuleNotFound(..) | EvalAltResult::ErrorTooManyModules(_) => {
            "`import` is not available in this sandbox: every function is already defined (see the reference)".into()
        }
        _ => {
            let full = strip_position(&err.to_string());
            let mut m = full.strip_prefix("Runtime error: ").unwrap_or(&full).to_string();
            if let Some(hint) = hints::runtime_hint(root) {
                m.push_str("\nHint: ");
                m.push_str(&hint);
            }
            m
        }
    };
    // Rhai names our type by its Rust path in some messages.
    let message = message.replace("rlm::text::Text", "Text");
    with_location(
        cap_message(message),
        prepared.original_position(err.position()),
        code,
    )
}

/// Longest error message a model or a terminal is shown; a message that
/// quotes a large value (`parse_int` of a whole context) keeps its start
/// and end.
const MAX_MESSAGE: usize = 2_000;

fn cap_message(message: String) -> String {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let head = floor_char(&message, MAX_MESSAGE * 3 / 4);
    let tail = ceil_char(&message, message.len() - MAX_MESSAGE / 4);
    format!(
        "{} [... {} bytes cut ...] {}",
        &message[..head],
        tail - head,
        &message[tail..]
    )
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

impl Drop for Session {
    /// Values a script built can nest deeply enough that dropping them
    /// overflows an ordinary stack; drop the scope on a cell-sized one.
    fn drop(&mut self) {
        let scope = std::mem::take(&mut self.scope);
        let stack = self.limits.stack_bytes();
        let dropper = std::thread::Builder::new()
            .name("rlm-drop".into())
            .stack_size(stack)
            .spawn(move || drop(scope));
        if let Ok(handle) = dropper {
            let _ = handle.join();
        }
    }
}

/// Why a cell stopped at its operation limit, and what to do instead.
pub(crate) fn too_many_operations(limit: u64) -> String {
    format!(
        "the cell exceeded its limit of {limit} operations. Script loops over every line or character are slow; \
         use grep(), matches(), count_matches() or chunks() so native code does the scanning"
    )
}

/// The deepest error in a chain of function-call errors.
fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => innermost(inner),
        other => other,
    }
}

fn describe_parse_error(err: &ParseError, code: &str, prepared: &Prepared) -> String {
    let detail = strip_position(&err.err_type().to_string());
    let mut message = format!("syntax error: {detail}");
    if let Some(hint) = hints::parse_hint(code, &detail) {
        message.push_str("\nHint: ");
        message.push_str(&hint);
    }
    with_location(message, prepared.original_position(err.position()), code)
}

/// Functions a script may not define: `submit` and its aliases end the run,
/// and a script version (which Rhai would prefer) would turn every later
/// submit into a no-op.
const RESERVED_FUNCTIONS: &[&str] = &["submit", "FINAL", "SUBMIT"];

fn redefined_builtin(ast: &AST) -> Option<&'static str> {
    ast.iter_functions().find_map(|f| {
        RESERVED_FUNCTIONS
            .iter()
            .copied()
            .find(|name| *name == f.name)
    })
}

fn describe_redefinition(name: &str, code: &str) -> String {
    let message = format!(
        "`{name}` is built in and cannot be redefined: it ends the run with your answer. \
         Call `{name}(answer)` to finish, and give your own function another name"
    );
    let declared = code.lines().enumerate().find_map(|(i, line)| {
        let at = line.find(&format!("fn {name}"))?;
        Some((i + 1, line[..at].chars().count() + 1))
    });
    let position = declared
        .and_then(|(line, col)| {
            Some(Position::new(
                u16::try_from(line).ok()?,
                u16::try_from(col).ok()?,
            ))
        })
        .unwrap_or(Position::NONE);
    with_location(message, position, code)
}

/// Rhai appends " (line L, position C)"; we show our own location block.
fn strip_position(message: &str) -> String {
    match message.rfind(" (line ") {
        Some(i) if message.ends_with(')') => message[..i].to_string(),
        _ => message.to_string(),
    }
}

/// Appends "at line L, column C" and the offending line with a caret.
fn with_location(message: String, pos: Position, code: &str) -> String {
    let (Some(line), col) = (pos.line(), pos.position()) else {
        return message;
    };
    let Some(source) = code.lines().nth(line.saturating_sub(1)) else {
        return format!("{message}\n  at line {line}");
    };
    let col = col.unwrap_or(1).max(1);
    let gutter = line.to_string().len();
    // A long line (a 2 MB one-line script) is quoted around the column.
    const SHOWN: usize = 120;
    let chars: Vec<char> = source.chars().collect();
    let first = col.saturating_sub(SHOWN / 2 + 1).min(chars.len());
    let last = (first + SHOWN).min(chars.len());
    let (open, close) = (
        if first > 0 { "..." } else { "" },
        if last < chars.len() { "..." } else { "" },
    );
    let shown: String = chars[first..last].iter().collect();
    format!(
        "{message}\n  at line {line}, column {col}:\n{line} | {open}{shown}{close}\n{} | {}^",
        " ".repeat(gutter),
        " ".repeat(col - 1 - first + open.len())
    )
}

/// Keeps one entry per variable name, so re-declared `let`s do not pile
/// up and keep old large values alive: the latest value, at the place the
/// name was first declared (as a Python dict keeps a re-bound key's place).
///
/// Positions are taken from `into_iter` alone. Rhai's `iter_raw` walks the
/// scope newest first while `into_iter` walks it oldest first; mixing the
/// two orders once kept the wrong entries and emptied the session.
fn dedupe(scope: &mut Scope<'static>) {
    let mut seen = std::collections::HashSet::new();
    if scope.iter_raw().all(|(name, _, _)| seen.insert(name)) {
        return;
    }
    let mut order: Vec<String> = Vec::new();
    let mut latest: std::collections::HashMap<String, Dynamic> = std::collections::HashMap::new();
    for (name, value, _) in std::mem::take(scope) {
        // Replacing drops the older value here, on the cell's big stack.
        if latest.insert(name.clone(), value).is_none() {
            order.push(name);
        }
    }
    for name in order {
        let Some(value) = latest.remove(&name) else {
            continue;
        };
        if value.is_read_only() {
            scope.push_constant_dynamic(name, value);
        } else {
            scope.push_dynamic(name, value);
        }
    }
}

/// "1.5 MiB"
pub(crate) fn mebibytes(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// The session globals, which every scope holds and no listing shows.
pub(crate) fn is_global(name: &str) -> bool {
    matches!(name, "context" | "documents" | "query")
}

/// "1.2 MiB", "3 items": a value's size for `show_vars()`.
pub(crate) fn describe_size(value: &Dynamic) -> String {
    if let Some(t) = value.read_lock::<Text>() {
        return format!("{} bytes, view at {}..{}", t.len(), t.start(), t.end());
    }
    if let Some(s) = value.read_lock::<ImmutableString>() {
        return format!("{} bytes", s.len());
    }
    if let Some(a) = value.read_lock::<Array>() {
        return format!("{} items", a.len());
    }
    if let Some(m) = value.read_lock::<Map>() {
        return format!("{} entries", m.len());
    }
    if value.is::<rhai::FnPtr>() {
        return "a function".into();
    }
    // A variable a closure captured is shared; show its value, not Rhai's
    // wrapper ("5 (shared)").
    let shown = display(&value.flatten_clone());
    if shown.len() > 40 {
        format!(
            "{}...",
            &shown[..shown.char_indices().nth(40).map_or(shown.len(), |(i, _)| i)]
        )
    } else {
        shown
    }
}
