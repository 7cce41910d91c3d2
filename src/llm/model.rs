//! Model names and the provider each one is sent to.

use std::fmt;

/// Wire protocols a model can be reached through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// OpenAI chat completions, and every server that speaks it: vLLM,
    /// llama.cpp's server, Ollama, OpenRouter, Together.
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
    /// Azure OpenAI: chat completions at a deployment of one's own
    /// resource, with an `api-key` header.
    Azure,
    /// Answers read back from a recorded trace (`--model replay:TRACE.jsonl`).
    Replay,
}

impl Provider {
    /// The provider a `provider` key of `rlm.toml` names: `openai`,
    /// `anthropic` or `azure`.
    pub fn from_name(name: &str) -> Option<Provider> {
        match name {
            "openai" => Some(Provider::OpenAi),
            "anthropic" => Some(Provider::Anthropic),
            "azure" => Some(Provider::Azure),
            _ => None,
        }
    }

    /// The provider's name, as `rlm.toml` and model prefixes write it.
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Azure => "azure",
            Provider::Replay => "replay",
        }
    }
}

/// A model: the provider to call and the name to send.
///
/// Only the known prefixes `openai:`, `anthropic:` and `azure:` (the name
/// is then the deployment's) are parsed. Any other name, including
/// Ollama's `qwen2.5-coder:32b`, goes verbatim to the OpenAI-compatible
/// endpoint, unless `[models."NAME"]` in `rlm.toml`
/// ([`ModelEndpoint`](crate::llm::ModelEndpoint)) routes it elsewhere.
///
/// ```
/// use rlm::llm::{ModelSpec, Provider};
/// let m = ModelSpec::parse("anthropic:claude-sonnet-4-5");
/// assert_eq!((m.provider, m.name.as_str()), (Provider::Anthropic, "claude-sonnet-4-5"));
/// let m = ModelSpec::parse("qwen2.5-coder:32b");
/// assert_eq!((m.provider, m.name.as_str()), (Provider::OpenAi, "qwen2.5-coder:32b"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelSpec {
    pub provider: Provider,
    pub name: String,
}

impl ModelSpec {
    /// Parses `name`, `openai:name`, `anthropic:name` or `azure:deployment`.
    pub fn parse(spec: &str) -> ModelSpec {
        let spec = spec.trim();
        for (prefix, provider) in [
            ("openai:", Provider::OpenAi),
            ("anthropic:", Provider::Anthropic),
            ("azure:", Provider::Azure),
        ] {
            if let Some(name) = spec.strip_prefix(prefix) {
                return ModelSpec {
                    provider,
                    name: name.to_string(),
                };
            }
        }
        ModelSpec {
            provider: Provider::OpenAi,
            name: spec.to_string(),
        }
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.provider {
            Provider::OpenAi => f.write_str(&self.name),
            Provider::Anthropic => write!(f, "anthropic:{}", self.name),
            Provider::Azure => write!(f, "azure:{}", self.name),
            Provider::Replay => write!(f, "replay:{}", self.name),
        }
    }
}
