//! One run of the loop, and the child runs scripts start.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{Array, Dynamic, Engine, NativeCallContext};
use serde_json::json;

use super::fences::extract_blocks;
use super::prompt::{render, PromptValues, SYSTEM_TEMPLATE};
use super::{AnswerKind, Progress, RunConfig, RunResult, RunStatus};
use crate::dsl::convert::{as_text, display, script_error, Fallible};
use crate::dsl::{LlmAccess, SessionBuilder, Shared};
use crate::llm::{
    BudgetExceeded, CallOptions, CallTag, ChatRequest, LlmClient, LlmError, Message, Provider,
    Reservation, MIN_USEFUL_OUTPUT,
};
use crate::trace::TraceWriter;
use crate::{Context, Text};

/// What every run of one [`Rlm`](super::Rlm) shares, children included.
pub(crate) struct RunShared {
    pub config: RunConfig,
    pub client: LlmClient,
    pub handle: tokio::runtime::Handle,
    pub trace: Option<Arc<TraceWriter>>,
    pub cancelled: Arc<AtomicBool>,
    pub progress: Arc<Progress>,
    /// When the current top run must stop.
    pub deadline: Mutex<Option<Instant>>,
    /// The task this run belongs to, when runs share a client.
    pub scope: Option<String>,
    /// The ledger's refusal count when the current top run started: more
    /// since then means a budget refused a call of this run's tree.
    pub refusals_before: AtomicU64,
    /// The embedder's host functions, in every session of the tree.
    pub functions: crate::dsl::HostFunctions,
}

/// How one loop ended, before usage is attached.
struct LoopOutcome {
    answer: Option<(serde_json::Value, String)>,
    kind: Option<AnswerKind>,
    /// What the submitting cell printed, if anything.
    final_output: Option<String>,
    status: RunStatus,
    iterations: usize,
    error: Option<String>,
}

impl RunShared {
    fn trace(&self, event: &str, run: &str, depth: usize, fields: serde_json::Value) {
        if let Some(t) = &self.trace {
            t.event(event, run, depth, fields);
        }
    }

    /// Why the run must stop now: interruption, the deadline, or a budget.
    fn stop(&self) -> Option<(RunStatus, String)> {
        if self.cancelled.load(Ordering::SeqCst) {
            return Some((RunStatus::Interrupted, "the run was interrupted".into()));
        }
        if self.deadline_passed() {
            return Some((RunStatus::Timeout, self.timeout_message()));
        }
        self.client
            .ledger()
            .exhausted()
            .map(|b| (budget_status(&b), b.to_string()))
    }

    fn deadline_passed(&self) -> bool {
        self.deadline
            .lock()
            .ok()
            .and_then(|d| *d)
            .is_some_and(|d| Instant::now() >= d)
    }

    fn timeout_message(&self) -> String {
        let secs = self.config.timeout.map_or(0.0, |t| t.as_secs_f64());
        format!("the run's time limit of {secs}s was reached")
    }

    /// The budget that refused a call somewhere in the current top run's
    /// tree (children included), if one did.
    fn budget_refusal(&self) -> Option<BudgetExceeded> {
        let r = self.client.ledger().refusals();
        (r.count > self.refusals_before.load(Ordering::SeqCst))
            .then_some(r.last)
            .flatten()
    }

    /// The answer tokens a root turn needs at least, for holds and the
    /// final turn's fit.
    fn root_output_tokens(&self) -> u64 {
        self.config
            .root_max_tokens
            .map_or(MIN_USEFUL_OUTPUT, u64::from)
    }

    /// Holds what the next root turn will need (this request, the reply,
    /// a note, and one call), so the cell's sub-calls cannot spend it: that
    /// keeps the final turn a budget promises. `None` without budgets, for
    /// replayed roots, or when it is not left.
    fn hold_next_turn(&self, request: &ChatRequest, reply: &str) -> Option<Reservation> {
        let ledger = self.client.ledger();
        if self.config.model.provider == Provider::Replay || !ledger.has_budgets() {
            return None;
        }
        let input = request.max_input_tokens()
            + reply.len() as u64
            + 2 * crate::llm::wire::TEMPLATE_TOKENS
            + NOTE_ALLOWANCE;
        ledger.hold(&self.config.model.name, input, self.root_output_tokens())
    }

