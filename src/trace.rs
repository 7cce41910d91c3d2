//! JSONL traces of runs, and replaying them.
//!
//! A trace is one JSON object per line, written and flushed as each event
//! happens, so a crash leaves a valid prefix. [`TraceWriter`] is the
//! [`RunSink`] that writes it, from the run's [`Event`]s. Every event has `event`, the
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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::driver::RunResult;
use crate::dsl::CellOutcome;
use crate::events::{Cell, Event, RunEvent, RunSink, RunStart};
use crate::llm::{
    CallObserver, CallRecord, CallTag, ChatRequest, Completion, ModelSpec, PriceTable,
};

/// Characters of a prompt kept in a sub-call event's preview.
const PREVIEW_CHARS: usize = 300;

/// The JSONL trace: a [`RunSink`] that writes each event as one flushed
/// line of a file.
///
/// A write failure (a full disk) does not stop the run: the first error is
/// kept, later events are dropped, and [`RunSink::error`] reports it.
pub struct TraceWriter {
    path: PathBuf,
    started: Instant,
    file: Mutex<Option<File>>,
    error: Mutex<Option<String>>,
    /// Prices for each call's `cost_usd`; without them it is null.
    prices: Option<PriceTable>,
    /// The root model of each run, by top run and run id, to price its turns.
    root_models: Mutex<HashMap<(u64, String), String>>,
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
            prices: None,
            root_models: Mutex::new(HashMap::new()),
        })
    }

    /// Prices each root response and sub-call (`cost_usd`) with `prices`.
    pub fn with_prices(mut self, prices: PriceTable) -> TraceWriter {
        self.prices = Some(prices);
        self
    }

    /// What a call of `model` that used `c` cost, if its price is known.
    fn cost(&self, model: &str, c: &Completion) -> Option<f64> {
        let price = self.prices.as_ref()?.lookup(model)?;
        Some(price.charge(&c.tokens()))
    }

    /// The `cost_usd` of an event, for the events that carry one.
    fn event_cost(&self, e: &RunEvent<'_>) -> Option<Option<f64>> {
        let key = (e.top, e.run.to_string());
        match &e.event {
            Event::RunStart(s) | Event::ChildStart(s) => {
                if let Ok(mut m) = self.root_models.lock() {
                    m.insert(key, s.config.model.name.clone());
                }
                None
            }
            Event::RootResponse { completion, .. } => {
                let model = self.root_models.lock().ok()?.get(&key).cloned();
                Some(model.and_then(|m| self.cost(&m, completion)))
            }
            // A cached answer or a failed call spent nothing.
            Event::SubCallEnd(r) => Some(match r.result {
                Ok(_) if r.cached => Some(0.0),
                Ok(c) => self.cost(&r.model.name, c),
                Err(_) => Some(0.0),
            }),
            _ => None,
        }
    }

    /// Appends one line, an [`event_json`].
    fn write_line(&self, line: Value) {
        let mut text = line.to_string();
        text.push('\n');
        let Ok(mut guard) = self.file.lock() else {
            return;
        };
        let Some(file) = guard.as_mut() else { return };
        // One write_all of the whole line, then flush: a reader never sees half a line
        // unless the disk fills mid-line, after which nothing more is written.
        if let Err(err) = file.write_all(text.as_bytes()).and_then(|_| file.flush()) {
            *guard = None;
            if let Ok(mut slot) = self.error.lock() {
                *slot = Some(format!(
                    "writing trace {}: {err}; the trace stops at the last complete line",
                    self.path.display()
                ));
            }
        }
    }
}

impl RunSink for TraceWriter {
    fn event(&self, e: &RunEvent<'_>) {
        let cost = self.event_cost(e);
        if let Some(mut line) = event_json(e, self.started) {
            if let (Some(cost), Some(obj)) = (cost, line.as_object_mut()) {
                obj.insert("cost_usd".into(), cost.into());
            }
            self.write_line(line);
        }
    }

    fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}

/// An event as the trace writes it (`docs/trace.md`): `event`, `run`,
/// `depth`, `t` (seconds since `started`), `top` (after a top run's
/// first) and the event's fields; `None` for events the trace does not
/// record. Other sinks that speak the trace's format (the C API's event
/// callback) use it too.
pub fn event_json(e: &RunEvent<'_>, started: Instant) -> Option<Value> {
    let (event, fields) = trace_line(&e.event)?;
    let mut line = json!({
        "event": event,
        "run": e.run,
        "depth": e.depth,
        "t": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    });
    if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
        obj.extend(extra);
        // A trace of one run looks as it always has; lines of a later
        // top run of the same `Rlm` say which one they belong to.
        if e.top > 1 {
            obj.insert("top".into(), e.top.into());
        }
    }
    Some(line)
}

/// The trace line of an event, as its `event` name and its fields
/// (`docs/trace.md`); `None` for events the trace does not record.
fn trace_line(event: &Event<'_>) -> Option<(&'static str, Value)> {
    Some(match event {
        Event::RunStart(s) | Event::ChildStart(s) => ("run_start", run_start_fields(s)),
        Event::RootRequest {
            iteration,
            messages,
        } => (
            "root_request",
            json!({"iteration": iteration, "messages": messages}),
        ),
        Event::RootResponse {
            iteration,
            completion,
            latency,
        } => (
            "root_response",
            root_response_fields(*iteration, completion, *latency),
        ),
        Event::CellEnd {
            cell,
            number,
            outcome,
        } => ("cell", cell_fields(cell, *number, outcome)),
        Event::SubCallEnd(r) => ("sub_call", sub_call_fields(r)),
        Event::ChildEnd(c) => (
            "child_end",
            json!({
                "answer": c.answer,
                "status": c.status,
                "iterations": c.iterations,
                "wall_s": c.wall.as_secs_f64(),
                "error": c.error,
            }),
        ),
        Event::RunEnd(r) => ("final", final_fields(r)),
        _ => return None,
    })
}

