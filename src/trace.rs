//! JSONL traces of runs, and replaying them.
//!
//! A trace is one JSON object per line, written and flushed as each event
//! happens, so a crash leaves a valid prefix. Every event has `event`, the
//! `run` id (`"0"` for the top run, `"0.1"` for its first child, ...),
//! `depth` and `t` (seconds since the trace started). The format is
//! documented in `docs/trace.md`.
//!
//! A [`ReplayBook`] reads a trace back: the root responses of each run, in
//! order, and the answers of sub-calls, by prompt. `--model replay:FILE`
//! drives a new run from them while the code really runs again.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{json, Value};

use crate::llm::{CallObserver, CallRecord};

/// Characters of a prompt kept in a sub-call event's preview.
const PREVIEW_CHARS: usize = 300;

/// Writes trace events to a file, one flushed line each.
///
/// A write failure (a full disk) does not stop the run: the first error is
/// kept, later events are dropped, and [`TraceWriter::error`] reports it.
pub struct TraceWriter {
    path: PathBuf,
    started: Instant,
    file: Mutex<Option<File>>,
    error: Mutex<Option<String>>,
}

impl TraceWriter {
    /// Creates (truncates) the trace file.
    pub fn create(path: &Path) -> std::io::Result<TraceWriter> {
        let file = File::create(path)?;
        Ok(TraceWriter {
            path: path.to_path_buf(),
            started: Instant::now(),
            file: Mutex::new(Some(file)),
            error: Mutex::new(None),
        })
    }

    /// Appends one event. `fields` must be a JSON object.
    pub fn event(&self, event: &str, run: &str, depth: usize, fields: Value) {
        let mut line = json!({
            "event": event,
            "run": run,
            "depth": depth,
            "t": (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        });
        if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
            obj.extend(extra);
        }
        let mut text = line.to_string();
        text.push('\n');
        let Ok(mut guard) = self.file.lock() else {
            return;
        };
        let Some(file) = guard.as_mut() else { return };
        // One write_all of the whole line, then flush: a reader never sees half a line
        // unless the disk fills mid-line, after which nothing more is written.
        if let Err(e) = file.write_all(text.as_bytes()).and_then(|_| file.flush()) {
            *guard = None;
            if let Ok(mut err) = self.error.lock() {
                *err = Some(format!(
                    "writing trace {}: {e}; the trace stops at the last complete line",
                    self.path.display()
                ));
            }
        }
    }

    /// The first write error, if writing failed.
    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}

impl CallObserver for TraceWriter {
    fn on_call(&self, r: &CallRecord<'_>) {
        if r.tag.kind == "root" {
            return; // The driver writes root turns itself, with more context.
        }
        let prompt: String = r
            .request
            .messages
            .last()
            .map(|m| m.content.as_str())
            .unwrap_or("")
            .to_string();
        let preview: String = prompt.chars().take(PREVIEW_CHARS).collect();
        let (answer, error, input, output) = match r.result {
            Ok(c) => (Some(c.text.as_str()), None, c.input_tokens, c.output_tokens),
            Err(e) => (None, Some(e.to_string()), 0, 0),
        };
        self.event(
            "sub_call",
            r.tag.run.as_deref().unwrap_or("0"),
            r.tag.depth,
            json!({
                "model": r.model.to_string(),
                "cell": r.tag.cell,
                "prompt_bytes": prompt.len(),
                "prompt_preview": preview,
                "prompt_hash": prompt_hash(&prompt),
                "system": r.request.system,
                "answer": answer,
                "error": error,
                "input_tokens": input,
                "output_tokens": output,
                "latency_s": r.latency.as_secs_f64(),
                "retries": r.retries,
            }),
        );
    }
}

/// Routes sub-call records to the trace of the task they belong to, when
/// many runs share one client (`rlm batch --trace-dir`).
#[derive(Default)]
pub struct TraceRouter {
    writers: Mutex<HashMap<String, std::sync::Arc<TraceWriter>>>,
}

impl TraceRouter {
    /// Sends calls tagged with `scope` to `writer`.
    pub fn add(&self, scope: &str, writer: std::sync::Arc<TraceWriter>) {
        if let Ok(mut w) = self.writers.lock() {
            w.insert(scope.to_string(), writer);
        }
    }

    /// Stops routing `scope`.
    pub fn remove(&self, scope: &str) {
        if let Ok(mut w) = self.writers.lock() {
            w.remove(scope);
        }
    }
}

