//! One run of the loop (the top run or a child), split the way it
//! happens: a run starts ([`Loop::start`]), takes turns ([`Loop::turn`]),
//! each turn runs its cells ([`Loop::cell`]), and the run ends
//! ([`Loop::end`], then [`finish`] for the top run). Every step emits its
//! [`Event`]s; the loop itself writes nothing anywhere.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::budget::{budget_answer, budget_note, fit_last_message, is_budget_stop, settle_budget};
use super::fences::{extract_blocks, Blocks};
use super::prompt::{render, PromptValues, SYSTEM_TEMPLATE};
use super::recursion::Recursion;
use super::tree::{Shared, Tree};
use super::{AnswerKind, RunResult, RunStatus};
use crate::dsl::{Answer, CellOutcome, LlmAccess, Session, SessionBuilder};
use crate::events::{self, Budget, Cell, Event, RunSink};
use crate::llm::{
    CallOptions, CallTag, ChatRequest, Completion, LlmError, Message, ModelSpec, Reservation,
};
use crate::{Context, Text};

/// How one loop ended, before usage is attached.
pub(super) struct LoopOutcome {
    pub answer: Option<(serde_json::Value, String)>,
    pub kind: Option<AnswerKind>,
    /// What the submitting cell printed, if anything.
    pub final_output: Option<String>,
    pub status: RunStatus,
    pub iterations: usize,
    pub error: Option<String>,
}

impl LoopOutcome {
    fn stopped(status: RunStatus, error: String) -> LoopOutcome {
        LoopOutcome {
            answer: None,
            kind: None,
            final_output: None,
            status,
            iterations: 0,
            error: Some(error),
        }
    }
}

/// An answer, before the run decides how to report it.
pub(super) struct Submission {
    pub value: serde_json::Value,
    pub text: String,
    pub kind: AnswerKind,
    pub final_output: Option<String>,
}

/// What a run explores, and where it sits in its tree.
pub(super) struct RunSpec<'a> {
    pub query: &'a str,
    pub view: Text,
    /// The context itself, for the top run (its files are watched).
    pub origin: Option<Context>,
    pub depth: usize,
    pub id: &'a str,
    pub parent: Option<&'a str>,
}

/// Starts a top run of `shared`: its own serial, deadline and refusal
/// baseline ([`TopRun`]).
pub(crate) fn begin_top(shared: &Arc<Shared>, started: Instant) -> Tree {
    Tree {
        shared: shared.clone(),
        top: Arc::new(shared.begin(started)),
    }
}

/// Runs a top run begun with [`begin_top`] and assembles its result.
pub(crate) fn run_top(tree: &Tree, query: &str, context: &Context, started: Instant) -> RunResult {
    let outcome = run_loop(
        tree,
        RunSpec {
            query,
            view: context.text(),
            origin: Some(context.clone()),
            depth: 0,
            id: "0",
            parent: None,
        },
    );
    let result = finish(tree, outcome, started);
    tree.shared.end(&tree.top);
    result
}

/// The result of a top run that could not run at all (its thread panicked).
pub(crate) fn failed_result(tree: &Tree, error: String, started: Instant) -> RunResult {
    let result = finish(
        tree,
        LoopOutcome::stopped(RunStatus::Failed, error),
        started,
    );
    tree.shared.end(&tree.top);
    result
}

