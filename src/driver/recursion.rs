//! `rlm_query` and `rlm_batch`: child runs started from a script.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, NativeCallContext};

use super::run::{run_loop, RunSpec};
use super::tree::Tree;
use crate::dsl::convert::{as_text, display, script_error, Fallible};
use crate::dsl::Shared;
use crate::Text;

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
pub(super) struct Recursion {
    pub tree: Tree,
    pub depth: usize,
    pub run_id: String,
    /// Children started by this run, for their ids.
    pub children: Arc<AtomicUsize>,
}

impl Recursion {
    pub fn register(&self, engine: &mut Engine, session: &Arc<Shared>) {
        let this = Arc::new(Recursion {
            tree: self.tree.clone(),
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
        self.depth + 1 >= self.tree.config().max_depth
    }

    /// A child run of this one, exploring `text`.
    fn child<'a>(&'a self, question: &'a str, text: Text, id: &'a str) -> RunSpec<'a> {
        RunSpec {
            query: question,
            view: text,
            origin: None,
            depth: self.depth + 1,
            id,
            parent: Some(&self.run_id),
        }
    }

    fn child_id(&self) -> String {
        let n = self.children.fetch_add(1, Ordering::SeqCst) + 1;
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
        let outcome = run_loop(&self.tree, self.child(&question, text, &id));
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
            .min(self.tree.client().config().concurrency.max(1));
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<String>>> = Mutex::new(vec![None; texts.len()]);
        let _paused = session.clock.pause();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(text) = texts.get(i) else { break };
                    let o = run_loop(&self.tree, self.child(&question, text.clone(), &ids[i]));
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