fn run_start_fields(s: &RunStart<'_>) -> Value {
    let (config, view) = (s.config, s.context);
    let documents = view.documents();
    json!({
        "parent": s.parent,
        "query": s.query,
        "config": {
            "model": config.model.to_string(),
            "sub_model": s.sub_model.to_string(),
            "max_iterations": config.max_iterations,
            "max_depth": config.max_depth,
            "timeout_s": config.timeout.map(|t| t.as_secs_f64()),
            "concurrency": s.concurrency,
            "sub_context_tokens": config.sub_context_tokens,
            "budgets": s.budgets,
        },
        "context": {
            "bytes": view.len(),
            "estimated_tokens": crate::stats::estimate_tokens(view.len()),
            "lines": view.line_count(),
            "documents": documents.len(),
            "names": documents.iter().take(10).map(|d| d.name().to_string()).collect::<Vec<_>>(),
        },
        "system_prompt_bytes": s.system_prompt.len(),
    })
}

fn root_response_fields(iteration: usize, c: &Completion, latency: Duration) -> Value {
    json!({
        "iteration": iteration,
        "text": c.text,
        "finish": c.finish,
        "input_tokens": c.input_tokens,
        "output_tokens": c.output_tokens,
        "cached_input_tokens": c.cached_input_tokens,
        "cache_write_tokens": c.cache_write_tokens,
        "latency_s": latency.as_secs_f64(),
    })
}

fn cell_fields(cell: &Cell<'_>, number: usize, outcome: &CellOutcome) -> Value {
    json!({
        "iteration": cell.iteration,
        "index": cell.index,
        "cell": number,
        "code": cell.code,
        "output": outcome.output,
        "truncated": outcome.truncated,
        "error": outcome.error,
        "duration_s": outcome.duration.as_secs_f64(),
        "submitted": outcome.submitted.as_ref().map(|a| &a.value),
    })
}

/// A sub-call's `sub_call` line (all but `event`, `run`, `depth`, `t`).
fn sub_call_fields(r: &CallRecord<'_>) -> Value {
    let prompt: &str = r
        .request
        .messages
        .last()
        .map(|m| m.content.as_str())
        .unwrap_or("");
    let preview: String = prompt.chars().take(PREVIEW_CHARS).collect();
    let (answer, error, input, output) = match r.result {
        Ok(c) => (Some(c.text.as_str()), None, c.input_tokens, c.output_tokens),
        Err(e) => (None, Some(e.to_string()), 0, 0),
    };
    let mut fields = json!({
        "model": r.model.to_string(),
        "cell": r.tag.cell,
        "prompt_bytes": prompt.len(),
        "prompt_preview": preview,
        "prompt_hash": prompt_hash(prompt),
        "system": r.request.system,
        "answer": answer,
        "error": error,
        "input_tokens": input,
        "output_tokens": output,
        "cached_input_tokens": r.result.as_ref().map_or(0, |c| c.cached_input_tokens),
        "cache_write_tokens": r.result.as_ref().map_or(0, |c| c.cache_write_tokens),
        "latency_s": r.latency.as_secs_f64(),
        "retries": r.retries,
    });
    // Answered by the response cache (--cache): nothing was sent or spent.
    if r.cached {
        fields["cached"] = true.into();
    }
    fields
}

fn final_fields(r: &RunResult) -> Value {
    json!({
        "answer": r.answer,
        "answer_kind": r.answer_kind,
        "status": r.status,
        "iterations": r.iterations,
        "usage": crate::llm::usage_json(&r.usage),
        "cost_usd": r.cost(),
        "wall_s": r.wall_s,
        "error": r.error,
    })
}

/// Routes sub-call records to the run they belong to, by the task they
/// are tagged with, when many runs share one client (`rlm batch`): each
/// task's [`Rlm`](crate::driver::Rlm) turns them into events for its own
/// sinks ([`Rlm::call_events`](crate::driver::Rlm::call_events)).
#[derive(Default)]
pub struct TraceRouter {
    routes: Mutex<HashMap<String, Arc<dyn CallObserver>>>,
}

impl TraceRouter {
    /// Sends calls tagged with `scope` to `observer`.
    pub fn add(&self, scope: &str, observer: Arc<dyn CallObserver>) {
        if let Ok(mut w) = self.routes.lock() {
            w.insert(scope.to_string(), observer);
        }
    }

    /// Stops routing `scope`.
    pub fn remove(&self, scope: &str) {
        if let Ok(mut w) = self.routes.lock() {
            w.remove(scope);
        }
    }

    fn route(&self, tag: &CallTag) -> Option<Arc<dyn CallObserver>> {
        let task = crate::driver::task_of(tag.scope.as_deref()?);
        self.routes.lock().ok()?.get(task).cloned()
    }
}

impl CallObserver for TraceRouter {
    fn on_start(&self, model: &ModelSpec, request: &ChatRequest, tag: &CallTag) {
        if let Some(o) = self.route(tag) {
            o.on_start(model, request, tag);
        }
    }

    fn on_call(&self, record: &CallRecord<'_>) {
        if let Some(o) = self.route(record.tag) {
            o.on_call(record);
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