/// The top run's result, with the usage of its whole tree: emitted as
/// [`Event::Final`] (when there is an answer) and [`Event::RunEnd`].
fn finish(tree: &Tree, o: LoopOutcome, started: Instant) -> RunResult {
    let ledger = tree.client().ledger();
    let totals = ledger.totals();
    let usage = ledger.by_model();
    let (answer, answer_text) = match o.answer {
        Some((v, t)) => (Some(v), Some(t)),
        None => (None, None),
    };
    let mut result = RunResult {
        answer,
        answer_text,
        answer_kind: o.kind,
        final_output: o.final_output,
        status: o.status,
        iterations: o.iterations,
        cost_usd: totals.cost_usd,
        usage,
        totals,
        wall_s: started.elapsed().as_secs_f64(),
        error: o.error,
        trace_error: None,
    };
    if let (Some(value), Some(text), Some(kind)) =
        (&result.answer, &result.answer_text, result.answer_kind)
    {
        tree.emit("0", 0, Event::Final(events::Answer { value, text, kind }));
    }
    tree.emit("0", 0, Event::RunEnd(&result));
    result.trace_error = tree.shared.sinks.error();
    result
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
pub(super) fn run_loop(tree: &Tree, spec: RunSpec<'_>) -> LoopOutcome {
    let mut run = Loop::start(tree, spec);
    for iteration in 1..=tree.config().max_iterations {
        match run.turn(iteration) {
            Turn::Next => {}
            Turn::Stop => break,
            Turn::Ended => return run.end(false),
        }
    }
    run.end(true)
}

/// What a turn decided.
enum Turn {
    /// The conversation goes on.
    Next,
    /// The loop stops; a budget refusal may still change how it is reported.
    Stop,
    /// The run's outcome is final (a submit, an interrupt mid-turn, a
    /// context that changed on disk).
    Ended,
}

/// What a cell decided.
enum CellFlow {
    /// Its report for the model; the turn's next cell runs.
    Report(String),
    /// Its report for the model, and the turn's other cells do not run:
    /// it submitted from calls a budget refused (the answer is set aside
    /// for the final turn), or a value the answer schema refused.
    Halt(String),
    /// The run's outcome is final.
    Ended,
}

/// One run in progress: its session, its conversation, and how it stands.
struct Loop<'a> {
    tree: &'a Tree,
    id: &'a str,
    depth: usize,
    started: Instant,
    session: Session,
    system: String,
    messages: Vec<Message>,
    /// Messages already sent in a [`Event::RootRequest`].
    traced: usize,
    /// Whether the model was asked once to be brief after an empty reply.
    nudged_empty: bool,
    /// What the next root turn needs, held while cells run.
    hold: Option<Reservation>,
    /// An answer submitted by a cell whose model calls a budget refused.
    set_aside: Option<Submission>,
    /// Submits the answer schema refused, and the last of them.
    invalid_answers: usize,
    last_invalid: Option<Submission>,
    outcome: LoopOutcome,
}

