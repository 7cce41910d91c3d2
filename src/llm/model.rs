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
    /// Answers read back from a recorded trace (`--model replay:TRACE.jsonl`).
    Replay,
}

/// A model: the provider to call and the name to send.
///
/// Only the known prefixes `openai:` and `anthropic:` are parsed. Any other
/// name, including Ollama's `qwen2.5-coder:32b`, goes verbatim to the
/// OpenAI-compatible endpoint.
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
    /// Parses `name`, `openai:name` or `anthropic:name`.
    pub fn parse(spec: &str) -> ModelSpec {
        let spec = spec.trim();
        if let Some(name) = spec.strip_prefix("openai:") {
            return ModelSpec {
                provider: Provider::OpenAi,
                name: name.to_string(),
            };
        }
        if let Some(name) = spec.strip_prefix("anthropic:") {
            return ModelSpec {
                provider: Provider::Anthropic,
                name: name.to_string(),
            };
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
            Provider::Replay => write!(f, "replay:{}", self.name),
        }
    }
}
