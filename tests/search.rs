//! Search results over large texts agree with a simple sequential reference.

use rlm::{Context, GrepOptions, PatternOptions, Text};

/// About 6 MiB of lines, enough to be cut into several parallel units.
fn big_text() -> String {
    let words = [
        "alpha",
        "the",
        "beta",
        "gamma",
        "théâtre",
        "delta",
        "needle",
        "x",
    ];
    let mut s = String::new();
    let mut state: u64 = 7;
    let mut line = 0;
    while s.len() < 6 << 20 {
        line += 1;
        for _ in 0..(state % 9 + 1) {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s.push_str(words[(state >> 33) as usize % words.len()]);
            s.push(' ');
        }
        s.push_str(&format!("id={line}\n"));
    }
    s
}

#[test]
fn literal_search_matches_std_over_parallel_units() {
    let s = big_text();
    let t = Text::from(s.as_str());
    let expected: Vec<usize> = s.match_indices("needle").map(|(i, _)| i).collect();
    assert!(expected.len() > 1000);
    assert_eq!(t.find_all("needle", usize::MAX).unwrap(), expected);
    assert_eq!(t.count("needle").unwrap(), expected.len());
    assert_eq!(t.find_all("needle", 5).unwrap(), expected[..5]);
    assert_eq!(t.find("needle").unwrap(), Some(expected[0]));
    assert_eq!(
        t.find_from("needle", expected[10] + 1).unwrap(),
        Some(expected[11])
    );
    assert!(t.contains("id=1000\n").unwrap());
    assert!(!t.contains("not present anywhere").unwrap());
    // A needle with a newline takes the sequential path and is still exact.
    let crossing: Vec<usize> = s.match_indices("x id=").map(|(i, _)| i).collect();
    assert_eq!(t.find_all("x id=", usize::MAX).unwrap(), crossing);
    let nl: Vec<usize> = s.match_indices("\nthe ").map(|(i, _)| i).collect();
    assert_eq!(t.find_all("\nthe ", usize::MAX).unwrap(), nl);
}

#[test]
fn self_overlapping_needles_count_like_python() {
    let t = Text::from("aaaa\naaa\n");
    assert_eq!(t.count("aa").unwrap(), 3);
    assert_eq!(t.find_all("aa", 10).unwrap(), vec![0, 2, 5]);
}

#[test]
fn regex_matches_and_lines_agree_with_a_sequential_scan() {
    let s = big_text();
    let t = Text::from(s.as_str());
    let re = regex::Regex::new(r"(?m)id=(\d+)7$").unwrap();
    let expected: Vec<(usize, String)> = re
        .captures_iter(&s)
        .map(|c| (c.get(0).unwrap().start(), c[1].to_string()))
        .collect();
    let got = t.matches(r"id=(\d+)7$", usize::MAX).unwrap();
    assert_eq!(got.len(), expected.len());
    let (mut counted_to, mut line_no) = (0, 1);
    for (m, (start, group)) in got.iter().zip(&expected) {
        assert_eq!(m.start, *start);
        assert_eq!(m.groups[0].as_ref().unwrap().to_string(), *group);
        line_no += s[counted_to..*start].matches('\n').count();
        counted_to = *start;
        assert_eq!(m.line, line_no);
        assert!(t
            .line(m.line)
            .unwrap()
            .to_string()
            .ends_with(&m.text.to_string()));
    }
    assert_eq!(t.count_matches(r"id=\d+7$").unwrap(), expected.len());
    assert!(t.is_match(r"id=12345\b").unwrap());
    assert!(!t.is_match(r"id=x").unwrap());
}

