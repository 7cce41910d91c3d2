//! A corpus of whole sessions written the way models write Rhai, replayed
//! through `rlm run`.
//!
//! Each file in `tests/model_sessions/` holds sessions in a plain format
//! (its `README.md` describes it): a context, a question, rules for the
//! sub-model, and the root model's replies, each followed by what every
//! ```rhai block in it must print. A loopback server plays the root model,
//! answering each turn with the next reply, and the sub-model, answering by
//! the rules. The binary runs the real loop (fences, several blocks in one
//! reply, errors sent back to the model, `submit`), and the `--trace` file
//! says what each cell printed.
//!
//! The expected outputs were worked out from the system prompt, the quick
//! reference and Rhai's documented behaviour, not copied from a run: a
//! session that fails is either a wrong expectation or a bug.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use rlm::testing::{MockServer, Reply};

mod common;

/// The themes a session can be labelled with, and what each covers.
const THEMES: &[(&str, &str)] = &[
    ("redeclare", "a variable declared again in a later cell"),
    ("shadow", "closure parameters shadowing outer names"),
    ("nested_prompts", "prompts built in nested loops with `${}`"),
    ("answers_json", "sub-model answers as JSON"),
    ("answers_lines", "sub-model answers as `id: label` lines"),
    ("answers_numbered", "sub-model answers as numbered lists"),
    ("answers_fenced", "sub-model answers in fences or prose"),
    ("slicing", "a[i..j], slice, head, tail, negatives"),
    ("counting", "counting into maps, sorting by count"),
    ("topk", "the k largest or smallest"),
    ("sets", "unique, membership, intersection, difference"),
    ("submit_nested", "submit inside a loop, an if or a fn"),
    ("multi_block", "several rhai blocks in one reply"),
    ("search", "grep, matches, count_matches, find_any"),
    ("chunks", "chunks, chunk_lines, parts, split_on"),
    ("batch", "llm_batch"),
    ("error_fix", "a failed cell, then a corrected one"),
    ("show_vars", "show_vars()"),
    ("string_build", "strings built with += and +"),
    ("parse_answers", "parse_int / parse_json of answers"),
    ("map_of_arrays", "maps whose values are arrays"),
    ("comparators", "sort, order, dedup with a comparator"),
    ("text_display", "a Text printed or interpolated"),
    ("escapes", "\\n, \\t in backticks; regexes in backticks"),
    ("fences", "untagged, longer, indented, other fences"),
    ("repl_value", "a cell's last value shown as => value"),
    ("documents", "several documents"),
    ("functions", "fn definitions reused across cells"),
];

/// At least this many sessions in all, and per theme.
const MIN_SESSIONS: usize = 150;
const MIN_PER_THEME: usize = 5;

/// What one ```rhai block must do.
#[derive(Debug, Clone)]
enum Expect {
    /// Runs without error and prints this.
    Output(String),
    /// Prints this, then fails with an error containing `contains`.
    Error { contains: String, output: String },
}

/// A root reply and what each of its blocks must do.
#[derive(Debug, Clone, Default)]
struct Turn {
    reply: String,
    cells: Vec<Expect>,
}

#[derive(Debug, Clone)]
enum ContextSpec {
    /// One file, `context.txt`.
    Inline(String),
    /// Several files in a directory, in name order.
    Files(Vec<(String, String)>),
}

#[derive(Debug, Clone)]
struct Session {
    name: String,
    /// `file:line` where the session starts.
    origin: String,
    themes: Vec<String>,
    context: Option<ContextSpec>,
    query: String,
    /// (substring of the prompt, answer), first match wins.
    subs: Vec<(String, String)>,
    turns: Vec<Turn>,
    answer: Option<Value>,
}

impl Session {
    fn new(name: &str, origin: String) -> Session {
        Session {
            name: name.to_string(),
            origin,
            themes: Vec::new(),
            context: None,
            query: String::new(),
            subs: Vec::new(),
            turns: Vec::new(),
            answer: None,
        }
    }
}

