//! Hints for code written in Python by habit.
//!
//! Models write Python far more often than Rhai. When a cell fails, we look
//! for the Python habit behind the failure and name the Rhai form in one
//! line, so the next attempt is right instead of another guess.

use std::sync::OnceLock;

use regex::Regex;
use rhai::EvalAltResult;

/// Patterns over the cell's source, checked in order; the first match wins.
const PARSE_HINTS: &[(&str, &str)] = &[
    (r"(?m)^\s*def\s+\w+\s*\(", "Rhai defines functions as `fn name(a, b) { ... }`. Functions cannot see outer variables, except `context`, `documents` and `query`; pass other values as arguments."),
    (r"(?m)^\s*(import\s+\w|from\s+\w+\s+import)", "There is no `import`: regexes, JSON and text tools are built in (matches, grep, count_matches, parse_json, to_json, counts)."),
    (r#"\b[fF]"[^"]*\{|\b[fF]'[^']*\{"#, "Rhai has no f-strings: use a backtick string with `${...}`, e.g. `found ${n} hits`."),
    (r"\belif\b", "Rhai writes `else if`, with braces: `if a { ... } else if b { ... } else { ... }`."),
    (r"\[[^\[\]]*\bfor\s+\w+(\s*,\s*\w+)?\s+in\b[^\[\]]*\]", "Rhai has no comprehensions: use `arr.map(|x| ...)` and `arr.filter(|x| ...)`, or a `for` loop that calls `push`."),
    (r"\w\s*\[\s*-?\w*\s*:\s*-?\w*\s*\]", "Rhai has no `[a:b]` slices: use `x.slice(a, b)`, `x[a..b]`, `x.head(n)` or `x.tail(n)` (byte offsets; negative counts from the end)."),
    (r"(?m)^\s*(try|except\b.*|finally)\s*:\s*$", "Rhai: `try { ... } catch (err) { ... }`; raise errors with `throw \"message\";`."),
    (r"(?m)^\s*(if|elif|else|for|while|with|class)\b[^{]*:\s*(#.*)?$", "Rhai blocks use braces, not colons and indentation: `if x > 1 { ... } else { ... }`, `for line in lines { ... }`."),
    (r"\blambda\b", "Rhai closures are `|x| x + 1`; call a closure stored in a variable with `f.call(1)`."),
    (r"\bfor\s+\w+\s*,\s*\w+\s+in\b", "Rhai loops over one value: `for (item, index) in arr { ... }`; for a map, `for key in m.keys() { let v = m[key]; ... }`."),
    (r"\bwhile\s+True\b", "An endless loop in Rhai is `loop { ... break; }`; `true` is lowercase."),
    (r"\b(None|True|False)\b", "Rhai writes `()` for None and lowercase `true`/`false`."),
    (r"(?m)^\s*#", "Rhai comments start with `//`, not `#`."),
    (r"\S\s+(and|or)\s+\S|(^|[\s(])not\s+\w", "Rhai uses `&&`, `||` and `!` instead of `and`, `or` and `not`."),
    (r"(?m)^\s*print\s+[^\s(]", "`print` is a function in Rhai: `print(x);`."),
    (r"\w\+\+|\+\+\w", "Rhai has no `++`: write `x += 1;`."),
    (r"=\s*\{\s*['\x22]\w*['\x22]\s*:", "Rhai object maps are written `#{key: value}` (note the `#`)."),
    (r"'[^'\\]{2,}'", "Single quotes hold one character in Rhai; write strings in double quotes."),
    (r#"\.format\(|"\s*%\s*\("#, "Rhai formats strings with backticks and `${...}`: `${name} has ${n} items`."),
    (r"\braise\b", "Rhai raises errors with `throw \"message\";`."),
];

/// Hints keyed by the error Rhai reports at run time.
const RUNTIME_NAMES: &[(&str, &str)] = &[
    ("re", "There is no `re` module: use `text.matches(pattern)`, `text.grep(pattern)`, `text.count_matches(pattern)` or `text.is_match(pattern)`."),
    ("json", "There is no `json` module: use `parse_json(s)` and `to_json(value)`."),
    ("math", "Math functions are global in Rhai: `abs(x)`, `x.sqrt()`, `x.floor()`, `max(a, b)`."),
    ("None", "Rhai writes `()` for None."),
    ("True", "Rhai writes lowercase `true`."),
    ("False", "Rhai writes lowercase `false`."),
    ("null", "Rhai writes `()` for null."),
    ("self", "Rhai functions have no `self` parameter unless called as a method; pass values as arguments."),
    ("len", "Call `len` with parentheses: `x.len()` or `len(x)`."),
];

const RUNTIME_FUNCTIONS: &[(&str, &str)] = &[
    ("findall", "Use `text.matches(pattern)` (maps with text, start, line, groups) or `text.find_all(needle)`."),
    ("search", "Use `text.matches(pattern, 1)` for the first match, or `text.is_match(pattern)`."),
    ("print", "`print` takes one value: combine with a backtick string, `print(`${a} ${b}`)`."),
    ("dict", "Rhai object maps are written `#{}` or `#{key: value}`."),
    ("list", "Rhai arrays are written `[]` or `[1, 2, 3]`."),
    ("set", "Use an object map as a set, or `unique(arr)`."),
    ("isinstance", "Use `type_of(x) == \"string\"` (or \"Text\", \"array\", \"map\", \"i64\")."),
    ("enumerate", "Rhai loops give the index directly: `for (item, i) in arr { ... }`."),
    ("zip", "Loop over indices instead: `for i in 0..a.len() { let x = a[i]; let y = b[i]; }`."),
    ("format", "Use a backtick string with `${...}`."),
    ("keys", "Maps have `m.keys()` and `m.values()`; a Text or string has no keys."),
    ("most_common", "Use `top(counts(arr), k)`, which returns `[value, count]` pairs."),
    ("Counter", "Use `counts(arr)` for a map of value to count, and `top(map, k)` for the largest."),
    ("split", "`split` needs a string separator, or none for whitespace: `s.split(\",\")`, `s.split()`."),
    ("sub_string", "Prefer `x.slice(start, end)`: it takes byte offsets, like find() and matches()."),
];

fn compiled() -> &'static [(Regex, &'static str)] {
    static HINTS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    HINTS.get_or_init(|| {
        PARSE_HINTS
            .iter()
            .filter_map(|(pattern, hint)| Regex::new(pattern).ok().map(|re| (re, *hint)))
            .collect()
    })
}

