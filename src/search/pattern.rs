//! Compiling regular expressions, with the choices that keep them fast.
//!
//! Three decisions live here, in one place:
//!
//! * **Line anchors.** `^` and `$` match at line starts and ends (CRLF
//!   aware), as in grep; `\A` and `\z` match at the ends of the text.
//! * **ASCII word boundaries.** The regex crate's fast DFA cannot evaluate a
//!   Unicode `\b` on non-ASCII text and falls back to an engine two orders of
//!   magnitude slower (a model's innocent `\w+ing\b` went from GB/s to about
//!   20 MB/s on mixed text). We therefore rewrite `\b` and `\B` to their
//!   ASCII forms unless the caller asks for Unicode boundaries. `\w`, `\d`
//!   and `\s` stay Unicode: they do not have the problem.
//! * **Splittability.** A pattern that can match a newline could match
//!   across the line-aligned points where a parallel search splits the
//!   text. Such patterns get the extra automata of [`super::crossing`],
//!   which search them in parallel pieces with exact results; a pattern
//!   with `\A`/`\z` depends on the view's true ends and is searched over
//!   the whole view on one thread.
//!
//! Compiled patterns are cached, because scripts call the same pattern on
//! thousands of chunks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use regex::bytes::{Regex, RegexBuilder};
use regex_syntax::hir::{Class, Hir, HirKind, Look};

use crate::error::{Error, Result};

use super::class_run::ClassRun;
use super::crossing::Crossing;

/// How a pattern is compiled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PatternOptions {
    /// Match letters regardless of case.
    pub case_insensitive: bool,
    /// Keep `\b`/`\B` Unicode-aware. Correct for non-Latin scripts, but up to
    /// 100x slower on text containing non-ASCII bytes.
    pub unicode_word_boundary: bool,
}

/// A compiled pattern and what it implies for parallel search.
#[derive(Debug)]
pub struct Pattern {
    pub(crate) regex: Regex,
    /// Whether a match could span a line break (or needs the whole text).
    pub(crate) crosses_lines: bool,
    /// For `\bWORD\b` with ASCII boundaries and a word of ASCII word
    /// characters only: the word, so counting can use `memmem` plus a
    /// one-byte check on each side (about 2x the regex engine on frequent
    /// words). Exact: an occurrence starting inside another has a word
    /// character before it, so it could never match, and skipping it as
    /// `memmem`'s non-overlapping search does changes nothing.
    pub(crate) bounded_word: Option<Vec<u8>>,
    /// For `C+D` or `C*D` with the ending bytes `D` outside the class `C`:
    /// the shape, so counting is `memchr` over `D` and a look back.
    pub(crate) class_run: Option<ClassRun>,
    /// For a pattern that crosses lines but does not need the text's true
    /// ends: the automata that search it in parallel pieces (`crossing`).
    pub(crate) crossing: Option<Box<Crossing>>,
}