    /// Calls left under the call budget, if there is one.
    fn calls_left(&self) -> Option<u64> {
        let max = self.client.ledger().budgets().max_calls?;
        let t = self.client.ledger().totals();
        Some(max.saturating_sub(t.calls + t.errors))
    }
}

/// Bytes held for the note a final turn appends to the last message.
const NOTE_ALLOWANCE: u64 = 1024;

/// The note that makes a turn the last because a budget refused a call.
fn budget_note(b: &BudgetExceeded) -> String {
    format!(
        "\n\nThe budget is spent ({b}). Model calls from code (llm_query, llm_batch, rlm_query, rlm_batch) are refused from now on, so their results above may be ERROR strings. This is your final turn: call submit(answer) in a ```rhai block now, with your best answer from what you already have, and make no more model calls."
    )
}

/// Whether an answer carries the error strings of calls a budget refused
/// (llm_batch items, rlm_batch children), which must not pass for an answer.
fn holds_budget_errors(text: &str) -> bool {
    text.contains("ERROR: the budget of ")
        || text.contains("so the budget of $")
        || (text.contains("ERROR: child run ") && text.contains("ended without an answer"))
}

/// An answer given after a budget refused calls: kept, with the budget's
/// status, unless it carries their errors.
fn budget_answer(outcome: &mut LoopOutcome, b: &BudgetExceeded, answer: Submission) {
    outcome.status = budget_status(b);
    if holds_budget_errors(&answer.text) {
        outcome.error = Some(format!(
            "{b}; the answer submitted holds the errors of the calls it refused, so it is not reported"
        ));
        return;
    }
    outcome.answer = Some((answer.value, answer.text));
    outcome.kind = Some(answer.kind);
    outcome.final_output = answer.final_output;
    outcome.error.get_or_insert_with(|| b.to_string());
}

/// An answer, before the run decides how to report it.
struct Submission {
    value: serde_json::Value,
    text: String,
    kind: AnswerKind,
    final_output: Option<String>,
}

/// A run whose tree had a call refused by a budget ends with that budget's
/// status, never `submitted`; an answer set aside for the final turn is
/// reported if that turn gave none.
fn settle_budget(shared: &RunShared, outcome: &mut LoopOutcome, set_aside: Option<Submission>) {
    let Some(b) = shared.budget_refusal() else {
        return;
    };
    if outcome.answer.is_none() {
        if let Some(answer) = set_aside {
            let error = outcome.error.take();
            budget_answer(outcome, &b, answer);
            if let (Some(e), true) = (error, outcome.answer.is_some()) {
                outcome.error = Some(format!("{b}; the final turn: {e}"));
            }
            return;
        }
    }
    if matches!(
        outcome.status,
        RunStatus::Submitted | RunStatus::MaxIterations | RunStatus::MaxLlmCalls
    ) {
        outcome.status = budget_status(&b);
        outcome.error.get_or_insert_with(|| b.to_string());
    }
}

/// Cuts the end of the last message's cell report so the request fits in
/// `room` tokens once `note` is appended (a final turn must be admitted to
/// happen at all). Leaves it whole when it fits or cutting cannot help.
fn fit_last_message(request: &mut ChatRequest, note: &str, room: Option<u64>) {
    const MARK: &str = "\n[... cell output cut here to fit the budget]";
    let Some(room) = room else { return };
    let need = request.max_input_tokens() + (note.len() + MARK.len()) as u64;
    let Some(last) = request.messages.last_mut() else {
        return;
    };
    let excess = need.saturating_sub(room) as usize;
    if excess == 0 || excess >= last.content.len() {
        return;
    }
    let mut end = last.content.len() - excess;
    while !last.content.is_char_boundary(end) {
        end -= 1;
    }
    last.content.truncate(end);
    last.content.push_str(MARK);
}

fn budget_status(b: &BudgetExceeded) -> RunStatus {
    RunStatus::from_budget(b)
}

