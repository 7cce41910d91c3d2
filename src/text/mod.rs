//! [`Text`], a zero-copy view into a context.
//!
//! A `Text` is an `Arc` of the context's storage plus a byte range, so
//! cloning one costs a reference count and slicing one copies nothing. All
//! offsets a `Text` takes and returns are **byte offsets relative to the
//! view**; all line numbers are **1-based and relative to the view**, so a
//! line number from a search can be handed straight to [`Text::line`].
//!
//! Every cut snaps down to a UTF-8 character boundary and every
//! out-of-range offset clamps, so no combination of arguments panics or
//! splits a character.

pub(crate) mod boundary;
pub(crate) mod lines;

use std::borrow::Cow;
use std::sync::Arc;

use crate::context::store::Store;
use crate::context::Document;
use crate::interrupt::Interrupt;
use boundary::floor_boundary;

/// A cheap, shareable view of a byte range of a context.
///
/// ```
/// let t = rlm::Text::from("first line\nsecond line\nthird\n");
/// assert_eq!(t.line_count(), 3);
/// assert_eq!(t.line(2).unwrap().to_string(), "second line");
/// let hits = t.find_all("line", usize::MAX)?;
/// assert_eq!(hits, vec![6, 18]);
/// assert_eq!(t.slice(0, 5).to_string(), "first");
/// # Ok::<(), rlm::Error>(())
/// ```
#[derive(Clone)]
pub struct Text {
    pub(crate) store: Arc<Store>,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) interrupt: Option<Interrupt>,
}

impl Text {
    pub(crate) fn whole(store: Arc<Store>) -> Text {
        let end = store.len();
        Text {
            store,
            start: 0,
            end,
            interrupt: None,
        }
    }

    /// A view over a copy of `bytes`, belonging to no document.
    pub fn from_bytes(bytes: Vec<u8>) -> Text {
        Text::whole(Arc::new(Store::from_vec(bytes)))
    }

    /// The same view, whose long operations poll `interrupt` and stop when it fires.
    /// Views derived from it inherit the interrupt.
    pub fn with_interrupt(mut self, interrupt: Option<Interrupt>) -> Text {
        self.interrupt = interrupt;
        self
    }

    /// A view of the same storage at global range `[start, end)`, sharing the interrupt.
    pub(crate) fn view(&self, start: usize, end: usize) -> Text {
        Text {
            store: self.store.clone(),
            start,
            end,
            interrupt: self.interrupt.clone(),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True for a view of zero bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Byte offset of this view's start within the whole context.
    pub fn start(&self) -> usize {
        self.start
    }

    /// Byte offset of this view's end within the whole context.
    pub fn end(&self) -> usize {
        self.end
    }

    /// The document this view lies in, if it lies within exactly one.
    pub fn document(&self) -> Option<&Document> {
        let i = self.store.document_at(self.start)?;
        let doc = &self.store.documents[i];
        (self.end <= doc.end).then_some(doc)
    }

    /// Name of the document this view lies in, or `""` when it spans several
    /// or belongs to none.
    pub fn name(&self) -> &str {
        self.document().map_or("", |d| d.name.as_str())
    }

    /// Global offset of a view-relative offset, clamped and snapped down to
    /// a character boundary.
    pub(crate) fn cut(&self, rel: usize) -> usize {
        let pos = self.start.saturating_add(rel).min(self.end);
        floor_boundary(&self.store, pos, self.start)
    }

    /// The sub-view `[start, end)` in view-relative byte offsets. Offsets
    /// clamp to the view and snap down to character boundaries; `end < start`
    /// gives an empty view.
    pub fn slice(&self, start: usize, end: usize) -> Text {
        let s = self.cut(start);
        let e = self.cut(end).max(s);
        self.view(s, e)
    }

    /// The first `n` bytes (fewer if `n` falls inside a character).
    pub fn head(&self, n: usize) -> Text {
        self.slice(0, n)
    }

    /// The last `n` bytes (fewer if the cut falls inside a character, whose
    /// start snaps down; so possibly a few more).
    pub fn tail(&self, n: usize) -> Text {
        self.slice(self.len().saturating_sub(n), self.len())
    }

    /// The bytes of the view: borrowed when they lie in one segment (always,
    /// for a single-file context), copied otherwise.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self.store.contiguous(self.start, self.end) {
            Some(b) => Cow::Borrowed(b),
            None => {
                let mut v = Vec::with_capacity(self.len());
                for (_, piece) in self.pieces() {
                    v.extend_from_slice(piece);
                }
                Cow::Owned(v)
            }
        }
    }

