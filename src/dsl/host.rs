//! Host functions: script functions the embedding program provides.
//!
//! A program that embeds `rlm` registers its own functions for scripts to
//! call, as DSPy's `tools=` does: a `lookup_customer(id)` that queries the
//! program's database, a `fetch_order(id)` that calls its API. Each is a
//! [`HostFunction`] with a name, a declared signature, a doc string and a
//! closure over plain [`serde_json::Value`]s, so the embedder never touches
//! Rhai types. A [`HostFunctions`] set is validated as functions are added
//! and handed to [`SessionBuilder::functions`](super::SessionBuilder::functions)
//! or [`RlmBuilder::functions`](crate::driver::RlmBuilder::functions).
//!
//! How a call runs, and why:
//!
//! * **Arguments** are checked against the signature (count and types)
//!   before the closure runs, and converted to JSON as `to_json` does (a
//!   Text view becomes a string). Converting copies, so the copy must fit
//!   the session's memory first, as every native result must (`budget`).
//! * **A sync function** runs on the cell's thread and its time counts
//!   against the cell's time limit, like any native function: if the cell
//!   is over its limit when the function returns, the cell stops there.
//! * **An async function** runs on the session's tokio runtime (the one
//!   `llm_query` uses; a private one in a session without sub-models) with
//!   the cell clock paused, as a sub-model call does. An interrupt or the
//!   run's deadline stops the wait within 50 ms and aborts the task.
//! * **Results** must fit the session's memory limit before they become
//!   script values, and Rhai's size limits apply after, as for any value.
//! * **Failures** (an `Err`, a panic, a result of the wrong type) become
//!   script errors that name the function; a script can `try`/`catch` them
//!   and the session stays usable. A panic never crosses into the session.
//!
//! ```
//! use rlm::dsl::{HostError, HostFunction, HostFunctions, SessionBuilder, ValueType};
//! use serde_json::json;
//!
//! let lookup = HostFunction::sync("lookup_customer", |args| match args[0].as_i64() {
//!     Some(42) => Ok(json!({"name": "Ada", "plan": "pro"})),
//!     _ => Err(HostError::new("no such customer")),
//! })
//! .param("id", ValueType::Int)
//! .returns(ValueType::Map)
//! .doc("The customer with this id: #{name, plan}.");
//! let functions = HostFunctions::new().with(lookup)?;
//!
//! let ctx = rlm::Context::from_string("doc", "customer 42 called\n");
//! let mut session = SessionBuilder::new().functions(functions).build(&ctx);
//! let out = session.run_cell("print(lookup_customer(42).name);");
//! assert_eq!(out.output, "Ada\n");
//! let out = session.run_cell("lookup_customer(7);");
//! assert!(out.error.unwrap().contains("lookup_customer(id: int) failed: no such customer"));
//! # Ok::<(), rlm::dsl::HostFunctionError>(())
//! ```

use std::any::TypeId;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rhai::{Array, Dynamic, Engine, ImmutableString, Map};
use serde_json::Value;

use super::budget::{Budget, VIEW_ITEM};
use super::clock::StopReason;
use super::convert::{estimated_size, from_json, script_error, to_json, Fallible};
use super::session::{Shared, STOP_TOKEN};
use crate::Text;

/// What a host function returns: a value, or why it failed.
pub type HostResult = Result<Value, HostError>;

/// The future an async host function returns.
pub type HostFuture = Pin<Box<dyn Future<Output = HostResult> + Send + 'static>>;

type SyncFn = dyn Fn(&[Value]) -> HostResult + Send + Sync;
type AsyncFn = dyn Fn(Vec<Value>) -> HostFuture + Send + Sync;

/// Why a host function failed; the script sees the message after the
/// function's signature (`lookup_customer(id: int) failed: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HostError {
    message: String,
}

impl HostError {
    /// An error with this message, written for the model: say what failed
    /// and what to try instead.
    pub fn new(message: impl Into<String>) -> HostError {
        HostError {
            message: message.into(),
        }
    }

