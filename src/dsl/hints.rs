//! Hints for code written in Python by habit.
//!
//! Models write Python far more often than Rhai. When a cell fails, we look
//! for the Python habit behind the failure and name the Rhai form in one
//! line, so the next attempt is right instead of another guess.

use std::sync::OnceLock;

use regex::Regex;
use rhai::EvalAltResult;

/// Patterns over the cell's source, with strings and comments blanked.
/// Up to [`MAX_HINTS`] matches are shown, in this order, so the more
/// specific patterns come first.
const PARSE_HINTS: &[(&str, &str)] = &[
    (r"(?m)^\s*def\s+\w+\s*\(", "Rhai defines functions as `fn name(a, b) { ... }`. Functions cannot see outer variables, except `context`, `documents` and `query`; pass other values as arguments."),
    (r"(?m)^\s*(import\s+\w|from\s+\w+\s+import)", "There is no `import`: regexes, JSON and text tools are built in (matches, grep, count_matches, parse_json, to_json, counts)."),
    (r#"\b([fF]|[rR][fF]|[fF][rR])["']"#, "Rhai has no f-strings: use a backtick string with `${...}`, e.g. `found ${n} hits`."),
    (r"\bopen\s*\(", NO_SYSTEM),
    (r"\belif\b", "Rhai writes `else if`, with braces: `if a { ... } else if b { ... } else { ... }`."),
    (r"[^\s;{}][ \t]+for\s+\w+(\s*,\s*\w+)?\s+in\b", "Rhai has no comprehensions: use `arr.map(|x| ...)` and `arr.filter(|x| ...)`, or a `for` loop that calls `push`."),
    (r"[\w)\]]\s*\[\s*-?\w*\s*:\s*-?\w*\s*\]", "Rhai has no `[a:b]` slices: write `x[a..b]`, `x[..b]`, `x[a..]` or `x.slice(a, b)`, `x.head(n)`, `x.tail(n)` (on arrays, texts and strings; negative counts from the end)."),
    (r"(?m)^\s*(try|except\b.*|finally)\s*:\s*$", "Rhai: `try { ... } catch (err) { ... }`; raise errors with `throw \"message\";`."),
    (r"\bfor\s+\w+\s*,\s*\w+\s+in\b", "Rhai loops over one value: `for (item, index) in arr { ... }`; for a map, `for key in m.keys() { let v = m[key]; ... }`."),
    (r"\bwhile\s+True\b", "An endless loop in Rhai is `loop { ... break; }`."),
    (r"(?m)^\s*(if|elif|else|for|while|with|class)\b[^{]*:\s*(#.*)?$", "Rhai blocks use braces, not colons and indentation: `if x > 1 { ... } else { ... }`, `for line in lines { ... }`."),
    (r"\blambda\b", "Rhai closures are `|x| x + 1`; call a closure stored in a variable with `f.call(1)`."),
    (r"\bif\b[^{}\n]*\belse\b", "Rhai's conditional expression is `if x > 0 { a } else { b }`, not `a if x > 0 else b`."),
    (r"\bis\s+(not\s+)?None\b", "Rhai compares with `==` and `!=`: `x == ()` tests for no value (Python's `x is None`)."),
    (r"\b(None|True|False)\b", "Rhai writes `()` for None and lowercase `true`/`false`."),
    (r"(?m)^\s*#[^{]", "Rhai comments start with `//`, not `#`."),
    (r"\S\s+(and|or)\s+\S|(^|[\s(])not\s+\w", "Rhai uses `&&`, `||` and `!` instead of `and`, `or` and `not`."),
    (r"(?m)^\s*print\s+[^\s(]", "`print` is a function in Rhai: `print(x);`."),
    (r"\w\+\+|\+\+\w", "Rhai has no `++`: write `x += 1;`."),
    (r"(^|[^#])\{\s*['\x22][^'\x22\n]*['\x22]\s*:", "Rhai object maps are written `#{key: value}` (note the `#`)."),
    (r"\w\(([^()\n]*,)?\s*\w+\s*=[^=>]", "Rhai has no keyword arguments: pass values in order, and options as a map, e.g. `text.grep(pattern, #{max: 5})`."),
    (r"(?m)^\s*(let\s+)?\w+\s*,\s*\w+\s*=[^=]", "Rhai has no tuple assignment: assign one variable at a time, `let a = pair[0]; let b = pair[1];`."),
    (r"'[^'\\]{2,}'", "Single quotes hold one character in Rhai; write strings in double quotes."),
    (r#"\.format\(|"\s*%\s*\("#, "Rhai formats strings with backticks and `${...}`: `${name} has ${n} items`."),
    (r"\braise\b", "Rhai raises errors with `throw \"message\";`."),
];

/// Hints keyed by Rhai's own parse error messages: limits the model hit.
const MESSAGE_HINTS: &[(&str, &str)] = &[
    ("exceeds maximum complexity", "The sandbox limits how deeply expressions and blocks may nest: split the expression into steps held in `let` variables, or move inner blocks into functions."),
    ("Number of functions defined exceeds", "The sandbox limits how many functions a cell may define: reuse one function with parameters, or pass closures (`|x| ...`) as values."),
    ("'eval'", "There is no `eval` in this sandbox: write the code in the cell itself, and read data with `parse_json(s)`."),
];

/// Habits that Rhai reads as the start of a `//` comment, so they are
/// looked for with comments kept.
const COMMENT_HINTS: &[(&str, &str)] = &[(
    r"[\w)\]]\s*//\s*[\w(]",
    "`//` starts a comment in Rhai: `/` divides integers without a remainder, so write `a / b` for Python's `a // b`.",
)];

/// At most this many hints per error: enough for the habits of one cell,
/// few enough to read.
const MAX_HINTS: usize = 3;

/// Operators that fail with `()` when a map key is read before it is set.
const ARITHMETIC: &[&str] = &[
    "+", "-", "*", "/", "%", "+=", "-=", "*=", "/=", "<", ">", "<=", ">=",
];

const UNSET_IN_ARITHMETIC: &str = "One side is `()`: a map key read before it is set (or a variable never assigned) is `()`. Count with a default: `m[k] = m.get(k, 0) + 1;`, or set the key first.";

/// Hints for a variable Rhai did not find, by its name.
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
    ("pass", "Rhai has no `pass`: an empty block `{ }` does nothing."),
    ("str", TYPE_TEST),
    ("int", TYPE_TEST),
    ("float", TYPE_TEST),
    ("bool", TYPE_TEST),
    ("list", TYPE_TEST),
    ("dict", TYPE_TEST),
    ("os", NO_SYSTEM),
    ("sys", NO_SYSTEM),
    ("subprocess", NO_SYSTEM),
    ("requests", NO_SYSTEM),
    ("urllib", NO_SYSTEM),
    ("io", NO_SYSTEM),
    ("pathlib", NO_SYSTEM),
];

const TYPE_TEST: &str = "Type names are not values in Rhai: test a type with `type_of(x) == \"string\"` (or \"Text\", \"array\", \"map\", \"i64\", \"f64\", \"bool\").";

const NO_SYSTEM: &str = "This sandbox has no file, process, environment or network access: the input is already loaded as `context` (and `documents`), and sub-model calls are the only way out.";

const TEXT_AS_STRING: &str = "A Text is a view of the context, not a string: where a string is expected (a needle, a pattern, a map key), pass `t.to_string()` or `${t}`.";

/// Hints for a function Rhai did not find, by its name.
const RUNTIME_FUNCTIONS: &[(&str, &str)] = &[
    ("findall", "Use `text.matches(pattern)` (maps with text, start, line, groups) or `text.find_all(needle)`."),
    ("search", "Use `text.matches(pattern, 1)` for the first match, or `text.is_match(pattern)`."),
    ("print", "`print` takes one value: combine with a backtick string, `print(`${a} ${b}`)`."),
    ("dict", "Rhai object maps are written `#{}` or `#{key: value}`."),
    ("list", "Rhai arrays are written `[]` or `[1, 2, 3]`."),
    ("set", "Use an object map as a set, or `unique(arr)`."),
    ("isinstance", "Use `type_of(x) == \"string\"` (or \"Text\", \"array\", \"map\", \"i64\")."),
    ("type", "Use `type_of(x)`, which returns a name such as \"string\", \"Text\", \"array\", \"map\" or \"i64\"."),
    ("enumerate", "Rhai loops give the index directly: `for (item, i) in arr { ... }`."),
    ("zip", "Loop over indices instead: `for i in 0..a.len() { let x = a[i]; let y = b[i]; }`."),
    ("format", "Use a backtick string with `${...}`."),
    ("%", "Rhai formats strings with backticks and `${...}`: `${name} has ${n} items`."),
    ("keys", "Maps have `m.keys()` and `m.values()`; a Text or string has no keys."),
    ("most_common", "Use `top(counts(arr), k)`, which returns `[value, count]` pairs."),
    ("Counter", "Use `counts(arr)` for a map of value to count, and `top(map, k)` for the largest."),
    ("split", "`split` needs a string separator, or none for whitespace: `s.split(\",\")`, `s.split()`."),
    ("sub_string", "Prefer `x.slice(start, end)`: it takes byte offsets, like find() and matches()."),
    ("max", "`max(a, b)` compares two numbers; for the largest item of an array, use `sorted(arr)[-1]`."),
    ("min", "`min(a, b)` compares two numbers; for the smallest item of an array, use `sorted(arr)[0]`."),
    ("open", NO_SYSTEM),
    ("read_file", NO_SYSTEM),
    ("write_file", NO_SYSTEM),
    ("system", NO_SYSTEM),
    ("exec", NO_SYSTEM),
    ("popen", NO_SYSTEM),
    ("env", NO_SYSTEM),
    ("getenv", NO_SYSTEM),
    ("http_get", NO_SYSTEM),
    ("fetch", NO_SYSTEM),
    ("urlopen", NO_SYSTEM),
    ("input", NO_SYSTEM),
];

fn compile(table: &'static [(&str, &'static str)]) -> Vec<(Regex, &'static str)> {
    table
        .iter()
        .filter_map(|(pattern, hint)| Regex::new(pattern).ok().map(|re| (re, *hint)))
        .collect()
}