/// Runs the top-level loop and assembles the result.
pub(crate) fn run_top(shared: &Arc<RunShared>, query: &str, context: &Context) -> RunResult {
    let started = Instant::now();
    if let Ok(mut d) = shared.deadline.lock() {
        *d = shared.config.timeout.map(|t| started + t);
    }
    // Refusals of an earlier run on this Rlm do not end this one.
    shared
        .refusals_before
        .store(shared.client.ledger().refusals().count, Ordering::SeqCst);
    let outcome = run_loop(
        shared,
        query,
        context.text(),
        Some(context.clone()),
        0,
        "0",
        None,
    );
    let result = finish(shared, outcome, started);
    // An interrupt that came before the run started still stops it; the one
    // that stopped this run does not carry over to the next.
    shared.cancelled.store(false, Ordering::SeqCst);
    result
}

pub(crate) fn failed_result(shared: &RunShared, error: String, started: Instant) -> RunResult {
    let outcome = LoopOutcome {
        answer: None,
        kind: None,
        final_output: None,
        status: RunStatus::Failed,
        iterations: 0,
        error: Some(error),
    };
    finish(shared, outcome, started)
}

fn finish(shared: &RunShared, o: LoopOutcome, started: Instant) -> RunResult {
    let ledger = shared.client.ledger();
    let totals = ledger.totals();
    let usage = ledger.by_model();
    let cost = crate::llm::known_cost(&usage);
    let wall_s = started.elapsed().as_secs_f64();
    let (answer, answer_text) = match o.answer {
        Some((v, t)) => (Some(v), Some(t)),
        None => (None, None),
    };
    shared.trace(
        "final",
        "0",
        0,
        json!({
            "answer": answer,
            "answer_kind": o.kind,
            "status": o.status,
            "iterations": o.iterations,
            "usage": crate::llm::usage_json(&usage),
            "cost_usd": cost,
            "wall_s": wall_s,
            "error": o.error,
        }),
    );
    RunResult {
        answer,
        answer_text,
        answer_kind: o.kind,
        final_output: o.final_output,
        status: o.status,
        iterations: o.iterations,
        cost_usd: totals.cost_usd,
        usage,
        totals,
        wall_s,
        error: o.error,
        trace_error: shared.trace.as_ref().and_then(|t| t.error()),
    }
}

/// Stands in the conversation for a root reply that had no text (the
/// protocols reject empty assistant messages).
const EMPTY_REPLY: &str = "(no reply: the token limit was reached before any text)";
const EMPTY_NUDGE: &str = "Your last reply reached its token limit before writing any text. Think less: reply now with one short ```rhai block.";
const FINAL_TURN: &str = "\n\nThis is your final turn: call submit(answer) in a ```rhai block now, with your best answer so far.";

fn first_message(query: &str, view: &Text) -> String {
    format!(
        "Question: {query}\n\nThe context ({} bytes) is loaded as `context`. Explore it with ```rhai code blocks, and call submit(answer) when you are sure.",
        view.len()
    )
}