impl Pattern {
    /// Compiles `pattern`, reusing a cached compilation when there is one.
    pub fn new(pattern: &str, options: PatternOptions) -> Result<Arc<Pattern>> {
        const CACHE_CAPACITY: usize = 256;
        type Cache = Mutex<HashMap<(String, PatternOptions), Arc<Pattern>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let key = (pattern.to_string(), options);
        if let Some(p) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(p);
        }
        let compiled = Arc::new(Pattern::compile(pattern, options)?);
        if let Ok(mut c) = cache.lock() {
            if c.len() >= CACHE_CAPACITY {
                c.clear();
            }
            c.insert(key, compiled.clone());
        }
        Ok(compiled)
    }

    fn compile(pattern: &str, options: PatternOptions) -> Result<Pattern> {
        let source = if options.unicode_word_boundary {
            pattern.to_string()
        } else {
            ascii_word_boundaries(pattern)
        };
        let error = |message: String| Error::Regex {
            pattern: pattern.to_string(),
            message,
        };
        let regex = RegexBuilder::new(&source)
            .multi_line(true)
            .crlf(true)
            .case_insensitive(options.case_insensitive)
            .size_limit(64 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .map_err(|e| error(e.to_string()))?;
        let hir = regex_syntax::ParserBuilder::new()
            .multi_line(true)
            .crlf(true)
            .case_insensitive(options.case_insensitive)
            .utf8(false)
            .build()
            .parse(&source)
            .map_err(|e| error(e.to_string()))?;
        let crosses_lines = can_cross_lines(&hir);
        let crossing = (crosses_lines && !uses_text_ends(&hir))
            .then(|| Crossing::new(&source, &hir, options.case_insensitive))
            .flatten()
            .map(Box::new);
        Ok(Pattern {
            regex,
            crosses_lines,
            bounded_word: bounded_word(&hir, options),
            class_run: ClassRun::from_hir(&hir),
            crossing,
        })
    }

    /// The underlying regex.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

/// The word of a pattern that is exactly ASCII `\b`, a literal of ASCII word
/// characters, ASCII `\b`, matched case-sensitively.
fn bounded_word(hir: &Hir, options: PatternOptions) -> Option<Vec<u8>> {
    if options.case_insensitive {
        return None;
    }
    let HirKind::Concat(parts) = hir.kind() else {
        return None;
    };
    let [first, middle, last] = parts.as_slice() else {
        return None;
    };
    let is_ascii_boundary = |h: &Hir| matches!(h.kind(), HirKind::Look(Look::WordAscii));
    if !(is_ascii_boundary(first) && is_ascii_boundary(last)) {
        return None;
    }
    match middle.kind() {
        HirKind::Literal(lit) if !lit.0.is_empty() && lit.0.iter().all(|&b| is_word_byte(b)) => {
            Some(lit.0.to_vec())
        }
        _ => None,
    }
}

/// An ASCII word character, as `(?-u:\b)` sees it.
pub(crate) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// True if the pattern can match `\n` or depends on the text's true ends.
fn can_cross_lines(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Empty => false,
        HirKind::Literal(lit) => lit.0.contains(&b'\n'),
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .any(|r| r.start() <= '\n' && '\n' <= r.end()),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .any(|r| r.start() <= b'\n' && b'\n' <= r.end()),
        HirKind::Look(look) => matches!(look, Look::Start | Look::End),
        HirKind::Repetition(rep) => can_cross_lines(&rep.sub),
        HirKind::Capture(cap) => can_cross_lines(&cap.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(can_cross_lines),
    }
}

/// True if the pattern uses `\A` or `\z`, which only the whole view can decide.
fn uses_text_ends(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Look(look) => matches!(look, Look::Start | Look::End),
        HirKind::Repetition(rep) => uses_text_ends(&rep.sub),
        HirKind::Capture(cap) => uses_text_ends(&cap.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(uses_text_ends),
        _ => false,
    }
}

/// Rewrites `\b` and `\B` outside character classes to `(?-u:\b)` and `(?-u:\B)`.
fn ascii_word_boundaries(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut class_depth = 0usize;
    // Just after `[` or `[^`, a `]` is a literal, not the class's end.
    let mut class_start = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('b') if class_depth == 0 && chars.peek() == Some(&'{') => {
                    // `\b{start}` and friends: keep the braces inside the group.
                    out.push_str("(?-u:\\b");
                    for c in chars.by_ref() {
                        out.push(c);
                        if c == '}' {
                            break;
                        }
                    }
                    out.push(')');
                }
                Some(b @ ('b' | 'B')) if class_depth == 0 => {
                    out.push_str(if b == 'b' { "(?-u:\\b)" } else { "(?-u:\\B)" });
                }
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            '[' => {
                out.push(c);
                class_depth += 1;
                class_start = true;
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
                continue;
            }
            ']' if class_depth > 0 && !class_start => {
                class_depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
        class_start = false;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_boundaries_become_ascii_outside_classes() {
        assert_eq!(ascii_word_boundaries(r"\bthe\b"), r"(?-u:\b)the(?-u:\b)");
        assert_eq!(ascii_word_boundaries(r"\Bx\\b"), r"(?-u:\B)x\\b");
        assert_eq!(ascii_word_boundaries(r"[]\b]\b"), r"[]\b](?-u:\b)");
        assert_eq!(ascii_word_boundaries(r"[^]a]\b"), r"[^]a](?-u:\b)");
    }

    #[test]
    fn splittability_is_detected() {
        let p = |s: &str| {
            Pattern::new(s, PatternOptions::default())
                .unwrap()
                .crosses_lines
        };
        assert!(!p(r"\bthe\b"));
        assert!(!p(r"^Date: (\d+)$"));
        assert!(!p(r"foo.*bar"));
        assert!(p(r"foo\nbar"));
        assert!(p(r"a\s+b"));
        assert!(p(r"[^,]+"));
        assert!(p(r"\Aheader"));
        assert!(p(r"(?s)a.b"));
    }

    #[test]
    fn bounded_words_are_recognised_only_when_the_fast_path_is_exact() {
        let w = |s: &str, ci: bool| {
            let opts = PatternOptions {
                case_insensitive: ci,
                ..Default::default()
            };
            Pattern::new(s, opts).unwrap().bounded_word.clone()
        };
        assert_eq!(w(r"\bthe\b", false), Some(b"the".to_vec()));
        assert_eq!(w(r"\bid_42\b", false), Some(b"id_42".to_vec()));
        assert_eq!(w(r"\bthe\b", true), None);
        assert_eq!(w(r"\bNew York\b", false), None);
        assert_eq!(w(r"\bthe", false), None);
        assert_eq!(w(r"the\b", false), None);
        assert_eq!(w(r"\bthé\b", false), None);
        let unicode = PatternOptions {
            unicode_word_boundary: true,
            ..Default::default()
        };
        assert_eq!(
            Pattern::new(r"\bthe\b", unicode).unwrap().bounded_word,
            None
        );
    }

    #[test]
    fn invalid_patterns_are_typed_errors() {
        let err = Pattern::new("(unclosed", PatternOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("invalid regex \"(unclosed\""), "{msg}");
        assert!(msg.contains("unclosed group"), "{msg}");
    }
}
