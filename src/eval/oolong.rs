//! OOLONG-synth-style aggregation questions (the `trec_coarse` task).
//!
//! Each task draws its own context: questions sampled with a skewed label
//! distribution (a geometric series of weights with a seeded ratio, shuffled
//! over the labels), users with a skewed activity distribution, and dates
//! uniform over two years. Then one question of the kinds below is asked,
//! worded as in the OOLONG paper's tables 15–17:
//!
//! | kind | asks | answer |
//! |---|---|---|
//! | `count_label` | how many lines have label L | `Answer: number` |
//! | `most_common_label` / `least_common_label` | which label | `Label: answer` |
//! | `compare_labels` | is A more/less/same as B | `Answer: A is [X] B` |
//! | `user_count_label` | lines of label L from given users | `Answer: number` |
//! | `user_most_label` | which user has most lines of L | `User: [X]` |
//! | `user_compare_label` | user A or B, more lines of L | `User: [X]` |
//! | `month_count_label` | lines of L in a month of any year | `Answer: number` |
//! | `month_most_label` | month in which L occurs most | `Answer: [month] [year]` |
//! | `months_more_frequent` | months where A beats B | `Answer: [X]` |
//!
//! A kind is asked only when its answer is well defined: unique maxima,
//! and, as in OOLONG, a frequency gap of more than 2% of all lines for
//! most/least-common and comparison questions. Otherwise the next kind is
//! tried; `count_label` always works.

use std::collections::BTreeMap;

use super::pool::Pool;
use super::records::{self, Date, Record, MONTHS};
use super::rng::{skewed_weights, Rng, Weighted};
use super::{Comparison, Expected, Generated};

pub(super) fn generate(rng: &mut Rng, target_bytes: usize, slot: usize, pool: &Pool) -> Generated {
    let n_labels = pool.labels().len();
    let ratio = rng.range(35, 85);
    let labels = Weighted::new(&skewed_weights(rng, n_labels, ratio));

    let expected_lines = target_bytes / records::mean_line_len(pool);
    let users = records::user_ids(rng, (expected_lines / 40).clamp(4, 60));
    let ratio = rng.range(88, 97);
    let activity = Weighted::new(&skewed_weights(rng, users.len(), ratio));
    let days = records::seeded_calendar(rng);

    let mut lines = Vec::new();
    let mut bytes = records::header(pool).len();
    records::fill(&mut lines, &mut bytes, target_bytes, pool, || {
        let label = labels.sample(rng);
        Record {
            date: *rng.pick(&days),
            user: users[activity.sample(rng)],
            label,
            question: rng.index(pool.questions(label).len()),
        }
    });

    let stats = Stats::new(&lines, pool);
    let (kind, query, expected) = ask(rng, slot, &stats);
    Generated {
        kind,
        query,
        context: records::render(&lines, pool),
        expected,
        needle: None,
    }
}

/// Counts over the generated lines, everything the questions need.
struct Stats {
    labels: Vec<String>,
    total: u64,
    by_label: Vec<u64>,
    by_user: BTreeMap<u32, Vec<u64>>,
    /// Keyed by (year, month).
    by_month: BTreeMap<(u16, u8), Vec<u64>>,
    /// Keyed by month 1–12, over all years.
    by_month_of_year: BTreeMap<u8, Vec<u64>>,
}

impl Stats {
    fn new(lines: &[Record], pool: &Pool) -> Stats {
        let n = pool.labels().len();
        let mut s = Stats {
            labels: pool.labels().to_vec(),
            total: lines.len() as u64,
            by_label: vec![0; n],
            by_user: BTreeMap::new(),
            by_month: BTreeMap::new(),
            by_month_of_year: BTreeMap::new(),
        };
        for r in lines {
            s.by_label[r.label] += 1;
            s.by_user.entry(r.user).or_insert_with(|| vec![0; n])[r.label] += 1;
            let month = (r.date.year, r.date.month);
            s.by_month.entry(month).or_insert_with(|| vec![0; n])[r.label] += 1;
            s.by_month_of_year
                .entry(r.date.month)
                .or_insert_with(|| vec![0; n])[r.label] += 1;
        }
        s
    }

    fn present_labels(&self) -> Vec<usize> {
        let present: Vec<usize> = (0..self.labels.len())
            .filter(|&l| self.by_label[l] > 0)
            .collect();
        if present.is_empty() {
            (0..self.labels.len()).collect()
        } else {
            present
        }
    }

    /// OOLONG asks frequency questions only when the gap is over 2%.
    fn clear_gap(&self, a: u64, b: u64) -> bool {
        50 * a.abs_diff(b) > self.total
    }
}

type Ask = fn(&mut Rng, &Stats) -> Option<(String, Expected)>;

