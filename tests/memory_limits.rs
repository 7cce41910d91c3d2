//! A session's memory limit holds for everything it keeps, whatever the
//! container, with the counting allocator installed as the `rlm` binary
//! installs it; and with Rhai's per-type walks turned off, loops that grow
//! arrays, maps and strings stay linear.

use std::time::Duration;

use rlm::dsl::{Limits, Session, SessionBuilder};
use rlm::Context;

#[global_allocator]
static ALLOCATOR: rlm::alloc::Counting = rlm::alloc::Counting::system();

const LIMIT: usize = 256 << 20;

fn session() -> Session {
    let limits = Limits {
        max_memory_bytes: LIMIT,
        cell_timeout: Duration::from_secs(60),
        max_operations: 200_000_000,
        ..Limits::default()
    };
    SessionBuilder::new()
        .limits(limits)
        .build(&Context::from_string("doc", "alpha\nbeta\n"))
}

fn held(s: &Session) -> usize {
    s.shared()
        .memory_held()
        .expect("the counting allocator is installed")
}

/// Runs `setup` then an attack that keeps 400 distinct 8 MiB strings
/// (3.2 GB) somewhere, and checks that it stops at the limit, says why,
/// and leaves a usable session holding less than twice the limit.
fn stops_at_the_limit(setup: &str, keep: &str) {
    let mut s = session();
    let code = format!(
        "let big = \"x\"; for i in 0..23 {{ big += big; }}\n{setup}\nfor i in 0..400 {{ {keep} }}"
    );
    let out = s.run_cell(&code);
    let err = out.error.unwrap_or_else(|| panic!("{keep}: no error"));
    assert!(err.contains("memory limit of 256.0 MiB"), "{keep}: {err}");
    assert!(held(&s) < 2 * LIMIT, "{keep}: holds {}", held(&s));
    let out = s.run_cell("print(1 + 1);");
    assert_eq!(out.error, None, "{keep}: the next cell fails");
    assert_eq!(out.output, "2\n");
}

#[test]
fn values_in_map_slots_count() {
    stops_at_the_limit("let m = #{};", "m[\"k\" + i] = big + i;");
}

#[test]
fn values_in_array_slots_count() {
    stops_at_the_limit("let a = range(400);", "a[i] = big + i;");
}

#[test]
fn pushed_views_of_owned_strings_count() {
    stops_at_the_limit("let a = [];", "a.push((big + i).to_text());");
}

#[test]
fn values_captured_by_closures_count() {
    stops_at_the_limit("let fs = [];", "let v = big + i; fs.push(|| v.len());");
}

#[test]
fn function_locals_count() {
    let mut s = session();
    let out = s.run_cell(
        "fn hoard(seed) { let kept = []; for i in 0..400 { kept.push(seed + i); } kept.len() }\n\
         let big = \"x\"; for i in 0..23 { big += big; }\nprint(hoard(big));",
    );
    let err = out.error.expect("no error");
    assert!(err.contains("memory limit"), "{err}");
}

#[test]
fn doubling_a_string_stops_near_the_limit() {
    let mut s = session();
    let out = s.run_cell("let s = \"x\"; loop { s += s; }");
    let err = out.error.expect("no error");
    assert!(err.contains("memory limit"), "{err}");
    assert!(held(&s) < 2 * LIMIT);
}

#[test]
fn nested_arrays_and_maps_stop_at_the_limit() {
    for code in [
        "let a = [0]; loop { a = [a, a, a, a]; }",
        "let m = #{x: 1}; loop { m = #{a: m, b: m, c: [m, m]}; }",
        "let a = []; loop { a += [a.len(), \"some text to hold\"]; }",
    ] {
        let mut s = session();
        let err = s.run_cell(code).error.expect("no error");
        assert!(
            err.contains("memory limit") || err.contains("operations"),
            "{code}: {err}"
        );
        assert!(held(&s) < 2 * LIMIT, "{code}");
    }
}

#[test]
fn a_session_over_its_limit_can_free_what_it_holds() {
    let mut s = session();
    assert_eq!(
        s.run_cell("let keep = []; let big = \"x\"; for i in 0..22 { big += big; }")
            .error,
        None
    );
    let err = s
        .run_cell("for i in 0..100 { keep.push(big + i); }")
        .error
        .expect("no error");
    assert!(err.contains("memory limit"), "{err}");
    // `keep` came from an earlier cell, so it still holds what it got.
    assert!(held(&s) > LIMIT / 2);
    // Growing further fails; freeing runs, and then all is well.
    let err = s
        .run_cell("for i in 0..20 { keep.push(big + \"more\"); }")
        .error
        .expect("no error");
    assert!(err.contains("memory limit"), "{err}");
    assert_eq!(s.run_cell("keep = ();").error, None);
    assert!(held(&s) < LIMIT / 4, "holds {}", held(&s));
    assert_eq!(s.run_cell("let again = [big, big + 1];").error, None);
}

#[test]
fn growing_containers_a_million_times_stays_linear() {
    // Quadratic growth (Rhai's walk after every push) took 18 s for
    // 100,000 pushes; a million would run into the 60 s cell limit.
    let mut s = session();
    for code in [
        "let a = []; for i in 0..1000000 { a.push(`item ${i}`); } print(a.len());",
        "let m = #{}; for i in 0..1000000 { m[`k${i}`] = i; } print(m.len());",
        "let t = \"\"; for i in 0..1000000 { t += `line ${i}\\n`; } print(t.len() > 1000000);",
    ] {
        let out = s.run_cell(code);
        assert_eq!(out.error, None, "{code}");
        assert!(
            out.output == "1000000\n" || out.output == "true\n",
            "{code}: {}",
            out.output
        );
    }
}

#[test]
fn paid_sub_model_answers_are_not_thrown_away_by_a_string_total() {
    // 2,100 answers of 8,000 characters (16.8 MB together) used to fail
    // "Length of string exceeded": the string limit counted every string in
    // the array together. They are one array well within the memory limit.
    let mut s = session();
    let out = s.run_cell(
        "let answers = range(2100).map(|i| { let s = \"a\"; s.pad(8000, \"b\"); s + i }); print(answers.len());",
    );
    assert_eq!(out.error, None);
    assert_eq!(out.output, "2100\n");
}

#[test]
fn a_size_named_by_the_script_is_checked_before_it_is_allocated() {
    let mut s = session();
    for code in [
        "let a = []; a.pad(1000000000000, 0);",
        "let a = [1]; a.pad(20000000, \"some text\");",
        "let t = \"x\"; t.pad(1000000000000, \"y\");",
        "let t = \"x\"; t.pad(1000000000, 'y');",
        "let b = blob(1000000000000);",
        "let b = blob(1000000000, 7);",
        "let b = blob(); b.pad(1000000000000, 1);",
    ] {
        let err = s
            .run_cell(code)
            .error
            .unwrap_or_else(|| panic!("{code}: no error"));
        assert!(err.contains("memory limit"), "{code}: {err}");
    }
    let out = s.run_cell("let a = [1]; a.pad(3, 0); let t = \"é\"; t.pad(3, \"ab\"); print(`${a} ${t} ${blob(2, 1)}`);");
    assert_eq!(out.error, None);
    assert_eq!(out.output, "[1, 0, 0] éab [0101]\n");
}
