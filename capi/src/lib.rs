//! # rlm-capi: the C ABI of rlm
//!
//! `include/rlm.h` declares it; `docs/embedding.md` is the guide. The
//! library builds as `librlm_capi.so` and `librlm_capi.a` (and an rlib, so
//! Rust tests can call the same functions).
//!
//! * [`rlm_builder`] wraps an [`RlmBuilder`] made from a JSON config with
//!   the keys of `rlm.toml` ([`Settings::from_json`]); C callbacks become
//!   an event sink ([`CEvents`]), a [`Model`] ([`CModel`]) and
//!   [`HostFunction`]s.
//! * [`rlm_runner`] owns the built [`Rlm`]; [`rlm_run`] blocks on
//!   [`Rlm::run`] and returns its [`RunResult`](rlm::driver::RunResult) as
//!   JSON.
//! * [`rlm_context`] is a [`Context`], opened from paths or copied from a
//!   buffer.
//!
//! Every entry point runs inside [`guard`]: a panic is caught and returned
//! as an error string, since unwinding into C is undefined behaviour.
//! Every string handed out is a `CString` given up with `into_raw` and
//! taken back by [`rlm_string_free`]; every handle is a `Box` given up the
//! same way and taken back by its `_free`.

#![allow(non_camel_case_types)]
// The functions take raw pointers from C; their safety contract is the
// header's, stated once there rather than on every function.
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use rlm::config::Settings;
use rlm::driver::{Rlm, RlmBuilder};
use rlm::dsl::{HostError, HostFunction, HostFunctions, ValueType};
use rlm::events::{RunEvent, RunSink};
use rlm::llm::{
    BoxFuture, Completion, Failure, FinishReason, LlmError, Model, ModelCall, Response,
};
use rlm::Context;
use serde_json::{json, Value};

/// Receives each run event as one trace line of JSON.
///
/// The callbacks are `C-unwind`: the same calling convention as C, but a
/// host whose callbacks can unwind (a Rust or C++ host) gets its panic
/// caught and reported as the call's error instead of undefined behaviour.
pub type rlm_event_fn = extern "C-unwind" fn(user: *mut c_void, event_json: *const c_char);
/// Answers one model call on `reply`.
pub type rlm_model_fn =
    extern "C-unwind" fn(user: *mut c_void, call_json: *const c_char, reply: *mut rlm_reply);
/// A host function: arguments as a JSON array, the result on `reply`.
pub type rlm_function_fn =
    extern "C-unwind" fn(user: *mut c_void, args_json: *const c_char, reply: *mut rlm_reply);

/// A runner being configured.
pub struct rlm_builder {
    /// `None` once built.
    builder: Option<RlmBuilder>,
    /// Kept here until the build, since adding one to an [`RlmBuilder`]
    /// consumes it even when the name is refused.
    functions: HostFunctions,
    events: bool,
}

/// A configured runtime for runs.
pub struct rlm_runner {
    rlm: Arc<Rlm>,
}

/// The input a run is asked about.
pub struct rlm_context {
    context: Context,
}

/// Cancels a runner's runs; holds the runner weakly, so it outlives it.
pub struct rlm_cancel {
    flag: Weak<AtomicBool>,
}

/// What a callback answered.
#[derive(Default)]
pub struct rlm_reply {
    outcome: Option<Result<Answer, String>>,
}

enum Answer {
    Text {
        text: String,
        input: u64,
        output: u64,
    },
    Json(Value),
}

/// The host's `void *user`, passed back to its callbacks. The header makes
/// the host responsible for what the callbacks do with it on our threads.
#[derive(Clone, Copy)]
struct User(*mut c_void);
// SAFETY: the pointer is never dereferenced here, only handed back to the
// host's callbacks, which the header requires to be thread-safe.
unsafe impl Send for User {}
unsafe impl Sync for User {}

impl User {
    /// The pointer. A method, so a closure captures the whole `User`
    /// (which is `Send`) rather than its field (which is not).
    fn ptr(self) -> *mut c_void {
        self.0
    }
}

/// A panic's message.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into())
}

