//! Context lengths in tokens, as written on the command line.
//!
//! Lengths are binary, following the RLM and OOLONG papers, whose context
//! lengths are powers of two named by their leading digits:
//!
//! | written | tokens |
//! |---|---|
//! | `1k`, `8k`, `32k` | 1024, 8192, 32768 (`N·1024`) |
//! | `65k`, `131k`, `262k`, `524k` | 2^16, 2^17, 2^18, 2^19 (the papers' names) |
//! | `128k` | 131072 (`N·1024` again; the same length as `131k`) |
//! | `1m`, `2m` | 1048576, 2097152 (`N·2^20`) |
//! | `5000` | 5000 (a bare number is exact) |
//!
//! The rule: `Nk` is the power of two whose value in thousands truncates to
//! `N` (so `131k` is 131072) when there is one, and `N·1024` otherwise;
//! `Nm` is `N·2^20`. Suffixes are case-insensitive.

use super::EvalError;

/// The shortest context a task can have, in tokens (OOLONG's minimum too).
pub const MIN_LENGTH_TOKENS: usize = 1024;

/// The longest context a task can have, in tokens (16 MiB of text).
pub const MAX_LENGTH_TOKENS: usize = 4 << 20;

/// Parses a comma-separated list of lengths such as `"8k,32k,131k,1m"`.
///
/// ```
/// let lengths = rlm::eval::parse_lengths("8k,32k,131k,1m")?;
/// assert_eq!(lengths, vec![8192, 32768, 131072, 1048576]);
/// # Ok::<(), rlm::eval::EvalError>(())
/// ```
pub fn parse_lengths(input: &str) -> Result<Vec<usize>, EvalError> {
    let bad = |message: String| EvalError::Lengths {
        input: input.to_string(),
        message,
    };
    let mut lengths = Vec::new();
    for item in input.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(bad("empty item".into()));
        }
        let tokens = parse_length(item).map_err(bad)?;
        if lengths.contains(&tokens) {
            return Err(bad(format!("{item} ({tokens} tokens) is given twice")));
        }
        lengths.push(tokens);
    }
    Ok(lengths)
}

/// Parses one length such as `131k`; the error names what is wrong.
pub(crate) fn parse_length(item: &str) -> Result<usize, String> {
    let lower = item.trim().to_ascii_lowercase();
    let (digits, suffix) = match lower.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    if digits.is_empty() {
        return Err(format!("{item:?} does not start with a number"));
    }
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{item:?} is too large"))?;
    let tokens = match suffix {
        "" => Some(n),
        "k" => Some(thousands_power_of_two(n).unwrap_or(n.saturating_mul(1024))),
        "m" => n.checked_mul(1 << 20),
        _ => {
            return Err(format!(
                "{item:?} has an unknown suffix {suffix:?} (use k or m)"
            ))
        }
    };
    match tokens {
        Some(t) if t < MIN_LENGTH_TOKENS => Err(format!(
            "{item} is {t} tokens; the minimum is {MIN_LENGTH_TOKENS} (1k)"
        )),
        Some(t) if t <= MAX_LENGTH_TOKENS => Ok(t),
        _ => Err(format!(
            "{item} is more than the maximum of {MAX_LENGTH_TOKENS} tokens (4m)"
        )),
    }
}

/// The power of two `2^p` with `⌊2^p / 1000⌋ = n`, if any.
fn thousands_power_of_two(n: usize) -> Option<usize> {
    (10..40).map(|p| 1usize << p).find(|&v| v / 1000 == n)
}

/// The short name of a length, as used in task ids: `8k`, `131k`, `1m`,
/// or the bare number when no short name parses back to it.
///
/// ```
/// use rlm::eval::format_length;
/// assert_eq!(format_length(131072), "131k");
/// assert_eq!(format_length(1 << 20), "1m");
/// assert_eq!(format_length(5000), "5000");
/// ```
pub fn format_length(tokens: usize) -> String {
    let candidates = [
        (tokens % (1 << 20) == 0).then(|| format!("{}m", tokens >> 20)),
        tokens
            .is_power_of_two()
            .then(|| format!("{}k", tokens / 1000)),
        (tokens % 1024 == 0).then(|| format!("{}k", tokens / 1024)),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|name| parse_length(name) == Ok(tokens))
        .unwrap_or_else(|| tokens.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_round_trips() {
        for t in [
            1024,
            4096,
            65536,
            102400,
            131072,
            134144,
            1 << 20,
            3 << 20,
            5000,
        ] {
            assert_eq!(parse_length(&format_length(t)), Ok(t), "{t}");
        }
        assert_eq!(format_length(134144), "134144");
        assert_eq!(format_length(102400), "100k");
    }

    #[test]
    fn paper_names_and_binary_names_agree() {
        assert_eq!(parse_length("128k"), parse_length("131k"));
        assert_eq!(parse_length("64K"), parse_length("65k"));
        assert_eq!(parse_length("1048k"), parse_length("1M"));
    }
}