/// Where the lines of a multi-line directive go.
enum Target {
    None,
    Context,
    File(String),
    Sub(String),
    Reply,
    Output,
    Error(String),
    AnswerText,
}

/// Every session of every file in `dir`.
fn load_corpus(dir: &Path) -> Result<Vec<Session>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sessions"))
        .collect();
    files.sort();
    let mut sessions = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let name = f
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        sessions.extend(parse_file(&name, &text)?);
    }
    Ok(sessions)
}

/// Parses one file of sessions. Directives are lines starting with `@`;
/// the lines after a multi-line directive, up to the next directive, are
/// its text.
fn parse_file(file: &str, text: &str) -> Result<Vec<Session>, String> {
    let mut sessions: Vec<Session> = Vec::new();
    let mut target = Target::None;
    let mut body: Vec<&str> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("{file}:{}", n + 1);
        let Some(directive) = line.strip_prefix('@') else {
            if matches!(target, Target::None) && !line.trim().is_empty() && !line.starts_with('#') {
                return Err(format!("{at}: text outside any directive: {line}"));
            }
            body.push(line);
            continue;
        };
        if let Some(s) = sessions.last_mut() {
            flush(s, std::mem::replace(&mut target, Target::None), &body, &at)?;
        }
        body.clear();
        let (word, rest) = directive.split_once(' ').unwrap_or((directive, ""));
        let rest = rest.trim();
        if word == "session" {
            sessions.push(Session::new(rest, at));
            continue;
        }
        let Some(s) = sessions.last_mut() else {
            return Err(format!("{at}: @{word} before any @session"));
        };
        target = match word {
            "themes" => {
                s.themes.extend(
                    rest.split(',')
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty()),
                );
                Target::None
            }
            "query" => {
                s.query = rest.to_string();
                Target::None
            }
            "context" if rest.is_empty() => Target::Context,
            "context" => {
                s.context = Some(ContextSpec::Inline(
                    generate(rest).map_err(|e| format!("{at}: {e}"))?,
                ));
                Target::None
            }
            "file" => Target::File(rest.to_string()),
            "sub" => Target::Sub(rest.to_string()),
            "reply" => {
                s.turns.push(Turn::default());
                Target::Reply
            }
            "out" => Target::Output,
            "error" => Target::Error(rest.to_string()),
            "answer" if rest.is_empty() => Target::AnswerText,
            "answer" => {
                s.answer = Some(
                    serde_json::from_str(rest)
                        .map_err(|e| format!("{at}: @answer takes JSON ({e}): {rest}"))?,
                );
                Target::None
            }
            other => return Err(format!("{at}: unknown directive @{other}")),
        };
    }
    if let Some(s) = sessions.last_mut() {
        flush(s, target, &body, &format!("{file}:end"))?;
    }
    Ok(sessions)
}

/// The text of a directive: its lines, without trailing blank lines.
fn joined(body: &[&str]) -> String {
    body.join("\n").trim_end().to_string()
}

fn flush(s: &mut Session, target: Target, body: &[&str], at: &str) -> Result<(), String> {
    let text = joined(body);
    let expect = |s: &mut Session, e: Expect| -> Result<(), String> {
        s.turns
            .last_mut()
            .map(|t| t.cells.push(e))
            .ok_or_else(|| format!("{at}: an expected output before any @reply"))
    };
    match target {
        Target::None => Ok(()),
        Target::Context => {
            s.context = Some(ContextSpec::Inline(format!("{text}\n")));
            Ok(())
        }
        Target::File(name) => {
            let mut files = match s.context.take() {
                Some(ContextSpec::Files(f)) => f,
                _ => Vec::new(),
            };
            files.push((name, format!("{text}\n")));
            s.context = Some(ContextSpec::Files(files));
            Ok(())
        }
        Target::Sub(pattern) => {
            s.subs.push((pattern, text));
            Ok(())
        }
        Target::Reply => {
            if let Some(t) = s.turns.last_mut() {
                t.reply = text;
            }
            Ok(())
        }
        Target::Output => expect(s, Expect::Output(text)),
        Target::Error(contains) => expect(
            s,
            Expect::Error {
                contains,
                output: text,
            },
        ),
        Target::AnswerText => {
            s.answer = Some(Value::String(text));
            Ok(())
        }
    }
}

