//! Cooperative cancellation for long native operations.
//!
//! A script engine can stop a script between its own operations, but not
//! inside a native call scanning gigabytes. Views therefore carry an optional
//! [`Interrupt`]: searches and chunkers poll it between units of work (every
//! few megabytes) and stop with [`Error::Interrupted`](crate::Error::Interrupted).

use std::sync::Arc;

/// A shared "should I stop?" check, with the reason to report when it says yes.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// let stop = Arc::new(AtomicBool::new(false));
/// let flag = stop.clone();
/// let interrupt = rlm::Interrupt::new(move || {
///     flag.load(Ordering::Relaxed).then(|| "stopped by the user".to_string())
/// });
/// assert!(interrupt.check().is_none());
/// stop.store(true, Ordering::Relaxed);
/// assert_eq!(interrupt.check().as_deref(), Some("stopped by the user"));
/// ```
#[derive(Clone)]
pub struct Interrupt(Arc<dyn Fn() -> Option<String> + Send + Sync>);

impl Interrupt {
    /// Wraps a check that returns `Some(reason)` once work should stop.
    pub fn new(check: impl Fn() -> Option<String> + Send + Sync + 'static) -> Interrupt {
        Interrupt(Arc::new(check))
    }

    /// `Some(reason)` when the work should stop now.
    pub fn check(&self) -> Option<String> {
        (self.0)()
    }
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interrupt")
    }
}
