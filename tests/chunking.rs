//! Chunking: exact coverage, UTF-8 safety and the documented cut rules,
//! with property tests.

use proptest::prelude::*;
use rlm::Text;

fn concat(views: &[Text]) -> Vec<u8> {
    views.iter().flat_map(|v| v.bytes().into_owned()).collect()
}

fn is_boundary(bytes: &[u8], i: usize) -> bool {
    i == 0 || i >= bytes.len() || (bytes[i] & 0xC0) != 0x80
}

#[test]
fn chunks_cut_after_the_last_newline_in_the_window() {
    let t = Text::from("aaa\nbbb\nccc\nddd");
    let c: Vec<String> = t
        .chunks(9, 0)
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(c, ["aaa\nbbb\n", "ccc\nddd"]);
    // No newline in the window: cut at a character boundary.
    let t = Text::from("ééééé");
    let c: Vec<String> = t
        .chunks(3, 0)
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(c, ["é", "é", "é", "é", "é"]);
    // A size smaller than one character still makes progress.
    assert_eq!(Text::from("日本").chunks(1, 0).unwrap().len(), 2);
}

#[test]
fn chunks_with_overlap_repeat_the_tail_of_the_previous_chunk() {
    let t = Text::from("0123456789abcdefghij");
    let c: Vec<String> = t
        .chunks(10, 3)
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(c, ["0123456789", "789abcdefg", "efghij"]);
    assert!(t.chunks(10, 10).is_err());
    assert!(t.chunks(0, 0).is_err());
}

#[test]
fn chunk_lines_and_parts() {
    let t = Text::from("1\n2\n3\n4\n5\n");
    let c: Vec<String> = t
        .chunk_lines(2)
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(c, ["1\n2\n", "3\n4\n", "5\n"]);
    let p = t.parts(2).unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(concat(&p), t.bytes().as_ref());
    assert!(p.iter().all(|v| v.bytes().ends_with(b"\n")));
    // One huge line cannot be cut: one part comes back.
    assert_eq!(Text::from("x".repeat(100)).parts(4).unwrap().len(), 1);
    assert!(t.parts(0).is_err());
    assert!(t.chunk_lines(0).is_err());
}

#[test]
fn split_on_drops_separators_and_empty_pieces() {
    let t = Text::from("--a--b----c--");
    let s: Vec<String> = t
        .split_on("-+")
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(s, ["a", "b", "c"]);
    let paras = Text::from("p1 l1\np1 l2\n\n\np2\n")
        .split_on(r"\n\n+")
        .unwrap();
    assert_eq!(paras.len(), 2);
}

fn text_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Mostly text with multi-byte characters and newlines.
        proptest::collection::vec(
            prop_oneof![
                Just("a"),
                Just("é"),
                Just("日本"),
                Just("\n"),
                Just("🦀"),
                Just(" ")
            ],
            0..200
        )
        .prop_map(|v| v.concat().into_bytes()),
        // Arbitrary bytes, invalid UTF-8 included.
        proptest::collection::vec(any::<u8>(), 0..300),
    ]
}

proptest! {
    #[test]
    fn chunks_without_overlap_concatenate_to_the_input(bytes in text_strategy(), size in 1usize..64) {
        let t = Text::from_bytes(bytes.clone());
        let chunks = t.chunks(size, 0).unwrap();
        prop_assert_eq!(concat(&chunks), bytes.clone());
        for c in &chunks {
            prop_assert!(!c.is_empty());
            // At most `size`, unless one character is larger than `size`.
            prop_assert!(c.len() <= size.max(4));
            prop_assert!(is_boundary(&bytes, c.start()) || std::str::from_utf8(&bytes).is_err());
        }
    }

    #[test]
    fn chunks_with_overlap_cover_the_input_in_order(bytes in text_strategy(), size in 2usize..64, overlap in 0usize..32) {
        prop_assume!(overlap < size);
        let t = Text::from_bytes(bytes.clone());
        let chunks = t.chunks(size, overlap).unwrap();
        let mut covered = 0;
        for c in &chunks {
            prop_assert!(c.start() <= covered, "gap before {}", c.start());
            prop_assert!(c.end() > covered);
            covered = c.end();
        }
        prop_assert_eq!(covered, bytes.len());
    }

    #[test]
    fn line_chunks_and_parts_concatenate_to_the_input(bytes in text_strategy(), n in 1usize..10, k in 1usize..10) {
        let t = Text::from_bytes(bytes.clone());
        prop_assert_eq!(concat(&t.chunk_lines(n).unwrap()), bytes.clone());
        let parts = t.parts(k).unwrap();
        prop_assert!(parts.len() <= k);
        prop_assert_eq!(concat(&parts), bytes.clone());
    }

    #[test]
    fn slicing_never_splits_a_character_and_clamps(s in "\\PC{0,40}", a in 0usize..200, b in 0usize..200) {
        let t = Text::from(s.as_str());
        let v = t.slice(a, b);
        prop_assert!(v.start() <= v.end());
        prop_assert!(v.end() <= s.len());
        prop_assert!(s.is_char_boundary(v.start()) && s.is_char_boundary(v.end()));
        prop_assert_eq!(v.to_string(), s[v.start()..v.end()].to_string());
        prop_assert!(s.is_char_boundary(t.head(a).end()));
        prop_assert!(s.is_char_boundary(t.tail(a).start()));
    }

    #[test]
    fn offsets_round_trip_through_lines(bytes in text_strategy()) {
        let t = Text::from_bytes(bytes.clone());
        let lines: Vec<&[u8]> = if bytes.is_empty() { vec![] } else {
            let mut v: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
            if bytes.ends_with(b"\n") { v.pop(); }
            v
        };
        prop_assert_eq!(t.line_count(), lines.len());
        let mut at = 0;
        for (i, line) in lines.iter().enumerate() {
            let l = t.line(i + 1).unwrap();
            let terminated = at + line.len() < bytes.len();
            let content = if terminated { line.strip_suffix(b"\r").unwrap_or(line) } else { line };
            prop_assert_eq!(l.bytes().into_owned(), content.to_vec());
            prop_assert_eq!(t.line_of(at), i + 1);
            at += line.len() + 1;
        }
        prop_assert_eq!(t.line_views().len(), lines.len());
    }
}
