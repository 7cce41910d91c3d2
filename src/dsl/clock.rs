//! The per-cell wall clock, which stops while a cell waits on a sub-model.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Interrupt;

/// Measures a cell's own running time against its limit.
///
/// Sub-model calls can take minutes and are bounded by their own budgets,
/// so the time a cell spends waiting on them is paused out: code that waits
/// holds a [`PauseGuard`] from [`CellClock::pause`].
pub struct CellClock {
    started: Mutex<Instant>,
    limit: Duration,
    /// Nanoseconds spent paused during the current cell.
    paused_nanos: AtomicU64,
    /// Pauses in progress; parallel waits nest.
    pausing: Mutex<(usize, Option<Instant>)>,
    cancelled: AtomicBool,
    /// A stop condition from outside the session: the run's deadline, Ctrl-C.
    external: Option<ExternalStop>,
}

/// A check, owned by whoever runs the session, that says why to stop.
pub type ExternalStop = Arc<dyn Fn() -> Option<String> + Send + Sync>;

impl std::fmt::Debug for CellClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CellClock")
            .field("limit", &self.limit)
            .field("running", &self.running())
            .finish()
    }
}

/// Returned by [`CellClock::pause`]; the clock runs again when the last guard drops.
pub struct PauseGuard<'a>(&'a CellClock);

impl CellClock {
    pub(crate) fn new(limit: Duration, external: Option<ExternalStop>) -> CellClock {
        CellClock {
            external,
            started: Mutex::new(Instant::now()),
            limit,
            paused_nanos: AtomicU64::new(0),
            pausing: Mutex::new((0, None)),
            cancelled: AtomicBool::new(false),
        }
    }

    /// Starts timing a new cell.
    pub(crate) fn restart(&self) {
        if let Ok(mut s) = self.started.lock() {
            *s = Instant::now();
        }
        self.paused_nanos.store(0, Ordering::Relaxed);
        if let Ok(mut p) = self.pausing.lock() {
            *p = (0, None);
        }
    }

    /// Stops the clock until the guard drops.
    pub fn pause(&self) -> PauseGuard<'_> {
        if let Ok(mut p) = self.pausing.lock() {
            if p.0 == 0 {
                p.1 = Some(Instant::now());
            }
            p.0 += 1;
        }
        PauseGuard(self)
    }

    fn resume(&self) {
        if let Ok(mut p) = self.pausing.lock() {
            p.0 = p.0.saturating_sub(1);
            if p.0 == 0 {
                if let Some(since) = p.1.take() {
                    let nanos = since.elapsed().as_nanos().min(u64::MAX as u128) as u64;
                    self.paused_nanos.fetch_add(nanos, Ordering::Relaxed);
                }
            }
        }
    }

    /// Time the cell has run, excluding pauses.
    pub fn running(&self) -> Duration {
        let total = self.started.lock().map(|s| s.elapsed()).unwrap_or_default();
        let mut paused = Duration::from_nanos(self.paused_nanos.load(Ordering::Relaxed));
        if let Ok(p) = self.pausing.lock() {
            if let Some(since) = p.1 {
                paused += since.elapsed();
            }
        }
        total.saturating_sub(paused)
    }

    /// The limit this clock enforces.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Asks the running cell to stop at its next check (for Ctrl-C).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub(crate) fn clear_cancel(&self) {
        self.cancelled.store(false, Ordering::Relaxed);
    }

    /// Why the cell must stop now, if it must.
    pub fn stop_reason(&self) -> Option<StopReason> {
        if self.cancelled.load(Ordering::Relaxed) {
            Some(StopReason::Cancelled)
        } else if let Some(reason) = self.external.as_ref().and_then(|check| check()) {
            Some(StopReason::External(reason))
        } else if self.running() > self.limit {
            Some(StopReason::Timeout(self.limit))
        } else {
            None
        }
    }

    /// An [`Interrupt`] for native scans started by this cell.
    pub(crate) fn interrupt(self: &Arc<Self>) -> Interrupt {
        let clock = Arc::clone(self);
        Interrupt::new(move || clock.stop_reason().map(|r| r.to_string()))
    }
}

impl Drop for PauseGuard<'_> {
    fn drop(&mut self) {
        self.0.resume();
    }
}

/// Why a cell was stopped from outside the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The cell used up its wall-clock time.
    Timeout(Duration),
    /// The host asked it to stop.
    Cancelled,
    /// The run around the session must stop (deadline, interruption).
    External(String),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Timeout(limit) => write!(
                f,
                "the cell ran longer than its time limit of {}s (time spent waiting on sub-model calls is not counted); \
                 let native functions such as grep(), count_matches() or chunks() do the scanning instead of script loops",
                limit.as_secs_f64()
            ),
            StopReason::Cancelled => f.write_str("the cell was cancelled"),
            StopReason::External(reason) => f.write_str(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paused_time_does_not_count() {
        let clock = CellClock::new(Duration::from_millis(50), None);
        {
            let _outer = clock.pause();
            let _inner = clock.pause();
            std::thread::sleep(Duration::from_millis(80));
        }
        assert!(clock.stop_reason().is_none(), "ran {:?}", clock.running());
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(clock.stop_reason(), Some(StopReason::Timeout(_))));
        clock.restart();
        assert!(clock.stop_reason().is_none());
        clock.cancel();
        assert_eq!(clock.stop_reason(), Some(StopReason::Cancelled));
    }
}
