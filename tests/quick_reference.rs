//! Runs every code form of `prompts/quick_reference.md`, the reference the
//! root model reads every turn: what it offers must work as written.
//!
//! * Every backticked span of the file is a form. A form runs as written in
//!   a fresh session over [`FILES`], after [`SETUP`] has defined the
//!   placeholder names the reference uses (`t`, `s`, `a`, `m`, `arr`, `re`,
//!   `n`, ...), and must not raise.
//! * A form that cannot run as written, because its placeholders clash
//!   (`t.slice(a, b)`, where `a` is also the array of `a.append(x)`), it is a
//!   bare name (`trim`), a result shape, an operator or a regex fragment, or
//!   it is what the reference warns against (`a[1:3]`), is in [`FORMS`]: a
//!   reviewed table of what runs in its place. Most entries also check the
//!   claim the reference makes about the form, with `check(ok, what)`.
//! * Nothing is skipped: a new form that neither runs as written nor has an
//!   entry fails the test, and so does an entry whose form the reference no
//!   longer has.
//! * `rlm_query` and `rlm_batch` start child runs, so they need a root model:
//!   forms that call them run through the driver ([`Rlm`]), with a loopback
//!   root model that sends the forms as code blocks and children that submit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use rlm::driver::{Rlm, RunConfig, RunStatus};
use rlm::dsl::{CellOutcome, LlmAccess, Session, SessionBuilder};
use rlm::llm::{Budgets, Ledger, LlmClient, LlmConfig, ModelSpec, PriceTable, RetryPolicy};
use rlm::testing::{MockServer, Reply};
use rlm::{Context, ContextBuilder};

/// The context every form runs over: two documents, `t` is the first.
const FILES: &[(&str, &str)] = &[
    (
        "app.log",
        "2024-03-01 10:00:00 INFO start\n\
         2024-03-01 10:00:05 ERROR disk full on /dev/sda1\n\
         2024-03-01 10:00:09 INFO retry 42\n\
         2024-03-01 10:01:00 ERROR timeout after 30s\n",
    ),
    ("notes.txt", "the cat sat\non the mat\n"),
];

/// Defines the reference's placeholder names, and `check`, which raises
/// when a claim of the reference does not hold.
const SETUP: &str = r#"
let t = documents[0];
let s = "ERROR";
let re = `\d+`;
let a = [3, 1, 2, 5, 4];
let arr = ["x", "y", "x"];
let m = #{x: 1, y: 2};
let n = 2; let i = 1; let j = 3; let k = "x"; let x = "7";
let from = 5; let limit = 2; let size = 40; let overlap = 8; let sep = ", ";
let value = 42; let seconds = 0;
let f = |x| x + 1;
let prompt = "Say ok."; let prompts = ["a", "b"]; let opts = #{max_tokens: 10};
let question = "Which errors?"; let text = documents[1]; let texts = documents;
fn check(ok, what) { if !ok { throw `the quick reference is wrong: ${what}`; } }
"#;

