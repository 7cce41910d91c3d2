//! Utilities for scripts: submitting an answer, JSON, tallies, and the
//! Python-flavoured conveniences models reach for by habit.

use std::collections::HashMap;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, Position, INT};

use super::api_array::register_mutating;
use super::convert::{
    as_text, display, estimated_size, fits_in_string, from_json, int, script_error, to_json,
    Fallible,
};
use super::session::{Shared, SUBMIT_TOKEN};
use crate::stats::estimate_tokens;

pub(crate) fn register(engine: &mut Engine, shared: &Arc<Shared>, max_string: usize) {
    register_submit(engine, shared);
    register_data(engine, max_string);
    register_python(engine, max_string);
    register_sleep(engine, shared);
}

fn register_submit(engine: &mut Engine, shared: &Arc<Shared>) {
    for name in ["submit", "FINAL", "SUBMIT"] {
        let shared = shared.clone();
        engine.register_fn(name, move |value: Dynamic| -> Fallible<()> {
            if let Ok(mut slot) = shared.submitted.lock() {
                *slot = Some(value);
            }
            // Terminating (not a runtime error) so `try`/`catch` cannot swallow it.
            Err(EvalAltResult::ErrorTerminated(Dynamic::from(SUBMIT_TOKEN), Position::NONE).into())
        });
    }
}

/// A hashable key for tallies: strings and texts as themselves, others by display.
fn key_of(value: &Dynamic) -> String {
    display(value)
}

fn register_data(engine: &mut Engine, max: usize) {
    engine.register_fn("tokens", |value: Dynamic| -> INT {
        fn bytes(v: &Dynamic) -> usize {
            if let Some(t) = as_text(v) {
                t.len()
            } else if let Some(a) = v.read_lock::<Array>() {
                a.iter().map(bytes).sum()
            } else if let Some(m) = v.read_lock::<Map>() {
                m.iter().map(|(k, v)| k.len() + bytes(v)).sum()
            } else {
                display(v).len()
            }
        }
        int(estimate_tokens(bytes(&value)))
    });
    // Rhai's own `to_json` for maps cannot see inside our types; register
    // for the exact types too so ours is always the one called.
    let json = move |value: &Dynamic| -> Fallible<String> {
        fits_in_string(value, max, "to_json()")?;
        Ok(to_json(value).to_string())
    };
    engine.register_fn("to_json", move |value: Dynamic| json(&value));
    engine.register_fn("to_json", move |value: &mut Map| {
        json(&Dynamic::from(value.clone()))
    });
    engine.register_fn("to_json", move |value: &mut Array| {
        json(&Dynamic::from(value.clone()))
    });
    let parse_json = |s: Dynamic| -> Fallible<Dynamic> {
        let text = as_text(&s).ok_or_else(|| script_error("parse_json() takes a string"))?;
        let value: serde_json::Value = serde_json::from_slice(&text.bytes())
            .map_err(|e| script_error(format!("parse_json: invalid JSON: {e}")))?;
        Ok(from_json(value))
    };
    engine.register_fn("parse_json", parse_json);
    // Rhai's own `parse_json(string)` would win for strings; ours reads
    // views too and says what failed.
    engine.register_fn("parse_json", move |s: ImmutableString| {
        parse_json(Dynamic::from(s))
    });
    engine.register_fn("counts", move |items: Array| -> Fallible<Map> {
        let mut tally: Map = Map::new();
        for item in &items {
            fits_in_string(item, max, "counts()")?;
            let entry = tally
                .entry(key_of(item).into())
                .or_insert_with(|| Dynamic::from(0 as INT));
            if let Ok(n) = entry.as_int() {
                *entry = Dynamic::from(n + 1);
            }
        }
        Ok(tally)
    });
    engine.register_fn("top", |map: Map, k: INT| -> Array {
        let mut entries: Vec<(ImmutableString, Dynamic)> = map
            .into_iter()
            .map(|(k, v)| (k.as_str().into(), v))
            .collect();
        let score = |v: &Dynamic| {
            v.as_int()
                .map(|i| i as f64)
                .or_else(|_| v.as_float())
                .unwrap_or(f64::NEG_INFINITY)
        };
        entries.sort_by(|a, b| {
            score(&b.1)
                .total_cmp(&score(&a.1))
                .then_with(|| a.0.cmp(&b.0))
        });
        entries
            .into_iter()
            .take(k.max(0) as usize)
            .map(|(k, v)| Dynamic::from(vec![Dynamic::from(k), v]))
            .collect()
    });
    engine.register_fn("unique", move |items: Array| -> Fallible<Array> {
        for item in &items {
            fits_in_string(item, max, "unique()")?;
        }
        let mut seen = HashMap::new();
        Ok(items
            .into_iter()
            .filter(|item| seen.insert(key_of(item), ()).is_none())
            .collect())
    });
    engine.register_fn("join", move |items: Array, sep: &str| {
        join(&items, sep, max)
    });
    engine.register_fn("join", move |sep: &str, items: Array| {
        join(&items, sep, max)
    });
    engine.register_fn("sum", |items: Array| -> Fallible<Dynamic> {
        let mut int_total: INT = 0;
        let mut float_total = 0.0;
        let mut any_float = false;
        for item in &items {
            if let Ok(i) = item.as_int() {
                int_total = int_total.checked_add(i).ok_or_else(|| {
                    script_error(format!(
                        "sum() overflows: the total passes the integer range (±{}); convert with float(x) first to sum as floats",
                        INT::MAX
                    ))
                })?;
            } else if let Ok(f) = item.as_float() {
                float_total += f;
                any_float = true;
            } else {
                return Err(script_error(format!(
                    "sum() takes numbers, found {}",
                    item.type_name()
                )));
            }
        }
        Ok(if any_float {
            Dynamic::from(float_total + int_total as f64)
        } else {
            Dynamic::from(int_total)
        })
    });
}

