//! Sandbox limits for script cells.

use std::time::Duration;

/// Limits applied to every cell of a [`Session`](super::Session).
///
/// Every Rhai limit is set explicitly: Rhai's own defaults differ between
/// debug and release builds (a debug build allows only 8 call levels), and
/// tests must see what users see.
///
/// ```
/// let limits = rlm::dsl::Limits { max_operations: 1_000_000, ..Default::default() };
/// assert_eq!(limits.max_call_depth, 64);
/// ```
#[derive(Debug, Clone)]
pub struct Limits {
    /// Rhai operations per cell (a loop iteration is a few operations).
    pub max_operations: u64,
    /// Wall-clock time per cell, not counting time spent waiting on sub-model calls.
    pub cell_timeout: Duration,
    /// Largest string a script may build, in bytes. Views of the context are
    /// not strings and are not limited.
    pub max_string_bytes: usize,
    /// Largest array, in elements.
    pub max_array_len: usize,
    /// Largest object map, in entries.
    pub max_map_len: usize,
    /// Deepest nesting of script function calls.
    pub max_call_depth: usize,
    /// Deepest expression nesting at top level.
    pub max_expr_depth: usize,
    /// Deepest expression nesting inside functions.
    pub max_fn_expr_depth: usize,
    /// Most variables alive in a cell's scope.
    pub max_variables: usize,
    /// Most script functions defined.
    pub max_functions: usize,
    /// Characters of output returned per cell; the rest is cut from the middle.
    pub output_chars: usize,
    /// Heap bytes a session may hold, in every value it keeps (variables,
    /// array and map slots, closures, function locals). Enforced where the
    /// program's allocator is [`crate::alloc::Counting`], as in the `rlm`
    /// binary; elsewhere the per-type limits above are Rhai's only bounds.
    pub max_memory_bytes: usize,
    /// Longest cell source, in bytes: parsing costs many times the source
    /// in memory (a 150 MB script took 7.5 GB), and data belongs in the
    /// context, not in code.
    pub max_script_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 50_000_000,
            cell_timeout: Duration::from_secs(120),
            max_string_bytes: 16 << 20,
            max_array_len: 4_000_000,
            // Rhai counts map entries across every map inside an array, so
            // an array of search results (3–5 fields each) needs room.
            max_map_len: 20_000_000,
            max_call_depth: 64,
            max_expr_depth: 128,
            max_fn_expr_depth: 64,
            max_variables: 10_000,
            max_functions: 1_000,
            output_chars: 20_000,
            max_memory_bytes: 1 << 30,
            max_script_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// Native stack for the thread that runs a cell. Each script call level
    /// takes 7–10 KiB, but the real need is dropping values a script nested
    /// deeply (a chain of closures each capturing the last): that recursion
    /// is as deep as the chain, which the operation limit bounds at a few
    /// million links. The stack is reserved address space; only the pages a
    /// cell touches are ever committed.
    ///
    /// Reserved space still counts against an address-space limit
    /// (`RLIMIT_AS`, and `RLIMIT_DATA`, which thread stacks count against
    /// too), and cells run side by side: a run's root cell waits in
    /// `rlm_batch` while up to `--concurrency` children (16 by default) run
    /// theirs. Under such a limit the stack is therefore at most 1/64 of
    /// it, so that the root and 16 children take about a quarter (at 4 GiB
    /// each, 8 children under an 8 GiB limit all failed to start). It is
    /// never less than call depth needs. The cost is depth: under an 8 GiB
    /// limit (128 MiB stacks) a chain of 500,000 closures still drops,
    /// 700,000 overflows the stack, where 4 GiB held over 3,000,000. Where
    /// even the size wanted cannot be reserved (strict overcommit on a
    /// small machine), it falls back to what call depth needs.
    pub(crate) fn stack_bytes(&self) -> usize {
        /// The lowest of the address-space and data limits, if any is set.
        #[cfg(unix)]
        fn reservation_limit() -> Option<usize> {
            [libc::RLIMIT_AS, libc::RLIMIT_DATA]
                .into_iter()
                .filter_map(|resource| {
                    let mut limit = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    // SAFETY: getrlimit writes one rlimit, owned by this frame.
                    let ok = unsafe { libc::getrlimit(resource, &mut limit) } == 0;
                    (ok && limit.rlim_cur != libc::RLIM_INFINITY)
                        .then(|| usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
                })
                .min()
        }
        #[cfg(not(unix))]
        fn reservation_limit() -> Option<usize> {
            None
        }
        let by_depth = (16 << 20) + self.max_call_depth * (64 << 10);
        let by_operations = usize::try_from(self.max_operations / 8)
            .unwrap_or(usize::MAX)
            .saturating_mul(640);
        let mut wanted = by_depth.max(by_operations).min(4 << 30);
        if let Some(limit) = reservation_limit() {
            wanted = wanted.min(limit / 64).max(by_depth);
        }
        // A machine with little memory and strict overcommit may refuse to
        // reserve that much; then fall back to what call depth needs.
        if wanted == by_depth || stack_reservable(wanted) {
            wanted
        } else {
            by_depth
        }
    }
}

/// Whether a thread with a `bytes` stack can be started here (probed once per size).
fn stack_reservable(bytes: usize) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static PROBED: OnceLock<Mutex<HashMap<usize, bool>>> = OnceLock::new();
    let probed = PROBED.get_or_init(Default::default);
    if let Some(&ok) = probed
        .lock()
        .ok()
        .and_then(|p| p.get(&bytes).copied())
        .as_ref()
    {
        return ok;
    }
    let ok = std::thread::Builder::new()
        .name("rlm-stack-probe".into())
        .stack_size(bytes)
        .spawn(|| ())
        .map(|h| h.join().is_ok())
        .unwrap_or(false);
    if let Ok(mut p) = probed.lock() {
        p.insert(bytes, ok);
    }
    ok
}
