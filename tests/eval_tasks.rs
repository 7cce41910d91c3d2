//! The `rlm eval` task generators and scorers, through the public API.
//!
//! Expected answers are recomputed here from nothing but the context text,
//! the query text and the pool's labels.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::rc::Rc;

use regex::Regex;
use rlm::eval::{
    generate, generate_task, pair_f1, parse_answer, parse_lengths, parse_pairs, score, Comparison,
    EvalTask, Expected, Family, Pool,
};

fn pairs_of(v: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

// ---- determinism and size --------------------------------------------------

#[test]
fn same_seed_same_tasks_other_seed_other_tasks() {
    let pool = Pool::builtin();
    for family in Family::ALL {
        let a = generate(family, 7, 3, &[8192], &pool).unwrap();
        let b = generate(family, 7, 3, &[8192], &pool).unwrap();
        assert_eq!(a, b, "{family}");
        let c = generate(family, 8, 3, &[8192], &pool).unwrap();
        for (x, y) in a.iter().zip(&c) {
            assert_ne!(x.context, y.context, "{family}: seeds 7 and 8 agree");
        }
        // Tasks differ from one another within a run, too.
        assert_ne!(a[0].context, a[1].context);
        // Task i does not depend on how many tasks are asked for.
        let one = generate_task(family, 7, 8192, 2, &pool).unwrap();
        assert_eq!(one, a[2]);
        assert_eq!(a[2].id, format!("{family}-8k-002"));
    }
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn a_fixed_seed_gives_fixed_bytes() {
    // Pins the generators' output across platforms and versions: when this
    // changes, old eval results stop being comparable with new ones, so
    // change it only on purpose. Pinned on the compiled-in pool, the one
    // `rlm eval` uses by default (and used before from ../shared).
    let pool = Pool::builtin();
    let pinned: [(Family, &str, u64); 3] = [
        (Family::Niah, "1245281", 0x0c21_eaea_ef63_ce3f),
        (Family::Oolong, "10", 0x2bb8_6e00_0592_f72e),
        (Family::Pairs, "2 pairs", 0x2368_9ae7_8639_7820),
    ];
    let got: Vec<(Family, String, u64)> = pinned
        .iter()
        .map(|&(family, _, _)| {
            let t = generate_task(family, 1, 1024, 0, &pool).unwrap();
            let hash = fnv1a(&format!("{}\n{}\n{}", t.query, t.context, t.expected));
            println!(
                "(Family::{family:?}, {:?}, {hash:#x}),",
                t.expected.to_string()
            );
            (family, t.expected.to_string(), hash)
        })
        .collect();
    let pinned: Vec<(Family, String, u64)> = pinned
        .iter()
        .map(|&(f, e, h)| (f, e.to_string(), h))
        .collect();
    assert_eq!(got, pinned);
}

#[test]
fn contexts_have_the_requested_size() {
    let pool = Pool::builtin();
    for family in Family::ALL {
        for length in [1024, 4096, 8192, 32768, 131072, 1 << 20] {
            let task = generate_task(family, 3, length, 0, &pool).unwrap();
            let target = 4 * length;
            let off = task.context.len().abs_diff(target) as f64 / target as f64;
            let tolerance = if length < 8192 { 0.03 } else { 0.01 };
            assert!(
                off <= tolerance,
                "{}: {} bytes for {target}",
                task.id,
                task.context.len()
            );
            let tokens = rlm::stats::estimate_tokens(task.context.len());
            assert!(tokens.abs_diff(length) as f64 <= tolerance * length as f64);
        }
    }
}

#[test]
fn lengths_outside_the_range_are_refused() {
    let pool = Pool::builtin();
    let err = generate_task(Family::Niah, 0, 100, 0, &pool).unwrap_err();
    assert!(err.to_string().contains("between 1024"), "{err}");
}

// ---- niah --------------------------------------------------------------------

#[test]
fn the_needle_occurs_once_at_its_recorded_offset() {
    let pool = Pool::builtin();
    let tasks = generate(Family::Niah, 11, 12, &[8192, 32768], &pool).unwrap();
    let mut depths = Vec::new();
    let key_shape = Regex::new(r"^[a-z]+-[a-z]+$").unwrap();
    for t in &tasks {
        let n = t.needle.as_ref().expect("niah tasks have a needle");
        assert_eq!(
            n.sentence,
            format!(
                "One of the special magic numbers for {} is: {}.",
                n.key, n.value
            )
        );
        let at: Vec<usize> = t
            .context
            .match_indices(&n.sentence)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at, vec![n.offset], "{}", t.id);
        assert_eq!(t.context.matches(&n.key).count(), 1);
        assert_eq!(t.context.matches(&n.value).count(), 1);
        assert!(key_shape.is_match(&n.key));
        assert!(n.value.len() == 7 && n.value.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(
            t.query,
            format!(
                "What is the special magic number for {} mentioned in the provided text?",
                n.key
            )
        );
        assert_eq!(t.expected, Expected::Contains(n.value.clone()));
        // The needle is its own sentence.
        assert!(
            n.offset == 0
                || t.context[..n.offset].ends_with(' ')
                || t.context[..n.offset].ends_with('\n')
        );
        depths.push(n.depth(t.context.len()));
    }
    assert!(depths.iter().all(|d| (0.0..1.0).contains(d)));
    assert!(
        depths.iter().any(|&d| d < 0.3) && depths.iter().any(|&d| d > 0.7),
        "{depths:?}"
    );
}

// ---- oolong: recomputing every answer from the text --------------------------

/// One context line, with its label looked up in the pool.
struct Line {
    year: u16,
    month: u8,
    day: u8,
    user: String,
    label: String,
}

const MONTHS: [&str; 12] = [
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

fn parse_context(context: &str, pool: &Pool) -> Vec<Line> {
    let mut lines = context.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("The following lines contain general-knowledge questions"));
    for label in pool.labels() {
        assert!(header.contains(label.as_str()));
    }
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(" || ").collect();
            assert_eq!(fields.len(), 3, "{line}");
            let date = fields[0].strip_prefix("Date: ").unwrap();
            let user = fields[1].strip_prefix("User: ").unwrap();
            let question = fields[2].strip_prefix("Instance: ").unwrap();
            let month = MONTHS
                .iter()
                .position(|m| date.starts_with(&m[..3]))
                .unwrap() as u8
                + 1;
            let day = date[4..6].parse().unwrap();
            let year = date[date.len() - 4..].parse().unwrap();
            assert_eq!(user.len(), 5);
            Line {
                year,
                month,
                day,
                user: user.to_string(),
                label: pool
                    .label_of(question)
                    .expect("question from the pool")
                    .to_string(),
            }
        })
        .collect()
}

