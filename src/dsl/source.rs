//! What models write, made into what Rhai parses, without moving a position.
//!
//! Two habits of models meet two gaps in Rhai, and both are closed here,
//! before and during parsing, rather than by patching the engine:
//!
//! * **Slicing with a range.** `a[1..3]` fails on arrays (Rhai indexes
//!   arrays by integers only and offers no hook for other index types),
//!   though it is what the quick reference and every model write. A cell's
//!   source is rewritten so that an index whose expression is a range,
//!   `X[lo..hi]`, `X[lo..=hi]`, `X[..hi]` or `X[lo..]`, becomes
//!   `X.slice(lo..hi)`, `X.slice(0..hi)` or `X.slice(lo)`. `slice` exists for
//!   arrays, Text views and strings, so one rewrite serves all three. The
//!   rewrite keeps every line where it was; the columns it moves are mapped
//!   back ([`Prepared::original_position`]), so errors point at what the
//!   model wrote.
//! * **Escapes in backtick strings.** Rhai's backtick strings are raw, so
//!   `` `${i}\t${q}\n` `` holds a backslash and a `t`: a model built sixteen
//!   prompts that way, each one line, and got nothing back and no error.
//!   Inside a backtick string `\n`, `\t` and `\r` now mean newline, tab and
//!   carriage return, as in an f-string; every other backslash is kept, and
//!   `\\` stays two backslashes. Regexes written in backticks therefore
//!   keep their meaning: `\d`, `\s`, `\b`, `\.` and `\\` are untouched, and
//!   a literal newline or tab in a pattern matches what `\n` or `\t` did.
//!   The one exception is a verbose regex (`(?x)`), where literal white
//!   space is ignored: such a string is left raw. The escapes are applied
//!   to the string tokens Rhai's tokenizer produces (its token hook), at
//!   the positions where this module's own lexer found backtick strings,
//!   so that inserting a newline never shifts the lines after it.
//!
//! The lexer is small: it knows Rhai's comments (nested block comments
//! too), `"..."` and `'c'` literals with escapes, raw `#"..."#` strings,
//! backtick strings with `${...}` interpolation, numbers (so that `1..3` is
//! not read as a float), identifiers and brackets. Anything it cannot make
//! sense of (an unterminated string, unbalanced brackets) is left as it is
//! for Rhai to report.

use std::collections::HashSet;

use rhai::Position;

/// A cell's source as Rhai should see it.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// The source after the slicing rewrite.
    pub code: String,
    /// Where Rhai's tokenizer reports each piece of a backtick string, as
    /// (line, column): the opening backtick, and the column after the `}`
    /// that resumes the text after an interpolation.
    pub backtick_pieces: HashSet<(usize, usize)>,
    /// Per rewritten line, breakpoints (rewritten column, shift): from that
    /// column on, the original column is the rewritten one minus the shift.
    shifts: Vec<(usize, Vec<(usize, isize)>)>,
}

impl Prepared {
    /// The position in the source the model wrote of a position Rhai
    /// reported in the rewritten source.
    pub fn original_position(&self, pos: Position) -> Position {
        let (Some(line), Some(col)) = (pos.line(), pos.position()) else {
            return pos;
        };
        let Some((_, points)) = self.shifts.iter().find(|(l, _)| *l == line) else {
            return pos;
        };
        let shift = points
            .iter()
            .rev()
            .find(|(at, _)| *at <= col)
            .map_or(0, |(_, s)| *s);
        let original = (col as isize - shift).max(1) as usize;
        match (u16::try_from(line), u16::try_from(original)) {
            (Ok(l), Ok(c)) if l > 0 => Position::new(l, c),
            _ => pos,
        }
    }
}

/// Rewrites range indexing and finds the backtick strings of `code`.
pub(crate) fn prepare(code: &str) -> Prepared {
    let tokens = lex(code);
    let mut edits = slice_edits(code, &tokens);
    edits.extend(captured_receiver_edits(code, &tokens));
    edits.sort_by_key(|e| tokens[e.token].start);
    if edits.is_empty() {
        return Prepared {
            code: code.to_string(),
            backtick_pieces: backtick_pieces(&tokens),
            shifts: Vec::new(),
        };
    }
    let (rewritten, shifts) = apply(code, &tokens, &edits);
    let backtick_pieces = backtick_pieces(&lex(&rewritten));
    Prepared {
        code: rewritten,
        backtick_pieces,
        shifts,
    }
}

