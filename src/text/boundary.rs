//! Snapping byte offsets to UTF-8 character boundaries.
//!
//! Every cut in this crate snaps *down* to the start of the character that
//! contains the offset. Snapping one way only keeps adjacent cuts
//! consistent, so neighbouring views always concatenate to the original.
//! Invalid UTF-8 has no characters to protect: if no lead byte is found
//! within the three bytes a character can extend back, the offset stays.

use crate::context::store::Store;

#[inline]
fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// The largest character boundary `<= pos` in `store`, not below `floor`.
pub(crate) fn floor_boundary(store: &Store, pos: usize, floor: usize) -> usize {
    let pos = pos.min(store.len());
    let mut p = pos;
    for _ in 0..3 {
        if p <= floor {
            return floor.max(p);
        }
        match store.byte_at(p) {
            Some(b) if is_continuation(b) => p -= 1,
            _ => return p,
        }
    }
    match store.byte_at(p) {
        Some(b) if is_continuation(b) => pos, // not UTF-8 here; any cut is as good
        _ => p,
    }
}
