//! Counting `C+d`: a run of one class ended by a byte outside it.
//!
//! Models count fields and records with patterns such as `[^,]+,`,
//! `[^:]+:`, `\w+;` or `[^\n]*\n`. Their matches are dense (one every few
//! dozen bytes), so even the forward automaton spends most of a count on
//! per-byte steps: `[^,]+,` took 17 instructions a byte, and Python's `re`
//! came within 3x of us. Where the class `C` and the ending bytes `D` are
//! disjoint, a sequential leftmost-first scan has a simpler description:
//!
//! * with `C+`, there is one match for each `D` byte whose preceding
//!   character is in `C`. The greedy run cannot swallow a `D`, a shorter
//!   run would be followed by a `C` character rather than a `D`, and the
//!   previous match ended at a `D`, which is not in `C`, so the run before
//!   the next `D` lies wholly after it;
//! * with `C*`, every `D` byte ends exactly one match.
//!
//! So a count is `memchr` over the ending bytes and a look at one character
//! before each hit, about one instruction a byte. When `C` is a Unicode
//! class, that character is decoded backwards with UTF-8's own rules: a
//! byte that is not part of a valid encoding of a character in `C` is not
//! in the run, exactly as the regex engine treats it.

use regex_syntax::hir::{Class, Hir, HirKind};

/// The pattern `C+D` or `C*D`, where `D` is one to three ASCII bytes not in
/// the class `C`.
#[derive(Debug)]
pub(crate) struct ClassRun {
    run: RunClass,
    /// The bytes that end a match, one to three of them.
    ends: Vec<u8>,
    /// Whether the run may be empty (`C*`).
    may_be_empty: bool,
}

/// The class of the run.
#[derive(Debug)]
enum RunClass {
    /// A byte class (`(?-u:...)`).
    Bytes(Box<[bool; 256]>),
    /// A class of characters: an ASCII table, and the ranges for the rest.
    Unicode {
        ascii: Box<[bool; 128]>,
        ranges: Vec<(char, char)>,
    },
}

impl ClassRun {
    /// Recognises the shape in a parsed pattern, or `None`.
    pub(crate) fn from_hir(hir: &Hir) -> Option<ClassRun> {
        let HirKind::Concat(parts) = unwrap_captures(hir).kind() else {
            return None;
        };
        let [run, end] = parts.as_slice() else {
            return None;
        };
        let HirKind::Repetition(rep) = unwrap_captures(run).kind() else {
            return None;
        };
        if rep.max.is_some() || rep.min > 1 {
            return None;
        }
        let HirKind::Class(class) = unwrap_captures(&rep.sub).kind() else {
            return None;
        };
        let run = RunClass::new(class);
        let ends = ending_bytes(unwrap_captures(end))?;
        if ends.iter().any(|&b| run.contains_ascii(b)) {
            return None;
        }
        Some(ClassRun {
            run,
            ends,
            may_be_empty: rep.min == 0,
        })
    }

    /// The number of matches ending in `bytes`, a piece of the searched text
    /// preceded by `before` (its last bytes, at most 4, empty at the start).
    pub(crate) fn count(&self, before: &[u8], bytes: &[u8]) -> usize {
        let counted = |i: usize| self.may_be_empty || self.run.ends_before(before, bytes, i);
        match *self.ends.as_slice() {
            [a] => memchr::memchr_iter(a, bytes)
                .filter(|&i| counted(i))
                .count(),
            [a, b] => memchr::memchr2_iter(a, b, bytes)
                .filter(|&i| counted(i))
                .count(),
            [a, b, c] => memchr::memchr3_iter(a, b, c, bytes)
                .filter(|&i| counted(i))
                .count(),
            _ => 0,
        }
    }
}

impl RunClass {
    fn new(class: &Class) -> RunClass {
        match class {
            Class::Bytes(c) => {
                let mut table = Box::new([false; 256]);
                for r in c.ranges() {
                    for b in r.start()..=r.end() {
                        table[usize::from(b)] = true;
                    }
                }
                RunClass::Bytes(table)
            }
            Class::Unicode(c) => {
                let mut ascii = Box::new([false; 128]);
                for r in c.ranges() {
                    for ch in r.start()..=r.end().min('\x7f') {
                        ascii[ch as usize] = true;
                    }
                }
                let ranges = c.ranges().iter().map(|r| (r.start(), r.end())).collect();
                RunClass::Unicode { ascii, ranges }
            }
        }
    }

    fn contains_ascii(&self, b: u8) -> bool {
        match self {
            RunClass::Bytes(table) => table[usize::from(b)],
            RunClass::Unicode { ascii, .. } => ascii.get(usize::from(b)).copied().unwrap_or(false),
        }
    }

