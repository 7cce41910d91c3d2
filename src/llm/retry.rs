//! When and how long to wait before retrying a failed call.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// Exponential backoff with full jitter, honouring `Retry-After`.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Delay before the first retry, doubled each time.
    pub base_delay: Duration,
    /// The longest wait, whatever the backoff or the server says.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based): the server's
    /// `Retry-After` when given, else a random delay in
    /// `[base·2^attempt / 2, base·2^attempt]`, both capped at `max_delay`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(self.max_delay);
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let half = exp / 2;
        half + Duration::from_nanos(fastrand::u64(
            0..=half.as_nanos().min(u64::MAX as u128) as u64,
        ))
    }
}

/// Whether an HTTP status is worth retrying: rate limits, timeouts,
/// conflicts and server errors (including Anthropic's 529 "overloaded").
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 425 | 429) || (500..=599).contains(&status)
}

/// The longest wait a server's `Retry-After` is taken at its word for.
/// Longer (or absurd: `1e30`, `1e300` ms) asks wait this long, and then
/// [`RetryPolicy::max_delay`] caps them again; the run's deadline cuts any
/// wait short, since a call is dropped when its run stops.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` (seconds) or `retry-after-ms`, as sent by OpenAI and Anthropic.
///
/// Whatever the server sends, this never fails: a value too large is
/// clamped to [`MAX_RETRY_AFTER`]; a negative one, NaN, garbage or an
/// HTTP date is ignored in favour of backoff.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    get("retry-after-ms")
        .map(|ms| ms / 1000.0)
        .and_then(clamped)
        .or_else(|| get("retry-after").and_then(clamped))
}

/// Seconds as a wait, at most [`MAX_RETRY_AFTER`]; `None` unless finite and
/// not negative. (`Duration::from_secs_f64` panics on what servers send.)
fn clamped(seconds: f64) -> Option<Duration> {
    if !(seconds.is_finite() && seconds >= 0.0) {
        return None;
    }
    Some(Duration::from_secs_f64(
        seconds.min(MAX_RETRY_AFTER.as_secs_f64()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let p = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for attempt in 0..8 {
            let d = p.delay(attempt, None);
            let full = Duration::from_millis(100 * (1 << attempt)).min(Duration::from_secs(1));
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(7))),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.delay(3, Some(Duration::from_millis(20))),
            Duration::from_millis(20)
        );
    }

    #[test]
    fn retry_after_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut date = HeaderMap::new();
        date.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&date), None);
        assert!(
            retryable_status(429)
                && retryable_status(529)
                && !retryable_status(401)
                && !retryable_status(400)
        );
    }

    #[test]
    fn absurd_retry_after_values_are_clamped_or_ignored_never_a_panic() {
        let wait = |name: &str, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
            retry_after(&h)
        };
        for (name, value) in [
            ("retry-after", "1e30"),
            ("retry-after", "1e308"),
            ("retry-after", "inf"),
            ("retry-after-ms", "1e300"),
            ("retry-after-ms", "1.7976931348623157e308"),
        ] {
            let d = wait(name, value);
            assert!(
                d.is_none() || d == Some(MAX_RETRY_AFTER),
                "{name}: {value}: {d:?}"
            );
        }
        assert_eq!(wait("retry-after", "1e30"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait("retry-after-ms", "1e300"), Some(MAX_RETRY_AFTER));
        for (name, value) in [
            ("retry-after", "-5"),
            ("retry-after", "NaN"),
            ("retry-after", "-inf"),
            ("retry-after", "soon"),
            ("retry-after", ""),
            ("retry-after-ms", "-1"),
            ("retry-after-ms", "nan"),
        ] {
            assert_eq!(wait(name, value), None, "{name}: {value}");
        }
        // A bad `retry-after-ms` falls back to a good `Retry-After`.
        let mut h = HeaderMap::new();
        h.insert("retry-after-ms", "NaN".parse().unwrap());
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        assert_eq!(
            RetryPolicy::default().delay(0, Some(MAX_RETRY_AFTER)),
            RetryPolicy::default().max_delay
        );
    }
}
