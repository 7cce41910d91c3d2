//! Run settings, resolved from flags, then environment, then `rlm.toml`.
//!
//! Precedence is the usual one: a flag beats an environment variable,
//! which beats the config file, which beats the built-in default. API keys
//! come only from the environment (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`,
//! `AZURE_OPENAI_API_KEY`, or the variable a model's `api_key_env` names),
//! never from flags (which other users can see in the process list) or
//! from the config file (which gets committed). A key goes only to the
//! endpoint it belongs to: its provider's public host, or the base URL set
//! beside it (`OPENAI_BASE_URL` beside `OPENAI_API_KEY`, a model's
//! `base_url` beside its `api_key_env`); see
//! [`LlmConfig::endpoint`](crate::llm::LlmConfig::endpoint).
//!
//! ```toml
//! # rlm.toml
//! model = "gpt-5"
//! sub_model = "gpt-5-mini"
//! base_url = "http://localhost:8000/v1"   # any OpenAI-compatible server
//! concurrency = 32
//! requests_per_minute = 500
//! request_timeout_s = 300
//! max_retries = 5
//! sub_context_tokens = 272000
//! max_response_bytes = 16777216           # the largest response body read
//!
//! [budgets]
//! max_calls = 5000
//! max_tokens = 20000000
//! max_cost_usd = 25.0
//!
//! [prices."my-finetune"]
//! input_per_million = 0.5
//! output_per_million = 1.5
//!
//! [models."qwen2.5-coder:32b"]           # sub-calls on a local server
//! base_url = "http://localhost:11434/v1"
//! price = { input_per_million = 0.0, output_per_million = 0.0 }
//! ```
//!
//! Every value is checked against its range ([`seconds`], [`budget_usd`],
//! [`concurrency`], [`response_bytes`]) and refused with an error naming
//! it; the command line uses the same checks, so a flag and its key in the
//! file accept the same values.
//!
//! `docs/config.md` is the users' reference of every key; a key added to
//! `FileSettings` or `FileBudgets` without a row there fails
//! `tests/config_docs.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::llm::{
    ApiKey, Budgets, CacheConfig, CacheMode, LlmConfig, ModelEndpoint, ModelSpec, Price,
    PriceTable, Provider, StructuredOutput, ANTHROPIC_URL, OPENAI_URL,
};

/// Settings given on the command line; `None` defers to the environment and file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub model: Option<String>,
    pub sub_model: Option<String>,
    pub base_url: Option<String>,
    pub anthropic_base_url: Option<String>,
    /// The endpoint of the sub-model, when it is not its provider's.
    pub sub_base_url: Option<String>,
    /// The response cache's directory.
    pub cache: Option<PathBuf>,
    pub cache_mode: Option<CacheMode>,
    pub concurrency: Option<usize>,
    pub requests_per_minute: Option<u32>,
    pub request_timeout_s: Option<f64>,
    pub max_retries: Option<u32>,
    pub sub_context_tokens: Option<usize>,
    pub max_llm_calls: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub max_response_bytes: Option<u64>,
    /// Config file; `./rlm.toml` is read when present and none is given.
    pub config: Option<PathBuf>,
}

/// The contents of `rlm.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    model: Option<String>,
    sub_model: Option<String>,
    base_url: Option<String>,
    anthropic_base_url: Option<String>,
    sub_base_url: Option<String>,
    cache: Option<PathBuf>,
    cache_mode: Option<CacheMode>,
    concurrency: Option<usize>,
    requests_per_minute: Option<u32>,
    request_timeout_s: Option<f64>,
    max_retries: Option<u32>,
    sub_context_tokens: Option<usize>,
    max_response_bytes: Option<u64>,
    #[serde(default)]
    budgets: FileBudgets,
    #[serde(default)]
    prices: BTreeMap<String, Price>,
    #[serde(default)]
    models: BTreeMap<String, FileModel>,
}

/// A `[models."NAME"]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileModel {
    provider: Option<String>,
    base_url: Option<String>,
    api_key_env: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    price: Option<Price>,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    reasoning_effort: Option<String>,
    api_version: Option<String>,
    structured_output: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBudgets {
    max_calls: Option<u64>,
    max_tokens: Option<u64>,
    max_cost_usd: Option<f64>,
}

