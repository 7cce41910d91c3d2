//! Multi-literal search with aho-corasick.

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
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(kept.iter().map(|&(_, n)| n))
            .map_err(|e| {
                Error::InvalidArgument(format!("cannot build the multi-needle matcher: {e}"))
            })?;
        let split = kept.iter().all(|(_, n)| !n.contains(&b'\n'));
        let raw = self.search_units(split, limit, |unit, limit| {
            ac.find_iter(unit.bytes)
                .take(limit)
                .map(|m| {
                    (
                        kept[m.pattern().as_usize()].0,
                        unit.start + m.start(),
                        unit.start + m.end(),
                    )
                })
                .collect()
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
