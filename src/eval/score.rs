//! Parsing model answers and scoring them, the OOLONG and RULER way:
//! lenient in what is accepted as an answer, strict in comparing it.
//!
//! | expected | rule |
//! |---|---|
//! | [`Expected::Contains`] | 1 if the raw answer contains the text (RULER) |
//! | [`Expected::Number`] | `0.75^|y − ŷ|` for the first integer of the parsed answer, 0 if none (OOLONG) |
//! | [`Expected::Exact`] | 1 if the parsed answer equals the expected text |
//! | [`Expected::Comparison`] | 1 if the parsed answer names the expected relation, and no other |
//! | [`Expected::Pairs`] | F1 of the pairs found anywhere in the answer against the expected set |

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::{Comparison, Expected};

pub(super) fn score_expected(expected: &Expected, answer: &str) -> f64 {
    match expected {
        Expected::Contains(value) => f64::from(u8::from(answer.contains(value.as_str()))),
        Expected::Number(y) => match parse_number(&parse_answer(answer)) {
            Some(guess) => {
                let distance = guess.abs_diff(*y).min(i32::MAX as u64) as i32;
                0.75f64.powi(distance)
            }
            None => 0.0,
        },
        Expected::Exact(text) => f64::from(u8::from(
            comparable(&parse_answer(answer)) == comparable(text),
        )),
        Expected::Comparison(relation) => f64::from(u8::from(
            parse_comparison(&parse_answer(answer)) == Some(*relation),
        )),
        Expected::Pairs(pairs) => pair_f1(&parse_pairs(answer), pairs),
    }
}

/// Markers after which an answer is expected, as in OOLONG's templates.
const MARKERS: [&str; 4] = ["answer:", "label:", "user:", "date:"];

/// Extracts the answer proper from a model's reply, OOLONG-style.
///
/// Markdown bold and code marks are dropped first. Then the text after the
/// last `Answer:`, `Label:`, `User:` or `Date:` (any case) is taken, up to
/// the end of its line (or the next non-empty line, when the marker ends a
/// line); without a marker, the last non-empty line. Finally quotes,
/// brackets, a leading `User` / `Label` word and surrounding punctuation
/// are stripped, runs of spaces collapse, and the result is lowercased.
///
/// ```
/// use rlm::eval::parse_answer;
/// assert_eq!(parse_answer("I counted them.\nAnswer: **location**."), "location");
/// assert_eq!(parse_answer("User: [48213]"), "48213");
/// assert_eq!(parse_answer("Label: \"Numeric Value\""), "numeric value");
/// ```
pub fn parse_answer(answer: &str) -> String {
    let plain: String = answer.chars().filter(|&c| c != '*' && c != '`').collect();
    let lower = plain.to_ascii_lowercase();
    let cut = MARKERS
        .iter()
        .filter_map(|m| lower.rfind(m).map(|i| i + m.len()))
        .max();
    let mut lines = match cut {
        Some(i) => plain[i..].lines(),
        None => plain.lines(),
    }
    .map(str::trim)
    .filter(|l| !l.is_empty());
    let candidate = match cut {
        Some(_) => lines.next(),
        None => lines.next_back(),
    };
    normalize(candidate.unwrap_or_default())
}

fn normalize(candidate: &str) -> String {
    const DROP: &[char] = &['[', ']', '"', '“', '”', '«', '»'];
    const EDGES: &[char] = &[
        '.', ',', ';', ':', '!', '?', '\'', '‘', '’', '(', ')', '{', '}', '<', '>',
    ];
    let kept: String = candidate.chars().filter(|c| !DROP.contains(c)).collect();
    let mut s = kept
        .trim_matches(|c: char| c.is_whitespace() || EDGES.contains(&c))
        .to_lowercase();
    for prefix in ["user ", "label "] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest
                .trim_matches(|c: char| c.is_whitespace() || EDGES.contains(&c))
                .to_string();
        }
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The form two exact answers are compared in: commas are formatting
/// (`March, 2023` is `March 2023`).
fn comparable(text: &str) -> String {
    normalize(&text.replace(',', " "))
}

/// The first integer in `text`, allowing thousands separators (`1,234`).
///
/// ```
/// assert_eq!(rlm::eval::parse_number("about 1,234 lines"), Some(1234));
/// assert_eq!(rlm::eval::parse_number("-3"), Some(-3));
/// assert_eq!(rlm::eval::parse_number("none"), None);
/// ```
pub fn parse_number(text: &str) -> Option<i64> {
    static NUMBER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"-?\d{1,3}(?:,\d{3})+\b|-?\d+").expect("valid regex"));
    let m = NUMBER.find(text)?;
    m.as_str().replace(',', "").parse().ok()
}

