//! Memory accounting: what a script session holds, in bytes, whatever the
//! container.
//!
//! Rhai limits strings, arrays and maps one type at a time, by walking the
//! whole value after every change, which makes `push` in a loop quadratic,
//! and it does not see values held in map slots, array slots, closures or
//! function locals as one total. Instead, [`Counting`] is a global
//! allocator that attributes every heap block to the [`Ledger`] entered on
//! the thread that allocated it, and a session fails a cell when its ledger
//! passes the session's memory limit. The count is exact: a block is
//! charged where it is allocated and credited where it is freed, whichever
//! thread frees it, because each block carries the ledger it was charged to
//! in a small header.
//!
//! * [`Counting`] wraps any allocator (the system's, or mimalloc in the
//!   static build). It costs one thread-local read per allocation and a
//!   16-byte header per block (more for over-aligned blocks).
//! * [`Ledger`] is a count of live bytes; [`Ledger::enter`] charges the
//!   current thread's allocations to it until the guard drops.
//! * [`is_installed`] tells whether the running program uses [`Counting`].
//!   The `rlm` binary does. A program embedding the library may install it
//!   too; without it, sessions fall back to Rhai's own per-type limits.
//!
//! ```
//! // In a binary: `#[global_allocator] static A: rlm::alloc::Counting = rlm::alloc::Counting::system();`
//! let ledger = rlm::alloc::Ledger::new();
//! {
//!     let _charged = ledger.enter();
//!     let v: Vec<u8> = Vec::with_capacity(1 << 20);
//!     # drop(v);
//! }
//! // 0 here, since doc tests do not install the allocator; 1 MiB where it is.
//! assert!(ledger.held() == 0 || ledger.held() >= 1 << 20);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Mutex;

/// The live-byte count behind a [`Ledger`]. Slots are never freed, only
/// reused once empty, so a block's header can always point at its slot.
struct Slot {
    held: AtomicIsize,
}

/// Every allocation's header is at least this large, and a multiple of the
/// block's alignment; the slot pointer sits in its last 8 bytes.
const HEADER: usize = 16;

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Empty slots, ready for the next ledger.
static FREE_SLOTS: Mutex<Vec<&'static Slot>> = Mutex::new(Vec::new());

thread_local! {
    /// The slot charged for this thread's allocations (null: none).
    static CURRENT: Cell<*const Slot> = const { Cell::new(std::ptr::null()) };
}

/// Whether the program's global allocator is [`Counting`]: true once it has
/// served an allocation, which happens before `main` runs.
pub fn is_installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// A global allocator that charges each block to the ledger entered on the
/// allocating thread. See the module documentation.
pub struct Counting<A = System> {
    inner: A,
}

impl Counting<System> {
    /// Counting over the system allocator.
    pub const fn system() -> Self {
        Counting { inner: System }
    }
}

impl<A> Counting<A> {
    /// Counting over any allocator.
    pub const fn new(inner: A) -> Self {
        Counting { inner }
    }
}

/// The header size and the layout of the whole block for a user layout.
fn framed(layout: Layout) -> Option<(usize, Layout)> {
    let header = layout.align().max(HEADER);
    let size = layout.size().checked_add(header)?;
    let full = Layout::from_size_align(size, header).ok()?;
    Some((header, full))
}

fn current_slot() -> *const Slot {
    CURRENT.try_with(Cell::get).unwrap_or(std::ptr::null())
}

