//! The verbose printer: each event as one readable line, as it happens.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use super::{Budget, Event, RunEvent, RunSink};
use crate::driver::RunStatus;
use crate::escape;
use crate::llm::{cost_text, PriceTable};

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
    colour: bool,
    label: Option<String>,
    prices: Option<PriceTable>,
    /// Sub-calls of the cells still running, by top run, run and cell.
    cells: Mutex<HashMap<(u64, String, usize), CellCalls>>,
}

/// What a cell's sub-calls added up to, for its closing line.
#[derive(Default)]
struct CellCalls {
    calls: usize,
    failed: usize,
    latency: Duration,
    /// `None` once a call's model has no known price.
    cost: Option<f64>,
}

impl<W: Write + Send> VerbosePrinter<W> {
    /// A printer writing to `out`, in plain text.
    pub fn new(out: W) -> Self {
        VerbosePrinter {
            out: Mutex::new(out),
            colour: false,
            label: None,
            prices: None,
            cells: Mutex::new(HashMap::new()),
        }
    }

    /// Colours the lines with ANSI escapes (for a terminal; the CLI turns
    /// it on when standard error is one and `NO_COLOR` is not set).
    pub fn colour(mut self, on: bool) -> Self {
        self.colour = on;
        self
    }

    /// Starts every line with `label` (`rlm batch -v` labels each task's
    /// lines with its id).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Prices the sub-calls, so each cell's line says what its calls cost.
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = Some(prices);
        self
    }

    /// Adds a sub-call to its cell's count, or takes the count of a cell
    /// that ended, as text for its line.
    fn tally(&self, e: &RunEvent<'_>) -> Option<String> {
        let mut cells = self.cells.lock().ok()?;
        match &e.event {
            Event::SubCallEnd(r) => {
                let key = (e.top, e.run.to_string(), r.tag.cell.unwrap_or(0));
                let c = cells.entry(key).or_insert_with(|| CellCalls {
                    cost: Some(0.0),
                    ..CellCalls::default()
                });
                c.calls += 1;
                c.latency += r.latency;
                let cost = match r.result {
                    Ok(_) if r.cached => Some(0.0),
                    Ok(done) => self
                        .prices
                        .as_ref()
                        .and_then(|p| p.lookup(&r.model.name))
                        .map(|p| p.charge(&done.tokens())),
                    Err(_) => {
                        c.failed += 1;
                        Some(0.0)
                    }
                };
                c.cost = c.cost.zip(cost).map(|(a, b)| a + b);
                None
            }
            Event::CellEnd { number, .. } => {
                // A cell run outside a session's count (`rlm exec`) tags its calls with no cell.
                let c = cells
                    .remove(&(e.top, e.run.to_string(), *number))
                    .or_else(|| cells.remove(&(e.top, e.run.to_string(), 0)))?;
                let failed = match c.failed {
                    0 => String::new(),
                    n => format!(", {n} failed"),
                };
                let cost = match (&self.prices, c.cost) {
                    (None, _) => String::new(),
                    (Some(_), cost) => format!(", {}", cost_text(cost)),
                };
                Some(format!(
                    "; {} sub-call(s){failed}, {:.2}s of calls{cost}",
                    c.calls,
                    c.latency.as_secs_f64()
                ))
            }
            _ => None,
        }
    }

    /// The ANSI colour of an event's line, if it has one.
    fn paint(&self, event: &Event<'_>) -> Option<&'static str> {
        if !self.colour {
            return None;
        }
        Some(match event {
            Event::RunStart(_) | Event::ChildStart(_) | Event::RunEnd(_) => "1;34",
            Event::RootResponse { .. } => "1",
            Event::CellStart(_) => "35",
            Event::CellEnd { outcome, .. } if outcome.error.is_some() => "31",
            Event::CellEnd { .. } => "35",
            Event::SubCallStart { .. } | Event::SubCallEnd(_) => "36",
            Event::Budget(_) => "33",
            Event::Final(_) => "32",
            Event::ChildEnd(_) => "34",
            _ => return None,
        })
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
        let calls = self.tally(e);
        let Some(mut text) = describe(&e.event) else {
            return;
        };
        if let Some(calls) = calls {
            text.push_str(&calls);
        }
        let id = match e.top {
            1 => e.run.to_string(),
            top => format!("{top}:{}", e.run),
        };
        let label = self
            .label
            .as_deref()
            .map(|l| format!("{} ", escape::line(l)))
            .unwrap_or_default();
        let line = match self.paint(&e.event) {
            Some(code) => format!(
                "{label}{}\x1b[2m[{id}]\x1b[0m \x1b[{code}m{text}\x1b[0m\n",
                "  ".repeat(e.depth)
            ),
            None => format!("{label}{}[{id}] {text}\n", "  ".repeat(e.depth)),
        };
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