/// Runs one loop (the top run or a child) until it submits or stops.
fn run_loop(
    shared: &Arc<RunShared>,
    query: &str,
    view: Text,
    origin: Option<Context>,
    depth: usize,
    run_id: &str,
    parent: Option<&str>,
) -> LoopOutcome {
    let config = &shared.config;
    let started = Instant::now();
    let stop_shared = shared.clone();
    let stop_check: crate::dsl::ExternalStop = Arc::new(move || {
        if stop_shared.cancelled.load(Ordering::SeqCst) {
            Some("the run was interrupted".into())
        } else if stop_shared.deadline_passed() {
            Some(stop_shared.timeout_message())
        } else {
            None
        }
    });
    let children = Arc::new(AtomicUsize::new(0));
    let recursion = Recursion {
        shared: shared.clone(),
        depth,
        run_id: run_id.to_string(),
        children,
    };
    let sub_model = config
        .sub_model
        .clone()
        .unwrap_or_else(|| config.model.clone());
    let mut session = SessionBuilder::new()
        .query(query)
        .limits(config.limits.clone())
        .llm(LlmAccess {
            client: shared.client.clone(),
            runtime: shared.handle.clone(),
            sub_model: Some(sub_model.clone()),
            context_window: Some(config.sub_context_tokens),
            depth,
            run_id: Some(run_id.to_string()),
            scope: shared.scope.clone(),
        })
        .stop_when(stop_check)
        .functions(shared.functions.clone())
        .extend(move |engine, session| recursion.register(engine, session))
        .build_view(view.clone(), origin);

    let template = config.system_template.as_deref().unwrap_or(SYSTEM_TEMPLATE);
    let system = render(
        template,
        &PromptValues {
            context: &view,
            limits: &config.limits,
            max_iterations: config.max_iterations,
            sub_context_tokens: config.sub_context_tokens,
            concurrency: shared.client.config().concurrency,
            depth,
            max_depth: config.max_depth,
            functions: &shared.functions,
        },
    );
    let documents = view.documents();
    shared.trace(
        "run_start",
        run_id,
        depth,
        json!({
            "parent": parent,
            "query": query,
            "config": {
                "model": config.model.to_string(),
                "sub_model": sub_model.to_string(),
                "max_iterations": config.max_iterations,
                "max_depth": config.max_depth,
                "timeout_s": config.timeout.map(|t| t.as_secs_f64()),
                "concurrency": shared.client.config().concurrency,
                "sub_context_tokens": config.sub_context_tokens,
                "budgets": shared.client.ledger().budgets(),
            },
            "context": {
                "bytes": view.len(),
                "estimated_tokens": crate::stats::estimate_tokens(view.len()),
                "lines": view.line_count(),
                "documents": documents.len(),
                "names": documents.iter().take(10).map(|d| d.name().to_string()).collect::<Vec<_>>(),
            },
            "system_prompt_bytes": system.len(),
        }),
    );

    let mut messages = vec![Message::user(first_message(query, &view))];
    let mut traced = 0;
    let mut nudged_empty = false;
    let mut outcome = LoopOutcome {
        answer: None,
        kind: None,
        final_output: None,
        status: RunStatus::MaxIterations,
        iterations: 0,
        error: None,
    };
    // What the next root turn needs, held while cells run.
    let mut hold: Option<Reservation> = None;
    // An answer submitted by a cell whose model calls a budget refused.
    let mut set_aside: Option<Submission> = None;
    let ledger = shared.client.ledger().clone();
    for iteration in 1..=config.max_iterations {
        if depth == 0 {
            shared.progress.turn.store(iteration, Ordering::Relaxed);
            shared.progress.cell.store(0, Ordering::Relaxed);
        }
        if let Some((status, why)) = shared.stop() {
            outcome.status = status;
            outcome.error = Some(why);
            break;
        }
        // The hold was for this turn: its own call reserves what it needs now.
        drop(hold.take());
        let refusal = shared.budget_refusal();
        let calls_left = shared.calls_left();
        let last_turn = refusal.is_some()
            || iteration == config.max_iterations
            || calls_left.is_some_and(|n| n <= 1);
        if last_turn {
            let note = match &refusal {
                Some(b) => {
                    let note = budget_note(b);
                    let mut probe = ChatRequest {
                        system: Some(system.clone()),
                        messages: messages.clone(),
                        ..ChatRequest::default()
                    };
                    let room = ledger.input_room(&config.model.name, shared.root_output_tokens());
                    fit_last_message(&mut probe, &note, room);
                    messages = probe.messages;
                    note
                }
                None => FINAL_TURN.to_string(),
            };
            if let Some(m) = messages.last_mut() {
                m.content.push_str(&note);
            }
        }
        shared.trace(
            "root_request",
            run_id,
            depth,
            json!({"iteration": iteration, "messages": &messages[traced..]}),
        );
        traced = messages.len();
        outcome.iterations = iteration;

        let request = ChatRequest {
            system: Some(system.clone()),
            messages: messages.clone(),
            max_tokens: config.root_max_tokens,
            temperature: None,
        };
        let options = CallOptions {
            context_window: None,
            tag: CallTag {
                kind: "root",
                depth,
                cell: None,
                run: Some(run_id.to_string()),
                scope: shared.scope.clone(),
            },
        };
        let t0 = Instant::now();
        let response = match call_root(shared, &request, &options) {
            Some(Ok(c)) => c,
            Some(Err(LlmError::Budget(b))) => {
                outcome.status = budget_status(&b);
                outcome.error = Some(format!(
                    "the root model's turn {iteration} was not sent: {b}"
                ));
                break;
            }
            // A reasoning model can spend its whole token limit thinking.
            // Once, ask it to be brief; a second time, it will not help.
            Some(Err(LlmError::Empty { .. })) if !nudged_empty && !last_turn => {
                nudged_empty = true;
                messages.push(Message::assistant(EMPTY_REPLY));
                messages.push(Message::user(EMPTY_NUDGE));
                continue;
            }
            Some(Err(e)) => {
                outcome.status = RunStatus::Failed;
                outcome.error = Some(match e {
                    LlmError::Empty { .. } => {
                        format!("the root model failed: {e} (rlm run: --root-max-tokens)")
                    }
                    e => format!("the root model failed: {e}"),
                });
                break;
            }
            None => {
                let (status, why) = shared
                    .stop()
                    .unwrap_or((RunStatus::Interrupted, "the run was interrupted".into()));
                outcome.status = status;
                outcome.error = Some(why);
                break;
            }
        };
        shared.trace(
            "root_response",
            run_id,
            depth,
            json!({
                "iteration": iteration,
                "text": response.text,
                "finish": response.finish,
                "input_tokens": response.input_tokens,
                "output_tokens": response.output_tokens,
                "latency_s": t0.elapsed().as_secs_f64(),
            }),
        );
        if !last_turn {
            hold = shared.hold_next_turn(&request, &response.text);
        }
        messages.push(Message::assistant(response.text.clone()));
        let blocks = extract_blocks(&response.text);

        if blocks.code.is_empty() {
            if last_turn && !response.text.trim().is_empty() {
                // Told to submit, the model answered in prose: that is its answer.
                outcome.answer = Some((
                    serde_json::Value::String(response.text.trim().to_string()),
                    response.text.trim().to_string(),
                ));
                outcome.kind = Some(AnswerKind::Prose);
                outcome.status = if iteration == config.max_iterations {
                    RunStatus::MaxIterations
                } else {
                    RunStatus::MaxLlmCalls
                };
                if let Some(b) = &refusal {
                    let (value, text) = outcome.answer.take().unwrap_or_default();
                    let prose = Submission {
                        value,
                        text,
                        kind: AnswerKind::Prose,
                        final_output: None,
                    };
                    outcome.kind = None;
                    budget_answer(&mut outcome, b, prose);
                }
                break;
            }
            let nudge = if response.text.trim().is_empty() {
                "Your last response was empty. Reply with a ```rhai code block that continues the work, or call submit(answer) in one.".to_string()
            } else if let Some(tag) = blocks.skipped.first() {
                format!("Only ```rhai blocks run; your ```{tag} block was not run. Rewrite it in Rhai (see the reference), or call submit(answer).")
            } else {
                "Your last response had no ```rhai code block, so nothing ran. Write code to continue, or call submit(answer) in a code block to finish.".to_string()
            };
            messages.push(Message::user(nudge));
            continue;
        }

        let mut report = String::new();
        let count = blocks.code.len();
        for (i, code) in blocks.code.iter().enumerate() {
            if depth == 0 {
                shared.progress.cell.store(i + 1, Ordering::Relaxed);
            }
            let refusals = ledger.refusals().count;
            let cell = session.run_cell(code);
            let refused_here = ledger.refusals().count > refusals;
            shared.trace(
                "cell",
                run_id,
                depth,
                json!({
                    "iteration": iteration,
                    "index": i + 1,
                    "cell": session.shared().cell_index(),
                    "code": code,
                    "output": cell.output,
                    "truncated": cell.truncated,
                    "error": cell.error,
                    "duration_s": cell.duration.as_secs_f64(),
                    "submitted": cell.submitted.as_ref().map(|a| &a.value),
                }),
            );
            if cell.context_changed {
                outcome.status = RunStatus::Failed;
                outcome.error = cell.error;
                return end_child(shared, outcome, run_id, depth, started);
            }
            if let Some(answer) = cell.submitted {
                let answer = Submission {
                    value: answer.value,
                    text: answer.text,
                    kind: AnswerKind::Submitted,
                    final_output: Some(cell.output).filter(|o| !o.is_empty()),
                };
                match shared.budget_refusal() {
                    // Built from calls the budget refused: the final turn
                    // may do better with what the model knows.
                    Some(_) if refused_here && !last_turn => {
                        set_aside = Some(answer);
                        report.push_str(
                            "Your cell called submit(), but model calls in it were refused by the budget, so that answer was set aside.\n\n",
                        );
                        break;
                    }
                    Some(b) => budget_answer(&mut outcome, &b, answer),
                    None => {
                        outcome.answer = Some((answer.value, answer.text));
                        outcome.kind = Some(answer.kind);
                        outcome.final_output = answer.final_output;
                        outcome.status = RunStatus::Submitted;
                    }
                }
                return end_child(shared, outcome, run_id, depth, started);
            }
            let label = if count > 1 {
                format!("Cell {} of {count}", i + 1)
            } else {
                "Cell".to_string()
            };
            let kind = if cell.error.is_some() {
                "error"
            } else {
                "output"
            };
            report.push_str(&format!(
                "{label} {kind}:\n{}\n\n",
                cell.render().trim_end()
            ));
            if let Some((status, why)) = shared
                .stop()
                .filter(|(s, _)| matches!(s, RunStatus::Interrupted | RunStatus::Timeout))
            {
                outcome.status = status;
                outcome.error = Some(why);
                return end_child(shared, outcome, run_id, depth, started);
            }
        }
        if last_turn {
            outcome.status = if iteration == config.max_iterations {
                RunStatus::MaxIterations
            } else {
                RunStatus::MaxLlmCalls
            };
            outcome.error = Some("the final turn ended without submit()".into());
            break;
        }
        report.push_str(&format!("[turn {iteration} of {}]", config.max_iterations));
        messages.push(Message::user(report));
    }
    drop(hold);
    settle_budget(shared, &mut outcome, set_aside);
    end_child(shared, outcome, run_id, depth, started)
}

