//! [`Replay`]: a model that answers from a recorded trace.

use std::sync::Arc;

use super::client::LlmError;
use super::model::ModelSpec;
use super::provider::{BoxFuture, Failure, Model, ModelCall, Response};
use super::wire::{Completion, FinishReason};
use crate::trace::ReplayBook;

/// Answers from a [`ReplayBook`] (`--model replay:TRACE.jsonl`): a root
/// turn (`tag.kind == "root"`) with the next recorded response of its run,
/// a sub-call with the answer recorded for its prompt. Nothing is sent,
/// and the ledger charges nothing for it but the call.
pub struct Replay {
    book: Arc<ReplayBook>,
}

impl Replay {
    pub fn new(book: Arc<ReplayBook>) -> Replay {
        Replay { book }
    }

    fn answer(&self, call: ModelCall<'_>) -> Result<Response, Failure> {
        if call.tag.kind == "root" {
            let run = call.tag.run.as_deref().unwrap_or("0");
            let turn = self.book.next_turn(run).ok_or_else(|| {
                Failure::from(LlmError::Replay(format!(
                    "the trace has no more root responses for run {run}"
                )))
            })?;
            return Ok(Completion {
                text: turn.text,
                finish: FinishReason::Stop,
                input_tokens: turn.input_tokens,
                output_tokens: turn.output_tokens,
                ..Completion::default()
            }
            .into());
        }
        let recorded = self.book.answer(call.prompt()).ok_or_else(|| {
            Failure::from(LlmError::Replay(
                "the trace has no recorded answer for this prompt (did the code or the context change?)"
                    .into(),
            ))
        })?;
        // Counted, answer or error, under the model that answered when recorded.
        let counted_as = Some(ModelSpec::parse(&recorded.model).name);
        let text = recorded.answer.map_err(|e| Failure {
            counted_as: counted_as.clone(),
            ..Failure::from(LlmError::Replay(format!("recorded error: {e}")))
        })?;
        Ok(Response {
            completion: Completion {
                text,
                finish: FinishReason::Stop,
                input_tokens: recorded.input_tokens,
                output_tokens: recorded.output_tokens,
                ..Completion::default()
            },
            counted_as,
        })
    }
}

impl Model for Replay {
    fn complete<'a>(&'a self, call: ModelCall<'a>) -> BoxFuture<'a, Result<Response, Failure>> {
        Box::pin(std::future::ready(self.answer(call)))
    }

    fn identity(&self) -> String {
        "replay".into()
    }
}
