//! Script sessions through the public API: what persists between cells,
//! what a cell's outcome holds, and how texts and strings mix.

use std::sync::Arc;
use std::time::Duration;

use rlm::dsl::{CellOutcome, Limits, Session, SessionBuilder, NO_OUTPUT};
use rlm::Context;

const LOG: &str = "INFO start\nERROR disk full\nINFO retry\nERROR net down\n";

fn session() -> Session {
    SessionBuilder::new().build(&Context::from_string("log", LOG))
}

/// Runs a cell that must succeed and returns its output.
fn ok(session: &mut Session, code: &str) -> String {
    let out = session.run_cell(code);
    assert_eq!(out.error, None, "cell failed:\n{code}");
    out.output
}

/// Runs a cell that must fail and returns its error.
fn fails(session: &mut Session, code: &str) -> String {
    let out = session.run_cell(code);
    out.error
        .unwrap_or_else(|| panic!("cell should fail:\n{code}\noutput: {}", out.output))
}

#[test]
fn variables_and_functions_persist_across_cells() {
    let mut s = session();
    ok(&mut s, "let n = 20;");
    ok(&mut s, "fn double(x) { x * 2 }");
    ok(&mut s, "n += 1;");
    assert_eq!(ok(&mut s, "print(double(n));"), "42\n");
    // A function defined later can call one defined earlier.
    ok(&mut s, "fn quadruple(x) { double(double(x)) }");
    assert_eq!(ok(&mut s, "print(quadruple(n));"), "84\n");
    // Redefining a function replaces it.
    ok(&mut s, "fn double(x) { x + x + 1 }");
    assert_eq!(ok(&mut s, "print(double(1));"), "3\n");
}

#[test]
fn a_failing_cell_keeps_what_it_assigned_before_the_error() {
    let mut s = session();
    ok(&mut s, "let total = 1;");
    let err = fails(
        &mut s,
        "let a = 10;\ntotal += a;\nthrow \"boom\";\nlet b = 5;",
    );
    assert!(err.contains("boom"), "{err}");
    assert_eq!(ok(&mut s, "print(a + total);"), "21\n");
    let err = fails(&mut s, "print(b);");
    assert!(err.contains("Variable not found: b"), "{err}");
    // A syntax error runs nothing, so it changes nothing.
    fails(&mut s, "total = 0;\nlet c = ;");
    assert_eq!(ok(&mut s, "print(total);"), "11\n");
}

#[test]
fn print_and_debug_are_captured_per_cell() {
    let mut s = session();
    let out = ok(
        &mut s,
        "print(\"first\");\ndebug(\"looking\");\nprint(1 + 1);",
    );
    assert_eq!(out, "first\n[debug line 2] \"looking\"\n2\n");
    // The next cell starts with empty output.
    assert_eq!(ok(&mut s, "print(\"second\");"), "second\n");
    // Output printed before an error is kept, and shown before it.
    let out = s.run_cell("print(\"before\");\nthrow \"oops\";");
    assert_eq!(out.output, "before\n");
    assert!(
        out.render().starts_with("before\nError: oops"),
        "{}",
        out.render()
    );
}