fn parse_comparison(candidate: &str) -> Option<Comparison> {
    let named: Vec<Comparison> = [
        ("more common", Comparison::MoreCommon),
        ("less common", Comparison::LessCommon),
        ("same frequency", Comparison::SameFrequency),
    ]
    .into_iter()
    .filter(|(phrase, _)| candidate.contains(phrase))
    .map(|(_, c)| c)
    .collect();
    match named.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// The user-ID pairs in an answer, each as `(lower, higher)` by numeric
/// value, duplicates and `(x, x)` dropped.
///
/// Bracketed pairs such as `(123, 456)`, `[123, 456]` or `<123 456>` are
/// taken from anywhere in the answer. If there are none, each line is read
/// for loose pairs: two numbers joined by a comma, dash, slash, `and` or
/// spaces (`123-456`, `123, 456, 789, 1011` is two pairs).
///
/// ```
/// let pairs = rlm::eval::parse_pairs("(456, 123)\n(123, 789), [789,456]");
/// assert_eq!(pairs.len(), 3);
/// assert!(pairs.contains(&("123".to_string(), "456".to_string())));
/// ```
pub fn parse_pairs(answer: &str) -> BTreeSet<(String, String)> {
    static BRACKETED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"[(\[{<]\s*(\d+)\s*(?:,|;|/|-|–|—|&|and|\s)\s*(\d+)\s*[)\]}>]")
            .expect("valid regex")
    });
    static LOOSE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(\d+)[ \t]*(?:,|;|/|-|–|—|&|and|[ \t])[ \t]*(\d+)").expect("valid regex")
    });
    let mut pairs = BTreeSet::new();
    let mut add = |a: &str, b: &str| {
        if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
            if a != b {
                pairs.insert((a.min(b).to_string(), a.max(b).to_string()));
            }
        }
    };
    let bracketed: Vec<_> = BRACKETED.captures_iter(answer).collect();
    if bracketed.is_empty() {
        for line in answer.lines() {
            for c in LOOSE.captures_iter(line) {
                add(&c[1], &c[2]);
            }
        }
    } else {
        for c in bracketed {
            add(&c[1], &c[2]);
        }
    }
    pairs
}

/// F1 of `predicted` against `expected`: 1 when both are empty, 0 when
/// they share nothing.
///
/// ```
/// use std::collections::BTreeSet;
/// let p = |v: &[(&str, &str)]| -> BTreeSet<(String, String)> {
///     v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
/// };
/// // 2 of 3 predicted are right, 2 of 4 expected are found: P = 2/3, R = 1/2.
/// let f1 = rlm::eval::pair_f1(&p(&[("1", "2"), ("1", "3"), ("8", "9")]),
///                             &p(&[("1", "2"), ("1", "3"), ("2", "3"), ("4", "5")]));
/// assert!((f1 - 4.0 / 7.0).abs() < 1e-12);
/// ```
pub fn pair_f1(
    predicted: &BTreeSet<(String, String)>,
    expected: &BTreeSet<(String, String)>,
) -> f64 {
    if predicted.is_empty() && expected.is_empty() {
        return 1.0;
    }
    let hits = predicted.intersection(expected).count();
    if hits == 0 {
        return 0.0;
    }
    let precision = hits as f64 / predicted.len() as f64;
    let recall = hits as f64 / expected.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_like_oolong() {
        assert_eq!(parse_answer("Answer: **location**."), "location");
        assert_eq!(parse_answer("**Answer**: Human Being"), "human being");
        assert_eq!(parse_answer("Label: 'numeric value'"), "numeric value");
        assert_eq!(
            parse_answer("The final answer is:\nAnswer:\n  [entity]\nthanks"),
            "entity"
        );
        assert_eq!(parse_answer("Answer: User 12345"), "12345");
        assert_eq!(
            parse_answer("thinking...\n\nabbreviation\n"),
            "abbreviation"
        );
        assert_eq!(parse_answer(""), "");
    }

    #[test]
    fn numbers_score_with_partial_credit() {
        let e = Expected::Number(40);
        assert_eq!(score_expected(&e, "Answer: 40"), 1.0);
        assert_eq!(score_expected(&e, "Answer: 42"), 0.75f64.powi(2));
        assert_eq!(score_expected(&e, "Answer: 38 data points"), 0.5625);
        assert_eq!(score_expected(&e, "Answer: many"), 0.0);
        assert_eq!(score_expected(&e, "Answer: 4000000000000"), 0.0);
    }

    #[test]
    fn comparisons_need_exactly_one_relation() {
        let e = Expected::Comparison(Comparison::LessCommon);
        assert_eq!(
            score_expected(&e, "Answer: entity is less common than location"),
            1.0
        );
        assert_eq!(
            score_expected(&e, "Answer: entity is more common than location"),
            0.0
        );
        assert_eq!(
            score_expected(&e, "Answer: more common or less common"),
            0.0
        );
    }

    #[test]
    fn loose_pairs_are_read_per_line() {
        let p = parse_pairs("12345-67890, 11111 22222\n33333\n44444");
        let want: BTreeSet<(String, String)> = [("12345", "67890"), ("11111", "22222")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(p, want);
        assert!(parse_pairs("(5, 5)").is_empty());
    }
}
