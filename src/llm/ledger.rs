//! One usage ledger for a whole run, shared down the recursion tree.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::prices::PriceTable;

/// Usage of one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelUsage {
    /// Calls that returned an answer.
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Calls that failed after all retries.
    pub errors: u64,
    /// Retries made (a call retried twice counts 2).
    pub retries: u64,
    pub cost_usd: f64,
    /// False when the model is not in the price table: its `cost_usd` is
    /// then 0 though the true cost is unknown ([`ModelUsage::cost`]).
    pub priced: bool,
}

impl ModelUsage {
    /// What this model's calls cost, or `None` when its price is not known
    /// and it used tokens (no tokens cost nothing at any price).
    pub fn cost(&self) -> Option<f64> {
        (self.priced || self.input_tokens + self.output_tokens == 0).then_some(self.cost_usd)
    }
}

/// The cost of all these models' calls, or `None` when one of them has no
/// known price: then the true cost is unknown, not the sum of the rest.
pub fn known_cost(models: &BTreeMap<String, ModelUsage>) -> Option<f64> {
    models.values().map(ModelUsage::cost).sum()
}

/// A cost for people: `$0.0123`, or `no price known`.
pub fn cost_text(cost: Option<f64>) -> String {
    match cost {
        Some(usd) => format!("${usd:.4}"),
        None => "no price known".into(),
    }
}

/// Usage per model as JSON, with `cost_usd` null for a model whose cost
/// is not known (where the derived form says 0).
pub fn usage_json(models: &BTreeMap<String, ModelUsage>) -> serde_json::Value {
    let mut json = serde_json::Map::new();
    for (name, usage) in models {
        let mut entry = serde_json::to_value(usage).unwrap_or_default();
        if let Some(fields) = entry.as_object_mut() {
            fields.insert("cost_usd".into(), usage.cost().into());
        }
        json.insert(name.clone(), entry);
    }
    json.into()
}

/// Totals as JSON, with `cost_usd` set to `cost` (null when unknown).
pub fn totals_json(totals: &UsageTotals, cost: Option<f64>) -> serde_json::Value {
    let mut json = serde_json::to_value(totals).unwrap_or_default();
    if let Some(fields) = json.as_object_mut() {
        fields.insert("cost_usd".into(), cost.into());
    }
    json
}

/// Totals across models.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageTotals {
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub errors: u64,
    pub retries: u64,
    pub cost_usd: f64,
}

/// Limits on a run's spending. `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Budgets {
    pub max_calls: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
}

/// A budget that stopped a call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetExceeded {
    #[error("the budget of {0} model calls is used up")]
    Calls(u64),
    #[error("the budget of {0} tokens is used up")]
    Tokens(u64),
    #[error("the budget of ${0:.4} is used up")]
    Cost(f64),
}

#[derive(Debug, Default)]
struct State {
    models: BTreeMap<String, ModelUsage>,
    /// Calls admitted by the budget, including those in flight.
    started: u64,
}

/// Counts every call, token and dollar of a run, and enforces its budgets.
///
/// Calls are admitted before they are sent ([`Ledger::admit`]), so items of
/// a batch that are never sent are never charged. Token and cost budgets
/// are checked against completed calls: calls already in flight when a
/// budget runs out still finish and count.
#[derive(Debug)]
pub struct Ledger {
    prices: PriceTable,
    budgets: Budgets,
    state: Mutex<State>,
    /// A ledger that also counts, and whose budgets also apply (a batch's
    /// global ledger above each task's own).
    parent: Option<Arc<Ledger>>,
}

impl Ledger {
    pub fn new(prices: PriceTable, budgets: Budgets) -> Ledger {
        Ledger {
            parent: None,
            prices,
            budgets,
            state: Mutex::new(State::default()),
        }
    }

    /// A ledger of its own (for one task) that also counts into `parent`
    /// and obeys its budgets. It prices with the parent's table.
    pub fn child(parent: &Arc<Ledger>, budgets: Budgets) -> Ledger {
        Ledger {
            prices: parent.prices.clone(),
            budgets,
            state: Mutex::new(State::default()),
            parent: Some(parent.clone()),
        }
    }

    /// The budgets this ledger enforces.
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts that are still
        // meaningful; keep counting rather than poison every later call.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits one more call, or says which budget forbids it.
    pub fn admit(&self) -> Result<(), BudgetExceeded> {
        let mut s = self.lock();
        self.check(&s)?;
        if let Some(max) = self.budgets.max_calls {
            if s.started >= max {
                return Err(BudgetExceeded::Calls(max));
            }
        }
        if let Some(parent) = &self.parent {
            parent.admit()?;
        }
        s.started += 1;
        Ok(())
    }

    /// Whether a budget is already exhausted, without admitting anything.
    pub fn exhausted(&self) -> Option<BudgetExceeded> {
        if let Some(b) = self.parent.as_ref().and_then(|p| p.exhausted()) {
            return Some(b);
        }
        let s = self.lock();
        self.check(&s)
            .err()
            .or_else(|| match self.budgets.max_calls {
                Some(max) if s.started >= max => Some(BudgetExceeded::Calls(max)),
                _ => None,
            })
    }