#[test]
fn sessions_in_parallel_threads_never_mix_output() {
    let ctx = Context::from_string("log", LOG);
    let threads: Vec<_> = (0..4)
        .map(|id| {
            let ctx = ctx.clone();
            std::thread::spawn(move || {
                let mut s = SessionBuilder::new().build(&ctx);
                (0..5)
                    .map(|cell| {
                        let code = format!("for i in 0..300 {{ print(`s{id} c{cell} ${{i}}`); }}");
                        s.run_cell(&code).output
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for (id, thread) in threads.into_iter().enumerate() {
        for (cell, output) in thread.join().unwrap().into_iter().enumerate() {
            let expected: String = (0..300).map(|i| format!("s{id} c{cell} {i}\n")).collect();
            assert_eq!(output, expected, "session {id}, cell {cell}");
        }
    }
}

#[test]
fn output_over_the_cap_keeps_head_and_tail_and_states_the_true_length() {
    let mut s = session();
    assert_eq!(s.limits().output_chars, 20_000);
    let out = s.run_cell("for i in 0..5000 { print(`line ${i}`); }");
    let total: usize = (0..5000).map(|i| format!("line {i}\n").len()).sum();
    assert!(out.truncated);
    assert!(
        out.output.starts_with("line 0\nline 1\n"),
        "{}",
        &out.output[..100]
    );
    assert!(out.output.ends_with("line 4998\nline 4999\n"));
    assert!(
        out.output.contains(&format!(
            "characters cut from the middle: output was {total} characters, limit 20000"
        )),
        "{}",
        marker(&out)
    );
    let cut: usize = marker(&out)
        .trim_start_matches("[... ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap();
    let kept = out.output.len() - marker(&out).len() - 1;
    assert_eq!(
        cut + kept,
        total,
        "the marker must state exactly what was cut"
    );
    assert!(kept <= 20_001, "kept {kept} characters");

    // A configured cap applies the same way.
    let limits = Limits {
        output_chars: 100,
        ..Default::default()
    };
    let mut small = SessionBuilder::new()
        .limits(limits)
        .build(&Context::from_string("log", LOG));
    let out = small.run_cell("for i in 0..100 { print(`line ${i}`); }");
    assert!(out.truncated);
    assert!(out.output.starts_with("line 0\n"));
    assert!(out.output.ends_with("line 99\n"));
    assert!(marker(&out).contains("limit 100"), "{}", out.output);
    let out = small.run_cell("print(\"short\");");
    assert!(!out.truncated);
    assert_eq!(out.output, "short\n");
}

/// The line of output that reports the cut.
fn marker(out: &CellOutcome) -> &str {
    out.output
        .lines()
        .find(|l| l.starts_with("[... "))
        .expect("a truncation marker")
}

#[test]
fn a_cell_without_output_says_so_and_a_final_expression_is_shown() {
    let mut s = session();
    let out = s.run_cell("let x = 1;");
    assert_eq!(out.output, NO_OUTPUT);
    assert_eq!(out.error, None);
    assert_eq!(out.render(), NO_OUTPUT);
    assert_eq!(ok(&mut s, "x + 1"), "=> 2\n");
    assert_eq!(ok(&mut s, "[x, \"a\"]"), "=> [1,\"a\"]\n");
    // A failing cell shows its error instead of the note.
    let out = s.run_cell("throw \"bad\";");
    assert_eq!(out.output, "");
    assert!(out.render().contains("Error: bad"), "{}", out.render());
}

#[test]
fn errors_name_the_line_and_column_and_quote_the_offending_line() {
    let mut s = session();
    let err = fails(
        &mut s,
        "let a = 1;\nlet b = 2;\nlet c = a + missing;\nprint(c);",
    );
    assert!(err.starts_with("Variable not found: missing"), "{err}");
    assert!(
        err.ends_with("\n  at line 3, column 13:\n3 | let c = a + missing;\n  |             ^"),
        "{err}"
    );

    let err = fails(&mut s, "let x = 1;\nlet y = (x + ;\n");
    assert!(err.starts_with("syntax error: "), "{err}");
    assert!(err.contains("  at line 2, column "), "{err}");
    assert!(err.contains("\n2 | let y = (x + ;\n"), "{err}");

    // Errors inside a script function point at the call.
    ok(
        &mut s,
        "fn check(v) {\n    if v > 1 { throw `too big: ${v}`; }\n    v\n}",
    );
    let err = fails(&mut s, "let r = check(1);\nlet r = check(5);");
    assert!(err.contains("too big: 5"), "{err}");
    assert!(err.contains("\n2 | let r = check(5);\n"), "{err}");
}

fn two_documents() -> (tempfile::TempDir, Context) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha\nERROR one\n").unwrap();
    std::fs::write(dir.path().join("b.txt"), "beta\nERROR two\nERROR three\n").unwrap();
    let ctx = Context::open(&[dir.path()]).unwrap();
    (dir, ctx)
}

#[test]
fn context_documents_and_query_are_globals_even_inside_functions() {
    let (_dir, ctx) = two_documents();
    let mut s = SessionBuilder::new().query("How many errors?").build(&ctx);
    let out = ok(
        &mut s,
        r#"
        print(query);
        print(documents.len());
        for d in documents { print(`${d.name}: ${d.count("ERROR")}`); }
        print(context.count("ERROR"));
        print(context.count("==> "));
        "#,
    );
    assert_eq!(out, "How many errors?\n2\na.txt: 1\nb.txt: 2\n3\n2\n");

    let out = ok(
        &mut s,
        r#"
        fn report() {
            let names = documents.map(|d| d.name);
            `${query} ${context.count("ERROR")} in ${names}`
        }
        print(report());
        "#,
    );
    assert_eq!(out, "How many errors? 3 in [\"a.txt\", \"b.txt\"]\n");

    // A parameter or local of the same name shadows the global.
    let out = ok(
        &mut s,
        "fn first_line(context) { context.line(1) }\nprint(first_line(\"local\\ntext\"));",
    );
    assert_eq!(out, "local\n");
    // The globals are constants.
    let err = fails(&mut s, "query = \"changed\";");
    assert!(err.contains("constant"), "{err}");
}

#[test]
fn submit_final_and_submit_take_strings_numbers_arrays_and_maps() {
    let cases = [
        (
            "submit(\"disk full\");",
            serde_json::json!("disk full"),
            "disk full",
        ),
        ("FINAL(42);", serde_json::json!(42), "42"),
        ("SUBMIT(2.5);", serde_json::json!(2.5), "2.5"),
        (
            "submit([1, \"two\", true]);",
            serde_json::json!([1, "two", true]),
            "[1,\"two\",true]",
        ),
        (
            "FINAL(#{count: 2, lines: [2, 4], note: ()});",
            serde_json::json!({"count": 2, "lines": [2, 4], "note": null}),
            "{\"count\":2,\"lines\":[2,4],\"note\":null}",
        ),
        (
            "SUBMIT(context.line(2));",
            serde_json::json!("ERROR disk full"),
            "ERROR disk full",
        ),
    ];
    for (code, value, text) in cases {
        let mut s = session();
        let out = s.run_cell(code);
        assert_eq!(out.error, None, "{code}");
        let answer = out
            .submitted
            .unwrap_or_else(|| panic!("{code} submitted nothing"));
        assert_eq!(answer.value, value, "{code}");
        assert_eq!(answer.text, text, "{code}");
    }
}

#[test]
fn submit_ends_the_cell_and_try_catch_cannot_swallow_it() {
    let mut s = session();
    let out = s.run_cell(
        "print(\"before\");\ntry { submit(1); } catch { print(\"caught\"); }\nprint(\"after\");",
    );
    assert_eq!(out.error, None);
    assert_eq!(out.output, "before\n");
    assert_eq!(out.submitted.unwrap().value, serde_json::json!(1));

    let out = s.run_cell("try { submit(1); } catch (e) { submit(2); }");
    assert_eq!(out.submitted.unwrap().value, serde_json::json!(1));

    // From inside a script function and a closure, too.
    let out =
        s.run_cell("fn done(x) { submit(x); 0 }\n[1, 2].map(|x| done(x * 10));\nprint(\"after\");");
    assert_eq!(out.submitted.unwrap().value, serde_json::json!(10));
    assert_eq!(out.output, "");

    // The next cell starts without an answer.
    let out = s.run_cell("print(1);");
    assert_eq!(out.submitted, None);
}

#[test]
fn a_let_redeclared_in_every_cell_is_kept_once() {
    let mut s = session();
    for i in 0..50 {
        ok(&mut s, &format!("let big = []; big.pad(100000, {i});"));
    }
    ok(&mut s, "let x = 1; let x = 2; let x = \"three\";");
    let vars = ok(&mut s, "show_vars()");
    let big: Vec<&str> = vars.lines().filter(|l| l.starts_with("big")).collect();
    assert_eq!(big, ["big: array (100000 items)"], "{vars}");
    let x: Vec<&str> = vars.lines().filter(|l| l.starts_with("x")).collect();
    assert_eq!(x, ["x: string (5 bytes)"], "{vars}");
    assert_eq!(ok(&mut s, "print(big[0]);"), "49\n");
}

#[test]
fn show_vars_lists_user_variables_with_types_and_sizes() {
    let mut s = session();
    assert_eq!(ok(&mut s, "show_vars()"), "no user variables yet\n");
    ok(
        &mut s,
        r#"
        let n = 5;
        let word = "hello";
        let hits = context.grep("ERROR");
        let tally = #{a: 1, b: 2};
        let view = context.slice(11, 26);
        const LIMIT = 3;
        "#,
    );
    let vars = ok(&mut s, "show_vars( )");
    let mut lines: Vec<&str> = vars.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "LIMIT (const): i64 (3)",
            "hits: array (2 items)",
            "n: i64 (5)",
            "tally: map (2 entries)",
            "view: Text (15 bytes, view at 11..26)",
            "word: string (5 bytes)",
        ]
    );
}

#[test]
fn texts_and_strings_mix_in_operators_and_interpolation() {
    let mut s = session();
    ok(&mut s, "let t = context.line(2);");
    let cases = [
        ("t + \"!\"", "ERROR disk full!"),
        ("\"> \" + t", "> ERROR disk full"),
        ("t + t.len()", "ERROR disk full15"),
        ("`[${t}]`", "[ERROR disk full]"),
        ("t == \"ERROR disk full\"", "true"),
        ("\"ERROR disk full\" == t", "true"),
        ("t != \"x\"", "true"),
        ("t == context.line(2)", "true"),
        ("t < \"F\"", "true"),
        ("\"A\" < t", "true"),
        ("t.to_upper()", "ERROR DISK FULL"),
        ("t.to_lower()", "error disk full"),
        ("t.lower() == \"error disk full\"", "true"),
        ("t.split(\" \")", "[\"ERROR\", \"disk\", \"full\"]"),
        ("t.replace(\"disk\", \"tape\")", "ERROR tape full"),
        ("t.contains(\"disk\")", "true"),
        ("t.starts_with(\"ERR\") && t.startswith(\"ERR\")", "true"),
        ("str(t) + 1", "ERROR disk full1"),
        ("type_of(t)", "Text"),
        ("type_of(t + \"\")", "string"),
        ("t in [\"ERROR disk full\"]", "true"),
        ("\"disk\" in t", "true"),
        ("context.line(1).slice(5, 10).parse_int()", "error"),
        ("\"x 42\".slice(2).parse_int() + 1", "43"),
        ("context.grep(\"ERROR\")[0].text.len()", "15"),
    ];
    for (expr, expected) in cases {
        let out = s.run_cell(&format!("print({expr});"));
        let got = match &out.error {
            None => out.output.trim_end_matches('\n').to_string(),
            Some(_) => "error".to_string(),
        };
        assert_eq!(got, expected, "{expr}: {}", out.render());
    }
    // A text's contents can key a map.
    assert_eq!(
        ok(
            &mut s,
            "let m = #{}; m[t.to_string()] = 1; m[`${t}`] += 1; print(m);"
        ),
        "#{\"ERROR disk full\": 2}\n"
    );
    // Rhai's own string methods change a string variable in place; ours also
    // return the result, so both styles work.
    assert_eq!(
        ok(
            &mut s,
            "let w = \" Hi \"; let v = w.trim(); print(`${v}|${w}`);"
        ),
        "Hi|Hi\n"
    );
}

const SAMPLE: &str = "alpha beta\nGamma a\nthird line a\n";

/// Methods that mean something only on a view of the context.
const TEXT_ONLY: &[&str] = &[
    // A plain string is not part of a context, so it holds no documents.
    "documents",
];

/// A literal argument of the given script type, or `None` for types the
/// check does not build.
fn sample_argument(ty: &str, nth_int: &mut usize) -> Option<&'static str> {
    Some(match ty {
        "i64" => {
            *nth_int += 1;
            if *nth_int == 1 {
                "2"
            } else {
                "5"
            }
        }
        "string" => "\"a\"",
        "map" => "#{}",
        "array" => "[\"a\", \"line\"]",
        _ => return None,
    })
}

/// Every method registered with a `Text` receiver gives the same result on
/// a plain string with the same contents.
#[test]
fn every_text_method_works_on_a_plain_string_too() {
    let ctx = Context::from_string("sample", SAMPLE);
    let mut s = SessionBuilder::new().build(&ctx);
    let literal = format!("{SAMPLE:?}");
    let mut checked = Vec::new();
    let mut signatures = s.function_signatures();
    signatures.sort();
    signatures.dedup();
    for sig in signatures {
        let Some((name, rest)) = sig.split_once('(') else {
            continue;
        };
        let params: Vec<&str> = rest
            .split_once(')')
            .map_or("", |(p, _)| p)
            .split(", ")
            .map(|p| p.trim_start_matches("_: "))
            .collect();
        let receiver = params[0].trim_start_matches("&mut ");
        if receiver != "Text"
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || TEXT_ONLY.contains(&name)
        {
            continue;
        }
        let mut ints = 0;
        let Some(args) = params[1..]
            .iter()
            .map(|ty| sample_argument(ty, &mut ints))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let call = format!("{name}({})", args.join(", "));
        let on_text = s.run_cell(&format!("let r = context.{call}; print(to_json(r));"));
        let on_string = s.run_cell(&format!(
            "let s = {literal}; let r = s.{call}; print(to_json(r));"
        ));
        match (&on_text.error, &on_string.error) {
            (None, None) => assert_eq!(on_text.output, on_string.output, "{call}"),
            (Some(_), Some(_)) => {}
            _ => panic!(
                "{call} differs on a Text and a string:\nText: {}\nstring: {}",
                on_text.render(),
                on_string.render()
            ),
        }
        checked.push(call);
    }
    assert!(checked.len() >= 30, "only checked {checked:?}");
}

/// Registers `wait(ms)`, which sleeps like a sub-model call, holding a pause
/// of the cell's clock, and `stall(ms)`, the same sleep without the pause.
/// Both check the clock as they go, as real waits do.
fn with_waits(limits: Limits) -> Session {
    SessionBuilder::new()
        .limits(limits)
        .extend(|engine, shared| {
            fn sleep_checking(
                shared: &rlm::dsl::Shared,
                ms: i64,
            ) -> Result<(), Box<rhai::EvalAltResult>> {
                let until = std::time::Instant::now() + Duration::from_millis(ms as u64);
                while std::time::Instant::now() < until {
                    if shared.clock.stop_reason().is_some() {
                        return Err(rhai::EvalAltResult::ErrorTerminated(
                            "stopped".into(),
                            rhai::Position::NONE,
                        )
                        .into());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(())
            }
            let waiting = Arc::clone(shared);
            engine.register_fn("wait", move |ms: i64| {
                let _paused = waiting.clock.pause();
                sleep_checking(&waiting, ms)
            });
            let stalling = Arc::clone(shared);
            engine.register_fn("stall", move |ms: i64| sleep_checking(&stalling, ms));
        })
        .build(&Context::from_string("log", LOG))
}

#[test]
fn time_waiting_inside_a_pause_does_not_count_against_the_cell() {
    let limit = Duration::from_millis(150);
    let mut s = with_waits(Limits {
        cell_timeout: limit,
        ..Default::default()
    });
    let out = s.run_cell("wait(150);\nwait(150);\nwait(150);\nprint(\"done\");");
    assert_eq!(out.error, None, "{}", out.render());
    assert_eq!(out.output, "done\n");
    assert!(out.duration >= 3 * limit);

    let out = s.run_cell("stall(450);\nprint(\"done\");");
    let err = out.error.expect("an unpaused wait is stopped");
    assert!(err.contains("time limit of 0.15s"), "{err}");
    assert_eq!(out.output, "");
    assert!(
        out.duration < 10 * limit,
        "stopped after {:?}",
        out.duration
    );

    // Script work still counts when it runs between paused waits.
    let err = s
        .run_cell("wait(100);\nlet i = 0;\nloop { i += 1; }")
        .error
        .expect("the loop is stopped");
    assert!(err.contains("time limit"), "{err}");
}
