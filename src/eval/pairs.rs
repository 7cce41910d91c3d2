//! OOLONG-Pairs-style questions: list every pair of users meeting a
//! condition on the (unstated) labels of their questions.
//!
//! Wording follows the RLM paper's appendix (tasks 1–20), in three kinds:
//!
//! | kind | condition on the pair (u, v) |
//! |---|---|
//! | `pairs_any` | both have at least one instance with label X or Y (tasks 1–3, 6, 8) |
//! | `pairs_dated` | as `pairs_any`, and every X instance of both is strictly after (or before) a date (tasks 4, 5, 7, 9, 10) |
//! | `pairs_asym` | one user meets conjunction A, the other conjunction B, of "at least / exactly one / two instances with L" (tasks 11–20) |
//!
//! Answers are lists of `(lower_id, higher_id)`; expected is the exact set.
//!
//! To keep every condition meaningful at every length, each user gets a
//! profile: for each label, zero (40%), exactly one (20%), exactly two
//! (10%) or many (30%) instances. The fixed counts are laid down first;
//! the rest of the context is filled from the "many" slots only, so "exactly
//! one" stays exactly one at 1m tokens. At most 30 users (at most 435
//! pairs); fewer in short contexts, where the fixed lines must fit in 60%
//! of the budget.

use std::collections::{BTreeMap, BTreeSet};

use super::pool::Pool;
use super::records::{self, article, join_and, Date, Record};
use super::rng::{skewed_weights, Rng, Weighted};
use super::{Expected, Generated};

const MAX_USERS: usize = 30;

/// The least number of lines a "many" slot gets.
const MANY_MIN: usize = 3;

pub(super) fn generate(rng: &mut Rng, target_bytes: usize, slot: usize, pool: &Pool) -> Generated {
    let days = records::seeded_calendar(rng);
    let mut bytes = records::header(pool).len();
    let mut lines = Vec::new();
    let mut many_slots: Vec<(u32, usize)> = Vec::new();
    let n_labels = pool.labels().len();

    for (i, user) in records::user_ids(rng, MAX_USERS).into_iter().enumerate() {
        let mut profile: Vec<usize> = (0..n_labels)
            .map(|_| match rng.below(10) {
                0..=3 => 0,
                4 | 5 => 1,
                6 => 2,
                _ => MANY_MIN,
            })
            .collect();
        // Every user appears; the first has a "many" slot so the context
        // can be filled to any length.
        if (i == 0 && !profile.contains(&MANY_MIN)) || profile.iter().all(|&n| n == 0) {
            profile[rng.index(n_labels)] = MANY_MIN;
        }
        let user_lines: Vec<Record> = profile
            .iter()
            .enumerate()
            .flat_map(|(label, &n)| std::iter::repeat_n(label, n))
            .map(|label| draw(rng, &days, pool, user, label))
            .collect();
        let added: usize = user_lines.iter().map(|r| r.line_len(pool)).sum();
        if i >= 2 && bytes + added > target_bytes * 3 / 5 {
            break;
        }
        bytes += added;
        lines.extend(user_lines);
        many_slots.extend(
            (0..n_labels)
                .filter(|&l| profile[l] == MANY_MIN)
                .map(|l| (user, l)),
        );
    }

    let ratio = rng.range(90, 98);
    let weights = Weighted::new(&skewed_weights(rng, many_slots.len(), ratio));
    records::fill(&mut lines, &mut bytes, target_bytes, pool, || {
        let (user, label) = many_slots[weights.sample(rng)];
        draw(rng, &days, pool, user, label)
    });
    rng.shuffle(&mut lines);

    let stats = Stats::new(&lines, pool);
    let (kind, query, expected) = ask(rng, slot, &stats, &days);
    Generated {
        kind,
        query,
        context: records::render(&lines, pool),
        expected: Expected::Pairs(expected),
        needle: None,
    }
}

fn draw(rng: &mut Rng, days: &[Date], pool: &Pool, user: u32, label: usize) -> Record {
    Record {
        date: *rng.pick(days),
        user,
        label,
        question: rng.index(pool.questions(label).len()),
    }
}

