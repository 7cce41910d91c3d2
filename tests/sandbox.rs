//! Hostile scripts: each is stopped by a limit or finds the door closed,
//! says which and what to do instead, and leaves the session usable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rlm::dsl::{Limits, Session, SessionBuilder};
use rlm::Context;

const TIMEOUT: Duration = Duration::from_millis(300);

/// Small limits, so that each hostile script fails fast.
fn small_limits() -> Limits {
    Limits {
        max_operations: 200_000,
        cell_timeout: TIMEOUT,
        max_string_bytes: 1 << 20,
        max_array_len: 10_000,
        max_map_len: 1_000,
        max_variables: 50,
        output_chars: 2_000,
        ..Default::default()
    }
}

fn session(limits: Limits) -> Session {
    SessionBuilder::new()
        .limits(limits)
        .build(&Context::from_string("log", "alpha\nERROR beta\ngamma\n"))
}

/// Runs a hostile cell, checks that it fails with an error containing every
/// phrase, and that the session still runs a normal cell afterwards.
fn assert_stopped(s: &mut Session, code: &str, phrases: &[&str]) -> String {
    let out = s.run_cell(code);
    let err = out
        .error
        .unwrap_or_else(|| panic!("should fail:\n{code}\noutput: {}", out.output));
    for phrase in phrases {
        assert!(
            err.contains(phrase),
            "{code}\nerror lacks {phrase:?}:\n{err}"
        );
    }
    let after = s.run_cell("print(`${6 * 7} ${context.len() > 0}`);");
    assert_eq!(after.error, None, "session broken after:\n{code}");
    assert_eq!(after.output, "42 true\n", "session broken after:\n{code}");
    err
}

#[test]
fn endless_loops_stop_at_the_operation_limit() {
    let mut s = session(small_limits());
    for code in [
        "loop {}",
        "while true { }",
        "let i = 0; loop { i += 1; }",
        "for i in 0..1000000000 { let x = i; }",
        "fn spin() { loop {} } spin()",
        "[1, 2, 3].map(|x| { loop {} })",
    ] {
        assert_stopped(
            &mut s,
            code,
            &[
                "limit of 200000 operations",
                "use grep(), matches(), count_matches() or chunks()",
            ],
        );
    }
}

#[test]
fn endless_loops_stop_at_the_time_limit() {
    let mut s = session(Limits {
        max_operations: 2_000_000_000,
        ..small_limits()
    });
    let started = Instant::now();
    assert_stopped(
        &mut s,
        "let i = 0; loop { i += 1; }",
        &["time limit of 0.3s", "native functions such as grep()"],
    );
    assert!(
        started.elapsed() < 10 * TIMEOUT,
        "took {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    assert_stopped(&mut s, "sleep(60);", &["time limit of 0.3s"]);
    assert!(
        started.elapsed() < 10 * TIMEOUT,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_cell_can_be_cancelled_from_another_thread() {
    let mut s = session(Limits {
        max_operations: 2_000_000_000,
        cell_timeout: Duration::from_secs(60),
        ..small_limits()
    });
    let shared = Arc::clone(s.shared());
    let done = Arc::new(AtomicBool::new(false));
    let canceller = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            // A cell clears old cancellations when it starts, so keep asking.
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
                shared.clock.cancel();
            }
        })
    };
    let started = Instant::now();
    let out = s.run_cell("loop { }");
    done.store(true, Ordering::Relaxed);
    canceller.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = out.error.expect("the cell is cancelled");
    assert!(err.contains("cancelled"), "{err}");
    assert_eq!(s.run_cell("print(1);").output, "1\n");
}

#[test]
fn growing_strings_stop_at_the_string_limit() {
    let mut s = session(small_limits());
    for code in [
        "let s = \"x\"; loop { s += s; }",
        "let s = \"\"; s.pad(100000000, 'x');",
        "let s = \"ab\"; for i in 0..30 { s = s + s; }",
        "let s = `${context}`; loop { s = `${s}${s}`; }",
    ] {
        assert_stopped(
            &mut s,
            code,
            &[
                "exceeded its limit",
                "strings 1048576 bytes",
                "Keep large text as views",
            ],
        );
    }
}

#[test]
fn growing_arrays_stop_at_the_array_limit() {
    let mut s = session(small_limits());
    for code in [
        "let a = []; loop { a.push(1); }",
        "let a = []; a.pad(100000000, 0);",
        "let a = [1]; loop { a += a; }",
        "let a = [1]; loop { a = [a, a]; }",
        "let a = []; for x in range(0, 100000000) { a.append(x); }",
        "let a = []; for i in 0..20000 { a.push(i); }",
    ] {
        assert_stopped(
            &mut s,
            code,
            &[
                "exceeded its limit",
                "arrays 10000 items",
                "print summaries",
            ],
        );
    }
}

