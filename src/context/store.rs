//! Backing storage for a context: an ordered list of byte segments.
//!
//! A context built from several files cannot be one contiguous buffer
//! without copying every file, so the store keeps each memory map (and each
//! small owned buffer, such as a document header) as its own segment, laid
//! end to end in one global byte-offset space. Views address that space;
//! algorithms walk it piece by piece.
//!
//! Segment boundaries are line boundaries: every segment but the last ends
//! with a newline. That is what lets search treat each piece independently,
//! with the same look-around (`^`, `\b`) as a scan of the whole text. A
//! document that does not end in a newline therefore lends its last partial
//! line to the header segment that follows it (copied, with the newline the
//! header adds). A partial line over [`TAIL_COPY_MAX`] is not copied; the
//! boundary then falls mid-line, and only empty matches of `^`, `\b` or `\B`
//! exactly there can differ from a contiguous scan.

use std::sync::{Arc, OnceLock};

use crate::text::lines::LineIndex;

use super::Document;

/// Bytes that can back a segment: a memory map, or owned memory.
pub(crate) type Bytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// The longest partial last line copied into the next header segment.
pub(crate) const TAIL_COPY_MAX: usize = 1 << 20;

pub(crate) struct Segment {
    /// Global offset of the first byte.
    pub start: usize,
    bytes: Bytes,
    /// How many of `bytes` (from the first) the segment holds.
    len: usize,
}

impl Segment {
    pub fn new(start: usize, bytes: Bytes) -> Segment {
        let len = (*bytes).as_ref().len();
        Segment { start, bytes, len }
    }

    /// A segment over the first `len` bytes of `bytes` only.
    pub fn prefix(start: usize, bytes: Bytes, len: usize) -> Segment {
        let len = len.min((*bytes).as_ref().len());
        Segment { start, bytes, len }
    }

    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &(*self.bytes).as_ref()[..self.len]
    }

    #[inline]
    pub fn end(&self) -> usize {
        self.start + self.bytes().len()
    }
}

/// The shared storage behind every [`Text`](crate::Text) of one context.
pub(crate) struct Store {
    segments: Vec<Segment>,
    len: usize,
    pub documents: Vec<Document>,
    lines: OnceLock<LineIndex>,
}

impl Store {
    pub fn new(segments: Vec<Segment>, documents: Vec<Document>) -> Store {
        let segments: Vec<Segment> = segments
            .into_iter()
            .filter(|s| !s.bytes().is_empty())
            .collect();
        let len = segments.last().map_or(0, Segment::end);
        Store {
            segments,
            len,
            documents,
            lines: OnceLock::new(),
        }
    }

    /// A store over one owned buffer with no documents.
    pub fn from_vec(bytes: Vec<u8>) -> Store {
        let bytes: Bytes = Arc::new(bytes);
        Store::new(vec![Segment::new(0, bytes)], Vec::new())
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// The line index, built on first use.
    pub fn lines(&self) -> &LineIndex {
        self.lines.get_or_init(|| LineIndex::build(self))
    }

    fn segment_index(&self, pos: usize) -> usize {
        // The last segment whose start is <= pos.
        self.segments
            .partition_point(|s| s.start <= pos)
            .saturating_sub(1)
    }

    /// The byte at a global offset, if in range.
    #[inline]
    pub fn byte_at(&self, pos: usize) -> Option<u8> {
        if pos >= self.len {
            return None;
        }
        let seg = &self.segments[self.segment_index(pos)];
        seg.bytes().get(pos - seg.start).copied()
    }

    /// The contiguous pieces covering `[start, end)`, each with its global offset.
    pub fn pieces(&self, start: usize, end: usize) -> Pieces<'_> {
        let end = end.min(self.len);
        let start = start.min(end);
        Pieces {
            store: self,
            next_segment: if start < end {
                self.segment_index(start)
            } else {
                self.segments.len()
            },
            pos: start,
            end,
        }
    }

    /// `[start, end)` as one slice, when it lies within one segment.
    pub fn contiguous(&self, start: usize, end: usize) -> Option<&[u8]> {
        if start >= end {
            return Some(&[]);
        }
        let seg = &self.segments[self.segment_index(start)];
        if end <= seg.end() {
            Some(&seg.bytes()[start - seg.start..end - seg.start])
        } else {
            None
        }
    }

    /// Index of the document containing a global offset.
    pub fn document_at(&self, pos: usize) -> Option<usize> {
        let i = self.documents.partition_point(|d| d.start <= pos);
        let i = i.checked_sub(1)?;
        let doc = &self.documents[i];
        (pos < doc.end || (doc.start == doc.end && pos == doc.start)).then_some(i)
    }
}

/// Iterator over the contiguous pieces of a global range.
pub(crate) struct Pieces<'a> {
    store: &'a Store,
    next_segment: usize,
    pos: usize,
    end: usize,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let seg = self.store.segments.get(self.next_segment)?;
        self.next_segment += 1;
        let from = self.pos;
        let to = seg.end().min(self.end);
        self.pos = to;
        Some((from, &seg.bytes()[from - seg.start..to - seg.start]))
    }
}