fn parse_hints() -> &'static [(Regex, &'static str)] {
    static HINTS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    HINTS.get_or_init(|| compile(PARSE_HINTS))
}

fn comment_hints() -> &'static [(Regex, &'static str)] {
    static HINTS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    HINTS.get_or_init(|| compile(COMMENT_HINTS))
}

/// A hint for a cell that failed to parse with `message`, if it looks like
/// Python or misses a `;`. Several habits in one cell give several hints,
/// one per line, each after the first prefixed with `Hint: `.
pub(crate) fn parse_hint(code: &str, message: &str) -> Option<String> {
    let with_comments = blank_strings(code, Comments::Keep);
    let without_comments = blank_strings(code, Comments::Drop);
    let found: Vec<&str> = MESSAGE_HINTS
        .iter()
        .filter(|(text, _)| message.contains(text))
        .map(|(_, hint)| *hint)
        .chain(
            comment_hints()
                .iter()
                .filter(|(re, _)| re.is_match(&with_comments))
                .map(|(_, hint)| *hint),
        )
        .chain(
            parse_hints()
                .iter()
                .filter(|(re, _)| re.is_match(&without_comments))
                .map(|(_, hint)| *hint),
        )
        .take(MAX_HINTS)
        .collect();
    if !found.is_empty() {
        return Some(found.join("\nHint: "));
    }
    message.contains("';'").then(|| {
        "End each statement with `;` (a newline does not end a statement in Rhai).".to_string()
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Comments {
    Keep,
    Drop,
}

/// Blanks out the contents of double-quoted and backtick strings, and drops
/// `//` comments unless told to keep them, so that a Python-looking word
/// inside a string is not mistaken for code. Code interpolated with `${...}`
/// stays code. Single quotes are kept: a Python string in single quotes is a
/// habit we want to see.
fn blank_strings(code: &str, comments: Comments) -> String {
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    let mut quote: Option<char> = None;
    // For each open `${`, the depth of braces opened inside it.
    let mut interpolations: Vec<usize> = Vec::new();
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
                    out.push_str("${");
                    chars.next();
                    quote = None;
                    interpolations.push(0);
                } else {
                    out.push(' ');
                }
            }
            None => match c {
                '"' | '`' => {
                    quote = Some(c);
                    out.push(c);
                }
                '/' if chars.peek() == Some(&'/') && comments == Comments::Drop => {
                    while chars.peek().is_some_and(|&n| n != '\n') {
                        chars.next();
                    }
                }
                '{' => {
                    if let Some(depth) = interpolations.last_mut() {
                        *depth += 1;
                    }
                    out.push(c);
                }
                '}' => {
                    match interpolations.last_mut() {
                        Some(0) => {
                            interpolations.pop();
                            quote = Some('`');
                        }
                        Some(depth) => *depth -= 1,
                        None => {}
                    }
                    out.push(c);
                }
                _ => out.push(c),
            },
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
                    "`{name}` is not defined: declare variables with `let {name} = ...;`. Variables from earlier cells persist, but script functions cannot see them: pass them as arguments."
                ))
            }),
        EvalAltResult::ErrorFunctionNotFound(signature, _) => {
            let name = signature.split(['(', ' ']).next().unwrap_or("").trim();
            let base = name.rsplit('.').next().unwrap_or(name);
            let text_argument = signature
                .split_once('(')
                .is_some_and(|(_, args)| args.split(", ").skip(1).any(|a| a.trim_end_matches(')') == "Text"));
            if text_argument {
                return Some(TEXT_AS_STRING.into());
            }
            if ARITHMETIC.contains(&base) && signature.contains("()") {
                return Some(UNSET_IN_ARITHMETIC.into());
            }
            RUNTIME_FUNCTIONS
                .iter()
                .find(|(n, _)| *n == base)
                .map(|(_, h)| h.to_string())
                .or_else(|| {
                    (signature.contains("()") && !signature.contains("(()"))
                        .then(|| "Check the argument types: a value may be `()` (unset) where a string or number was expected.".to_string())
                })
        }
        EvalAltResult::ErrorMismatchDataType(expected, actual, _) => {
            if expected == "bool" {
                Some("Conditions must be `true` or `false`: Rhai does not treat numbers, strings or arrays as true or false; compare explicitly, e.g. `if hits.len() > 0`.".into())
            } else if expected == "string" && actual.ends_with("Text") {
                Some(TEXT_AS_STRING.into())
            } else if actual.contains("Range") {
                Some("A range held in a variable cannot index: write the range in the brackets, `a[i..j]`, or pass it to `a.slice(r)`.".into())
            } else if actual == "()" {
                Some("The value is `()`: a variable that was never set, or the result of a function that returns nothing (in-place methods such as `push`, `sort` and `pad` do; use the variable itself afterwards).".into())
            } else {
                None
            }
        }
        EvalAltResult::ErrorIndexingType(ty, _) if ty.starts_with("Text") => Some(
            "A Text is indexed by byte ranges, `t[a..b]`; for one line use `t.line(n)`, for one byte `t.slice(i, i + 1)`.".into(),
        ),
        EvalAltResult::ErrorFor(_) => Some(
            "`for` loops over an array, a range (`0..n`) or a map's `keys()`; for a text, loop over `t.lines()`, `t.chunk_lines(n)` or `t.chunks(n)`.".into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_blanked_but_interpolated_code_is_kept() {
        let code = "let s = `a ${x + 1} and ${#{k: 1}.k} b`; // not None\nprint(\"True\");";
        assert_eq!(
            blank_strings(code, Comments::Drop),
            "let s = `  ${x + 1}     ${#{k: 1}.k}  `; \nprint(\"    \");"
        );
        assert!(blank_strings(code, Comments::Keep).contains("// not None"));
    }

    #[test]
    fn a_cell_with_several_habits_gets_a_hint_for_each() {
        let hint = parse_hint("while True:\n    break", "").unwrap();
        assert!(hint.contains("loop {"), "{hint}");
        assert!(hint.contains("\nHint: Rhai blocks use braces"), "{hint}");
    }

    #[test]
    fn python_words_inside_strings_are_not_habits() {
        assert_eq!(parse_hint("print(\"None and True\")\nprint(1)", "x"), None);
    }
}
