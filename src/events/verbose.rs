//! The verbose printer: each event as one readable line, as it happens.

use std::io::Write;
use std::sync::Mutex;

use super::{Budget, Event, RunEvent, RunSink};
use crate::driver::RunStatus;
use crate::escape;
use crate::llm::cost_text;

/// Characters of code, output, prompts and answers a line shows.
const CODE_CHARS: usize = 100;
const TEXT_CHARS: usize = 80;

/// Prints each event as one line (`rlm run --verbose` writes them to
/// standard error): turns, cells with their code and output abbreviated,
/// sub-calls with model, tokens and latency, child runs indented by depth,
/// budget stops and the answer.
///
/// Everything from the input or a model is abbreviated and has its control
/// characters escaped ([`escape::line`]), newlines included, so one event
/// is one line and nothing printed can drive the terminal. Events carry no
/// API key, so no line holds one. A line that cannot be written (a closed
/// pipe) is dropped; the run goes on.
///
/// ```
/// use std::sync::Arc;
/// use rlm::events::VerbosePrinter;
/// let printer = Arc::new(VerbosePrinter::new(std::io::stderr()));
/// let builder = rlm::driver::Rlm::builder().sink(printer);
/// # drop(builder);
/// ```
pub struct VerbosePrinter<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> VerbosePrinter<W> {
    /// A printer writing to `out`.
    pub fn new(out: W) -> Self {
        VerbosePrinter {
            out: Mutex::new(out),
        }
    }