/// Fully resolved settings for a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The root model (`--model`, `RLM_MODEL`).
    pub model: Option<String>,
    /// The sub-model (`--sub-model`, `RLM_SUB_MODEL`); defaults to the root model.
    pub sub_model: Option<String>,
    pub llm: LlmConfig,
    pub budgets: Budgets,
    pub prices: PriceTable,
    /// The sub-model's context window in tokens.
    pub sub_context_tokens: usize,
}

/// A configuration problem, naming the setting and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The OS error is in the message, so it is not also a `source`.
    #[error("cannot read config file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for {name}: {value:?} ({expected})")]
    Value {
        name: &'static str,
        value: String,
        expected: String,
    },
    #[error("invalid {key} under [models.{model}] in rlm.toml: {message}")]
    Model {
        /// The table's name, as a TOML key.
        model: String,
        key: String,
        message: String,
    },
}

/// The longest time limit any setting accepts: 30 days, in seconds. More
/// is no limit in practice, and a value past what a clock can add (`1e30`)
/// would overflow it.
pub const MAX_SECONDS: f64 = 30.0 * 86_400.0;

/// The most model calls in flight at once a run may ask for. Past a few
/// hundred, providers and local servers queue or refuse calls rather than
/// answer them faster (at 1,000,000, 13,509 of 30,000 calls timed out).
pub const MAX_CONCURRENCY: usize = 1024;

/// The most tasks a batch runs at once (`--jobs`): each is a thread, and a
/// batch's model calls share one concurrency limit anyway.
pub const MAX_JOBS: usize = 1024;

/// The smallest and largest accepted `max_response_bytes`: 1 KiB and 1 GiB.
pub const RESPONSE_BYTES_RANGE: (u64, u64) = (1 << 10, 1 << 30);

/// A value outside its setting's range; the message states the range, and
/// the caller names the setting (a flag or a key of `rlm.toml`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutOfRange(String);

/// A time limit: finite, more than 0 and at most [`MAX_SECONDS`].
///
/// ```
/// assert!(rlm::config::seconds(1.5).is_ok());
/// for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e30] {
///     assert!(rlm::config::seconds(bad).is_err());
/// }
/// ```
pub fn seconds(value: f64) -> Result<Duration, OutOfRange> {
    if value > 0.0 && value <= MAX_SECONDS {
        return Ok(Duration::from_secs_f64(value));
    }
    Err(OutOfRange(format!(
        "must be a number of seconds more than 0 and at most {MAX_SECONDS} (30 days)"
    )))
}

/// A cost budget in US dollars: finite and not negative (0 allows no paid call).
pub fn budget_usd(value: f64) -> Result<f64, OutOfRange> {
    if value.is_finite() && value >= 0.0 {
        return Ok(value);
    }
    Err(OutOfRange(
        "must be a finite number of US dollars, 0 or more".into(),
    ))
}

/// Calls in flight at once: 1 to [`MAX_CONCURRENCY`].
pub fn concurrency(value: usize) -> Result<usize, OutOfRange> {
    if (1..=MAX_CONCURRENCY).contains(&value) {
        return Ok(value);
    }
    Err(OutOfRange(format!(
        "must be from 1 to {MAX_CONCURRENCY} calls at once"
    )))
}

/// The largest response body read, within [`RESPONSE_BYTES_RANGE`].
pub fn response_bytes(value: u64) -> Result<usize, OutOfRange> {
    let (min, max) = RESPONSE_BYTES_RANGE;
    match usize::try_from(value) {
        Ok(v) if (min..=max).contains(&value) => Ok(v),
        _ => Err(OutOfRange(format!(
            "must be from {min} bytes (1 KiB) to {max} bytes (1 GiB)"
        ))),
    }
}

/// `check(value)`, as a [`ConfigError`] naming the setting.
fn checked<T: std::fmt::Debug, U>(
    name: &'static str,
    value: T,
    check: impl FnOnce(T) -> Result<U, OutOfRange>,
) -> Result<U, ConfigError> {
    // Debug, so that 1e30 shows as written rather than as 31 digits.
    let shown = format!("{value:?}");
    check(value).map_err(|e| ConfigError::Value {
        name,
        value: shown,
        expected: e.0,
    })
}

