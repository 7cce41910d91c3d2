//! Built-in prices of common models, in USD per million tokens.
//!
//! A call's prompt is billed in up to three kinds of token (see [`Tokens`]):
//! read from the provider's prompt cache (a tenth to a half of the input
//! price, by model), written to it (Anthropic only, 1.25
//! times the input price for its 5-minute cache), and the rest at the
//! input price. A price without a cached or write price of its own
//! charges those tokens at the input price: never less than their list
//! price for a cache read, and the provider's own rule for OpenAI, which
//! charges nothing extra to write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A call's tokens, by how they are billed.
///
/// `input` counts every prompt token, cached or not, as OpenAI's
/// `prompt_tokens` does; `cached_input` and `cache_write` are the parts of
/// it read from and written to the provider's prompt cache (Anthropic
/// reports those beside its `input_tokens`, and the parser adds them in:
/// [`crate::llm::wire`]). So token budgets and totals count every token
/// the model read, whatever it cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tokens {
    pub input: u64,
    pub cached_input: u64,
    pub cache_write: u64,
    pub output: u64,
}

impl Tokens {
    /// Input tokens neither read from nor written to a cache.
    pub fn uncached_input(&self) -> u64 {
        self.input
            .saturating_sub(self.cached_input)
            .saturating_sub(self.cache_write)
    }
}

/// Price of a model per million input and output tokens, and, where the
/// provider publishes them, per million cached and cache-written input tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input_per_million: f64,
    pub output_per_million: f64,
    /// Input tokens read from the prompt cache; unset, they cost
    /// `input_per_million`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_million: Option<f64>,
    /// Input tokens written to the prompt cache (Anthropic reports them);
    /// unset, they cost `input_per_million`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_million: Option<f64>,
}

impl Price {
    /// A price with no cache prices of its own.
    pub fn new(input_per_million: f64, output_per_million: f64) -> Price {
        Price {
            input_per_million,
            output_per_million,
            cached_input_per_million: None,
            cache_write_per_million: None,
        }
    }

    /// This price with cache read and write prices.
    pub fn with_cache(self, cached_input_per_million: f64, cache_write_per_million: f64) -> Price {
        Price {
            cached_input_per_million: Some(cached_input_per_million),
            cache_write_per_million: Some(cache_write_per_million),
            ..self
        }
    }

    /// Cost in USD of a call whose input all costs the input price.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        self.charge(&Tokens {
            input: input_tokens,
            output: output_tokens,
            ..Tokens::default()
        })
    }

    /// Cost in USD of a call, each kind of token at its price.
    ///
    /// ```
    /// use rlm::llm::{Price, Tokens};
    /// // claude-sonnet-4-5: $3 input, $0.30 cache read, $3.75 cache write, $15 output.
    /// let p = Price::new(3.0, 15.0).with_cache(0.30, 3.75);
    /// let t = Tokens { input: 1_000_000, cached_input: 600_000, cache_write: 300_000, output: 0 };
    /// // 100k uncached at $3, 600k read at $0.30, 300k written at $3.75.
    /// assert!((p.charge(&t) - (0.3 + 0.18 + 1.125)).abs() < 1e-12);
    /// ```
    pub fn charge(&self, t: &Tokens) -> f64 {
        (t.uncached_input() as f64 * self.input_per_million
            + t.cached_input as f64 * self.cached_input_per_million()
            + t.cache_write as f64 * self.cache_write_per_million()
            + t.output as f64 * self.output_per_million)
            / 1e6
    }

    /// The price of a million cache-read input tokens.
    pub fn cached_input_per_million(&self) -> f64 {
        self.cached_input_per_million
            .unwrap_or(self.input_per_million)
    }

    /// The price of a million cache-written input tokens.
    pub fn cache_write_per_million(&self) -> f64 {
        self.cache_write_per_million
            .unwrap_or(self.input_per_million)
    }

    /// The most a call of `input_tokens` and `output_tokens` can cost,
    /// its whole prompt at [`Price::worst_input_per_million`].
    pub fn worst_cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.worst_input_per_million()
            + output_tokens as f64 * self.output_per_million)
            / 1e6
    }

    /// The most a million input tokens can cost, whatever the cache does
    /// with them: what budget admission reserves a prompt at, so a prompt
    /// written to the cache whole never costs more than was reserved.
    pub fn worst_input_per_million(&self) -> f64 {
        self.input_per_million
            .max(self.cached_input_per_million())
            .max(self.cache_write_per_million())
    }
}

