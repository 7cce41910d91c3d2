//! Patterns that can match a newline are searched in parallel pieces; their
//! results are exactly those of one sequential scan of the printed text,
//! across unit boundaries, document boundaries and for matches spanning
//! many lines. Units are forced small so that boundaries fall everywhere.

use proptest::prelude::*;
use regex::bytes::{Regex, RegexBuilder};
use rlm::search::for_tests::set_unit_size;
use rlm::{Context, GrepOptions, Text};

/// The patterns models write, and ones built to stress the boundaries:
/// unbounded runs, lazy multi-line blocks, empty matches, look-arounds.
const PATTERNS: &[&str] = &[
    r"\s+",
    r"[^,]+,",
    r"(?s)BEGIN.*?END",
    r"magic number[^:]*: \d+",
    r"User:\s*\d+",
    r"\s+gentle-river\s+is",
    r"\n",
    r"\n\n+",
    r"\n*",
    r"\s*",
    r"(?s).",
    r"a\s*b",
    r"$\n^",
    r"\n\b\w+",
    r"[^x]*x",
    r"(?s)x.*",
    r"(?s)x.*?\n\n",
    r"(\w+)\s+(\w+)",
    r"[^a]+a|b",
    r"\n$",
    r"==>\s+\S+",
    // Never-dying starts found as literal occurrences, one of which can
    // begin at a document's last byte and go on into the next header.
    r"(?s)(?:\n==> |BEGIN).*?END",
];

fn reference(pattern: &str) -> Regex {
    RegexBuilder::new(pattern)
        .multi_line(true)
        .crlf(true)
        .build()
        .unwrap()
}

/// The printed text and its line starts, for the sequential reference.
struct Printed {
    bytes: Vec<u8>,
}

impl Printed {
    fn line_of(&self, pos: usize) -> usize {
        let line = self.bytes[..pos].iter().filter(|&&b| b == b'\n').count() + 1;
        let lines = self.bytes.iter().filter(|&&b| b == b'\n').count()
            + usize::from(!self.bytes.is_empty() && self.bytes.last() != Some(&b'\n'));
        line.min(lines.max(1))
    }

    /// grep's sequential scan: the line of each match, then on from the
    /// end of that line or of the match, whichever is later.
    fn grep_lines(&self, re: &Regex) -> Vec<usize> {
        let b = &self.bytes;
        let mut out = Vec::new();
        let mut pos = 0;
        while pos <= b.len() {
            let Some(m) = re.find_at(b, pos) else { break };
            if m.start() == b.len() && b.last() == Some(&b'\n') {
                break;
            }
            out.push(self.line_of(m.start()));
            let le = memchr_from(b, m.start()).map_or(b.len(), |i| i + 1);
            if le == b.len() {
                break;
            }
            pos = le.max(m.end()).max(pos + 1);
        }
        out
    }
}

fn memchr_from(b: &[u8], from: usize) -> Option<usize> {
    b[from..].iter().position(|&c| c == b'\n').map(|i| from + i)
}

/// Checks every crossing search of `text` against the sequential reference.
fn check(text: &Text, pattern: &str) {
    let printed = Printed {
        bytes: text.to_string().into_bytes(),
    };
    let re = reference(pattern);
    let expected: Vec<(usize, usize)> = re
        .find_iter(&printed.bytes)
        .map(|m| (m.start(), m.end()))
        .collect();
    assert_eq!(
        text.count_matches(pattern).unwrap(),
        expected.len(),
        "count_matches({pattern:?})"
    );
    let found = text.matches(pattern, usize::MAX).unwrap();
    let spans: Vec<(usize, usize)> = found.iter().map(|m| (m.start, m.end)).collect();
    assert_eq!(spans, expected, "matches({pattern:?})");
    for (m, caps) in found.iter().zip(re.captures_iter(&printed.bytes)).take(50) {
        assert_eq!(m.line, printed.line_of(m.start), "line of {pattern:?}");
        let groups: Vec<Option<Vec<u8>>> = (1..caps.len())
            .map(|g| caps.get(g).map(|c| c.as_bytes().to_vec()))
            .collect();
        let ours: Vec<Option<Vec<u8>>> = m
            .groups
            .iter()
            .map(|g| g.as_ref().map(|t| t.to_string().into_bytes()))
            .collect();
        assert_eq!(ours, groups, "groups of {pattern:?}");
    }
    let limited = text.matches(pattern, 3).unwrap();
    assert_eq!(
        limited.iter().map(|m| (m.start, m.end)).collect::<Vec<_>>(),
        expected.iter().take(3).copied().collect::<Vec<_>>(),
        "matches({pattern:?}, 3)"
    );
    assert_eq!(
        text.is_match(pattern).unwrap(),
        !expected.is_empty(),
        "is_match({pattern:?})"
    );
    let grep: Vec<usize> = text
        .grep(pattern, &GrepOptions::default())
        .unwrap()
        .iter()
        .map(|h| h.line)
        .collect();
    assert_eq!(
        grep,
        printed.grep_lines(&re),
        "grep({pattern:?}) on {:?}",
        String::from_utf8_lossy(&printed.bytes[..printed.bytes.len().min(80)])
    );
    let pieces: Vec<String> = text
        .split_on(pattern)
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    let s = String::from_utf8_lossy(&printed.bytes).into_owned();
    let mut reference_pieces = Vec::new();
    let mut at = 0;
    for m in re.find_iter(&printed.bytes).filter(|m| !m.is_empty()) {
        if m.start() > at {
            reference_pieces.push(s[at..m.start()].to_string());
        }
        at = m.end();
    }
    if s.len() > at {
        reference_pieces.push(s[at..].to_string());
    }
    assert_eq!(pieces, reference_pieces, "split_on({pattern:?})");
}