/// Default context window assumed for sub-models, in tokens.
pub const DEFAULT_SUB_CONTEXT_TOKENS: usize = 128_000;

impl Settings {
    /// Resolves settings from flags, the process environment and the config file.
    pub fn resolve(flags: &Overrides) -> Result<Settings, ConfigError> {
        Settings::resolve_with(flags, |name| std::env::var(name).ok())
    }

    /// [`Settings::resolve`] with an explicit environment, for tests.
    pub fn resolve_with(
        flags: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let file = load_file(flags.config.as_deref())?;
        Settings::resolve_file(flags, file, env)
    }

    /// Settings from a JSON object with the keys of `rlm.toml`
    /// (`docs/config.md`), over the process environment: what the C API's
    /// `rlm_builder_new` takes. Unknown keys and values out of range are
    /// refused as in the file; no `rlm.toml` is read, and a relative
    /// `cache` is relative to the current directory.
    ///
    /// ```
    /// let s = rlm::config::Settings::from_json_with(
    ///     r#"{"model": "gpt-5", "budgets": {"max_calls": 10}}"#,
    ///     |_| None,
    /// )?;
    /// assert_eq!(s.budgets.max_calls, Some(10));
    /// assert!(rlm::config::Settings::from_json_with(r#"{"modle": "x"}"#, |_| None).is_err());
    /// # Ok::<(), rlm::config::ConfigError>(())
    /// ```
    pub fn from_json(json: &str) -> Result<Settings, ConfigError> {
        Settings::from_json_with(json, |name| std::env::var(name).ok())
    }

