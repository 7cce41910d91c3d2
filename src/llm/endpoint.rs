//! Where each model's calls go, and which key goes with them.
//!
//! [`LlmConfig`] holds the providers' endpoints and keys and the
//! per-model table (`[models."NAME"]` in `rlm.toml`, [`ModelEndpoint`]);
//! [`LlmConfig::endpoint`] resolves a model to one [`Endpoint`]. The
//! client sends every call by it, and `rlm::preflight` refuses up front
//! what it refuses, so the two cannot disagree.
//!
//! # Which key goes where
//!
//! A key is sent only to the endpoint it belongs to ([`key_belongs`]):
//!
//! * its provider's public host (`api.openai.com`, `api.anthropic.com`,
//!   over HTTPS on the default port);
//! * the base URL it was paired with: `OPENAI_BASE_URL` set beside
//!   `OPENAI_API_KEY`, `ANTHROPIC_BASE_URL` beside `ANTHROPIC_API_KEY`,
//!   `AZURE_OPENAI_ENDPOINT` beside `AZURE_OPENAI_API_KEY`, or the
//!   `base_url` of the `[models."NAME"]` table whose `api_key_env` names it.
//!
//! Pairs are compared by origin (scheme, host and port): the key is
//! trusted to a server, not to a path on it. Anything else, a `--base-url`
//! or `--sub-base-url` flag or a `base_url` in `rlm.toml` that nothing
//! paired a key with, gets the call without a key: a local server needs
//! none, and a remote one answers 401, which then says which key was held
//! back and how to pair it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::cache::CacheConfig;
use super::client::LlmError;
use super::model::{ModelSpec, Provider};
use super::retry::RetryPolicy;
use super::secret::ApiKey;
use super::structured::StructuredOutput;

/// The public OpenAI endpoint.
pub const OPENAI_URL: &str = "https://api.openai.com/v1";
/// The public Anthropic endpoint.
pub const ANTHROPIC_URL: &str = "https://api.anthropic.com";
/// The Azure OpenAI `api-version` sent when a model's table sets none: the
/// latest generally available version of the inference API.
pub const AZURE_API_VERSION: &str = "2024-10-21";

/// The default [`LlmConfig::max_response_bytes`]: 16 MiB, far above any
/// completion (a million tokens of text is about 4 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Where and how to reach the providers.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Base URL of the OpenAI-compatible API, up to and including `/v1`.
    pub openai_base_url: String,
    pub openai_api_key: Option<ApiKey>,
    /// The base URL, besides the public endpoint, that `openai_api_key`
    /// belongs to: `OPENAI_BASE_URL`, when set beside `OPENAI_API_KEY`.
    /// The key is sent to no other server.
    pub openai_key_base_url: Option<String>,
    /// Base URL of the Anthropic API, without `/v1`.
    pub anthropic_base_url: String,
    pub anthropic_api_key: Option<ApiKey>,
    /// The base URL, besides the public endpoint, that `anthropic_api_key`
    /// belongs to: `ANTHROPIC_BASE_URL`, when set beside `ANTHROPIC_API_KEY`.
    pub anthropic_key_base_url: Option<String>,
    /// The Azure OpenAI resource's endpoint (`https://NAME.openai.azure.com`),
    /// for `azure:` models whose table sets no `base_url`
    /// (`AZURE_OPENAI_ENDPOINT`).
    pub azure_base_url: Option<String>,
    pub azure_api_key: Option<ApiKey>,
    /// The endpoint `azure_api_key` belongs to: `AZURE_OPENAI_ENDPOINT`,
    /// when set beside `AZURE_OPENAI_API_KEY`. Azure has no public host,
    /// so without it the key goes nowhere.
    pub azure_key_base_url: Option<String>,
    /// Per-model endpoints, keys and defaults, by model name as written
    /// (`gpt-5`, `anthropic:claude-sonnet-4-5`): `[models."NAME"]`.
    pub models: BTreeMap<String, ModelEndpoint>,
    /// The response cache, if any (`--cache`).
    pub cache: Option<CacheConfig>,
    /// Time for one attempt, from sending to the whole body received: a
    /// body that trickles in counts against it too.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// Calls in flight at once, across the whole run.
    pub concurrency: usize,
    /// Call starts per minute, across the whole run.
    pub requests_per_minute: Option<u32>,
    /// The largest response body read; a longer one fails the call with
    /// [`LlmError::ResponseTooLarge`] once this much has arrived, so an
    /// endless body costs this much memory and no more.
    pub max_response_bytes: usize,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            openai_base_url: OPENAI_URL.into(),
            openai_api_key: None,
            openai_key_base_url: None,
            anthropic_base_url: ANTHROPIC_URL.into(),
            anthropic_api_key: None,
            anthropic_key_base_url: None,
            azure_base_url: None,
            azure_api_key: None,
            azure_key_base_url: None,
            models: BTreeMap::new(),
            cache: None,
            request_timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            concurrency: 16,
            requests_per_minute: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// One model's endpoint, key and defaults: a `[models."NAME"]` table.