impl CallObserver for TraceRouter {
    fn on_call(&self, record: &CallRecord<'_>) {
        let Some(scope) = record.tag.scope.as_deref() else {
            return;
        };
        let writer = self.writers.lock().ok().and_then(|w| w.get(scope).cloned());
        if let Some(w) = writer {
            w.on_call(record);
        }
    }
}

/// A stable hash of a prompt, so replay can find its answer without
/// storing whole prompts in the trace.
pub fn prompt_hash(prompt: &str) -> String {
    // FNV-1a, 64-bit: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in prompt.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// A recorded root response.
#[derive(Debug, Clone)]
pub struct RecordedTurn {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A recorded sub-call answer.
#[derive(Debug, Clone)]
pub struct RecordedAnswer {
    pub model: String,
    pub answer: Result<String, String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Root responses per run and sub-call answers per prompt, read from a trace.
#[derive(Debug, Default)]
pub struct ReplayBook {
    turns: Mutex<HashMap<String, VecDeque<RecordedTurn>>>,
    answers: Mutex<HashMap<String, VecDeque<RecordedAnswer>>>,
    /// The model the recorded run used, for labelling.
    pub recorded_model: Option<String>,
}

/// A trace that cannot be replayed.
#[derive(Debug, thiserror::Error)]
#[error("cannot replay {path}: {message}")]
pub struct ReplayError {
    pub path: PathBuf,
    pub message: String,
}

impl ReplayBook {
    /// Reads a trace file. A torn last line (from a crash) is ignored.
    pub fn load(path: &Path) -> Result<ReplayBook, ReplayError> {
        let err = |message: String| ReplayError {
            path: path.to_path_buf(),
            message,
        };
        let file = File::open(path).map_err(|e| err(e.to_string()))?;
        let mut book = ReplayBook::default();
        let mut lines = BufReader::new(file).lines().enumerate().peekable();
        while let Some((n, line)) = lines.next() {
            let line = line.map_err(|e| err(format!("line {}: {e}", n + 1)))?;
            if line.trim().is_empty() {
                continue;
            }
            let event: Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(_) if lines.peek().is_none() => break,
                Err(e) => return Err(err(format!("line {} is not JSON: {e}", n + 1))),
            };
            book.add(&event);
        }
        if book.turns.lock().map(|t| t.is_empty()).unwrap_or(true) {
            return Err(err(
                "it holds no root_response events; was it written by `rlm run --trace`?".into(),
            ));
        }
        Ok(book)
    }

    fn add(&mut self, event: &Value) {
        let run = event["run"].as_str().unwrap_or("0").to_string();
        let tokens = |k: &str| event[k].as_u64().unwrap_or(0);
        match event["event"].as_str() {
            Some("run_start") if run == "0" => {
                self.recorded_model = event["config"]["model"].as_str().map(str::to_string);
            }
            Some("root_response") => {
                if let Ok(mut t) = self.turns.lock() {
                    t.entry(run).or_default().push_back(RecordedTurn {
                        text: event["text"].as_str().unwrap_or("").to_string(),
                        input_tokens: tokens("input_tokens"),
                        output_tokens: tokens("output_tokens"),
                    });
                }
            }
            Some("sub_call") => {
                let answer = match (event["answer"].as_str(), event["error"].as_str()) {
                    (Some(a), _) => Ok(a.to_string()),
                    (None, Some(e)) => Err(e.to_string()),
                    (None, None) => Ok(String::new()),
                };
                let key = event["prompt_hash"].as_str().unwrap_or("").to_string();
                if let Ok(mut a) = self.answers.lock() {
                    a.entry(key).or_default().push_back(RecordedAnswer {
                        model: event["model"].as_str().unwrap_or("replay").to_string(),
                        answer,
                        input_tokens: tokens("input_tokens"),
                        output_tokens: tokens("output_tokens"),
                    });
                }
            }
            _ => {}
        }
    }

    /// The next recorded root response of run `run`.
    pub fn next_turn(&self, run: &str) -> Option<RecordedTurn> {
        self.turns.lock().ok()?.get_mut(run)?.pop_front()
    }

    /// The next recorded answer to `prompt`.
    pub fn answer(&self, prompt: &str) -> Option<RecordedAnswer> {
        self.answers
            .lock()
            .ok()?
            .get_mut(&prompt_hash(prompt))?
            .pop_front()
    }
}
