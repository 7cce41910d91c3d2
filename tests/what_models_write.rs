//! The Rhai that capable models write after reading the system prompt,
//! cell by cell through the public session API: the forms the quick
//! reference offers must run, and nothing may come back quietly wrong.

use rlm::dsl::{Limits, Session, SessionBuilder};
use rlm::Context;

const LOG: &str = "INFO start\nERROR disk full\nINFO retry\nERROR net down\n";

fn session() -> Session {
    SessionBuilder::new().build(&Context::from_string("log", LOG))
}

/// Runs a cell that must succeed and returns its output.
fn ok(session: &mut Session, code: &str) -> String {
    let out = session.run_cell(code);
    assert_eq!(
        out.error, None,
        "cell failed:\n{code}\noutput: {}",
        out.output
    );
    out.output
}

/// Runs a cell that must fail and returns its error.
fn fails(session: &mut Session, code: &str) -> String {
    let out = session.run_cell(code);
    out.error
        .unwrap_or_else(|| panic!("cell should fail:\n{code}\noutput: {}", out.output))
}

/// The output of one cell in a fresh session.
fn run(code: &str) -> String {
    ok(&mut session(), code)
}

#[test]
fn a_redeclared_variable_keeps_every_other_variable() {
    // The reported repro: the third cell used to find no variables at all.
    let mut s = session();
    ok(&mut s, "let names = [1, 2]; let hits = [3];");
    ok(&mut s, r#"let d = "abc"; let off = 1; let hits = [4, 5];"#);
    assert_eq!(ok(&mut s, "print(d.len());"), "3\n");
    assert_eq!(
        ok(&mut s, "print(`${names} ${hits} ${d} ${off}`);"),
        "[1, 2] [4, 5] abc 1\n"
    );
    let vars: Vec<String> = s.variables().into_iter().map(|(n, _)| n).collect();
    assert_eq!(vars, ["names", "hits", "d", "off"]);
    let listed = ok(&mut s, "show_vars();");
    let order: Vec<&str> = listed
        .lines()
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(order, ["names", "hits", "d", "off"], "{listed}");
}

#[test]
fn constants_stay_constant_after_a_redeclaration_elsewhere() {
    let mut s = session();
    ok(&mut s, "const LIMIT = 3; let x = 1;");
    ok(&mut s, "let x = 2;");
    let err = fails(&mut s, "LIMIT = 4;");
    assert!(err.contains("constant"), "{err}");
    assert_eq!(ok(&mut s, "print(LIMIT + x);"), "5\n");
}

#[test]
fn arrays_slice_like_text_views() {
    let cases = [
        ("a[1..3]", "[1, 2]"),
        ("a[1..=3]", "[1, 2, 3]"),
        ("a[..2]", "[0, 1]"),
        ("a[3..]", "[3, 4]"),
        ("a[-2..]", "[3, 4]"),
        ("a[1..-1]", "[1, 2, 3]"),
        ("a[1..=-1]", "[1, 2, 3, 4]"),
        ("a[3..1]", "[]"),
        ("a[2..99]", "[2, 3, 4]"),
        ("a.slice(1, 3)", "[1, 2]"),
        ("a.slice(2)", "[2, 3, 4]"),
        ("a.slice(-3, -1)", "[2, 3]"),
        ("a.slice(1..3)", "[1, 2]"),
        ("a.head(2)", "[0, 1]"),
        ("a.head(99)", "[0, 1, 2, 3, 4]"),
        ("a.tail(2)", "[3, 4]"),
        ("a.tail(0)", "[]"),
        ("a.tail(-1)", "[]"),
        ("a.extract(1, 2)", "[1, 2]"),
        ("a[-1]", "4"),
        ("a[1..4][0]", "1"),
        ("a[1..4].len()", "3"),
        ("m.xs[1..3]", "[1, 2]"),
        ("m[\"xs\"][..1]", "[0]"),
        ("nested[1][0..1]", "[\"c\"]"),
        ("words()[1..]", "[\"b\", \"c\"]"),
    ];
    for (expr, want) in cases {
        let code = format!(
            "let a = [0, 1, 2, 3, 4]; let m = #{{xs: a}}; let nested = [[\"a\", \"b\"], [\"c\"]];\n\
             fn words() {{ [\"a\", \"b\", \"c\"] }}\nprint({expr});"
        );
        assert_eq!(run(&code), format!("{want}\n"), "{expr}");
    }
    // The original is untouched.
    assert_eq!(
        run("let a = [1, 2, 3]; let b = a[0..1]; b.push(9); print(a);"),
        "[1, 2, 3]\n"
    );
}

#[test]
fn text_and_strings_slice_with_ranges_too() {
    assert_eq!(run("print(context[0..4]);"), "INFO\n");
    assert_eq!(run("print(context.line(2)[6..]);"), "disk full\n");
    assert_eq!(run(r#"let s = "hello world"; print(s[..5]);"#), "hello\n");
    assert_eq!(run(r#"let s = "hello"; print(s[1..=2]);"#), "el\n");
}

#[test]
fn an_error_after_a_slice_points_at_what_the_model_wrote() {
    let mut s = session();
    let code = "let a = [1, 2, 3];\nlet b = a[0..2] + nope;";
    let err = fails(&mut s, code);
    assert!(err.contains("nope"), "{err}");
    // The caret sits under `nope` in the line as written.
    let line = "let b = a[0..2] + nope;";
    let caret = err.lines().last().unwrap();
    let column = caret.find('^').unwrap() - caret.find('|').unwrap() - 2;
    assert_eq!(&line[column..column + 4], "nope", "{err}");
}

#[test]
fn backtick_strings_read_escapes_like_f_strings() {
    assert_eq!(
        run(
            r#"let i = 3; let q = "why"; let p = `${i}\t${q}\n`; print(p.len()); print(to_json(p));"#
        ),
        "6\n\"3\\twhy\\n\"\n"
    );
    // Sixteen prompts built in a loop are sixteen lines.
    assert_eq!(
        run(r#"let p = ""; for i in 0..16 { p += `${i}: item\n`; } print(p.split("\n").len());"#),
        "17\n"
    );
    assert_eq!(run(r#"print(`a\rb`.len());"#), "3\n");
    assert_eq!(run(r#"print(`two\\nchars`.len());"#), "11\n");
    // Multi-line backtick strings keep their lines, and code after them
    // still reports the right line.
    let mut s = session();
    let err = fails(&mut s, "let x = `line one\\n\nline two`;\nundefined_thing;");
    assert!(err.contains("at line 3"), "{err}");
}

#[test]
fn regexes_in_backticks_keep_their_meaning() {
    let mut s = session();
    assert_eq!(
        ok(&mut s, r#"print(context.count_matches(`\bERROR\b`));"#),
        "2\n"
    );
    assert_eq!(
        ok(&mut s, r#"print(context.count_matches(`\w+\s\w+\n`));"#),
        "4\n"
    );
    assert_eq!(
        ok(
            &mut s,
            r#"print(context.matches(`ERROR (\w+)`)[0].groups[0]);"#
        ),
        "disk\n"
    );
    assert_eq!(
        ok(&mut s, r#"print(context.count_matches(`[^\n]+\n`));"#),
        "4\n"
    );
    assert_eq!(
        ok(&mut s, r#"print(context.count_matches(`retry\nERROR`));"#),
        "1\n"
    );
    assert_eq!(
        ok(&mut s, r#"print("a.b\\c".count_matches(`\\.`));"#),
        "1\n"
    );
    assert_eq!(ok(&mut s, r#"print("a\\c".count_matches(`\\c`));"#), "1\n");
    assert_eq!(ok(&mut s, r#"print("a.b".count_matches(`\.`));"#), "1\n");
    assert_eq!(ok(&mut s, r#"print("x\ty".count_matches(`\t`));"#), "1\n");
    // A verbose regex ignores literal white space, so it stays raw.
    assert_eq!(
        ok(
            &mut s,
            r#"print(context.count_matches(`(?x) retry \n ERROR`));"#
        ),
        "1\n"
    );
    assert_eq!(ok(&mut s, r#"print(`${1}\d`);"#), "1\\d\n");
}

#[test]
fn texts_print_and_interpolate_as_their_contents() {
    let mut s = session();
    assert_eq!(
        ok(&mut s, "print(`A: ${context.line(1)}`);"),
        "A: INFO start\n"
    );
    assert_eq!(
        ok(&mut s, "print(`${context}`.len());"),
        format!("{}\n", LOG.len())
    );
    assert_eq!(
        ok(&mut s, "fn f() { `B: ${context.head(4)}` } print(f());"),
        "B: INFO\n"
    );
    assert_eq!(
        ok(&mut s, "fn g() { `${context}` } print(g().len());"),
        format!("{}\n", LOG.len())
    );
    let docs = ok(&mut s, "print(`${documents}`);");
    assert_eq!(docs, format!("[{:?}]\n", LOG));
    assert_eq!(
        ok(&mut s, "let ls = context.lines(); print(ls[0..2]);"),
        "[\"INFO start\", \"ERROR disk full\"]\n"
    );
    assert_eq!(
        ok(&mut s, "print(#{first: context.line(1)});"),
        "#{\"first\": \"INFO start\"}\n"
    );
    for code in [
        "print(context);",
        "print(context.to_string());",
        "print(\"\" + context);",
    ] {
        assert_eq!(ok(&mut s, code), LOG.to_string() + "\n", "{code}");
    }
}

#[test]
fn a_text_too_large_for_a_string_fails_instead_of_printing_its_type() {
    let limits = Limits {
        max_string_bytes: 1000,
        ..Limits::default()
    };
    let big = "word ".repeat(400);
    let mut s = SessionBuilder::new()
        .limits(limits)
        .build(&Context::from_string("big", &big));
    for code in [
        "let p = `Summarize: ${context}`; print(p.len());",
        "print(`${documents}`);",
        "fn f() { `x ${context}` } print(f());",
        "print(context);",
        "let parts = context.parts(1); print(`${parts}`);",
        "print([context]);",
    ] {
        let err = fails(&mut s, code);
        assert!(!err.contains("rlm::text::Text"), "{code}: {err}");
        assert!(
            err.contains("limit") && (err.contains("chunk") || err.contains("slice")),
            "{code}: {err}"
        );
    }
    // A slice that fits still works.
    assert_eq!(ok(&mut s, "print(`${context.head(9)}`);"), "word word\n");
}

#[test]
fn a_failing_comparator_raises_instead_of_leaving_the_array_unsorted() {
    let mut s = session();
    for code in [
        r#"let b = [3, 1, 2]; b.sort(|x, y| { throw "boom" });"#,
        r#"let b = [#{n: 3}, #{n: 1}]; b.sort(|x, y| x.missing - y.n);"#,
        r#"let b = [3, 1, 2]; b.sort_by(|x, y| x.zzz - y);"#,
        r#"let b = [3, 1, 2]; let c = b.order_by(|x, y| { throw "boom" });"#,
        r#"let b = [3, 1, 2]; let c = b.order(|x, y| "not a number");"#,
        r#"let b = [1, 1, 2]; b.dedup(|x, y| { throw "boom" });"#,
        r#"let b = [1, 1, 2]; b.dedup(|x, y| 5);"#,
    ] {
        fails(&mut s, code);
    }
    let limited = Limits {
        max_operations: 5_000,
        ..Limits::default()
    };
    let mut tight = SessionBuilder::new()
        .limits(limited)
        .build(&Context::from_string("x", ""));
    let err = fails(
        &mut tight,
        "let b = range(200); b.sort(|x, y| { let z = 0; for i in 0..100 { z += i; } y - x });",
    );
    assert!(err.contains("operations"), "{err}");
}

#[test]
fn comparators_that_work_sort_as_rhai_documents() {
    let mut s = session();
    assert_eq!(
        ok(&mut s, "let b = [3, 1, 2]; b.sort(|x, y| y - x); print(b);"),
        "[3, 2, 1]\n"
    );
    assert_eq!(
        ok(
            &mut s,
            "let b = [3, 1, 2]; b.sort(|x, y| x <= y); print(b);"
        ),
        "[1, 2, 3]\n"
    );
    assert_eq!(
        ok(
            &mut s,
            "let b = [[\"a\", 2], [\"b\", 5], [\"c\", 2]]; b.sort(|x, y| y[1] - x[1]); print(b);"
        ),
        "[[\"b\", 5], [\"a\", 2], [\"c\", 2]]\n"
    );
    assert_eq!(
        ok(
            &mut s,
            "let b = [1.5, 0.5]; b.sort(|x, y| x - y); print(b);"
        ),
        "[0.5, 1.5]\n"
    );
    assert_eq!(
        ok(
            &mut s,
            "let b = [3, 1, 2]; let c = b.order_by(|x, y| x - y); print(`${b} ${c}`);"
        ),
        "[3, 1, 2] [1, 2, 3]\n"
    );
    assert_eq!(
        ok(
            &mut s,
            "let b = [1, 1, 2, 2, 1]; b.dedup(|x, y| x == y); print(b);"
        ),
        "[1, 2, 1]\n"
    );
    assert_eq!(
        ok(&mut s, "let b = [3, 1, 2]; b.sort(); print(b);"),
        "[1, 2, 3]\n"
    );
}

#[test]
fn arithmetic_helpers_raise_on_overflow_and_non_numbers() {
    let mut s = session();
    for code in [
        "sum([9223372036854775807, 1])",
        "sum([-9223372036854775807, -2])",
        "int(0.0 / 0.0)",
        "int(1e300)",
        "int(-1e300)",
        "int(1.0 / 0.0)",
        "int(\"1e30\")",
        "sleep(0.0 / 0.0)",
    ] {
        let err = fails(&mut s, &format!("print({code});"));
        assert!(!err.is_empty(), "{code}");
    }
    assert_eq!(ok(&mut s, "print(sum([1, 2, 3]));"), "6\n");
    assert_eq!(ok(&mut s, "print(sum([1, 2.5]));"), "3.5\n");
    assert_eq!(ok(&mut s, "print(int(-2.7));"), "-2\n");
    assert_eq!(ok(&mut s, "print(int(\" 42 \"));"), "42\n");
    assert_eq!(ok(&mut s, "print(int(9.2e18));"), "9200000000000000000\n");
}

#[test]
fn the_built_in_answer_functions_cannot_be_redefined() {
    let mut s = session();
    for name in ["submit", "FINAL", "SUBMIT"] {
        let err = fails(&mut s, &format!("fn {name}(x) {{ print(\"mine\"); }}"));
        assert!(err.contains(name) && err.contains("built in"), "{err}");
        let err = fails(&mut s, &format!("fn {name}(x, y) {{ 0 }}"));
        assert!(err.contains(name), "{err}");
    }
    // Nothing was defined, so submit still submits.
    let out = s.run_cell("submit(5);");
    assert_eq!(out.submitted.map(|a| a.text).as_deref(), Some("5"));
    // Names that merely contain the word are fine.
    ok(&mut s, "fn submit_all(x) { x } fn my_submit(x) { x }");
}

#[test]
fn the_operation_limit_counts_every_callback_of_a_cell_together() {
    let limits = Limits {
        max_operations: 100_000,
        ..Limits::default()
    };
    let mut s = SessionBuilder::new()
        .limits(limits)
        .build(&Context::from_string("x", ""));
    // Each callback alone stays far under the limit; together they do not.
    let err = fails(
        &mut s,
        "let r = range(40).map(|x| { let z = 0; for i in 0..10000 { z += i; } z });",
    );
    assert!(err.contains("100000 operations"), "{err}");
    // The count starts again with the next cell.
    assert_eq!(ok(&mut s, "print(range(3).map(|x| x * 2));"), "[0, 2, 4]\n");
}

#[test]
fn indexing_with_a_range_variable_names_the_way_that_works() {
    let mut s = session();
    let err = fails(&mut s, "let a = [1, 2, 3]; let r = 0..2; print(a[r]);");
    assert!(err.contains("a.slice(r)"), "{err}");
    assert_eq!(
        ok(
            &mut s,
            "let a = [1, 2, 3]; let r = 0..2; print(a.slice(r));"
        ),
        "[1, 2]\n"
    );
}

#[test]
fn a_closure_may_use_the_variable_its_method_chain_starts_from() {
    let mut s = session();
    for (code, want) in [
        (
            "let m = #{a: 1, b: 2}; print(m.keys().filter(|k| m[k] > 1));",
            "[\"b\"]",
        ),
        (
            "let p = #{a: [1], b: [2, 3]}; print(p.keys().map(|k| `${k}=${p[k].len()}`));",
            "[\"a=1\", \"b=2\"]",
        ),
        (
            "let a = [3, 1, 2]; print(a.filter(|x| x > a[1]).len());",
            "2",
        ),
        (
            "let hits = context.grep(\"ERROR\"); print(hits.map(|h| hits.len() + h.line));",
            "[4, 6]",
        ),
    ] {
        assert_eq!(ok(&mut s, code), format!("{want}\n"), "{code}");
    }
}

#[test]
fn a_failing_comparator_leaves_the_array_as_it_was() {
    let mut s = session();
    ok(
        &mut s,
        "let a = [#{n: 2}, #{m: 1}, #{n: 0}]; let d = [1, 1, 2];",
    );
    fails(&mut s, "a.sort(|x, y| x.n - y.n);");
    fails(&mut s, "d.dedup(|x, y| { throw 1 });");
    assert_eq!(ok(&mut s, "print(a.len()); print(d);"), "3\n[1, 1, 2]\n");
}

#[test]
fn show_vars_lists_a_redeclared_variable_once_with_its_value() {
    let mut s = session();
    ok(&mut s, "let a = 1; let k = 5;");
    let shown = ok(&mut s, "let a = 2; let f = |x| x + k; show_vars();");
    // A re-declared variable keeps the place of its first declaration.
    assert_eq!(
        shown, "a: i64 (2)\nk: i64 (5)\nf: Fn (a function)\n",
        "{shown}"
    );
}

#[test]
fn the_globals_cannot_be_changed_by_methods_or_assignment() {
    let mut s = SessionBuilder::new()
        .query("Hi there")
        .build(&Context::from_string("log", LOG));
    assert_eq!(
        ok(&mut s, "print(query.to_upper()); print(query);"),
        "HI THERE\nHi there\n"
    );
    assert!(fails(&mut s, "query = \"x\";").contains("constant"));
    assert!(fails(&mut s, "context = 1;").contains("constant"));
    fails(&mut s, "documents.sort(|a, b| 0);");
    fails(&mut s, "documents.push(1);");
    assert_eq!(
        ok(&mut s, "print(documents.len()); print(context.len());"),
        format!("1\n{}\n", LOG.len())
    );
    // Shadowing them is allowed, and a later cell sees the shadow.
    ok(&mut s, "let query = \"mine\";");
    assert_eq!(ok(&mut s, "print(query);"), "mine\n");
}

#[test]
fn submit_inside_a_closure_or_function_submits() {
    for code in [
        "[1, 2].map(|x| submit(x));",
        "fn finish(v) { submit(v * 10) } finish(1);",
        "for x in [1, 2] { if x == 1 { [x].filter(|y| { submit(y); true }); } }",
    ] {
        let out = session().run_cell(code);
        assert_eq!(out.error, None, "{code}");
        assert!(out.submitted.is_some(), "{code}");
    }
}

#[test]
fn sort_without_a_comparator_orders_views_and_mixed_values() {
    let mut s = session();
    assert_eq!(
        ok(
            &mut s,
            "let ls = context.lines(); ls.sort(); print(ls[0]); print(ls[-1]);"
        ),
        "ERROR disk full\nINFO start\n"
    );
    assert_eq!(
        ok(&mut s, "let a = [\"b\", 10, \"a\", 2]; a.sort(); print(a);"),
        "[2, 10, \"a\", \"b\"]\n"
    );
}

#[test]
fn arithmetic_on_a_missing_map_key_says_how_to_count() {
    let mut s = session();
    let err = fails(&mut s, "let m = #{}; m[\"x\"] += 1;");
    assert!(err.contains("m.get(k, 0) + 1"), "{err}");
    let err = fails(&mut s, "let m = #{}; let n = m.get(\"y\") + 1;");
    assert!(err.contains("m.get(k, 0) + 1"), "{err}");
}

#[test]
fn parse_json_says_what_failed_for_strings_and_views() {
    let mut s = session();
    for code in ["parse_json(\"{oops\")", "parse_json(context.line(1))"] {
        let err = fails(&mut s, &format!("{code};"));
        assert!(err.contains("parse_json: invalid JSON"), "{code}: {err}");
    }
}

#[test]
fn a_scan_for_a_pattern_that_can_match_a_newline_stops_at_the_time_limit() {
    // Such a pattern is one regex call over the whole view, which the
    // engine cannot stop; the cell still returns at its limit.
    let line = "2025-01-01 INFO engine ready. user=42 magic number: 7, value: 9\n";
    let big = line.repeat((256 << 20) / line.len());
    let limits = Limits {
        cell_timeout: std::time::Duration::from_millis(200),
        ..Limits::default()
    };
    let mut s = SessionBuilder::new()
        .limits(limits)
        .build(&Context::from_string("big", &big));
    for code in [
        "print(context.count_matches(`\\s`));",
        "print(context.matches(`\\s+\\d`, 100000000).len());",
        "print(context.split_on(`\\s\\s`).len());",
    ] {
        let err = fails(&mut s, code);
        assert!(err.contains("time limit"), "{code}: {err}");
    }
}

#[test]
fn an_oversized_cell_or_a_long_line_gets_a_short_error() {
    let mut s = session();
    let huge = format!("let x = \"{}\";", "a".repeat(2 << 20));
    let err = fails(&mut s, &huge);
    assert!(
        err.contains("more than the limit of 1048576 bytes"),
        "{}",
        &err[..200.min(err.len())]
    );
    assert!(err.len() < 400);
    // An error on a very long line quotes only the part around it.
    let long = format!("let y = [{}]; nope;", "1, ".repeat(15_000));
    let err = fails(&mut s, &long);
    assert!(
        err.contains("nope") && err.len() < 1_000,
        "{} bytes",
        err.len()
    );
    let caret_line = err.lines().last().unwrap();
    let quoted = err.lines().rev().nth(1).unwrap();
    let at = caret_line.find('^').unwrap();
    assert_eq!(&quoted[at..at + 4], "nope", "{quoted}\n{caret_line}");
    // The session is fine afterwards.
    assert_eq!(ok(&mut s, "print(1);"), "1\n");
}

#[test]
fn split_on_refuses_a_split_over_the_limit_instead_of_cutting_it_short() {
    let limits = Limits {
        max_array_len: 100,
        ..Limits::default()
    };
    let text = format!("{}{}\nend\n", "a.b\n".repeat(1000), "x".repeat(5000));
    let mut s = SessionBuilder::new()
        .limits(limits)
        .build(&Context::from_string("t", &text));
    let err = fails(&mut s, "print(context.split_on(\".\").len());");
    assert!(err.contains("array limit of 100"), "{err}");
    // Touching separators are one: 5,000 x's in a row do not count as 5,000.
    assert_eq!(
        ok(&mut s, "print(context.slice(4000).split_on(\"x\").len());"),
        "1\n"
    );
}