///
/// Every field is optional; what is not set comes from the provider's
/// settings (`--base-url`, `OPENAI_API_KEY`, ...). Its `Debug` shows no
/// key, and no value of a header that carries one.
#[derive(Clone, Default, PartialEq)]
pub struct ModelEndpoint {
    /// The wire protocol; `None` is what the name says (`anthropic:...`
    /// is Anthropic, a bare name OpenAI-compatible).
    pub provider: Option<Provider>,
    /// The base URL: up to `/v1` for an OpenAI-compatible server, the
    /// host for Anthropic, the resource's endpoint for Azure.
    pub base_url: Option<String>,
    /// The variable this model's key is read from, when it has its own.
    pub api_key_env: Option<String>,
    /// The key read from `api_key_env` (`None` if it was not set).
    pub api_key: Option<ApiKey>,
    /// The base URL `api_key` belongs to: the `base_url` set beside
    /// `api_key_env` in the same table. (`--sub-base-url` moves
    /// `base_url`, never this.)
    pub key_base_url: Option<String>,
    /// Extra headers sent with every call.
    pub headers: Vec<(String, String)>,
    /// `max_tokens` for requests that set none.
    pub max_tokens: Option<u32>,
    /// `temperature` for requests that set none.
    pub temperature: Option<f64>,
    /// Sent as `reasoning_effort` (OpenAI, Azure) or `output_config.effort`
    /// (Anthropic).
    pub reasoning_effort: Option<String>,
    /// Azure's `api-version` ([`AZURE_API_VERSION`] when unset).
    pub api_version: Option<String>,
    /// How structured sub-calls ask this model for JSON; `None` is
    /// [`StructuredOutput::Native`].
    pub structured_output: Option<StructuredOutput>,
}

/// Where one model's calls go, resolved by [`LlmConfig::endpoint`].
#[derive(Clone)]
pub struct Endpoint {
    /// The wire protocol.
    pub provider: Provider,
    /// The model name sent (for Azure, the deployment in the URL).
    pub name: String,
    /// The base URL the call goes to.
    pub base_url: String,
    /// The whole URL of the chat API.
    pub url: String,
    /// The key sent, only when it belongs to this endpoint.
    pub key: Option<ApiKey>,
    /// A key that is set for this provider but does not belong to this
    /// endpoint, so was not sent: its variable and where it does belong,
    /// for the message of a 401 or 403.
    pub withheld: Option<String>,
    /// Extra headers, from the model's table.
    pub headers: Vec<(String, String)>,
    pub reasoning_effort: Option<String>,
    /// Send `max_completion_tokens` (OpenAI's API, which its reasoning
    /// models need, and Azure from api-version 2024-09-01-preview) rather
    /// than `max_tokens` (what other servers take).
    pub completion_tokens: bool,
    /// The provider's own public host.
    pub public: bool,
    /// How structured sub-calls ask for JSON: the provider's mechanism, or
    /// a prompt instruction for a server that lacks it.
    pub structured_output: StructuredOutput,
}