    /// An error from any error type, with its causes.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> HostError {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        HostError { message }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<String> for HostError {
    fn from(message: String) -> Self {
        HostError::new(message)
    }
}

impl From<&str> for HostError {
    fn from(message: &str) -> Self {
        HostError::new(message)
    }
}

/// Why a host function cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostFunctionError {
    #[error("`{0}` is not a valid function name: use ASCII letters, digits and `_`, starting with a letter or `_`")]
    InvalidName(String),
    #[error("`{0}` is a Rhai keyword and cannot name a function; choose another name")]
    Keyword(String),
    #[error("`{0}` is a built-in DSL function; a host function of that name would shadow it, so choose another name")]
    ShadowsBuiltin(String),
    #[error("a host function named `{0}` is already registered")]
    Duplicate(String),
    #[error("host function `{function}`: `{param}` is not a valid parameter name")]
    InvalidParam { function: String, param: String },
    #[error("host function `{function}`: parameter `{param}` is declared twice")]
    DuplicateParam { function: String, param: String },
}

/// The type of a parameter or a result, as the model reads it in the
/// signature and as arguments are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueType {
    /// Any value.
    #[default]
    Any,
    Bool,
    Int,
    /// A number: an int argument is accepted too.
    Float,
    /// A string or a Text view (passed to the function as a string).
    String,
    Array,
    Map,
}

impl ValueType {
    /// The name shown in signatures: `int`, `string`, ...
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Any => "any",
            ValueType::Bool => "bool",
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::String => "string",
            ValueType::Array => "array",
            ValueType::Map => "map",
        }
    }

    fn accepts(self, value: &Dynamic) -> bool {
        match self {
            ValueType::Any => true,
            ValueType::Bool => value.is_bool(),
            ValueType::Int => value.is_int(),
            ValueType::Float => value.is_float() || value.is_int(),
            ValueType::String => value.is_string() || value.is_char() || value.is::<Text>(),
            ValueType::Array => value.is_array(),
            ValueType::Map => value.is_map(),
        }
    }

    /// Whether a result is of this type; `null` (`()` in scripts) always
    /// is, so a function may say "nothing found".
    fn admits(self, value: &Value) -> bool {
        match (self, value) {
            (ValueType::Any, _) | (_, Value::Null) => true,
            (ValueType::Bool, Value::Bool(_)) => true,
            (ValueType::Int, Value::Number(n)) => n.is_i64(),
            (ValueType::Float, Value::Number(_)) => true,
            (ValueType::String, Value::String(_)) => true,
            (ValueType::Array, Value::Array(_)) => true,
            (ValueType::Map, Value::Object(_)) => true,
            _ => false,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone)]
enum Call {
    Sync(Arc<SyncFn>),
    Async(Arc<AsyncFn>),
}

/// One function for scripts, provided by the embedding program.
///
/// Built with [`HostFunction::sync`] or [`HostFunction::asynchronous`],
/// then [`param`](HostFunction::param) once per parameter, in order, a
/// [`returns`](HostFunction::returns) type and a [`doc`](HostFunction::doc)
/// string. The model sees `name(param: type, ...) -> type` and the doc in
/// its quick reference, so write the doc for the model: what it returns,
/// what it costs, what a miss looks like.
#[derive(Clone)]
pub struct HostFunction {
    name: String,
    params: Vec<(String, ValueType)>,
    returns: ValueType,
    doc: String,
    call: Call,
}

impl fmt::Debug for HostFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostFunction")
            .field("signature", &self.signature())
            .field("async", &self.is_async())
            .finish()
    }
}

impl HostFunction {
    /// A function that runs on the cell's thread; its time counts against
    /// the cell's time limit. Arguments arrive checked against the declared
    /// parameters, so `args.len()` is their number.
    pub fn sync(
        name: impl Into<String>,
        f: impl Fn(&[Value]) -> HostResult + Send + Sync + 'static,
    ) -> HostFunction {
        HostFunction::with_call(name, Call::Sync(Arc::new(f)))
    }

