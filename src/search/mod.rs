//! Search over [`Text`] views: literal, regex, grep and multi-literal.
//!
//! Every search runs through one driver. The view is cut into *units* of a
//! few megabytes, each ending just after a newline and each inside one
//! storage segment; units are searched in parallel with rayon and their
//! results concatenated in order. Because a unit always starts at a line
//! start, a match that stays within a line is found exactly once, by
//! exactly one unit, with the same look-around context as a sequential
//! scan. Patterns that can match a newline are searched in the same units
//! by `crossing`, which stitches matches that run across a cut or a
//! document boundary so that the results are exactly a sequential scan's.
//! Patterns that need the whole text (`\A`, `\z`) are searched over the
//! whole view as one contiguous haystack instead (see [`pattern`]), on one
//! thread, a view spanning several documents copied once for it. Needles
//! with a newline walk the segments with a small window at each boundary
//! instead (`literal`).
//!
//! Between units the driver polls the view's [`Interrupt`](crate::Interrupt).

mod class_run;
mod crossing;
mod literal;
mod multi;
pub mod pattern;
mod regex_ops;

use rayon::prelude::*;

use crate::error::Result;
use crate::text::Text;

pub use multi::AnyMatch;
pub use pattern::{Pattern, PatternOptions};
pub use regex_ops::{GrepHit, GrepOptions, IntoPattern, Match};

/// Target size of a unit of parallel work.
const UNIT: usize = 4 << 20;
/// Views smaller than this are searched on the calling thread.
const PARALLEL_MIN: usize = 1 << 20;

/// The unit size in use: [`UNIT`] unless a test asked for smaller units.
static UNIT_SIZE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(UNIT);

/// Only for tests: knobs that make the parallel search's unit boundaries
/// fall where a test can see them. Results never depend on them.
#[doc(hidden)]
pub mod for_tests {
    use std::sync::atomic::Ordering;

    /// Cuts views into units of about `bytes` (at least 1) from now on,
    /// in every thread; `None` restores the default.
    pub fn set_unit_size(bytes: Option<usize>) {
        super::UNIT_SIZE.store(bytes.unwrap_or(super::UNIT).max(1), Ordering::Relaxed);
    }
}

/// A contiguous, line-aligned stretch of a view.
#[derive(Clone, Copy)]
pub(crate) struct Unit<'a> {
    /// Global offset of `bytes[0]`.
    pub start: usize,
    pub bytes: &'a [u8],
    /// Whether this unit ends where the view ends.
    pub last: bool,
}

impl Unit<'_> {
    /// Whether a match at unit-relative `[start, end)` belongs to this unit.
    ///
    /// An empty match at a unit's very end (`^` or `$` after its final
    /// newline) is the next unit's empty match at its start; only the last
    /// unit reports it.
    #[inline]
    pub fn owns(&self, start: usize, end: usize) -> bool {
        start < self.bytes.len() || start != end || self.last
    }
}

/// Views at least this large are searched as one haystack on a thread of
/// their own, so that the caller can stop waiting (see [`Text::detached`]).
const DETACH_MIN: usize = 8 << 20;