fn capture<'q>(query: &'q str, pattern: &str) -> Vec<&'q str> {
    let re = Regex::new(pattern).unwrap();
    let c = re
        .captures(query)
        .unwrap_or_else(|| panic!("{pattern:?} not in {query:?}"));
    c.iter().skip(1).map(|m| m.unwrap().as_str()).collect()
}

fn count(lines: &[Line], keep: impl Fn(&Line) -> bool) -> i64 {
    lines.iter().filter(|l| keep(l)).count() as i64
}

/// The key with the strictly largest count.
fn argmax<K: Clone + Ord>(counts: &BTreeMap<K, i64>) -> K {
    let best = counts.values().max().unwrap();
    let winners: Vec<&K> = counts
        .iter()
        .filter(|(_, c)| *c == best)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(winners.len(), 1, "the generator asked about a tie");
    winners[0].clone()
}

fn recompute_oolong(task: &EvalTask, pool: &Pool) -> Expected {
    let lines = parse_context(&task.context, pool);
    let q = task.query.as_str();
    let label_counts = |keep: &dyn Fn(&Line) -> bool| -> BTreeMap<String, i64> {
        pool.labels()
            .iter()
            .map(|l| (l.clone(), count(&lines, |x| &x.label == l && keep(x))))
            .collect()
    };
    match task.kind.as_str() {
        "count_label" => {
            let l = capture(q, r"classified as label '([^']+)'")[0];
            Expected::Number(count(&lines, |x| x.label == l))
        }
        "most_common_label" => Expected::Exact(argmax(&label_counts(&|_| true))),
        "least_common_label" => {
            let negated = label_counts(&|_| true)
                .into_iter()
                .map(|(k, v)| (k, -v))
                .collect();
            Expected::Exact(argmax(&negated))
        }
        "compare_labels" => {
            let c = capture(
                q,
                r"is label '([^']+)' more common, less common, or the same frequency as label '([^']+)'",
            );
            let counts = label_counts(&|_| true);
            Expected::Comparison(match counts[c[0]].cmp(&counts[c[1]]) {
                std::cmp::Ordering::Greater => Comparison::MoreCommon,
                std::cmp::Ordering::Less => Comparison::LessCommon,
                std::cmp::Ordering::Equal => Comparison::SameFrequency,
            })
        }
        "user_count_label" => {
            let ids = capture(q, r"user IDs? ([\d, ]+)\.")[0];
            let ids: Vec<&str> = ids.split(", ").collect();
            let l = capture(q, r"label '([^']+)'")[0];
            Expected::Number(count(&lines, |x| {
                x.label == l && ids.contains(&x.user.as_str())
            }))
        }
        "user_most_label" => {
            let l = capture(q, r"label '([^']+)'")[0];
            let mut by_user = BTreeMap::new();
            for x in &lines {
                *by_user.entry(x.user.clone()).or_insert(0) += i64::from(x.label == l);
            }
            Expected::Exact(argmax(&by_user))
        }
        "user_compare_label" => {
            let c = capture(q, r"label '([^']+)': User (\d+) or User (\d+)\?");
            let a = count(&lines, |x| x.label == c[0] && x.user == c[1]);
            let b = count(&lines, |x| x.label == c[0] && x.user == c[2]);
            assert_ne!(a, b);
            Expected::Exact(if a > b { c[1] } else { c[2] }.to_string())
        }
        "month_count_label" => {
            let c = capture(q, r"occur in (\w+) of any year.*label '([^']+)'");
            let m = MONTHS.iter().position(|m| *m == c[0]).unwrap() as u8 + 1;
            Expected::Number(count(&lines, |x| x.month == m && x.label == c[1]))
        }
        "month_most_label" => {
            let l = capture(q, r"label '([^']+)'")[0];
            let mut by_month = BTreeMap::new();
            for x in lines.iter().filter(|x| x.label == l) {
                *by_month.entry((x.year, x.month)).or_insert(0) += 1;
            }
            let (year, month) = argmax(&by_month);
            Expected::Exact(format!("{} {year}", MONTHS[month as usize - 1]))
        }
        "months_more_frequent" => {
            let c = capture(
                q,
                r"label '([^']+)' occur more frequently than the label '([^']+)'",
            );
            let mut by_month: BTreeMap<(u16, u8), (i64, i64)> = BTreeMap::new();
            for x in &lines {
                let e = by_month.entry((x.year, x.month)).or_default();
                e.0 += i64::from(x.label == c[0]);
                e.1 += i64::from(x.label == c[1]);
            }
            Expected::Number(by_month.values().filter(|(a, b)| a > b).count() as i64)
        }
        other => panic!("unknown oolong kind {other}"),
    }
}

