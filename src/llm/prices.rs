//! Built-in prices of common models, in USD per million tokens.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Price of a model per million input and output tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input_per_million: f64,
    pub output_per_million: f64,
}

impl Price {
    /// Cost in USD of a call.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_per_million
            + output_tokens as f64 * self.output_per_million)
            / 1e6
    }
}

/// List prices as published by the providers (late 2025). Names match by
/// longest prefix, so dated snapshots (`gpt-5-mini-2025-08-07`) price as
/// their family. Override or extend them in `rlm.toml` under `[prices]`.
const BUILT_IN: &[(&str, f64, f64)] = &[
    ("gpt-5", 1.25, 10.0),
    ("gpt-5-mini", 0.25, 2.0),
    ("gpt-5-nano", 0.05, 0.40),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4o", 2.50, 10.0),
    ("gpt-4o-mini", 0.15, 0.60),
    ("o3", 2.0, 8.0),
    ("o4-mini", 1.10, 4.40),
    ("claude-opus-4", 15.0, 75.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("claude-haiku-4-5", 1.0, 5.0),
    ("claude-3-5-haiku", 0.80, 4.0),
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
                .map(|&(name, i, o)| {
                    (
                        name.to_string(),
                        Price {
                            input_per_million: i,
                            output_per_million: o,
                        },
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