struct UserStats {
    counts: Vec<usize>,
    /// Dates of the user's instances, by label.
    dates: Vec<Vec<Date>>,
}

struct Stats {
    labels: Vec<String>,
    users: BTreeMap<u32, UserStats>,
}

impl Stats {
    fn new(lines: &[Record], pool: &Pool) -> Stats {
        let n = pool.labels().len();
        let mut users = BTreeMap::new();
        for r in lines {
            let u = users.entry(r.user).or_insert_with(|| UserStats {
                counts: vec![0; n],
                dates: vec![Vec::new(); n],
            });
            u.counts[r.label] += 1;
            u.dates[r.label].push(r.date);
        }
        Stats {
            labels: pool.labels().to_vec(),
            users,
        }
    }

    /// Pairs `(u, v)`, `u < v`, with `a(u) && b(v) || a(v) && b(u)`.
    fn pairs(
        &self,
        a: impl Fn(&UserStats) -> bool,
        b: impl Fn(&UserStats) -> bool,
    ) -> BTreeSet<(String, String)> {
        let users: Vec<(u32, bool, bool)> =
            self.users.iter().map(|(&id, s)| (id, a(s), b(s))).collect();
        let mut pairs = BTreeSet::new();
        for (i, &(u, au, bu)) in users.iter().enumerate() {
            for &(v, av, bv) in &users[i + 1..] {
                if au && bv || av && bu {
                    pairs.insert((u.to_string(), v.to_string()));
                }
            }
        }
        pairs
    }

    fn suffix(&self) -> String {
        format!(
            "Each of the questions can be labelled as one of the labels (the data does not \
             provide the labels, you need to figure out the label from the semantics of the \
             question): {}. In your answer, list all pairs in the format (user_id_1, \
             user_id_2), separated by newlines.",
            self.labels.join(", ")
        )
    }
}

type Answer = (String, BTreeSet<(String, String)>);
type Ask = fn(&mut Rng, &Stats, &[Date]) -> Option<Answer>;

/// Half the tasks are asymmetric, as in the paper (10 of 20).
const KINDS: [(&str, Ask); 4] = [
    ("pairs_any", any),
    ("pairs_asym", asym),
    ("pairs_dated", dated),
    ("pairs_asym", asym),
];

const PREFIX: &str =
    "In the above data, list all pairs of user IDs (no duplicate pairs, list lower ID first)";

fn ask(
    rng: &mut Rng,
    slot: usize,
    stats: &Stats,
    days: &[Date],
) -> (&'static str, String, BTreeSet<(String, String)>) {
    for k in 0..KINDS.len() {
        let (name, ask) = KINDS[(slot + k) % KINDS.len()];
        if let Some((query, pairs)) = ask(rng, stats, days) {
            return (name, query, pairs);
        }
    }
    // No condition has a pair (a context with almost no users): ask one
    // whose answer is the empty list.
    let (query, pairs) = any_of(stats, 0, 1);
    ("pairs_any", query, pairs)
}

fn label_pairs(rng: &mut Rng, n: usize) -> Vec<(usize, usize)> {
    let mut pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|a| (0..n).filter(move |&b| b != a).map(move |b| (a, b)))
        .collect();
    rng.shuffle(&mut pairs);
    pairs
}

/// Prefers label pairs that some users lack, so the answer is not simply
/// every pair of users.
fn any(rng: &mut Rng, s: &Stats, _: &[Date]) -> Option<Answer> {
    let all = s.users.len() * s.users.len().saturating_sub(1) / 2;
    let candidates: Vec<Answer> = label_pairs(rng, s.labels.len())
        .into_iter()
        .map(|(x, y)| any_of(s, x, y))
        .filter(|(_, pairs)| !pairs.is_empty())
        .collect();
    let mut fallback = None;
    for candidate in candidates {
        if candidate.1.len() < all {
            return Some(candidate);
        }
        fallback.get_or_insert(candidate);
    }
    fallback
}

fn any_of(s: &Stats, x: usize, y: usize) -> Answer {
    let has = |u: &UserStats| u.counts[x] + u.counts[y] > 0;
    let (lx, ly) = (&s.labels[x], &s.labels[y]);
    let query = format!(
        "{PREFIX} where both users have at least one instance with {} {lx} or {ly}. {}",
        article(lx),
        s.suffix()
    );
    (query, s.pairs(has, has))
}