fn check_oolong(
    pool: &Pool,
    seeds: std::ops::Range<u64>,
    lengths: &[usize],
    n: usize,
) -> BTreeSet<String> {
    let mut kinds = BTreeSet::new();
    for seed in seeds {
        for task in generate(Family::Oolong, seed, n, lengths, pool).unwrap() {
            assert_eq!(
                recompute_oolong(&task, pool),
                task.expected,
                "{} {}",
                task.id,
                task.query
            );
            kinds.insert(task.kind.clone());
        }
    }
    kinds
}

#[test]
fn oolong_answers_follow_from_the_text() {
    let pool = Pool::builtin();
    let kinds = check_oolong(&pool, 0..3, &[1024, 8192, 32768], 10);
    assert_eq!(kinds.len(), 10, "{kinds:?}");
}

#[test]
fn oolong_labels_are_skewed_and_hidden() {
    let pool = Pool::builtin();
    let task = generate_task(Family::Oolong, 5, 32768, 0, &pool).unwrap();
    for label in pool.labels() {
        // Only the header names the labels.
        assert_eq!(
            task.context.matches(&format!("|| Label: {label}")).count(),
            0
        );
    }
    let lines = parse_context(&task.context, &pool);
    let mut counts: Vec<i64> = pool
        .labels()
        .iter()
        .map(|l| count(&lines, |x| &x.label == l))
        .collect();
    counts.sort_unstable();
    assert!(counts[5] > 2 * counts[2], "not skewed: {counts:?}");
}

