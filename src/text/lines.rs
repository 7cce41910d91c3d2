//! A sparse, lazily built index of line breaks.
//!
//! Storing every newline offset would cost 8 bytes a line (over 100 MB for a
//! 1 GiB log). The index instead cuts the store into blocks, counts each
//! block's newlines in parallel, and samples the offset of every
//! [`STRIDE`]th newline. A lookup is a binary search plus a `memchr` scan of
//! at most `STRIDE` lines, and the index costs about 8 bytes per `STRIDE`
//! lines.

use memchr::memchr_iter;
use rayon::prelude::*;

use crate::context::store::Store;

/// One sample every this many newlines.
const STRIDE: usize = 64;
/// Bytes per block when building the index.
const BLOCK: usize = 4 << 20;

struct Block {
    /// Global offset of the block's first byte.
    start: usize,
    /// Global offset one past the block's last byte.
    end: usize,
    /// Newlines in the store before `start`.
    newlines_before: usize,
    /// Newlines inside the block.
    newlines: usize,
    /// Global offsets of the block's newlines number 0, STRIDE, 2*STRIDE, ...
    samples: Vec<usize>,
}

/// Newline positions of a [`Store`], for line-number lookups in O(log n).
pub(crate) struct LineIndex {
    blocks: Vec<Block>,
    total: usize,
}

fn count_newlines(bytes: &[u8]) -> usize {
    memchr_iter(b'\n', bytes).count()
}

impl LineIndex {
    pub fn build(store: &Store) -> LineIndex {
        let mut ranges = Vec::new();
        for (start, piece) in store.pieces(0, store.len()) {
            let mut at = 0;
            while at < piece.len() {
                let to = (at + BLOCK).min(piece.len());
                ranges.push((start + at, &piece[at..to]));
                at = to;
            }
        }
        let mut blocks: Vec<Block> = ranges
            .par_iter()
            .map(|&(start, bytes)| {
                let mut samples = Vec::new();
                let mut newlines = 0;
                for i in memchr_iter(b'\n', bytes) {
                    if newlines % STRIDE == 0 {
                        samples.push(start + i);
                    }
                    newlines += 1;
                }
                Block {
                    start,
                    end: start + bytes.len(),
                    newlines_before: 0,
                    newlines,
                    samples,
                }
            })
            .collect();
        let mut total = 0;
        for b in &mut blocks {
            b.newlines_before = total;
            total += b.newlines;
        }
        LineIndex { blocks, total }
    }

    /// Number of `\n` bytes in the whole store.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn total(&self) -> usize {
        self.total
    }

    /// Number of `\n` bytes in `[0, pos)`.
    pub fn newlines_before(&self, store: &Store, pos: usize) -> usize {
        let Some(bi) = self
            .blocks
            .partition_point(|b| b.start < pos)
            .checked_sub(1)
        else {
            return 0;
        };
        let b = &self.blocks[bi];
        let pos = pos.min(b.end);
        let j = b.samples.partition_point(|&s| s < pos);
        let (from, base) = match j.checked_sub(1) {
            None => (b.start, 0),
            Some(k) => (b.samples[k] + 1, k * STRIDE + 1),
        };
        let counted = store.contiguous(from, pos).map_or(0, count_newlines);
        b.newlines_before + base + counted
    }

    /// Global offset of newline number `k` (0-based), if there are that many.
    pub fn newline(&self, store: &Store, k: usize) -> Option<usize> {
        if k >= self.total {
            return None;
        }
        let bi = self
            .blocks
            .partition_point(|b| b.newlines_before <= k)
            .checked_sub(1)?;
        // Skip empty blocks that share a `newlines_before` value.
        let b = self.blocks[..=bi]
            .iter()
            .rev()
            .find(|b| k < b.newlines_before + b.newlines)?;
        let local = k - b.newlines_before;
        let sample = b.samples[local / STRIDE];
        let rest = local % STRIDE;
        if rest == 0 {
            return Some(sample);
        }
        let bytes = store.contiguous(sample + 1, b.end)?;
        memchr_iter(b'\n', bytes)
            .nth(rest - 1)
            .map(|i| sample + 1 + i)
    }

    /// Global offset where line `g` (0-based, counted over the whole store) starts.
    pub fn line_start(&self, store: &Store, g: usize) -> usize {
        match g.checked_sub(1) {
            None => 0,
            Some(k) => self.newline(store, k).map_or(store.len(), |p| p + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_before(bytes: &[u8], pos: usize) -> usize {
        bytes[..pos].iter().filter(|&&b| b == b'\n').count()
    }

    #[test]
    fn lookups_agree_with_a_naive_count() {
        let mut text = Vec::new();
        for i in 0..1000 {
            text.extend(std::iter::repeat_n(b'x', i % 7));
            text.push(b'\n');
        }
        let store = Store::from_vec(text.clone());
        let idx = store.lines();
        assert_eq!(idx.total(), 1000);
        for pos in (0..=text.len()).step_by(3) {
            assert_eq!(idx.newlines_before(&store, pos), naive_before(&text, pos));
        }
        let positions: Vec<usize> = memchr_iter(b'\n', &text).collect();
        for (k, &p) in positions.iter().enumerate() {
            assert_eq!(idx.newline(&store, k), Some(p));
        }
        assert_eq!(idx.newline(&store, 1000), None);
    }

    #[test]
    fn empty_store_has_no_lines() {
        let store = Store::from_vec(Vec::new());
        let idx = store.lines();
        assert_eq!(idx.total(), 0);
        assert_eq!(idx.newlines_before(&store, 0), 0);
        assert_eq!(idx.newline(&store, 0), None);
    }
}