    /// The writer, once the runs are over (to read what a test printed).
    pub fn into_inner(self) -> W {
        match self.out.into_inner() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl<W: Write + Send> RunSink for VerbosePrinter<W> {
    fn event(&self, e: &RunEvent<'_>) {
        let Some(text) = describe(&e.event) else {
            return;
        };
        let id = match e.top {
            1 => e.run.to_string(),
            top => format!("{top}:{}", e.run),
        };
        let line = format!("{}[{id}] {text}\n", "  ".repeat(e.depth));
        if let Ok(mut out) = self.out.lock() {
            // A reader that went away costs the display, not the run.
            let _ = out.write_all(line.as_bytes()).and_then(|_| out.flush());
        }
    }
}

/// The event as a line (without the run's id), or `None` for events it
/// does not show.
fn describe(event: &Event<'_>) -> Option<String> {
    Some(match event {
        Event::RunStart(s) => format!(
            "run start: {} (sub-calls: {}), {} bytes of context in {} document(s); query: {}",
            s.config.model,
            s.sub_model,
            s.context.len(),
            s.context.documents().len(),
            quote(s.query, TEXT_CHARS)
        ),
        Event::ChildStart(s) => format!(
            "child run of {} on {} bytes; query: {}",
            s.parent.unwrap_or("?"),
            s.context.len(),
            quote(s.query, TEXT_CHARS)
        ),
        Event::RootRequest {
            iteration,
            messages,
        } => format!(
            "turn {iteration}: root request with {} new message(s), {} bytes",
            messages.len(),
            messages.iter().map(|m| m.content.len()).sum::<usize>()
        ),
        Event::RootResponse {
            iteration,
            completion: c,
            latency,
        } => format!(
            "turn {iteration}: root reply, {} in / {} out tokens, {:.2}s: {}",
            c.input_tokens,
            c.output_tokens,
            latency.as_secs_f64(),
            quote(&c.text, TEXT_CHARS)
        ),
        Event::CellStart(cell) => format!(
            "turn {} cell {}/{}: {}",
            cell.iteration,
            cell.index,
            cell.count,
            abbreviate(cell.code, CODE_CHARS)
        ),
        Event::CellEnd { cell, outcome, .. } => {
            let what = match (&outcome.error, &outcome.submitted) {
                (Some(e), _) => format!("error: {}", abbreviate(e, TEXT_CHARS)),
                (None, Some(_)) => {
                    format!("submitted; printed {}", quote(&outcome.output, TEXT_CHARS))
                }
                (None, None) => format!("output {}", quote(&outcome.output, TEXT_CHARS)),
            };
            format!(
                "turn {} cell {}/{} done in {:.2}s, {what}",
                cell.iteration,
                cell.index,
                cell.count,
                outcome.duration.as_secs_f64()
            )
        }
        Event::SubCallStart {
            model,
            request,
            tag,
        } => format!(
            "sub-call to {model}{}: {}",
            tag.cell
                .map(|c| format!(" from cell {c}"))
                .unwrap_or_default(),
            quote(
                request.messages.last().map_or("", |m| m.content.as_str()),
                TEXT_CHARS
            )
        ),
        Event::SubCallEnd(r) => {
            let retries = match r.retries {
                0 => String::new(),
                n => format!(", {n} retries"),
            };
            match r.result {
                Ok(c) => format!(
                    "sub-call to {} done, {} in / {} out tokens, {:.2}s{retries}: {}",
                    r.model,
                    c.input_tokens,
                    c.output_tokens,
                    r.latency.as_secs_f64(),
                    quote(&c.text, TEXT_CHARS)
                ),
                Err(e) => format!(
                    "sub-call to {} failed after {:.2}s{retries}: {}",
                    r.model,
                    r.latency.as_secs_f64(),
                    abbreviate(&e.to_string(), TEXT_CHARS)
                ),
            }
        }
        Event::Budget(Budget::Refused(b)) => format!(
            "budget refused a call ({}): the next turn is the last",
            abbreviate(&b.to_string(), TEXT_CHARS)
        ),
        Event::Budget(Budget::Stopped { status, reason }) => format!(
            "budget stop: {}{}",
            status_name(*status),
            reason
                .map(|r| format!(": {}", abbreviate(r, TEXT_CHARS)))
                .unwrap_or_default()
        ),
        Event::Final(a) => format!(
            "answer ({}): {}",
            match a.kind {
                crate::driver::AnswerKind::Submitted => "submitted",
                crate::driver::AnswerKind::Prose => "prose",
            },
            abbreviate(a.text, 4 * TEXT_CHARS)
        ),
        Event::ChildEnd(c) => format!(
            "child run ended: {} after {} turn(s) in {:.2}s{}",
            status_name(c.status),
            c.iterations,
            c.wall.as_secs_f64(),
            c.error
                .map(|e| format!(": {}", abbreviate(e, TEXT_CHARS)))
                .unwrap_or_default()
        ),
        Event::RunEnd(r) => format!(
            "run end: {} after {} turn(s) in {:.2}s; {} calls, {} tokens, {}",
            status_name(r.status),
            r.iterations,
            r.wall_s,
            r.totals.calls,
            r.totals.input_tokens + r.totals.output_tokens,
            cost_text(r.cost())
        ),
    })
}

/// `text` on one line, cut to `max` characters with `…`, control
/// characters escaped.
fn abbreviate(text: &str, max: usize) -> String {
    let text = text.trim();
    let mut chars = text.char_indices();
    let cut = chars.nth(max).map(|(i, _)| i);
    match cut {
        Some(i) => format!("{}…", escape::line(&text[..i])),
        None => escape::line(text).into_owned(),
    }
}

/// [`abbreviate`]d, in quotes, so an empty text shows as `""`.
fn quote(text: &str, max: usize) -> String {
    format!("\"{}\"", abbreviate(text, max))
}

/// A status as `rlm run --output json` spells it.
fn status_name(status: RunStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbreviations_are_one_line_cut_at_a_character_and_escaped() {
        assert_eq!(abbreviate("  a\nb\x1b[2J ", 10), "a\\nb\\x1b[2J");
        assert_eq!(abbreviate("héllo wörld", 4), "héll…");
        assert_eq!(quote("", 5), "\"\"");
    }
}