#[test]
fn native_functions_refuse_results_over_the_array_limit() {
    let lines: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    let mut s = SessionBuilder::new()
        .limits(small_limits())
        .build(&Context::from_string("big", lines));
    assert_stopped(
        &mut s,
        "let all = context.lines();",
        &[
            "lines() would return",
            "more than the array limit of 10000",
            "use grep()",
        ],
    );
    assert_stopped(
        &mut s,
        "let pieces = context.split_on(\"\\n\");",
        &["more than the array limit of 10000", "use chunks()"],
    );
    assert_stopped(
        &mut s,
        "let hits = context.find_any([\"line\", \"0\"]);",
        &[
            "more than the array limit of 10000",
            "search for fewer needles",
        ],
    );
    assert_stopped(
        &mut s,
        "let pieces = context.chunks(1);",
        &["more than the array limit of 10000", "larger chunk size"],
    );
    // Searches refuse too, rather than return the first 10,000 silently.
    for (code, advice) in [
        ("let hits = context.grep(\"line\");", "#{max: n}"),
        ("let hits = context.matches(\"line\");", "pass a limit"),
        ("let hits = context.find_all(\"line\");", "pass a limit"),
    ] {
        assert_stopped(
            &mut s,
            code,
            &["more than the array limit of 10000", advice],
        );
    }
    // With an explicit limit, they return that many.
    let out = s.run_cell("print(context.grep(\"line\", #{max: 3}).len());");
    assert_eq!(out.output, "3\n", "{}", out.render());
}

#[test]
fn growing_maps_stop_at_a_limit() {
    let mut s = session(small_limits());
    assert_stopped(
        &mut s,
        "let a = []; for i in 0..2000 { a.push(i); }\nlet m = counts(a);",
        &["exceeded its limit", "maps 1000 entries"],
    );
    // Assignment through an index is bounded too: by the map limit where
    // Rhai checks the map, and always by the operation limit.
    let err = assert_stopped(
        &mut s,
        "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }",
        &["limit"],
    );
    assert!(
        err.contains("maps 1000 entries") || err.contains("limit of 200000 operations"),
        "{err}"
    );
}

#[test]
fn deep_recursion_stops_at_the_call_depth_limit() {
    let mut s = session(small_limits());
    for code in [
        "fn f(n) { f(n + 1) } f(0)",
        "fn f(n) { let a = [n, n, n]; let m = #{a: a}; f(n + 1) + 1 } f(0)",
        "fn g(n) { let h = Fn(\"g\"); h.call(n + 1) } g(0)",
        "let f = |x| x.call(x); f.call(f)",
        "fn a(n) { b(n) } fn b(n) { a(n + 1) } a(0)",
    ] {
        assert_stopped(
            &mut s,
            code,
            &["call depth limit of 64", "use a loop instead"],
        );
    }
}

#[test]
fn a_raised_call_depth_limit_still_has_stack_enough() {
    // The test process surviving is the assertion: each cell runs on a
    // thread sized for its call-depth limit.
    let mut s = session(Limits {
        max_call_depth: 2_000,
        max_operations: 10_000_000,
        ..small_limits()
    });
    assert_stopped(
        &mut s,
        "fn f(n) { let a = [n, `${n}`]; f(n + 1) + 1 } f(0)",
        &["call depth limit of 2000"],
    );
    let out = s.run_cell(
        "fn sum_to(n) { if n == 0 { 0 } else { n + sum_to(n - 1) } } print(sum_to(1900));",
    );
    assert_eq!(out.output, "1805950\n", "{:?}", out.error);
}

#[test]
fn deeply_nested_source_is_refused_when_parsed() {
    let mut s = session(small_limits());
    let parens = format!("let x = {}1{};", "(".repeat(5_000), ")".repeat(5_000));
    let brackets = format!("let x = {}1{};", "[".repeat(5_000), "]".repeat(5_000));
    let blocks = format!("{}1{}", "if true { ".repeat(2_000), " }".repeat(2_000));
    for code in [&parens, &brackets, &blocks] {
        assert_stopped(
            &mut s,
            code,
            &[
                "syntax error",
                "limits how deeply expressions and blocks may nest",
            ],
        );
    }
}

#[test]
fn too_many_variables_or_functions_are_refused() {
    let mut s = session(small_limits());
    let lets: String = (0..60).map(|i| format!("let v{i} = {i};\n")).collect();
    assert_stopped(
        &mut s,
        &lets,
        &["more than 50 variables", "reuse variables"],
    );
    let mut s = session(Limits {
        max_functions: 5,
        ..small_limits()
    });
    let fns: String = (0..6).map(|i| format!("fn f{i}() {{ {i} }}\n")).collect();
    assert_stopped(
        &mut s,
        &fns,
        &["functions", "reuse one function with parameters"],
    );
}

#[test]
fn imports_are_refused() {
    let mut s = session(small_limits());
    for code in [
        "import \"std\";",
        "import \"/etc/passwd\" as p;",
        "import \"../../etc/passwd\";",
        "import \"http://example.com/x\" as x;",
        "std::fs::read_to_string(\"/etc/passwd\")",
    ] {
        assert_stopped(&mut s, code, &["`import` is not available in this sandbox"]);
    }
}