    /// The view as a string; invalid UTF-8 becomes U+FFFD.
    pub fn to_str_lossy(&self) -> Cow<'_, str> {
        match self.bytes() {
            Cow::Borrowed(b) => String::from_utf8_lossy(b),
            Cow::Owned(v) => Cow::Owned(match String::from_utf8(v) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }),
        }
    }

    /// The contiguous pieces of this view with their global offsets.
    pub(crate) fn pieces(&self) -> crate::context::store::Pieces<'_> {
        self.store.pieces(self.start, self.end)
    }

    /// One view per input document that overlaps this view, clipped to it.
    pub fn documents(&self) -> Vec<Text> {
        self.store
            .documents
            .iter()
            .filter(|d| {
                if d.is_empty() {
                    self.start <= d.start && d.start <= self.end
                } else {
                    d.start < self.end && d.end > self.start
                }
            })
            .map(|d| self.view(d.start.max(self.start), d.end.min(self.end)))
            .collect()
    }

    // ---- lines -------------------------------------------------------------

    /// Global 0-based number of the line containing the view's first byte.
    fn first_line(&self) -> usize {
        self.store.lines().newlines_before(&self.store, self.start)
    }

    /// Number of lines: newline-terminated lines plus a final unterminated one.
    /// An empty view has 0 lines; `"\n"` has 1.
    pub fn line_count(&self) -> usize {
        if self.is_empty() {
            return 0;
        }
        let idx = self.store.lines();
        let newlines = idx.newlines_before(&self.store, self.end) - self.first_line();
        let open_last = self.store.byte_at(self.end - 1) != Some(b'\n');
        newlines + usize::from(open_last)
    }

    /// The 1-based line number of a view-relative byte offset, clamped to
    /// the view: the end of a text that ends in a newline is on its last
    /// line, and an empty view's only offset is on line 1.
    pub fn line_of(&self, offset: usize) -> usize {
        let pos = self.start.saturating_add(offset).min(self.end);
        let idx = self.store.lines();
        let line = idx.newlines_before(&self.store, pos) - self.first_line() + 1;
        line.min(self.line_count().max(1))
    }

    /// Global range of 1-based view line `n`, including its line terminator.
    fn line_range(&self, n: usize) -> Option<(usize, usize)> {
        if n == 0 || n > self.line_count() {
            return None;
        }
        let idx = self.store.lines();
        let g = self.first_line() + n - 1;
        let s = idx.line_start(&self.store, g).max(self.start);
        let e = idx
            .newline(&self.store, g)
            .map_or(self.store.len(), |p| p + 1)
            .min(self.end);
        Some((s, e))
    }

    /// Line `n` (1-based) without its terminator (`\n` or `\r\n`), or `None`
    /// past the last line.
    pub fn line(&self, n: usize) -> Option<Text> {
        let (s, e) = self.line_range(n)?;
        Some(self.view(s, strip_terminator(&self.store, s, e)))
    }

    /// Lines `from..=to` (1-based, inclusive) as one view, terminators
    /// included. Clamps to the existing lines; empty when `from > to`.
    pub fn lines(&self, from: usize, to: usize) -> Text {
        let count = self.line_count();
        let from = from.max(1);
        let to = to.min(count);
        if from > to {
            return self.view(self.end, self.end);
        }
        let (s, _) = self.line_range(from).unwrap_or((self.end, self.end));
        let (_, e) = self.line_range(to).unwrap_or((self.end, self.end));
        self.view(s, e)
    }

    /// Every line as a view, without terminators.
    pub fn line_views(&self) -> Vec<Text> {
        let mut out = Vec::new();
        for (start, piece) in self.pieces() {
            let mut at = 0;
            for nl in memchr::memchr_iter(b'\n', piece) {
                out.push((start + at, start + nl + 1));
                at = nl + 1;
            }
            if at < piece.len() {
                out.push((start + at, start + piece.len()));
            }
        }
        // A line cut by a segment boundary (a header `\n` after a file without
        // one) arrives in two parts; join parts that do not end in a newline.
        let mut joined: Vec<(usize, usize)> = Vec::with_capacity(out.len());
        for (s, e) in out {
            match joined.last_mut() {
                Some(last) if last.1 == s && self.store.byte_at(s - 1) != Some(b'\n') => last.1 = e,
                _ => joined.push((s, e)),
            }
        }
        joined
            .into_iter()
            .map(|(s, e)| self.view(s, strip_terminator(&self.store, s, e)))
            .collect()
    }
}

/// End of a line's content, excluding a trailing `\n` or `\r\n` in `[s, e)`.
pub(crate) fn strip_terminator(store: &Store, s: usize, e: usize) -> usize {
    let mut e = e;
    if e > s && store.byte_at(e - 1) == Some(b'\n') {
        e -= 1;
        if e > s && store.byte_at(e - 1) == Some(b'\r') {
            e -= 1;
        }
    }
    e
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::from_bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::from_bytes(s.into_bytes())
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_str_lossy())
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const PREVIEW: usize = 60;
        f.debug_struct("Text")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("head", &self.head(PREVIEW).to_str_lossy())
            .finish()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.len() == other.len() && self.bytes() == other.bytes()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.bytes().as_ref() == other.as_bytes()
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.bytes().as_ref() == other.as_bytes()
    }
}