/// List prices as published by the providers (late 2025): input, cached
/// input, cache write, output. Names match by longest prefix, so dated
/// snapshots (`gpt-5-mini-2025-08-07`) price as their family. Override or
/// extend them in `rlm.toml` under `[prices]`.
///
/// Sources: <https://platform.openai.com/docs/pricing> (OpenAI charges
/// nothing extra to write its cache, so the write price is the input
/// price) and <https://docs.claude.com/en/docs/build-with-claude/prompt-caching>
/// (Anthropic's "Cache Hits & Refreshes" and "5m Cache Writes" columns,
/// 0.1 and 1.25 times the input price).
const BUILT_IN: &[(&str, f64, f64, f64, f64)] = &[
    ("gpt-5", 1.25, 0.125, 1.25, 10.0),
    ("gpt-5-mini", 0.25, 0.025, 0.25, 2.0),
    ("gpt-5-nano", 0.05, 0.005, 0.05, 0.40),
    ("gpt-4.1", 2.0, 0.50, 2.0, 8.0),
    ("gpt-4.1-mini", 0.40, 0.10, 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.025, 0.10, 0.40),
    ("gpt-4o", 2.50, 1.25, 2.50, 10.0),
    ("gpt-4o-mini", 0.15, 0.075, 0.15, 0.60),
    ("o3", 2.0, 0.50, 2.0, 8.0),
    ("o4-mini", 1.10, 0.275, 1.10, 4.40),
    ("claude-opus-4", 15.0, 1.50, 18.75, 75.0),
    // Opus 4.5 (November 2025) is priced below Opus 4 and 4.1.
    ("claude-opus-4-5", 5.0, 0.50, 6.25, 25.0),
    ("claude-sonnet-4", 3.0, 0.30, 3.75, 15.0),
    ("claude-haiku-4-5", 1.0, 0.10, 1.25, 5.0),
    ("claude-3-5-haiku", 0.80, 0.08, 1.0, 4.0),
];

/// Model prices: the built-in table plus overrides.
#[derive(Debug, Clone)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

impl Default for PriceTable {
    fn default() -> Self {
        PriceTable {
            prices: BUILT_IN
                .iter()
                .map(|&(name, input, cached, write, output)| {
                    (
                        name.to_string(),
                        Price::new(input, output).with_cache(cached, write),
                    )
                })
                .collect(),
        }
    }
}

impl PriceTable {
    /// Adds or replaces the price of a model (or model-name prefix).
    pub fn set(&mut self, model: impl Into<String>, price: Price) {
        self.prices.insert(model.into(), price);
    }

    /// The price of `model` (a bare name, without provider prefix), by
    /// longest matching prefix; `None` for unknown models, which cost 0.
    ///
    /// ```
    /// let table = rlm::llm::PriceTable::default();
    /// let p = table.lookup("gpt-5-mini-2025-08-07").unwrap();
    /// assert_eq!(p.input_per_million, 0.25);
    /// assert!(table.lookup("qwen2.5-coder:32b").is_none());
    /// ```
    pub fn lookup(&self, model: &str) -> Option<Price> {
        self.prices
            .iter()
            .filter(|(name, _)| model.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, p)| *p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_and_written_tokens_cost_the_input_price_unless_priced() {
        let plain = Price::new(2.0, 8.0);
        let t = Tokens {
            input: 1_000_000,
            cached_input: 500_000,
            cache_write: 250_000,
            output: 1_000_000,
        };
        assert_eq!(t.uncached_input(), 250_000);
        assert!((plain.charge(&t) - 10.0).abs() < 1e-12);
        assert_eq!(plain.charge(&t), plain.cost(1_000_000, 1_000_000));
        assert_eq!(plain.worst_input_per_million(), 2.0);
        let cached = plain.with_cache(0.5, 2.5);
        // 250k at $2, 500k at $0.50, 250k at $2.50, 1M out at $8.
        assert!((cached.charge(&t) - (0.5 + 0.25 + 0.625 + 8.0)).abs() < 1e-12);
        assert_eq!(cached.worst_input_per_million(), 2.5);
        // Counts a provider got wrong (more cached than input) never go negative.
        let odd = Tokens {
            input: 10,
            cached_input: 20,
            ..Tokens::default()
        };
        assert_eq!(odd.uncached_input(), 0);
    }

    #[test]
    fn every_built_in_price_reads_its_cache_for_less_and_writes_it_for_no_less() {
        for &(name, input, cached, write, _) in BUILT_IN {
            assert!(cached < input && write >= input, "{name}");
            let p = PriceTable::default().lookup(name).unwrap();
            assert_eq!(p.worst_input_per_million(), write, "{name}");
            if name.starts_with("claude") {
                assert!((write - 1.25 * input).abs() < 1e-9, "{name}");
                assert!((cached - 0.1 * input).abs() < 1e-9, "{name}");
            }
        }
    }

    #[test]
    fn a_price_in_rlm_toml_may_leave_the_cache_prices_out() {
        let p: Price =
            toml::from_str("input_per_million = 1.0\noutput_per_million = 2.0\n").unwrap();
        assert_eq!(p, Price::new(1.0, 2.0));
        let p: Price = toml::from_str(
            "input_per_million = 1.0\noutput_per_million = 2.0\ncached_input_per_million = 0.1\ncache_write_per_million = 1.25\n",
        )
        .unwrap();
        assert_eq!(p, Price::new(1.0, 2.0).with_cache(0.1, 1.25));
    }
}