#[test]
fn frequent_word_counts_agree_with_the_regex_crate() {
    let s = big_text();
    let t = Text::from(s.as_str());
    let ascii = regex::Regex::new(r"(?-u:\b)the(?-u:\b)")
        .unwrap()
        .find_iter(&s)
        .count();
    assert_eq!(t.count_matches(r"\bthe\b").unwrap(), ascii);
    let unicode = regex::Regex::new(r"\bth\w+").unwrap().find_iter(&s).count();
    let opts = PatternOptions {
        unicode_word_boundary: true,
        ..Default::default()
    };
    assert_eq!(t.count_matches((r"\bth\w+", opts)).unwrap(), unicode);
    // Empty matches at unit boundaries are counted once.
    for anchor in ["^", "$", "^$", r"\b"] {
        let expected = regex::Regex::new(&format!("(?m){anchor}"))
            .unwrap()
            .find_iter(&s)
            .count();
        let pattern = if anchor == r"\b" { r"(?-u:\b)" } else { anchor };
        let expected = if anchor == r"\b" {
            regex::Regex::new(pattern).unwrap().find_iter(&s).count()
        } else {
            expected
        };
        assert_eq!(t.count_matches(anchor).unwrap(), expected, "{anchor}");
    }
    assert_eq!(
        t.grep("^", &GrepOptions::default()).unwrap().len(),
        t.line_count()
    );
    // A pattern that can cross lines is searched sequentially and stays exact.
    let crossing = regex::Regex::new(r"7\nthe").unwrap().find_iter(&s).count();
    assert_eq!(t.count_matches(r"7\nthe").unwrap(), crossing);
}

#[test]
fn grep_reports_each_matching_line_once_with_context() {
    let s = big_text();
    let t = Text::from(s.as_str());
    let hits = t.grep(r"id=\d*999$", &GrepOptions::default()).unwrap();
    let re = regex::Regex::new(r"id=\d*999$").unwrap();
    let expected: Vec<(usize, &str)> = s
        .lines()
        .enumerate()
        .filter(|(_, l)| re.is_match(l))
        .map(|(i, l)| (i + 1, l))
        .collect();
    assert_eq!(hits.len(), expected.len());
    for (h, (n, line)) in hits.iter().zip(&expected) {
        assert_eq!(h.line, *n);
        assert_eq!(h.text.to_string(), *line);
        assert_eq!(t.line(h.line).unwrap(), h.text);
    }
    let opts = GrepOptions {
        before: 1,
        after: 2,
        max: Some(3),
        ..Default::default()
    };
    let ctx_hits = t.grep(r"id=\d*999$", &opts).unwrap();
    assert_eq!(ctx_hits.len(), 3);
    assert_eq!(
        ctx_hits[0].context,
        t.lines(hits[0].line - 1, hits[0].line + 2)
    );
    let many = t
        .grep(
            "the",
            &GrepOptions {
                max: Some(10),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(many.len(), 10);
    assert!(many.windows(2).all(|w| w[0].line < w[1].line));
}

#[test]
fn case_insensitive_grep() {
    let t = Text::from("Error one\nerror two\nERROR three\nfine\n");
    let opts = GrepOptions {
        case_insensitive: true,
        ..Default::default()
    };
    assert_eq!(t.grep("error", &opts).unwrap().len(), 3);
    assert_eq!(t.grep("error", &GrepOptions::default()).unwrap().len(), 1);
}

#[test]
fn find_any_reports_needle_index_and_order() {
    let s = big_text();
    let t = Text::from(s.as_str());
    let needles: Vec<String> = (0..100).map(|i| format!("id={}0\n", i * 37)).collect();
    let needles_no_nl: Vec<String> = (0..100).map(|i| format!("id={}0 ", i * 37)).collect();
    let hits = t.find_any(&needles, usize::MAX).unwrap();
    assert!(!hits.is_empty());
    for h in &hits {
        assert_eq!(&s[h.start..h.end], needles[h.needle]);
    }
    assert!(hits.windows(2).all(|w| w[0].start < w[1].start));
    assert!(t.find_any(&needles_no_nl, usize::MAX).unwrap().is_empty());
    let words = t.find_any(&["gamma", "delta"], usize::MAX).unwrap();
    assert_eq!(
        words.len(),
        s.matches("gamma").count() + s.matches("delta").count()
    );
}

#[test]
fn invalid_regex_is_an_error_not_a_panic() {
    let t = Text::from("abc");
    let err = t.matches("a(b", 10).unwrap_err();
    assert!(matches!(err, rlm::Error::Regex { .. }));
    assert!(t.count_matches("[z-a]").is_err());
    assert!(t.grep("*", &GrepOptions::default()).is_err());
}

#[test]
fn views_report_offsets_relative_to_themselves() {
    let t = Text::from("zero\none\ntwo\nthree\n");
    let v = t.lines(2, 3);
    assert_eq!(v.to_string(), "one\ntwo\n");
    assert_eq!(v.start(), 5);
    assert_eq!(v.line_count(), 2);
    let m = v.matches("two", 10).unwrap();
    assert_eq!((m[0].start, m[0].line), (4, 2));
    assert_eq!(v.line(m[0].line).unwrap().to_string(), "two");
    // A view starting mid-line treats the partial line as its line 1.
    let mid = t.slice(2, 12);
    assert_eq!(mid.line(1).unwrap().to_string(), "ro");
    assert_eq!(
        mid.grep("^", &GrepOptions::default()).unwrap()[0]
            .text
            .to_string(),
        "ro"
    );
}

#[test]
fn searches_stop_when_interrupted() {
    let s = big_text();
    let t = Text::from(s.as_str())
        .with_interrupt(Some(rlm::Interrupt::new(|| Some("cell time limit".into()))));
    let err = t.count_matches("the").unwrap_err();
    assert!(err.to_string().contains("cell time limit"), "{err}");
    // Views derived from an interrupted view inherit it.
    assert!(t.slice(0, 3 << 20).count("the").is_err());
}

#[test]
fn searches_across_documents_of_a_multi_file_context() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1.txt"), "needle in one").unwrap();
    std::fs::write(dir.path().join("2.txt"), "two\nneedle in two\n").unwrap();
    let ctx = Context::open(&[dir.path()]).unwrap();
    let t = ctx.text();
    let m = t.matches("needle in (\\w+)", 10).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].text.name(), "1.txt");
    assert_eq!(m[1].text.name(), "2.txt");
    assert_eq!(t.line(m[1].line).unwrap().to_string(), "needle in two");
    assert_eq!(t.count("\n").unwrap(), t.to_string().matches('\n').count());
    let docs = t.split_on(r"(?m)^==> .* <==\n").unwrap();
    assert_eq!(
        docs.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        ["needle in one\n", "two\nneedle in two\n"]
    );
}