/// Headers for `Debug`, with the values of those that carry credentials hidden.
struct ShownHeaders<'a>(&'a [(String, String)]);

impl std::fmt::Debug for ShownHeaders<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let v = if carries_credentials(k) {
                    "[redacted]"
                } else {
                    v
                };
                (k, v)
            }))
            .finish()
    }
}

impl std::fmt::Debug for ModelEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelEndpoint")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("api_key_env", &self.api_key_env)
            .field("api_key", &self.api_key)
            .field("key_base_url", &self.key_base_url)
            .field("headers", &ShownHeaders(&self.headers))
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .field("reasoning_effort", &self.reasoning_effort)
            .field("api_version", &self.api_version)
            .field("structured_output", &self.structured_output)
            .finish()
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("provider", &self.provider)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("key", &self.key)
            .field("withheld", &self.withheld)
            .field("headers", &ShownHeaders(&self.headers))
            .field("reasoning_effort", &self.reasoning_effort)
            .field("completion_tokens", &self.completion_tokens)
            .field("public", &self.public)
            .field("structured_output", &self.structured_output)
            .finish()
    }
}

impl Endpoint {
    /// What tells this endpoint's answers apart, for cache keys: the
    /// protocol, the URL, the options it adds and its headers but the
    /// ones that carry keys.
    pub fn identity(&self) -> String {
        let headers: Vec<&(String, String)> = self
            .headers
            .iter()
            .filter(|(k, _)| !carries_credentials(k))
            .collect();
        let mut identity = serde_json::json!({
            "provider": self.provider.name(),
            "url": self.url,
            "reasoning_effort": self.reasoning_effort,
            "headers": headers,
        });
        // Only when set, so the keys of every other endpoint stay as they were.
        if self.structured_output != StructuredOutput::Native {
            identity["structured_output"] = serde_json::json!(self.structured_output);
        }
        identity.to_string()
    }
}

/// Whether a header carries credentials, so is neither part of a cache key
/// nor shown anywhere.
pub fn carries_credentials(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["auth", "key", "token", "secret", "cookie", "password"]
        .iter()
        .any(|w| name.contains(w))
}

/// The provider's defaults: base URL, key, the URL the key is paired
/// with, the key's variable, the setting that points it elsewhere, and
/// its public host.
struct Defaults<'a> {
    base: Option<&'a str>,
    key: Option<&'a ApiKey>,
    key_base: Option<&'a str>,
    var: &'static str,
    flag: &'static str,
    public_host: Option<&'static str>,
}

impl LlmConfig {
    /// The `[models."NAME"]` table of `model`: the one under its name as
    /// written (`anthropic:claude-x`), or under its bare name when that
    /// table names the same provider.
    pub fn model_endpoint(&self, model: &ModelSpec) -> Option<&ModelEndpoint> {
        self.models.get(&model.to_string()).or_else(|| {
            self.models
                .get(&model.name)
                .filter(|e| e.provider == Some(model.provider))
        })
    }

    /// The wire protocol `model`'s calls use: its table's `provider`, or
    /// what its name says.
    pub fn provider(&self, model: &ModelSpec) -> Provider {
        self.model_endpoint(model)
            .and_then(|e| e.provider)
            .unwrap_or(model.provider)
    }

    /// The base URL `model`'s calls go to, if it has one: its table's, or
    /// its provider's.
    pub fn base_url(&self, model: &ModelSpec) -> Option<String> {
        let provider = self.provider(model);
        self.model_endpoint(model)
            .and_then(|t| t.base_url.as_deref())
            .or(self.defaults(provider).base)
            .map(|b| b.trim_end_matches('/').to_string())
    }