/// Runs `f`, turning its error or panic into `*err` and `failed`.
fn guard<T>(err: *mut *mut c_char, failed: T, f: impl FnOnce() -> Result<T, String>) -> T {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        Err(format!(
            "internal error (a panic in rlm, caught): {}",
            panic_message(panic.as_ref())
        ))
    });
    match outcome {
        Ok(v) => v,
        Err(message) => {
            if !err.is_null() {
                // SAFETY: the header says a non-NULL err points to a char*.
                unsafe { *err = into_c(message) };
            }
            failed
        }
    }
}

/// A string for C, freed by [`rlm_string_free`]. An interior NUL (which
/// JSON never holds) is replaced, so this cannot fail.
fn into_c(s: String) -> *mut c_char {
    let s = match s.contains('\0') {
        true => s.replace('\0', " "),
        false => s,
    };
    CString::new(s).unwrap_or_default().into_raw()
}

/// A required C string argument, as UTF-8.
fn arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, String> {
    if p.is_null() {
        return Err(format!("{what} is NULL"));
    }
    // SAFETY: the header requires NUL-terminated strings, valid for the call.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|e| format!("{what} is not UTF-8: {e}"))
}

fn handle<'a, T>(p: *const T, what: &str) -> Result<&'a T, String> {
    // SAFETY: a non-NULL handle is one this library returned and the host
    // has not freed (the header's rule).
    unsafe { p.as_ref() }.ok_or_else(|| format!("{what} is NULL"))
}

fn handle_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, String> {
    // SAFETY: as in `handle`; the host does not share a builder between
    // threads while configuring it.
    unsafe { p.as_mut() }.ok_or_else(|| format!("{what} is NULL"))
}

/// Calls a host callback with `input` and returns what it put on the reply.
fn call_back(
    f: impl FnOnce(*const c_char, *mut rlm_reply),
    input: String,
) -> Result<Answer, String> {
    let input = CString::new(input).map_err(|e| e.to_string())?;
    let mut reply = rlm_reply::default();
    catch_unwind(AssertUnwindSafe(|| f(input.as_ptr(), &mut reply)))
        .map_err(|p| format!("the callback panicked: {}", panic_message(p.as_ref())))?;
    reply
        .outcome
        .unwrap_or_else(|| Err("the callback answered nothing on its reply".into()))
}

// ---- strings ----

#[no_mangle]
pub extern "C" fn rlm_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[no_mangle]
pub unsafe extern "C" fn rlm_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: s came from `into_c` (the header's rule).
        drop(unsafe { CString::from_raw(s) });
    }
}

// ---- contexts ----

