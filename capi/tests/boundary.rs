//! The ABI's promises at its boundary, through the same functions C calls
//! (the crate's rlib): NULLs and bad input are errors, not crashes; a
//! panicking callback is an error, not an abort; a cancel from another
//! thread stops a run; runners run on many threads at once.

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rlm_capi::*;
use serde_json::Value;

/// Takes a string the library returned, freeing it.
fn take(s: *mut c_char) -> String {
    assert!(!s.is_null(), "expected a string, got NULL");
    let text = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
    unsafe { rlm_string_free(s) };
    text
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// A builder over `config`, panicking with the library's error.
fn builder(config: &str) -> *mut rlm_builder {
    let mut err = null_mut();
    let b = unsafe { rlm_builder_new(c(config).as_ptr(), &mut err) };
    assert!(!b.is_null(), "rlm_builder_new: {}", take(err));
    b
}

fn build(b: *mut rlm_builder) -> *mut rlm_runner {
    let mut err = null_mut();
    let r = unsafe { rlm_builder_build(b, &mut err) };
    assert!(!r.is_null(), "rlm_builder_build: {}", take(err));
    r
}

fn context(text: &str) -> *mut rlm_context {
    let mut err = null_mut();
    let ctx = unsafe {
        rlm_context_from_buffer(c("t.txt").as_ptr(), text.as_ptr(), text.len(), &mut err)
    };
    assert!(!ctx.is_null(), "rlm_context_from_buffer: {}", take(err));
    ctx
}

fn run(runner: *mut rlm_runner, ctx: *const rlm_context, query: &str) -> Value {
    let mut err = null_mut();
    let out = unsafe { rlm_run(runner, ctx, c(query).as_ptr(), &mut err) };
    assert!(!out.is_null(), "rlm_run: {}", take(err));
    serde_json::from_str(&take(out)).unwrap()
}

fn reply_text(reply: *mut rlm_reply, text: &str) {
    assert_eq!(unsafe { rlm_reply_text(reply, c(text).as_ptr(), 10, 2) }, 0);
}

fn call_kind(call: *const c_char) -> Value {
    let call: Value =
        serde_json::from_str(&unsafe { CStr::from_ptr(call) }.to_string_lossy()).unwrap();
    call["kind"].clone()
}

/// Root turns submit the context's length.
extern "C-unwind" fn length_model(_: *mut c_void, call: *const c_char, reply: *mut rlm_reply) {
    assert_eq!(call_kind(call), "root");
    reply_text(reply, "```rhai\nsubmit(context.len());\n```");
}

#[test]
fn null_arguments_are_errors_with_a_message() {
    let mut err = null_mut();
    assert!(unsafe { rlm_run(null_mut(), null_mut(), null_mut(), &mut err) }.is_null());
    assert!(take(err).contains("runner is NULL"));

    let mut err = null_mut();
    assert!(unsafe { rlm_context_open(std::ptr::null(), 0, &mut err) }.is_null());
    assert!(take(err).contains("at least one path"));

    let paths = [std::ptr::null::<c_char>()];
    let mut err = null_mut();
    assert!(unsafe { rlm_context_open(paths.as_ptr(), 1, &mut err) }.is_null());
    assert!(take(err).contains("paths[0] is NULL"));

    let b = builder("{}");
    let mut err = null_mut();
    assert_eq!(
        unsafe { rlm_builder_model(b, null_mut(), Some(length_model), null_mut(), &mut err) },
        -1
    );
    assert!(take(err).contains("name is NULL"));
    // The builder is still usable after a refused change.
    let mut err = null_mut();
    assert_eq!(
        unsafe { rlm_builder_on_event(b, None, null_mut(), &mut err) },
        -1
    );
    assert!(take(err).contains("callback is NULL"));
    let runner = build(b);

    let mut err = null_mut();
    assert!(unsafe { rlm_run(runner, null_mut(), c("q").as_ptr(), &mut err) }.is_null());
    assert!(take(err).contains("context is NULL"));
    // Without err, a failure is still a NULL, and the frees take NULL.
    assert!(unsafe { rlm_run(runner, null_mut(), null_mut(), null_mut()) }.is_null());
    unsafe {
        rlm_runner_free(runner);
        rlm_runner_free(null_mut());
        rlm_context_free(null_mut());
        rlm_builder_free(null_mut());
        rlm_cancel_free(null_mut());
        rlm_cancel_trigger(std::ptr::null());
        rlm_string_free(null_mut());
    }
}

#[test]
fn a_bad_json_config_is_an_error_naming_the_problem() {
    for (config, says) in [
        ("{\"model\": ", "EOF"),
        ("{\"modle\": \"gpt-5\"}", "unknown field `modle`"),
        ("{\"concurrency\": 0}", "concurrency"),
        ("{\"base_url\": \"ftp://x\"}", "http:// or https://"),
    ] {
        let mut err = null_mut();
        let b = unsafe { rlm_builder_new(c(config).as_ptr(), &mut err) };
        assert!(b.is_null(), "{config} was accepted");
        let message = take(err);
        assert!(message.contains(says), "{config}: {message}");
    }
    let mut err = null_mut();
    let spec = c("{\"params\": [[\"x\", \"integer\"]]}");
    let b = builder("{}");
    let rc = unsafe {
        rlm_builder_function(
            b,
            c("f").as_ptr(),
            spec.as_ptr(),
            Some(json_fn),
            null_mut(),
            &mut err,
        )
    };
    assert_eq!(rc, -1);
    assert!(take(err).contains("unknown type \"integer\""));
    unsafe { rlm_builder_free(b) };
}

extern "C-unwind" fn json_fn(_: *mut c_void, _: *const c_char, reply: *mut rlm_reply) {
    unsafe { rlm_reply_json(reply, c("1").as_ptr()) };
}

extern "C-unwind" fn panicking_model(_: *mut c_void, _: *const c_char, _: *mut rlm_reply) {
    panic!("the host's model broke");
}

extern "C-unwind" fn panicking_function(_: *mut c_void, _: *const c_char, _: *mut rlm_reply) {
    panic!("the host's function broke");
}

/// Root turns call `broken()` and submit what the error said.
extern "C-unwind" fn calls_broken(_: *mut c_void, call: *const c_char, reply: *mut rlm_reply) {
    let call: Value =
        serde_json::from_str(&unsafe { CStr::from_ptr(call) }.to_string_lossy()).unwrap();
    let last = call["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    if last.contains("the host's function broke") {
        reply_text(reply, "```rhai\nsubmit(\"saw the panic\");\n```");
    } else {
        reply_text(reply, "```rhai\nbroken();\n```");
    }
}

#[test]
fn a_panicking_model_callback_fails_the_run_instead_of_aborting() {
    let b = builder("{\"model\": \"host\", \"max_retries\": 0}");
    unsafe {
        rlm_builder_model(
            b,
            c("host").as_ptr(),
            Some(panicking_model),
            null_mut(),
            null_mut(),
        )
    };
    let runner = build(b);
    let ctx = context("x");
    let result = run(runner, ctx, "q");
    assert_eq!(result["status"], "failed");
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("the host's model broke"), "{error}");
    unsafe {
        rlm_runner_free(runner);
        rlm_context_free(ctx);
    }
}

