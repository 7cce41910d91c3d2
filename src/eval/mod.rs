//! Benchmark tasks for `rlm eval`: generators and scorers, no model calls.
//!
//! Three families follow the RLM paper's evaluation (Zhang, Kraska &
//! Khattab, 2025):
//!
//! * [`Family::Niah`]: RULER-style single needle in a haystack. One sentence
//!   `One of the special magic numbers for {key} is: {7 digits}.` hidden at a
//!   random sentence boundary of generated prose. Constant work per task.
//! * [`Family::Oolong`]: OOLONG-synth-style aggregation (`trec_coarse`).
//!   Lines `Date: … || User: … || Instance: {question}` whose labels are not
//!   in the text, so every line must be classified; counting, most/least
//!   common, comparison, per-user and per-month questions. Linear work.
//! * [`Family::Pairs`]: OOLONG-Pairs-style queries over the same kind of
//!   lines: list every pair of users meeting a condition. Quadratic work.
//!
//! Data flows: a [`Pool`] of labelled questions (OOLONG's file, or the
//! compiled-in sample) → [`generate`] / [`generate_task`] → [`EvalTask`]s,
//! each with a context, a query and an [`Expected`] answer computed from the
//! generated data → the run machinery asks a model → [`score`] turns the
//! answer into a number in `[0, 1]`.
//!
//! ```
//! use rlm::eval::{generate, parse_lengths, score, Family, Pool};
//!
//! let pool = Pool::builtin();
//! let lengths = parse_lengths("8k")?;
//! let tasks = generate(Family::Niah, 42, 2, &lengths, &pool)?;
//! assert_eq!(tasks.len(), 2);
//! let needle = tasks[0].needle.as_ref().unwrap();
//! assert_eq!(score(&tasks[0], &format!("The number is {}.", needle.value)), 1.0);
//! assert_eq!(score(&tasks[0], "I could not find it."), 0.0);
//! # Ok::<(), rlm::eval::EvalError>(())
//! ```
//!
//! # Queries and answers
//!
//! | family | kinds (`EvalTask::kind`) | answer asked for | [`Expected`] |
//! |---|---|---|---|
//! | niah | `single_needle`: "What is the special magic number for {key} mentioned in the provided text?" | free text | `Contains(number)` |
//! | oolong | `count_label`, `user_count_label`, `month_count_label`, `months_more_frequent` | `Answer: number` | `Number` |
//! | oolong | `most_common_label`, `least_common_label` | `Label: answer` | `Exact(label)` |
//! | oolong | `user_most_label`, `user_compare_label` | `User: [X]` | `Exact(user id)` |
//! | oolong | `month_most_label` | `Answer: [month] [year]` | `Exact("March 2023")` |
//! | oolong | `compare_labels` | `Answer: A is [X] B` | `Comparison` |
//! | pairs | `pairs_any`, `pairs_dated`, `pairs_asym` | `(user_id_1, user_id_2)` per line | `Pairs` |
//!
//! The oolong questions are worded as in the OOLONG paper (tables 15–17)
//! and asked only when their answer is well defined (unique maxima, and a
//! frequency gap over 2% of all lines for most/least-common and comparison
//! questions, as OOLONG requires). The pairs questions are worded as in the
//! RLM paper's OOLONG-Pairs tasks 1–20: both users have an X or Y instance;
//! the same with every X instance strictly after/before a date; and one
//! user meeting a conjunction of "at least / exactly one / two instances
//! with L", the other another. Consecutive task indices cycle through the
//! kinds. Scoring rules are on [`Expected`]'s variants and
//! [`parse_answer`].
//!
//! # Guarantees
//!
//! * **Deterministic.** A task is a pure function of (family, seed, length,
//!   index, pool). The generators use their own SplitMix64 and integer
//!   arithmetic only, so the bytes are the same on every machine and build.
//!   Task `i` does not depend on how many tasks are generated.
//! * **Sized.** A context of `L` tokens has about `4·L` bytes (the
//!   crate's bytes/4 estimate): within half a line or sentence of it, so
//!   within 3% at 1k tokens and far closer at longer lengths.
//! * **Fast.** Generation is linear in the context size; a 1m-token
//!   (4 MiB) task takes tens of milliseconds in a release build.
//!
//! The haystack of `niah` is prose generated from built-in word lists and
//! sentence templates, a stand-in for RULER's Paul Graham essays, which we
//! cannot ship. It contains no digits and no hyphens, so the needle's key
//! and number occur nowhere else.