// ---- pairs -------------------------------------------------------------------

/// Recomputes a pairs answer by brute force over the users in the text.
fn recompute_pairs(task: &EvalTask, pool: &Pool) -> BTreeSet<(String, String)> {
    let lines = parse_context(&task.context, pool);
    let mut users: BTreeMap<String, Vec<&Line>> = BTreeMap::new();
    for l in &lines {
        users.entry(l.user.clone()).or_default().push(l);
    }
    let q = task.query.as_str();
    assert!(q.starts_with(
        "In the above data, list all pairs of user IDs (no duplicate pairs, list lower ID first)"
    ));
    assert!(q.ends_with("In your answer, list all pairs in the format (user_id_1, user_id_2), separated by newlines."));
    let n_with = |u: &[&Line], label: &str| u.iter().filter(|l| l.label == label).count();

    type Pred = Rc<dyn Fn(&[&Line]) -> bool>;
    let (a, b): (Pred, Pred) = match task.kind.as_str() {
        "pairs_any" | "pairs_dated" => {
            let c = capture(
                q,
                r"both users have at least one instance with (?:an? )?(.+?) or (.+?)(?:\. Each|, and all)",
            );
            let (x, y) = (c[0].to_string(), c[1].to_string());
            let date_rule = (task.kind == "pairs_dated").then(|| {
                let d = capture(q, r"all instances that are (?:an? )?(.+?) for both users must be (after|before) (\w+) (\d+), (\d{4})\.");
                assert_eq!(d[0], x);
                let m = MONTHS.iter().position(|m| *m == d[2]).unwrap() as u8 + 1;
                (d[1] == "after", (d[4].parse::<u16>().unwrap(), m, d[3].parse::<u8>().unwrap()))
            });
            let both: Pred = Rc::new(move |u: &[&Line]| {
                let has = u.iter().any(|l| l.label == x || l.label == y);
                let dated_ok = date_rule.is_none_or(|(after, cutoff)| {
                    u.iter().filter(|l| l.label == x).all(|l| {
                        let d = (l.year, l.month, l.day);
                        if after {
                            d > cutoff
                        } else {
                            d < cutoff
                        }
                    })
                });
                has && dated_ok
            });
            (both.clone(), both)
        }
        "pairs_asym" => {
            let sides = capture(
                q,
                r"such that one user has (.+?), and the other user has (.+?)\. Each",
            );
            let alternatives = pool
                .labels()
                .iter()
                .map(|l| regex::escape(l))
                .collect::<Vec<_>>()
                .join("|");
            let constraint = Regex::new(&format!(
                r"(at least|exactly) (one|two) instances? with ({alternatives})"
            ))
            .unwrap();
            let parse_side = |side: &str| -> Vec<(bool, usize, String)> {
                let cs: Vec<_> = constraint
                    .captures_iter(side)
                    .map(|c| {
                        (
                            &c[1] == "exactly",
                            if &c[2] == "one" { 1 } else { 2 },
                            c[3].to_string(),
                        )
                    })
                    .collect();
                assert!(!cs.is_empty(), "{side}");
                cs
            };
            let (ca, cb) = (parse_side(sides[0]), parse_side(sides[1]));
            let holds = move |cs: &[(bool, usize, String)], u: &[&Line]| {
                cs.iter().all(|(exact, n, label)| {
                    let c = n_with(u, label);
                    if *exact {
                        c == *n
                    } else {
                        c >= *n
                    }
                })
            };
            (
                Rc::new(move |u: &[&Line]| holds(&ca, u)),
                Rc::new(move |u: &[&Line]| holds(&cb, u)),
            )
        }
        other => panic!("unknown pairs kind {other}"),
    };
    brute_force(&users, &*a, &*b)
}

fn brute_force(
    users: &BTreeMap<String, Vec<&Line>>,
    a: &dyn Fn(&[&Line]) -> bool,
    b: &dyn Fn(&[&Line]) -> bool,
) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for (u, lu) in users {
        for (v, lv) in users {
            if u < v && (a(lu) && b(lv) || a(lv) && b(lu)) {
                pairs.insert((u.clone(), v.clone()));
            }
        }
    }
    pairs
}

