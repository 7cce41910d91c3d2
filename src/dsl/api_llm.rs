//! Sub-model calls for scripts: `llm_query`, `llm_batch` and `usage`.
//!
//! Calls run on the session's tokio runtime. A cell thread blocks on them
//! with `Handle::block_on` (cells never run inside a tokio task), with the
//! cell's wall clock paused, so waiting on models never counts against a
//! cell's time limit.
//!
//! Typed calls (`#{schema: S}`, `#{json: true}`) go through
//! [`complete_structured`]: the script gets the parsed, checked value, or
//! when the answer and its one repair both fail, the failure map
//! `#{error, raw}`. A typed call never raises for a failed model call:
//! `llm_query` returns the same map a typed `llm_batch` gives a failed
//! item (a prompt over the context window included), so a script tests
//! both with `"error" in r`. Only a bad option (a schema that does not
//! compile), a missing sub-model and a stopped cell raise.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, Map};
use tokio::task::JoinSet;

use super::convert::{as_text, display, from_json, script_error, to_json, Fallible};
use super::session::Shared;
use crate::llm::structured::complete_structured;
use crate::llm::{
    CallOptions, CallTag, ChatRequest, Expectation, LlmClient, ModelSpec, StructuredFailure,
};
use crate::schema::AnswerSchema;
use crate::Text;

/// What a session needs to call sub-models.
#[derive(Clone)]
pub struct LlmAccess {
    pub client: LlmClient,
    /// The runtime calls run on.
    pub runtime: tokio::runtime::Handle,
    /// The model `llm_query` uses unless a call names another.
    pub sub_model: Option<ModelSpec>,
    /// The sub-model's context window in tokens; larger prompts are refused before sending.
    pub context_window: Option<usize>,
    /// Recursion depth of the run this session belongs to.
    pub depth: usize,
    /// Id of the run, for traces.
    pub run_id: Option<String>,
    /// The task the run belongs to, when runs share a client (`rlm batch`).
    pub scope: Option<String>,
}

/// Options a script passes as a map.
#[derive(Default)]
struct ScriptOptions {
    model: Option<ModelSpec>,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    system: Option<String>,
    /// `schema` or `json`: the call's answer is a parsed, checked value.
    expect: Option<Expectation>,
}

const KNOWN_OPTIONS: &str = "model, max_tokens, temperature, system, schema, json";

fn parse_options(opts: &Map) -> Fallible<ScriptOptions> {
    let mut out = ScriptOptions::default();
    for (key, value) in opts {
        match key.as_str() {
            "model" => out.model = Some(ModelSpec::parse(&display(value))),
            "max_tokens" => {
                let n = value
                    .as_int()
                    .map_err(|_| script_error("option max_tokens must be an integer"))?;
                out.max_tokens = Some(u32::try_from(n.max(1)).unwrap_or(u32::MAX));
            }
            "temperature" => {
                let t = value
                    .as_float()
                    .or_else(|_| value.as_int().map(|i| i as f64))
                    .map_err(|_| script_error("option temperature must be a number"))?;
                out.temperature = Some(t);
            }
            "system" => out.system = Some(display(value)),
            "schema" => out.expect = Some(Expectation::schema(schema_of(value)?)),
            "json" => {
                let on = value
                    .as_bool()
                    .map_err(|_| script_error("option json must be true or false"))?;
                if on && out.expect.is_none() {
                    out.expect = Some(Expectation::json());
                }
            }
            other => {
                return Err(script_error(format!(
                    "unknown option `{other}`; known options: {KNOWN_OPTIONS}"
                )))
            }
        }
    }
    Ok(out)
}

/// A `schema` option: a map holding a JSON Schema, or its JSON text.
fn schema_of(value: &Dynamic) -> Fallible<AnswerSchema> {
    let json = if value.is::<Map>() {
        to_json(value)
    } else if let Some(text) = as_text(value) {
        serde_json::from_str(&text.to_string()).map_err(|e| {
            script_error(format!(
                "option schema is a string but not JSON ({e}): pass a map such as #{{type: \"object\"}}, or JSON text"
            ))
        })?
    } else {
        return Err(script_error(
            "option schema must be a map holding a JSON Schema, or its JSON text",
        ));
    };
    AnswerSchema::from_json(json).map_err(|e| script_error(format!("option schema: {e}")))
}

/// The value a script gets for a structured call that failed: a map with
/// `error` (why) and `raw` (the model's last text), so that
/// `type_of(r) == "map" && "error" in r` tells it apart.
fn failure_value(failure: StructuredFailure) -> Dynamic {
    let mut map = Map::new();
    map.insert("error".into(), failure.error.into());
    map.insert("raw".into(), failure.raw.into());
    map.into()
}

