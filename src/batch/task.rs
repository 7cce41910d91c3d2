//! Task files: one JSON object per line.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::schema::AnswerSchema;

/// One question to answer.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub query: String,
    pub context: TaskContext,
    /// Overrides of the batch's settings for this task.
    pub model: Option<String>,
    pub sub_model: Option<String>,
    pub max_iterations: Option<usize>,
    pub max_depth: Option<usize>,
    pub timeout_s: Option<f64>,
    pub max_llm_calls: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    /// The schema this task's answer must match (a task line's `schema`:
    /// a JSON Schema object, or the path of a schema file), replacing the
    /// batch's `--schema`.
    pub schema: Option<Arc<AnswerSchema>>,
    /// Why the task cannot run as written, found when it was read: a field
    /// out of its range, named in the message. The batch records such a
    /// task as `failed` without running it, so one bad value costs one
    /// result line, never the batch.
    pub invalid: Option<String>,
}

/// A task field outside its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid task: `{field}` is {value}, and {expected}")]
pub struct InvalidTask {
    pub field: &'static str,
    pub value: String,
    pub expected: String,
}

impl Task {
    /// A task with no per-task overrides of the batch's settings.
    pub fn new(id: impl Into<String>, query: impl Into<String>, context: TaskContext) -> Task {
        Task {
            id: id.into(),
            query: query.into(),
            context,
            model: None,
            sub_model: None,
            max_iterations: None,
            max_depth: None,
            timeout_s: None,
            max_llm_calls: None,
            max_tokens: None,
            max_cost_usd: None,
            schema: None,
            invalid: None,
        }
    }

    /// Checks the fields a run turns into clocks and budgets: `timeout_s`
    /// (seconds, more than 0, at most [`MAX_SECONDS`](crate::config::MAX_SECONDS))
    /// and `max_cost_usd` (finite, 0 or more). Out of range, `timeout_s: 1e30`
    /// would overflow the run's clock, and `NaN` would disable a budget.
    pub fn check(&self) -> Result<(), InvalidTask> {
        let invalid = |field, value: f64, e: crate::config::OutOfRange| InvalidTask {
            field,
            // Debug, so that 1e30 shows as written rather than as 31 digits.
            value: format!("{value:?}"),
            expected: e.to_string(),
        };
        if let Some(t) = self.timeout_s {
            crate::config::seconds(t).map_err(|e| invalid("timeout_s", t, e))?;
        }
        if let Some(c) = self.max_cost_usd {
            crate::config::budget_usd(c).map_err(|e| invalid("max_cost_usd", c, e))?;
        }
        Ok(())
    }
}

/// Where a task's context comes from.
#[derive(Debug, Clone)]
pub enum TaskContext {
    /// Files, directories or globs, resolved against the current directory.
    Paths(Vec<PathBuf>),
    /// Text given inline.
    Inline(String),
}

/// A task line that could not be used, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    /// 1-based line number in the task file.
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    id: serde_json::Value,
    query: String,
    #[serde(default)]
    context: Option<OneOrMany>,
    #[serde(default)]
    context_text: Option<String>,
    model: Option<String>,
    sub_model: Option<String>,
    // Numbers are read as any JSON number and checked afterwards, so an
    // out-of-range value fails its task by name rather than its line.
    max_iterations: Option<serde_json::Number>,
    max_depth: Option<serde_json::Number>,
    timeout_s: Option<serde_json::Number>,
    max_llm_calls: Option<serde_json::Number>,
    max_tokens: Option<serde_json::Number>,
    max_cost_usd: Option<serde_json::Number>,
    #[serde(default)]
    schema: Option<serde_json::Value>,
}

/// A JSON number as a count: a whole number, 0 or more.
fn count(field: &'static str, n: &Option<serde_json::Number>) -> Result<Option<u64>, InvalidTask> {
    n.as_ref()
        .map(|n| {
            n.as_u64().ok_or_else(|| InvalidTask {
                field,
                value: n.to_string(),
                expected: "must be a whole number, 0 or more".into(),
            })
        })
        .transpose()
}

/// The counts of `raw` set on `task`, then every field checked.
fn set_counts(task: &mut Task, raw: &RawTask) -> Result<(), InvalidTask> {
    let size = |n: Option<u64>| n.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    task.max_iterations = size(count("max_iterations", &raw.max_iterations)?);
    task.max_depth = size(count("max_depth", &raw.max_depth)?);
    task.max_llm_calls = count("max_llm_calls", &raw.max_llm_calls)?;
    task.max_tokens = count("max_tokens", &raw.max_tokens)?;
    task.check()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Parses task lines. Blank lines are skipped; bad lines are reported with
/// their number and left out, so one typo does not stop ten thousand tasks.
///
/// ```
/// let (tasks, bad) = rlm::batch::parse_tasks(
///     "{\"id\": \"a\", \"query\": \"q?\", \"context_text\": \"hello\"}\nnot json\n",
/// );
/// assert_eq!(tasks.len(), 1);
/// assert_eq!(bad[0].line, 2);
/// ```
pub fn parse_tasks(text: &str) -> (Vec<Task>, Vec<BadLine>) {
    let mut tasks = Vec::new();
    let mut bad = Vec::new();
    let mut seen = HashSet::new();
    let mut schemas = SchemaFiles::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line, &mut schemas) {
            Ok(task) if !seen.insert(task.id.clone()) => bad.push(BadLine {
                line: line_no,
                message: format!(
                    "duplicate id {:?}; ids must be unique so results can be resumed",
                    task.id
                ),
            }),
            Ok(task) => tasks.push(task),
            Err(message) => bad.push(BadLine {
                line: line_no,
                message,
            }),
        }
    }
    (tasks, bad)
}