    /// Whether `model`'s calls go to its provider's public host
    /// (`api.openai.com`, `api.anthropic.com`).
    pub fn is_public(&self, model: &ModelSpec) -> bool {
        let host = self.defaults(self.provider(model)).public_host;
        match (host, self.base_url(model)) {
            (Some(host), Some(base)) => is_host(&base, host),
            _ => false,
        }
    }

    fn defaults(&self, provider: Provider) -> Defaults<'_> {
        match provider {
            Provider::OpenAi | Provider::Replay => Defaults {
                base: Some(&self.openai_base_url),
                key: self.openai_api_key.as_ref(),
                key_base: self.openai_key_base_url.as_deref(),
                var: "OPENAI_API_KEY",
                flag: "--base-url",
                public_host: Some("api.openai.com"),
            },
            Provider::Anthropic => Defaults {
                base: Some(&self.anthropic_base_url),
                key: self.anthropic_api_key.as_ref(),
                key_base: self.anthropic_key_base_url.as_deref(),
                var: "ANTHROPIC_API_KEY",
                flag: "--anthropic-base-url",
                public_host: Some("api.anthropic.com"),
            },
            Provider::Azure => Defaults {
                base: self.azure_base_url.as_deref(),
                key: self.azure_api_key.as_ref(),
                key_base: self.azure_key_base_url.as_deref(),
                var: "AZURE_OPENAI_API_KEY",
                flag: "AZURE_OPENAI_ENDPOINT",
                public_host: None,
            },
        }
    }

    /// Where a call to `model` is sent, with which key and options.
    ///
    /// Refused, before anything is sent: a provider's public endpoint with
    /// no key for it, a model whose `api_key_env` is not set, and an Azure
    /// model with no endpoint or no key that belongs to it
    /// ([`LlmError::NoApiKey`], [`LlmError::NoEndpoint`]). Any other server
    /// (Ollama, vLLM, a proxy) is sent the call, keyless unless a key
    /// belongs to it (module docs). Replay models have no endpoint. Every
    /// call goes through this, and so does `rlm::preflight`, so a command
    /// refuses up front exactly what its calls would.
    pub fn endpoint(&self, model: &ModelSpec) -> Result<Endpoint, LlmError> {
        if model.provider == Provider::Replay {
            return Err(LlmError::Replay(
                "replay models are not sent over HTTP".into(),
            ));
        }
        let table = self.model_endpoint(model);
        let provider = self.provider(model);
        let d = self.defaults(provider);
        let base = self.base_url(model).ok_or_else(|| LlmError::NoEndpoint {
            model: model.to_string(),
            fix: format!(
                "Azure OpenAI needs its resource's endpoint: set AZURE_OPENAI_ENDPOINT, or base_url under [models.{}] in rlm.toml",
                toml_key(&model.to_string())
            ),
        })?;
        let public = d.public_host.is_some_and(|host| is_host(&base, host));
        // The model's own key, or else its provider's.
        let (key, key_base, var) = match table.and_then(|t| t.api_key_env.as_deref()) {
            Some(var) => {
                let Some(key) = table.and_then(|t| t.api_key.as_ref()) else {
                    return Err(LlmError::NoApiKey {
                        model: model.to_string(),
                        var: var.to_string(),
                        fix: format!(
                            "set {var}, which api_key_env under [models.{}] in rlm.toml names",
                            toml_key(&model.to_string())
                        ),
                    });
                };
                (
                    Some(key),
                    table.and_then(|t| t.key_base_url.as_deref()),
                    var.to_string(),
                )
            }
            None => (d.key, d.key_base, d.var.to_string()),
        };
        let belongs = key_belongs(&base, key_base, d.public_host);
        let withheld = match (key, belongs) {
            (Some(_), false) => Some(match key_base {
                Some(paired) => format!(
                    "{var} is set but was not sent: it belongs to {} (and its provider's public endpoint), not {}",
                    origin(paired).unwrap_or_else(|| paired.to_string()),
                    origin(&base).unwrap_or_else(|| base.clone()),
                ),
                None => format!(
                    "{var} is set but was not sent: a key goes only to its provider's public endpoint or to a base URL set beside it; to send it to {base}, set {} to it as well",
                    pairing_var(provider, &var, model)
                ),
            }),
            _ => None,
        };
        let key = key.filter(|_| belongs).cloned();
        let headers = table.map(|t| t.headers.clone()).unwrap_or_default();
        let authorized = key.is_some() || headers.iter().any(|(k, _)| carries_credentials(k));
        if public && key.is_none() {
            return Err(LlmError::NoApiKey {
                model: model.to_string(),
                var: var.clone(),
                fix: format!("set {var}, or point {} at a server that needs none", d.flag),
            });
        }
        if provider == Provider::Azure && !authorized {
            return Err(LlmError::NoApiKey {
                model: model.to_string(),
                var: var.clone(),
                fix: withheld.clone().unwrap_or_else(|| {
                    format!(
                        "set {var} beside AZURE_OPENAI_ENDPOINT, or api_key_env beside base_url under [models.{}] in rlm.toml",
                        toml_key(&model.to_string())
                    )
                }),
            });
        }
        let api_version = table
            .and_then(|t| t.api_version.as_deref())
            .unwrap_or(AZURE_API_VERSION);
        let url = match provider {
            Provider::OpenAi | Provider::Replay => format!("{base}/chat/completions"),
            Provider::Anthropic => format!("{base}/v1/messages"),
            Provider::Azure => {
                azure_url(&base, &model.name, api_version).ok_or_else(|| LlmError::NoEndpoint {
                    model: model.to_string(),
                    fix: format!("{base} is not a URL"),
                })?
            }
        };
        Ok(Endpoint {
            provider,
            name: model.name.clone(),
            base_url: base,
            url,
            key,
            withheld,
            headers,
            reasoning_effort: table.and_then(|t| t.reasoning_effort.clone()),
            completion_tokens: match provider {
                Provider::Azure => azure_completion_tokens(api_version),
                _ => public,
            },
            public,
            structured_output: table.and_then(|t| t.structured_output).unwrap_or_default(),
        })
    }
}