/// The text of a backtick string piece with `\n`, `\t` and `\r` turned
/// into the characters they name, or `None` when nothing changes (no such
/// escape, or a verbose regex whose literal white space would be ignored).
pub(crate) fn backtick_escapes(raw: &str) -> Option<String> {
    if !raw.contains('\\') || is_verbose_regex(raw) {
        return None;
    }
    let mut out = String::with_capacity(raw.len());
    let mut changed = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let named = match chars.peek() {
            Some('n') => Some('\n'),
            Some('t') => Some('\t'),
            Some('r') => Some('\r'),
            _ => None,
        };
        match (named, chars.peek()) {
            (Some(ch), _) => {
                chars.next();
                out.push(ch);
                changed = true;
            }
            // `\\` is a pair: neither backslash starts an escape.
            (None, Some('\\')) => {
                chars.next();
                out.push_str("\\\\");
            }
            (None, _) => out.push('\\'),
        }
    }
    changed.then_some(out)
}

/// Whether `s` turns on the regex crate's verbose mode, `(?x)` or a flag
/// group holding `x` such as `(?ix:`.
fn is_verbose_regex(s: &str) -> bool {
    s.match_indices("(?").any(|(i, _)| {
        s[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic() || *c == '-')
            .any(|c| c == 'x')
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ident,
    Number,
    /// A `"..."`, `'c'` or raw string literal.
    Literal,
    /// The opening backtick of a backtick string.
    BacktickOpen,
    /// The `}` that closes an interpolation and resumes backtick text.
    InterpolationClose,
    Open(u8),
    Close(u8),
    /// `..` or `..=`.
    Range,
    Punct,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
    /// 1-based line and column (in characters) as Rhai counts them.
    line: usize,
    col: usize,
}

/// A cursor over the source that counts lines and columns as Rhai does.
struct Cursor<'a> {
    src: &'a str,
    at: usize,
    line: usize,
    /// Column of the last character consumed (0 before the first).
    col: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.at..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.src[self.at..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 0;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }
}

/// What the lexer is inside of, innermost last.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Nest {
    /// A bracket opened in code: `(`, `[`, `{` or `#{`.
    Bracket,
    /// The code of a `${ ... }` interpolation.
    Interpolation,
}

fn lex(src: &str) -> Vec<Token> {
    let mut cur = Cursor {
        src,
        at: 0,
        line: 1,
        col: 0,
    };
    let mut tokens = Vec::new();
    let mut nest: Vec<Nest> = Vec::new();
    while let Some(c) = cur.peek() {
        let (start, line) = (cur.at, cur.line);
        let col = cur.col + 1;
        let push = |tokens: &mut Vec<Token>, kind, end| {
            tokens.push(Token {
                kind,
                start,
                end,
                line,
                col,
            })
        };
        match c {
            _ if c.is_whitespace() => {
                cur.bump();
            }
            '/' if cur.peek2() == Some('/') => {
                while cur.peek().is_some_and(|c| c != '\n') {
                    cur.bump();
                }
            }
            '/' if cur.peek2() == Some('*') => {
                if !skip_block_comment(&mut cur) {
                    break;
                }
            }
            '"' | '\'' => {
                cur.bump();
                if !skip_quoted(&mut cur, c) {
                    break;
                }
                push(&mut tokens, Kind::Literal, cur.at);
            }
            '#' if matches!(cur.peek2(), Some('"' | '#')) => {
                if !skip_raw_string(&mut cur) {
                    break;
                }
                push(&mut tokens, Kind::Literal, cur.at);
            }
            '`' => {
                cur.bump();
                push(&mut tokens, Kind::BacktickOpen, cur.at);
                match backtick_text(&mut cur) {
                    Text::Closed => {}
                    Text::Interpolation => nest.push(Nest::Interpolation),
                    Text::Unterminated => break,
                }
            }
            '}' if nest.last() == Some(&Nest::Interpolation) => {
                nest.pop();
                cur.bump();
                // Rhai places the resumed text one column after the `}`.
                tokens.push(Token {
                    kind: Kind::InterpolationClose,
                    start,
                    end: cur.at,
                    line,
                    col: col + 1,
                });
                match backtick_text(&mut cur) {
                    Text::Closed => {}
                    Text::Interpolation => nest.push(Nest::Interpolation),
                    Text::Unterminated => break,
                }
            }
            '0'..='9' => {
                lex_number(&mut cur);
                push(&mut tokens, Kind::Number, cur.at);
            }
            _ if c == '_' || c.is_alphabetic() => {
                while cur.peek().is_some_and(|c| c == '_' || c.is_alphanumeric()) {
                    cur.bump();
                }
                push(&mut tokens, Kind::Ident, cur.at);
            }
            '.' if cur.peek2() == Some('.') => {
                cur.bump();
                cur.bump();
                cur.eat('=');
                push(&mut tokens, Kind::Range, cur.at);
            }
            '(' | '[' | '{' => {
                cur.bump();
                nest.push(Nest::Bracket);
                push(&mut tokens, Kind::Open(c as u8), cur.at);
            }
            '#' if cur.peek2() == Some('{') => {
                cur.bump();
                cur.bump();
                nest.push(Nest::Bracket);
                push(&mut tokens, Kind::Open(b'{'), cur.at);
            }
            ')' | ']' | '}' => {
                cur.bump();
                if nest.last() == Some(&Nest::Bracket) {
                    nest.pop();
                }
                push(&mut tokens, Kind::Close(c as u8), cur.at);
            }
            _ => {
                cur.bump();
                push(&mut tokens, Kind::Punct, cur.at);
            }
        }
    }
    tokens
}