/// A generated context: `log N` is N numbered log lines.
///
/// Line `i` (from 1) is `[iiii] LEVEL svc: message`, where LEVEL is ERROR
/// when `i % 7 == 0`, else WARN when `i % 5 == 0`, else INFO; `svc` is
/// `api`, `db`, `auth`, `cache` by `i % 4`; and the message is
/// `timeout after {i%5+1}s user=u{i%6}` (ERROR), `slow query {i*3%100}ms`
/// (WARN) or `request ok user=u{i%6}` (INFO).
fn generate(spec: &str) -> Result<String, String> {
    let mut words = spec.split_whitespace();
    let (Some("log"), Some(n), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!(
            "unknown generated context `{spec}` (known: `log N`)"
        ));
    };
    let n: usize = n
        .parse()
        .map_err(|_| format!("`log N` takes a number, not {n}"))?;
    let mut out = String::new();
    for i in 1..=n {
        let svc = ["api", "db", "auth", "cache"][i % 4];
        let (level, message) = if i % 7 == 0 {
            (
                "ERROR",
                format!("timeout after {}s user=u{}", i % 5 + 1, i % 6),
            )
        } else if i % 5 == 0 {
            ("WARN", format!("slow query {}ms", i * 3 % 100))
        } else {
            ("INFO", format!("request ok user=u{}", i % 6))
        };
        out.push_str(&format!("[{i:04}] {level} {svc}: {message}\n"));
    }
    Ok(out)
}

/// Answers for one session: its root replies by turn, sub-calls by rule.
/// Sub-call prompts no rule matched are kept, to fail the session.
fn server(session: &Session, unmatched: Arc<Mutex<Vec<String>>>) -> MockServer {
    let replies: Vec<String> = session.turns.iter().map(|t| t.reply.clone()).collect();
    let subs = session.subs.clone();
    MockServer::start(move |req| {
        if req.is_root_turn() {
            let turn = req.message_count().div_ceil(2);
            return match replies.get(turn.wrapping_sub(1)) {
                Some(r) => Reply::openai_text(r, 1000, 100),
                None => Reply::error(400, &format!("the session has no reply for turn {turn}")),
            };
        }
        let prompt = req.prompt();
        match subs
            .iter()
            .find(|(pattern, _)| prompt.contains(pattern.as_str()))
        {
            Some((_, answer)) => Reply::openai_text(answer, 200, 20),
            None => {
                if let Ok(mut u) = unmatched.lock() {
                    u.push(prompt.clone());
                }
                Reply::openai_text("NO SUB-MODEL RULE MATCHED THIS PROMPT", 200, 20)
            }
        }
    })
}

/// Runs a session through the binary; the reasons it fails, if it does.
fn run_session(session: &Session) -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(dir) = tempfile::tempdir() else {
        return vec!["cannot make a temporary directory".into()];
    };
    let context_arg = match write_context(dir.path(), session.context.as_ref()) {
        Ok(arg) => arg,
        Err(e) => return vec![e],
    };
    let unmatched = Arc::new(Mutex::new(Vec::new()));
    let server = server(session, unmatched.clone());
    let trace = dir.path().join("trace.jsonl");
    let (exit, stdout, stderr) = common::output(
        common::rlm(dir.path())
            .args(["run", "--max-retries", "0", "--timeout", "60"])
            .args(common::loopback_models(&server))
            .args(["--context", &context_arg, "--query", &session.query])
            .args(["--output", "json", "--quiet", "--trace"])
            .arg(&trace),
    );
    drop(server);
    let events = read_trace(&trace, &mut problems);
    compare_cells(session, &events, &mut problems);
    compare_answer(session, exit, &stdout, &stderr, &mut problems);
    for prompt in unmatched.lock().map(|u| u.clone()).unwrap_or_default() {
        problems.push(format!(
            "no @sub rule matches the sub-call prompt:\n{}",
            indent(&prompt)
        ));
    }
    problems
}

