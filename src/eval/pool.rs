//! The labelled questions that OOLONG-style contexts are built from.
//!
//! The pool is OOLONG's validated TREC-coarse file (4,151 questions, six
//! labels), compiled into the binary ([`Pool::builtin`]) so `rlm eval`
//! runs from any directory with no data files; [`Pool::load`] reads
//! another file of the same shape. `src/eval/trec_coarse_validated.jsonl`
//! is that file verbatim (622,801 bytes, sha256 84bcac41…3dcc; OOLONG
//! repository abertsch72/oolong,
//! `src/data_gen/oolong-synth/validated_data/`, commit 78c4d10; questions
//! from Li & Roth's TREC data). It is kept uncompressed although flate2 is
//! in the tree: gzip would save 0.5 MB of a 17 MB binary, and the file as
//! committed stays comparable byte for byte with its source. Parsing it
//! takes a few milliseconds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::EvalError;

const TREC: &str = include_str!("trec_coarse_validated.jsonl");

/// Questions grouped by label.
///
/// Labels are kept in sorted order, so the same labels give the same
/// prompts whichever file they came from. A question that occurs more than
/// once keeps its first label.
#[derive(Debug, Clone)]
pub struct Pool {
    labels: Vec<String>,
    /// Question texts, indexed by label.
    by_label: Vec<Vec<String>>,
    label_of: HashMap<String, usize>,
}

#[derive(Deserialize)]
struct Line {
    input: String,
    label: String,
}

impl Pool {
    /// Reads a JSON-lines file with string fields `input` (the question)
    /// and `label`; other fields are ignored.
    pub fn load(path: impl AsRef<Path>) -> Result<Pool, EvalError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| EvalError::PoolRead {
            path: path.to_path_buf(),
            error,
        })?;
        Pool::parse(&text, path)
    }

    /// The compiled-in pool: OOLONG's 4,151 TREC-coarse questions.
    pub fn builtin() -> Pool {
        Pool::parse(TREC, Path::new("<builtin trec_coarse_validated.jsonl>"))
            .expect("the builtin pool is valid")
    }

    /// Parses JSON lines; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Pool, EvalError> {
        let mut items: Vec<(String, String)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(line).map_err(|e| EvalError::PoolParse {
                path: origin.to_path_buf(),
                line: i + 1,
                message: e.to_string(),
            })?;
            if parsed.input.trim().is_empty() || parsed.label.trim().is_empty() {
                return Err(EvalError::PoolParse {
                    path: origin.to_path_buf(),
                    line: i + 1,
                    message: "empty `input` or `label`".into(),
                });
            }
            items.push((parsed.input, parsed.label));
        }
        Pool::from_items(items, origin)
    }

    /// Builds a pool from `(question, label)` pairs.
    ///
    /// Runs of whitespace (newlines included) in a question become one
    /// space; questions containing `||`, the context's field separator,
    /// are left out.
    pub fn from_items(items: Vec<(String, String)>, origin: &Path) -> Result<Pool, EvalError> {
        let mut seen = std::collections::HashSet::new();
        let items: Vec<(String, String)> = items
            .into_iter()
            .map(|(q, l)| {
                let q = q.split_whitespace().collect::<Vec<_>>().join(" ");
                (q, l.trim().to_string())
            })
            .filter(|(q, l)| !q.is_empty() && !l.is_empty() && !q.contains("||"))
            .filter(|(q, _)| seen.insert(q.clone()))
            .collect();
        let mut labels: Vec<String> = items.iter().map(|(_, l)| l.clone()).collect();
        labels.sort();
        labels.dedup();
        if labels.len() < 2 {
            return Err(EvalError::PoolInvalid {
                path: PathBuf::from(origin),
                message: format!(
                    "{} usable questions with {} distinct label(s); at least two labels are needed",
                    items.len(),
                    labels.len()
                ),
            });
        }
        let mut by_label = vec![Vec::new(); labels.len()];
        let mut label_of = HashMap::new();
        for (question, label) in items {
            let l = labels.binary_search(&label).expect("collected above");
            label_of.insert(question.clone(), l);
            by_label[l].push(question);
        }
        Ok(Pool {
            labels,
            by_label,
            label_of,
        })
    }

    /// The distinct labels, sorted.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The questions with label number `label` (an index into [`Pool::labels`]).
    pub fn questions(&self, label: usize) -> &[String] {
        &self.by_label[label]
    }

    /// The label of a question, if the pool has it.
    pub fn label_of(&self, question: &str) -> Option<&str> {
        self.label_of
            .get(question)
            .map(|&l| self.labels[l].as_str())
    }

    /// Number of distinct questions.
    pub fn len(&self) -> usize {
        self.label_of.len()
    }

    /// Always false: a pool has at least two labels, each with a question.
    pub fn is_empty(&self) -> bool {
        self.label_of.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_pool_is_oolongs_whole_trec_file() {
        let pool = Pool::builtin();
        assert_eq!(pool.len(), 4151);
        assert_eq!(
            pool.labels(),
            [
                "abbreviation",
                "description and abstract concept",
                "entity",
                "human being",
                "location",
                "numeric value"
            ]
        );
        let counts: Vec<usize> = (0..6).map(|l| pool.questions(l).len()).collect();
        assert_eq!(counts, [81, 990, 665, 1034, 732, 649]);
        assert_eq!(
            pool.label_of("What films featured the character Popeye Doyle ?"),
            Some("entity")
        );
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let err = Pool::parse(
            "{\"input\":\"a\",\"label\":\"x\"}\nnot json\n",
            Path::new("f"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("f:2"), "{err}");
        let err = Pool::parse("{\"input\":\"a\",\"label\":\"x\"}\n", Path::new("f")).unwrap_err();
        assert!(err.to_string().contains("two labels"), "{err}");
    }
}