    fn check(&self, s: &State) -> Result<(), BudgetExceeded> {
        let totals = totals(&s.models);
        if let Some(max) = self.budgets.max_tokens {
            if totals.input_tokens + totals.output_tokens >= max {
                return Err(BudgetExceeded::Tokens(max));
            }
        }
        if let Some(max) = self.budgets.max_cost_usd {
            if totals.cost_usd >= max {
                return Err(BudgetExceeded::Cost(max));
            }
        }
        Ok(())
    }

    /// Records a completed call.
    pub fn record_success(&self, model: &str, input_tokens: u64, output_tokens: u64, retries: u64) {
        if let Some(parent) = &self.parent {
            parent.record_success(model, input_tokens, output_tokens, retries);
        }
        let price = self.prices.lookup(model);
        let mut s = self.lock();
        let u = s.models.entry(model.to_string()).or_default();
        u.calls += 1;
        u.input_tokens += input_tokens;
        u.output_tokens += output_tokens;
        u.retries += retries;
        u.priced = price.is_some();
        u.cost_usd += price.map_or(0.0, |p| p.cost(input_tokens, output_tokens));
    }

    /// Records a call that failed after its retries.
    pub fn record_failure(&self, model: &str, retries: u64) {
        if let Some(parent) = &self.parent {
            parent.record_failure(model, retries);
        }
        let priced = self.prices.lookup(model).is_some();
        let mut s = self.lock();
        let u = s.models.entry(model.to_string()).or_default();
        u.errors += 1;
        u.retries += retries;
        u.priced = priced;
    }

    /// Usage per model.
    pub fn by_model(&self) -> BTreeMap<String, ModelUsage> {
        self.lock().models.clone()
    }

    /// Totals over all models.
    pub fn totals(&self) -> UsageTotals {
        totals(&self.lock().models)
    }

    /// The cost so far, or `None` when a model called has no known price.
    pub fn cost(&self) -> Option<f64> {
        known_cost(&self.lock().models)
    }

    /// A one-line-per-model report for people.
    pub fn summary(&self) -> String {
        let by = self.by_model();
        let t = totals(&by);
        let mut out = format!(
            "usage: {} calls, {} input + {} output tokens, {}, {} errors, {} retries",
            t.calls,
            t.input_tokens,
            t.output_tokens,
            cost_text(known_cost(&by)),
            t.errors,
            t.retries
        );
        for (name, u) in by {
            out.push_str(&format!(
                "\n  {name}: {} calls, {} in / {} out tokens, {}{}",
                u.calls,
                u.input_tokens,
                u.output_tokens,
                cost_text(u.cost()),
                if u.errors > 0 {
                    format!(", {} errors", u.errors)
                } else {
                    String::new()
                }
            ));
        }
        out
    }
}

fn totals(models: &BTreeMap<String, ModelUsage>) -> UsageTotals {
    let mut t = UsageTotals::default();
    for u in models.values() {
        t.calls += u.calls;
        t.input_tokens += u.input_tokens;
        t.output_tokens += u.output_tokens;
        t.errors += u.errors;
        t.retries += u.retries;
        t.cost_usd += u.cost_usd;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_prices_per_model() {
        let ledger = Ledger::new(PriceTable::default(), Budgets::default());
        ledger.admit().unwrap();
        ledger.record_success("gpt-5-mini", 1_000_000, 100_000, 2);
        ledger.record_failure("local-model", 5);
        let by = ledger.by_model();
        assert!((by["gpt-5-mini"].cost_usd - 0.45).abs() < 1e-9);
        assert!(by["gpt-5-mini"].priced && !by["local-model"].priced);
        let t = ledger.totals();
        assert_eq!((t.calls, t.errors, t.retries), (1, 1, 7));
    }

    #[test]
    fn a_model_without_a_price_that_used_tokens_makes_the_cost_unknown() {
        let ledger = Ledger::new(PriceTable::default(), Budgets::default());
        ledger.record_success("gpt-5-mini", 1_000_000, 0, 0);
        ledger.record_failure("local-model", 0);
        assert_eq!(ledger.cost(), Some(0.25), "failed calls use no tokens");
        ledger.record_success("local-model", 10, 5, 0);
        assert_eq!(ledger.cost(), None);
        let usage = usage_json(&ledger.by_model());
        assert!(usage["local-model"]["cost_usd"].is_null());
        assert_eq!(usage["gpt-5-mini"]["cost_usd"], 0.25);
        assert!(ledger.summary().contains("no price known"));
        assert_eq!(cost_text(Some(0.25)), "$0.2500");
    }

    #[test]
    fn budgets_stop_admission() {
        let calls = Ledger::new(
            PriceTable::default(),
            Budgets {
                max_calls: Some(2),
                ..Default::default()
            },
        );
        assert!(calls.admit().is_ok() && calls.admit().is_ok());
        assert_eq!(calls.admit(), Err(BudgetExceeded::Calls(2)));
        let tokens = Ledger::new(
            PriceTable::default(),
            Budgets {
                max_tokens: Some(100),
                ..Default::default()
            },
        );
        tokens.admit().unwrap();
        tokens.record_success("m", 60, 40, 0);
        assert_eq!(tokens.admit(), Err(BudgetExceeded::Tokens(100)));
        let cost = Ledger::new(
            PriceTable::default(),
            Budgets {
                max_cost_usd: Some(0.01),
                ..Default::default()
            },
        );
        cost.record_success("gpt-5", 10_000, 0, 0);
        assert!(matches!(cost.admit(), Err(BudgetExceeded::Cost(_))));
    }
}