/// The trace's events; a missing file or a line that is not JSON is a problem.
fn read_trace(path: &Path, problems: &mut Vec<String>) -> Vec<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("no trace ({e})"));
            return Vec::new();
        }
    };
    let mut events = Vec::new();
    for line in text.lines() {
        match serde_json::from_str(line) {
            Ok(v) => events.push(v),
            Err(e) => problems.push(format!("a trace line is not JSON ({e}): {line}")),
        }
    }
    events
}

/// Writes the context; the `--context` argument naming it, relative to `dir`.
fn write_context(dir: &Path, spec: Option<&ContextSpec>) -> Result<String, String> {
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
    };
    match spec {
        None => Err("the session has no @context".into()),
        Some(ContextSpec::Inline(text)) => {
            write(&dir.join("context.txt"), text)?;
            Ok("context.txt".into())
        }
        Some(ContextSpec::Files(files)) => {
            let docs = dir.join("docs");
            std::fs::create_dir(&docs).map_err(|e| format!("making {}: {e}", docs.display()))?;
            for (name, text) in files {
                write(&docs.join(name), text)?;
            }
            Ok("docs".into())
        }
    }
}

fn compare_cells(session: &Session, events: &[Value], problems: &mut Vec<String>) {
    let mut cells: BTreeMap<(u64, u64), &Value> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e["event"] == "cell" && e["depth"] == 0)
    {
        let key = (
            e["iteration"].as_u64().unwrap_or(0),
            e["index"].as_u64().unwrap_or(0),
        );
        cells.insert(key, e);
    }
    for (t, turn) in session.turns.iter().enumerate() {
        let iteration = t as u64 + 1;
        let ran = cells.keys().filter(|(i, _)| *i == iteration).count();
        if ran != turn.cells.len() {
            problems.push(format!(
                "reply {iteration}: {ran} cells ran, {} expected",
                turn.cells.len()
            ));
        }
        for (c, expect) in turn.cells.iter().enumerate() {
            let at = format!("reply {iteration}, cell {}", c + 1);
            let Some(event) = cells.get(&(iteration, c as u64 + 1)) else {
                continue;
            };
            let output = event["output"].as_str().unwrap_or("");
            let error = event["error"].as_str();
            match (expect, error) {
                (Expect::Output(want), None) => {
                    if let Some(diff) = diff(want, output) {
                        problems.push(format!("{at}: output differs\n{diff}"));
                    }
                }
                (Expect::Output(want), Some(err)) => problems.push(format!(
                    "{at}: failed, expected to print\n{}\nerror:\n{}\nprinted:\n{}",
                    indent(want),
                    indent(err),
                    indent(output)
                )),
                (
                    Expect::Error {
                        contains,
                        output: want,
                    },
                    Some(err),
                ) => {
                    if !err.contains(contains.as_str()) {
                        problems.push(format!(
                            "{at}: the error does not contain {contains:?}:\n{}",
                            indent(err)
                        ));
                    }
                    if let Some(diff) = diff(want, output) {
                        problems.push(format!("{at}: output before the error differs\n{diff}"));
                    }
                }
                (Expect::Error { contains, .. }, None) => problems.push(format!(
                    "{at}: expected an error containing {contains:?}, but it printed\n{}",
                    indent(output)
                )),
            }
        }
    }
    let extra = cells
        .keys()
        .filter(|(i, _)| *i as usize > session.turns.len())
        .count();
    if extra > 0 {
        problems.push(format!("{extra} cells ran after the last reply"));
    }
}

fn compare_answer(
    session: &Session,
    exit: i32,
    stdout: &str,
    stderr: &str,
    problems: &mut Vec<String>,
) {
    let result: Value = match serde_json::from_str(stdout) {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!(
                "exit {exit}, standard output is not JSON ({e}):\n{}\nstandard error:\n{}",
                indent(stdout),
                indent(stderr)
            ));
            return;
        }
    };
    if result["status"] != "submitted" {
        problems.push(format!(
            "the run ended {} (exit {exit}), not submitted: {}",
            result["status"], result["error"]
        ));
    }
    match &session.answer {
        None => problems.push("the session has no @answer".into()),
        Some(want) if *want != result["answer"] => problems.push(format!(
            "answer differs\n  expected: {want}\n  actual:   {}",
            result["answer"]
        )),
        Some(_) => {}
    }
}

