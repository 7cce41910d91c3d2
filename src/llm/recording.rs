//! [`Recording`]: a wrapper that hands every exchange with a model to a
//! callback, to write a cassette or feed a host's own logging.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::LlmError;
use super::provider::{BoxFuture, Failure, Model, ModelCall, Response};
use super::wire::Completion;

/// One exchange with a model: an attempt, or an answer served without one.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub call: ModelCall<'a>,
    /// What the model answered, or why the attempt failed.
    pub result: Result<&'a Completion, &'a LlmError>,
    /// Served by [`Model::stored`] (a cache hit): nothing was sent.
    pub stored: bool,
    /// How long it took.
    pub latency: Duration,
}

impl Exchange<'_> {
    /// The exchange as one JSON object: a cassette's line.
    pub fn to_json(&self) -> serde_json::Value {
        let r = self.call.request;
        let (answer, error) = match self.result {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(e.to_string())),
        };
        serde_json::json!({
            "model": self.call.model.to_string(),
            "kind": self.call.tag.kind,
            "run": self.call.tag.run,
            "system": r.system,
            "messages": r.messages,
            "max_tokens": r.max_tokens,
            "temperature": r.temperature,
            "answer": answer.map(|c| c.text.as_str()),
            "finish": answer.map(|c| &c.finish),
            "input_tokens": answer.map(|c| c.input_tokens),
            "output_tokens": answer.map(|c| c.output_tokens),
            "error": error,
            "stored": self.stored,
            "latency_s": self.latency.as_secs_f64(),
        })
    }
}

/// The callback of a [`Recording`].
pub type ExchangeSink = dyn Fn(&Exchange<'_>) + Send + Sync;

/// A model that hands each exchange of the model it wraps to a callback:
/// every attempt (so a retried call shows each failure), and every answer
/// the wrapped model served from storage.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use rlm::llm::{Model, Recording};
///
/// fn recorded(model: Arc<dyn Model>) -> (Arc<dyn Model>, Arc<Mutex<Vec<String>>>) {
///     let lines = Arc::new(Mutex::new(Vec::new()));
///     let sink = lines.clone();
///     let model = Recording::new(model, move |x| {
///         sink.lock().unwrap().push(x.to_json().to_string());
///     });
///     (Arc::new(model), lines)
/// }
/// ```
pub struct Recording {
    inner: Arc<dyn Model>,
    sink: Arc<ExchangeSink>,
}

impl Recording {
    /// `inner`, with every exchange handed to `sink`. The sink runs on the
    /// caller's task: keep it quick (push to a channel, write a line).
    pub fn new(
        inner: Arc<dyn Model>,
        sink: impl Fn(&Exchange<'_>) + Send + Sync + 'static,
    ) -> Recording {
        Recording {
            inner,
            sink: Arc::new(sink),
        }
    }
}

impl Model for Recording {
    fn complete<'a>(&'a self, call: ModelCall<'a>) -> BoxFuture<'a, Result<Response, Failure>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.inner.complete(call).await;
            (self.sink)(&Exchange {
                call,
                result: match &result {
                    Ok(r) => Ok(&r.completion),
                    Err(f) => Err(&f.error),
                },
                stored: false,
                latency: started.elapsed(),
            });
            result
        })
    }

    fn stored<'a>(&'a self, call: ModelCall<'a>) -> BoxFuture<'a, Option<Completion>> {
        Box::pin(async move {
            let started = Instant::now();
            let hit = self.inner.stored(call).await;
            if let Some(c) = &hit {
                (self.sink)(&Exchange {
                    call,
                    result: Ok(c),
                    stored: true,
                    latency: started.elapsed(),
                });
            }
            hit
        })
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }
}