/// What runs for a form: the form itself, or what its entry in [`FORMS`] says.
#[derive(Clone, Copy)]
enum Form<'a> {
    /// Must run without an error.
    Run(&'a str),
    /// Must fail with an error containing the second string: the reference
    /// says this is refused, or shows it as what not to write.
    Refused(&'a str, &'a str),
    /// The form lists the keys of the maps this code returns (an array of
    /// maps, or one map); they must be exactly those keys.
    Shape(&'a str),
}

use Form::{Refused, Run, Shape};

/// Every form of the reference that does not run as written, and what runs
/// instead. Keyed by the exact text between the backticks. One line per
/// entry, so the table reads as the reviewed list it is.
#[rustfmt::skip]
const FORMS: &[(&str, Form<'static>)] = &[
    // The globals and the context's layout.
    ("fn", Run(r#"fn sizes() { [context.len(), documents.len(), query.len()] } check(sizes()[1] == 2, "the globals are visible inside fn")"#)),
    ("==> name <==", Run(r#"check(context.line(1) == `==> ${documents[0].name} <==` && !documents[0].contains("==>"), "each file starts with a header that documents leave out")"#)),
    ("len()", Run(r#"check("é".len() == 2, "len() counts bytes, even for strings")"#)),
    ("t[a..b]", Run(r#"check(t[0..4] == "2024" && t[0..4] == t.slice(0, 4), "t[a..b] is t.slice(a, b)")"#)),
    ("t.slice(a, b)", Run(r#"check(t.slice(11, 19) == "10:00:00" && t.slice(-4, -1) == "30s", "slice takes byte offsets, negative from the end")"#)),
    ("t.slice(a)", Run(r#"check(t.slice(-4) == "30s\n", "slice(a) runs to the end")"#)),
    ("t.lines(a, b)", Run(r#"check(t.lines(2, 3).line_count() == 2 && t.lines(2, 3).starts_with(t.line(2).to_string()), "lines(a, b) is lines a..=b")"#)),
    ("`${t}`", Run(r#"check(`${t}` == t.to_string() && `${documents[1]}` == "the cat sat\non the mat\n", "interpolating a Text gives its contents")"#)),
    // Search.
    ("^", Run(r#"check(t.count_matches(`^2024`) == 4, "^ matches at every line start")"#)),
    ("$", Run(r#"check(t.count_matches(`s$`) == 1, "$ matches at every line end")"#)),
    ("\\b", Run(r#"check(documents[1].count_matches(`\bthe\b`) == 2 && documents[1].count_matches(`\bat\b`) == 0, "a backslash-b is a word boundary")"#)),
    ("[#{text, start, end, line, groups}]", Shape("t.matches(re)")),
    ("[#{line, start, text}]", Shape("t.grep(re)")),
    ("text", Run(r#"check(t.grep("disk")[0].text == t.line(2), "a grep hit's text is its line without the newline")"#)),
    ("start", Run(r#"check(t.grep("disk")[0].start == t.find("2024-03-01 10:00:05"), "a grep hit's start is its line's byte offset")"#)),
    ("before", Run(r#"check(t.grep("disk", #{before: 1})[0].context == `${t.line(1)}\n${t.line(2)}\n`, "context holds the lines before and the hit, newlines included")"#)),
    ("after", Run(r#"check(t.grep("disk", #{after: 1})[0].context == `${t.line(2)}\n${t.line(3)}\n`, "context holds the hit and the lines after it")"#)),
    ("context: n", Run(r#"check(t.grep("disk", #{context: 1})[0].context == t.lines(1, 3) && t.grep("start", #{context: 5})[0].context == t.to_string() && !t.grep("disk")[0].contains("context"), "context: n sets before and after, stops at the edges, and is absent without options")"#)),
    (r#"t.find_any(["a", "b", ...])"#, Run(r#"check(t.find_any(["ERROR", "INFO"]).len() == 4, "find_any finds every literal")"#)),
    ("[#{needle, text, start, end, line}]", Shape(r#"t.find_any(["ERROR", "INFO"])"#)),
    // Chunking: `k` is also a map key in the setup.
    ("t.parts(k)", Run(r#"check(t.parts(2).len() == 2, "parts(k) gives k parts")"#)),
    // Arrays.
    ("a[i..j]", Run(r#"check(to_json(a[1..3]) == to_json([1, 2]) && to_json(a[-2..99]) == to_json([5, 4]) && a[3..1].len() == 0, "arrays cut like Text: negative from the end, out of range clamps")"#)),
    ("a.sort(|x, y| x - y)", Run(r#"a.sort(|x, y| x - y); check(a[0] == 1 && a[4] == 5, "sort with a comparator sorts in place")"#)),
    ("a.order(|x, y| x - y)", Run(r#"let b = a.order(|x, y| x - y); check(b[0] == 1 && a[0] == 3, "order returns a sorted copy")"#)),
    ("a.dedup(|x, y| x == y)", Run(r#"let d = [1, 1, 2, 1]; d.dedup(|x, y| x == y); check(to_json(d) == to_json([1, 2, 1]), "dedup drops consecutive repeats")"#)),
    ("a.extract(start, len)", Run(r#"check(to_json(a.extract(1, 2)) == to_json([1, 2]), "extract takes a start and a length")"#)),
    // Strings: bare names, each with its claim about the receiver.
    ("trim", Run(r#"let r = "  x "; let out = r.trim(); check(r == "x" && out == "x", "trim changes in place and returns")"#)),
    ("to_upper", Run(r#"let r = "ab"; let out = r.to_upper(); check(r == "AB" && out == "AB", "to_upper changes in place and returns")"#)),
    ("to_lower", Run(r#"let r = "AB"; let out = r.to_lower(); check(r == "ab" && out == "ab", "to_lower changes in place and returns")"#)),
    ("replace(a, b)", Run(r#"let r = "a-b"; let out = r.replace("-", "+"); check(r == "a+b" && out == "a+b", "replace changes in place and returns")"#)),
    ("strip", Run(r#"let r = " x "; check(r.strip() == "x" && r == " x ", "strip leaves the receiver")"#)),
    ("lstrip", Run(r#"let r = " x "; check(r.lstrip() == "x " && r == " x ", "lstrip leaves the receiver")"#)),
    ("rstrip", Run(r#"let r = " x "; check(r.rstrip() == " x" && r == " x ", "rstrip leaves the receiver")"#)),
    ("lower", Run(r#"let r = "AB"; check(r.lower() == "ab" && r == "AB", "lower leaves the receiver")"#)),
    ("upper", Run(r#"let r = "ab"; check(r.upper() == "AB" && r == "ab", "upper leaves the receiver")"#)),
    ("split(sep)", Run(r#"check("a, b".split(sep).len() == 2 && t.line(1).split(" ").len() == 4, "split(sep) splits strings and views")"#)),
    ("split()", Run(r#"check("a b\n c".split().len() == 3, "split() splits on whitespace")"#)),
    ("starts_with", Run(r#"check(t.starts_with("2024") && s.starts_with("ERR"), "starts_with")"#)),
    ("startswith", Run(r#"check(t.startswith("2024"), "startswith")"#)),
    ("ends_with", Run(r#"check(t.ends_with("30s\n") && s.ends_with("OR"), "ends_with")"#)),
    ("endswith", Run(r#"check(s.endswith("OR"), "endswith")"#)),
    ("is_empty", Run(r#"check("".is_empty() && !t.is_empty(), "is_empty")"#)),
    ("parse_int", Run(r#"check("42".parse_int() == 42, "parse_int")"#)),
    ("parse_float", Run(r#"check("2.5".parse_float() == 2.5, "parse_float")"#)),
    ("+", Run(r#"check(t.head(4) + "!" == "2024!" && "!" + t.head(4) == "!2024", "+ joins Text and strings")"#)),
    ("==", Run(r#"check(t.head(4) == "2024" && "2024" == t.head(4), "== compares Text and strings")"#)),
    ("!=", Run(r#"check(t.head(4) != "2025" && "2025" != t.head(4), "!= compares Text and strings")"#)),
    ("<", Run(r#"check(t.head(4) < "2025" && "2023" < t.head(4), "< compares Text and strings")"#)),
    (">", Run(r#"check(t.head(4) > "2023" && "2025" > t.head(4), "> compares Text and strings")"#)),
    // Utilities.
    ("FINAL", Run("FINAL(1)")),
    ("SUBMIT", Run("SUBMIT(1)")),
    ("parse_json(s)", Run(r#"check(parse_json("[1, 2]").len() == 2, "parse_json")"#)),
    ("#{item: n}", Run(r#"check(counts(arr).x == 2 && counts(arr).y == 1, "counts gives #{item: n}")"#)),
    ("top(map, k)", Run(r#"check(to_json(top(counts(arr), 1)) == to_json([["x", 2]]), "top(map, k) gives the k largest")"#)),
    ("[[key, n], ...]", Run(r#"check(to_json(top(#{a: 1, b: 3}, 2)) == to_json([["b", 3], ["a", 1]]), "top gives [[key, n], ...], largest first")"#)),
    ("sum(arr)", Run(r#"check(sum(a) == 15 && sum([0.5, 1]) == 1.5, "sum")"#)),
    ("[[k, v], ...]", Run(r#"check(to_json(m.items()) == to_json([["x", 1], ["y", 2]]), "items gives [[k, v], ...]")"#)),
    ("m.get(k, default)", Run(r#"check(m.get("z", 0) == 0 && m.get("x", 0) == 1, "get with a default")"#)),
    ("push", Run(r#"a.push(6); check(a.len() == 6, "push appends")"#)),
    // Sub-models.
    ("llm_query(prompt, #{model, system, max_tokens, temperature})", Run(r#"llm_query(prompt, #{model: "sub-model", system: "Be brief.", max_tokens: 20, temperature: 0.0})"#)),
    (r#""ERROR: ...""#, Run(r#"let answers = llm_batch(["ok?", "FAIL"]); check(answers[0] == "ok" && answers[1].starts_with("ERROR: "), "a failed call gives ERROR: ...")"#)),
    (r#"llm_query(prompt, #{schema: #{type: "object", properties: #{n: #{type: "integer"}}, required: ["n"]}})"#, Run(r#"let r = llm_query("Count: JSON", #{schema: #{type: "object", properties: #{n: #{type: "integer"}}, required: ["n"]}}); check(r.n == 1, "a typed call gives the parsed map")"#)),
    ("#{json: true}", Run(r#"check(type_of(llm_query("Count: JSON", #{json: true})) == "map", "json: true gives parsed JSON")"#)),
    ("#{error, raw}", Run(r#"let r = llm_query("ok?", #{schema: #{type: "integer"}}); check(r.raw == "ok" && r.error.contains("after one repair"), "a failed typed call gives #{error, raw}")"#)),
    (r#""error" in r"#, Run(r#"let rs = llm_batch(["Count: JSON", "FAIL"], #{json: true}); check(!("error" in rs[0]) && "error" in rs[1], "\"error\" in r tells a failure")"#)),
    ("#{calls, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, errors, retries, cache_hits, cost_usd, by_model}", Shape(r#"llm_query("Say ok."); usage()"#)),
    // Rhai is not Python.
    ("a / b", Run(r#"check(7 / 2 == 3, "integer division")"#)),
    ("&&", Run(r#"check(true && !false, "&&")"#)),
    ("||", Run(r#"check(false || true, "||")"#)),
    ("!", Run(r#"check(!false, "!")"#)),
    ("#{key: value}", Run(r#"check(#{key: "value"}.key == "value", "map literals")"#)),
    ("`... ${expr} ...`", Run(r#"check(`... ${n + 1} ...` == "... 3 ...", "${expr} interpolates")"#)),
    ("\\n", Run(r#"check(`a\nb` == "a\nb", "\n in backticks is a newline")"#)),
    ("\\t", Run(r#"check(`a\tb` == "a\tb", "\t in backticks is a tab")"#)),
    ("\\r", Run(r#"check(`a\rb` == "a\rb", "\r in backticks is a carriage return")"#)),
    ("`\\d+\\s`", Run(r#"check(t.count_matches(`\d+\s`) > 0 && `\d+\s`.len() == 5, "other backslashes stay in backticks")"#)),
    ("`\\bthe\\b`", Run(r#"check(documents[1].count_matches(`\bthe\b`) == 2, "regexes in backticks work unchanged")"#)),
    ("a[1:3]", Refused("a[1:3]", "x[a..b]")),
    ("fn submit(x) {}", Refused("fn submit(x) {}", "cannot be redefined")),
    ("arr.map(|x| ...)", Run(r#"check(arr.map(|x| x + "!")[0] == "x!", "map")"#)),
    ("arr.filter(|x| ...)", Run(r#"check(arr.filter(|x| x == "x").len() == 2, "filter")"#)),
    ("fn name(a, b) { ... }", Run(r#"
        fn name(a, b) { a + b + context.len() - context.len() }
        let outer = 1;
        fn peek() { outer }
        let seen = true;
        try { peek(); } catch (e) { seen = false; }
        check(name(1, 2) == 3 && !seen, "fn sees its arguments and the globals, not outer variables")"#)),
    ("for (k, v) in map", Refused("for (k, v) in m { }", "iterable")),
    ("sort", Run(r#"check(type_of(a.sort()) == "()" && a[0] == 1, "sort sorts in place and returns ()")"#)),
    ("reverse", Run(r#"check(type_of(a.reverse()) == "()" && a[0] == 4, "reverse reverses in place and returns ()")"#)),
    ("pop", Run(r#"check(a.pop() == 4 && a.len() == 4, "pop removes and returns the last item")"#)),
    ("let b = a.sort();", Run(r#"let b = a.sort(); check(type_of(b) == "()", "let b = a.sort() leaves b as ()")"#)),
    ("b", Run(r#"let b = a.sort(); check(type_of(b) == "()", "let b = a.sort() leaves b as ()")"#)),
    ("print", Run(r#"print("one value")"#)),
];

fn quick_reference() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts/quick_reference.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The backticked spans of `text`, with their 1-based line, in order, each
/// once: CommonMark code spans, so ``` `` `\d+` `` ``` is `` `\d+` ``.
fn spans(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(open) = rest.find('`') {
            let after = &rest[open..];
            let ticks = after.len() - after.trim_start_matches('`').len();
            let body = &after[ticks..];
            let fence = "`".repeat(ticks);
            // The closing run must be exactly as long as the opening one.
            let close = body.match_indices(&fence).map(|(j, _)| j).find(|&j| {
                let before = body[..j].ends_with('`');
                let longer = body[j + ticks..].starts_with('`');
                !before && !longer
            });
            let Some(close) = close else {
                panic!(
                    "prompts/quick_reference.md:{}: a backtick is never closed: {after}",
                    i + 1
                )
            };
            let mut code = &body[..close];
            if code.len() > 1 && code.starts_with(' ') && code.ends_with(' ') {
                code = &code[1..code.len() - 1];
            }
            if !out.iter().any(|(_, c)| c == code) {
                out.push((i + 1, code.to_string()));
            }
            rest = &body[close + ticks..];
        }
    }
    out
}

/// What runs for a span: its table entry, or the span itself.
fn form_of(span: &str) -> Form<'_> {
    FORMS
        .iter()
        .find(|(s, _)| *s == span)
        .map_or(Run(span), |&(_, form)| form)
}

impl<'a> Form<'a> {
    fn code(self) -> &'a str {
        match self {
            Run(c) | Refused(c, _) | Shape(c) => c,
        }
    }
}

/// Forms that start child runs, which only the driver has.
fn needs_root(code: &str) -> bool {
    code.contains("rlm_query") || code.contains("rlm_batch")
}

/// The context of [`FILES`], written to a directory.
struct Fixture {
    _dir: tempfile::TempDir,
    context: Context,
    sub_model: MockServer,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, body) in FILES {
        std::fs::write(dir.path().join(name), body).expect("write a context file");
    }
    let context = ContextBuilder::new()
        .snapshot(true)
        .open(&[dir.path()])
        .expect("open the context");
    Fixture {
        _dir: dir,
        context,
        sub_model: MockServer::start(sub_model),
    }
}

/// Sub-calls: `ok`, except prompts containing FAIL, refused with HTTP 400,
/// and prompts starting `Count:`, answered `{"n": 1}`.
fn sub_model(req: &rlm::testing::Request) -> Reply {
    if req.prompt().contains("FAIL") {
        Reply::error(400, "refused by policy")
    } else if req.prompt().starts_with("Count:") {
        Reply::openai_text(r#"{"n": 1}"#, 3, 1)
    } else {
        Reply::openai_text("ok", 3, 1)
    }
}

fn llm_config(server: &MockServer) -> LlmConfig {
    LlmConfig {
        openai_base_url: server.openai_url(),
        retry: RetryPolicy {
            max_retries: 0,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        },
        ..LlmConfig::default()
    }
}

/// A session after [`SETUP`], with the loopback sub-model.
fn session(fixture: &Fixture, runtime: &tokio::runtime::Runtime) -> Session {
    let ledger = Arc::new(Ledger::new(PriceTable::default(), Budgets::default()));
    let access = LlmAccess {
        client: LlmClient::new(llm_config(&fixture.sub_model), ledger).expect("llm client"),
        runtime: runtime.handle().clone(),
        sub_model: Some(ModelSpec::parse("sub-model")),
        context_window: Some(1000),
        depth: 0,
        run_id: None,
        scope: None,
    };
    let mut session = SessionBuilder::new()
        .query("Does the quick reference run?")
        .llm(access)
        .build(&fixture.context);
    let setup = session.run_cell(SETUP);
    assert!(setup.error.is_none(), "SETUP fails: {:?}", setup.error);
    session
}

/// What is wrong with a form's outcome, if anything.
fn problem(form: Form, got: &CellOutcome) -> Option<String> {
    match (form, &got.error) {
        (Run(_) | Shape(_), None) => None,
        (Run(_) | Shape(_), Some(e)) => Some(format!("it fails:\n{e}")),
        (Refused(..), None) => Some("the reference says it is refused, but it runs".into()),
        (Refused(_, want), Some(e)) => (!e.contains(want))
            .then(|| format!("it fails, but the error does not say {want:?}:\n{e}")),
    }
}

/// The keys a span like `[#{text, start}]` lists.
fn listed_keys(span: &str) -> BTreeSet<String> {
    span.trim_matches(|c| "[]#{}".contains(c))
        .split(',')
        .map(|k| k.trim().to_string())
        .collect()
}

/// The keys of the maps `value` holds (its first item if it is an array).
fn keys_of(value: &Value) -> BTreeSet<String> {
    let map = match value {
        Value::Array(items) => items.first().unwrap_or(&Value::Null),
        other => other,
    };
    map.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Runs one form in a fresh session; `None` when it does what the table says.
fn check_in_session(fixture: &Fixture, span: &str, form: Form) -> Option<String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut session = session(fixture, &runtime);
    let code = match form {
        Shape(c) => format!("let shape = {{ {c} }}; print(to_json(shape));"),
        other => other.code().to_string(),
    };
    let got = session.run_cell(&code);
    if let Some(p) = problem(form, &got) {
        return Some(p);
    }
    if let Shape(_) = form {
        let value: Value = serde_json::from_str(got.output.trim())
            .unwrap_or_else(|e| panic!("{span}: to_json printed no JSON ({e}): {}", got.output));
        let (want, have) = (listed_keys(span), keys_of(&value));
        if want != have {
            return Some(format!(
                "the reference lists the keys {want:?}, the result has {have:?}"
            ));
        }
    }
    None
}

/// Runs the forms that start child runs through the driver, each as one
/// code block of the root model's first reply after a [`SETUP`] block;
/// children submit at once. Returns each form's error, in order.
fn check_with_root(fixture: &Fixture, forms: &[&str]) -> Vec<Option<String>> {
    const TOP: &str = "Run the quick reference's recursion forms.";
    let blocks: String = std::iter::once(SETUP)
        .chain(forms.iter().copied())
        .map(|code| format!("```rhai\n{code}\n```\n"))
        .collect();
    let server = MockServer::start(move |req| {
        if !req.is_root_turn() {
            return sub_model(req);
        }
        let first = req.first_user_message();
        let reply = if !first.starts_with(&format!("Question: {TOP}")) {
            "```rhai\nsubmit(\"child answer\");\n```".to_string()
        } else if req.message_count() == 1 {
            blocks.clone()
        } else {
            "```rhai\nsubmit(\"done\");\n```".to_string()
        };
        Reply::openai_text(&reply, 10, 10)
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("trace.jsonl");
    let rlm = Rlm::builder()
        .llm_config(llm_config(&server))
        .config(RunConfig {
            model: ModelSpec::parse("root-model"),
            sub_model: Some(ModelSpec::parse("sub-model")),
            max_iterations: 3,
            ..RunConfig::default()
        })
        .trace(&trace)
        .build()
        .expect("build the driver");
    let result = rlm.run(TOP, &fixture.context);
    assert_eq!(result.status, RunStatus::Submitted, "{:?}", result.error);
    let events = read_events(&trace);
    let children = events
        .iter()
        .filter(|e| e["event"] == "child_end" && e["answer"] == "child answer")
        .count();
    assert!(
        children > 0,
        "no child run answered: the forms did not recurse"
    );
    let cells: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "cell" && e["run"] == "0")
        .collect();
    assert_eq!(
        cells.len(),
        forms.len() + 2,
        "one cell per block, then submit"
    );
    assert!(cells[0]["error"].is_null(), "SETUP fails: {}", cells[0]);
    cells[1..=forms.len()]
        .iter()
        .map(|c| c["error"].as_str().map(str::to_string))
        .collect()
}

fn read_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read the trace")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a trace line is JSON"))
        .collect()
}

#[test]
fn every_form_in_the_quick_reference_runs() {
    let fixture = fixture();
    let spans = spans(&quick_reference());
    let mut problems = Vec::new();
    let mut with_root = Vec::new();
    for (line, span) in &spans {
        let form = form_of(span);
        let at = format!("prompts/quick_reference.md:{line}: `{span}`");
        if needs_root(form.code()) {
            assert!(
                matches!(form, Run(_)),
                "{at}: forms that need a root model can only be Run"
            );
            with_root.push((at, form.code()));
            continue;
        }
        if let Some(p) = check_in_session(&fixture, span, form) {
            let ran = form.code();
            problems.push(format!("{at}\n  ran: {ran}\n  {p}"));
        }
    }
    let codes: Vec<&str> = with_root.iter().map(|(_, c)| *c).collect();
    assert!(
        !codes.is_empty(),
        "the quick reference has no rlm_query/rlm_batch forms"
    );
    for ((at, code), error) in with_root.iter().zip(check_with_root(&fixture, &codes)) {
        if let Some(e) = error {
            problems.push(format!(
                "{at}\n  ran (with a root model): {code}\n  it fails:\n{e}"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} forms of the quick reference do not run as the reference says \
         (an entry in FORMS, tests/quick_reference.rs, says what runs in place of a form):\n\n{}",
        problems.len(),
        spans.len(),
        problems.join("\n\n")
    );
}

#[test]
fn every_entry_of_the_table_is_a_form_the_quick_reference_has() {
    let spans: BTreeSet<String> = spans(&quick_reference())
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let mut seen = BTreeSet::new();
    for (span, _) in FORMS {
        assert!(seen.insert(*span), "FORMS has `{span}` twice");
        assert!(
            spans.contains(*span),
            "FORMS has `{span}`, which prompts/quick_reference.md no longer shows: remove the entry"
        );
    }
}

#[test]
fn code_spans_are_read_the_way_markdown_reads_them() {
    let text = "a `x` and `` `\\d+` `` then ``a`b`` and `y`\nnext `x` `z`";
    let got: Vec<(usize, String)> = spans(text);
    let want = [(1, "x"), (1, "`\\d+`"), (1, "a`b"), (1, "y"), (2, "z")];
    assert_eq!(
        got,
        want.map(|(l, s)| (l, s.to_string())).to_vec(),
        "spans, in order, each once"
    );
}