/// Skips a (nestable) block comment; false if it never ends.
fn skip_block_comment(cur: &mut Cursor) -> bool {
    let mut depth = 0usize;
    loop {
        match (cur.peek(), cur.peek2()) {
            (Some('/'), Some('*')) => {
                cur.bump();
                cur.bump();
                depth += 1;
            }
            (Some('*'), Some('/')) => {
                cur.bump();
                cur.bump();
                depth -= 1;
                if depth == 0 {
                    return true;
                }
            }
            (Some(_), _) => {
                cur.bump();
            }
            (None, _) => return false,
        }
    }
}

/// Skips the rest of a `"..."` or `'c'` literal after its opening quote.
fn skip_quoted(cur: &mut Cursor, quote: char) -> bool {
    while let Some(c) = cur.bump() {
        if c == '\\' {
            cur.bump();
        } else if c == quote {
            return true;
        }
    }
    false
}

/// Skips a raw string `#"..."#` (with any number of `#`).
fn skip_raw_string(cur: &mut Cursor) -> bool {
    let mut hashes = 0;
    while cur.eat('#') {
        hashes += 1;
    }
    if !cur.eat('"') {
        return true;
    }
    while let Some(c) = cur.bump() {
        if c == '"' {
            let mut closing = 0;
            while closing < hashes && cur.eat('#') {
                closing += 1;
            }
            if closing == hashes {
                return true;
            }
        }
    }
    false
}

enum Text {
    Closed,
    Interpolation,
    Unterminated,
}

/// Skips backtick text up to its closing backtick or the next `${`,
/// mirroring Rhai: a doubled backtick is a literal one, and `\${` is a
/// literal `${`.
fn backtick_text(cur: &mut Cursor) -> Text {
    while let Some(c) = cur.bump() {
        match c {
            '`' if cur.peek() == Some('`') => {
                cur.bump();
            }
            '`' => return Text::Closed,
            '\\' if cur.peek() == Some('$') && cur.peek2() == Some('{') => {
                cur.bump();
                cur.bump();
            }
            '$' if cur.peek() == Some('{') => {
                cur.bump();
                return Text::Interpolation;
            }
            _ => {}
        }
    }
    Text::Unterminated
}

/// A number, without swallowing the `..` of `1..3`.
fn lex_number(cur: &mut Cursor) {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while cur.peek().is_some_and(word) {
        cur.bump();
    }
    if cur.peek() == Some('.') && cur.peek2().is_some_and(|c| c.is_ascii_digit()) {
        cur.bump();
        while cur.peek().is_some_and(word) {
            cur.bump();
        }
        // An exponent's sign: `1.5e-3`.
        if matches!(cur.peek(), Some('+' | '-')) && cur.src[..cur.at].ends_with(['e', 'E']) {
            cur.bump();
            while cur.peek().is_some_and(word) {
                cur.bump();
            }
        }
    }
}

fn backtick_pieces(tokens: &[Token]) -> HashSet<(usize, usize)> {
    tokens
        .iter()
        .filter(|t| matches!(t.kind, Kind::BacktickOpen | Kind::InterpolationClose))
        .map(|t| (t.line, t.col))
        .collect()
}

/// Words after which `[` opens an array literal, not an index.
const KEYWORDS: &[&str] = &[
    "in", "return", "throw", "let", "const", "if", "else", "while", "until", "loop", "do", "for",
    "switch", "fn", "private", "import", "export", "as", "break", "continue", "try", "catch",
    "true", "false",
];