/// Adds `bytes` (which may be negative) to the slot, if there is one.
///
/// # Safety
/// `slot` is null or points at a `Slot` that lives forever.
unsafe fn charge(slot: *const Slot, bytes: isize) {
    if let Some(slot) = slot.as_ref() {
        slot.held.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl<A: GlobalAlloc> Counting<A> {
    /// Writes the header of a fresh block and returns the user pointer.
    ///
    /// # Safety
    /// `base` is null or a block of `header + size` bytes aligned to `header`.
    unsafe fn finish(&self, base: *mut u8, header: usize, size: usize) -> *mut u8 {
        if base.is_null() {
            return base;
        }
        if !INSTALLED.load(Ordering::Relaxed) {
            INSTALLED.store(true, Ordering::Relaxed);
        }
        let user = base.add(header);
        let slot = current_slot();
        user.sub(8).cast::<*const Slot>().write(slot);
        charge(slot, size as isize);
        user
    }
}

// SAFETY: every block handed out is `header` bytes past a block of the
// inner allocator with alignment `header` (>= the requested alignment, and
// a multiple of it), so the user pointer is aligned; dealloc and realloc
// recompute the same header from the same layout and undo the offset.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some((header, full)) = framed(layout) else {
            return std::ptr::null_mut();
        };
        self.finish(self.inner.alloc(full), header, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some((header, full)) = framed(layout) else {
            return std::ptr::null_mut();
        };
        self.finish(self.inner.alloc_zeroed(full), header, layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some((header, full)) = framed(layout) else {
            return;
        };
        let slot = ptr.sub(8).cast::<*const Slot>().read();
        charge(slot, -(layout.size() as isize));
        self.inner.dealloc(ptr.sub(header), full);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some((header, full)) = framed(layout) else {
            return std::ptr::null_mut();
        };
        let Some(new_full) = new_size.checked_add(header) else {
            return std::ptr::null_mut();
        };
        let slot = ptr.sub(8).cast::<*const Slot>().read();
        // The header moves with the block, so the block stays charged to
        // the ledger that allocated it.
        let base = self.inner.realloc(ptr.sub(header), full, new_full);
        if base.is_null() {
            return base;
        }
        charge(slot, new_size as isize - layout.size() as isize);
        base.add(header)
    }
}

/// A count of the heap bytes allocated while it was entered, and not yet
/// freed. Cheap to read from any thread.
pub struct Ledger {
    slot: &'static Slot,
}

impl Ledger {
    /// A new ledger at zero.
    pub fn new() -> Ledger {
        let reused = FREE_SLOTS.lock().ok().and_then(|mut free| free.pop());
        let slot = reused.unwrap_or_else(|| {
            // The slot outlives every ledger, so charge it to none.
            let outside = CURRENT
                .try_with(|c| c.replace(std::ptr::null()))
                .unwrap_or(std::ptr::null());
            let slot = Box::leak(Box::new(Slot {
                held: AtomicIsize::new(0),
            }));
            let _ = CURRENT.try_with(|c| c.set(outside));
            slot
        });
        Ledger { slot }
    }

    /// Live bytes charged to this ledger (0 where [`Counting`] is not the
    /// global allocator).
    pub fn held(&self) -> usize {
        usize::try_from(self.slot.held.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Charges this thread's allocations to the ledger until the guard
    /// drops; entering another ledger inside is allowed and nests.
    pub fn enter(&self) -> Entered<'_> {
        let previous = CURRENT
            .try_with(|c| c.replace(self.slot as *const Slot))
            .unwrap_or(std::ptr::null());
        Entered {
            previous,
            _ledger: self,
        }
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new()
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("held", &self.held())
            .finish()
    }
}

impl Drop for Ledger {
    /// An empty slot is reused; one with live blocks (an answer moved out
    /// of the session, say) is left to them, 8 bytes that are never freed.
    fn drop(&mut self) {
        if self.slot.held.load(Ordering::Relaxed) == 0 {
            if let Ok(mut free) = FREE_SLOTS.lock() {
                free.push(self.slot);
            }
        }
    }
}

/// The current thread charges its allocations to a ledger while this lives.
pub struct Entered<'a> {
    previous: *const Slot,
    _ledger: &'a Ledger,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let previous = self.previous;
        let _ = CURRENT.try_with(|c| c.set(previous));
    }
}