    /// Whether the character just before `bytes[i]` is in the class.
    fn ends_before(&self, before: &[u8], bytes: &[u8], i: usize) -> bool {
        let last = match i.checked_sub(1) {
            Some(j) => bytes.get(j).copied(),
            None => before.last().copied(),
        };
        let Some(last) = last else {
            return false;
        };
        match self {
            RunClass::Bytes(table) => table[usize::from(last)],
            RunClass::Unicode { ascii, ranges } => {
                if last.is_ascii() {
                    return ascii[usize::from(last)];
                }
                let mut tail = [0u8; 4];
                let n = last_bytes([&bytes[..i], before], &mut tail);
                decode_last(&tail[4 - n..]).is_some_and(|ch| {
                    let k = ranges.partition_point(|&(_, hi)| hi < ch);
                    ranges.get(k).is_some_and(|&(lo, _)| lo <= ch)
                })
            }
        }
    }
}

/// Fills the end of `tail` with the last bytes, at most 4, of the text
/// that `from_last` gives as consecutive slices, the last slice first;
/// returns how many.
pub(crate) fn last_bytes<'a>(
    from_last: impl IntoIterator<Item = &'a [u8]>,
    tail: &mut [u8; 4],
) -> usize {
    let mut n = 0;
    for bytes in from_last {
        for &b in bytes.iter().rev().take(4 - n) {
            n += 1;
            tail[4 - n] = b;
        }
        if n == 4 {
            break;
        }
    }
    n
}

/// The character that `tail`'s last bytes encode, if they end with a whole,
/// valid UTF-8 encoding of one.
fn decode_last(tail: &[u8]) -> Option<char> {
    let lead = tail.iter().rposition(|&b| b & 0xC0 != 0x80)?;
    std::str::from_utf8(&tail[lead..]).ok()?.chars().next()
}

/// The ending bytes of a literal or class: one to three ASCII bytes.
fn ending_bytes(hir: &Hir) -> Option<Vec<u8>> {
    let ends: Vec<u8> = match hir.kind() {
        // A literal is a sequence: only a single byte is one ending.
        HirKind::Literal(lit) if lit.0.len() == 1 => lit.0.to_vec(),
        HirKind::Class(Class::Bytes(c)) => {
            let mut v = Vec::new();
            for r in c.ranges() {
                if usize::from(r.end() - r.start()) >= 3 {
                    return None;
                }
                v.extend(r.start()..=r.end());
            }
            v
        }
        HirKind::Class(Class::Unicode(c)) => {
            let mut v = Vec::new();
            for r in c.ranges() {
                if !r.end().is_ascii() || (r.end() as u32 - r.start() as u32) >= 3 {
                    return None;
                }
                v.extend((r.start() as u8)..=(r.end() as u8));
            }
            v
        }
        _ => return None,
    };
    ((1..=3).contains(&ends.len()) && ends.iter().all(u8::is_ascii)).then_some(ends)
}

fn unwrap_captures(hir: &Hir) -> &Hir {
    match hir.kind() {
        HirKind::Capture(c) => unwrap_captures(&c.sub),
        _ => hir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(pattern: &str) -> Option<ClassRun> {
        let hir = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(pattern)
            .unwrap();
        ClassRun::from_hir(&hir)
    }

    #[test]
    fn the_shape_is_recognised_only_where_the_count_is_exact() {
        for p in [
            r"[^,]+,",
            r"[^:]*:",
            r"\w+;",
            r"([^,]+),",
            r"(?-u:[^,])+,",
            r"[^\n]+\n",
            r"\d+[,;]",
            r"[^,]+?,",
        ] {
            assert!(shape(p).is_some(), "{p} should take the class-run count");
        }
        for p in [
            r".+,",          // the run can hold the ending byte
            r"[^,]{2,},",    // a minimum length
            r"[^,]+,x",      // a longer ending
            r"[^,;]+,;",     // a longer ending of bytes outside the run
            r"[^,]+\s",      // an ending class too large
            r"[^é]+é",       // a non-ASCII ending
            r"[^,]+,|x",     // an alternation
            r"(?i)[^k]+k",   // the case fold adds the Kelvin sign to the ending
            r"[^,]{1,5},",   // a bounded run
            r"[^,]+[,\x80]", // a non-ASCII byte among the endings
        ] {
            assert!(shape(p).is_none(), "{p} must not take the class-run count");
        }
    }

    #[test]
    fn the_character_before_an_ending_is_decoded_across_the_piece_start() {
        let run = shape(r"[^,]+,").unwrap();
        // "é," with the é split between the previous piece and this one.
        assert_eq!(run.count(&[b'x', 0xC3], &[0xA9, b',']), 1);
        // A lone continuation byte is not a character: no match ends here.
        assert_eq!(run.count(b",", &[0xA9, b',']), 0);
        // An ending at the very start of the text has nothing before it.
        assert_eq!(run.count(&[], b",a,"), 1);
        assert_eq!(run.count(b"a", b",a,"), 2);
        // A surrogate's encoding is not UTF-8.
        assert_eq!(run.count(&[], &[0xED, 0xA0, 0x80, b',']), 0);
    }
}