impl<'a> Loop<'a> {
    /// Builds the run's session and system prompt, and emits its start.
    fn start(tree: &'a Tree, spec: RunSpec<'a>) -> Loop<'a> {
        let config = tree.config();
        let sub_model = config
            .sub_model
            .clone()
            .unwrap_or_else(|| config.model.clone());
        let system = system_prompt(tree, &spec);
        let start = events::RunStart {
            parent: spec.parent,
            query: spec.query,
            config,
            sub_model: &sub_model,
            concurrency: tree.client().config().concurrency,
            budgets: tree.client().ledger().budgets(),
            context: &spec.view,
            system_prompt: &system,
        };
        let event = match spec.depth {
            0 => Event::RunStart(start),
            _ => Event::ChildStart(start),
        };
        tree.emit(spec.id, spec.depth, event);
        let messages = vec![Message::user(first_message(spec.query, &spec.view))];
        Loop {
            tree,
            id: spec.id,
            depth: spec.depth,
            started: Instant::now(),
            session: session(tree, &spec, sub_model),
            system,
            messages,
            traced: 0,
            nudged_empty: false,
            hold: None,
            set_aside: None,
            invalid_answers: 0,
            last_invalid: None,
            outcome: LoopOutcome {
                status: RunStatus::MaxIterations,
                iterations: 0,
                answer: None,
                kind: None,
                final_output: None,
                error: None,
            },
        }
    }

    fn emit(&self, event: Event<'_>) {
        self.tree.emit(self.id, self.depth, event);
    }

    /// Records why the run stops.
    fn stop(&mut self, status: RunStatus, why: String) {
        self.outcome.status = status;
        self.outcome.error = Some(why);
    }

    /// One root turn: the request, the reply, and the cells in it.
    fn turn(&mut self, iteration: usize) -> Turn {
        if let Some((status, why)) = self.tree.stop() {
            self.stop(status, why);
            return Turn::Stop;
        }
        // The hold was for this turn: its own call reserves what it needs now.
        drop(self.hold.take());
        let max = self.tree.config().max_iterations;
        let refusal = self.tree.budget_refusal();
        let last_turn =
            refusal.is_some() || iteration == max || self.tree.calls_left().is_some_and(|n| n <= 1);
        if let Some(b) = &refusal {
            self.emit(Event::Budget(Budget::Refused(b)));
        }
        if last_turn {
            self.add_final_note(refusal.as_ref());
        }
        let request = self.request(iteration);
        let (response, latency) = match self.ask_root(iteration, &request, last_turn) {
            Ok(r) => r,
            Err(turn) => return turn,
        };
        self.emit(Event::RootResponse {
            iteration,
            completion: &response,
            latency,
        });
        if !last_turn {
            self.hold = self.tree.hold_next_turn(&request, &response.text);
        }
        self.messages
            .push(Message::assistant(response.text.clone()));
        let blocks = extract_blocks(&response.text);
        if blocks.code.is_empty() {
            return self.no_code(iteration, &response.text, &blocks, last_turn, refusal);
        }
        let Some(mut report) = self.cells(iteration, &blocks.code, last_turn) else {
            return Turn::Ended;
        };
        if last_turn {
            self.outcome.status = ran_out(iteration, max);
            self.outcome.error = Some("the final turn ended without submit()".into());
            return Turn::Stop;
        }
        report.push_str(&format!("[turn {iteration} of {max}]"));
        self.messages.push(Message::user(report));
        Turn::Next
    }

    /// Tells the model this turn is its last: because a budget refused a
    /// call (cutting the cell report to leave room for the turn), or
    /// because turns or calls run out.
    fn add_final_note(&mut self, refusal: Option<&crate::llm::BudgetExceeded>) {
        let note = match refusal {
            Some(b) => {
                let note = budget_note(b);
                let mut probe = ChatRequest {
                    system: Some(self.system.clone()),
                    messages: std::mem::take(&mut self.messages),
                    ..ChatRequest::default()
                };
                let config = self.tree.config();
                let room = self
                    .tree
                    .client()
                    .ledger()
                    .input_room(&config.model.name, self.tree.root_output_tokens());
                fit_last_message(&mut probe, &note, room);
                self.messages = probe.messages;
                note
            }
            None => FINAL_TURN.to_string(),
        };
        if let Some(m) = self.messages.last_mut() {
            m.content.push_str(&note);
        }
    }

    /// The turn's request to the root model, emitted with the messages
    /// added since the last one.
    fn request(&mut self, iteration: usize) -> ChatRequest {
        self.emit(Event::RootRequest {
            iteration,
            messages: &self.messages[self.traced..],
        });
        self.traced = self.messages.len();
        self.outcome.iterations = iteration;
        ChatRequest {
            system: Some(self.system.clone()),
            messages: self.messages.clone(),
            max_tokens: self.tree.config().root_max_tokens,
            temperature: None,
            cache_prefix: true,
            format: None,
        }
    }

    /// Calls the root model: its reply and how long it took, or how the
    /// turn ends without one.
    fn ask_root(
        &mut self,
        iteration: usize,
        request: &ChatRequest,
        last_turn: bool,
    ) -> Result<(Completion, Duration), Turn> {
        let options = CallOptions {
            context_window: None,
            tag: CallTag {
                kind: "root",
                depth: self.depth,
                cell: None,
                run: Some(self.id.to_string()),
                scope: self.tree.top.scope.clone(),
            },
        };
        let t0 = Instant::now();
        match call_root(self.tree, request, &options) {
            Some(Ok(c)) => Ok((c, t0.elapsed())),
            Some(Err(LlmError::Budget(b))) => {
                let why = format!("the root model's turn {iteration} was not sent: {b}");
                self.stop(RunStatus::from_budget(&b), why);
                Err(Turn::Stop)
            }
            // A reasoning model can spend its whole token limit thinking.
            // Once, ask it to be brief; a second time, it will not help.
            Some(Err(LlmError::Empty { .. })) if !self.nudged_empty && !last_turn => {
                self.nudged_empty = true;
                self.messages.push(Message::assistant(EMPTY_REPLY));
                self.messages.push(Message::user(EMPTY_NUDGE));
                Err(Turn::Next)
            }
            Some(Err(e)) => {
                let why = match e {
                    LlmError::Empty { .. } => {
                        format!("the root model failed: {e} (rlm run: --root-max-tokens)")
                    }
                    e => format!("the root model failed: {e}"),
                };
                self.stop(RunStatus::Failed, why);
                Err(Turn::Stop)
            }
            None => {
                let (status, why) = self
                    .tree
                    .stop()
                    .unwrap_or((RunStatus::Interrupted, "the run was interrupted".into()));
                self.stop(status, why);
                Err(Turn::Stop)
            }
        }
    }

    /// A reply with no code to run: on the final turn its prose is the
    /// answer; otherwise the model is told why nothing ran.
    fn no_code(
        &mut self,
        iteration: usize,
        text: &str,
        blocks: &Blocks,
        last_turn: bool,
        refusal: Option<crate::llm::BudgetExceeded>,
    ) -> Turn {
        let prose = text.trim();
        if last_turn && !prose.is_empty() {
            // Told to submit, the model answered in prose: that is its answer.
            let answer = Submission {
                value: serde_json::Value::String(prose.to_string()),
                text: prose.to_string(),
                kind: AnswerKind::Prose,
                final_output: None,
            };
            match &refusal {
                Some(b) => budget_answer(&mut self.outcome, b, answer),
                None => {
                    self.outcome.answer = Some((answer.value, answer.text));
                    self.outcome.kind = Some(AnswerKind::Prose);
                    self.outcome.status = ran_out(iteration, self.tree.config().max_iterations);
                }
            }
            return Turn::Stop;
        }
        let nudge = if prose.is_empty() {
            "Your last response was empty. Reply with a ```rhai code block that continues the work, or call submit(answer) in one.".to_string()
        } else if let Some(tag) = blocks.skipped.first() {
            format!("Only ```rhai blocks run; your ```{tag} block was not run. Rewrite it in Rhai (see the reference), or call submit(answer).")
        } else {
            "Your last response had no ```rhai code block, so nothing ran. Write code to continue, or call submit(answer) in a code block to finish.".to_string()
        };
        self.messages.push(Message::user(nudge));
        Turn::Next
    }

    /// Runs a reply's code blocks in order: the report for the model, or
    /// `None` when the run's outcome is final.
    fn cells(&mut self, iteration: usize, codes: &[String], last_turn: bool) -> Option<String> {
        let mut report = String::new();
        for (i, code) in codes.iter().enumerate() {
            let cell = Cell {
                iteration,
                index: i + 1,
                count: codes.len(),
                code,
            };
            match self.cell(cell, last_turn) {
                CellFlow::Report(text) => report.push_str(&text),
                CellFlow::Halt(text) => {
                    report.push_str(&text);
                    break;
                }
                CellFlow::Ended => return None,
            }
        }
        Some(report)
    }

    /// Runs one code block.
    fn cell(&mut self, cell: Cell<'_>, last_turn: bool) -> CellFlow {
        self.emit(Event::CellStart(cell));
        let ledger = self.tree.client().ledger().clone();
        let refusals = ledger.refusals().count;
        let mut outcome = self.session.run_cell(cell.code);
        let refused_here = ledger.refusals().count > refusals;
        self.emit(Event::CellEnd {
            cell,
            number: self.session.shared().cell_index(),
            outcome: &outcome,
        });
        if outcome.context_changed {
            self.outcome.status = RunStatus::Failed;
            self.outcome.error = outcome.error;
            return CellFlow::Ended;
        }
        if let Some(answer) = outcome.submitted.take() {
            let answer = match self.check_schema(&cell, answer, &outcome.output) {
                Ok(answer) => answer,
                Err(refusal) => return refusal,
            };
            return self.submitted(answer, outcome.output, refused_here, last_turn);
        }
        let report = cell_report(&cell, &outcome);
        if let Some((status, why)) = self.tree.interrupted_or_late() {
            self.stop(status, why);
            return CellFlow::Ended;
        }
        CellFlow::Report(report)
    }

    /// Checks a top run's submit against its answer schema (children have
    /// none). A string holding JSON that matches is taken as that JSON,
    /// since models often submit `to_json(value)`. A value that fails is
    /// refused: the cell's report lists the violations so the model can
    /// repair it, or the run ends once it has failed `max_invalid_answers`
    /// times.
    fn check_schema(
        &mut self,
        cell: &Cell<'_>,
        answer: Answer,
        printed: &str,
    ) -> Result<Answer, CellFlow> {
        let config = self.tree.config();
        let Some(schema) = config.answer_schema.as_ref().filter(|_| self.depth == 0) else {
            return Ok(answer);
        };
        let violations = match schema.check(&answer.value) {
            Ok(()) => return Ok(answer),
            Err(violations) => violations,
        };
        if let Some(parsed) = answer
            .value
            .as_str()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s.trim()).ok())
            .filter(|v| !v.is_string() && schema.check(v).is_ok())
        {
            return Ok(Answer {
                text: parsed.to_string(),
                value: parsed,
            });
        }
        self.invalid_answers += 1;
        let allowed = config.max_invalid_answers.max(1);
        let listed = violations.join("\n");
        self.last_invalid = Some(Submission {
            value: answer.value.clone(),
            text: answer.text.clone(),
            kind: AnswerKind::Submitted,
            final_output: Some(printed.to_string()).filter(|o| !o.is_empty()),
        });
        if self.invalid_answers >= allowed {
            self.end_invalid(format!(
                "the submitted answer failed the answer schema {} time(s); the last value's errors:\n{listed}",
                self.invalid_answers
            ));
            return Err(CellFlow::Ended);
        }
        let label = if cell.count > 1 {
            format!("Cell {} of {}", cell.index, cell.count)
        } else {
            "Cell".to_string()
        };
        Err(CellFlow::Halt(format!(
            "{label} error:\nsubmit() refused: the value does not match the answer schema (attempt {} of {allowed}):\n{listed}\nFix the value and call submit() again; the run has not ended.\n\n",
            self.invalid_answers
        )))
    }

    /// Ends the run `invalid_answer`, keeping the last value submitted.
    fn end_invalid(&mut self, why: String) {
        if let Some(last) = self.last_invalid.take() {
            self.outcome.answer = Some((last.value, last.text));
            self.outcome.kind = Some(last.kind);
            self.outcome.final_output = last.final_output;
        }
        self.outcome.status = RunStatus::InvalidAnswer;
        self.outcome.error = Some(why);
    }

    /// A cell called `submit`: the run ends with its answer, unless a
    /// budget refused the calls it was built from and a final turn may do
    /// better with what the model knows.
    fn submitted(
        &mut self,
        answer: Answer,
        printed: String,
        refused_here: bool,
        last_turn: bool,
    ) -> CellFlow {
        let answer = Submission {
            value: answer.value,
            text: answer.text,
            kind: AnswerKind::Submitted,
            final_output: Some(printed).filter(|o| !o.is_empty()),
        };
        match self.tree.budget_refusal() {
            Some(_) if refused_here && !last_turn => {
                self.set_aside = Some(answer);
                return CellFlow::Halt(
                    "Your cell called submit(), but model calls in it were refused by the budget, so that answer was set aside.\n\n".to_string(),
                );
            }
            Some(b) => budget_answer(&mut self.outcome, &b, answer),
            None => {
                self.outcome.answer = Some((answer.value, answer.text));
                self.outcome.kind = Some(answer.kind);
                self.outcome.final_output = answer.final_output;
                self.outcome.status = RunStatus::Submitted;
            }
        }
        CellFlow::Ended
    }

    /// Ends the run: settles budgets when the loop stopped on its own
    /// (`settle`), and emits how it ended. A child's end is emitted here;
    /// the top run's comes from [`finish`], with the tree's usage.
    fn end(mut self, settle: bool) -> LoopOutcome {
        drop(self.hold.take());
        if settle {
            settle_budget(self.tree, &mut self.outcome, self.set_aside.take());
        }
        // Turns ran out after the model did submit, only never a valid
        // value: that, with the value, says more than `max_iterations`.
        let unanswered =
            self.outcome.answer.is_none() || self.outcome.kind == Some(AnswerKind::Prose);
        if self.last_invalid.is_some()
            && unanswered
            && self.outcome.status == RunStatus::MaxIterations
        {
            let n = self.invalid_answers;
            self.end_invalid(format!(
                "the turns ran out; all {n} submitted answer(s) failed the answer schema"
            ));
        }
        let o = &self.outcome;
        if is_budget_stop(o.status) {
            self.emit(Event::Budget(Budget::Stopped {
                status: o.status,
                reason: o.error.as_deref(),
            }));
        }
        if self.depth > 0 {
            if let (Some((value, text)), Some(kind)) = (&o.answer, o.kind) {
                self.emit(Event::Final(events::Answer { value, text, kind }));
            }
            self.emit(Event::ChildEnd(events::ChildEnd {
                answer: o.answer.as_ref().map(|a| &a.0),
                status: o.status,
                iterations: o.iterations,
                wall: self.started.elapsed(),
                error: o.error.as_deref(),
            }));
        }
        self.outcome
    }
}