/// Children trace their own end; the top run's final event comes from `finish`.
fn end_child(
    shared: &RunShared,
    outcome: LoopOutcome,
    run_id: &str,
    depth: usize,
    started: Instant,
) -> LoopOutcome {
    if depth > 0 {
        shared.trace(
            "child_end",
            run_id,
            depth,
            json!({
                "answer": outcome.answer.as_ref().map(|a| &a.0),
                "status": outcome.status,
                "iterations": outcome.iterations,
                "wall_s": started.elapsed().as_secs_f64(),
                "error": outcome.error,
            }),
        );
    }
    outcome
}

/// Calls the root model; `None` when the run was stopped while waiting.
fn call_root(
    shared: &RunShared,
    request: &ChatRequest,
    options: &CallOptions,
) -> Option<Result<crate::llm::Completion, LlmError>> {
    const POLL: Duration = Duration::from_millis(50);
    let model = &shared.config.model;
    shared.handle.block_on(async {
        let call = shared.client.complete(model, request, options);
        tokio::pin!(call);
        loop {
            tokio::select! {
                r = &mut call => return Some(r),
                _ = tokio::time::sleep(POLL) => {
                    if shared.cancelled.load(Ordering::SeqCst) || shared.deadline_passed() {
                        return None;
                    }
                }
            }
        }
    })
}

