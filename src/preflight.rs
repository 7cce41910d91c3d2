//! Setup errors, found before a command starts anything.
//!
//! A missing API key, a misspelt provider, a cost budget over a model with
//! no price, or a context path that every task of a batch names and that
//! cannot be read would fail every run the same way, one result line at
//! a time, after the first of them had already created files and spent
//! calls. `rlm run`, `rlm batch` and `rlm eval` therefore describe what
//! they are about to use to a [`Preflight`] and stop on its one
//! [`SetupError`] (exit 2) before any file is created, any task started
//! or any call sent.
//!
//! ```
//! use rlm::config::{Overrides, Settings};
//! use rlm::preflight::{Preflight, SetupError};
//!
//! let settings = Settings::resolve_with(&Overrides::default(), |_| None)?;
//! // The public endpoint with no OPENAI_API_KEY: refused, naming the variable.
//! let err = Preflight::new(&settings).model("gpt-5").check().unwrap_err();
//! assert!(matches!(err, SetupError::NoApiKey(_)));
//! // A near miss of a provider prefix is refused wherever it would go.
//! let err = Preflight::new(&settings).model("antropic:claude-x").check().unwrap_err();
//! assert!(err.to_string().contains("anthropic:"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Decisions:
//!
//! * **Keys and endpoints** are refused by the client's own rule,
//!   [`LlmConfig::endpoint`](crate::llm::LlmConfig::endpoint): only the
//!   public endpoints need a key, so a loopback or local server runs
//!   keyless here exactly as its calls would; a model whose `api_key_env`
//!   is not set, and an Azure model with no endpoint or no key that
//!   belongs to it, are refused. Which key goes where is that rule's too:
//!   a key is never sent to a base URL it was not paired with.
//! * **Unknown providers.** [`ModelSpec::parse`] sends any name without a
//!   known prefix verbatim to the OpenAI-compatible endpoint, because
//!   local servers put colons in names (Ollama's `qwen2.5-coder:32b`,
//!   `mistral:latest`); a colon alone is therefore no error. Refused are a
//!   prefix within two edits of a known one, case ignored (`antropic:`,
//!   `OpenAI:`, `anthropics:`), which is a typo wherever it is sent, and
//!   any `prefix:` name bound for the public OpenAI API, whose model names
//!   have no colon but for fine-tunes (`ft:gpt-4o-mini:org::id`): there
//!   `gemini:x` is a provider rlm does not speak, and `llama3:8b` a missing
//!   `--base-url`.
//! * **Prices.** A cost budget can only hold over models whose price is
//!   known ([`PriceTable::lookup`](crate::llm::PriceTable::lookup)); the
//!   message shows the `rlm.toml` table that gives one. Replayed models
//!   spend nothing and are not checked.
//! * **Context paths.** Batch tasks open their contexts lazily, and a path
//!   only some tasks name fails only those; a path every task names that
//!   cannot be read (missing, or denied) is refused. Globs and `-` are
//!   left to the loader, and so are FIFOs, which opening here would block.
//!
//! Cost: a few `stat`s and one `open` per path every task names; nothing
//! else touches the disk or the network.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::batch::{Task, TaskContext};
use crate::config::Settings;
use crate::llm::{LlmError, ModelSpec, Provider, OPENAI_URL};

/// The provider prefixes [`ModelSpec::parse`] and `rlm run` understand.
const KNOWN_PREFIXES: &[&str] = &["openai", "anthropic", "azure", "replay"];

/// What stops a command before it starts. Messages name the model, task
/// or path, and the fix; they never contain a key.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A provider's public endpoint, and no key for it; or a model's own
    /// key (`api_key_env`) not set.
    #[error("{0}")]
    NoApiKey(LlmError),
    /// A model with nowhere to go (an Azure model with no endpoint).
    #[error("{0}")]
    NoEndpoint(LlmError),
    #[error("model `{model}`{place}: unknown provider `{prefix}:`: {hint}")]
    UnknownProvider {
        model: String,
        prefix: String,
        /// Where the model was named, e.g. ` (task "t1")`, or empty.
        place: String,
        hint: String,
    },
    #[error("{budget} sets a cost budget, but model `{model}` has no known price, so what it spends cannot be counted against it. Give it a price (US dollars per million tokens; 0 for a free local model) in rlm.toml, or in the file --config names:\n\n[prices.\"{key}\"]\ninput_per_million = 0.0\noutput_per_million = 0.0\n\nor run without the cost budget")]
    UnpricedModel {
        model: String,
        /// `model` as a TOML basic string's contents.
        key: String,
        /// What set the budget: the flag and config key, or a task.
        budget: String,
    },
    #[error(
        "context path {path} is named by every task ({tasks} of them) and cannot be read: {error}"
    )]
    UnreadableContext {
        path: PathBuf,
        tasks: usize,
        /// Shown in the message, so not a `source` (which would print it twice).
        error: std::io::Error,
    },
}