/// One replacement of a token's text.
#[derive(Debug)]
struct Edit {
    token: usize,
    with: String,
    /// Inserted after the token's replacement (the `0` of `[..hi]`).
    then: &'static str,
}

/// The edits that turn each range index into a `slice` call.
fn slice_edits(src: &str, tokens: &[Token]) -> Vec<Edit> {
    let mut edits = Vec::new();
    for (k, open) in tokens.iter().enumerate() {
        if open.kind != Kind::Open(b'[') || k == 0 {
            continue;
        }
        let prev = &tokens[k - 1];
        let indexes = match prev.kind {
            Kind::Ident => !KEYWORDS.contains(&&src[prev.start..prev.end]),
            Kind::Close(b')' | b']') => true,
            _ => false,
        };
        if !indexes {
            continue;
        }
        let Some((close, ranges)) = index_contents(src, tokens, k) else {
            continue;
        };
        let [range] = ranges[..] else { continue };
        let inclusive = src[tokens[range].start..tokens[range].end].ends_with('=');
        let no_low = range == k + 1;
        let no_high = range + 1 == close;
        if no_high && inclusive {
            continue;
        }
        edits.push(Edit {
            token: k,
            with: ".slice(".into(),
            then: if no_low { "0" } else { "" },
        });
        if no_high {
            edits.push(Edit {
                token: range,
                with: String::new(),
                then: "",
            });
        }
        edits.push(Edit {
            token: close,
            with: ")".into(),
            then: "",
        });
    }
    edits
}

/// Methods that leave their receiver unchanged, so `x.f(a)` may be called
/// as `f(x, a)` with the same result.
const PURE_METHODS: &[&str] = &[
    "keys",
    "values",
    "map",
    "filter",
    "reduce",
    "reduce_rev",
    "some",
    "all",
    "index_of",
    "find",
    "find_map",
    "contains",
    "len",
    "slice",
    "head",
    "tail",
    "extract",
    "order",
    "order_by",
    "zip",
    "get",
    "items",
    "grep",
    "matches",
    "find_all",
    "count",
    "count_matches",
    "lines",
    "chunks",
    "chunk_lines",
    "parts",
    "split_on",
    "find_any",
    "documents",
];

/// Rewrites `x.keys().map(|k| x[k])` into `keys(x).map(|k| x[k])`.
///
/// A closure that captures `x` turns it into a shared value, and a method
/// chain rooted at `x` holds `x` locked while the chain runs; calling the
/// closure then fails with "Data race detected" (Rhai's `sync` closures).
/// Called as a function, `x` is passed by value and nothing stays locked.
/// Only the chain's first call is rewritten, and only for methods that do
/// not change their receiver.
fn captured_receiver_edits(src: &str, tokens: &[Token]) -> Vec<Edit> {
    let text = |t: &Token| &src[t.start..t.end];
    let mut edits = Vec::new();
    for (k, root) in tokens.iter().enumerate() {
        if root.kind != Kind::Ident || KEYWORDS.contains(&text(root)) {
            continue;
        }
        if k > 0 && matches!(text(&tokens[k - 1]), "." | ":") {
            continue;
        }
        let [dot, method, open, ..] = tokens.get(k + 1..).unwrap_or(&[]) else {
            continue;
        };
        if text(dot) != "." || method.kind != Kind::Ident || open.kind != Kind::Open(b'(') {
            continue;
        }
        if !PURE_METHODS.contains(&text(method)) {
            continue;
        }
        let Some(end) = chain_end(src, tokens, k + 3) else {
            continue;
        };
        let inside = &tokens[k + 4..end];
        let closure = inside.iter().any(|t| text(t) == "|");
        let captured = inside
            .iter()
            .any(|t| t.kind == Kind::Ident && text(t) == text(root));
        if !(closure && captured) {
            continue;
        }
        let no_arguments = tokens
            .get(k + 4)
            .is_some_and(|t| t.kind == Kind::Close(b')'));
        edits.push(Edit {
            token: k,
            with: format!("{}({}", text(method), text(root)),
            then: "",
        });
        for (token, with) in [
            (k + 1, ""),
            (k + 2, ""),
            (k + 3, if no_arguments { "" } else { ", " }),
        ] {
            edits.push(Edit {
                token,
                with: with.into(),
                then: "",
            });
        }
    }
    edits
}