    /// A function that returns a future, run on the session's tokio
    /// runtime while the cell clock is paused (as `llm_query` is). Use it
    /// for network and database calls; an interrupt drops the future.
    pub fn asynchronous<F, Fut>(name: impl Into<String>, f: F) -> HostFunction
    where
        F: Fn(Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HostResult> + Send + 'static,
    {
        let call: Arc<AsyncFn> = Arc::new(move |args| Box::pin(f(args)) as HostFuture);
        HostFunction::with_call(name, Call::Async(call))
    }

    fn with_call(name: impl Into<String>, call: Call) -> HostFunction {
        HostFunction {
            name: name.into(),
            params: Vec::new(),
            returns: ValueType::Any,
            doc: String::new(),
            call,
        }
    }

    /// Declares the next parameter.
    pub fn param(mut self, name: impl Into<String>, ty: ValueType) -> Self {
        self.params.push((name.into(), ty));
        self
    }

    /// Declares the result's type (default: any). `null` is always allowed.
    pub fn returns(mut self, ty: ValueType) -> Self {
        self.returns = ty;
        self
    }

    /// The doc string the model reads beside the signature.
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }

    /// The function's name in scripts.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The doc string.
    pub fn documentation(&self) -> &str {
        &self.doc
    }

    /// Whether the function is async (its waits pause the cell clock).
    pub fn is_async(&self) -> bool {
        matches!(self.call, Call::Async(_))
    }

    /// `lookup_customer(id: int) -> map`
    pub fn signature(&self) -> String {
        let mut s = self.call_form();
        if self.returns != ValueType::Any {
            s.push_str(" -> ");
            s.push_str(self.returns.name());
        }
        s
    }