/// One model a command will call, and where it was named.
struct ModelUse {
    name: String,
    /// The task that named it, when a task overrides the command's model.
    task: Option<String>,
    /// What caps its cost, when something does.
    budget: Option<String>,
}

/// What a command is about to use, checked all at once by [`Preflight::check`].
pub struct Preflight<'a> {
    settings: &'a Settings,
    models: Vec<ModelUse>,
    /// `(name, under a cost budget)` of every model in `models`.
    seen: HashSet<(String, bool)>,
    /// The context paths every task names, and how many tasks there are.
    common_paths: Option<(Vec<PathBuf>, usize)>,
}

impl<'a> Preflight<'a> {
    /// Nothing to check yet, against `settings`' endpoints, keys, budgets
    /// and prices.
    pub fn new(settings: &'a Settings) -> Preflight<'a> {
        Preflight {
            settings,
            models: Vec::new(),
            seen: HashSet::new(),
            common_paths: None,
        }
    }

    /// A model the command calls (`openai:`, `anthropic:` or a bare name),
    /// under the settings' budgets.
    pub fn model(mut self, name: &str) -> Self {
        let budget = self.settings_budget();
        self.add(name, None, budget);
        self
    }

    /// The settings' root and sub-model, when set: what `rlm run` and
    /// `rlm eval` call.
    pub fn settings_models(self) -> Self {
        let settings = self.settings;
        [&settings.model, &settings.sub_model]
            .into_iter()
            .flatten()
            .fold(self, |p, m| p.model(m))
    }

    /// Every task's root and sub-model (its own, or the settings'), under
    /// the settings' budgets and its own, and the context paths all of
    /// the tasks name.
    ///
    /// A task with an invalid field is left out: it fails alone, without
    /// a call or a context (`BatchRunner`).
    pub fn tasks(mut self, tasks: &[Task]) -> Self {
        let tasks: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.invalid.is_none() && t.check().is_ok())
            .collect();
        for task in &tasks {
            let budget = match task.max_cost_usd {
                Some(_) => Some(format!("task {:?}'s max_cost_usd", task.id)),
                None => self.settings_budget(),
            };
            let root = task.model.as_deref().or(self.settings.model.as_deref());
            let sub = task
                .sub_model
                .as_deref()
                .or(self.settings.sub_model.as_deref())
                .or(root);
            let named_here = |m: &Option<String>| m.as_ref().map(|_| task.id.clone());
            if let Some(root) = root {
                self.add(root, named_here(&task.model), budget.clone());
            }
            if let Some(sub) = sub {
                let by = named_here(&task.sub_model).or_else(|| named_here(&task.model));
                self.add(sub, by, budget.clone());
            }
        }
        self.common_paths = Some((common_paths(&tasks), tasks.len()));
        self
    }

    /// The first thing that would stop the command, if any: an unknown
    /// provider, a missing key, a model with no price under a cost budget,
    /// then an unreadable context path every task names.
    pub fn check(&self) -> Result<(), SetupError> {
        for m in &self.models {
            self.check_provider(m)?;
        }
        for m in &self.models {
            let spec = ModelSpec::parse(&m.name);
            if spec.provider == Provider::Replay {
                continue;
            }
            match self.settings.llm.endpoint(&spec) {
                Err(e @ LlmError::NoApiKey { .. }) => return Err(SetupError::NoApiKey(e)),
                Err(e @ LlmError::NoEndpoint { .. }) => return Err(SetupError::NoEndpoint(e)),
                _ => {}
            }
        }
        for m in &self.models {
            self.check_price(m)?;
        }
        if let Some((paths, tasks)) = &self.common_paths {
            for path in paths {
                readable(path).map_err(|error| SetupError::UnreadableContext {
                    path: path.clone(),
                    tasks: *tasks,
                    error,
                })?;
            }
        }
        Ok(())
    }

    fn settings_budget(&self) -> Option<String> {
        self.settings
            .budgets
            .max_cost_usd
            .map(|_| "--max-cost (or max_cost_usd under [budgets] in rlm.toml)".to_string())
    }

    /// Adds a model once per name (and once more if a cost budget covers
    /// it only later), so a batch of 10,000 tasks over one model checks
    /// it once, and names the first task that named it.
    fn add(&mut self, name: &str, task: Option<String>, budget: Option<String>) {
        let name = name.trim();
        // A recorded trace answers a replay model: no key, no price, no
        // network, whatever provider recorded it.
        if name.is_empty() || name.starts_with("replay:") {
            return;
        }
        let capped = (name.to_string(), true);
        if self.seen.contains(&capped) || !self.seen.insert((name.to_string(), budget.is_some())) {
            return;
        }
        self.models.push(ModelUse {
            name: name.to_string(),
            task,
            budget,
        });
    }