/// A prompt: a Text view stays a view until the call is sent.
fn prompt_of(value: &Dynamic) -> Fallible<Text> {
    as_text(value)
        .or_else(|| (!value.is_unit()).then(|| Text::from(display(value))))
        .ok_or_else(|| script_error("a prompt must be a string or a Text, not ()"))
}

impl LlmAccess {
    fn model(&self, opts: &ScriptOptions) -> Fallible<ModelSpec> {
        opts.model.clone().or_else(|| self.sub_model.clone()).ok_or_else(|| {
            script_error("no sub-model is configured: pass --sub-model (or --model), or set RLM_SUB_MODEL")
        })
    }

    fn request(opts: &ScriptOptions, prompt: &Text) -> ChatRequest {
        ChatRequest {
            system: opts.system.clone(),
            max_tokens: opts.max_tokens,
            temperature: opts.temperature,
            format: opts.expect.as_ref().map(|e| e.format.clone()),
            ..ChatRequest::prompt(prompt.to_string())
        }
    }

    fn call_options(&self, shared: &Shared) -> CallOptions {
        CallOptions {
            context_window: self.context_window,
            tag: CallTag {
                kind: "sub",
                depth: self.depth,
                cell: Some(shared.cell_index()),
                run: self.run_id.clone(),
                scope: self.scope.clone(),
            },
        }
    }

    /// Why `prompt` cannot be sent, judged from its length before it is
    /// copied out of its view: `llm_query(context)` on a gigabyte would
    /// otherwise copy the gigabyte only to be refused.
    fn refused(&self, model: &ModelSpec, prompt: &Text) -> Option<String> {
        let window = self.context_window?;
        let tokens = crate::stats::estimate_tokens(prompt.len());
        (tokens > window).then(|| {
            crate::llm::LlmError::PromptTooLarge {
                model: model.name.clone(),
                tokens,
                window,
            }
            .to_string()
        })
    }

    fn query(&self, shared: &Shared, prompt: &Dynamic, opts: ScriptOptions) -> Fallible<Dynamic> {
        let model = self.model(&opts)?;
        let prompt = prompt_of(prompt)?;
        if let Some(why) = self.refused(&model, &prompt) {
            return match opts.expect {
                Some(_) => Ok(failure_value(StructuredFailure {
                    error: why,
                    raw: String::new(),
                })),
                None => Err(script_error(why)),
            };
        }
        let options = self.call_options(shared);
        let _paused = shared.clock.pause();
        let request = Self::request(&opts, &prompt);
        let call = answer(
            &self.client,
            &model,
            &request,
            opts.expect.as_ref(),
            &options,
        );
        match self.runtime.block_on(until_stopped(shared, call))? {
            Answer::Text(Ok(text)) => Ok(text.into()),
            Answer::Text(Err(e)) => Err(script_error(e)),
            Answer::Value(result) => Ok(typed_value(result)),
        }
    }

    fn batch(&self, shared: &Shared, prompts: Array, opts: ScriptOptions) -> Fallible<Array> {
        let model = self.model(&opts)?;
        let prompts: Vec<Text> = prompts.iter().map(prompt_of).collect::<Fallible<_>>()?;
        let options = self.call_options(shared);
        let typed = opts.expect.is_some();
        let opts = Arc::new(opts);
        let n = prompts.len();
        // Keep at most one concurrency's worth of tasks alive, so views are
        // materialized into strings only as their calls are sent.
        let window = self.client.config().concurrency.max(1);
        let _paused = shared.clock.pause();
        let failed = |message: String| {
            if typed {
                failure_value(StructuredFailure {
                    error: message,
                    raw: String::new(),
                })
            } else {
                Dynamic::from(format!("ERROR: {message}"))
            }
        };
        let answers = self.runtime.block_on(async {
            let mut answers: Vec<Option<Dynamic>> = vec![None; n];
            let mut tasks = JoinSet::new();
            let mut pending = prompts.into_iter().enumerate();
            loop {
                while tasks.len() < window {
                    let Some((i, prompt)) = pending.next() else {
                        break;
                    };
                    if let Some(why) = self.refused(&model, &prompt) {
                        answers[i] = Some(failed(why));
                        continue;
                    }
                    let client = self.client.clone();
                    let (model, options, opts) = (model.clone(), options.clone(), opts.clone());
                    tasks.spawn(async move {
                        let request = Self::request(&opts, &prompt);
                        drop(prompt);
                        let expect = opts.expect.as_ref();
                        (i, answer(&client, &model, &request, expect, &options).await)
                    });
                }
                // Dropping the set on a stop aborts the calls still in flight.
                let Some(done) = until_stopped(shared, tasks.join_next()).await? else {
                    break;
                };
                match done {
                    Ok((i, Answer::Text(Ok(text)))) => answers[i] = Some(text.into()),
                    Ok((i, Answer::Text(Err(e)))) => answers[i] = Some(failed(e.to_string())),
                    Ok((i, Answer::Value(result))) => answers[i] = Some(typed_value(result)),
                    // A panicked task leaves its slot empty; reported below.
                    Err(_) => {}
                }
            }
            Ok::<_, Box<rhai::EvalAltResult>>(answers)
        })?;
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| failed("internal error in the call task".to_string())))
            .collect())
    }
}