impl Text {
    /// Runs a one-haystack search of this view so that its interrupt still
    /// binds: the regex engine cannot be stopped inside one call, and a
    /// pattern that can match a newline scans a large view in one call.
    /// Such a search runs on a thread of its own while the caller polls the
    /// interrupt; when it fires, the caller returns at once and the scan
    /// finishes unobserved (it holds only a view and its own results).
    /// Small views, and views nobody can interrupt, are searched here.
    pub(crate) fn detached<T: Send + 'static>(
        &self,
        search: impl FnOnce(&Text) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        // The search sees the view without its interrupt, which also tells
        // the search functions that they are already detached.
        let view = self.clone().with_interrupt(None);
        let Some(interrupt) = self.interrupt.clone().filter(|_| self.len() >= DETACH_MIN) else {
            return search(&view);
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("rlm-scan".into())
            .spawn(move || {
                let _ = tx.send(search(&view));
            });
        if let Err(e) = spawned {
            return Err(crate::Error::InvalidArgument(format!(
                "cannot start a thread for the search: {e}"
            )));
        }
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(20)) {
                Ok(result) => return result,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(crate::Error::Interrupted("the search thread failed".into()))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(reason) = interrupt.check() {
                        return Err(crate::Error::Interrupted(reason));
                    }
                }
            }
        }
    }

    /// Cuts the view into line-aligned units of about [`UNIT`] bytes, each
    /// inside one storage segment.
    fn split_units(&self) -> Vec<Unit<'_>> {
        let unit = UNIT_SIZE.load(std::sync::atomic::Ordering::Relaxed);
        let mut units = Vec::new();
        for (start, piece) in self.pieces() {
            if piece.len() < PARALLEL_MIN.min(unit) {
                units.push(Unit {
                    start,
                    bytes: piece,
                    last: false,
                });
                continue;
            }
            let mut at = 0;
            while at < piece.len() {
                let nominal = at + unit;
                let to = if nominal >= piece.len() {
                    piece.len()
                } else {
                    memchr::memchr(b'\n', &piece[nominal..])
                        .map_or(piece.len(), |i| nominal + i + 1)
                };
                units.push(Unit {
                    start: start + at,
                    bytes: &piece[at..to],
                    last: false,
                });
                at = to;
            }
        }
        if units.is_empty() {
            // An empty view still has one position: `^`, `$` and the empty
            // pattern match there, as they do for the regex engine itself.
            units.push(Unit {
                start: self.start,
                bytes: &[],
                last: true,
            });
        }
        if let Some(u) = units.last_mut() {
            u.last = true;
        }
        units
    }

    /// Runs `f` over the view's units: line-aligned pieces searched in
    /// parallel when `split`, else the whole view as one contiguous unit.
    ///
    /// A needle or pattern that can match a newline may match across a
    /// document boundary (the headers between documents are text too), so it
    /// needs the view in one piece: borrowed within one segment, copied once
    /// when the view spans several.
    fn with_units<R>(&self, split: bool, f: impl FnOnce(&[Unit<'_>]) -> R) -> R {
        if split {
            return f(&self.split_units());
        }
        let whole = self.bytes();
        f(&[Unit {
            start: self.start,
            bytes: &whole,
            last: true,
        }])
    }

    /// Runs `search` over every unit in parallel and concatenates the results
    /// in text order, stopping early once `limit` results are in hand.
    pub(crate) fn search_units<T, F>(&self, split: bool, limit: usize, search: F) -> Result<Vec<T>>
    where
        T: Send,
        F: Fn(Unit<'_>, usize) -> Vec<T> + Sync,
    {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.with_units(split, |units| self.search_in_waves(units, limit, &search))
    }

    /// [`Text::search_units`] over given units.
    fn search_in_waves<T, F>(&self, units: &[Unit<'_>], limit: usize, search: &F) -> Result<Vec<T>>
    where
        T: Send,
        F: Fn(Unit<'_>, usize) -> Vec<T> + Sync,
    {
        let mut out = Vec::new();
        // Waves of units keep a small `limit` cheap on a huge text while
        // still keeping every core busy.
        let wave = if limit == usize::MAX {
            units.len().max(1)
        } else {
            rayon::current_num_threads() * 4
        };
        for group in units.chunks(wave) {
            let results: Vec<Result<Vec<T>>> = group
                .par_iter()
                .map(|&unit| {
                    self.check_interrupt()?;
                    Ok(search(unit, limit))
                })
                .collect();
            for r in results {
                let mut found = r?;
                let room = limit - out.len();
                found.truncate(room);
                out.append(&mut found);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// Sums `count` over every unit in parallel.
    pub(crate) fn count_units<F>(&self, split: bool, count: F) -> Result<usize>
    where
        F: Fn(Unit<'_>) -> usize + Sync,
    {
        self.with_units(split, |units| {
            units
                .par_iter()
                .map(|&unit| {
                    self.check_interrupt()?;
                    Ok(count(unit))
                })
                .sum()
        })
    }

    /// True if `test` holds for any unit; stops early.
    pub(crate) fn any_unit<F>(&self, split: bool, test: F) -> Result<bool>
    where
        F: Fn(Unit<'_>) -> bool + Sync,
    {
        self.with_units(split, |units| {
            units
                .par_iter()
                .map(|&unit| {
                    self.check_interrupt()?;
                    Ok(test(unit))
                })
                .find_any(|r: &Result<bool>| !matches!(r, Ok(false)))
                .unwrap_or(Ok(false))
        })
    }

    /// Converts global offsets of results to 1-based view line numbers.
    ///
    /// `starts` must be sorted; one pass over the line index serves them all.
    pub(crate) fn line_numbers(&self, starts: impl Iterator<Item = usize>) -> Vec<usize> {
        let idx = self.store.lines();
        let first = idx.newlines_before(&self.store, self.start);
        // An empty match after the final newline is on the last line, not
        // on a line that does not exist.
        let last = self.line_count().max(1);
        starts
            .map(|pos| (idx.newlines_before(&self.store, pos) - first + 1).min(last))
            .collect()
    }
}
