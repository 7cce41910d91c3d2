//! Literal search with `memchr::memmem`.
//!
//! A needle with a newline may straddle the boundary between two
//! documents' storage; such searches walk the segments in order with a
//! small window at each boundary instead of copying the view.
//!
//! Like every search, these return `Err` only when the view's
//! [`Interrupt`](crate::Interrupt) fires.

use memchr::memmem::Finder;

use crate::error::Result;
use crate::text::Text;

/// A needle without a newline cannot straddle a line-aligned split point.
fn splits(needle: &[u8]) -> bool {
    !needle.contains(&b'\n')
}

impl Text {
    /// Whether a search for `needle` must walk the segments itself: the
    /// needle can straddle a segment boundary and the view has one.
    fn straddles(&self, needle: &[u8]) -> bool {
        !splits(needle) && self.pieces().nth(1).is_some()
    }

    /// Calls `found` with the global offset of each non-overlapping
    /// occurrence of a needle that may straddle segment boundaries, in text
    /// order, until it returns false.
    ///
    /// Each segment is searched in place and each boundary through a window
    /// of `needle.len() - 1` bytes on either side, carrying the scan's
    /// position across: the result is that of one scan over the whole view,
    /// without copying it. Polls the interrupt between segments.
    fn for_each_straddling(
        &self,
        finder: &Finder,
        mut found: impl FnMut(usize) -> bool,
    ) -> Result<()> {
        let len = finder.needle().len();
        let pieces: Vec<(usize, &[u8])> = self.pieces().collect();
        // The next occurrence may start here or later (global offset).
        let mut resume = self.start;
        for (i, &(start, bytes)) in pieces.iter().enumerate() {
            self.check_interrupt()?;
            let end = start + bytes.len();
            let from = resume.saturating_sub(start).min(bytes.len());
            for at in finder.find_iter(&bytes[from..]) {
                let pos = start + from + at;
                resume = pos + len;
                if !found(pos) {
                    return Ok(());
                }
            }
            // An occurrence that starts in this piece's last `len - 1` bytes
            // and ends in the pieces after it.
            let lo = resume.max(end.saturating_sub(len - 1)).max(start);
            if lo >= end || i + 1 == pieces.len() {
                continue;
            }
            let mut window = bytes[lo - start..].to_vec();
            let mut need = len - 1;
            for &(_, next) in &pieces[i + 1..] {
                let take = need.min(next.len());
                window.extend_from_slice(&next[..take]);
                need -= take;
                if need == 0 {
                    break;
                }
            }
            if let Some(at) = finder.find(&window).filter(|&at| lo + at < end) {
                resume = lo + at + len;
                if !found(lo + at) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// View-relative offset of the first occurrence of `needle`.
    ///
    /// An empty needle is found at 0. Cost: O(n), parallel.
    pub fn find(&self, needle: &str) -> Result<Option<usize>> {
        self.find_from(needle, 0)
    }

    /// First occurrence of `needle` at or after view-relative offset `from`.
    pub fn find_from(&self, needle: &str, from: usize) -> Result<Option<usize>> {
        let rest = self.slice(from, self.len());
        let offset = rest.start - self.start;
        if needle.is_empty() {
            return Ok(Some(offset));
        }
        Ok(rest.find_all(needle, 1)?.first().map(|&p| p + offset))
    }

    /// Offsets of up to `limit` non-overlapping occurrences of `needle`, in
    /// order. An empty needle matches nothing. Cost: O(n), parallel; stops
    /// early once `limit` are found.
    pub fn find_all(&self, needle: &str, limit: usize) -> Result<Vec<usize>> {
        let needle = needle.as_bytes();
        if needle.is_empty() {
            return Ok(Vec::new());
        }
        let finder = Finder::new(needle);
        let base = self.start;
        if self.straddles(needle) {
            let mut out = Vec::new();
            if limit > 0 {
                self.for_each_straddling(&finder, |pos| {
                    out.push(pos - base);
                    out.len() < limit
                })?;
            }
            return Ok(out);
        }
        self.search_units(splits(needle), limit, |unit, limit| {
            finder
                .find_iter(unit.bytes)
                .take(limit)
                .map(|i| unit.start + i - base)
                .collect()
        })
    }

    /// Whether `needle` occurs. An empty needle always does.
    pub fn contains(&self, needle: &str) -> Result<bool> {
        if needle.is_empty() {
            return Ok(true);
        }
        let finder = Finder::new(needle.as_bytes());
        if self.straddles(needle.as_bytes()) {
            let mut any = false;
            self.for_each_straddling(&finder, |_| {
                any = true;
                false
            })?;
            return Ok(any);
        }
        self.any_unit(splits(needle.as_bytes()), |unit| {
            finder.find(unit.bytes).is_some()
        })
    }

    /// Number of non-overlapping occurrences of `needle` (as Python's
    /// `str.count`, except that an empty needle counts 0). Cost: O(n), parallel.
    pub fn count(&self, needle: &str) -> Result<usize> {
        let needle = needle.as_bytes();
        if needle.is_empty() {
            return Ok(0);
        }
        let finder = Finder::new(needle);
        if self.straddles(needle) {
            let mut n = 0;
            self.for_each_straddling(&finder, |_| {
                n += 1;
                true
            })?;
            return Ok(n);
        }
        self.count_units(splits(needle), |unit| finder.find_iter(unit.bytes).count())
    }
}