/// Interleaved so that consecutive task indices vary the question group.
const KINDS: [(&str, Ask); 10] = [
    ("count_label", count_label),
    ("most_common_label", most_common_label),
    ("user_count_label", user_count_label),
    ("month_count_label", month_count_label),
    ("compare_labels", compare_labels),
    ("user_most_label", user_most_label),
    ("month_most_label", month_most_label),
    ("least_common_label", least_common_label),
    ("user_compare_label", user_compare_label),
    ("months_more_frequent", months_more_frequent),
];

fn ask(rng: &mut Rng, slot: usize, stats: &Stats) -> (&'static str, String, Expected) {
    for k in 0..KINDS.len() {
        let (name, ask) = KINDS[(slot + k) % KINDS.len()];
        if let Some((query, expected)) = ask(rng, stats) {
            return (name, query, expected);
        }
    }
    unreachable!("count_label always has an answer")
}

fn count_label(rng: &mut Rng, s: &Stats) -> Option<(String, Expected)> {
    let l = *rng.pick(&s.present_labels());
    Some((
        format!(
            "In the above data, how many data points should be classified as label '{}'? \
             Give your final answer in the form 'Answer: number'.",
            s.labels[l]
        ),
        Expected::Number(s.by_label[l] as i64),
    ))
}

/// The index with the largest (or, with `least`, smallest) count, if it
/// beats the runner-up by a clear gap.
fn extreme_label(s: &Stats, least: bool) -> Option<usize> {
    let mut order: Vec<usize> = (0..s.labels.len()).collect();
    order.sort_by_key(|&l| s.by_label[l]);
    if !least {
        order.reverse();
    }
    let (first, second) = (order[0], order[1]);
    s.clear_gap(s.by_label[first], s.by_label[second])
        .then_some(first)
}

fn most_common_label(_: &mut Rng, s: &Stats) -> Option<(String, Expected)> {
    common_label(s, false)
}

fn least_common_label(_: &mut Rng, s: &Stats) -> Option<(String, Expected)> {
    common_label(s, true)
}

/// "Which label is the most (or least) common?", when one clearly is.
fn common_label(s: &Stats, least: bool) -> Option<(String, Expected)> {
    let l = extreme_label(s, least)?;
    let which = if least { "least" } else { "most" };
    Some((
        format!(
            "In the above data, which of the labels is the {which} common? Give your final answer \
             in the form 'Label: answer' where answer is one of the labels: {}.",
            s.labels.join(", ")
        ),
        Expected::Exact(s.labels[l].clone()),
    ))
}

fn compare_labels(rng: &mut Rng, s: &Stats) -> Option<(String, Expected)> {
    let n = s.labels.len();
    let mut pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|a| (0..n).filter(move |&b| b != a).map(move |b| (a, b)))
        .collect();
    rng.shuffle(&mut pairs);
    let (a, b) = pairs.into_iter().find(|&(a, b)| {
        let (ca, cb) = (s.by_label[a], s.by_label[b]);
        ca == cb || s.clear_gap(ca, cb)
    })?;
    let relation = match s.by_label[a].cmp(&s.by_label[b]) {
        std::cmp::Ordering::Greater => Comparison::MoreCommon,
        std::cmp::Ordering::Less => Comparison::LessCommon,
        std::cmp::Ordering::Equal => Comparison::SameFrequency,
    };
    let (a, b) = (&s.labels[a], &s.labels[b]);
    Some((
        format!(
            "In the above data, is label '{a}' more common, less common, or the same frequency \
             as label '{b}'? Give your final answer in the form 'Answer: {a} is [X] {b}', where \
             [X] is 'more common than', 'less common than', or 'same frequency as'."
        ),
        Expected::Comparison(relation),
    ))
}

fn user_count_label(rng: &mut Rng, s: &Stats) -> Option<(String, Expected)> {
    let users: Vec<u32> = s.by_user.keys().copied().collect();
    let k = rng.range(1, 3) as usize;
    let mut chosen: Vec<u32> = rng
        .sample_indices(users.len(), k)
        .into_iter()
        .map(|i| users[i])
        .collect();
    chosen.sort_unstable();
    let l = *rng.pick(&s.present_labels());
    let count: u64 = chosen.iter().map(|u| s.by_user[u][l]).sum();
    let ids: Vec<String> = chosen.iter().map(u32::to_string).collect();
    let subset = match ids.as_slice() {
        [one] => {
            format!("associated with user ID {one}. Among instances associated with this user")
        }
        many => format!(
            "associated with user IDs {}. Among instances associated with these users",
            many.join(", ")
        ),
    };
    Some((
        format!(
            "For the following question, only consider the subset of instances that are \
             {subset}, how many data points should be classified as label '{}'? Give your final \
             answer in the form 'Answer: number'.",
            s.labels[l]
        ),
        Expected::Number(count as i64),
    ))
}