fn check_pairs(
    pool: &Pool,
    seeds: std::ops::Range<u64>,
    lengths: &[usize],
    n: usize,
) -> BTreeSet<String> {
    let mut kinds = BTreeSet::new();
    for seed in seeds {
        for task in generate(Family::Pairs, seed, n, lengths, pool).unwrap() {
            let Expected::Pairs(expected) = &task.expected else {
                panic!("{}: not a pairs answer", task.id)
            };
            assert_eq!(
                &recompute_pairs(&task, pool),
                expected,
                "{} {}",
                task.id,
                task.query
            );
            assert!(expected.len() <= 435);
            kinds.insert(task.kind.clone());
        }
    }
    kinds
}

#[test]
fn pairs_answers_follow_from_the_text() {
    let pool = Pool::builtin();
    let kinds = check_pairs(&pool, 0..3, &[1024, 8192, 32768], 8);
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

#[test]
fn the_pool_file_loads_as_the_compiled_in_pool_and_makes_long_tasks() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/eval/trec_coarse_validated.jsonl");
    let pool = Pool::load(&path).unwrap();
    let builtin = Pool::builtin();
    assert_eq!(pool.len(), 4151);
    assert_eq!(pool.labels(), builtin.labels());
    for l in 0..pool.labels().len() {
        assert_eq!(pool.questions(l), builtin.questions(l));
    }
    check_oolong(&pool, 0..1, &[65536], 10);
    check_pairs(&pool, 0..1, &[65536], 4);
}

#[test]
fn a_missing_pool_file_is_a_clear_error() {
    let err = Pool::load("/nonexistent/trec.jsonl").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/trec.jsonl") && msg.contains("trec_coarse_validated.jsonl"),
        "{msg}"
    );
    // The OS error is in the message, so it is not a source too: a printed
    // chain would name it twice.
    assert!(msg.contains("os error 2"), "{msg}");
    assert!(std::error::Error::source(&err).is_none());
}

// ---- scoring -----------------------------------------------------------------

/// A perfect answer in the format each query asks for.
fn perfect_answer(task: &EvalTask) -> String {
    match &task.expected {
        Expected::Contains(v) => format!("The special magic number is {v}."),
        Expected::Number(n) => format!("I classified every line.\nAnswer: {n}"),
        Expected::Exact(x) if task.query.contains("'User: [X]'") => format!("User: {x}"),
        Expected::Exact(x) if task.query.contains("'Label: answer'") => format!("Label: {x}"),
        Expected::Exact(x) => format!("Answer: {x}"),
        Expected::Comparison(c) => format!("Answer: A is {} B", c.phrase()),
        Expected::Pairs(p) => p
            .iter()
            .map(|(a, b)| format!("({a}, {b})"))
            .collect::<Vec<_>>()
            .join("\n"),
        other => panic!("unhandled {other:?}"),
    }
}

#[test]
fn perfect_answers_score_one_and_empty_answers_zero() {
    let pool = Pool::builtin();
    for family in Family::ALL {
        for task in generate(family, 21, 10, &[8192], &pool).unwrap() {
            assert_eq!(
                score(&task, &perfect_answer(&task)),
                1.0,
                "{} {:?}",
                task.id,
                task.expected
            );
            let empty = score(&task, "");
            let empty_ok = matches!(&task.expected, Expected::Pairs(p) if p.is_empty());
            assert!(empty == 0.0 || empty_ok, "{}: {empty}", task.id);
        }
    }
}

