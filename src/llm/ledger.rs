//! One usage ledger for a whole run, shared down the recursion tree.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::prices::{PriceTable, Tokens};

/// Usage of one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelUsage {
    /// Calls that returned an answer.
    pub calls: u64,
    /// Every prompt token, the cached ones included.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Of `input_tokens`, those read from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// Of `input_tokens`, those written to the provider's prompt cache.
    pub cache_write_tokens: u64,
    /// Calls that failed after all retries.
    pub errors: u64,
    /// Retries made (a call retried twice counts 2).
    pub retries: u64,
    /// Answers served by the response cache (`--cache`): no call was
    /// made, so they are in no other count, no cost and no budget.
    pub cache_hits: u64,
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
        // `+ 0.0` turns the -0.0 that summing no costs gives into 0.0.
        Some(usd) => format!("${:.4}", usd + 0.0),
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
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub errors: u64,
    pub retries: u64,
    /// Answers served by the response cache, in no other count.
    pub cache_hits: u64,
    pub cost_usd: f64,
}

/// Limits on a run's spending. `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Budgets {
    pub max_calls: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
}

/// A budget that refused a call before it was sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetExceeded {
    #[error("the budget of {0} model calls is used up")]
    Calls(u64),
    /// `left` tokens remain, fewer than the call's worst case `need`.
    #[error("the budget of {max} tokens is spent: {left} are left, and this call could use {need} (its prompt, counted as one token per byte, plus its max_tokens)")]
    Tokens { max: u64, left: u64, need: u64 },
    /// `left` dollars remain, less than the call's worst case `need`.
    #[error("the budget of ${max:.4} is spent: ${left:.4} is left, and this call could cost ${need:.4} at list price (its prompt, counted as one token per byte, plus its max_tokens)")]
    Cost { max: f64, left: f64, need: f64 },
    /// A cost budget cannot bound a model whose price is unknown.
    #[error("{model} has no known price, so the budget of ${max:.4} cannot bound its calls: give it one in rlm.toml under [prices.\"{model}\"] with input_per_million and output_per_million (USD per million tokens), or drop the cost budget")]
    Unpriced { model: String, max: f64 },
}

/// The output tokens a call asks for, for its worst case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The request sets `max_tokens` itself: exactly this is reserved, and
    /// the call waits or is refused rather than being cut.
    Exactly(u64),
    /// The request sets none: the client sends this cap, or, when the
    /// budget has less left and nothing in flight could return some, what
    /// the budget has left, down to [`MIN_USEFUL_OUTPUT`].
    UpTo(u64),
}

/// The smallest answer a call is cut to when the budget has less left
/// than its default cap: below it, a reasoning model spends it all on
/// thinking, so the call is refused instead.
pub const MIN_USEFUL_OUTPUT: u64 = 1024;

/// A call's worst case, as admission reserves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand<'a> {
    /// The model, for its price.
    pub model: &'a str,
    /// An upper bound of the prompt's tokens.
    pub input_tokens: u64,
    pub output: Output,
    /// Replayed calls cost nothing real: only the call budget applies.
    pub free: bool,
}

/// A worst case held in a ledger and all its parents while a call is in
/// flight. Settle it with the actual usage; dropped unsettled (the call
/// failed before a response, or its future was dropped), it is returned.
#[must_use = "a reservation dropped at once returns its budget at once"]
#[derive(Debug)]
pub struct Reservation {
    ledger: Arc<Ledger>,
    tokens: u64,
    /// The cost reserved at each level, bottom first (levels may price alike,
    /// but each keeps exactly what it added).
    costs: Vec<f64>,
    output_tokens: u64,
    /// A hold (for a coming root turn) is not a call in flight.
    hold: bool,
    settled: bool,
}

impl Reservation {
    /// The output cap admission granted: the request's own `max_tokens`,
    /// or the cap to send for one that had none.
    pub fn output_tokens(&self) -> u64 {
        self.output_tokens
    }