fn user_most_label(rng: &mut Rng, s: &Stats) -> Option<(String, Expected)> {
    let mut labels = s.present_labels();
    rng.shuffle(&mut labels);
    labels.into_iter().find_map(|l| {
        let user = unique_max(s.by_user.iter().map(|(&u, c)| (u, c[l])))?;
        Some((
            format!(
                "In the above data, which user has the most instances with the label '{}'? Give \
                 your final answer in the form 'User: [X]', where [X] is the user ID.",
                s.labels[l]
            ),
            Expected::Exact(user.to_string()),
        ))
    })
}

fn user_compare_label(rng: &mut Rng, s: &Stats) -> Option<(String, Expected)> {
    let users: Vec<u32> = s.by_user.keys().copied().collect();
    if users.len() < 2 {
        return None;
    }
    let labels = s.present_labels();
    for _ in 0..20 {
        let l = *rng.pick(&labels);
        let pair = rng.sample_indices(users.len(), 2);
        let (a, b) = (users[pair[0]], users[pair[1]]);
        let (ca, cb) = (s.by_user[&a][l], s.by_user[&b][l]);
        if ca != cb {
            return Some((
                format!(
                    "In the above data, which user has more instances with the label '{}': User \
                     {a} or User {b}? Give your final answer in the form 'User: [X]', where [X] \
                     is the user ID.",
                    s.labels[l]
                ),
                Expected::Exact(if ca > cb { a } else { b }.to_string()),
            ));
        }
    }
    None
}

fn month_count_label(rng: &mut Rng, s: &Stats) -> Option<(String, Expected)> {
    let months: Vec<u8> = s.by_month_of_year.keys().copied().collect();
    let month = *rng.pick(&months);
    let l = *rng.pick(&s.present_labels());
    let name = MONTHS[month as usize - 1];
    Some((
        format!(
            "For the following question, only consider the subset of instances that occur in \
             {name} of any year. Among instances occurring in {name}, how many data points should \
             be classified as label '{}'? Give your final answer in the form 'Answer: number'.",
            s.labels[l]
        ),
        Expected::Number(s.by_month_of_year[&month][l] as i64),
    ))
}

fn month_most_label(rng: &mut Rng, s: &Stats) -> Option<(String, Expected)> {
    let mut labels = s.present_labels();
    rng.shuffle(&mut labels);
    labels.into_iter().find_map(|l| {
        let (year, month) = unique_max(s.by_month.iter().map(|(&m, c)| (m, c[l])))?;
        Some((
            format!(
                "In the above data, in which month did the label '{}' occur most often? Give \
                 your final answer in the form 'Answer: [month] [year]', where [month] is the name \
                 of the month and [year] is the four-digit year.",
                s.labels[l]
            ),
            Expected::Exact(
                Date {
                    year,
                    month,
                    day: 1,
                }
                .month_year(),
            ),
        ))
    })
}

fn months_more_frequent(rng: &mut Rng, s: &Stats) -> Option<(String, Expected)> {
    let labels = s.present_labels();
    if labels.len() < 2 {
        return None;
    }
    let pair = rng.sample_indices(labels.len(), 2);
    let (a, b) = (labels[pair[0]], labels[pair[1]]);
    let months = s.by_month.values().filter(|c| c[a] > c[b]).count();
    let (na, nb) = (&s.labels[a], &s.labels[b]);
    Some((
        format!(
            "For how many months does the label '{na}' occur more frequently than the label \
             '{nb}'? Disregard months where there is a tie. Give your final answer in the form \
             'Answer: [X]', where [X] is the number of months where '{na}' occurs more often \
             than '{nb}'."
        ),
        Expected::Number(months as i64),
    ))
}

/// The key with the largest positive count, if no other key ties it.
fn unique_max<K: Copy>(counts: impl Iterator<Item = (K, u64)>) -> Option<K> {
    let mut best: Option<(K, u64)> = None;
    let mut tied = false;
    for (k, c) in counts {
        match best {
            Some((_, b)) if c < b => {}
            Some((_, b)) if c == b => tied = true,
            _ => {
                best = Some((k, c));
                tied = false;
            }
        }
    }
    match best {
        Some((k, c)) if c > 0 && !tied => Some(k),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_max_rejects_ties_and_zeros() {
        assert_eq!(unique_max([(1, 3), (2, 5), (3, 4)].into_iter()), Some(2));
        assert_eq!(unique_max([(1, 5), (2, 5), (3, 4)].into_iter()), None);
        assert_eq!(unique_max([(1, 5), (2, 5), (3, 6)].into_iter()), Some(3));
        assert_eq!(unique_max([(1, 0), (2, 0)].into_iter()), None);
    }

    #[test]
    fn every_kind_is_reachable() {
        let pool = Pool::builtin();
        let mut seen = std::collections::BTreeSet::new();
        for slot in 0..40 {
            let mut rng = Rng::new(slot as u64);
            let g = generate(&mut rng, 200_000, slot, &pool);
            seen.insert(g.kind);
        }
        assert_eq!(seen.len(), KINDS.len(), "{seen:?}");
    }
}
