//! Typed, range-checked parsers for the flags of every command.
//!
//! A value out of range is refused by clap before anything runs: exit
//! status 2, and a message naming the flag and its range
//! (`invalid value '1e30' for '--timeout <TIMEOUT>': must be a number of
//! seconds more than 0 and at most 2592000 (30 days)`). The ranges are the
//! library's (`rlm::config`), so a flag and its key in `rlm.toml` accept
//! the same values.

use rlm::config;

/// A time limit in seconds: finite, more than 0, at most 30 days.
pub(crate) fn seconds(s: &str) -> Result<f64, String> {
    let value = number(s)?;
    config::seconds(value).map_err(|e| e.to_string())?;
    Ok(value)
}

/// A cost budget in US dollars: finite, 0 or more (`NaN` would disable it).
pub(crate) fn dollars(s: &str) -> Result<f64, String> {
    config::budget_usd(number(s)?).map_err(|e| e.to_string())
}

/// Model calls in flight at once: 1 to 1024.
pub(crate) fn concurrency(s: &str) -> Result<usize, String> {
    config::concurrency(whole(s)?).map_err(|e| e.to_string())
}

/// How the response cache is used: read, write, readwrite or off.
pub(crate) fn cache_mode(s: &str) -> Result<rlm::llm::CacheMode, String> {
    s.parse()
}

/// Tasks running at once: 1 to 1024, each a thread.
pub(crate) fn jobs(s: &str) -> Result<usize, String> {
    let n = whole(s)?;
    if (1..=config::MAX_JOBS).contains(&n) {
        return Ok(n);
    }
    Err(format!(
        "must be from 1 to {} tasks at once",
        config::MAX_JOBS
    ))
}

/// A script's operation limit: 1 or more (0 is no limit, and not a choice).
pub(crate) fn operations(s: &str) -> Result<u64, String> {
    match whole(s)? {
        0 => Err("must be at least 1 operation".into()),
        n => Ok(n as u64),
    }
}

/// A size: bytes, or a number with K, M, G or T (binary units: K = 1024),
/// with an optional `B` or `iB` (`512M`, `4GiB`, `64k`).
pub(crate) fn size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches('b').trim_end_matches('i');
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 10),
        Some((i, 'm')) => (&t[..i], 20),
        Some((i, 'g')) => (&t[..i], 30),
        Some((i, 't')) => (&t[..i], 40),
        _ => (t, 0),
    };
    let bad =
        || format!("{s:?} is not a size: write bytes, or a number with K, M, G or T (e.g. 512M)");
    let n: u64 = digits.trim().parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// A size of at least 1 byte.
pub(crate) fn nonzero_size(s: &str) -> Result<u64, String> {
    match size(s)? {
        0 => Err("must be at least 1 byte".into()),
        n => Ok(n),
    }
}

/// The largest response body read, from 1 KiB to 1 GiB.
pub(crate) fn response_bytes(s: &str) -> Result<u64, String> {
    let bytes = size(s)?;
    config::response_bytes(bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// A session's memory limit, from 16 MiB to 1 TiB.
pub(crate) fn memory_bytes(s: &str) -> Result<usize, String> {
    let range = "must be from 16M to 1T (bytes, or a number with K, M, G or T)";
    let bytes = size(s).map_err(|_| range.to_string())?;
    if !((16 << 20)..=(1 << 40)).contains(&bytes) {
        return Err(range.into());
    }
    usize::try_from(bytes).map_err(|_| range.to_string())
}

fn number(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("{s:?} is not a number"))
}

fn whole(s: &str) -> Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .map_err(|_| format!("{s:?} is not a whole number, 0 or more"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers_accept_their_ranges_and_refuse_the_rest() {
        assert_eq!(seconds("2.5"), Ok(2.5));
        assert_eq!(seconds("2592000"), Ok(2_592_000.0));
        for bad in ["1e30", "NaN", "inf", "-1", "0", "soon"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(dollars("0"), Ok(0.0));
        for bad in ["NaN", "-0.01", "inf"] {
            assert!(dollars(bad).is_err(), "{bad}");
        }
        assert_eq!(concurrency("1024"), Ok(1024));
        for bad in ["0", "1025", "1000000", "-1"] {
            assert!(concurrency(bad).is_err(), "{bad}");
            assert!(jobs(bad).is_err(), "{bad}");
        }
        assert!(operations("0").is_err() && operations("1") == Ok(1));
        assert_eq!(response_bytes("16M"), Ok(16 << 20));
        assert_eq!(response_bytes("2KiB"), Ok(2048));
        assert_eq!(response_bytes("1G"), Ok(1 << 30));
        for bad in ["10", "2G", "99999999999999999999", "lots"] {
            assert!(response_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_limits_take_binary_units_within_range() {
        assert_eq!(memory_bytes("64M"), Ok(64 << 20));
        assert_eq!(memory_bytes("1g"), Ok(1 << 30));
        assert_eq!(memory_bytes("1TiB"), Ok(1 << 40));
        for bad in ["0", "1K", "15M", "2T", "x", "", "1.5G"] {
            assert!(memory_bytes(bad).is_err(), "{bad}");
        }
    }
}