/// Schema files compiled once however many tasks name them.
#[derive(Default)]
struct SchemaFiles(HashMap<String, Result<Arc<AnswerSchema>, String>>);

impl SchemaFiles {
    /// A task line's `schema`: an inline schema, or the path of a file
    /// (read against the current directory, as `context` paths are). A
    /// schema that cannot be used makes the task invalid, by its message.
    fn resolve(&mut self, schema: serde_json::Value) -> Result<Arc<AnswerSchema>, String> {
        let compiled = |r: Result<AnswerSchema, crate::schema::SchemaError>| {
            r.map(Arc::new)
                .map_err(|e| format!("invalid task: `schema`: {e}"))
        };
        match schema {
            serde_json::Value::String(path) => self
                .0
                .entry(path)
                .or_insert_with_key(|path| compiled(AnswerSchema::from_file(Path::new(path))))
                .clone(),
            inline => compiled(AnswerSchema::from_json(inline)),
        }
    }
}

fn parse_line(line: &str, schemas: &mut SchemaFiles) -> Result<Task, String> {
    let mut raw: RawTask = serde_json::from_str(line).map_err(|e| format!("not a task: {e}"))?;
    let id = match std::mem::take(&mut raw.id) {
        serde_json::Value::String(s) if !s.is_empty() => s,
        serde_json::Value::Number(n) => n.to_string(),
        other => {
            return Err(format!(
                "`id` must be a non-empty string or a number, not {other}"
            ))
        }
    };
    let context = match (raw.context.take(), raw.context_text.take()) {
        (Some(_), Some(_)) => {
            return Err("give either `context` (paths) or `context_text`, not both".into())
        }
        (None, None) => {
            return Err("missing `context` (a path or list of paths) or `context_text`".into())
        }
        (Some(OneOrMany::One(p)), None) => TaskContext::Paths(vec![PathBuf::from(p)]),
        (Some(OneOrMany::Many(ps)), None) if ps.is_empty() => {
            return Err("`context` is an empty list".into())
        }
        (Some(OneOrMany::Many(ps)), None) => {
            TaskContext::Paths(ps.into_iter().map(PathBuf::from).collect())
        }
        (None, Some(text)) => TaskContext::Inline(text),
    };
    let mut task = Task {
        model: raw.model.take(),
        sub_model: raw.sub_model.take(),
        timeout_s: raw.timeout_s.as_ref().and_then(|n| n.as_f64()),
        max_cost_usd: raw.max_cost_usd.as_ref().and_then(|n| n.as_f64()),
        ..Task::new(id, std::mem::take(&mut raw.query), context)
    };
    task.invalid = set_counts(&mut task, &raw).err().map(|e| e.to_string());
    if let Some(schema) = raw.schema.take() {
        match schemas.resolve(schema) {
            Ok(schema) => task.schema = Some(schema),
            Err(e) => task.invalid = task.invalid.or(Some(e)),
        }
    }
    Ok(task)
}

/// Reads and parses a task file.
pub fn read_tasks(path: &Path) -> std::io::Result<(Vec<Task>, Vec<BadLine>)> {
    let text = std::fs::read(path)?;
    Ok(parse_tasks(&String::from_utf8_lossy(&text)))
}

/// Which of `n` shards a task id belongs to: a stable hash of the id, so
/// every machine computes the same partition whatever the file order.
pub fn shard_of(id: &str, n: usize) -> usize {
    let hash = crate::trace::prompt_hash(id);
    let h = u64::from_str_radix(&hash, 16).unwrap_or(0);
    (h % n.max(1) as u64) as usize
}

/// Parses `i/n` (0-based shard `i` of `n`).
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("shard {s:?} must look like i/n, e.g. 0/4"))?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("shard index {i:?} is not a number"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("shard count {n:?} is not a number"))?;
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n} is out of range: need 0 <= i < n"));
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_fields_make_a_task_invalid_by_name_not_a_bad_line() {
        let line = |field: &str| {
            format!("{{\"id\": \"t\", \"query\": \"q\", \"context_text\": \"x\", {field}}}\n")
        };
        for (field, name, shown) in [
            ("\"timeout_s\": 1e30", "timeout_s", "1e30"),
            ("\"timeout_s\": 0", "timeout_s", "0.0"),
            ("\"max_cost_usd\": -1", "max_cost_usd", "-1.0"),
            ("\"max_tokens\": -5", "max_tokens", "-5"),
            ("\"max_llm_calls\": 1.5", "max_llm_calls", "1.5"),
            ("\"max_iterations\": -1", "max_iterations", "-1"),
            ("\"max_depth\": 2.5", "max_depth", "2.5"),
        ] {
            let (tasks, bad) = parse_tasks(&line(field));
            assert!(bad.is_empty(), "{field}: {bad:?}");
            let why = tasks[0].invalid.as_deref().unwrap_or_default();
            assert!(
                why.contains(&format!("`{name}` is {shown},")),
                "{field}: {why}"
            );
        }
        let (tasks, _) = parse_tasks(&line("\"timeout_s\": 30, \"max_tokens\": 100"));
        assert_eq!(tasks[0].invalid, None);
        assert_eq!(
            (tasks[0].timeout_s, tasks[0].max_tokens),
            (Some(30.0), Some(100))
        );
    }
}