#[test]
fn a_panicking_host_function_is_a_script_error_the_model_sees() {
    let b = builder("{\"model\": \"host\"}");
    unsafe {
        rlm_builder_model(
            b,
            c("host").as_ptr(),
            Some(calls_broken),
            null_mut(),
            null_mut(),
        );
        assert_eq!(
            rlm_builder_function(
                b,
                c("broken").as_ptr(),
                std::ptr::null(),
                Some(panicking_function),
                null_mut(),
                null_mut()
            ),
            0
        );
    }
    let runner = build(b);
    let ctx = context("x");
    let result = run(runner, ctx, "q");
    assert_eq!(result["answer"], "saw the panic", "{result}");
    unsafe {
        rlm_runner_free(runner);
        rlm_context_free(ctx);
    }
}

static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Root turns run a cell that never ends on its own.
extern "C-unwind" fn looping_model(_: *mut c_void, _: *const c_char, reply: *mut rlm_reply) {
    WAITING.fetch_add(1, Ordering::SeqCst);
    reply_text(reply, "```rhai\nlet i = 0;\nloop { i += 1; }\n```");
}

#[test]
fn a_cancel_from_another_thread_stops_a_run() {
    let b = builder("{\"model\": \"host\"}");
    unsafe {
        rlm_builder_model(
            b,
            c("host").as_ptr(),
            Some(looping_model),
            null_mut(),
            null_mut(),
        )
    };
    let runner = build(b);
    let cancel = unsafe { rlm_runner_cancel_handle(runner) };
    assert!(!cancel.is_null());
    let cancel_addr = cancel as usize;
    let canceller = std::thread::spawn(move || {
        while WAITING.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        unsafe { rlm_cancel_trigger(cancel_addr as *const rlm_cancel) };
    });
    let ctx = context("x");
    let result = run(runner, ctx, "q");
    canceller.join().unwrap();
    assert_eq!(result["status"], "interrupted", "{result}");
    unsafe {
        rlm_runner_free(runner);
        // The handle outlives its runner, and then does nothing.
        rlm_cancel_trigger(cancel);
        rlm_cancel_free(cancel);
        rlm_context_free(ctx);
    }
}

