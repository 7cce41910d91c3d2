//! A clear last word when a mapped input file is truncated under us.
//!
//! Reading a page of a memory-mapped file that another process has cut
//! short raises SIGBUS, and the default action kills the process with a bare
//! "Bus error". rlm checks its files before and after every cell, but a
//! truncation in the middle of a scan cannot be caught in time. This handler
//! at least says what happened and what to do. Traces and batch results are
//! flushed line by line, so everything written before the fault survives.

/// Exit status for a fault: what a shell reports for a process killed by SIGBUS.
#[cfg(unix)]
const STATUS: i32 = 128 + libc::SIGBUS;

#[cfg(unix)]
extern "C" fn on_sigbus(_: libc::c_int) {
    const MESSAGE: &[u8] = b"\nrlm: error: an input file was truncated or became unreadable while rlm was reading it (SIGBUS); \
results and traces written so far are intact. Re-run, with --snapshot if the input may change while rlm runs.\n";
    // SAFETY: write(2) and _exit(2) are async-signal-safe; nothing else is called.
    unsafe {
        libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
        libc::_exit(STATUS);
    }
}

/// Installs the handler for the rest of the process.
pub fn install() {
    #[cfg(unix)]
    // SAFETY: the action is fully initialised (zeroed, then an empty mask and
    // a handler that only makes async-signal-safe calls).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}
