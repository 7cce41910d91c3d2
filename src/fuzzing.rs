//! The bodies of the fuzz targets, shared by `fuzz/` (cargo-fuzz on a
//! nightly toolchain) and `tests/fuzz_corpus.rs` (which replays the saved
//! corpus and every past crash on stable, in CI).
//!
//! Each function takes arbitrary bytes. It must not panic, hang or blow up
//! memory on any input, and it asserts the invariants callers rely on, so a
//! wrong answer is a crash too. Keeping the bodies here, rather than in the
//! fuzz crate, means the replay in CI runs exactly what the fuzzer ran.

use std::time::Duration;

use crate::driver::extract_blocks;
use crate::dsl::{Limits, SessionBuilder};
use crate::llm::wire::{error_text, parse_response};
use crate::llm::{ApiKey, Provider};
use crate::search::{GrepOptions, PatternOptions};
use crate::{Context, Pattern, Text};

/// A fuzz target's body: arbitrary bytes in, a panic on a broken invariant.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, as `fuzz/fuzz_targets/*.rs` and the corpus
/// folders name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("fences", fences),
    ("provider_response", provider_response),
    ("scrub", scrub),
    ("text_ops", text_ops),
    ("script", script),
];

/// Code-fence extraction from a model response.
///
/// Every extracted block is made of whole lines of the response, is not
/// blank, and a response without three backticks has no blocks.
pub fn fences(data: &[u8]) {
    let response = String::from_utf8_lossy(data);
    let blocks = extract_blocks(&response);
    if !response.contains("```") {
        assert!(blocks.code.is_empty() && blocks.skipped.is_empty());
    }
    let lines: std::collections::HashSet<&str> = response.lines().collect();
    for code in &blocks.code {
        assert!(!code.trim().is_empty(), "blank block extracted");
        for line in code.split('\n') {
            assert!(
                lines.contains(line),
                "block line {line:?} is not a response line"
            );
        }
    }
    for tag in &blocks.skipped {
        assert_eq!(tag, &tag.to_ascii_lowercase());
    }
}

/// Provider response parsing, in both protocols, and error-body excerpts.
///
/// Parsing returns a result for any body; an error excerpt of a body that
/// is not JSON is short.
pub fn provider_response(data: &[u8]) {
    for provider in [Provider::OpenAi, Provider::Anthropic] {
        if let Ok(completion) = parse_response(provider, data) {
            // Token counts come from the body; they are plain numbers.
            let _ = completion
                .input_tokens
                .checked_add(completion.output_tokens);
        }
    }
    let excerpt = error_text(data);
    assert!(!excerpt.is_empty());
    if serde_json::from_slice::<serde_json::Value>(data).is_err() {
        assert!(
            excerpt.chars().count() <= 303,
            "excerpt not cut: {excerpt:?}"
        );
    }
}

/// Key scrubbing: whatever a provider echoes, the key and every run of 8 of
/// its characters are gone from the scrubbed text, in any case, spread out
/// by white space, reversed, or as 16 hex digits (8 bytes).
///
/// Input: one byte giving the key's length, the key, then the text. Keys are
/// mapped onto the characters real keys use (`A-Za-z0-9_-`), at least 8 long.
/// The text's first byte also picks a transformed copy of the key to insert
/// in its middle, so every form is exercised.
pub fn scrub(data: &[u8]) {
    const KEY_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let len = (len as usize % 48 + 8).min(rest.len());
    if len < 8 {
        return;
    }
    let (key, text) = rest.split_at(len);
    let key: String = key
        .iter()
        .map(|b| KEY_CHARS[*b as usize % KEY_CHARS.len()] as char)
        .collect();
    let text = String::from_utf8_lossy(text);
    let Some(api_key) = ApiKey::new(key.clone()) else {
        return;
    };
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    let form = match text.bytes().next().unwrap_or(0) % 6 {
        0 => key.clone(),
        1 => key.to_uppercase(),
        2 => key.chars().flat_map(|c| [c, ' ']).collect(),
        3 => key.chars().rev().collect(),
        4 => hex.clone(),
        _ => key
            .chars()
            .flat_map(|c| ['\n', c])
            .collect::<String>()
            .to_uppercase(),
    };
    let mid = (0..=text.len() / 2)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let text = format!("{}{form}{}", &text[..mid], &text[mid..]);
    // Markers may spell part of a key ("redacted"); what is left outside
    // them must not.
    let scrubbed = api_key.scrub(&text).replace("[redacted]", "\0");
    assert!(!scrubbed.contains(&key), "key survived scrubbing");
    let squeezed: String = scrubbed
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    let lower = key.to_ascii_lowercase();
    let reversed: String = lower.chars().rev().collect();
    for start in 0..=key.len() - 8 {
        let fragment = &key[start..start + 8];
        assert!(
            !scrubbed.contains(fragment),
            "fragment {fragment:?} survived"
        );
        for (form, fragment) in [
            ("spread or cased", &lower[start..start + 8]),
            ("reversed", &reversed[start..start + 8]),
            ("hex", &hex[2 * start..2 * start + 16]),
        ] {
            assert!(
                !squeezed.contains(fragment),
                "{form} fragment {fragment:?} survived"
            );
        }
    }
}