#[no_mangle]
pub unsafe extern "C" fn rlm_context_open(
    paths: *const *const c_char,
    count: usize,
    err: *mut *mut c_char,
) -> *mut rlm_context {
    guard(err, std::ptr::null_mut(), || {
        if paths.is_null() || count == 0 {
            return Err("rlm_context_open needs at least one path".into());
        }
        // SAFETY: the header says paths holds count strings.
        let list = unsafe { std::slice::from_raw_parts(paths, count) };
        let paths = list
            .iter()
            .enumerate()
            .map(|(i, &p)| arg(p, &format!("paths[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let context = Context::open(&paths).map_err(|e| e.to_string())?;
        Ok(Box::into_raw(Box::new(rlm_context { context })))
    })
}

#[no_mangle]
pub unsafe extern "C" fn rlm_context_from_buffer(
    name: *const c_char,
    data: *const u8,
    len: usize,
    err: *mut *mut c_char,
) -> *mut rlm_context {
    guard(err, std::ptr::null_mut(), || {
        let name = arg(name, "name")?;
        let bytes = match (data.is_null(), len) {
            (_, 0) => Vec::new(),
            (true, _) => return Err("data is NULL but len is not 0".into()),
            // SAFETY: the header says data holds len bytes.
            (false, _) => unsafe { std::slice::from_raw_parts(data, len) }.to_vec(),
        };
        let context = Context::from_bytes(name, bytes);
        Ok(Box::into_raw(Box::new(rlm_context { context })))
    })
}

#[no_mangle]
pub unsafe extern "C" fn rlm_context_free(context: *mut rlm_context) {
    if !context.is_null() {
        // SAFETY: a handle from Box::into_raw, freed once (the header's rule).
        guard(std::ptr::null_mut(), (), || {
            drop(unsafe { Box::from_raw(context) });
            Ok(())
        })
    }
}

// ---- building ----

#[no_mangle]
pub unsafe extern "C" fn rlm_builder_new(
    config_json: *const c_char,
    err: *mut *mut c_char,
) -> *mut rlm_builder {
    guard(err, std::ptr::null_mut(), || {
        let json = match config_json.is_null() {
            true => "",
            false => arg(config_json, "config_json")?,
        };
        let json = if json.trim().is_empty() { "{}" } else { json };
        let settings = Settings::from_json(json).map_err(|e| e.to_string())?;
        let builder = Rlm::builder().settings(&settings);
        Ok(Box::into_raw(Box::new(rlm_builder {
            builder: Some(builder),
            functions: HostFunctions::new(),
            events: false,
        })))
    })
}

/// Changes the builder, which must not be built yet. `f` gets the
/// builder's parts; on an error it must put the [`RlmBuilder`] back.
fn configure(
    builder: *mut rlm_builder,
    err: *mut *mut c_char,
    f: impl FnOnce(&mut rlm_builder, RlmBuilder) -> Result<RlmBuilder, String>,
) -> i32 {
    guard(err, -1, || {
        let b = handle_mut(builder, "builder")?;
        let inner = b.builder.take().ok_or("the builder was already built")?;
        let inner = f(b, inner)?;
        b.builder = Some(inner);
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn rlm_builder_on_event(
    builder: *mut rlm_builder,
    callback: Option<rlm_event_fn>,
    user: *mut c_void,
    err: *mut *mut c_char,
) -> i32 {
    configure(builder, err, |b, inner| {
        let refused = match (callback, b.events) {
            (None, _) => "callback is NULL",
            (Some(_), true) => "an event callback is already set on this builder",
            (Some(callback), false) => {
                b.events = true;
                return Ok(inner.sink(Arc::new(CEvents {
                    callback: Mutex::new((callback, User(user))),
                    started: Instant::now(),
                })));
            }
        };
        b.builder = Some(inner);
        Err(refused.into())
    })
}

#[no_mangle]
pub unsafe extern "C" fn rlm_builder_model(
    builder: *mut rlm_builder,
    name: *const c_char,
    callback: Option<rlm_model_fn>,
    user: *mut c_void,
    err: *mut *mut c_char,
) -> i32 {
    configure(builder, err, |b, inner| {
        let checked = arg(name, "name").and_then(|n| match callback {
            Some(c) => Ok((n, c)),
            None => Err("callback is NULL".into()),
        });
        match checked {
            Ok((name, callback)) => {
                let model = CModel {
                    callback,
                    user: User(user),
                };
                Ok(inner.custom_model(name, Arc::new(model)))
            }
            Err(e) => {
                b.builder = Some(inner);
                Err(e)
            }
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn rlm_builder_function(
    builder: *mut rlm_builder,
    name: *const c_char,
    spec_json: *const c_char,
    callback: Option<rlm_function_fn>,
    user: *mut c_void,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, -1, || {
        let b = handle_mut(builder, "builder")?;
        if b.builder.is_none() {
            return Err("the builder was already built".into());
        }
        let name = arg(name, "name")?;
        let callback = callback.ok_or("callback is NULL")?;
        let spec = match spec_json.is_null() {
            true => Value::Null,
            false => serde_json::from_str(arg(spec_json, "spec_json")?)
                .map_err(|e| format!("spec_json is not JSON: {e}"))?,
        };
        let function = host_function(name, &spec, callback, User(user))?;
        b.functions.add(function).map_err(|e| e.to_string())?;
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn rlm_builder_build(
    builder: *mut rlm_builder,
    err: *mut *mut c_char,
) -> *mut rlm_runner {
    guard(err, std::ptr::null_mut(), || {
        if builder.is_null() {
            return Err("builder is NULL".into());
        }
        // SAFETY: a handle from Box::into_raw, consumed once (the header's rule).
        let b = unsafe { Box::from_raw(builder) };
        let inner = b.builder.ok_or("the builder was already built")?;
        let rlm = inner
            .functions(b.functions)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Box::into_raw(Box::new(rlm_runner { rlm: Arc::new(rlm) })))
    })
}

#[no_mangle]
pub unsafe extern "C" fn rlm_builder_free(builder: *mut rlm_builder) {
    if !builder.is_null() {
        guard(std::ptr::null_mut(), (), || {
            // SAFETY: a handle from Box::into_raw, freed once.
            drop(unsafe { Box::from_raw(builder) });
            Ok(())
        })
    }
}

// ---- running ----

#[no_mangle]
pub unsafe extern "C" fn rlm_run(
    runner: *mut rlm_runner,
    context: *const rlm_context,
    query: *const c_char,
    err: *mut *mut c_char,
) -> *mut c_char {
    guard(err, std::ptr::null_mut(), || {
        let runner = handle(runner, "runner")?;
        let context = handle(context, "context")?;
        let query = arg(query, "query")?;
        if tokio::runtime::Handle::try_current().is_ok() {
            // Blocking on the runner's runtime there would panic (or
            // deadlock a callback's thread): refuse it plainly instead.
            return Err("rlm_run was called on a thread of an async runtime (inside one of rlm's callbacks, or a tokio runtime of the host's); call it from a plain thread".into());
        }
        let context = context.context.clone();
        let result = runner.rlm.run(query, &context);
        let json = serde_json::to_string(&result).map_err(|e| e.to_string())?;
        Ok(into_c(json))
    })
}

#[no_mangle]
pub unsafe extern "C" fn rlm_runner_cancel_handle(runner: *mut rlm_runner) -> *mut rlm_cancel {
    guard(std::ptr::null_mut(), std::ptr::null_mut(), || {
        let runner = handle(runner, "runner")?;
        let flag = Arc::downgrade(&runner.rlm.interrupter());
        Ok(Box::into_raw(Box::new(rlm_cancel { flag })))
    })
}

#[no_mangle]
pub unsafe extern "C" fn rlm_cancel_trigger(cancel: *const rlm_cancel) {
    guard(std::ptr::null_mut(), (), || {
        if let Some(flag) = handle(cancel, "cancel")?.flag.upgrade() {
            flag.store(true, Ordering::SeqCst);
        }
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn rlm_cancel_free(cancel: *mut rlm_cancel) {
    if !cancel.is_null() {
        guard(std::ptr::null_mut(), (), || {
            // SAFETY: a handle from Box::into_raw, freed once.
            drop(unsafe { Box::from_raw(cancel) });
            Ok(())
        })
    }
}

#[no_mangle]
pub unsafe extern "C" fn rlm_runner_free(runner: *mut rlm_runner) {
    if !runner.is_null() {
        guard(std::ptr::null_mut(), (), || {
            // SAFETY: a handle from Box::into_raw, freed once.
            drop(unsafe { Box::from_raw(runner) });
            Ok(())
        })
    }
}

// ---- replies ----

/// Sets a reply's outcome; -1 when `reply` is NULL.
fn answer(reply: *mut rlm_reply, outcome: impl FnOnce() -> Result<Answer, String>) -> i32 {
    guard(std::ptr::null_mut(), -1, || {
        let reply = handle_mut(reply, "reply")?;
        let outcome = outcome();
        let code = if outcome.is_ok() { 0 } else { -1 };
        reply.outcome = Some(outcome);
        Ok(code)
    })
}

#[no_mangle]
pub unsafe extern "C" fn rlm_reply_text(
    reply: *mut rlm_reply,
    text: *const c_char,
    input_tokens: u64,
    output_tokens: u64,
) -> i32 {
    answer(reply, || {
        Ok(Answer::Text {
            text: arg(text, "the reply's text")?.to_string(),
            input: input_tokens,
            output: output_tokens,
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn rlm_reply_json(reply: *mut rlm_reply, json: *const c_char) -> i32 {
    answer(reply, || {
        let text = arg(json, "the reply's JSON")?;
        serde_json::from_str(text)
            .map(Answer::Json)
            .map_err(|e| format!("the reply is not JSON ({e}): {text:?}"))
    })
}

#[no_mangle]
pub unsafe extern "C" fn rlm_reply_error(reply: *mut rlm_reply, message: *const c_char) -> i32 {
    guard(std::ptr::null_mut(), -1, || {
        let reply = handle_mut(reply, "reply")?;
        let (message, code) = match arg(message, "the error message") {
            Ok(m) => (m.to_string(), 0),
            Err(e) => (e, -1),
        };
        reply.outcome = Some(Err(message));
        Ok(code)
    })
}

// ---- the callbacks behind the seams ----

/// The event callback as a [`RunSink`]; the mutex keeps the host's
/// callback from being called twice at once.
pub struct CEvents {
    callback: Mutex<(rlm_event_fn, User)>,
    started: Instant,
}

impl RunSink for CEvents {
    fn event(&self, e: &RunEvent<'_>) {
        let Some(line) = rlm::trace::event_json(e, self.started) else {
            return;
        };
        let Ok(text) = CString::new(line.to_string()) else {
            return;
        };
        // A poisoned lock only means an earlier event's callback panicked
        // (which a C callback cannot): keep delivering.
        let guard = self.callback.lock().unwrap_or_else(|p| p.into_inner());
        let (callback, user) = *guard;
        // A sink has no error to return; a panicking callback loses its
        // event rather than the run.
        let _ = catch_unwind(AssertUnwindSafe(|| callback(user.ptr(), text.as_ptr())));
    }
}

/// The model callback as a [`Model`].
pub struct CModel {
    callback: rlm_model_fn,
    user: User,
}

impl Model for CModel {
    fn complete<'a>(&'a self, call: ModelCall<'a>) -> BoxFuture<'a, Result<Response, Failure>> {
        let request = call.request;
        let input = json!({
            "model": call.model.to_string(),
            "kind": call.tag.kind,
            "depth": call.tag.depth,
            "cell": call.tag.cell,
            "system": request.system,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        })
        .to_string();
        let (callback, user, model) = (self.callback, self.user, call.model.to_string());
        Box::pin(async move {
            let failed = |message: String| {
                Failure::from(LlmError::Transport {
                    model: model.clone(),
                    message,
                })
            };
            // The host may block (its own HTTP stack, a local model): off
            // the runtime's workers.
            let answered = tokio::task::spawn_blocking(move || {
                call_back(|input, reply| callback(user.ptr(), input, reply), input)
            })
            .await
            .map_err(|e| failed(format!("the model callback did not finish: {e}")))?;
            match answered {
                Ok(Answer::Text {
                    text,
                    input,
                    output,
                }) => Ok(Completion {
                    text,
                    finish: FinishReason::Stop,
                    input_tokens: input,
                    output_tokens: output,
                    ..Completion::default()
                }
                .into()),
                Ok(Answer::Json(_)) => Err(failed(
                    "the model callback answered with rlm_reply_json; a model answers with rlm_reply_text".into(),
                )),
                Err(message) => Err(failed(format!("the model callback failed: {message}"))),
            }
        })
    }
}

/// A [`HostFunction`] over a C callback, declared by `spec`.
fn host_function(
    name: &str,
    spec: &Value,
    callback: rlm_function_fn,
    user: User,
) -> Result<HostFunction, String> {
    let ty = |v: &Value| -> Result<ValueType, String> {
        Ok(match v.as_str() {
            None | Some("any") => ValueType::Any,
            Some("bool") => ValueType::Bool,
            Some("int") => ValueType::Int,
            Some("float") => ValueType::Float,
            Some("string") => ValueType::String,
            Some("array") => ValueType::Array,
            Some("map") => ValueType::Map,
            Some(other) => {
                return Err(format!(
                    "function {name}: unknown type {other:?} (any, bool, int, float, string, array, map)"
                ))
            }
        })
    };
    let mut f = HostFunction::sync(name, move |args: &[Value]| {
        let input = Value::Array(args.to_vec()).to_string();
        match call_back(|input, reply| callback(user.ptr(), input, reply), input) {
            Ok(Answer::Json(v)) => Ok(v),
            Ok(Answer::Text { text, .. }) => Ok(Value::String(text)),
            Err(message) => Err(HostError::new(message)),
        }
    });
    if let Some(params) = spec.get("params") {
        let params = params.as_array().ok_or(format!(
            "function {name}: \"params\" must be an array of [name, type]"
        ))?;
        for p in params {
            match p.as_array().map(Vec::as_slice) {
                Some([Value::String(n), t]) => f = f.param(n, ty(t)?),
                Some([Value::String(n)]) => f = f.param(n, ValueType::Any),
                _ => {
                    return Err(format!(
                        "function {name}: each of \"params\" is [name, type], not {p}"
                    ))
                }
            }
        }
    }
    if let Some(t) = spec.get("returns") {
        f = f.returns(ty(t)?);
    }
    if let Some(doc) = spec.get("doc").and_then(Value::as_str) {
        f = f.doc(doc);
    }
    Ok(f)
}
