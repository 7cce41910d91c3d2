//! The OOLONG-style lines shared by the `oolong` and `pairs` families.
//!
//! A context is one header line, then one line per record:
//!
//! ```text
//! Date: Mar 05, 2023 || User: 48213 || Instance: What is the capital of Peru ?
//! ```
//!
//! The label of each question is not in the text.

use super::pool::Pool;
use super::rng::Rng;

pub(super) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A calendar date. Orders chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Date {
    pub year: u16,
    /// 1–12.
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// `Mar 05, 2023`, the context's form (OOLONG's).
    pub fn short(self) -> String {
        format!(
            "{} {:02}, {}",
            &MONTHS[self.month as usize - 1][..3],
            self.day,
            self.year
        )
    }

    /// `March 5, 2023`, the form used in questions.
    pub fn long(self) -> String {
        format!(
            "{} {}, {}",
            MONTHS[self.month as usize - 1],
            self.day,
            self.year
        )
    }

    /// `March 2023`.
    pub fn month_year(self) -> String {
        format!("{} {}", MONTHS[self.month as usize - 1], self.year)
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Every day of `years` whole years from January 1 of `first_year`.
pub(super) fn calendar(first_year: u16, years: u16) -> Vec<Date> {
    let mut days = Vec::new();
    for year in first_year..first_year + years {
        for month in 1..=12 {
            for day in 1..=days_in_month(year, month) {
                days.push(Date { year, month, day });
            }
        }
    }
    days
}

/// One line of a context.
#[derive(Debug, Clone, Copy)]
pub(super) struct Record {
    pub date: Date,
    pub user: u32,
    /// Index into the pool's labels.
    pub label: usize,
    /// Index into the pool's questions of that label.
    pub question: usize,
}

const DATE_PREFIX: &str = "Date: ";
const USER_PREFIX: &str = " || User: ";
const INSTANCE_PREFIX: &str = " || Instance: ";
/// `Mar 05, 2023`.
const DATE_LEN: usize = 12;

impl Record {
    /// The rendered line's length in bytes, newline included.
    pub fn line_len(&self, pool: &Pool) -> usize {
        DATE_PREFIX.len()
            + DATE_LEN
            + USER_PREFIX.len()
            + digits(self.user)
            + INSTANCE_PREFIX.len()
            + self.question_text(pool).len()
            + 1
    }

    pub fn question_text<'p>(&self, pool: &'p Pool) -> &'p str {
        &pool.questions(self.label)[self.question]
    }

    fn render(&self, pool: &Pool, out: &mut String) {
        out.push_str(DATE_PREFIX);
        out.push_str(&self.date.short());
        out.push_str(USER_PREFIX);
        out.push_str(&self.user.to_string());
        out.push_str(INSTANCE_PREFIX);
        out.push_str(self.question_text(pool));
        out.push('\n');
    }
}

fn digits(n: u32) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The first line of every context: what the lines are and which labels
/// exist, but not which line has which.
pub(super) fn header(pool: &Pool) -> String {
    format!(
        "The following lines contain general-knowledge questions, one per line. Each line has a \
         date, a user ID and an instance (the question). Each question can be classified as one \
         of the labels: {}. The labels are not given; infer each from the meaning of the \
         question.\n",
        pool.labels().join(", ")
    )
}

/// The header plus one line per record.
pub(super) fn render(records: &[Record], pool: &Pool) -> String {
    let header = header(pool);
    let size = header.len() + records.iter().map(|r| r.line_len(pool)).sum::<usize>();
    let mut out = String::with_capacity(size);
    out.push_str(&header);
    for r in records {
        r.render(pool, &mut out);
    }
    debug_assert_eq!(out.len(), size);
    out
}

/// Appends records drawn by `draw` while each one brings `*bytes` closer
/// to `target`, so the total ends within half a line of it.
pub(super) fn fill(
    records: &mut Vec<Record>,
    bytes: &mut usize,
    target: usize,
    pool: &Pool,
    mut draw: impl FnMut() -> Record,
) {
    loop {
        let record = draw();
        let len = record.line_len(pool);
        if *bytes + len / 2 > target {
            return;
        }
        *bytes += len;
        records.push(record);
    }
}

/// `n` distinct 5-digit user IDs, in random order.
pub(super) fn user_ids(rng: &mut Rng, n: usize) -> Vec<u32> {
    let mut ids: Vec<u32> = Vec::with_capacity(n);
    while ids.len() < n {
        let id = rng.range(10_000, 99_999) as u32;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// Mean rendered line length over the pool, for sizing user counts.
pub(super) fn mean_line_len(pool: &Pool) -> usize {
    let (mut total, mut n) = (0, 0);
    for l in 0..pool.labels().len() {
        for q in pool.questions(l) {
            total += q.len();
            n += 1;
        }
    }
    DATE_PREFIX.len()
        + DATE_LEN
        + USER_PREFIX.len()
        + 5
        + INSTANCE_PREFIX.len()
        + 1
        + total / n.max(1)
}

/// `January 1` of a year in 2019–2024, and a span of two years.
pub(super) fn seeded_calendar(rng: &mut Rng) -> Vec<Date> {
    let first_year = rng.range(2019, 2024) as u16;
    calendar(first_year, 2)
}

/// `a`, `a and b`, or `a, b, and c` (the RLM paper's Oxford comma).
pub(super) fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

/// "a" or "an" before a label.
pub(super) fn article(word: &str) -> &'static str {
    match word.as_bytes().first() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') => "an",
        _ => "a",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_counts_leap_days() {
        assert_eq!(calendar(2023, 2).len(), 365 + 366);
        assert_eq!(calendar(2100, 1).len(), 365);
        assert_eq!(calendar(2000, 1).len(), 366);
    }

    #[test]
    fn dates_format_like_oolong() {
        let d = Date {
            year: 2023,
            month: 3,
            day: 5,
        };
        assert_eq!(d.short(), "Mar 05, 2023");
        assert_eq!(d.long(), "March 5, 2023");
        assert_eq!(d.month_year(), "March 2023");
    }

    #[test]
    fn line_len_matches_rendering() {
        let pool = Pool::builtin();
        let r = Record {
            date: Date {
                year: 2024,
                month: 12,
                day: 31,
            },
            user: 12345,
            label: 2,
            question: 3,
        };
        let mut s = String::new();
        r.render(&pool, &mut s);
        assert_eq!(s.len(), r.line_len(&pool));
        assert!(s.starts_with("Date: Dec 31, 2024 || User: 12345 || Instance: "));
    }
}
