//! Multi-literal search with aho-corasick.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::error::{Error, Result};
use crate::text::Text;

/// One match of [`Text::find_any`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnyMatch {
    /// Index of the needle that matched, in the order given.
    pub needle: usize,
    /// View-relative byte offset of the match.
    pub start: usize,
    /// View-relative byte offset one past the match.
    pub end: usize,
    /// 1-based line of the match.
    pub line: usize,
}

impl Text {
    /// Up to `limit` non-overlapping matches of any of `needles`, in text
    /// order. Where needles overlap at one position, the earliest-listed
    /// needle wins. Empty needles are ignored.
    ///
    /// Cost: O(n) over the text, parallel, regardless of the number of
    /// needles; building the automaton is O(total needle length).
    ///
    /// ```
    /// let t = rlm::Text::from("apple pie\nbanana split\n");
    /// let hits = t.find_any(&["banana", "apple"], usize::MAX)?;
    /// assert_eq!((hits[0].needle, hits[0].line), (1, 1));
    /// assert_eq!((hits[1].needle, hits[1].line), (0, 2));
    /// # Ok::<(), rlm::Error>(())
    /// ```
    pub fn find_any<S: AsRef<str>>(&self, needles: &[S], limit: usize) -> Result<Vec<AnyMatch>> {
        let kept: Vec<(usize, &[u8])> = needles
            .iter()
            .enumerate()
            .map(|(i, n)| (i, n.as_ref().as_bytes()))
            .filter(|(_, n)| !n.is_empty())
            .collect();
        if kept.is_empty() {
            return Ok(Vec::new());
        }
        let split = kept.iter().all(|(_, n)| !n.contains(&b'\n'));
        let matcher = Matcher::new(&kept)?;
        let raw = self.search_units(split, limit, |unit, limit| {
            matcher.find_iter(unit.bytes, limit, |needle, start, end| {
                (needle, unit.start + start, unit.start + end)
            })
        })?;
        let lines = self.line_numbers(raw.iter().map(|&(_, s, _)| s));
        Ok(raw
            .into_iter()
            .zip(lines)
            .map(|((needle, s, e), line)| AnyMatch {
                needle,
                start: s - self.start,
                end: e - self.start,
                line,
            })
            .collect())
    }
}

/// Beyond this many needles aho-corasick loses its SIMD prefilter (Teddy
/// handles at most 64) and falls back to a plain automaton; an alternation
/// compiled by the regex crate's meta engine is then several times faster
/// (measured: 102 ms vs 16 ms for 100 needles over 64 MiB).
const AHO_CORASICK_MAX: usize = 64;

/// Leftmost-first multi-literal search: earliest match wins, and among
/// needles matching at the same position the earliest-listed one.
enum Matcher<'a> {
    Automaton {
        ac: AhoCorasick,
        kept: &'a [(usize, &'a [u8])],
    },
    /// An alternation of the escaped needles; which needle matched is found
    /// from the matched bytes (the first-listed needle with those bytes).
    Alternation {
        re: regex::bytes::Regex,
        index: HashMap<&'a [u8], usize>,
    },
}

impl<'a> Matcher<'a> {
    fn new(kept: &'a [(usize, &'a [u8])]) -> Result<Matcher<'a>> {
        let error = |e: String| {
            Error::InvalidArgument(format!("cannot build the multi-needle matcher: {e}"))
        };
        if kept.len() <= AHO_CORASICK_MAX {
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .build(kept.iter().map(|&(_, n)| n))
                .map_err(|e| error(e.to_string()))?;
            return Ok(Matcher::Automaton { ac, kept });
        }
        let alternation = kept
            .iter()
            .map(|(_, n)| regex_syntax::escape(&String::from_utf8_lossy(n)))
            .collect::<Vec<_>>()
            .join("|");
        let re = regex::bytes::RegexBuilder::new(&alternation)
            .unicode(false)
            .size_limit(256 << 20)
            .dfa_size_limit(256 << 20)
            .build()
            .map_err(|e| error(e.to_string()))?;
        let mut index = HashMap::new();
        for &(i, n) in kept {
            index.entry(n).or_insert(i);
        }
        Ok(Matcher::Alternation { re, index })
    }

    fn find_iter<T>(
        &self,
        hay: &[u8],
        limit: usize,
        mut emit: impl FnMut(usize, usize, usize) -> T,
    ) -> Vec<T> {
        match self {
            Matcher::Automaton { ac, kept } => ac
                .find_iter(hay)
                .take(limit)
                .map(|m| emit(kept[m.pattern().as_usize()].0, m.start(), m.end()))
                .collect(),
            Matcher::Alternation { re, index } => re
                .find_iter(hay)
                .filter_map(|m| {
                    index
                        .get(m.as_bytes())
                        .map(|&i| emit(i, m.start(), m.end()))
                })
                .take(limit)
                .collect(),
        }
    }
}