    /// `lookup_customer(id: int)`, how errors name the function.
    fn call_form(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(name, ty)| format!("{name}: {ty}"))
            .collect();
        format!("{}({})", self.name, params.join(", "))
    }

    fn validate(&self) -> Result<(), HostFunctionError> {
        let name = &self.name;
        if !is_identifier(name) {
            return Err(HostFunctionError::InvalidName(name.clone()));
        }
        // An identifier that is still not a valid name is a keyword or a
        // reserved word (`if`, `print`, `type_of`, `spawn`).
        if !rhai::is_valid_function_name(name) {
            return Err(HostFunctionError::Keyword(name.clone()));
        }
        if builtin_names().contains(name.as_str()) {
            return Err(HostFunctionError::ShadowsBuiltin(name.clone()));
        }
        let mut seen = HashSet::new();
        for (param, _) in &self.params {
            if !is_identifier(param) {
                return Err(HostFunctionError::InvalidParam {
                    function: name.clone(),
                    param: param.clone(),
                });
            }
            if !seen.insert(param.as_str()) {
                return Err(HostFunctionError::DuplicateParam {
                    function: name.clone(),
                    param: param.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A validated set of host functions, in the order they were added.
///
/// Cheap to clone: the closures are shared.
#[derive(Clone, Debug, Default)]
pub struct HostFunctions {
    functions: Vec<HostFunction>,
}

impl HostFunctions {
    pub fn new() -> HostFunctions {
        HostFunctions::default()
    }

    /// Adds `function`, refusing a name that is not an identifier, is a Rhai
    /// keyword, shadows a built-in DSL function or is already in the set.
    pub fn add(&mut self, function: HostFunction) -> Result<(), HostFunctionError> {
        function.validate()?;
        if self.functions.iter().any(|f| f.name == function.name) {
            return Err(HostFunctionError::Duplicate(function.name));
        }
        self.functions.push(function);
        Ok(())
    }

    /// [`HostFunctions::add`], builder style.
    pub fn with(mut self, function: HostFunction) -> Result<Self, HostFunctionError> {
        self.add(function)?;
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    pub fn len(&self) -> usize {
        self.functions.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &HostFunction> {
        self.functions.iter()
    }

    /// The section of the model's quick reference that lists these
    /// functions, or `None` when there are none.
    pub fn quick_reference(&self) -> Option<String> {
        if self.functions.is_empty() {
            return None;
        }
        let mut s = String::from(
            "**Host functions** (provided by the application running you; call them like any other function)\n",
        );
        for f in &self.functions {
            s.push_str("- `");
            s.push_str(&f.signature());
            s.push('`');
            if f.is_async() {
                s.push_str(" (waiting does not count against a cell's limit)");
            }
            let doc = f.doc.split_whitespace().collect::<Vec<_>>().join(" ");
            if !doc.is_empty() {
                s.push_str(": ");
                s.push_str(&doc);
            }
            s.push('\n');
        }
        Some(s)
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().any(|c| c != '_')
}

/// Every function name a session has before host functions are added:
/// ours, Rhai's standard library's, and the driver's (`rlm_query`,
/// `rlm_batch`, registered per run) and custom syntax (`show_vars`).
fn builtin_names() -> &'static HashSet<String> {
    static NAMES: OnceLock<HashSet<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let ctx = crate::Context::from_string("", "");
        let session = super::SessionBuilder::new().build(&ctx);
        let mut names: HashSet<String> = session
            .all_function_signatures()
            .iter()
            .filter_map(|sig| {
                let sig = sig.strip_prefix("fn ").unwrap_or(sig);
                let name = sig.split('(').next()?.trim();
                is_identifier(name).then(|| name.to_string())
            })
            .collect();
        for extra in [
            "rlm_query",
            "rlm_batch",
            "show_vars",
            "submit",
            "FINAL",
            "SUBMIT",
        ] {
            names.insert(extra.to_string());
        }
        names
    })
}

/// A tokio runtime for async host functions in sessions that have none
/// (no sub-models configured). Started on first use, kept for the process.
fn private_runtime() -> Fallible<tokio::runtime::Handle> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("rlm-host")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map(|rt| rt.handle().clone())
        .map_err(|e| {
            script_error(format!(
                "cannot start a runtime for async host functions: {e}"
            ))
        })
}

/// Argument counts registered besides the declared one, so a call with
/// a few too many arguments gets our message instead of Rhai's "function
/// not found".
const EXTRA_ARITIES: usize = 3;

/// Registers `functions` into a session's engine. `runtime` runs the async
/// ones; `None` uses a private runtime.
pub(crate) fn register(
    engine: &mut Engine,
    shared: &Arc<Shared>,
    budget: &Budget,
    functions: &HostFunctions,
    runtime: Option<tokio::runtime::Handle>,
) {
    for f in &functions.functions {
        let bound = Arc::new(Bound {
            function: f.clone(),
            shared: shared.clone(),
            budget: budget.clone(),
            runtime: runtime.clone(),
        });
        let declared = f.params.len();
        for arity in 0..=declared + EXTRA_ARITIES {
            let bound = bound.clone();
            engine.register_raw_fn(
                f.name.clone(),
                vec![TypeId::of::<Dynamic>(); arity],
                move |_, args| -> Fallible<Dynamic> {
                    if arity != declared {
                        return Err(script_error(bound.arity_message(arity)));
                    }
                    bound.call(args)
                },
            );
        }
    }
}

/// A host function bound to one session.
struct Bound {
    function: HostFunction,
    shared: Arc<Shared>,
    budget: Budget,
    runtime: Option<tokio::runtime::Handle>,
}

impl Bound {
    fn arity_message(&self, got: usize) -> String {
        let want = self.function.params.len();
        format!(
            "`{}` takes {want} argument{}, but was called with {got}: call it as `{}`",
            self.function.name,
            if want == 1 { "" } else { "s" },
            self.function.signature()
        )
    }

    fn call(&self, args: &mut [&mut Dynamic]) -> Fallible<Dynamic> {
        let args = self.arguments(args)?;
        let result = match &self.function.call {
            Call::Sync(f) => self.call_sync(f, &args)?,
            Call::Async(f) => self.call_async(f, args)?,
        };
        let value = result.map_err(|e| self.failed(e.message()))?;
        self.result(value)
    }

    /// The arguments as JSON, after their types and the copy's size are checked.
    fn arguments(&self, args: &mut [&mut Dynamic]) -> Fallible<Vec<Value>> {
        let f = &self.function;
        for (i, (arg, (param, ty))) in args.iter().zip(&f.params).enumerate() {
            if !ty.accepts(arg) {
                return Err(script_error(format!(
                    "`{}`: argument {} (`{param}`) must be {} {ty}, not {}; call it as `{}`",
                    f.name,
                    i + 1,
                    article(ty.name()),
                    kind_of(arg),
                    f.signature()
                )));
            }
        }
        let size = args
            .iter()
            .map(|a| estimated_size(a))
            .fold(0, usize::saturating_add);
        self.budget.allow(
            &format!("passing these arguments to `{}`", f.name),
            size,
            0,
            "pass a slice or a summary rather than the whole text",
        )?;
        Ok(args.iter().map(|a| to_json(a)).collect())
    }

    fn call_sync(&self, f: &Arc<SyncFn>, args: &[Value]) -> Fallible<HostResult> {
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| f(args)));
        // A sync function is one native step: the cell's clock is checked
        // here rather than waiting for the script's next checkpoint, which
        // a cell that ends right after the call would never reach.
        if let Some(reason) = self.shared.clock.stop_reason() {
            if matches!(reason, StopReason::Timeout(_)) {
                self.shared.fail_cell(format!(
                    "{reason}. The host function `{}` took {:.1}s of it",
                    self.function.name,
                    started.elapsed().as_secs_f64()
                ));
            }
            return Err(stopped());
        }
        result.map_err(|panic| self.panicked(panic.as_ref()))
    }

    fn call_async(&self, f: &Arc<AsyncFn>, args: Vec<Value>) -> Fallible<HostResult> {
        let runtime = match &self.runtime {
            Some(handle) => handle.clone(),
            None => private_runtime()?,
        };
        // Making the future runs the closure's synchronous part, which may panic too.
        let future = catch_unwind(AssertUnwindSafe(|| f(args)))
            .map_err(|panic| self.panicked(panic.as_ref()))?;
        let _paused = self.shared.clock.pause();
        let task = runtime.spawn(future);
        let abort = task.abort_handle();
        match runtime.block_on(super::api_llm::until_stopped(&self.shared, task)) {
            Err(stop) => {
                abort.abort();
                Err(stop)
            }
            Ok(Ok(result)) => Ok(result),
            Ok(Err(join)) if join.is_panic() => Err(self.panicked(join.into_panic().as_ref())),
            Ok(Err(_)) => Err(self.failed("its task was cancelled")),
        }
    }

    /// The function's result as a script value, once it is known to fit.
    fn result(&self, value: Value) -> Fallible<Dynamic> {
        let f = &self.function;
        if !f.returns.admits(&value) {
            return Err(self.failed(format!(
                "it returned {}, but its signature says {} (a bug in the host program, not in your script)",
                json_kind(&value),
                f.returns
            )));
        }
        let (text, items) = json_size(&value);
        self.budget.allow(
            &format!("the result of `{}`", f.name),
            text,
            items.saturating_mul(VIEW_ITEM),
            "ask it for less, or free variables you no longer need",
        )?;
        Ok(from_json(value))
    }

    fn failed(&self, why: impl fmt::Display) -> Box<rhai::EvalAltResult> {
        script_error(format!("{} failed: {why}", self.function.call_form()))
    }

    fn panicked(&self, payload: &(dyn std::any::Any + Send)) -> Box<rhai::EvalAltResult> {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        script_error(format!(
            "{} failed: the host function panicked ({what}); the session is still usable",
            self.function.call_form()
        ))
    }
}

/// Stops the cell in a way `try`/`catch` cannot swallow; the session says
/// why from its clock.
fn stopped() -> Box<rhai::EvalAltResult> {
    rhai::EvalAltResult::ErrorTerminated(Dynamic::from(STOP_TOKEN), rhai::Position::NONE).into()
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// How an argument's type reads in an error: "a string", "a Text", "()".
fn kind_of(value: &Dynamic) -> &'static str {
    if value.is_unit() {
        "() (unset)"
    } else if value.is::<Text>() {
        "a Text"
    } else if value.is::<ImmutableString>() {
        "a string"
    } else if value.is_int() {
        "an int"
    } else if value.is_float() {
        "a float"
    } else if value.is_bool() {
        "a bool"
    } else if value.is::<Array>() {
        "an array"
    } else if value.is::<Map>() {
        "a map"
    } else {
        "another type"
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(n) if n.is_i64() => "an int",
        Value::Number(_) => "a float",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}

/// Bytes of text and number of values in a JSON value, counted without
/// copying; without recursion, since a host may build any depth.
fn json_size(value: &Value) -> (usize, usize) {
    let (mut text, mut items) = (0usize, 0usize);
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        items = items.saturating_add(1);
        match v {
            Value::String(s) => text = text.saturating_add(s.len()),
            Value::Array(a) => stack.extend(a),
            Value::Object(o) => {
                for (k, v) in o {
                    text = text.saturating_add(k.len());
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
    (text, items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(name: &str) -> HostFunction {
        HostFunction::sync(name, |_| Ok(Value::Null))
    }

    #[test]
    fn names_that_are_keywords_builtins_or_not_identifiers_are_refused() {
        let mut fns = HostFunctions::new();
        assert_eq!(
            fns.add(noop("if")),
            Err(HostFunctionError::Keyword("if".into()))
        );
        assert_eq!(
            fns.add(noop("print")),
            Err(HostFunctionError::Keyword("print".into()))
        );
        for builtin in [
            "grep",
            "llm_query",
            "rlm_query",
            "submit",
            "len",
            "show_vars",
        ] {
            assert_eq!(
                fns.add(noop(builtin)),
                Err(HostFunctionError::ShadowsBuiltin(builtin.into())),
                "{builtin}"
            );
        }
        for bad in ["", "2fast", "my-fn", "_", "héllo"] {
            assert_eq!(
                fns.add(noop(bad)),
                Err(HostFunctionError::InvalidName(bad.into()))
            );
        }
        fns.add(noop("lookup_customer")).unwrap();
        assert_eq!(
            fns.add(noop("lookup_customer")),
            Err(HostFunctionError::Duplicate("lookup_customer".into()))
        );
        let twice = noop("pair")
            .param("a", ValueType::Int)
            .param("a", ValueType::Int);
        assert!(matches!(
            fns.add(twice),
            Err(HostFunctionError::DuplicateParam { .. })
        ));
    }

    #[test]
    fn the_quick_reference_lists_signatures_and_docs() {
        assert_eq!(HostFunctions::new().quick_reference(), None);
        let fns = HostFunctions::new()
            .with(
                noop("lookup_customer")
                    .param("id", ValueType::Int)
                    .returns(ValueType::Map)
                    .doc("The customer:\n  #{name, plan}."),
            )
            .unwrap()
            .with(HostFunction::asynchronous("ping", |_| async {
                Ok(Value::Null)
            }))
            .unwrap();
        let section = fns.quick_reference().unwrap();
        assert!(
            section.contains("- `lookup_customer(id: int) -> map`: The customer: #{name, plan}.\n")
        );
        assert!(section.contains("- `ping()` (waiting does not count"));
    }

    #[test]
    fn json_size_counts_text_and_values() {
        let v = serde_json::json!({"name": "Ada", "tags": ["a", "bc"]});
        assert_eq!(json_size(&v), (4 + 3 + 4 + 3, 5));
    }
}