mod lengths;
mod niah;
mod oolong;
mod pairs;
mod pool;
mod records;
mod rng;
mod score;

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use lengths::{format_length, parse_lengths};
pub use lengths::{MAX_LENGTH_TOKENS, MIN_LENGTH_TOKENS};
pub use pool::Pool;
pub use score::{pair_f1, parse_answer, parse_number, parse_pairs};

use crate::stats::BYTES_PER_TOKEN;

/// A benchmark family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Niah,
    Oolong,
    Pairs,
}

impl Family {
    /// Every family, in the order `rlm eval` reports them.
    pub const ALL: [Family; 3] = [Family::Niah, Family::Oolong, Family::Pairs];

    /// The family's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Family::Niah => "niah",
            Family::Oolong => "oolong",
            Family::Pairs => "pairs",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Family {
    type Err = EvalError;

    fn from_str(s: &str) -> Result<Family, EvalError> {
        let s = s.trim();
        Family::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| EvalError::UnknownFamily(s.to_string()))
    }
}

/// One generated task: a context, a question about it, and the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalTask {
    /// `{family}-{length}-{index}`, e.g. `oolong-131k-007`.
    pub id: String,
    pub family: Family,
    /// The question type within the family, e.g. `count_label`, `pairs_asym`.
    pub kind: String,
    /// The requested context length in tokens.
    pub length_tokens: usize,
    /// The run seed; with `family`, `length_tokens` and `index` it
    /// regenerates this task ([`generate_task`]).
    pub seed: u64,
    pub index: usize,
    /// The question put to the model.
    pub query: String,
    /// The text the model works over (about `4 · length_tokens` bytes).
    pub context: String,
    pub expected: Expected,
    /// Where the needle is (`niah` only).
    pub needle: Option<Needle>,
}

/// The hidden sentence of a `niah` task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Needle {
    /// The adjective-noun key, hyphenated: `fuzzy-lantern`.
    pub key: String,
    /// The 7-digit magic number.
    pub value: String,
    /// The whole needle sentence as it appears in the context.
    pub sentence: String,
    /// Byte offset of `sentence` in the context.
    pub offset: usize,
}

impl Needle {
    /// Relative depth of the needle in `context_len` bytes, in `[0, 1)`.
    pub fn depth(&self, context_len: usize) -> f64 {
        self.offset as f64 / context_len.max(1) as f64
    }
}

/// The correct answer and how an answer is compared with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
#[non_exhaustive]
pub enum Expected {
    /// Full credit if the answer contains this text anywhere (RULER's
    /// `string_match_all`), else 0.
    Contains(String),
    /// An integer; the parsed answer `ŷ` scores `0.75^|y − ŷ|` (OOLONG).
    Number(i64),
    /// A label, user ID or `Month YYYY`; the parsed answer must equal it,
    /// ignoring case.
    Exact(String),
    /// `A is [more common than | less common than | same frequency as] B`;
    /// the parsed answer must name the same relation.
    Comparison(Comparison),
    /// A set of `(lower, higher)` user-ID pairs; scored by F1 against the
    /// pairs parsed from the answer.
    Pairs(BTreeSet<(String, String)>),
}

/// How one label's frequency compares with another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    MoreCommon,
    LessCommon,
    SameFrequency,
}

impl Comparison {
    /// The phrase OOLONG's answer template uses: `more common than`, ….
    pub fn phrase(self) -> &'static str {
        match self {
            Comparison::MoreCommon => "more common than",
            Comparison::LessCommon => "less common than",
            Comparison::SameFrequency => "same frequency as",
        }
    }
}

impl Expected {
    /// Scores `answer` against this expectation, in `[0, 1]`.
    pub fn score(&self, answer: &str) -> f64 {
        score::score_expected(self, answer)
    }
}

impl fmt::Display for Expected {
    /// A one-line form for reports: the value, or the pair count.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Contains(s) | Expected::Exact(s) => f.write_str(s),
            Expected::Number(n) => write!(f, "{n}"),
            Expected::Comparison(c) => f.write_str(c.phrase()),
            Expected::Pairs(p) => write!(f, "{} pairs", p.len()),
        }
    }
}