/// A hint for a cell that failed to parse with `message`, if it looks like
/// Python or misses a `;`.
pub(crate) fn parse_hint(code: &str, message: &str) -> Option<String> {
    let code = strip_strings_and_comments(code);
    if let Some((_, hint)) = compiled().iter().find(|(re, _)| re.is_match(&code)) {
        return Some(hint.to_string());
    }
    message.contains("';'").then(|| {
        "End each statement with `;` (a newline does not end a statement in Rhai).".to_string()
    })
}

/// Blanks out the contents of double-quoted and backtick strings and `//`
/// comments, so that a Python-looking word inside a string is not mistaken
/// for code. Single quotes are kept: a Python string in single quotes is a
/// habit we want to see.
fn strip_strings_and_comments(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == '\\' {
                    chars.next();
                    out.push(' ');
                } else if c == q {
                    quote = None;
                    out.push(c);
                } else if c == '\n' {
                    out.push('\n');
                } else if q == '`' && c == '$' && chars.peek() == Some(&'{') {
                    // Interpolated code is code.
                    out.push_str("${");
                    chars.next();
                    quote = None;
                } else {
                    out.push(' ');
                }
            }
            None => {
                if c == '"' || c == '`' {
                    quote = Some(c);
                    out.push(c);
                } else if c == '/' && chars.peek() == Some(&'/') {
                    while chars.peek().is_some_and(|&n| n != '\n') {
                        chars.next();
                    }
                } else {
                    out.push(c);
                }
            }
        }
    }
    out
}

/// A hint for a runtime error caused by a Python habit.
pub(crate) fn runtime_hint(err: &EvalAltResult) -> Option<String> {
    match err {
        EvalAltResult::ErrorVariableNotFound(name, _) => RUNTIME_NAMES
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| h.to_string())
            .or_else(|| {
                Some(format!(
                    "`{name}` is not defined. Variables from earlier cells persist, but script functions cannot see them: pass them as arguments."
                ))
            }),
        EvalAltResult::ErrorFunctionNotFound(signature, _) => {
            let name = signature.split(['(', ' ']).next().unwrap_or("").trim();
            let base = name.rsplit('.').next().unwrap_or(name);
            RUNTIME_FUNCTIONS
                .iter()
                .find(|(n, _)| *n == base)
                .map(|(_, h)| h.to_string())
                .or_else(|| {
                    (signature.contains("()") && !signature.contains("(()"))
                        .then(|| "Check the argument types: a value may be `()` (unset) where a string or number was expected.".to_string())
                })
        }
        EvalAltResult::ErrorMismatchOutputType(..) | EvalAltResult::ErrorMismatchDataType(..) => {
            Some("Rhai's `trim`, `replace`, `to_upper` and `to_lower` change a string in place; `strip()`, `lower()` and `upper()` return new values.".into())
        }
        _ => None,
    }
}
