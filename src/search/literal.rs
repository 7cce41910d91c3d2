//! Literal search with `memchr::memmem`.
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
        self.count_units(splits(needle), |unit| finder.find_iter(unit.bytes).count())
    }
}