/// The index of the last token of the method chain whose first call opens
/// at `open` (`x.f(` ... `).g(...)[i]...`), or `None` if unbalanced.
fn chain_end(src: &str, tokens: &[Token], open: usize) -> Option<usize> {
    let mut end = matching(tokens, open)?;
    loop {
        match tokens.get(end + 1..end + 4) {
            Some([dot, name, next])
                if &src[dot.start..dot.end] == "."
                    && name.kind == Kind::Ident
                    && next.kind == Kind::Open(b'(') =>
            {
                end = matching(tokens, end + 3)?;
            }
            _ => match tokens.get(end + 1) {
                Some(t) if t.kind == Kind::Open(b'[') => end = matching(tokens, end + 1)?,
                _ => return Some(end),
            },
        }
    }
}

/// The index of the bracket that closes the one at `open`.
fn matching(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.kind {
            Kind::Open(_) => depth += 1,
            Kind::Close(_) => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The matching `]` of the `[` at `open`, and the range operators at its
/// top level; `None` if it is unbalanced or holds a `,` or `;`.
fn index_contents(src: &str, tokens: &[Token], open: usize) -> Option<(usize, Vec<usize>)> {
    let mut depth = 0usize;
    let mut ranges = Vec::new();
    for (i, t) in tokens.iter().enumerate().skip(open + 1) {
        match t.kind {
            Kind::Open(_) => depth += 1,
            Kind::Close(b']') if depth == 0 => return Some((i, ranges)),
            Kind::Close(_) if depth == 0 => return None,
            Kind::Close(_) => depth -= 1,
            Kind::Range if depth == 0 => ranges.push(i),
            Kind::Punct if depth == 0 && matches!(&src[t.start..t.end], "," | ";") => return None,
            _ => {}
        }
    }
    None
}

type Shifts = Vec<(usize, Vec<(usize, isize)>)>;

/// Applies `edits` (sorted, on distinct tokens) and records how columns moved.
fn apply(src: &str, tokens: &[Token], edits: &[Edit]) -> (String, Shifts) {
    let mut out = String::with_capacity(src.len() + edits.len() * 8);
    let mut shifts: Shifts = Vec::new();
    let mut copied = 0;
    for edit in edits {
        let t = &tokens[edit.token];
        out.push_str(&src[copied..t.start]);
        out.push_str(&edit.with);
        out.push_str(edit.then);
        copied = t.end;
        let removed = src[t.start..t.end].chars().count() as isize;
        let added = (edit.with.len() + edit.then.len()) as isize;
        if shifts.last().map(|(l, _)| *l) != Some(t.line) {
            shifts.push((t.line, Vec::new()));
        }
        if let Some((_, points)) = shifts.last_mut() {
            let before = points.last().map_or(0, |(_, s)| *s);
            let after = before + added - removed;
            // Columns from the end of this token on, in rewritten terms.
            let end_col = t.col as isize + removed + after;
            points.push((end_col.max(1) as usize, after));
        }
    }
    out.push_str(&src[copied..]);
    (out, shifts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(code: &str) -> String {
        prepare(code).code
    }

    #[test]
    fn a_chain_whose_closure_captures_its_root_calls_the_first_method_as_a_function() {
        assert_eq!(
            rewrite("m.keys().map(|k| m[k].len())"),
            "keys(m).map(|k| m[k].len())"
        );
        assert_eq!(
            rewrite("a.filter(|x| a.contains(x)).len()"),
            "filter(a, |x| a.contains(x)).len()"
        );
        assert_eq!(
            rewrite("let s = m.keys().map(|k| `${k}=${m[k][1..3]}`);"),
            "let s = keys(m).map(|k| `${k}=${m[k].slice(1..3)}`);"
        );
        for code in [
            "m.keys().map(|k| k + 1)",
            "a.push(|| a)",
            "a.sort(|x, y| a.len())",
            "o.m.keys().map(|k| m[k])",
            "m.keys()",
            "m.len",
        ] {
            assert_eq!(rewrite(code), code, "{code}");
        }
    }

    #[test]
    fn range_indexes_become_slice_calls() {
        assert_eq!(rewrite("a[1..3]"), "a.slice(1..3)");
        assert_eq!(rewrite("a[i..=j]"), "a.slice(i..=j)");
        assert_eq!(rewrite("a[..n]"), "a.slice(0..n)");
        assert_eq!(rewrite("a[2..]"), "a.slice(2)");
        assert_eq!(rewrite("f(x)[0..2][1]"), "f(x).slice(0..2)[1]");
        assert_eq!(rewrite("a[b[0]..b[1]]"), "a.slice(b[0]..b[1])");
        assert_eq!(rewrite("m[k][1..-1]"), "m[k].slice(1..-1)");
    }

    #[test]
    fn array_literals_plain_indexes_and_strings_are_left_alone() {
        for code in [
            "let r = [1..3];",
            "for i in [0..3] {}",
            "a[1]",
            "a[i + 1]",
            "let s = \"a[1..3]\";",
            "let s = `a[1..3]`;",
            "// a[1..3]",
            "/* a[1..3] /* nested */ a[1..3] */",
            "for i in 0..3 {}",
            "let x = 1.5..3;",
            "a[..=]",
        ] {
            assert_eq!(rewrite(code), code, "{code}");
        }
    }

    #[test]
    fn ranges_inside_interpolations_are_rewritten() {
        assert_eq!(
            rewrite("`${a[1..2]} and ${b}`"),
            "`${a.slice(1..2)} and ${b}`"
        );
    }

    #[test]
    fn columns_after_a_rewrite_map_back_to_the_original() {
        let p = prepare("let x = a[1..3] + zz;");
        let zz_rewritten = p.code.find("zz").unwrap() + 1;
        let back = p.original_position(Position::new(1, zz_rewritten as u16));
        assert_eq!(
            back.position(),
            Some("let x = a[1..3] + zz;".find("zz").unwrap() + 1)
        );
        // Before the rewrite nothing moves; other lines neither.
        let before = p.original_position(Position::new(1, 5));
        assert_eq!(before.position(), Some(5));
        assert_eq!(p.original_position(Position::new(2, 9)).position(), Some(9));
    }

    /// Where Rhai's own tokenizer reports string tokens, and whether each
    /// came from a backtick string (by the character at that position).
    fn rhai_string_positions(code: &str) -> Vec<(usize, usize)> {
        use rhai::Token;
        use std::sync::{Arc, Mutex};
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut engine = rhai::Engine::new();
        let record = seen.clone();
        #[allow(deprecated)]
        engine.on_parse_token(move |token, pos, _| {
            if matches!(
                token,
                Token::StringConstant(_) | Token::InterpolatedString(_)
            ) {
                record
                    .lock()
                    .unwrap()
                    .push((pos.line().unwrap_or(0), pos.position().unwrap_or(0)));
            }
            token
        });
        engine.compile(code).unwrap();
        let v = seen.lock().unwrap().clone();
        v
    }

    #[test]
    fn backtick_pieces_are_found_where_rhai_reports_them() {
        for code in [
            "let s = `a${x}b${y}c`;",
            "let s = `a${x}`;\nlet t = `${`in${z}`}tail`;",
            "let s = `\nmulti\nline ${x} more\n`; let u = `é${x}ü`;",
            "let s = `${x}${y}`;",
            "let m = #{a: `x${ #{b: 1}.b }y`};",
            "let s = `a``b${x}`; // `not ${this}`",
            "let s = `${x}\nnext line`;",
            "let s = `${x}`;",
        ] {
            // Rhai gives an empty piece (`${x}` right before the closing
            // backtick) no position; there is nothing to unescape in it.
            let ours = prepare(code).backtick_pieces;
            for at in rhai_string_positions(code) {
                assert!(
                    at == (0, 0) || ours.contains(&at),
                    "{code}: {at:?} not in {ours:?}"
                );
            }
        }
    }

    #[test]
    fn named_escapes_become_characters_and_regex_escapes_stay() {
        assert_eq!(backtick_escapes(r"a\tb\n").as_deref(), Some("a\tb\n"));
        assert_eq!(backtick_escapes(r"\r\n").as_deref(), Some("\r\n"));
        assert_eq!(backtick_escapes(r"\d+\s\bthe\b\."), None);
        assert_eq!(backtick_escapes(r"\\."), None);
        assert_eq!(backtick_escapes(r"\\n").as_deref(), None);
        assert_eq!(backtick_escapes(r"\\\n").as_deref(), Some("\\\\\n"));
        assert_eq!(backtick_escapes(r"[^\n]+\d").as_deref(), Some("[^\n]+\\d"));
        assert_eq!(backtick_escapes(r"(?x) a \n b"), None);
        assert_eq!(backtick_escapes(r"(?ix: a \t)"), None);
        assert_eq!(backtick_escapes("plain"), None);
    }
}