/// Lines of words with the markers of the benchmark corpus, blocks that run
/// over many lines, blank lines and runs of spaces.
fn corpus(lines: usize, seed: u64) -> String {
    let words = [
        "the",
        "river",
        "gentle-river",
        "is",
        "a",
        "b",
        "x",
        "magic",
        "number",
        "User:",
        "BEGIN",
        "END",
        "==>",
        "",
        "  ",
        ",",
        "7",
    ];
    let mut state = seed;
    let mut s = String::new();
    for i in 0..lines {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        match (state >> 33) % 23 {
            0 => s.push_str("magic number of the day: 42"),
            1 => s.push_str("User: 17"),
            2 => s.push_str("BEGIN block"),
            3 => s.push_str("END"),
            4 => s.push_str(" gentle-river\n is"),
            5 => {}
            _ => {
                for _ in 0..(state >> 40) % 7 {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    s.push_str(words[(state >> 33) as usize % words.len()]);
                    s.push(if (state >> 50) % 5 == 0 { ',' } else { ' ' });
                }
            }
        }
        if i % 97 == 0 {
            s.push_str("\r\n");
        } else {
            s.push('\n');
        }
    }
    s
}

#[test]
fn crossing_patterns_agree_with_a_sequential_scan_across_unit_boundaries() {
    let text = Text::from(corpus(3000, 11));
    for unit in [1, 13, 200, 4096] {
        set_unit_size(Some(unit));
        for pattern in PATTERNS {
            check(&text, pattern);
        }
    }
    set_unit_size(None);
}

#[test]
fn crossing_patterns_agree_with_a_sequential_scan_across_document_boundaries() {
    let docs: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| {
            let mut body = corpus(40 + i * 17, i as u64).into_bytes();
            if i % 3 == 1 {
                body.pop(); // a document without a final newline
            }
            if i % 4 == 2 {
                body.extend_from_slice(b"BEGIN open block\n  \n"); // closed in a later document
            }
            if i == 5 {
                body.clear();
            }
            (format!("doc{i}.txt"), body)
        })
        .collect();
    let ctx = Context::from_documents(docs);
    let text = ctx.text();
    for unit in [1, 64, 1 << 20] {
        set_unit_size(Some(unit));
        for pattern in PATTERNS {
            check(&text, pattern);
            // A view that starts and ends inside documents.
            check(&text.slice(100, text.len() - 50), pattern);
        }
    }
    set_unit_size(None);
}

#[test]
fn matches_spanning_many_lines_and_units_are_found_whole() {
    let mut s = String::new();
    for block in 0..5 {
        s.push_str(&format!("BEGIN {block}\n"));
        for line in 0..(block * 300) {
            s.push_str(&format!("line {line} of block {block}\n"));
        }
        s.push_str("END\n");
    }
    s.push_str("BEGIN never closed\nmore\n");
    let text = Text::from(s.as_str());
    set_unit_size(Some(512));
    check(&text, r"(?s)BEGIN.*?END");
    check(&text, r"(?s)BEGIN.*END");
    check(&text, r"[^,]+,"); // no comma anywhere: no match, one long scan
    check(&text, r"(?s)BEGIN [0-3]\n.*?END");
    set_unit_size(None);
}

