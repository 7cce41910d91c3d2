//! What the runs of one recursion tree share, and what they do not.
//!
//! [`Shared`] is what every run of one [`Rlm`](super::Rlm) shares, whichever
//! top run it belongs to: the settings, the client, the runtime, the sinks
//! and the interrupt. [`TopRun`] is one top run's own state (its serial
//! number, deadline and refusal baseline), so two top runs on one `Rlm`,
//! even at once, never see each other's clock or budget refusals. A
//! [`Tree`] is both, as the runs of one tree (the top run and its children)
//! see them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::{RunConfig, RunStatus};
use crate::events::{Event, RunEvent, RunSink, Sinks};
use crate::llm::{
    BudgetExceeded, CallObserver, CallRecord, CallTag, ChatRequest, LlmClient, ModelSpec, Provider,
    Reservation, MIN_USEFUL_OUTPUT,
};

/// What every run of one [`Rlm`](super::Rlm) shares, children included.
pub(crate) struct Shared {
    pub config: RunConfig,
    pub client: LlmClient,
    pub handle: tokio::runtime::Handle,
    pub sinks: Sinks,
    pub cancelled: Arc<AtomicBool>,
    /// The task these runs belong to, when runs share a client.
    pub scope: Option<String>,
    /// Top runs started so far, for their serial numbers.
    pub started: AtomicU64,
    /// Top runs in progress.
    pub active: AtomicUsize,
    pub functions: crate::dsl::HostFunctions,
}

/// One top run's own state, shared by the runs of its tree and no other.
pub(crate) struct TopRun {
    /// 1 for the first top run of its `Rlm`, 2 for the next, ...
    pub serial: u64,
    /// The scope its calls are tagged with ([`scope_of`]).
    pub scope: Option<String>,
    /// When the run must stop.
    deadline: Option<Instant>,
    /// The ledger's refusal count when the run started: more since then
    /// means a budget refused a call of this run's tree.
    refusals_before: u64,
}

impl Shared {
    /// Starts a top run: its serial, its deadline, its refusal baseline.
    pub fn begin(&self, started: Instant) -> TopRun {
        self.active.fetch_add(1, Ordering::SeqCst);
        let serial = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        TopRun {
            serial,
            scope: scope_of(self.scope.as_deref(), serial),
            deadline: self.config.timeout.map(|t| started + t),
            // Refusals of an earlier run on this Rlm do not end this one.
            refusals_before: self.client.ledger().refusals().count,
        }
    }

    /// Ends a top run. An interrupt that came before a run started still
    /// stops it; the one that stopped the runs in progress does not carry
    /// over to the next, so the last of them to end clears it.
    pub fn end(&self, _top: &TopRun) {
        if self.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.cancelled.store(false, Ordering::SeqCst);
        }
    }
}

/// The runs of one tree: the `Rlm`'s shared parts and its top run's state.
#[derive(Clone)]
pub(crate) struct Tree {
    pub shared: Arc<Shared>,
    pub top: Arc<TopRun>,
}

impl Tree {
    pub fn config(&self) -> &RunConfig {
        &self.shared.config
    }

    pub fn client(&self) -> &LlmClient {
        &self.shared.client
    }

    /// Sends `event` of run `run` to every sink.
    pub fn emit(&self, run: &str, depth: usize, event: Event<'_>) {
        if self.shared.sinks.is_empty() {
            return;
        }
        self.shared.sinks.event(&RunEvent {
            top: self.top.serial,
            run,
            depth,
            event,
        });
    }

    /// Why the run must stop now: interruption, the deadline, or a budget.
    pub fn stop(&self) -> Option<(RunStatus, String)> {
        if let Some(why) = self.interrupted_or_late() {
            return Some(why);
        }
        self.client()
            .ledger()
            .exhausted()
            .map(|b| (RunStatus::from_budget(&b), b.to_string()))
    }

    /// Interruption or the deadline, which stop a run even mid-cell.
    pub fn interrupted_or_late(&self) -> Option<(RunStatus, String)> {
        if self.shared.cancelled.load(Ordering::SeqCst) {
            return Some((RunStatus::Interrupted, "the run was interrupted".into()));
        }
        self.deadline_passed()
            .then(|| (RunStatus::Timeout, self.timeout_message()))
    }

