//! Task files: one JSON object per line.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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
        }
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
    max_iterations: Option<usize>,
    max_depth: Option<usize>,
    timeout_s: Option<f64>,
    max_llm_calls: Option<u64>,
    max_tokens: Option<u64>,
    max_cost_usd: Option<f64>,
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
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
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

fn parse_line(line: &str) -> Result<Task, String> {
    let raw: RawTask = serde_json::from_str(line).map_err(|e| format!("not a task: {e}"))?;
    let id = match raw.id {
        serde_json::Value::String(s) if !s.is_empty() => s,
        serde_json::Value::Number(n) => n.to_string(),
        other => {
            return Err(format!(
                "`id` must be a non-empty string or a number, not {other}"
            ))
        }
    };
    let context = match (raw.context, raw.context_text) {
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
    Ok(Task {
        id,
        query: raw.query,
        context,
        model: raw.model,
        sub_model: raw.sub_model,
        max_iterations: raw.max_iterations,
        max_depth: raw.max_depth,
        timeout_s: raw.timeout_s,
        max_llm_calls: raw.max_llm_calls,
        max_tokens: raw.max_tokens,
        max_cost_usd: raw.max_cost_usd,
    })
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