/// Text operations over arbitrary bytes with arbitrary offsets, sizes and
/// patterns, on a context of one to three documents.
///
/// Input: 8 parameter bytes, then a pattern up to the first NUL, then the
/// content (cut into documents at `\x01` bytes). Results are checked
/// against the bytes they claim to cover and against the regex engine and
/// `memmem` run directly over the whole text.
pub fn text_ops(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let (params, rest) = data.split_at(8);
    let (pattern, content) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&rest[..0], rest),
    };
    let pattern = String::from_utf8_lossy(pattern);
    let docs: Vec<(String, Vec<u8>)> = content
        .split(|&b| b == 1)
        .take(3)
        .enumerate()
        .map(|(i, d)| (format!("doc{i}"), d.to_vec()))
        .collect();
    let ctx = if docs.len() == 1 {
        Context::from_bytes("doc0", content.to_vec())
    } else {
        Context::from_documents(docs)
    };
    let text = ctx.text();
    let all = text.bytes().into_owned();
    assert_eq!(all.len(), text.len());
    let p = |i: usize| params[i] as usize;

    check_views(
        &text,
        &all,
        p(0) * 7 % (all.len() + 2),
        p(1) * 7 % (all.len() + 2),
    );
    check_lines(&text, &all, p(2), p(3));
    check_literals(&text, &all, &pattern);
    check_regex(&text, &all, &pattern, params[4]);
    check_chunks(&text, &all, p(5) + 1, p(6) % (p(5) + 1), p(7) % 9 + 1);
    for doc in ctx.documents() {
        assert_eq!(&all[doc.start()..doc.end()], &*doc.bytes());
    }
}

fn check_views(text: &Text, all: &[u8], a: usize, b: usize) {
    let view = text.slice(a, b);
    assert!(view.start() <= view.end() && view.end() <= all.len());
    assert_eq!(&*view.bytes(), &all[view.start()..view.end()]);
    // A cut never lands inside a UTF-8 sequence that is valid around it.
    if std::str::from_utf8(all).is_ok() {
        assert!(std::str::from_utf8(&view.bytes()).is_ok());
    }
    let head = text.head(a);
    assert_eq!(&*head.bytes(), &all[..head.len()]);
    let tail = text.tail(b);
    assert_eq!(&*tail.bytes(), &all[all.len() - tail.len()..]);
    let _ = view.to_str_lossy();
}

fn check_lines(text: &Text, all: &[u8], n: usize, m: usize) {
    let count = text.line_count();
    let newlines = memchr::memchr_iter(b'\n', all).count();
    let expected = newlines + usize::from(!all.is_empty() && all.last() != Some(&b'\n'));
    assert_eq!(count, expected, "line count");
    if let Some(line) = text.line(n % (count + 2)) {
        assert!(!line.bytes().contains(&b'\n'));
        let _ = text.line_of(line.start());
    }
    let span = text.lines(n % (count + 2), m % (count + 2));
    assert_eq!(&*span.bytes(), &all[span.start()..span.end()]);
    let offset = n * 13 % (all.len() + 1);
    let expected = memchr::memchr_iter(b'\n', &all[..offset]).count() + 1;
    assert_eq!(
        text.line_of(offset),
        expected.min(count.max(1)),
        "line_of({offset})"
    );
}

fn check_literals(text: &Text, all: &[u8], needle: &str) {
    let Ok(found) = text.find_all(needle, 1000) else {
        return;
    };
    for &at in &found {
        assert_eq!(&all[at..at + needle.len()], needle.as_bytes());
    }
    if !needle.is_empty() {
        let reference = memchr::memmem::find_iter(all, needle.as_bytes()).count();
        if let Ok(n) = text.count(needle) {
            assert_eq!(n, reference, "count of {needle:?}");
        }
        assert_eq!(text.contains(needle).ok(), Some(reference > 0));
        assert_eq!(text.find(needle).ok().flatten(), found.first().copied());
    }
    let _ = text.find_any(&[needle, "a", "\n"], 100);
}