/// Everything generation and pool loading can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A length list such as `8k,32k` did not parse.
    #[error("invalid lengths {input:?}: {message} (expected a comma-separated list such as 8k,32k,131k,1m)")]
    Lengths { input: String, message: String },

    /// A family name was not `niah`, `oolong` or `pairs`.
    #[error("unknown eval family {0:?} (expected niah, oolong or pairs)")]
    UnknownFamily(String),

    /// The question pool file could not be read.
    ///
    /// The OS error is part of the message and not also a
    /// [`source`](std::error::Error::source), so a printed chain names it
    /// once.
    #[error("cannot read question pool {path}: {error} (expected JSON lines with string fields \"input\" and \"label\", as in OOLONG's trec_coarse_validated.jsonl)")]
    PoolRead {
        path: PathBuf,
        error: std::io::Error,
    },

    /// A pool line was not a JSON object with string `input` and `label`.
    #[error("{path}:{line}: not a question-pool line: {message} (expected JSON with string fields \"input\" and \"label\")")]
    PoolParse {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// The pool parsed but cannot make tasks.
    #[error("unusable question pool {path}: {message}")]
    PoolInvalid { path: PathBuf, message: String },
}

/// Generates `n_per_length` tasks of `family` at each length, lengths in
/// the order given, indices `0..n_per_length` at each.
///
/// Holds every context in memory at once; for long contexts, iterate with
/// [`generate_task`] instead.
pub fn generate(
    family: Family,
    seed: u64,
    n_per_length: usize,
    lengths: &[usize],
    pool: &Pool,
) -> Result<Vec<EvalTask>, EvalError> {
    let mut tasks = Vec::with_capacity(n_per_length * lengths.len());
    for &length in lengths {
        for index in 0..n_per_length {
            tasks.push(generate_task(family, seed, length, index, pool)?);
        }
    }
    Ok(tasks)
}

/// Generates task number `index` of `family` at `length_tokens`.
///
/// The result depends only on the arguments. Consecutive indices cycle
/// through the family's question kinds, from a seeded starting point.
pub fn generate_task(
    family: Family,
    seed: u64,
    length_tokens: usize,
    index: usize,
    pool: &Pool,
) -> Result<EvalTask, EvalError> {
    if !(MIN_LENGTH_TOKENS..=MAX_LENGTH_TOKENS).contains(&length_tokens) {
        return Err(EvalError::Lengths {
            input: length_tokens.to_string(),
            message: format!(
                "a task length must be between {MIN_LENGTH_TOKENS} and {MAX_LENGTH_TOKENS} tokens"
            ),
        });
    }
    let family_code = family as u64 + 1;
    let stream = rng::mix(rng::mix(seed ^ rng::mix(family_code)) ^ length_tokens as u64);
    let mut task_rng = rng::Rng::new(rng::mix(stream ^ rng::mix(index as u64 + 1)));
    // The kind rotation is per (seed, family, length), so indices 0, 1, 2, …
    // walk through every kind.
    let slot = (stream % 1024) as usize + index;
    let target_bytes = length_tokens * BYTES_PER_TOKEN;

    let generated = match family {
        Family::Niah => niah::generate(&mut task_rng, target_bytes),
        Family::Oolong => oolong::generate(&mut task_rng, target_bytes, slot, pool),
        Family::Pairs => pairs::generate(&mut task_rng, target_bytes, slot, pool),
    };
    Ok(EvalTask {
        id: format!("{}-{}-{:03}", family, format_length(length_tokens), index),
        family,
        kind: generated.kind.to_string(),
        length_tokens,
        seed,
        index,
        query: generated.query,
        context: generated.context,
        expected: generated.expected,
        needle: generated.needle,
    })
}

/// Scores a model's answer to `task`, in `[0, 1]`. See [`Expected`] for
/// the rule of each answer type and [`parse_answer`] for the parsing.
pub fn score(task: &EvalTask, answer: &str) -> f64 {
    task.expected.score(answer)
}

/// What a family generator returns.
struct Generated {
    kind: &'static str,
    query: String,
    context: String,
    expected: Expected,
    needle: Option<Needle>,
}
