//! API keys, kept out of every printable form.

use std::fmt;

/// An API key. Its `Debug` and `Display` print `[redacted]`, so a key
/// cannot leak through logs, traces, errors or panics that format it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; blank keys are treated as absent.
    pub fn new(key: impl Into<String>) -> Option<ApiKey> {
        let key = key.into().trim().to_string();
        (!key.is_empty()).then_some(ApiKey(key))
    }

    /// The key itself, for the one place that sends it: a request header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Removes the key, and any run of 8 or more of its characters, from `text`.
    ///
    /// Providers sometimes echo a partly masked key in error messages
    /// ("Incorrect API key provided: sk-proj-****1234"); scrubbing fragments
    /// keeps even those from printing.
    pub fn scrub(&self, text: &str) -> String {
        const FRAGMENT: usize = 8;
        let key = self.0.as_str();
        let mut out = text.replace(key, "[redacted]");
        if key.len() >= FRAGMENT && key.is_ascii() {
            for start in 0..=key.len() - FRAGMENT {
                let frag = &key[start..start + FRAGMENT];
                if out.contains(frag) {
                    out = out.replace(frag, "[redacted]");
                }
            }
        }
        out
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_format_and_fragments_are_scrubbed() {
        let key = ApiKey::new("sk-test-0123456789abcdef").unwrap();
        assert_eq!(format!("{key} {key:?}"), "[redacted] ApiKey([redacted])");
        let echoed =
            "Incorrect API key provided: sk-test-********89abcdef and sk-test-0123456789abcdef";
        let clean = key.scrub(echoed);
        assert!(
            !clean.contains("89abcdef") && !clean.contains("0123456789"),
            "{clean}"
        );
        assert!(ApiKey::new("   ").is_none());
    }
}
