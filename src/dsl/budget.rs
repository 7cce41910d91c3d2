//! What a native function may allocate for its result, decided before it
//! allocates.
//!
//! The memory limit (see `crate::alloc`) is checked between operations, but
//! a native function is one operation: `context.matches(".", 4000000)`
//! would build 2.5 GB of maps before the next check, and a copy of a whole
//! multi-gigabyte context into one string aborts the process outright. So
//! each function that copies text or builds many items first estimates its
//! result from counts and offsets, which cost nothing on views, and asks
//! [`Budget::allow`].

use std::sync::Arc;

use super::convert::{script_error, Fallible};
use super::session::{mebibytes, Shared};
use super::Limits;

/// Bytes a result item costs besides the text it copies: a Rhai map of a
/// few fields, or an array slot holding a view.
pub(crate) const MAP_ITEM: usize = 256;
pub(crate) const VIEW_ITEM: usize = 64;

/// A session's allowance for native results.
#[derive(Clone)]
pub(crate) struct Budget {
    shared: Arc<Shared>,
    max_memory: usize,
    max_string: usize,
}

impl Budget {
    pub(crate) fn new(shared: &Arc<Shared>, limits: &Limits) -> Budget {
        Budget {
            shared: shared.clone(),
            max_memory: limits.max_memory_bytes,
            max_string: limits.max_string_bytes,
        }
    }

    /// Fails unless a result of `text` bytes of copied text and `items`
    /// bytes of structure fits what the session has left; `what` names the
    /// call and `instead` says what to do.
    ///
    /// Where the allocator counts, the whole result must fit the memory the
    /// session has left. Elsewhere Rhai's own limits apply after the call,
    /// and its string limit counts every string of a result together, so
    /// the copied text must fit that.
    pub(crate) fn allow(
        &self,
        what: &str,
        text: usize,
        items: usize,
        instead: &str,
    ) -> Fallible<()> {
        match self.shared.memory_held() {
            Some(held) => {
                let need = text.saturating_add(items);
                let left = self.max_memory.saturating_sub(held);
                if need > left {
                    return Err(script_error(format!(
                        "{what} would need about {}, more than the {} left of the session's memory limit of {}; {instead}",
                        mebibytes(need),
                        mebibytes(left),
                        mebibytes(self.max_memory)
                    )));
                }
            }
            None if text > self.max_string => {
                return Err(script_error(format!(
                    "{what} would copy {text} bytes of text, more than the string limit of {} bytes; {instead}",
                    self.max_string
                )));
            }
            None => {}
        }
        Ok(())
    }

    /// Whether the session's memory is counted (the program's allocator is
    /// [`crate::alloc::Counting`]); elsewhere Rhai's per-type limits apply.
    pub(crate) fn counts_memory(&self) -> bool {
        self.shared.memory_held().is_some()
    }

    /// How many result items of `each` bytes still fit the session's
    /// memory, so a search can stop one past that instead of collecting
    /// millions of matches only to refuse them.
    pub(crate) fn items_left(&self, each: usize) -> usize {
        match self.shared.memory_held() {
            Some(held) => self.max_memory.saturating_sub(held) / each.max(1),
            None => usize::MAX,
        }
    }

    /// Fails unless one string of `len` bytes may be made.
    pub(crate) fn allow_string(&self, what: &str, len: usize) -> Fallible<()> {
        if len > self.max_string {
            return Err(script_error(format!(
                "{what} would make a string of {len} bytes, more than the string limit of {} bytes; \
                 work on views instead (slice, chunks, grep, matches)",
                self.max_string
            )));
        }
        self.allow(
            what,
            len,
            0,
            "work on views instead (slice, chunks, grep, matches)",
        )
    }
}