#[test]
fn eval_is_refused() {
    let mut s = session(small_limits());
    assert_stopped(&mut s, "eval(\"1 + 1\")", &["'eval'", "no `eval`"]);
    assert_stopped(
        &mut s,
        "let e = Fn(\"eval\"); e.call(\"1 + 1\")",
        &["'eval'"],
    );
}

#[test]
fn files_processes_environment_and_network_do_not_exist() {
    let mut s = session(small_limits());
    for code in [
        "open(\"/etc/passwd\")",
        "read_file(\"/etc/passwd\")",
        "write_file(\"/tmp/x\", \"data\")",
        "system(\"ls\")",
        "exec(\"rm -rf /\")",
        "popen(\"ls\")",
        "env(\"HOME\")",
        "getenv(\"HOME\")",
        "http_get(\"http://example.com\")",
        "fetch(\"http://example.com\")",
        "urlopen(\"http://example.com\")",
        "os.system(\"ls\")",
        "subprocess.run([\"ls\"])",
        "requests.get(\"http://example.com\")",
    ] {
        assert_stopped(
            &mut s,
            code,
            &[
                "no file, process, environment or network access",
                "already loaded as `context`",
            ],
        );
    }
}

#[test]
fn a_long_native_scan_stops_at_the_time_limit() {
    let line = "the quick brown fox jumps over the lazy dog 0123456789\n";
    let text = line.repeat((8 << 20) / line.len());
    let mut s = SessionBuilder::new()
        .limits(Limits {
            max_operations: 2_000_000_000,
            ..small_limits()
        })
        .build(&Context::from_string("big", text));
    let started = Instant::now();
    assert_stopped(
        &mut s,
        "let n = 0; loop { n += context.count_matches(\"x\"); }",
        &["time limit of 0.3s"],
    );
    assert!(
        started.elapsed() < 10 * TIMEOUT,
        "took {:?}",
        started.elapsed()
    );
    // A scan stopped by the clock cannot be caught and ignored.
    let started = Instant::now();
    assert_stopped(
        &mut s,
        "loop { try { context.matches(\"\\\\w+ \\\\w+ x\"); } catch { } }",
        &["time limit of 0.3s"],
    );
    assert!(
        started.elapsed() < 10 * TIMEOUT,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn huge_output_is_capped_with_a_note_on_what_to_do() {
    let mut s = session(small_limits());
    let out = s.run_cell("for i in 0..5000 { print(`line ${i}`); }");
    assert_eq!(out.error, None);
    assert!(out.truncated);
    assert!(
        out.output.contains("limit 2000. Print summaries"),
        "{}",
        out.output
    );
    assert!(out.output.len() < 2_500, "{} bytes", out.output.len());
}

/// A chain of closures, each capturing the last, makes dropping it recurse
/// once per link. The process must survive building and dropping it (in the
/// cell, when the variable is replaced, and when the session ends).
#[test]
fn deeply_nested_values_are_dropped_without_overflowing_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("chain.rhai");
    let context = dir.path().join("ctx.txt");
    std::fs::write(&context, "x\n").unwrap();
    for (code, expect_ok) in [
        ("let a = 0; let d = 0; while d < 300000 { let b = a; a = || b; d += 1; } a = 1; print(\"replaced\");", true),
        ("let a = 0; let d = 0; loop { let b = a; a = || b; d += 1; }", false),
    ] {
        std::fs::write(&script, code).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rlm"))
            .args(["exec", script.to_str().unwrap(), "--context", context.to_str().unwrap(), "--max-operations", "5000000"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("overflow"), "{stderr}");
        if expect_ok {
            assert_eq!(out.status.code(), Some(0), "{stderr}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), "replaced\n");
        } else {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(stderr.contains("limit of 5000000 operations"), "{stderr}");
        }
    }
}

/// No script-visible name reaches a limit: not engine setters, not a
/// `limits` object, not shadowing the functions the host checks with.
#[test]
fn scripts_cannot_raise_their_own_limits() {
    let mut s = session(small_limits());
    for code in [
        "set_max_operations(0)",
        "engine.set_max_operations(0)",
        "set_max_string_size(0)",
        "limits.max_operations = 0",
        "this.max_operations = 0",
        "Limits(#{max_operations: 0})",
    ] {
        let out = s.run_cell(code);
        assert!(out.error.is_some(), "{code} should fail: {}", out.output);
    }
    // Shadowing names the host might consult changes nothing.
    let out = s.run_cell(
        "fn on_progress(n) { true }\nfn sleep(x) { }\nfn check_unchanged() { }\nlet limits = #{max_operations: 1000000000000};",
    );
    assert_eq!(out.error, None);
    // The operation limit still holds after every attempt.
    assert_stopped(&mut s, "let i = 0; loop { i += 1; }", &["operations"]);
    assert_stopped(&mut s, "let s = \"x\"; loop { s += s; }", &["string"]);
}