    pub fn deadline_passed(&self) -> bool {
        self.top.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn timeout_message(&self) -> String {
        let secs = self.config().timeout.map_or(0.0, |t| t.as_secs_f64());
        format!("the run's time limit of {secs}s was reached")
    }

    /// The budget that refused a call somewhere in this top run's tree
    /// (children included), if one did.
    pub fn budget_refusal(&self) -> Option<BudgetExceeded> {
        let r = self.client().ledger().refusals();
        (r.count > self.top.refusals_before)
            .then_some(r.last)
            .flatten()
    }

    /// The answer tokens a root turn needs at least, for holds and the
    /// final turn's fit.
    pub fn root_output_tokens(&self) -> u64 {
        self.config()
            .root_max_tokens
            .map_or(MIN_USEFUL_OUTPUT, u64::from)
    }

    /// Holds what the next root turn will need (this request, the reply,
    /// a note, and one call), so the cell's sub-calls cannot spend it: that
    /// keeps the final turn a budget promises. `None` without budgets, for
    /// replayed roots, or when it is not left.
    pub fn hold_next_turn(&self, request: &ChatRequest, reply: &str) -> Option<Reservation> {
        let ledger = self.client().ledger();
        let model = &self.config().model;
        if model.provider == Provider::Replay || !ledger.has_budgets() {
            return None;
        }
        let input = request.max_input_tokens()
            + reply.len() as u64
            + 2 * crate::llm::wire::TEMPLATE_TOKENS
            + super::budget::NOTE_ALLOWANCE;
        ledger.hold(&model.name, input, self.root_output_tokens())
    }

    /// Calls left under the call budget, if there is one.
    pub fn calls_left(&self) -> Option<u64> {
        let ledger = self.client().ledger();
        let max = ledger.budgets().max_calls?;
        let t = ledger.totals();
        Some(max.saturating_sub(t.calls + t.errors))
    }
}

/// Separates a task's scope from a top run's serial in a call's scope tag.
/// A control character, so no task id in a batch file is likely to hold it.
const SERIAL_MARK: char = '\u{1f}';

/// The scope a top run tags its calls with: the task's own (none for a
/// client of its own) for the first top run of an `Rlm`, so one run's
/// calls look as they always have, and the task's with the serial after it
/// for later ones, so the calls of concurrent runs can be told apart.
fn scope_of(task: Option<&str>, serial: u64) -> Option<String> {
    if serial == 1 {
        return task.map(str::to_string);
    }
    Some(format!("{}{SERIAL_MARK}{serial}", task.unwrap_or("")))
}

/// The top run a call's scope tag names (see [`scope_of`]).
fn serial_of(scope: Option<&str>) -> u64 {
    scope
        .and_then(|s| s.rsplit_once(SERIAL_MARK))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(1)
}

/// The task a call's scope tag names, without a top run's serial: what a
/// [`TraceRouter`](crate::trace::TraceRouter) routes by.
pub fn task_of(scope: &str) -> &str {
    match scope.rsplit_once(SERIAL_MARK) {
        Some((task, n)) if n.parse::<u64>().is_ok() => task,
        _ => scope,
    }
}

/// Turns the client's records of sub-calls into events for an `Rlm`'s
/// sinks. Root calls are left out: the loop emits its own root events.
pub(crate) struct CallEvents {
    pub sinks: Sinks,
}

impl CallEvents {
    fn emit(&self, tag: &CallTag, event: Event<'_>) {
        self.sinks.event(&RunEvent {
            top: serial_of(tag.scope.as_deref()),
            run: tag.run.as_deref().unwrap_or("0"),
            depth: tag.depth,
            event,
        });
    }
}

impl CallObserver for CallEvents {
    fn on_start(&self, model: &ModelSpec, request: &ChatRequest, tag: &CallTag) {
        if tag.kind != "root" {
            self.emit(
                tag,
                Event::SubCallStart {
                    model,
                    request,
                    tag,
                },
            );
        }
    }

    fn on_call(&self, record: &CallRecord<'_>) {
        if record.tag.kind != "root" {
            self.emit(record.tag, Event::SubCallEnd(record));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_run_keeps_its_tasks_scope_and_later_runs_are_told_apart() {
        assert_eq!(scope_of(None, 1), None);
        assert_eq!(scope_of(Some("t1"), 1).as_deref(), Some("t1"));
        let second = scope_of(Some("t#1"), 2).unwrap();
        assert_eq!((task_of(&second), serial_of(Some(&second))), ("t#1", 2));
        let own = scope_of(None, 3).unwrap();
        assert_eq!((task_of(&own), serial_of(Some(&own))), ("", 3));
        assert_eq!(
            (task_of("a\u{1f}b"), serial_of(Some("a\u{1f}b"))),
            ("a\u{1f}b", 1)
        );
        assert_eq!(serial_of(None), 1);
    }
}