/// A float's integer part, or an error where it has none (NaN, infinity)
/// or where it is out of the integer range: never a silent 0 or MAX.
fn float_to_int(f: f64) -> Fallible<INT> {
    // i64::MAX as f64 rounds up to 2^63, which is already out of range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let whole = f.trunc();
    if whole.is_nan() {
        return Err(script_error("int(): NaN is not a number"));
    }
    if !(-LIMIT..LIMIT).contains(&whole) {
        return Err(script_error(format!(
            "int(): {f:e} is outside the integer range (±{})",
            INT::MAX
        )));
    }
    Ok(whole as INT)
}

fn join(items: &Array, sep: &str, max: usize) -> Fallible<String> {
    let size = items
        .iter()
        .map(|i| estimated_size(i).saturating_add(sep.len()))
        .fold(0, usize::saturating_add);
    if size > max {
        return Err(script_error(format!(
            "join() would make a string of about {size} bytes, more than the string limit of {max} bytes; \
             join fewer or shorter items, or work on views"
        )));
    }
    Ok(items.iter().map(display).collect::<Vec<_>>().join(sep))
}

fn register_python(engine: &mut Engine, max: usize) {
    engine.register_fn("str", move |value: Dynamic| -> Fallible<String> {
        fits_in_string(&value, max, "str()")?;
        Ok(display(&value))
    });
    engine.register_fn("int", |value: Dynamic| -> Fallible<INT> {
        if let Ok(i) = value.as_int() {
            return Ok(i);
        }
        if let Ok(f) = value.as_float() {
            return float_to_int(f);
        }
        if let Ok(b) = value.as_bool() {
            return Ok(INT::from(b));
        }
        // A number is short: never copy a long text to find it is not one.
        fits_in_string(&value, 400, "int()")?;
        let s = as_text(&value)
            .map(|t| t.to_string())
            .unwrap_or_else(|| display(&value));
        s.trim()
            .parse::<INT>()
            .map_err(|_| script_error(format!("int(): {s:?} is not an integer")))
    });
    // Rhai's own `int(f64)` returns a float; ours must win for floats too.
    engine.register_fn("int", float_to_int);
    engine.register_fn("float", |value: Dynamic| -> Fallible<f64> {
        if let Ok(i) = value.as_int() {
            return Ok(i as f64);
        }
        if let Ok(f) = value.as_float() {
            return Ok(f);
        }
        fits_in_string(&value, 400, "float()")?;
        let s = as_text(&value)
            .map(|t| t.to_string())
            .unwrap_or_else(|| display(&value));
        s.trim()
            .parse::<f64>()
            .map_err(|_| script_error(format!("float(): {s:?} is not a number")))
    });
    engine.register_fn("len", |a: &mut Array| int(a.len()));
    engine.register_fn("len", |m: &mut Map| int(m.len()));
    // Python's `range(n)` is used like a list (`range(n).map(...)`), so this
    // one returns an array; Rhai's `0..n` and `range(a, b)` stay lazy.
    engine.register_fn("range", |n: INT| -> Fallible<Array> {
        const MAX: INT = 10_000_000;
        if n > MAX {
            return Err(script_error(format!(
                "range({n}) is too large for an array; loop with `for i in 0..{n}` instead"
            )));
        }
        Ok((0..n.max(0)).map(Dynamic::from).collect())
    });
    engine.register_fn("sorted", |mut items: Array| -> Array {
        items.sort_by(super::api_array::natural_order);
        items
    });
    register_mutating(engine, "append", |items: &mut Array, item: Dynamic| {
        items.push(item)
    });
    // Rhai's own `append(array, array)` concatenates; Python's appends one item.
    register_mutating(engine, "append", |items: &mut Array, item: Array| {
        items.push(Dynamic::from(item))
    });
    engine.register_fn("items", |map: &mut Map| -> Array {
        map.iter()
            .map(|(k, v)| Dynamic::from(vec![Dynamic::from(k.to_string()), v.clone()]))
            .collect()
    });
    engine.register_fn("get", |map: &mut Map, key: &str| {
        map.get(key).cloned().unwrap_or(Dynamic::UNIT)
    });
    engine.register_fn("get", |map: &mut Map, key: &str, default: Dynamic| {
        map.get(key).cloned().unwrap_or(default)
    });
}

/// Rhai's built-in `sleep` ignores deadlines; this one sleeps in steps and
/// stops with the cell's clock.
fn register_sleep(engine: &mut Engine, shared: &Arc<Shared>) {
    let sleeper = |shared: Arc<Shared>| {
        move |seconds: f64| -> Fallible<()> {
            if seconds.is_nan() {
                return Err(script_error("sleep(): the number of seconds is NaN"));
            }
            let until = std::time::Instant::now()
                + std::time::Duration::from_secs_f64(seconds.clamp(0.0, 3600.0));
            while std::time::Instant::now() < until {
                if shared.clock.stop_reason().is_some() {
                    return Err(EvalAltResult::ErrorTerminated(
                        Dynamic::from(super::session::STOP_TOKEN),
                        Position::NONE,
                    )
                    .into());
                }
                let left = until.saturating_duration_since(std::time::Instant::now());
                std::thread::sleep(std::time::Duration::from_millis(10).min(left));
            }
            Ok(())
        }
    };
    let float_sleep = sleeper(shared.clone());
    let int_sleep = sleeper(shared.clone());
    engine.register_fn("sleep", float_sleep);
    engine.register_fn("sleep", move |seconds: INT| int_sleep(seconds as f64));
}