fn dated(rng: &mut Rng, s: &Stats, days: &[Date]) -> Option<Answer> {
    for (x, y) in label_pairs(rng, s.labels.len()).into_iter().take(10) {
        let cutoff = days[rng.index(days.len() / 2) + days.len() / 4];
        let after = rng.chance(1, 2);
        let ok = |u: &UserStats| {
            u.counts[x] + u.counts[y] > 0
                && u.dates[x]
                    .iter()
                    .all(|&d| if after { d > cutoff } else { d < cutoff })
        };
        let pairs = s.pairs(ok, ok);
        if pairs.is_empty() {
            continue;
        }
        let (lx, ly) = (&s.labels[x], &s.labels[y]);
        let query = format!(
            "{PREFIX} where both users have at least one instance with {a} {lx} or {ly}, and all \
             instances that are {a} {lx} for both users must be {when} {date}. {suffix}",
            a = article(lx),
            when = if after { "after" } else { "before" },
            date = cutoff.long(),
            suffix = s.suffix()
        );
        return Some((query, pairs));
    }
    None
}

/// "at least one", "at least two", "exactly one", "exactly two" instances.
#[derive(Clone, Copy)]
struct Constraint {
    label: usize,
    exact: bool,
    n: usize,
}

impl Constraint {
    fn holds(self, u: &UserStats) -> bool {
        let c = u.counts[self.label];
        if self.exact {
            c == self.n
        } else {
            c >= self.n
        }
    }

    fn phrase(self, labels: &[String]) -> String {
        format!(
            "{} {} with {}",
            match (self.exact, self.n) {
                (false, 1) => "at least one",
                (false, _) => "at least two",
                (true, 1) => "exactly one",
                (true, _) => "exactly two",
            },
            if self.n == 1 { "instance" } else { "instances" },
            labels[self.label]
        )
    }
}

fn conjunction(rng: &mut Rng, n_labels: usize) -> Vec<Constraint> {
    let k = rng.range(1, 3) as usize;
    rng.sample_indices(n_labels, k)
        .into_iter()
        .map(|label| {
            let (exact, n) = match rng.below(10) {
                0..=3 => (false, 1),
                4 | 5 => (false, 2),
                6..=8 => (true, 1),
                _ => (true, 2),
            };
            Constraint { label, exact, n }
        })
        .collect()
}

fn asym(rng: &mut Rng, s: &Stats, _: &[Date]) -> Option<Answer> {
    for _ in 0..30 {
        let a = conjunction(rng, s.labels.len());
        let b = conjunction(rng, s.labels.len());
        let pairs = s.pairs(
            |u| a.iter().all(|c| c.holds(u)),
            |u| b.iter().all(|c| c.holds(u)),
        );
        if pairs.is_empty() {
            continue;
        }
        let side = |cs: &[Constraint]| {
            join_and(&cs.iter().map(|c| c.phrase(&s.labels)).collect::<Vec<_>>())
        };
        let query = format!(
            "{PREFIX} such that one user has {}, and the other user has {}. {}",
            side(&a),
            side(&b),
            s.suffix()
        );
        return Some((query, pairs));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_sets_stay_small_and_kinds_all_occur() {
        let pool = Pool::builtin();
        let mut kinds = BTreeSet::new();
        for slot in 0..12 {
            let mut rng = Rng::new(100 + slot as u64);
            let g = generate(&mut rng, 400_000, slot, &pool);
            kinds.insert(g.kind);
            let Expected::Pairs(p) = g.expected else {
                panic!("pairs task without pairs")
            };
            assert!(!p.is_empty() && p.len() <= 435, "{}", p.len());
        }
        assert_eq!(kinds.len(), 3, "{kinds:?}");
    }

    #[test]
    fn constraint_phrases_read_like_the_paper() {
        let labels = vec!["entity".to_string()];
        let c = Constraint {
            label: 0,
            exact: true,
            n: 2,
        };
        assert_eq!(c.phrase(&labels), "exactly two instances with entity");
    }
}