/// Expected and actual from the first line that differs; `None` when they
/// agree but for white space at the very end.
fn diff(want: &str, got: &str) -> Option<String> {
    let (w, g) = (want.trim_end(), got.trim_end());
    if w == g {
        return None;
    }
    let wl: Vec<&str> = w.split('\n').collect();
    let gl: Vec<&str> = g.split('\n').collect();
    let first = wl.iter().zip(&gl).take_while(|(a, b)| a == b).count();
    let mut out = format!("  first difference at line {}\n", first + 1);
    for (i, line) in wl.iter().enumerate() {
        let mark = if i == first { "-" } else { " " };
        out.push_str(&format!("  {mark} {}\n", shown(line)));
    }
    out.push_str("  --- actual:\n");
    for (i, line) in gl.iter().enumerate() {
        let mark = if i == first { "+" } else { " " };
        out.push_str(&format!("  {mark} {}\n", shown(line)));
    }
    Some(out)
}

/// A line as written, or quoted when white space in it would not show.
fn shown(line: &str) -> String {
    if line.contains('\t') || line.trim() != line {
        format!("{line:?}")
    } else {
        line.to_string()
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks the corpus is whole: names unique, themes known, enough of each.
fn check_corpus(sessions: &[Session]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = std::collections::HashSet::new();
    let mut counts: BTreeMap<&str, usize> = THEMES.iter().map(|(t, _)| (*t, 0)).collect();
    for s in sessions {
        if !names.insert(s.name.as_str()) {
            problems.push(format!("{}: a second session named {}", s.origin, s.name));
        }
        if s.themes.is_empty() {
            problems.push(format!("{} ({}): no @themes", s.name, s.origin));
        }
        if s.turns.iter().map(|t| t.cells.len()).sum::<usize>() < 2 {
            problems.push(format!("{} ({}): fewer than two cells", s.name, s.origin));
        }
        for t in &s.themes {
            match counts.get_mut(t.as_str()) {
                Some(n) => *n += 1,
                None => problems.push(format!("{} ({}): unknown theme {t}", s.name, s.origin)),
            }
        }
    }
    println!("{} sessions; sessions per theme:", sessions.len());
    for (theme, what) in THEMES {
        let n = counts[theme];
        println!("  {n:4}  {theme:15} {what}");
        if n < MIN_PER_THEME {
            problems.push(format!(
                "theme {theme} has {n} sessions, fewer than {MIN_PER_THEME}"
            ));
        }
    }
    if sessions.len() < MIN_SESSIONS {
        problems.push(format!(
            "{} sessions, fewer than {MIN_SESSIONS}",
            sessions.len()
        ));
    }
    problems
}

#[test]
fn every_model_style_session_prints_what_its_cells_should_and_submits_its_answer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/model_sessions");
    let sessions = load_corpus(&dir).unwrap_or_else(|e| panic!("{e}"));
    let corpus_problems = check_corpus(&sessions);

    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 6);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(session) = sessions.get(i) else {
                    break;
                };
                let problems = run_session(session);
                if !problems.is_empty() {
                    let report = format!(
                        "=== {} ({}) [{}]\n{}",
                        session.name,
                        session.origin,
                        session.themes.join(", "),
                        problems.join("\n")
                    );
                    if let Ok(mut f) = failures.lock() {
                        f.push((i, report));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_default();
    failures.sort();
    assert!(
        failures.is_empty() && corpus_problems.is_empty(),
        "{}\n{} of {} sessions failed:\n\n{}",
        corpus_problems.join("\n"),
        failures.len(),
        sessions.len(),
        failures
            .into_iter()
            .map(|(_, r)| r)
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}