#[test]
fn find_any_with_many_needles_agrees_with_aho_corasick() {
    // Over 64 needles the search switches engines; results must not change,
    // including leftmost-first preference among overlapping needles.
    let s = big_text();
    let t = Text::from(s.as_str());
    let mut needles: Vec<String> = vec![
        "the".into(),
        "theatre".into(),
        "th".into(),
        "alpha beta".into(),
        "id=12".into(),
        "id=1".into(),
    ];
    needles.extend((0..80).map(|i| format!("id={}7 ", i * 13)));
    needles.push("the".into()); // a duplicate reports the first index
    let ac = aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostFirst)
        .build(&needles)
        .unwrap();
    let expected: Vec<(usize, usize, usize)> = ac
        .find_iter(s.as_bytes())
        .map(|m| (m.pattern().as_usize(), m.start(), m.end()))
        .collect();
    let got: Vec<(usize, usize, usize)> = t
        .find_any(&needles, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|m| (m.needle, m.start, m.end))
        .collect();
    assert!(expected.len() > 10_000);
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "first difference at {:?}",
        got.iter().zip(&expected).position(|(a, b)| a != b)
    );
    assert_eq!(t.find_any(&needles, 7).unwrap().len(), 7);
}

#[test]
fn bounded_word_counts_agree_with_the_regex_crate_on_edge_cases() {
    // `\bWORD\b` is counted by a memmem fast path; it must agree with the
    // regex engine everywhere: overlaps, underscores, digits, non-ASCII
    // neighbours, line and unit boundaries.
    let pieces = [
        "the",
        "thethe",
        "the_",
        "_the",
        "the1",
        "1the",
        "éthe",
        "theé",
        "the.",
        "(the)",
        "\r\nthe\r\n",
        "the\n",
        "Theo",
        "them",
        "the the",
    ];
    let mut s = String::new();
    let mut state: u64 = 3;
    while s.len() < 5 << 20 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s.push_str(pieces[(state >> 33) as usize % pieces.len()]);
        s.push(if state % 7 == 0 { '\n' } else { ' ' });
    }
    let t = Text::from(s.as_str());
    for word in ["the", "the1", "_the"] {
        let pattern = format!(r"\b{word}\b");
        let expected = regex::Regex::new(&format!(r"(?-u:\b){word}(?-u:\b)"))
            .unwrap()
            .find_iter(&s)
            .count();
        assert!(expected > 1000, "{word}");
        assert_eq!(
            t.count_matches(pattern.as_str()).unwrap(),
            expected,
            "{word}"
        );
        assert_eq!(
            t.matches(pattern.as_str(), usize::MAX).unwrap().len(),
            expected,
            "{word}"
        );
    }
}

