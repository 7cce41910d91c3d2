//! Admission control shared by every call in a run: a concurrency limit
//! and an optional requests-per-minute pace.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Caps calls in flight and paces call starts.
#[derive(Debug)]
pub struct Limiter {
    in_flight: Arc<Semaphore>,
    /// The earliest start time of the next call, when paced.
    next_start: Option<tokio::sync::Mutex<Instant>>,
    spacing: Duration,
}

impl Limiter {
    /// At most `concurrency` calls at once (at least 1), and at most
    /// `per_minute` starts a minute when given.
    pub fn new(concurrency: usize, per_minute: Option<u32>) -> Limiter {
        let spacing = per_minute
            .filter(|&n| n > 0)
            .map_or(Duration::ZERO, |n| Duration::from_secs(60) / n);
        Limiter {
            in_flight: Arc::new(Semaphore::new(concurrency.max(1))),
            next_start: per_minute
                .filter(|&n| n > 0)
                .map(|_| tokio::sync::Mutex::new(Instant::now())),
            spacing,
        }
    }

    /// Waits for a free slot and for the pace; the slot frees when the permit
    /// drops. (`None` only if the semaphore were closed, which it never is:
    /// the call then runs unthrottled rather than fail.)
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self.in_flight.clone().acquire_owned().await.ok();
        if let Some(next) = &self.next_start {
            let start = {
                let mut next = next.lock().await;
                let start = (*next).max(Instant::now());
                *next = start + self.spacing;
                start
            };
            tokio::time::sleep_until(start).await;
        }
        permit
    }

    /// Calls currently holding a slot.
    pub fn in_flight(&self, concurrency: usize) -> usize {
        concurrency.max(1) - self.in_flight.available_permits().min(concurrency.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn pacing_spaces_starts() {
        let limiter = Limiter::new(10, Some(600)); // one start per 100 ms
        let t0 = Instant::now();
        for _ in 0..5 {
            drop(limiter.acquire().await);
        }
        assert_eq!(t0.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn concurrency_is_capped() {
        let limiter = Limiter::new(2, None);
        let a = limiter.acquire().await;
        let _b = limiter.acquire().await;
        assert_eq!(limiter.in_flight(2), 2);
        let third = tokio::time::timeout(Duration::from_millis(20), limiter.acquire()).await;
        assert!(third.is_err());
        drop(a);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), limiter.acquire())
                .await
                .is_ok()
        );
    }
}