    /// [`Settings::from_json`] with an explicit environment.
    pub fn from_json_with(
        json: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let file: FileSettings = serde_json::from_str(json).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<JSON config>"),
            message: e.to_string(),
        })?;
        Settings::resolve_file(&Overrides::default(), file, env)
    }

    /// Resolves `flags` over the environment over `file`.
    fn resolve_file(
        flags: &Overrides,
        file: FileSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let env_parse =
            |name: &'static str, expected: &'static str| -> Result<Option<u64>, ConfigError> {
                env(name)
                    .map(|v| {
                        v.trim().parse::<u64>().map_err(|_| ConfigError::Value {
                            name,
                            value: v,
                            expected: expected.into(),
                        })
                    })
                    .transpose()
            };

        let model = flags
            .model
            .clone()
            .or_else(|| env("RLM_MODEL"))
            .or(file.model);
        let sub_model = flags
            .sub_model
            .clone()
            .or_else(|| env("RLM_SUB_MODEL"))
            .or(file.sub_model)
            .or_else(|| model.clone());

        // A key belongs to the base URL set beside it in the environment,
        // and to no URL a flag or the file names (crate::llm::endpoint).
        let paired =
            |key: &Option<ApiKey>, url: &Option<String>| url.clone().filter(|_| key.is_some());
        let (openai_env_url, openai_api_key) = (
            env("OPENAI_BASE_URL"),
            env("OPENAI_API_KEY").and_then(ApiKey::new),
        );
        let (anthropic_env_url, anthropic_api_key) = (
            env("ANTHROPIC_BASE_URL"),
            env("ANTHROPIC_API_KEY").and_then(ApiKey::new),
        );
        let (azure_env_url, azure_api_key) = (
            env("AZURE_OPENAI_ENDPOINT"),
            env("AZURE_OPENAI_API_KEY").and_then(ApiKey::new),
        );
        let mut llm = LlmConfig {
            openai_key_base_url: paired(&openai_api_key, &openai_env_url),
            openai_base_url: flags
                .base_url
                .clone()
                .or(openai_env_url)
                .or(file.base_url)
                .unwrap_or_else(|| OPENAI_URL.into()),
            openai_api_key,
            anthropic_key_base_url: paired(&anthropic_api_key, &anthropic_env_url),
            anthropic_base_url: flags
                .anthropic_base_url
                .clone()
                .or(anthropic_env_url)
                .or(file.anthropic_base_url)
                .unwrap_or_else(|| ANTHROPIC_URL.into()),
            anthropic_api_key,
            azure_key_base_url: paired(&azure_api_key, &azure_env_url),
            azure_base_url: azure_env_url,
            azure_api_key,
            ..LlmConfig::default()
        };
        if let Some(c) = flags.concurrency.or(file.concurrency) {
            llm.concurrency = checked("concurrency", c, concurrency)?;
        }
        llm.requests_per_minute = flags
            .requests_per_minute
            .or(file.requests_per_minute)
            .filter(|&n| n > 0);
        if let Some(t) = flags.request_timeout_s.or(file.request_timeout_s) {
            llm.request_timeout = checked("request_timeout_s", t, seconds)?;
        }
        if let Some(b) = flags.max_response_bytes.or(file.max_response_bytes) {
            llm.max_response_bytes = checked("max_response_bytes", b, response_bytes)?;
        }
        if let Some(r) = flags.max_retries.or(file.max_retries) {
            llm.retry.max_retries = r;
        }
        for url in [&llm.openai_base_url, &llm.anthropic_base_url]
            .into_iter()
            .chain(&llm.azure_base_url)
        {
            if !is_http_url(url) {
                return Err(ConfigError::Value {
                    name: "base_url",
                    value: url.clone(),
                    expected: "an http:// or https:// URL".into(),
                });
            }
        }
        let mut prices = PriceTable::default();
        for (name, price) in file.prices {
            prices.set(name, price);
        }
        for (name, table) in file.models {
            let (key, endpoint, price) = model_table(&name, table, &env)?;
            if let Some(price) = price {
                prices.set(ModelSpec::parse(&key).name, price);
            }
            llm.models.insert(key, endpoint);
        }
        if let Some(url) = flags.sub_base_url.clone().or(file.sub_base_url) {
            if !is_http_url(&url) {
                return Err(ConfigError::Value {
                    name: "sub_base_url",
                    value: url,
                    expected: "an http:// or https:// URL".into(),
                });
            }
            let name = |m: &String| ModelSpec::parse(m).to_string();
            let sub = match (&sub_model, &model) {
                (Some(sub), root) if root.as_ref().map(name) != Some(name(sub)) => sub,
                _ => {
                    return Err(ConfigError::Value {
                        name: "sub_base_url",
                        value: url,
                        expected: "an endpoint for the sub-model, which needs a name of its own: one model name has one endpoint, so set --sub-model (sub_model) to a model other than the root's, or give each model its base_url under [models.\"NAME\"]".into(),
                    })
                }
            };
            // Only the endpoint moves: a key paired with the table's own
            // base_url stays paired with that.
            let key = ModelSpec::parse(sub).to_string();
            llm.models.entry(key).or_default().base_url = Some(url);
        }
        let cache_mode = flags.cache_mode.or(file.cache_mode);
        let cache_dir = flags.cache.clone().or_else(|| {
            // A relative directory in a file is relative to the file.
            file.cache
                .map(|dir| match flags.config.as_deref().and_then(Path::parent) {
                    Some(base) if dir.is_relative() => base.join(dir),
                    _ => dir,
                })
        });
        llm.cache = match (cache_dir, cache_mode) {
            (_, Some(CacheMode::Off)) => None,
            (Some(dir), mode) => Some(CacheConfig {
                dir,
                mode: mode.unwrap_or_default(),
            }),
            (None, Some(mode)) => {
                return Err(ConfigError::Value {
                    name: "cache_mode",
                    value: format!("{mode:?}").to_lowercase(),
                    expected: "a response cache directory too: --cache DIR, or cache in rlm.toml"
                        .into(),
                })
            }
            (None, None) => None,
        };

        let budgets = Budgets {
            max_calls: flags
                .max_llm_calls
                .or(env_parse("RLM_MAX_LLM_CALLS", "a whole number")?)
                .or(file.budgets.max_calls),
            max_tokens: flags
                .max_tokens
                .or(env_parse("RLM_MAX_TOKENS", "a whole number")?)
                .or(file.budgets.max_tokens),
            max_cost_usd: flags
                .max_cost_usd
                .or(file.budgets.max_cost_usd)
                .map(|c| checked("max_cost_usd", c, budget_usd))
                .transpose()?,
        };
        Ok(Settings {
            model,
            sub_model,
            llm,
            budgets,
            prices,
            sub_context_tokens: flags
                .sub_context_tokens
                .or(file.sub_context_tokens)
                .unwrap_or(DEFAULT_SUB_CONTEXT_TOKENS),
        })
    }
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// A `[models."NAME"]` table, checked: the key the client looks it up by
/// (the name as [`ModelSpec`] writes it), the endpoint, and its price.
fn model_table(
    name: &str,
    t: FileModel,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(String, ModelEndpoint, Option<Price>), ConfigError> {
    let shown = crate::llm::toml_key(name);
    let bad = |key: &str, message: String| ConfigError::Model {
        model: shown.clone(),
        key: key.to_string(),
        message,
    };
    let spec = ModelSpec::parse(name);
    if spec.name.trim().is_empty() || name.trim().starts_with("replay:") {
        return Err(bad(
            "name",
            "a model name, bare or with openai:, anthropic: or azure:".into(),
        ));
    }
    let prefixed = spec.to_string() != spec.name || name.trim().starts_with("openai:");
    let provider = match t.provider.as_deref() {
        None if prefixed => Some(spec.provider),
        None => None,
        Some(p) => {
            let provider = Provider::from_name(p).ok_or_else(|| {
                bad(
                    "provider",
                    format!("{p:?} is not one of \"openai\", \"anthropic\", \"azure\""),
                )
            })?;
            if prefixed && provider != spec.provider {
                return Err(bad(
                    "provider",
                    format!(
                        "{p:?} contradicts the name's prefix `{}:`",
                        spec.provider.name()
                    ),
                ));
            }
            Some(provider)
        }
    };
    if let Some(url) = &t.base_url {
        if !is_http_url(url) {
            return Err(bad(
                "base_url",
                format!("{url:?} is not an http:// or https:// URL"),
            ));
        }
    }
    let api_key_env = t.api_key_env.map(|v| v.trim().to_string());
    if api_key_env.as_deref().is_some_and(str::is_empty) {
        return Err(bad(
            "api_key_env",
            "the name of an environment variable".into(),
        ));
    }
    let api_key = api_key_env.as_deref().and_then(env).and_then(ApiKey::new);
    let mut headers = Vec::new();
    for (k, v) in t.headers {
        let valid = reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_ok()
            && reqwest::header::HeaderValue::from_str(&v).is_ok();
        if !valid {
            return Err(bad(
                "headers",
                format!("{k:?} is not a valid HTTP header name and value"),
            ));
        }
        headers.push((k, v));
    }
    if t.max_tokens == Some(0) {
        return Err(bad("max_tokens", "must be 1 or more".into()));
    }
    if let Some(temp) = t.temperature {
        if !(temp.is_finite() && (0.0..=2.0).contains(&temp)) {
            return Err(bad(
                "temperature",
                format!("{temp:?} is not a number from 0 to 2"),
            ));
        }
    }
    for (key, value) in [
        ("reasoning_effort", &t.reasoning_effort),
        ("api_version", &t.api_version),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(bad(key, "must not be empty".into()));
        }
    }
    if t.api_version.is_some() && provider.unwrap_or(spec.provider) != Provider::Azure {
        return Err(bad(
            "api_version",
            "only an Azure OpenAI model (provider = \"azure\") has an api-version".into(),
        ));
    }
    let structured_output = match t.structured_output.as_deref() {
        None => None,
        Some(name) => Some(StructuredOutput::from_name(name).ok_or_else(|| {
            bad(
                "structured_output",
                format!(
                    "{name:?} is not one of {}",
                    StructuredOutput::NAMES.join(", ")
                ),
            )
        })?),
    };
    let endpoint = ModelEndpoint {
        provider,
        key_base_url: t.base_url.clone().filter(|_| api_key_env.is_some()),
        base_url: t.base_url,
        api_key_env,
        api_key,
        headers,
        max_tokens: t.max_tokens,
        temperature: t.temperature,
        reasoning_effort: t.reasoning_effort,
        api_version: t.api_version,
        structured_output,
    };
    Ok((spec.to_string(), endpoint, t.price))
}

