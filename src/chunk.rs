//! Cutting a [`Text`] into pieces for fan-out, always as views.
//!
//! Every chunker here returns views in text order. Without overlap, the
//! chunks of [`Text::chunks`], [`Text::chunk_lines`] and [`Text::parts`]
//! concatenate exactly to the input, and no chunk boundary splits a UTF-8
//! character.

use crate::error::{Error, Result};
use crate::text::boundary::floor_boundary;
use crate::text::Text;

impl Text {
    /// Chunks of at most `size` bytes, each overlapping the previous by about
    /// `overlap` bytes. A chunk ends just after the last newline inside its
    /// window when there is one, otherwise at a character boundary.
    ///
    /// Cost: O(number of chunks) plus a backwards newline scan per chunk;
    /// no text is copied.
    ///
    /// ```
    /// let t = rlm::Text::from("aaaa\nbbbb\ncccc\n");
    /// let c = t.chunks(12, 0)?;
    /// assert_eq!(c.iter().map(|c| c.to_string()).collect::<Vec<_>>(), ["aaaa\nbbbb\n", "cccc\n"]);
    /// # Ok::<(), rlm::Error>(())
    /// ```
    pub fn chunks(&self, size: usize, overlap: usize) -> Result<Vec<Text>> {
        if size == 0 {
            return Err(Error::InvalidArgument(
                "chunk size must be at least 1 byte".into(),
            ));
        }
        if overlap >= size {
            return Err(Error::InvalidArgument(format!(
                "chunk overlap ({overlap}) must be smaller than the chunk size ({size})"
            )));
        }
        let mut out = Vec::with_capacity(self.len() / size + 1);
        let mut start = self.start;
        // End of the previous chunk: each chunk must reach past it.
        let mut covered = self.start;
        while start < self.end {
            let window_end = start.saturating_add(size);
            let end = if window_end >= self.end {
                self.end
            } else {
                self.chunk_end(start, window_end, covered)
            };
            covered = end;
            out.push(self.view(start, end));
            if end >= self.end {
                break;
            }
            // Without overlap the next chunk starts exactly where this one
            // ended, even if that is inside invalid UTF-8; snapping could
            // only move it back and repeat bytes.
            let next = if overlap == 0 {
                end
            } else {
                floor_boundary(&self.store, end.saturating_sub(overlap), start)
            };
            start = if next > start { next } else { end };
            if out.len() % 4096 == 0 {
                self.check_interrupt()?;
            }
        }
        Ok(out)
    }

    /// Where a chunk starting at global `start` ends, for a window ending at
    /// `window_end`; the end must lie beyond `covered`, the previous chunk's end.
    fn chunk_end(&self, start: usize, window_end: usize, covered: usize) -> usize {
        // Search back from the window's end for a newline, piece by piece.
        let mut newline = None;
        let pieces: Vec<_> = self.store.pieces(covered.max(start), window_end).collect();
        for (at, piece) in pieces.into_iter().rev() {
            if let Some(i) = memchr::memrchr(b'\n', piece) {
                newline = Some(at + i + 1);
                break;
            }
        }
        match newline {
            Some(end) => end,
            None => {
                let end = floor_boundary(&self.store, window_end, start);
                if end > covered.max(start) {
                    end
                } else {
                    // `size` is smaller than the character at the cut: take
                    // the whole character rather than make no progress.
                    self.next_boundary(covered.max(start))
                }
            }
        }
    }

    /// The first character boundary after global `pos`.
    fn next_boundary(&self, pos: usize) -> usize {
        let mut p = pos + 1;
        while p < self.end && p - pos < 4 && self.store.byte_at(p).is_some_and(|b| b & 0xC0 == 0x80)
        {
            p += 1;
        }
        p.min(self.end)
    }

    /// Chunks of `n` lines each (the last may have fewer), terminators included.
    ///
    /// Cost: one line-index lookup per chunk.
    pub fn chunk_lines(&self, n: usize) -> Result<Vec<Text>> {
        if n == 0 {
            return Err(Error::InvalidArgument(
                "chunk_lines needs at least 1 line per chunk".into(),
            ));
        }
        let total = self.line_count();
        let mut out = Vec::with_capacity(total / n + 1);
        let mut first = 1;
        while first <= total {
            out.push(self.lines(first, first.saturating_add(n - 1)));
            first = first.saturating_add(n);
            if out.len() % 4096 == 0 {
                self.check_interrupt()?;
            }
        }
        Ok(out)
    }

    /// Up to `k` parts of nearly equal size, cut just after newlines. Fewer
    /// come back when lines are too long to cut `k` ways; none is empty.
    ///
    /// Cost: O(k) newline scans.
    pub fn parts(&self, k: usize) -> Result<Vec<Text>> {
        if k == 0 {
            return Err(Error::InvalidArgument("parts needs k of at least 1".into()));
        }
        let mut out = Vec::with_capacity(k);
        let mut start = self.start;
        for i in 1..=k {
            if start >= self.end {
                break;
            }
            let target = self.start + (self.len() as u128 * i as u128 / k as u128) as usize;
            let end = if i == k || target >= self.end {
                self.end
            } else {
                self.next_line_start(target.max(start))
            };
            if end > start {
                out.push(self.view(start, end));
                start = end;
            }
        }
        Ok(out)
    }

    /// Global offset just after the first newline at or after `pos`, or the view's end.
    fn next_line_start(&self, pos: usize) -> usize {
        for (at, piece) in self.store.pieces(pos, self.end) {
            if let Some(i) = memchr::memchr(b'\n', piece) {
                return at + i + 1;
            }
        }
        self.end
    }

    pub(crate) fn check_interrupt(&self) -> Result<()> {
        match self.interrupt.as_ref().and_then(|i| i.check()) {
            Some(reason) => Err(Error::Interrupted(reason)),
            None => Ok(()),
        }
    }
}