/// Whether a key paired with `paired` (if anything) may be sent to
/// `base_url`: it is its provider's public host (`public_host`), or it has
/// the origin of the URL the key was paired with. The one rule of which
/// key goes where (module docs).
pub fn key_belongs(base_url: &str, paired: Option<&str>, public_host: Option<&str>) -> bool {
    if public_host.is_some_and(|host| is_host(base_url, host)) {
        return true;
    }
    match (paired.and_then(origin), origin(base_url)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Whether `url` is `https://HOST` on the default port: the provider's
/// own server, not a look-alike (`https://api.openai.com.evil.example`,
/// `https://api.openai.com@evil.example`, `http://api.openai.com`).
fn is_host(url: &str, host: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        u.scheme() == "https"
            && u.host_str() == Some(host)
            && u.port().is_none()
            && u.username().is_empty()
            && u.password().is_none()
    })
}

/// `scheme://host:port` of a URL, with the host lower-cased and the
/// default port made explicit; `None` when it is not a URL with a host.
fn origin(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?;
    Some(format!(
        "{}://{}:{}",
        u.scheme(),
        host,
        u.port_or_known_default()?
    ))
}

/// The variable that pairs a provider's key with a URL.
fn pairing_var(provider: Provider, var: &str, model: &ModelSpec) -> String {
    match (provider, var) {
        (Provider::OpenAi, "OPENAI_API_KEY") => "OPENAI_BASE_URL".into(),
        (Provider::Anthropic, "ANTHROPIC_API_KEY") => "ANTHROPIC_BASE_URL".into(),
        (Provider::Azure, "AZURE_OPENAI_API_KEY") => "AZURE_OPENAI_ENDPOINT".into(),
        _ => format!("base_url under [models.{}]", toml_key(&model.to_string())),
    }
}