#[test]
fn scorers_match_hand_computed_values() {
    // OOLONG numeric partial credit: off by two scores 0.75^2.
    let count = Expected::Number(17);
    assert_eq!(count.score("Answer: 19"), 0.5625);
    assert_eq!(count.score("Answer: 17"), 1.0);
    let far = count.score("Answer: 1,017");
    assert!((far / 0.75f64.powi(1000) - 1.0).abs() < 1e-9, "{far}");
    assert_eq!(count.score("no idea"), 0.0);

    // Exact match after lenient parsing.
    let label = Expected::Exact("location".into());
    assert_eq!(parse_answer("Answer: **location**."), "location");
    assert_eq!(label.score("Answer: **location**."), 1.0);
    assert_eq!(label.score("Label: [Location]"), 1.0);
    assert_eq!(label.score("Answer: 'LOCATION'"), 1.0);
    assert_eq!(label.score("Answer: locations"), 0.0);
    assert_eq!(label.score("Answer: location or entity"), 0.0);
    let month = Expected::Exact("March 2023".into());
    assert_eq!(month.score("Answer: [March] [2023]"), 1.0);
    assert_eq!(month.score("Answer: March, 2023."), 1.0);
    assert_eq!(month.score("Answer: March 2024"), 0.0);
    let user = Expected::Exact("48213".into());
    assert_eq!(user.score("After counting, User: [48213]"), 1.0);

    let cmp = Expected::Comparison(Comparison::SameFrequency);
    assert_eq!(
        cmp.score("Answer: entity is same frequency as location"),
        1.0
    );
    assert_eq!(
        cmp.score("Answer: entity is more common than location"),
        0.0
    );

    // NIAH: the number anywhere in the answer.
    let needle = Expected::Contains("4817263".into());
    assert_eq!(needle.score("It is 4817263, I believe."), 1.0);
    assert_eq!(needle.score("It is 4817236."), 0.0);

    // Pairs: 4 expected; the answer has 2 right, 1 wrong, and a duplicate.
    let expected = pairs_of(&[
        ("10001", "10002"),
        ("10001", "10003"),
        ("10002", "10003"),
        ("10004", "10005"),
    ]);
    let answer = "(10001, 10002)\n(10003, 10001)\n(10008, 10009)\n(10002, 10001)";
    // P = 2/3, R = 2/4, F1 = 2PR/(P+R) = 4/7.
    let f1 = Expected::Pairs(expected.clone()).score(answer);
    assert!((f1 - 4.0 / 7.0).abs() < 1e-12, "{f1}");
    assert_eq!(pair_f1(&pairs_of(&[]), &pairs_of(&[])), 1.0);
    assert_eq!(Expected::Pairs(expected.clone()).score("none"), 0.0);
    assert_eq!(
        Expected::Pairs(pairs_of(&[])).score("There are no such pairs."),
        1.0
    );
}

#[test]
fn pair_lists_parse_in_common_formats() {
    let want = pairs_of(&[("123", "456"), ("123", "789"), ("456", "789")]);
    for answer in [
        "(123, 456)\n(123, 789)\n(456, 789)",
        "(123, 456), (123, 789), (456, 789)",
        "[123, 456]\n[789, 123]\n[456,789]",
        "123-456\n123-789\n456-789",
        "123-456, 123-789, 456-789",
        "Answer:\n- 123, 456\n- 123, 789\n- 456, 789",
        "Pairs: (123,456); (123,789); (456,789).",
    ] {
        assert_eq!(parse_pairs(answer), want, "{answer:?}");
    }
}

// ---- lengths and names ----------------------------------------------------------

#[test]
fn lengths_parse_as_binary_multiples() {
    assert_eq!(
        parse_lengths("8k,32k,131k,1m").unwrap(),
        vec![8192, 32768, 131072, 1048576]
    );
    assert_eq!(
        parse_lengths(" 16K , 65k,262k,524k ").unwrap(),
        vec![16384, 65536, 262144, 524288]
    );
    assert_eq!(parse_lengths("128k,4096").unwrap(), vec![131072, 4096]);
    assert_eq!(rlm::eval::format_length(131072), "131k");
}

#[test]
fn bad_lengths_give_clear_errors() {
    for (input, says) in [
        ("", "empty item"),
        ("8k,,32k", "empty item"),
        ("eight", "does not start with a number"),
        ("8q", "unknown suffix"),
        ("12", "minimum is 1024"),
        ("8k,8192", "given twice"),
        ("99m", "maximum"),
        ("99999999999999999999999k", "too large"),
    ] {
        let err = parse_lengths(input).unwrap_err().to_string();
        assert!(err.contains(says), "{input:?}: {err}");
        assert!(err.contains("8k,32k,131k,1m"), "{input:?}: {err}");
    }
}

#[test]
fn families_parse_by_name() {
    assert_eq!("NIAH".parse::<Family>().unwrap(), Family::Niah);
    assert_eq!(" pairs".parse::<Family>().unwrap(), Family::Pairs);
    let err = "ruler".parse::<Family>().unwrap_err().to_string();
    assert!(err.contains("niah, oolong or pairs"), "{err}");
}