    fn check_provider(&self, m: &ModelUse) -> Result<(), SetupError> {
        let Some((prefix, _)) = m.name.split_once(':') else {
            return Ok(());
        };
        let spec = ModelSpec::parse(&m.name);
        let unknown = |hint: String| SetupError::UnknownProvider {
            model: m.name.clone(),
            prefix: prefix.to_string(),
            place: place(m),
            hint,
        };
        if KNOWN_PREFIXES.contains(&prefix) {
            // `openai:` still goes to the OpenAI-compatible endpoint, and
            // its own name may hold a colon the public API has no use for.
            return match spec.provider {
                Provider::OpenAi if prefix == "openai" => self.check_public_openai(m, &spec),
                _ => Ok(()),
            };
        }
        if let Some(known) = near_miss(prefix) {
            return Err(unknown(format!(
                "did you mean `{known}:`? The providers are `openai:`, `anthropic:` and `azure:`; any other name goes verbatim to the OpenAI-compatible server (--base-url), unless [models.\"NAME\"] in rlm.toml routes it"
            )));
        }
        self.check_public_openai(m, &spec)
    }

    /// A name with a colon bound for the public OpenAI API, which has none
    /// but fine-tunes (`ft:`).
    fn check_public_openai(&self, m: &ModelUse, spec: &ModelSpec) -> Result<(), SetupError> {
        let llm = &self.settings.llm;
        let public = llm.provider(spec) == Provider::OpenAi && llm.is_public(spec);
        match spec.name.split_once(':') {
            Some((prefix, _)) if public && spec.provider == Provider::OpenAi && prefix != "ft" => {
                Err(SetupError::UnknownProvider {
                    model: m.name.clone(),
                    prefix: prefix.to_string(),
                    place: place(m),
                    hint: format!(
                        "the name would go to the public OpenAI API ({OPENAI_URL}), which has no model names with a colon but fine-tunes (`ft:`). The providers are `openai:`, `anthropic:` and `azure:`; for a local or other OpenAI-compatible server (Ollama, vLLM, a proxy), pass --base-url, or give the model its base_url under [models.\"NAME\"] in rlm.toml"
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    fn check_price(&self, m: &ModelUse) -> Result<(), SetupError> {
        let Some(budget) = &m.budget else {
            return Ok(());
        };
        let spec = ModelSpec::parse(&m.name);
        if spec.provider == Provider::Replay || self.settings.prices.lookup(&spec.name).is_some() {
            return Ok(());
        }
        Err(SetupError::UnpricedModel {
            key: spec.name.replace('\\', "\\\\").replace('"', "\\\""),
            model: spec.name,
            budget: budget.clone(),
        })
    }
}

/// ` (task "id")` when a task named the model, else nothing.
fn place(m: &ModelUse) -> String {
    m.task
        .as_ref()
        .map_or_else(String::new, |id| format!(" (task {id:?})"))
}

/// The known prefix `prefix` misspells: within two edits, case ignored,
/// and not itself. Prefixes under four letters are too short to tell a
/// typo from a name.
fn near_miss(prefix: &str) -> Option<&'static str> {
    let lower = prefix.to_ascii_lowercase();
    if lower.chars().count() < 4 {
        return None;
    }
    KNOWN_PREFIXES
        .iter()
        .copied()
        .find(|known| prefix != *known && edit_distance(&lower, known) <= 2)
}

/// Levenshtein distance, over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The paths every task names, in the first task's order; none when any
/// task's context is inline (or there are no tasks).
fn common_paths(tasks: &[&Task]) -> Vec<PathBuf> {
    let mut lists = tasks.iter().map(|t| match &t.context {
        TaskContext::Paths(paths) => Some(paths),
        TaskContext::Inline(_) => None,
    });
    let Some(Some(first)) = lists.next() else {
        return Vec::new();
    };
    let mut common: Vec<PathBuf> = first.clone();
    for list in lists {
        let Some(list) = list else {
            return Vec::new();
        };
        let names: HashSet<&PathBuf> = list.iter().collect();
        common.retain(|p| names.contains(p));
    }
    common
}

/// Whether the loader could start on `path`: what it stats, and for a
/// regular file or a directory, what it opens.
fn readable(path: &Path) -> std::io::Result<()> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        // The loader expands a missing path with wildcards as a glob.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_glob(path) => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        std::fs::read_dir(path).map(drop)
    } else if meta.is_file() {
        std::fs::File::open(path).map(drop)
    } else {
        Ok(())
    }
}

/// The loader's test for a glob (`context::load`).
fn is_glob(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    fn settings(env: &[(&str, &str)], flags: Overrides) -> Settings {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve_with(&flags, |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .expect("settings")
    }

    fn local() -> Overrides {
        Overrides {
            base_url: Some("http://127.0.0.1:9/v1".into()),
            ..Overrides::default()
        }
    }

    #[test]
    fn names_with_colons_for_a_local_server_pass() {
        let s = settings(&[], local());
        for name in [
            "qwen2.5-coder:32b",
            "mistral:latest",
            "gemma:7b",
            "llama3:8b-instruct",
            "openai:x",
        ] {
            assert!(Preflight::new(&s).model(name).check().is_ok(), "{name}");
        }
    }

    #[test]
    fn near_misses_of_a_provider_are_refused_with_the_right_one() {
        let s = settings(&[], local());
        for (name, known) in [
            ("antropic:claude-x", "anthropic:"),
            ("Anthropic:claude-x", "anthropic:"),
            ("OpenAI:gpt-5", "openai:"),
            ("opena:gpt-5", "openai:"),
        ] {
            let e = Preflight::new(&s).model(name).check().unwrap_err();
            assert!(matches!(e, SetupError::UnknownProvider { .. }), "{name}");
            assert!(e.to_string().contains(known), "{name}: {e}");
        }
    }

    #[test]
    fn the_public_openai_api_takes_no_colon_but_fine_tunes() {
        let s = settings(
            &[("OPENAI_API_KEY", "sk-test-SECRET123")],
            Overrides::default(),
        );
        assert!(Preflight::new(&s)
            .model("ft:gpt-4o-mini:org::abc")
            .check()
            .is_ok());
        for name in ["gemini:gemini-2.5-pro", "llama3:8b", "openai:llama3:8b"] {
            let e = Preflight::new(&s).model(name).check().unwrap_err();
            assert!(e.to_string().contains("--base-url"), "{name}: {e}");
            assert!(!e.to_string().contains("SECRET123"));
        }
    }

    #[test]
    fn a_key_is_needed_only_at_the_public_endpoints() {
        let s = settings(&[], Overrides::default());
        let e = Preflight::new(&s)
            .model("anthropic:claude-sonnet-4-5")
            .check()
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("ANTHROPIC_API_KEY") && text.contains("--anthropic-base-url"));
        let e = Preflight::new(&s).model("gpt-5").check().unwrap_err();
        assert!(e.to_string().contains("OPENAI_API_KEY"));
        assert!(Preflight::new(&settings(&[], local()))
            .model("gpt-5")
            .check()
            .is_ok());
    }

    #[test]
    fn a_cost_budget_needs_a_price_for_every_model() {
        let flags = Overrides {
            max_cost_usd: Some(0.01),
            ..local()
        };
        let s = settings(&[], flags);
        assert!(Preflight::new(&s).model("gpt-5-mini").check().is_ok());
        let e = Preflight::new(&s)
            .model("gpt-5")
            .model("my-local-model")
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("[prices.\"my-local-model\"]"), "{e}");

        let mut task = Task::new("t1", "q", TaskContext::Inline("x".into()));
        task.max_cost_usd = Some(1.0);
        let s = settings(&[], local());
        let e = Preflight::new(&s)
            .model("my-local-model")
            .tasks(&[task.clone()])
            .check();
        // The task runs the settings' model: none is set, so nothing to price.
        assert!(e.is_ok());
        task.model = Some("my-local-model".into());
        let e = Preflight::new(&s).tasks(&[task]).check().unwrap_err();
        assert!(e.to_string().contains("task \"t1\"'s max_cost_usd"), "{e}");
    }

    #[test]
    fn only_paths_every_task_names_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let here = dir.path().join("here.txt");
        std::fs::write(&here, "x").expect("write");
        let gone = dir.path().join("gone.txt");
        let task = |id: &str, paths: &[&Path]| {
            Task::new(
                id,
                "q",
                TaskContext::Paths(paths.iter().map(|p| p.to_path_buf()).collect()),
            )
        };
        let s = settings(&[], local());
        let some = [task("a", &[&here, &gone]), task("b", &[&here])];
        assert!(Preflight::new(&s).tasks(&some).check().is_ok());
        let all = [task("a", &[&here, &gone]), task("b", &[&gone])];
        let e = Preflight::new(&s).tasks(&all).check().unwrap_err();
        assert!(e.to_string().contains("gone.txt"), "{e}");
        let glob = dir.path().join("*.md");
        assert!(Preflight::new(&s)
            .tasks(&[task("a", &[&glob])])
            .check()
            .is_ok());
    }

    #[test]
    fn edit_distance_counts_characters() {
        assert_eq!(edit_distance("antropic", "anthropic"), 1);
        assert_eq!(edit_distance("openai", "openai"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
