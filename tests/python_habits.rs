//! Python written by habit: every snippet either runs as the model meant,
//! or fails with a hint that names the Rhai form to use instead.
//!
//! The corpus is a table of (snippet, expectation). Each snippet runs in a
//! fresh session over a small log, so entries are independent.

use rlm::dsl::{CellOutcome, SessionBuilder};
use rlm::Context;

/// What a snippet must do.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Runs without error and prints exactly this.
    Prints(&'static str),
    /// Fails, and the error, less the source it quotes, contains this
    /// phrase: usually in its `Hint:` line, sometimes in a message that is
    /// itself the hint (`import`, the sandbox limits).
    Hint(&'static str),
}

use Expect::{Hint, Prints};

const LOG: &str = "INFO start\nERROR disk full\nINFO retry\nERROR net down\n";

const CORPUS: &[(&str, Expect)] = &[
    // Definitions and imports.
    ("def count(x):\n    return len(x)", Hint("fn name(a, b) { ... }")),
    ("def count(x) {\n    return len(x);\n}", Hint("fn name(a, b) { ... }")),
    ("import re\nprint(len(re.findall(\"ERROR\", context)))", Hint("There is no `import`")),
    ("import json", Hint("`import` is not available")),
    ("from collections import Counter", Hint("There is no `import`")),
    // Strings.
    ("let n = 3;\nprint(f\"found {n} hits\");", Hint("backtick string with `${...}`")),
    ("let n = 3;\nprint(f'found {n} hits');", Hint("backtick string with `${...}`")),
    ("print('hello world');", Hint("write strings in double quotes")),
    ("print(\"{} items\".format(3));", Hint("`${...}`")),
    ("print(\"%d items\" % (3));", Hint("`${...}`")),
    ("let s = \"  Hello  \";\nprint(s.strip().lower());", Prints("hello\n")),
    ("let s = \"Hello\";\nprint(s.upper());", Prints("HELLO\n")),
    ("let s = \"Hello\";\nprint(s.startswith(\"He\"));\nprint(s.endswith(\"lo\"));", Prints("true\ntrue\n")),
    ("print(str(42) + \"!\");", Prints("42!\n")),
    ("print(int(\"42\") + 1);", Prints("43\n")),
    ("print(\" \".join([\"a\", \"b\", \"c\"]));", Prints("a b c\n")),
    ("print(\"a,b,c\".split(\",\"));", Prints("[\"a\", \"b\", \"c\"]\n")),
    ("print(len(\"abc\"));", Prints("3\n")),
    ("print(\"b\" in \"abc\");", Prints("true\n")),
    // Control flow.
    ("let x = 2;\nif x > 1 {\n    print(1);\n} elif x > 0 {\n    print(0);\n}", Hint("`else if`")),
    ("let x = 2;\nif x > 1:\n    print(x)", Hint("braces, not colons")),
    ("let lines = [1, 2];\nfor line in lines:\n    print(line)", Hint("braces, not colons")),
    ("let i = 0;\nwhile True:\n    break", Hint("`loop { ... break; }`")),
    ("let arr = [\"a\", \"b\"];\nfor i, x in enumerate(arr) {\n    print(x);\n}", Hint("for (item, index) in arr")),
    ("let arr = [\"a\", \"b\"];\nfor i, x in enumerate(arr):\n    print(x)", Hint("for (item, index) in arr")),
    ("for i in range(3) {\n    print(i);\n}", Prints("0\n1\n2\n")),
    ("let x = 1;\nx++;", Hint("`x += 1;`")),
    ("try:\n    let x = 1;\nexcept Exception as e:\n    print(e)", Hint("try { ... } catch (err) { ... }")),
    ("raise ValueError(\"bad\")", Hint("throw \"message\";")),
    ("let a = true;\nlet b = false;\nif a and b {\n    print(1);\n}", Hint("`&&`, `||` and `!`")),
    ("let found = false;\nif not found {\n    print(1);\n}", Hint("`&&`, `||` and `!`")),
    ("let x = 5;\nprint(x if x > 0 else 0);", Hint("if x > 0 { a } else { b }")),
    ("let hits = context.grep(\"ERROR\");\nif hits {\n    print(\"found\");\n}", Hint("compare explicitly")),
    ("let hits = context.grep(\"ERROR\");\nif hits.len() > 0 {\n    print(\"found\");\n}", Prints("found\n")),
    ("if x is None {\n    print(1);\n}", Hint("`x == ()`")),
    ("let x = 1;\nif x > 0 {\n    pass\n}", Hint("no `pass`")),
    // Values.
    ("let x = None;", Hint("`()` for None")),
    ("let ok = True;", Hint("lowercase `true`")),
    ("let x = 5;\nif x == None {\n    print(1);\n}", Hint("`()` for None")),
    ("x = 5\nprint(x)", Hint("`;`")),
    ("x = 5;\nprint(x);", Hint("let x = ")),
    ("# count the errors\nprint(1);", Hint("comments start with `//`")),
    ("print x", Hint("`print(x);`")),
    ("let words = [\"a\", \"b\", \"c\", \"d\"];\nprint(len(words) // 2);", Hint("`/` divides")),
    ("print(2 ** 10);", Prints("1024\n")),
    // Collections.
    ("let squares = [x * x for x in [1, 2, 3]];", Hint("no comprehensions")),
    ("print(\", \".join(str(x) for x in [1, 2]));", Hint("no comprehensions")),
    ("let d = {\"a\": 1};", Hint("`#{key: value}`")),
    ("let d = {'a': 1};", Hint("`#{key: value}`")),
    ("let d = dict();", Hint("`#{}`")),
    ("let m = #{a: 1};\nfor kv in m.items() {\n    print(`${kv[0]}=${kv[1]}`);\n}", Prints("a=1\n")),
    ("let m = #{a: 1};\nprint(m.get(\"b\", 0));\nprint(m.get(\"a\", 0));", Prints("0\n1\n")),
    ("print(sorted([3, 1, 2]));", Prints("[1, 2, 3]\n")),
    ("print(sum([1, 2, 3]));", Prints("6\n")),
    ("let a = [];\na.append(1);\nprint(len(a));", Prints("1\n")),
    ("let arr = [1, 2, 3];\nprint(arr[-1]);", Prints("3\n")),
    ("let arr = [1, 2, 3, 4];\nprint(arr[1:3]);", Hint("x[a..b]")),
    ("print(max([1, 5, 3]));", Hint("sorted(arr)[-1]")),
    ("let f = lambda x: x + 1;", Hint("`|x| x + 1`")),
    ("print(eval(\"1 + 1\"));", Hint("no `eval`")),
    ("let words = [\"a\", \"b\", \"a\"];\nlet c = Counter(words);", Hint("`counts(arr)`")),
    ("let x = 1;\nprint(isinstance(x, int));", Hint("type_of(x)")),
    ("let x = 1;\nprint(type(x));", Hint("type_of(x)")),
    ("let nums = [1, 2];\nprint(len(nums), \"items\");", Hint("backtick string")),
    ("let nums = [3, 1];\nnums.sort();\nprint(nums);", Prints("[1, 3]\n")),
    // The context.
    ("print(context[:10]);", Hint("`x.head(n)`")),
    ("print(context[-15:]);", Hint("`x.tail(n)`")),
    ("print(len(re.findall(\"ERROR\", context)));", Hint("There is no `re` module")),
    ("let m = re.search(\"ERROR\", context);", Hint("There is no `re` module")),
    ("print(math.sqrt(16.0));", Hint("Math functions are global")),
    ("print(len(context));", Prints("53\n")),
    ("print(context.lower().count(\"error\"));", Prints("2\n")),
    ("print(context.splitlines()[1]);", Prints("ERROR disk full\n")),
    ("print(context.find(\"ERROR\") != -1);", Prints("true\n")),
    ("print(context[0]);", Hint("`t.line(n)`")),
    ("for line in context {\n    print(line);\n}", Hint("`t.lines()`")),
    ("let tally = #{};\nfor line in context.lines() {\n    tally[line] = 1;\n}", Hint("`t.to_string()`")),
    ("let tally = #{};\nfor line in context.lines() {\n    tally[`${line}`] = 1;\n}\nprint(tally.len());", Prints("4\n")),
    // Texts are accepted wherever a needle or pattern is.
    ("let first = context.line(2).slice(0, 5);\nprint(context.count(first));", Prints("2\n")),
    ("let first = context.line(2).slice(0, 5);\nprint(context.count(first.to_string()));", Prints("2\n")),
    ("let words = context.split();\nprint(len(words));", Prints("10\n")),
    ("print(\"a\", end=\"\");", Hint("no keyword arguments")),
    ("print(context.grep(\"ERROR\", max=1));", Hint("#{max: 5}")),
    ("let a, b = 1, 2;", Hint("no tuple assignment")),
    ("x = []\nx.append(1)", Hint("`;`")),
    ("let lines = context.splitlines();\nlet n = 0;\nfor line in lines {\n    if \"ERROR\" in line {\n        n += 1;\n    }\n}\nprint(n);", Prints("2\n")),
    ("let f = open(\"log.txt\");", Hint("already loaded as `context`")),
    ("print(os.getcwd());", Hint("no file, process")),
    ("let m = #{};\nif m.get(\"a\") == () {\n    print(\"none\");\n}", Prints("none\n")),
    ("with open(\"log.txt\") as f:\n    print(f.read())", Hint("already loaded as `context`")),
];

fn run(snippet: &str) -> CellOutcome {
    let ctx = Context::from_string("log", LOG);
    SessionBuilder::new().build(&ctx).run_cell(snippet)
}

/// Why an outcome does not meet its expectation, if it does not.
fn mismatch(out: &CellOutcome, expect: Expect) -> Option<String> {
    match (expect, &out.error) {
        (Prints(text), None) if out.output == text => None,
        (Prints(text), _) => Some(format!("expected to print {text:?}")),
        (Hint(phrase), Some(err)) if explanation(err).contains(phrase) => None,
        (Hint(phrase), _) => Some(format!(
            "expected to fail with a hint containing {phrase:?}"
        )),
    }
}

/// An error without its location block, which quotes the snippet back and
/// so would match any phrase taken from the snippet.
fn explanation(err: &str) -> &str {
    err.find("\n  at line").map_or(err, |at| &err[..at])
}

#[test]
fn every_python_habit_runs_or_gets_a_targeted_hint() {
    assert!(CORPUS.len() >= 40);
    let failures: Vec<String> = CORPUS
        .iter()
        .filter_map(|&(snippet, expect)| {
            let out = run(snippet);
            mismatch(&out, expect).map(|why| {
                format!(
                    "--- {why}\n{snippet}\n--- got output {:?}, error:\n{}\n",
                    out.output,
                    out.error.as_deref().unwrap_or("(none)")
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} snippets failed:\n\n{}",
        failures.len(),
        CORPUS.len(),
        failures.join("\n")
    );
}