/// Registers `rlm_query` and `rlm_batch` in a session without a root model
/// (`rlm exec`), as functions that fail saying so. Left unregistered, a
/// call would fail with "Function not found" and a hint about argument
/// types, which sends the model after the wrong fix.
///
/// ```
/// let ctx = rlm::Context::from_string("doc", "some text\n");
/// let mut session = rlm::dsl::SessionBuilder::new()
///     .extend(rlm::driver::without_root_model)
///     .build(&ctx);
/// let out = session.run_cell(r#"rlm_query("Who?", context)"#);
/// assert!(out.error.unwrap().contains("needs a root model"));
/// ```
pub fn without_root_model(engine: &mut Engine, _session: &Arc<Shared>) {
    fn unavailable(name: &str, instead: &str) -> Box<rhai::EvalAltResult> {
        script_error(format!(
            "{name} needs a root model, and this session has none: a child run is a root model exploring the text, which only `rlm run` provides. Here, ask the sub-model directly: {instead}"
        ))
    }
    engine.register_fn(
        "rlm_query",
        |_question: Dynamic, _text: Dynamic| -> Fallible<String> {
            Err(unavailable(
                "rlm_query",
                "llm_query(`${question}\\n\\n${text}`)",
            ))
        },
    );
    engine.register_fn(
        "rlm_batch",
        |_question: Dynamic, _texts: Dynamic| -> Fallible<Array> {
            Err(unavailable(
                "rlm_batch",
                "llm_batch(texts.map(|t| `${question}\\n\\n${t}`))",
            ))
        },
    );
}