/// How a final turn without a submit is reported: the turn limit, or the
/// last call of the call budget.
fn ran_out(iteration: usize, max_iterations: usize) -> RunStatus {
    if iteration == max_iterations {
        RunStatus::MaxIterations
    } else {
        RunStatus::MaxLlmCalls
    }
}

/// What the model is told a cell printed.
fn cell_report(cell: &Cell<'_>, outcome: &CellOutcome) -> String {
    let label = if cell.count > 1 {
        format!("Cell {} of {}", cell.index, cell.count)
    } else {
        "Cell".to_string()
    };
    let kind = if outcome.error.is_some() {
        "error"
    } else {
        "output"
    };
    format!("{label} {kind}:\n{}\n\n", outcome.render().trim_end())
}

/// The run's system prompt, from the configured template or the built-in one.
fn system_prompt(tree: &Tree, spec: &RunSpec<'_>) -> String {
    let config = tree.config();
    let template = config.system_template.as_deref().unwrap_or(SYSTEM_TEMPLATE);
    render(
        template,
        &PromptValues {
            context: &spec.view,
            limits: &config.limits,
            max_iterations: config.max_iterations,
            sub_context_tokens: config.sub_context_tokens,
            concurrency: tree.client().config().concurrency,
            depth: spec.depth,
            max_depth: config.max_depth,
            functions: &tree.shared.functions,
            answer_schema: config
                .answer_schema
                .as_deref()
                .filter(|_| spec.depth == 0)
                .map(|s| (s, config.max_invalid_answers.max(1))),
        },
    )
}