    /// Records the call's actual usage (as reported, even above what was
    /// reserved), all its input at the input price, and returns the reservation.
    pub fn settle(self, model: &str, input_tokens: u64, output_tokens: u64, retries: u64) {
        self.settle_tokens(model, plain(input_tokens, output_tokens), retries);
    }

    /// Records the call's actual usage (as reported, even above what was
    /// reserved), each kind of token at its price, and returns the reservation.
    pub fn settle_tokens(mut self, model: &str, tokens: Tokens, retries: u64) {
        self.release(Settled::Success {
            model,
            tokens,
            retries,
        });
    }

    /// Records a call that failed after its retries, and returns the reservation.
    pub fn fail(mut self, model: &str, retries: u64) {
        self.release(Settled::Failure { model, retries });
    }

    /// Returns the reservation and counts the outcome under the same lock,
    /// level by level: between the two, an admission would see neither.
    fn release(&mut self, outcome: Settled<'_>) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        let mut level = Some(&self.ledger);
        let mut costs = self.costs.iter();
        while let Some(ledger) = level {
            let cost = costs.next().copied().unwrap_or(0.0);
            let mut s = ledger.lock();
            s.reserved_tokens = s.reserved_tokens.saturating_sub(self.tokens);
            s.reserved_cost -= cost;
            if self.hold {
                s.holds = s.holds.saturating_sub(1);
            } else {
                s.in_flight = s.in_flight.saturating_sub(1);
            }
            if s.in_flight == 0 && s.holds == 0 {
                // Sums of floats drift; with nothing reserved, nothing is.
                s.reserved_tokens = 0;
                s.reserved_cost = 0.0;
            }
            ledger.count(&mut s, &outcome);
            drop(s);
            level = ledger.parent.as_ref();
        }
        self.ledger.released.notify_waiters();
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release(Settled::Dropped);
    }
}

/// How a call ended, for the ledger.
enum Settled<'a> {
    Success {
        model: &'a str,
        tokens: Tokens,
        retries: u64,
    },
    Failure {
        model: &'a str,
        retries: u64,
    },
    /// Abandoned, or refused before sending: nothing to count.
    Dropped,
}

/// What admission says of a demand right now.
#[derive(Debug)]
pub enum Admission {
    Granted(Reservation),
    /// It would fit once calls in flight return their reservations.
    Wait,
    Refused(BudgetExceeded),
}

/// One level's verdict on a demand.
enum Verdict {
    Grant(u64),
    Wait,
    Refuse(BudgetExceeded),
}

/// Refusals a ledger has made, for the driver to learn that a budget
/// stopped a call somewhere in its tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refusals {
    /// Calls refused by a budget since the ledger was made.
    pub count: u64,
    /// The latest of them.
    pub last: Option<BudgetExceeded>,
}

#[derive(Debug, Default)]
struct State {
    models: BTreeMap<String, ModelUsage>,
    /// Calls admitted by the budget, including those in flight.
    started: u64,
    /// Calls admitted and not yet settled.
    in_flight: u64,
    /// Holds for coming root turns (not calls: they never settle by themselves).
    holds: u64,
    /// Worst cases of what is in flight or held.
    reserved_tokens: u64,
    reserved_cost: f64,
    refusals: Refusals,
}

/// Counts every call, token and dollar of a run, and enforces its budgets.
///
/// Budgets are hard limits. Before a call is sent, admission
/// ([`Ledger::admit`]) reserves its worst case (its prompt at one token per
/// byte plus a little per message, and its `max_tokens`, at list price) in
/// this ledger and every parent, and refuses it when completed usage plus
/// what is reserved plus this worst case would pass a limit. A call that
/// would fit once the calls in flight settle waits for them; one that
/// could not fit even then is refused at once. The reservation is returned
/// when the call settles, and the actual usage counted instead. So
/// however many calls are in flight, spending stays within every budget,
/// unless a provider reports more usage than the worst case (a tokenizer
/// with more tokens than bytes, hidden prompt tokens): that is recorded as
/// reported, and the next admission refuses. A call abandoned in flight
/// (interrupt, timeout) returns its reservation and counts nothing; the
/// provider may still bill it.
#[derive(Debug)]
pub struct Ledger {
    prices: PriceTable,
    budgets: Budgets,
    state: Mutex<State>,
    /// A ledger that also counts, and whose budgets also apply (a batch's
    /// global ledger above each task's own).
    parent: Option<Arc<Ledger>>,
    /// Woken whenever a reservation anywhere in the tree is returned.
    released: Arc<tokio::sync::Notify>,
}