/// Found by the `text_ops` fuzz target: an empty view has one position, and
/// the regex engine matches `^`, `$` and the empty pattern there.
#[test]
fn empty_views_have_one_match_position_like_the_regex_engine() {
    let empty = Text::from("");
    for pattern in ["", "^", "$", "^$", "x*"] {
        let found: Vec<(usize, usize)> = empty
            .matches(pattern, 10)
            .unwrap()
            .iter()
            .map(|m| (m.start, m.end))
            .collect();
        assert_eq!(found, vec![(0, 0)], "pattern {pattern:?}");
        assert_eq!(empty.count_matches(pattern).unwrap(), 1);
    }
    assert!(empty.matches("a", 10).unwrap().is_empty());
    // An empty slice in the middle of a text is an empty view too.
    let mid = Text::from("ab\ncd\n").slice(3, 3);
    assert_eq!(mid.matches("^", 10).unwrap().len(), 1);
}

/// Found by the `text_ops` fuzz target: the end of a text that ends in a
/// newline was reported as a line past the last one.
#[test]
fn offsets_and_matches_at_the_very_end_are_on_the_last_line() {
    let t = Text::from("alpha\nbeta\n");
    assert_eq!(t.line_count(), 2);
    assert_eq!(t.line_of(t.len()), 2);
    assert_eq!(t.line_of(6), 2);
    assert_eq!(t.line_of(5), 1);
    let ends: Vec<(usize, usize)> = t
        .matches("$", 10)
        .unwrap()
        .iter()
        .map(|m| (m.start, m.line))
        .collect();
    assert_eq!(ends, vec![(5, 1), (10, 2), (11, 2)]);
    assert_eq!(Text::from("").line_of(0), 1);
}

/// Found by the `text_ops` fuzz target: a needle or pattern that can match a
/// newline was searched one document at a time, so a match running from one
/// document into the next header was missed, and `\A` matched at every
/// document's start. Searches now agree with the text as printed.
#[test]
fn newline_patterns_match_across_document_boundaries_like_the_printed_text() {
    let ctx = Context::from_documents([
        ("a.txt".to_string(), b"one\ntwo".to_vec()),
        ("b.txt".to_string(), b"\x10three\n".to_vec()),
        ("c.txt".to_string(), b"four\n".to_vec()),
    ]);
    let text = ctx.text();
    let printed = text.to_string();
    for needle in ["\n\x10", "two\n==>", "<==\nfour", "\n"] {
        assert_eq!(
            text.count(needle).unwrap(),
            printed.matches(needle).count(),
            "count({needle:?})"
        );
        assert_eq!(
            text.find_all(needle, 100).unwrap(),
            printed
                .match_indices(needle)
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        );
    }
    for pattern in [
        r"two\s+==>",
        r"\A\w+",
        r"<==\n\w+",
        r"(?s)one.*four",
        r"\w+\z",
    ] {
        let reference = regex::Regex::new(&format!("(?m){pattern}")).unwrap();
        let expected: Vec<(usize, usize)> = reference
            .find_iter(&printed)
            .map(|m| (m.start(), m.end()))
            .collect();
        let found: Vec<(usize, usize)> = text
            .matches(pattern, 100)
            .unwrap()
            .iter()
            .map(|m| (m.start, m.end))
            .collect();
        assert_eq!(found, expected, "{pattern}");
        assert_eq!(
            text.count_matches(pattern).unwrap(),
            expected.len(),
            "{pattern}"
        );
    }
}

