//! Budget settlement: what a run reports once a budget refused a call of
//! its tree.
//!
//! A refusal makes the root's next turn its last, with a note saying so
//! ([`budget_note`], fitted by [`fit_last_message`]). Whatever that turn
//! gives, the run ends with the budget's status, never `submitted`
//! ([`settle_budget`]); an answer built from refused calls is not reported
//! ([`budget_answer`]).

use super::run::{LoopOutcome, Submission};
use super::tree::Tree;
use super::RunStatus;
use crate::llm::{BudgetExceeded, ChatRequest};

/// Bytes held for the note a final turn appends to the last message.
pub(super) const NOTE_ALLOWANCE: u64 = 1024;

/// The note that makes a turn the last because a budget refused a call.
pub(super) fn budget_note(b: &BudgetExceeded) -> String {
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
pub(super) fn budget_answer(outcome: &mut LoopOutcome, b: &BudgetExceeded, answer: Submission) {
    outcome.status = RunStatus::from_budget(b);
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

/// A run whose tree had a call refused by a budget ends with that budget's
/// status, never `submitted`; an answer set aside for the final turn is
/// reported if that turn gave none.
pub(super) fn settle_budget(tree: &Tree, outcome: &mut LoopOutcome, set_aside: Option<Submission>) {
    let Some(b) = tree.budget_refusal() else {
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
        outcome.status = RunStatus::from_budget(&b);
        outcome.error.get_or_insert_with(|| b.to_string());
    }
}

/// Cuts the end of the last message's cell report so the request fits in
/// `room` tokens once `note` is appended (a final turn must be admitted to
/// happen at all). Leaves it whole when it fits or cutting cannot help.
pub(super) fn fit_last_message(request: &mut ChatRequest, note: &str, room: Option<u64>) {
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

/// Whether a run with this status ended on a budget.
pub(super) fn is_budget_stop(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::MaxLlmCalls | RunStatus::MaxTokens | RunStatus::MaxCost
    )
}