/// `rlm_query` and `rlm_batch` for one session.
struct Recursion {
    shared: Arc<RunShared>,
    depth: usize,
    run_id: String,
    /// Children started by this run, for their ids.
    children: Arc<AtomicUsize>,
}

impl Recursion {
    fn register(&self, engine: &mut Engine, session: &Arc<Shared>) {
        let this = Arc::new(Recursion {
            shared: self.shared.clone(),
            depth: self.depth,
            run_id: self.run_id.clone(),
            children: self.children.clone(),
        });
        let (r, s) = (this.clone(), session.clone());
        engine.register_fn(
            "rlm_query",
            move |ctx: NativeCallContext, question: Dynamic, text: Dynamic| -> Fallible<String> {
                r.query(&ctx, &s, &question, &text)
            },
        );
        let (r, s) = (this.clone(), session.clone());
        engine.register_fn(
            "rlm_batch",
            move |ctx: NativeCallContext, question: Dynamic, texts: Array| -> Fallible<Array> {
                r.batch(&ctx, &s, &question, texts)
            },
        );
    }

    fn at_limit(&self) -> bool {
        self.depth + 1 >= self.shared.config.max_depth
    }

    fn child_id(&self) -> String {
        let n = self.children.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared
            .progress
            .children
            .fetch_add(1, Ordering::Relaxed);
        format!("{}.{n}", self.run_id)
    }

    fn query(
        &self,
        ctx: &NativeCallContext,
        session: &Shared,
        question: &Dynamic,
        text: &Dynamic,
    ) -> Fallible<String> {
        let question = display(question);
        let text = as_text(text).unwrap_or_else(|| Text::from(display(text)));
        if self.at_limit() {
            // At the depth limit a child would be a plain sub-call anyway.
            let prompt = format!("{question}\n\n{text}");
            return ctx.call_native_fn::<String>("llm_query", (prompt,));
        }
        let id = self.child_id();
        let _paused = session.clock.pause();
        let outcome = run_loop(
            &self.shared,
            &question,
            text,
            None,
            self.depth + 1,
            &id,
            Some(&self.run_id),
        );
        match outcome.answer {
            Some((_, text)) => Ok(text),
            None => Err(script_error(format!(
                "child run {id} ended without an answer ({:?}{})",
                outcome.status,
                outcome.error.map(|e| format!(": {e}")).unwrap_or_default()
            ))),
        }
    }

    fn batch(
        &self,
        ctx: &NativeCallContext,
        session: &Shared,
        question: &Dynamic,
        texts: Array,
    ) -> Fallible<Array> {
        let question = display(question);
        let texts: Vec<Text> = texts
            .iter()
            .map(|t| as_text(t).unwrap_or_else(|| Text::from(display(t))))
            .collect();
        if self.at_limit() {
            let prompts: Array = texts
                .iter()
                .map(|t| Dynamic::from(format!("{question}\n\n{t}")))
                .collect();
            return ctx.call_native_fn::<Array>("llm_batch", (prompts,));
        }
        let ids: Vec<String> = texts.iter().map(|_| self.child_id()).collect();
        let workers = texts
            .len()
            .min(self.shared.client.config().concurrency.max(1));
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<String>>> = Mutex::new(vec![None; texts.len()]);
        let _paused = session.clock.pause();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(text) = texts.get(i) else { break };
                    let o = run_loop(
                        &self.shared,
                        &question,
                        text.clone(),
                        None,
                        self.depth + 1,
                        &ids[i],
                        Some(&self.run_id),
                    );
                    let answer = match o.answer {
                        Some((_, t)) => t,
                        None => format!(
                            "ERROR: child run {} ended without an answer ({:?})",
                            ids[i], o.status
                        ),
                    };
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(answer);
                    }
                });
            }
        });
        let results = results.into_inner().unwrap_or_default();
        Ok(results
            .into_iter()
            .map(|r| Dynamic::from(r.unwrap_or_else(|| "ERROR: child run did not finish".into())))
            .collect())
    }
}