/// `name` as a key of a TOML table header: bare when it can be.
pub(crate) fn toml_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// `{base}/openai/deployments/{deployment}/chat/completions?api-version=...`,
/// the deployment percent-encoded as a path segment. A base that already
/// ends in `/openai` is not given a second one.
fn azure_url(base: &str, deployment: &str, api_version: &str) -> Option<String> {
    let mut url = reqwest::Url::parse(base).ok()?;
    let ends_in_openai = url.path_segments().and_then(|mut s| s.next_back()) == Some("openai");
    {
        let mut path = url.path_segments_mut().ok()?;
        path.pop_if_empty();
        if !ends_in_openai {
            path.push("openai");
        }
        path.extend(["deployments", deployment, "chat", "completions"]);
    }
    url.query_pairs_mut()
        .append_pair("api-version", api_version);
    Some(url.into())
}

/// Whether Azure's `api_version` takes `max_completion_tokens`: every
/// version from 2024-09-01-preview on, which deprecated `max_tokens` (and
/// reasoning deployments refuse it), but the GA 2024-10-21, whose request
/// schema has only `max_tokens`.
fn azure_completion_tokens(api_version: &str) -> bool {
    let date = api_version.get(..10).unwrap_or(api_version);
    api_version != "2024-10-21" && date >= "2024-09-01"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Option<ApiKey> {
        ApiKey::new(k)
    }

    #[test]
    fn only_the_real_public_hosts_are_public() {
        assert!(is_host("https://api.openai.com/v1", "api.openai.com"));
        assert!(is_host("https://API.OpenAI.com:443/v1/", "api.openai.com"));
        for fake in [
            "http://api.openai.com/v1",
            "https://api.openai.com.evil.example/v1",
            "https://api.openai.com@evil.example/v1",
            "https://user@api.openai.com/v1",
            "https://api.openai.com:8443/v1",
            "https://evil.example/api.openai.com/v1",
            "api.openai.com",
        ] {
            assert!(!is_host(fake, "api.openai.com"), "{fake}");
        }
        assert!(!is_host(
            "https://api.anthropic.com.evil.example",
            "api.anthropic.com"
        ));
    }

    #[test]
    fn a_key_goes_to_its_public_host_or_the_origin_it_was_paired_with() {
        let public = Some("api.openai.com");
        assert!(key_belongs("https://api.openai.com/v1", None, public));
        assert!(!key_belongs("http://127.0.0.1:9/v1", None, public));
        let paired = Some("http://127.0.0.1:9/v1");
        assert!(key_belongs("http://127.0.0.1:9/v1/", paired, public));
        assert!(key_belongs("http://127.0.0.1:9", paired, public));
        assert!(!key_belongs("http://127.0.0.1:10/v1", paired, public));
        assert!(!key_belongs("https://127.0.0.1:9/v1", paired, public));
        assert!(key_belongs(
            "https://openrouter.ai/api/v1",
            Some("https://OpenRouter.ai:443/api/v1/"),
            public
        ));
        assert!(!key_belongs("garbage", Some("garbage"), public));
    }

    #[test]
    fn an_unpaired_base_url_gets_no_key_and_says_so() {
        let config = LlmConfig {
            openai_base_url: "http://127.0.0.1:9/v1".into(),
            openai_api_key: key("sk-test-0123456789"),
            ..LlmConfig::default()
        };
        let e = config.endpoint(&ModelSpec::parse("m")).unwrap();
        assert!(e.key.is_none() && !e.public);
        let withheld = e.withheld.unwrap();
        assert!(
            withheld.contains("OPENAI_API_KEY") && withheld.contains("OPENAI_BASE_URL"),
            "{withheld}"
        );
        let paired = LlmConfig {
            openai_key_base_url: Some("http://127.0.0.1:9/v1".into()),
            ..config.clone()
        };
        let e = paired.endpoint(&ModelSpec::parse("m")).unwrap();
        assert!(e.key.is_some() && e.withheld.is_none());
        assert_eq!(e.url, "http://127.0.0.1:9/v1/chat/completions");
        assert!(!e.completion_tokens);
    }

    #[test]
    fn a_models_table_routes_it_with_its_own_key() {
        let mut config = LlmConfig {
            openai_api_key: key("sk-openai-0123456789"),
            ..LlmConfig::default()
        };
        config.models.insert(
            "local".into(),
            ModelEndpoint {
                provider: Some(Provider::Anthropic),
                base_url: Some("http://127.0.0.1:7".into()),
                api_key_env: Some("LOCAL_KEY".into()),
                api_key: key("local-key-0123456789"),
                key_base_url: Some("http://127.0.0.1:7".into()),
                reasoning_effort: Some("low".into()),
                ..ModelEndpoint::default()
            },
        );
        let e = config.endpoint(&ModelSpec::parse("local")).unwrap();
        assert_eq!(e.provider, Provider::Anthropic);
        assert_eq!(e.url, "http://127.0.0.1:7/v1/messages");
        assert!(e.key.is_some());
        assert!(!e.identity().contains("local-key"));
        // The same name with the provider's prefix finds the same table.
        let e = config
            .endpoint(&ModelSpec::parse("anthropic:local"))
            .unwrap();
        assert_eq!(e.base_url, "http://127.0.0.1:7");
        // Moved elsewhere (as --sub-base-url does), the key stays behind.
        config.models.get_mut("local").unwrap().base_url = Some("http://127.0.0.1:8".into());
        let e = config.endpoint(&ModelSpec::parse("local")).unwrap();
        assert!(e.key.is_none() && e.withheld.is_some());
        // An api_key_env that is not set is refused, naming it.
        config.models.get_mut("local").unwrap().api_key = None;
        let err = config.endpoint(&ModelSpec::parse("local")).unwrap_err();
        assert!(err.to_string().contains("LOCAL_KEY"), "{err}");
    }

    #[test]
    fn azure_urls_headers_and_versions() {
        let mut config = LlmConfig::default();
        let err = config
            .endpoint(&ModelSpec::parse("azure:prod"))
            .unwrap_err();
        assert!(matches!(err, LlmError::NoEndpoint { .. }), "{err}");
        config.azure_base_url = Some("https://res.openai.azure.com/".into());
        config.azure_api_key = key("azure-key-0123456789");
        // Not paired: AZURE_OPENAI_ENDPOINT was not set beside the key.
        let err = config
            .endpoint(&ModelSpec::parse("azure:prod"))
            .unwrap_err();
        assert!(matches!(err, LlmError::NoApiKey { .. }), "{err}");
        config.azure_key_base_url = config.azure_base_url.clone();
        let e = config.endpoint(&ModelSpec::parse("azure:gpt 4o")).unwrap();
        assert_eq!(
            e.url,
            "https://res.openai.azure.com/openai/deployments/gpt%204o/chat/completions?api-version=2024-10-21"
        );
        assert!(!e.completion_tokens);
        assert_eq!(
            azure_url("https://r.example/openai", "d", "2025-01-01-preview").unwrap(),
            "https://r.example/openai/deployments/d/chat/completions?api-version=2025-01-01-preview"
        );
        assert!(azure_completion_tokens("2024-12-01-preview"));
        assert!(azure_completion_tokens("2025-04-01-preview"));
        assert!(!azure_completion_tokens("2024-06-01"));
        assert!(!azure_completion_tokens("2024-10-21"));
    }

    #[test]
    fn toml_keys_are_quoted_when_they_must_be() {
        assert_eq!(toml_key("gpt-5"), "gpt-5");
        assert_eq!(toml_key("qwen2.5-coder:32b"), "\"qwen2.5-coder:32b\"");
    }
}
