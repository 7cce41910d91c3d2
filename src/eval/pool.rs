//! The labelled questions that OOLONG-style contexts are built from.
//!
//! The full pool is OOLONG's validated TREC-coarse file (4,151 questions,
//! six labels), read with [`Pool::load`]; the CLI's default path is
//! `../shared/data/oolong/trec_coarse_validated.jsonl`. A 97-question
//! sample of it is compiled in ([`Pool::builtin_sample`]) so tests and
//! quick runs need no data files: 17 evenly spaced lines of each label (12
//! of the rare `abbreviation`) of that file, copied verbatim in file order
//! into `src/eval/trec_sample.jsonl` (OOLONG
//! repository abertsch72/oolong, `src/data_gen/oolong-synth/validated_data/`,
//! commit 78c4d10; questions from Li & Roth's TREC data).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::EvalError;

const SAMPLE: &str = include_str!("trec_sample.jsonl");

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
        let text = std::fs::read_to_string(path).map_err(|source| EvalError::PoolRead {
            path: path.to_path_buf(),
            source,
        })?;
        Pool::parse(&text, path)
    }

    /// The compiled-in 97-question sample of the TREC-coarse pool.
    pub fn builtin_sample() -> Pool {
        Pool::parse(SAMPLE, Path::new("<builtin trec_sample.jsonl>"))
            .expect("the builtin sample is valid")
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
    fn builtin_sample_has_the_six_trec_labels() {
        let pool = Pool::builtin_sample();
        assert_eq!(pool.len(), 97);
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
        assert_eq!(pool.questions(0).len(), 12);
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
