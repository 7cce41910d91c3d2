//! A run's progress as short lines, for a client that waits on it: MCP
//! progress notifications and the SSE chunks of a streamed completion.
//!
//! [`Progress`] is a [`RunSink`]: it turns the steps a person watching
//! would want (turns of the top run, its cells, child runs, the answer)
//! into numbered lines on a channel, and ignores the rest. Sub-calls are
//! not sent one by one (an `llm_batch` of a thousand would be a thousand
//! lines); the cell that made them says how many when it ends. Sending
//! never blocks the run: the channel is unbounded, and a closed one (the
//! client went away) drops the line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::events::{Event, RunEvent, RunSink};

/// One line of progress: its number (from 1, increasing) and its text.
#[derive(Debug, Clone)]
pub struct Step {
    pub number: u64,
    pub message: String,
}

/// See the module docs.
pub struct Progress {
    tx: mpsc::UnboundedSender<Step>,
    number: AtomicU64,
    /// Sub-calls ended since the top run's last cell began.
    sub_calls: AtomicU64,
}

impl Progress {
    /// A sink, and the channel its lines arrive on.
    pub fn channel() -> (Arc<Progress>, mpsc::UnboundedReceiver<Step>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = Progress {
            tx,
            number: AtomicU64::new(0),
            sub_calls: AtomicU64::new(0),
        };
        (Arc::new(sink), rx)
    }

    fn send(&self, message: String) {
        let number = self.number.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.tx.send(Step { number, message });
    }
}

impl RunSink for Progress {
    fn event(&self, e: &RunEvent<'_>) {
        let top = e.depth == 0;
        match &e.event {
            Event::RunStart(start) => self.send(format!(
                "started: {} bytes of context, root model {}",
                start.context.len(),
                start.config.model
            )),
            Event::RootResponse {
                iteration, latency, ..
            } if top => self.send(format!(
                "turn {iteration}: the root model answered in {:.1}s",
                latency.as_secs_f64()
            )),
            Event::CellStart(_) if top => self.sub_calls.store(0, Ordering::Relaxed),
            Event::SubCallEnd(_) => {
                self.sub_calls.fetch_add(1, Ordering::Relaxed);
            }
            Event::CellEnd { cell, outcome, .. } if top => {
                let calls = self.sub_calls.swap(0, Ordering::Relaxed);
                let how = match &outcome.error {
                    Some(_) => "failed",
                    None if outcome.submitted.is_some() => "submitted an answer",
                    None => "ran",
                };
                let plural = if calls == 1 { "" } else { "s" };
                self.send(format!(
                    "turn {}, cell {}/{}: {how} in {:.1}s, {calls} sub-call{plural}",
                    cell.iteration,
                    cell.index,
                    cell.count,
                    outcome.duration.as_secs_f64()
                ));
            }
            Event::ChildStart(_) => self.send(format!("child run {} started", e.run)),
            Event::Final(_) if top => self.send("the answer is ready".into()),
            _ => {}
        }
    }
}
