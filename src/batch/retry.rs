//! Which ended tasks a resumed batch runs again.

use std::collections::BTreeSet;

/// The statuses `--retry` accepts, as users write them.
pub const RETRYABLE: &[&str] = &[
    "failed",
    "max_cost",
    "max_tokens",
    "max_calls",
    "timeout",
    "max_iterations",
    "invalid_answer",
];

/// The statuses whose tasks run again. Interrupted tasks always do:
/// they never ended, so there is nothing of theirs to keep.
///
/// ```
/// use rlm::batch::Retry;
/// let retry = Retry::parse("failed,max_cost").unwrap();
/// assert!(retry.covers("interrupted") && retry.covers("max_cost"));
/// assert!(retry.covers("error"), "a task that could not start failed too");
/// assert!(!retry.covers("submitted") && !retry.covers("timeout"));
/// assert!(Retry::parse("faild").unwrap_err().contains("failed, max_cost"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retry {
    statuses: BTreeSet<&'static str>,
}

impl Retry {
    /// Retries of tasks that failed (`--retry-failed`).
    pub fn failed() -> Retry {
        Retry {
            statuses: BTreeSet::from(["failed"]),
        }
    }

    /// Parses a comma-separated list of [`RETRYABLE`] statuses.
    /// `max_llm_calls`, the status as results write it, means `max_calls`.
    pub fn parse(list: &str) -> Result<Retry, String> {
        let mut statuses = BTreeSet::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let name = if name == "max_llm_calls" {
                "max_calls"
            } else {
                name
            };
            let Some(known) = RETRYABLE.iter().find(|s| **s == name) else {
                return Err(format!(
                    "unknown status `{name}`: --retry takes a list of {}",
                    RETRYABLE.join(", ")
                ));
            };
            statuses.insert(*known);
        }
        if statuses.is_empty() {
            return Err(format!(
                "--retry needs at least one of {}",
                RETRYABLE.join(", ")
            ));
        }
        Ok(Retry { statuses })
    }

    /// Adds the statuses of `other`.
    pub fn union(mut self, other: &Retry) -> Retry {
        self.statuses.extend(other.statuses.iter().copied());
        self
    }

    /// Whether a task whose latest result has `status` runs again.
    pub fn covers(&self, status: &str) -> bool {
        let name = match status {
            "interrupted" => return true,
            "submitted" => return false,
            // A task that could not start (its context is missing) failed.
            "error" => "failed",
            "max_llm_calls" => "max_calls",
            other => other,
        };
        self.statuses.contains(name)
    }
}