/// What one sub-call gives: text, or for a structured call a checked value.
enum Answer {
    Text(Result<String, crate::llm::LlmError>),
    Value(Result<serde_json::Value, StructuredFailure>),
}

/// One sub-call: plain, or structured (with its one repair) when `expect`.
async fn answer(
    client: &LlmClient,
    model: &ModelSpec,
    request: &ChatRequest,
    expect: Option<&Expectation>,
    options: &CallOptions,
) -> Answer {
    match expect {
        None => Answer::Text(
            client
                .complete(model, request, options)
                .await
                .map(|c| c.text),
        ),
        Some(expect) => {
            Answer::Value(complete_structured(client, model, request, expect, options).await)
        }
    }
}

/// A structured call's result as a script value: the parsed answer, or
/// the failure map.
fn typed_value(result: Result<serde_json::Value, StructuredFailure>) -> Dynamic {
    match result {
        Ok(value) => from_json(value),
        Err(failure) => failure_value(failure),
    }
}

/// Runs `fut` unless the cell is stopped from outside (Ctrl-C, the run's
/// deadline) first; then the cell ends, and dropping `fut` aborts its calls.
pub(crate) async fn until_stopped<F: std::future::Future>(
    shared: &Shared,
    fut: F,
) -> Fallible<F::Output> {
    const POLL: std::time::Duration = std::time::Duration::from_millis(50);
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Ok(out),
            _ = tokio::time::sleep(POLL) => {
                if shared.clock.stop_reason().is_some() {
                    return Err(rhai::EvalAltResult::ErrorTerminated(
                        Dynamic::from(super::session::STOP_TOKEN),
                        rhai::Position::NONE,
                    )
                    .into());
                }
            }
        }
    }
}

/// Registers the sub-model functions. Without `access`, they explain how to configure one.
pub(crate) fn register(engine: &mut Engine, shared: &Arc<Shared>, access: Option<LlmAccess>) {
    let access = Arc::new(access);
    let need = |access: &Option<LlmAccess>| -> Fallible<LlmAccess> {
        access.clone().ok_or_else(|| {
            script_error("sub-model calls are not configured in this session: run with --sub-model (or --model), or set RLM_SUB_MODEL")
        })
    };

    let (a, s) = (access.clone(), shared.clone());
    engine.register_fn("llm_query", move |prompt: Dynamic| -> Fallible<Dynamic> {
        need(&a)?.query(&s, &prompt, ScriptOptions::default())
    });
    let (a, s) = (access.clone(), shared.clone());
    engine.register_fn(
        "llm_query",
        move |prompt: Dynamic, opts: Map| -> Fallible<Dynamic> {
            need(&a)?.query(&s, &prompt, parse_options(&opts)?)
        },
    );
    let (a, s) = (access.clone(), shared.clone());
    engine.register_fn("llm_batch", move |prompts: Array| -> Fallible<Array> {
        need(&a)?.batch(&s, prompts, ScriptOptions::default())
    });
    let (a, s) = (access.clone(), shared.clone());
    engine.register_fn(
        "llm_batch",
        move |prompts: Array, opts: Map| -> Fallible<Array> {
            need(&a)?.batch(&s, prompts, parse_options(&opts)?)
        },
    );
    let a = access.clone();
    engine.register_fn("usage", move || -> Map {
        let Some(access) = a.as_ref() else {
            return Map::new();
        };
        let ledger = access.client.ledger();
        // The ledger's own serialized form, less the `priced` flag scripts have no use for.
        let mut by_model = serde_json::to_value(ledger.by_model()).unwrap_or_default();
        if let Some(models) = by_model.as_object_mut() {
            for usage in models.values_mut() {
                if let Some(u) = usage.as_object_mut() {
                    u.remove("priced");
                }
            }
        }
        let mut usage = serde_json::to_value(ledger.totals()).unwrap_or_default();
        if let Some(u) = usage.as_object_mut() {
            u.insert("by_model".into(), by_model);
        }
        from_json(usage).try_cast::<Map>().unwrap_or_default()
    });
}