impl Ledger {
    pub fn new(prices: PriceTable, budgets: Budgets) -> Ledger {
        Ledger {
            parent: None,
            prices,
            budgets,
            state: Mutex::new(State::default()),
            released: Arc::new(tokio::sync::Notify::new()),
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
            released: parent.released.clone(),
        }
    }

    /// The prices this ledger charges by.
    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }

    /// The budgets this ledger enforces.
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// Whether this ledger or a parent has a token or cost budget, so
    /// every call must have a bounded answer.
    pub fn bounds_output(&self) -> bool {
        self.levels()
            .iter()
            .any(|l| l.budgets.max_tokens.is_some() || l.budgets.max_cost_usd.is_some())
    }

    /// Whether this ledger or a parent has any budget at all.
    pub fn has_budgets(&self) -> bool {
        self.levels()
            .iter()
            .any(|l| l.budgets != Budgets::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts that are still
        // meaningful; keep counting rather than poison every later call.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This ledger and its parents, bottom first.
    fn levels(&self) -> Vec<&Ledger> {
        let mut levels = vec![self];
        let mut parent = self.parent.as_deref();
        while let Some(l) = parent {
            levels.push(l);
            parent = l.parent.as_deref();
        }
        levels
    }

    /// Admits a call, waiting while it would fit only once calls in flight
    /// settle; a refusal is remembered ([`Ledger::refusals`]).
    pub async fn admit(
        self: &Arc<Self>,
        demand: &Demand<'_>,
    ) -> Result<Reservation, BudgetExceeded> {
        loop {
            // Registered before judging, so a release in between still wakes us.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            match self.try_admit(demand, false) {
                Admission::Granted(r) => return Ok(r),
                Admission::Refused(b) => {
                    let mut s = self.lock();
                    s.refusals.count += 1;
                    s.refusals.last = Some(b.clone());
                    return Err(b);
                }
                Admission::Wait => released.await,
            }
        }
    }

    /// Holds `input_tokens` plus `output_tokens` of `model` for a coming
    /// root turn, so the calls of the cell before it cannot spend what the
    /// turn needs; `None` when that much is not left. Never waits, and a
    /// hold that does not fit is not a refusal.
    pub fn hold(
        self: &Arc<Self>,
        model: &str,
        input_tokens: u64,
        output_tokens: u64,
    ) -> Option<Reservation> {
        let demand = Demand {
            model,
            input_tokens,
            output: Output::Exactly(output_tokens),
            free: false,
        };
        match self.try_admit(&demand, true) {
            Admission::Granted(r) => Some(r),
            Admission::Wait | Admission::Refused(_) => None,
        }
    }

    /// Judges `demand` against every level at once and reserves it if all grant.
    pub fn try_admit(self: &Arc<Self>, demand: &Demand<'_>, hold: bool) -> Admission {
        let levels = self.levels();
        // Locked bottom up, as everywhere, so no two admissions deadlock.
        let mut states: Vec<_> = levels.iter().map(|l| l.lock()).collect();
        let mut granted = match demand.output {
            Output::Exactly(n) | Output::UpTo(n) => n,
        };
        let mut wait = false;
        for (i, (level, s)) in levels.iter().zip(states.iter_mut()).enumerate() {
            match level.judge(s, demand) {
                Verdict::Refuse(b) => {
                    // A parent remembers the refusals its own budgets made
                    // (a batch learns its budget stopped a task); the
                    // ledger asked remembers them all (`admit`).
                    if i > 0 && !hold {
                        s.refusals.count += 1;
                        s.refusals.last = Some(b.clone());
                    }
                    return Admission::Refused(b);
                }
                Verdict::Wait => wait = true,
                Verdict::Grant(n) => granted = granted.min(n),
            }
        }
        if wait {
            return Admission::Wait;
        }
        let tokens = if demand.free {
            0
        } else {
            demand.input_tokens.saturating_add(granted)
        };
        let mut costs = Vec::with_capacity(levels.len());
        for (level, s) in levels.iter().zip(states.iter_mut()) {
            let cost = match (demand.free, level.prices.lookup(demand.model)) {
                // The whole prompt may be a cache write, dearer than input.
                (false, Some(p)) => p.worst_cost(demand.input_tokens, granted),
                _ => 0.0,
            };
            costs.push(cost);
            s.reserved_tokens = s.reserved_tokens.saturating_add(tokens);
            s.reserved_cost += cost;
            if hold {
                s.holds += 1;
            } else {
                s.in_flight += 1;
                s.started += 1;
            }
        }
        drop(states);
        Admission::Granted(Reservation {
            ledger: self.clone(),
            tokens,
            costs,
            output_tokens: granted,
            hold,
            settled: false,
        })
    }

    /// This level's verdict on `demand`, given its state.
    fn judge(&self, s: &State, demand: &Demand<'_>) -> Verdict {
        if let Some(max) = self.budgets.max_calls {
            // A hold keeps a call for the coming root turn too.
            if s.started + s.holds >= max {
                return Verdict::Refuse(BudgetExceeded::Calls(max));
            }
        }
        let (want, flexible) = match demand.output {
            Output::Exactly(n) => (n, false),
            Output::UpTo(n) => (n, true),
        };
        let mut granted = want;
        if demand.free {
            return match self.check(s) {
                Ok(()) => Verdict::Grant(granted),
                Err(b) => Verdict::Refuse(b),
            };
        }
        let done = totals(&s.models);
        let mut limits = Vec::with_capacity(2);
        if let Some(max) = self.budgets.max_tokens {
            let spent = (done.input_tokens + done.output_tokens) as f64;
            limits.push((max as f64, spent, s.reserved_tokens as f64, 1.0, 1.0));
        }
        if let Some(max) = self.budgets.max_cost_usd {
            let Some(p) = self.prices.lookup(demand.model) else {
                return Verdict::Refuse(BudgetExceeded::Unpriced {
                    model: demand.model.to_string(),
                    max,
                });
            };
            let (per_in, per_out) = (
                p.worst_input_per_million() / 1e6,
                p.output_per_million / 1e6,
            );
            limits.push((max, done.cost_usd, s.reserved_cost, per_in, per_out));
        }
        let mut wait = false;
        for (i, &(max, spent, reserved, per_in, per_out)) in limits.iter().enumerate() {
            let is_cost = self.budgets.max_tokens.is_none() || i == 1;
            let refuse = |left: f64| {
                let left = left.max(0.0);
                let need = demand.input_tokens as f64 * per_in + want as f64 * per_out;
                Verdict::Refuse(if is_cost {
                    BudgetExceeded::Cost { max, left, need }
                } else {
                    BudgetExceeded::Tokens {
                        max: max as u64,
                        left: left as u64,
                        need: need as u64,
                    }
                })
            };
            let smallest = if flexible {
                want.min(MIN_USEFUL_OUTPUT)
            } else {
                want
            };
            // Room for the answer if nothing else were reserved, and now.
            let ever = output_room(max - spent, demand.input_tokens, per_in, per_out);
            let now = output_room(max - spent - reserved, demand.input_tokens, per_in, per_out);
            if ever.is_none_or(|n| n < smallest) {
                return refuse(max - spent);
            }
            let now = now.unwrap_or(0);
            if now >= want {
                continue;
            }
            if s.in_flight > 0 {
                // Calls in flight will return what they do not use.
                wait = true;
            } else if flexible && now >= smallest {
                granted = granted.min(now);
            } else {
                // Only holds are in the way, and they are not returned by waiting.
                return refuse(max - spent - reserved);
            }
        }
        if wait {
            Verdict::Wait
        } else {
            Verdict::Grant(granted)
        }
    }

    /// Refusals made by admission so far.
    pub fn refusals(&self) -> Refusals {
        self.lock().refusals.clone()
    }

    /// The largest prompt, in tokens, that `model` could be sent now with
    /// an answer of `output_tokens`, under every level's budgets; `None`
    /// when no token or cost budget limits it.
    pub fn input_room(&self, model: &str, output_tokens: u64) -> Option<u64> {
        let mut room: Option<u64> = None;
        for level in self.levels() {
            let s = level.lock();
            let done = totals(&s.models);
            let mut limit = |left: f64, per_in: f64, per_out: f64| {
                let after = left - output_tokens as f64 * per_out;
                let n = if after <= 0.0 || per_in <= 0.0 {
                    if after < 0.0 {
                        0
                    } else {
                        u64::MAX
                    }
                } else {
                    (after / per_in).floor() as u64
                };
                room = Some(room.map_or(n, |r| r.min(n)));
            };
            if let Some(max) = level.budgets.max_tokens {
                let spent = done.input_tokens + done.output_tokens + s.reserved_tokens;
                limit(max as f64 - spent as f64, 1.0, 1.0);
            }
            if let Some(max) = level.budgets.max_cost_usd {
                match level.prices.lookup(model) {
                    Some(p) => limit(
                        max - done.cost_usd - s.reserved_cost,
                        p.worst_input_per_million() / 1e6,
                        p.output_per_million / 1e6,
                    ),
                    None => room = Some(0),
                }
            }
        }
        room
    }

    /// Whether a budget is already exhausted by completed calls, without
    /// admitting anything.
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
            let spent = totals.input_tokens + totals.output_tokens;
            if spent >= max {
                return Err(BudgetExceeded::Tokens {
                    max,
                    left: 0,
                    need: 0,
                });
            }
        }
        if let Some(max) = self.budgets.max_cost_usd {
            if totals.cost_usd >= max {
                return Err(BudgetExceeded::Cost {
                    max,
                    left: 0.0,
                    need: 0.0,
                });
            }
        }
        Ok(())
    }

    /// Records a completed call, all its input at the input price.
    pub fn record_success(&self, model: &str, input_tokens: u64, output_tokens: u64, retries: u64) {
        self.record_tokens(model, plain(input_tokens, output_tokens), retries);
    }

    /// Records a completed call, each kind of token at its price.
    pub fn record_tokens(&self, model: &str, tokens: Tokens, retries: u64) {
        let outcome = Settled::Success {
            model,
            tokens,
            retries,
        };
        for level in self.levels() {
            level.count(&mut level.lock(), &outcome);
        }
    }

    /// Records a call that failed after its retries.
    pub fn record_failure(&self, model: &str, retries: u64) {
        let outcome = Settled::Failure { model, retries };
        for level in self.levels() {
            level.count(&mut level.lock(), &outcome);
        }
    }

    /// Records an answer of `model` served by the response cache: no call,
    /// no tokens, no cost, nothing any budget counts.
    pub fn record_cache_hit(&self, model: &str) {
        for level in self.levels() {
            let priced = level.prices.lookup(model).is_some();
            let mut s = level.lock();
            let u = s.models.entry(model.to_string()).or_default();
            u.cache_hits += 1;
            u.priced = priced;
        }
    }

    /// Counts `outcome` in this level's state.
    fn count(&self, s: &mut State, outcome: &Settled<'_>) {
        match *outcome {
            Settled::Success {
                model,
                tokens,
                retries,
            } => {
                let price = self.prices.lookup(model);
                let u = s.models.entry(model.to_string()).or_default();
                u.calls += 1;
                u.input_tokens += tokens.input;
                u.output_tokens += tokens.output;
                u.cached_input_tokens += tokens.cached_input;
                u.cache_write_tokens += tokens.cache_write;
                u.retries += retries;
                u.priced = price.is_some();
                u.cost_usd += price.map_or(0.0, |p| p.charge(&tokens));
            }
            Settled::Failure { model, retries } => {
                let priced = self.prices.lookup(model).is_some();
                let u = s.models.entry(model.to_string()).or_default();
                u.errors += 1;
                u.retries += retries;
                u.priced = priced;
            }
            Settled::Dropped => {}
        }
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
            "usage: {} calls, {} input{} + {} output tokens, {}, {} errors, {} retries",
            t.calls,
            t.input_tokens,
            cache_text(t.cached_input_tokens, t.cache_write_tokens),
            t.output_tokens,
            cost_text(known_cost(&by)),
            t.errors,
            t.retries
        );
        if t.cache_hits > 0 {
            out.push_str(&format!(", {} cache hits", t.cache_hits));
        }
        for (name, u) in by {
            out.push_str(&format!(
                "\n  {name}: {} calls, {} in{} / {} out tokens, {}{}",
                u.calls,
                u.input_tokens,
                cache_text(u.cached_input_tokens, u.cache_write_tokens),
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

/// A call's tokens with no cache reads or writes.
fn plain(input: u64, output: u64) -> Tokens {
    Tokens {
        input,
        output,
        ..Tokens::default()
    }
}

/// `, N cached` (and `, N written to the cache`) for a summary line, or
/// nothing when the provider cached nothing.
fn cache_text(cached: u64, written: u64) -> String {
    let mut text = String::new();
    if cached > 0 {
        text.push_str(&format!(", {cached} cached"));
    }
    if written > 0 {
        text.push_str(&format!(", {written} written to the cache"));
    }
    text
}

/// The output tokens that fit in `left` after a prompt of `input` tokens,
/// at `per_in` and `per_out` a token; `None` when the prompt alone does not.
fn output_room(left: f64, input: u64, per_in: f64, per_out: f64) -> Option<u64> {
    let after = left - input as f64 * per_in;
    if after < 0.0 {
        return None;
    }
    if per_out <= 0.0 {
        return Some(u64::MAX);
    }
    let mut n = (after / per_out).floor() as u64;
    // Rounding must never let the worst case pass the limit by a fraction.
    if n > 0 && n as f64 * per_out > after {
        n -= 1;
    }
    Some(n)
}

fn totals(models: &BTreeMap<String, ModelUsage>) -> UsageTotals {
    let mut t = UsageTotals::default();
    for u in models.values() {
        t.calls += u.calls;
        t.input_tokens += u.input_tokens;
        t.output_tokens += u.output_tokens;
        t.cached_input_tokens += u.cached_input_tokens;
        t.cache_write_tokens += u.cache_write_tokens;
        t.errors += u.errors;
        t.retries += u.retries;
        t.cache_hits += u.cache_hits;
        t.cost_usd += u.cost_usd;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(budgets: Budgets) -> Arc<Ledger> {
        Arc::new(Ledger::new(PriceTable::default(), budgets))
    }

    fn demand(model: &str, input_tokens: u64, output: Output) -> Demand<'_> {
        Demand {
            model,
            input_tokens,
            output,
            free: false,
        }
    }

    fn granted(a: Admission) -> Reservation {
        match a {
            Admission::Granted(r) => r,
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    #[test]
    fn counts_and_prices_per_model() {
        let ledger = ledger(Budgets::default());
        let r = granted(ledger.try_admit(&demand("gpt-5-mini", 10, Output::Exactly(0)), false));
        r.settle("gpt-5-mini", 1_000_000, 100_000, 2);
        ledger.record_failure("local-model", 5);
        let by = ledger.by_model();
        assert!((by["gpt-5-mini"].cost_usd - 0.45).abs() < 1e-9);
        assert!(by["gpt-5-mini"].priced && !by["local-model"].priced);
        let t = ledger.totals();
        assert_eq!((t.calls, t.errors, t.retries), (1, 1, 7));
    }

    #[test]
    fn a_model_without_a_price_that_used_tokens_makes_the_cost_unknown() {
        let ledger = ledger(Budgets::default());
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
    fn the_call_budget_counts_calls_in_flight() {
        let calls = ledger(Budgets {
            max_calls: Some(2),
            ..Default::default()
        });
        let d = demand("m", 10, Output::Exactly(0));
        let a = granted(calls.try_admit(&d, false));
        let b = granted(calls.try_admit(&d, false));
        assert!(matches!(
            calls.try_admit(&d, false),
            Admission::Refused(BudgetExceeded::Calls(2))
        ));
        // A call that failed still was a call.
        a.fail("m", 0);
        drop(b);
        assert!(matches!(calls.try_admit(&d, false), Admission::Refused(_)));
    }

    #[test]
    fn reservations_in_flight_make_later_calls_wait_and_settling_returns_them() {
        let tokens = ledger(Budgets {
            max_tokens: Some(1000),
            ..Default::default()
        });
        let d = demand("m", 100, Output::Exactly(300));
        let first = granted(tokens.try_admit(&d, false));
        let second = granted(tokens.try_admit(&d, false));
        assert!(matches!(tokens.try_admit(&d, false), Admission::Wait));
        first.settle("m", 50, 10, 0);
        // 60 spent and 400 reserved: a third fits now.
        let third = granted(tokens.try_admit(&d, false));
        second.settle("m", 50, 10, 0);
        third.settle("m", 50, 10, 0);
        assert_eq!(
            tokens.totals().input_tokens + tokens.totals().output_tokens,
            180
        );
        // One that could not fit even with nothing in flight is refused at once.
        let huge = demand("m", 100, Output::Exactly(900));
        match tokens.try_admit(&huge, false) {
            Admission::Refused(BudgetExceeded::Tokens { max, left, need }) => {
                assert_eq!((max, left, need), (1000, 820, 1000));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_default_cap_is_cut_to_what_is_left_only_when_nothing_is_in_flight() {
        let tokens = ledger(Budgets {
            max_tokens: Some(5000),
            ..Default::default()
        });
        let d = demand("m", 1000, Output::UpTo(8192));
        let cut = granted(tokens.try_admit(&d, false));
        assert_eq!(cut.output_tokens(), 4000);
        assert!(matches!(tokens.try_admit(&d, false), Admission::Wait));
        cut.settle("m", 1000, 3000, 0);
        // 1000 left: not even the prompt and MIN_USEFUL_OUTPUT.
        assert!(matches!(
            tokens.try_admit(&d, false),
            Admission::Refused(BudgetExceeded::Tokens { .. })
        ));
    }

    #[test]
    fn a_cost_budget_reserves_at_list_price_and_refuses_models_without_one() {
        let cost = ledger(Budgets {
            max_cost_usd: Some(0.01),
            ..Default::default()
        });
        // gpt-5: 1000 in at $1.25/M plus 500 out at $10/M is $0.00625.
        let d = demand("gpt-5", 1000, Output::Exactly(500));
        let r = granted(cost.try_admit(&d, false));
        assert!(matches!(cost.try_admit(&d, false), Admission::Wait));
        r.settle("gpt-5", 1000, 500, 0);
        match cost.try_admit(&d, false) {
            Admission::Refused(e @ BudgetExceeded::Cost { .. }) => {
                assert!(e.to_string().contains("$0.0037 is left"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        match cost.try_admit(&demand("local-llama", 1, Output::Exactly(1)), false) {
            Admission::Refused(e @ BudgetExceeded::Unpriced { .. }) => {
                let text = e.to_string();
                assert!(text.contains("[prices.\"local-llama\"]"), "{text}");
                assert!(text.contains("input_per_million"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        // Replays cost nothing real and need no price.
        let replay = Demand {
            free: true,
            ..demand("local-llama", 1, Output::Exactly(1))
        };
        assert!(matches!(
            cost.try_admit(&replay, false),
            Admission::Granted(_)
        ));
    }

    #[test]
    fn a_child_reserves_in_its_parent_and_obeys_its_budget() {
        let batch = ledger(Budgets {
            max_tokens: Some(1000),
            ..Default::default()
        });
        let task = |max| {
            Arc::new(Ledger::child(
                &batch,
                Budgets {
                    max_tokens: Some(max),
                    ..Default::default()
                },
            ))
        };
        let (a, b) = (task(600), task(600));
        let d = demand("m", 100, Output::Exactly(400));
        let ra = granted(a.try_admit(&d, false));
        let rb = granted(b.try_admit(&d, false));
        // The batch has nothing left to reserve, though each task has 100.
        assert!(matches!(
            a.try_admit(&demand("m", 10, Output::Exactly(10)), false),
            Admission::Wait
        ));
        drop(ra);
        rb.settle("m", 100, 400, 0);
        assert_eq!(batch.totals().output_tokens, 400);
        assert_eq!(a.totals().output_tokens, 0);
        assert!(granted(a.try_admit(&d, false)).output_tokens() == 400);
    }

    #[test]
    fn a_parent_remembers_only_the_refusals_its_own_budget_made() {
        let batch = ledger(Budgets {
            max_calls: Some(3),
            ..Default::default()
        });
        let task = Arc::new(Ledger::child(
            &batch,
            Budgets {
                max_calls: Some(1),
                ..Default::default()
            },
        ));
        let d = demand("m", 10, Output::Exactly(10));
        let _first = granted(task.try_admit(&d, false));
        // The task's own budget refuses: the batch's budget is not spent.
        assert!(matches!(task.try_admit(&d, false), Admission::Refused(_)));
        assert_eq!(batch.refusals().count, 0);
        let other = Arc::new(Ledger::child(&batch, Budgets::default()));
        let _more = (
            granted(other.try_admit(&d, false)),
            granted(other.try_admit(&d, false)),
        );
        assert!(matches!(other.try_admit(&d, false), Admission::Refused(_)));
        assert_eq!(batch.refusals().last, Some(BudgetExceeded::Calls(3)));
    }

    #[test]
    fn a_hold_is_not_in_flight_so_calls_behind_it_are_refused_not_kept_waiting() {
        let tokens = ledger(Budgets {
            max_tokens: Some(10_000),
            ..Default::default()
        });
        let hold = tokens.hold("m", 8000, 500).unwrap();
        assert!(tokens.hold("m", 8000, 500).is_none());
        assert_eq!(tokens.input_room("m", 500), Some(1000));
        assert!(matches!(
            tokens.try_admit(&demand("m", 100, Output::Exactly(2000)), false),
            Admission::Refused(_)
        ));
        // A default cap is cut to what the hold leaves.
        let cut = granted(tokens.try_admit(&demand("m", 100, Output::UpTo(8192)), false));
        assert_eq!(cut.output_tokens(), 1400);
        drop((hold, cut));
        assert_eq!(tokens.input_room("m", 0), Some(10_000));
        assert_eq!(
            tokens.refusals().count,
            0,
            "try_admit and holds remember nothing"
        );
    }

    #[tokio::test]
    async fn a_waiting_call_is_admitted_when_one_in_flight_settles_and_refusals_are_remembered() {
        let tokens = ledger(Budgets {
            max_tokens: Some(1000),
            ..Default::default()
        });
        let d = demand("m", 100, Output::Exactly(500));
        let first = tokens.admit(&d).await.unwrap();
        let waiting = tokio::spawn({
            let tokens = tokens.clone();
            async move {
                let d = demand("m", 100, Output::Exactly(500));
                tokens.admit(&d).await.map(|r| r.output_tokens())
            }
        });
        tokio::task::yield_now().await;
        first.settle("m", 100, 50, 0);
        assert_eq!(waiting.await.unwrap(), Ok(500));
        let refused = tokens.admit(&demand("m", 100, Output::Exactly(900))).await;
        assert!(refused.is_err());
        let r = tokens.refusals();
        assert_eq!((r.count, r.last), (1, refused.err()));
    }
}