/// Found by the `text_ops` fuzz target: after a document without a final
/// newline, the header's added newline began a new piece, and `^` matched
/// there as if at a line start. Pieces now always start at line starts.
#[test]
fn line_anchors_and_word_boundaries_agree_with_the_printed_text_across_documents() {
    let big = "word line\n".repeat(150_000); // 1.5 MiB: searched in parallel pieces
    let ctx = Context::from_documents([
        (
            "a".to_string(),
            format!("{big}ends without newline").into_bytes(),
        ),
        ("b".to_string(), b"x".to_vec()),
        ("c".to_string(), format!("{big}ends with CR\r").into_bytes()),
        ("d".to_string(), b"".to_vec()),
        ("e".to_string(), format!("{big}last").into_bytes()),
    ]);
    let text = ctx.text();
    let printed = text.to_string();
    for pattern in [r"^", r"$", r"^$", r"\b", r"\B", r"^\w*$", r"line$", r"^==>"] {
        let reference = regex::bytes::RegexBuilder::new(pattern)
            .multi_line(true)
            .crlf(true)
            .build()
            .unwrap();
        let expected = reference.find_iter(printed.as_bytes()).count();
        assert_eq!(text.count_matches(pattern).unwrap(), expected, "{pattern}");
        let found: Vec<usize> = text
            .matches(pattern, usize::MAX)
            .unwrap()
            .iter()
            .map(|m| m.start)
            .collect();
        let want: Vec<usize> = reference
            .find_iter(printed.as_bytes())
            .map(|m| m.start())
            .collect();
        assert_eq!(found, want, "{pattern}");
    }
    // Each document still reads back whole.
    assert_eq!(ctx.documents()[1].to_string(), "x");
    assert!(ctx.documents()[2].to_string().ends_with("ends with CR\r"));
}

/// Needles with a newline walk the segments with a window at each boundary
/// (no copy of the view); an occurrence may span a one-byte document and
/// both headers around it.
#[test]
fn newline_needles_spanning_several_segments_are_found_once_in_order() {
    let ctx = Context::from_documents([
        ("a".to_string(), b"one\n\n".to_vec()),
        ("b".to_string(), b"\n".to_vec()),
        ("c".to_string(), b"\n\ntwo\n\n\n".to_vec()),
        ("d".to_string(), b"three".to_vec()),
    ]);
    let text = ctx.text();
    let printed = text.to_string();
    for needle in [
        "<==\n\n==>",
        "\n\n",
        "\n\n\n",
        "\n==>",
        "two\n\n\n==> d",
        "\n",
    ] {
        let expected: Vec<usize> = printed.match_indices(needle).map(|(i, _)| i).collect();
        assert_eq!(
            text.find_all(needle, usize::MAX).unwrap(),
            expected,
            "{needle:?}"
        );
        assert_eq!(text.count(needle).unwrap(), expected.len(), "{needle:?}");
        assert_eq!(text.find(needle).unwrap(), expected.first().copied());
        assert_eq!(text.contains(needle).unwrap(), !expected.is_empty());
        // A limit stops early; a view starting mid-text still agrees.
        assert_eq!(
            text.find_all(needle, 2).unwrap(),
            expected[..expected.len().min(2)]
        );
        let tail = text.slice(5, text.len());
        let from_5: Vec<usize> = printed[5..].match_indices(needle).map(|(i, _)| i).collect();
        assert_eq!(
            tail.find_all(needle, usize::MAX).unwrap(),
            from_5,
            "{needle:?} from 5"
        );
    }
}