#[test]
fn empty_views_and_tiny_texts_behave_like_the_regex_crate() {
    set_unit_size(Some(1));
    for s in ["", "\n", "\n\n", "a", "a\n", " \n ", "x\n\nx"] {
        for pattern in PATTERNS {
            check(&Text::from(s), pattern);
        }
    }
    set_unit_size(None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn crossing_searches_agree_with_a_sequential_scan_on_random_texts(
        docs in proptest::collection::vec("[ab, x\n]{0,40}", 1..4),
        pattern in proptest::sample::select(PATTERNS.to_vec()),
        unit in 1usize..24,
    ) {
        set_unit_size(Some(unit));
        let ctx = Context::from_documents(
            docs.iter().enumerate().map(|(i, d)| (format!("{i}"), d.as_bytes().to_vec())),
        );
        check(&ctx.text(), pattern);
        check(&Text::from(docs.concat()), pattern);
    }

    /// Units long enough to hold many more matches than a counting unit
    /// keeps, so that counts go through the forward-only count.
    #[test]
    fn dense_counts_agree_with_a_sequential_scan(
        docs in proptest::collection::vec("[ab, x\n]{0,1500}", 1..4),
        pattern in proptest::sample::select(PATTERNS.to_vec()),
        unit in 40usize..400,
    ) {
        set_unit_size(Some(unit));
        let ctx = Context::from_documents(
            docs.iter().enumerate().map(|(i, d)| (format!("{i}"), d.as_bytes().to_vec())),
        );
        check(&ctx.text(), pattern);
        check(&Text::from(docs.concat()), pattern);
    }
}

/// `C+D` counts (`[^,]+,`, `\w+;`) take memchr over the ending bytes and a
/// look at the character before each; Unicode classes decode it backwards.
const CLASS_RUNS: &[&str] = &[
    r"[^,]+,",
    r"[^,]*,",
    r"(?-u:[^,])+,",
    r"\w+;",
    r"[^:\n]+:",
    r"\d+[,;]",
    r"(?i)[^x]+x",
    r"([^é,]+),",
    // Near misses that must keep the general path: a two-byte ending.
    r"[^,;]+,;",
];

/// Counts `pattern` in `text` and in the reference over its printed bytes.
fn check_count(text: &Text, pattern: &str) {
    let bytes = text.bytes();
    let expected = reference(pattern).find_iter(&bytes).count();
    assert_eq!(
        text.count_matches(pattern).unwrap(),
        expected,
        "count_matches({pattern:?}) on {:?}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
    );
}

#[test]
fn class_run_counts_agree_on_multibyte_and_invalid_utf8_at_every_cut() {
    // Each character before a comma is whole, split or broken: é, €, an
    // emoji, a lone continuation byte, a truncated lead, an encoded
    // surrogate, an overlong form and a byte that is never UTF-8.
    let before_comma: &[&[u8]] = &[
        "é".as_bytes(),
        "€".as_bytes(),
        "😀".as_bytes(),
        b"a\xA9",
        b"a\xE2\x82",
        b"\xED\xA0\x80",
        b"\xC0\xAC",
        b"\xFF",
        b"7",
        b"",
        b"\n",
        b"x",
        b"X;",
    ];
    let mut body = Vec::new();
    for round in 0..40 {
        for (i, piece) in before_comma.iter().enumerate() {
            body.extend_from_slice(piece);
            body.push([b',', b';', b':', b','][(i + round) % 4]);
            if (i * 7 + round) % 5 == 0 {
                body.push(b'\n');
            }
        }
    }
    let docs: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            let from = i * body.len() / 6;
            let to = (i + 1) * body.len() / 6 + i % 2;
            (format!("d{i}"), body[from..to.min(body.len())].to_vec())
        })
        .collect();
    let ctx = Context::from_documents(docs);
    let one = Text::from_bytes(body.clone());
    for unit in [1, 2, 3, 5, 64, 1 << 20] {
        set_unit_size(Some(unit));
        for pattern in CLASS_RUNS {
            check_count(&one, pattern);
            check_count(&one.slice(3, one.len() - 2), pattern);
            check_count(&ctx.text(), pattern);
            check_count(&ctx.text().slice(5, ctx.text().len() - 1), pattern);
        }
    }
    set_unit_size(None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn class_run_counts_agree_on_random_bytes(
        docs in proptest::collection::vec(
            proptest::collection::vec(
                proptest::sample::select(vec![
                    b'a', b',', b';', b'x', b'\n', b'7', 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xFF, 0x80,
                ]),
                0..40,
            ),
            1..4,
        ),
        pattern in proptest::sample::select(CLASS_RUNS.to_vec()),
        unit in 1usize..8,
    ) {
        set_unit_size(Some(unit));
        let ctx = Context::from_documents(
            docs.iter().enumerate().map(|(i, d)| (format!("{i}"), d.clone())),
        );
        check_count(&ctx.text(), pattern);
        check_count(&Text::from_bytes(docs.concat()), pattern);
        set_unit_size(None);
    }
}