fn check_regex(text: &Text, all: &[u8], pattern: &str, flags: u8) {
    let options = PatternOptions {
        case_insensitive: flags & 1 != 0,
        unicode_word_boundary: flags & 2 != 0,
    };
    let Ok(compiled) = Pattern::new(pattern, options) else {
        return;
    };
    let Ok(matches) = text.matches(&compiled, 10_000) else {
        return;
    };
    let mut last_end = 0;
    for m in &matches {
        assert!(m.start <= m.end && m.end <= all.len() && m.start >= last_end);
        assert_eq!(&*m.text.bytes(), &all[m.start..m.end]);
        last_end = m.end;
    }
    if let Ok(n) = text.count_matches(&compiled) {
        if matches.len() < 10_000 {
            assert_eq!(n, matches.len(), "count_matches vs matches for {pattern:?}");
        }
    }
    // Documents and their headers are one text: searching it in pieces must
    // find what the regex engine finds in the whole.
    let reference: Vec<(usize, usize)> = compiled
        .regex()
        .find_iter(all)
        .take(10_000)
        .map(|m| (m.start(), m.end()))
        .collect();
    let ours: Vec<(usize, usize)> = matches.iter().map(|m| (m.start, m.end)).collect();
    assert_eq!(ours, reference, "matches of {pattern:?}");
    let grep = GrepOptions {
        before: (flags >> 2) as usize & 3,
        after: (flags >> 4) as usize & 3,
        max: Some(50),
        case_insensitive: false,
    };
    if let Ok(hits) = text.grep_pattern(&compiled, &grep) {
        let count = text.line_count();
        for hit in hits {
            assert!(hit.line >= 1 && hit.line <= count.max(1));
        }
    }
    if let Ok(pieces) = text.split_on(&compiled) {
        for piece in pieces {
            assert_eq!(&*piece.bytes(), &all[piece.start()..piece.end()]);
        }
    }
}

fn check_chunks(text: &Text, all: &[u8], size: usize, overlap: usize, k: usize) {
    if let Ok(chunks) = text.chunks(size, 0) {
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.bytes().into_owned()).collect();
        assert_eq!(joined, all, "chunks({size}, 0) do not cover the input");
    }
    if let Ok(chunks) = text.chunks(size, overlap) {
        if let (Some(first), Some(last)) = (chunks.first(), chunks.last()) {
            assert_eq!(first.start(), 0);
            assert_eq!(last.end(), all.len());
        }
        for pair in chunks.windows(2) {
            assert!(pair[1].start() > pair[0].start(), "chunks do not progress");
            assert!(pair[1].start() <= pair[0].end(), "chunks leave a gap");
        }
    }
    for pieces in [text.chunk_lines(k), text.parts(k)].into_iter().flatten() {
        let joined: Vec<u8> = pieces.iter().flat_map(|c| c.bytes().into_owned()).collect();
        assert_eq!(joined, all);
    }
}

/// Arbitrary Rhai source in a sandboxed session over a small context.
///
/// Limits are tight so each input runs in milliseconds; whatever the script
/// does, the cell ends (with or without an error) and the session still runs
/// another cell.
/// The memory limit of a fuzzed session.
const MEMORY: usize = 64 << 20;

pub fn script(data: &[u8]) {
    let source = String::from_utf8_lossy(data);
    let ctx = Context::from_string("doc", "alpha 1\nbeta 22\ngamma 333\nalpha again\n");
    let limits = Limits {
        max_operations: 20_000,
        cell_timeout: Duration::from_secs(2),
        max_string_bytes: 1 << 16,
        max_array_len: 10_000,
        max_map_len: 10_000,
        max_memory_bytes: MEMORY,
        ..Limits::default()
    };
    let mut session = SessionBuilder::new()
        .limits(limits)
        .query("what is there?")
        .build(&ctx);
    let outcome = session.run_cell(&source);
    assert!(
        outcome.output.chars().count() <= 20_000 + 200,
        "output not capped"
    );
    // Where the counting allocator is installed (the fuzz binary and the
    // corpus replay), what a script keeps stays near its limit: one
    // operation past it at most.
    if let Some(held) = session.shared().memory_held() {
        assert!(held <= 4 * MEMORY, "the session holds {held} bytes");
    }
    // Scripts may shadow any function, even `print`; a plain assignment
    // is what is left to show the session still works.
    let after = session.run_cell("let fuzz_probe = 6 * 7;");
    assert_eq!(after.error, None, "session broken by {source:?}");
}