#[test]
fn one_runner_answers_on_many_threads_at_once() {
    let b = builder("{\"model\": \"host\"}");
    unsafe {
        rlm_builder_model(
            b,
            c("host").as_ptr(),
            Some(length_model),
            null_mut(),
            null_mut(),
        )
    };
    let runner = build(b) as usize;
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let text = "x".repeat(i + 1);
                let ctx = context(&text);
                let result = run(runner as *mut rlm_runner, ctx, "How long?");
                unsafe { rlm_context_free(ctx) };
                (i + 1, result["answer"].clone())
            })
        })
        .collect();
    for t in threads {
        let (len, answer) = t.join().unwrap();
        assert_eq!(answer, len as u64);
    }
    unsafe { rlm_runner_free(runner as *mut rlm_runner) };
}

static NESTED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Tries to start a run from inside the model callback.
extern "C-unwind" fn nesting_model(user: *mut c_void, _: *const c_char, reply: *mut rlm_reply) {
    let ctx = context("y");
    let mut err = null_mut();
    let out = unsafe { rlm_run(user as *mut rlm_runner, ctx, c("inner").as_ptr(), &mut err) };
    assert!(out.is_null());
    *NESTED.lock().unwrap() = Some(take(err));
    unsafe { rlm_context_free(ctx) };
    reply_text(reply, "```rhai\nsubmit(1);\n```");
}

#[test]
fn rlm_run_inside_a_callback_is_refused_with_an_error() {
    let inner = builder("{\"model\": \"host\"}");
    unsafe {
        rlm_builder_model(
            inner,
            c("host").as_ptr(),
            Some(length_model),
            null_mut(),
            null_mut(),
        )
    };
    let inner = build(inner);
    let b = builder("{\"model\": \"host\"}");
    unsafe {
        rlm_builder_model(
            b,
            c("host").as_ptr(),
            Some(nesting_model),
            inner.cast(),
            null_mut(),
        )
    };
    let runner = build(b);
    let ctx = context("x");
    assert_eq!(run(runner, ctx, "q")["answer"], 1);
    let message = NESTED.lock().unwrap().take().unwrap();
    assert!(
        message.contains("inside one of rlm's callbacks"),
        "{message}"
    );
    unsafe {
        rlm_runner_free(runner);
        rlm_runner_free(inner);
        rlm_context_free(ctx);
    }
}

#[test]
fn a_built_builder_is_consumed_and_a_second_event_callback_refused() {
    extern "C-unwind" fn ignore(_: *mut c_void, _: *const c_char) {}
    let b = builder("");
    let mut err = null_mut();
    assert_eq!(
        unsafe { rlm_builder_on_event(b, Some(ignore), null_mut(), &mut err) },
        0
    );
    assert_eq!(
        unsafe { rlm_builder_on_event(b, Some(ignore), null_mut(), &mut err) },
        -1
    );
    assert!(take(err).contains("already set"));
    unsafe { rlm_runner_free(build(b)) };
}