fn load_file(explicit: Option<&Path>) -> Result<FileSettings, ConfigError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let default = PathBuf::from("rlm.toml");
            if !default.is_file() {
                return Ok(FileSettings::default());
            }
            default
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|cause| ConfigError::Read {
        path: path.clone(),
        cause,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rlm.toml");
        std::fs::write(
            &file,
            "model = \"file-model\"\nsub_model = \"file-sub\"\nconcurrency = 3\n[budgets]\nmax_calls = 7\n[prices.\"mine\"]\ninput_per_million = 1.0\noutput_per_million = 2.0\n",
        )
        .unwrap();
        let env = |name: &str| match name {
            "RLM_MODEL" => Some("env-model".to_string()),
            "OPENAI_API_KEY" => Some("sk-secret-value-123456".to_string()),
            "OPENAI_BASE_URL" => Some("http://localhost:9/v1".to_string()),
            _ => None,
        };
        let flags = Overrides {
            config: Some(file.clone()),
            sub_model: Some("flag-sub".into()),
            ..Default::default()
        };
        let s = Settings::resolve_with(&flags, env).unwrap();
        assert_eq!(s.model.as_deref(), Some("env-model"));
        assert_eq!(s.sub_model.as_deref(), Some("flag-sub"));
        assert_eq!(s.llm.concurrency, 3);
        assert_eq!(s.llm.openai_base_url, "http://localhost:9/v1");
        assert_eq!(s.budgets.max_calls, Some(7));
        assert!(s.prices.lookup("mine-v2").is_some());
        assert!(!format!("{s:?}").contains("sk-secret"));

        let none = Settings::resolve_with(
            &Overrides {
                config: Some(file),
                ..Default::default()
            },
            |_| None,
        )
        .unwrap();
        assert_eq!(none.model.as_deref(), Some("file-model"));
        assert_eq!(none.sub_model.as_deref(), Some("file-sub"));
    }

    #[test]
    fn sub_model_defaults_to_the_root_model_and_errors_name_the_setting() {
        let s = Settings::resolve_with(
            &Overrides {
                model: Some("m".into()),
                ..Default::default()
            },
            |_| None,
        )
        .unwrap();
        assert_eq!(s.sub_model.as_deref(), Some("m"));
        let bad = Settings::resolve_with(
            &Overrides {
                base_url: Some("localhost:8000".into()),
                ..Default::default()
            },
            |_| None,
        );
        assert!(bad.unwrap_err().to_string().contains("base_url"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rlm.toml");
        std::fs::write(&file, "modle = \"typo\"\n").unwrap();
        let err = Settings::resolve_with(
            &Overrides {
                config: Some(file),
                ..Default::default()
            },
            |_| None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("modle"), "{err}");
    }

    #[test]
    fn out_of_range_values_in_the_file_are_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rlm.toml");
        for (line, key) in [
            ("request_timeout_s = 1e30", "request_timeout_s"),
            ("request_timeout_s = nan", "request_timeout_s"),
            ("request_timeout_s = -1.0", "request_timeout_s"),
            ("request_timeout_s = 0.0", "request_timeout_s"),
            ("concurrency = 1000000", "concurrency"),
            ("concurrency = 0", "concurrency"),
            ("max_response_bytes = 10", "max_response_bytes"),
            ("max_response_bytes = 99999999999", "max_response_bytes"),
            ("[budgets]\nmax_cost_usd = nan", "max_cost_usd"),
            ("[budgets]\nmax_cost_usd = -0.5", "max_cost_usd"),
            ("[budgets]\nmax_cost_usd = inf", "max_cost_usd"),
            (
                "[models.\"local\"]\nstructured_output = \"tools\"",
                "\"tools\" is not one of native, prompt",
            ),
        ] {
            std::fs::write(&file, format!("{line}\n")).unwrap();
            let err = Settings::resolve_with(
                &Overrides {
                    config: Some(file.clone()),
                    ..Default::default()
                },
                |_| None,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(key), "{line}: {err}");
        }
        std::fs::write(
            &file,
            "request_timeout_s = 2592000\nconcurrency = 1024\nmax_response_bytes = 1024\n[budgets]\nmax_cost_usd = 0.0\n",
        )
        .unwrap();
        let s = Settings::resolve_with(
            &Overrides {
                config: Some(file),
                ..Default::default()
            },
            |_| None,
        )
        .unwrap();
        assert_eq!(s.llm.request_timeout, Duration::from_secs(2_592_000));
        assert_eq!((s.llm.concurrency, s.llm.max_response_bytes), (1024, 1024));
        assert_eq!(s.budgets.max_cost_usd, Some(0.0));
    }
}