/// The run's script session: its limits, its sub-model, the run's stop
/// (interrupt and deadline), and `rlm_query`/`rlm_batch` for children.
fn session(tree: &Tree, spec: &RunSpec<'_>, sub_model: ModelSpec) -> Session {
    let config = tree.config();
    let stop_tree = tree.clone();
    let stop_check: crate::dsl::ExternalStop =
        Arc::new(move || stop_tree.interrupted_or_late().map(|(_, why)| why));
    let recursion = Recursion {
        tree: tree.clone(),
        depth: spec.depth,
        run_id: spec.id.to_string(),
        children: Arc::new(AtomicUsize::new(0)),
    };
    SessionBuilder::new()
        .query(spec.query)
        .limits(config.limits.clone())
        .llm(LlmAccess {
            client: tree.client().clone(),
            runtime: tree.shared.handle.clone(),
            sub_model: Some(sub_model),
            context_window: Some(config.sub_context_tokens),
            depth: spec.depth,
            run_id: Some(spec.id.to_string()),
            scope: tree.top.scope.clone(),
        })
        .functions(tree.shared.functions.clone())
        .stop_when(stop_check)
        .extend(move |engine, session| recursion.register(engine, session))
        .build_view(spec.view.clone(), spec.origin.clone())
}

/// Calls the root model; `None` when the run was stopped while waiting.
fn call_root(
    tree: &Tree,
    request: &ChatRequest,
    options: &CallOptions,
) -> Option<Result<Completion, LlmError>> {
    const POLL: Duration = Duration::from_millis(50);
    let model = &tree.config().model;
    tree.shared.handle.block_on(async {
        let call = tree.client().complete(model, request, options);
        tokio::pin!(call);
        loop {
            tokio::select! {
                r = &mut call => return Some(r),
                _ = tokio::time::sleep(POLL) => {
                    if tree.shared.cancelled.load(Ordering::SeqCst) || tree.deadline_passed() {
                        return None;
                    }
                }
            }
        }
    })
}
