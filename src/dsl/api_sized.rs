//! Rhai functions that allocate a size the script names, re-registered to
//! check that size before they allocate.
//!
//! With the session's memory limit in force, Rhai's own per-type limits
//! are off (see `crate::alloc`), and with them the checks inside Rhai's
//! `pad` and `blob`: `a.pad(1_000_000_000_000, 0)` would ask for 16 TB in
//! one step, which aborts the process before any limit is looked at. These
//! versions refuse such a request with an error first. Everything else in
//! Rhai grows by at most the size of values a script already holds, which
//! the memory limit bounds after each operation.

use rhai::{Array, Blob, Dynamic, Engine, EvalAltResult, ImmutableString, Position, INT};

use super::api_array::register_mutating;
use super::budget::Budget;
use super::convert::Fallible;
use super::Limits;

/// Fails unless `bytes` more fit the session: its memory limit where the
/// allocator counts (the same check as every native result's), otherwise
/// the per-type `cap` (Rhai's limit for this kind of value, in the units
/// of `count`), reported as Rhai reports its own size-limit errors.
fn room_for(budget: &Budget, what: &str, count: usize, cap: usize, bytes: usize) -> Fallible<()> {
    budget.allow(
        &format!("{what} of {count}"),
        0,
        bytes,
        "ask for a smaller size",
    )?;
    if !budget.counts_memory() && count > cap {
        let kind = if what == "a string" {
            "Length of string"
        } else {
            "Size of array/BLOB"
        };
        return Err(EvalAltResult::ErrorDataTooLarge(kind.into(), Position::NONE).into());
    }
    Ok(())
}

fn length(len: INT) -> usize {
    usize::try_from(len).unwrap_or(0)
}

pub(crate) fn register(engine: &mut Engine, budget: &Budget, limits: &Limits) {
    let item_bytes = std::mem::size_of::<Dynamic>();
    let (s, l) = (budget.clone(), limits.clone());
    register_mutating(
        engine,
        "pad",
        move |a: &mut Array, len: INT, item: Dynamic| -> Fallible<()> {
            let len = length(len);
            if len <= a.len() {
                return Ok(());
            }
            let each = item_bytes + super::convert::estimated_size(&item);
            let bytes = (len - a.len()).saturating_mul(each);
            room_for(&s, "an array", len, l.max_array_len, bytes)?;
            a.resize(len, item);
            Ok(())
        },
    );
    let (s, l) = (budget.clone(), limits.clone());
    register_mutating(
        engine,
        "pad",
        move |text: &mut ImmutableString, len: INT, fill: char| -> Fallible<()> {
            pad_string(&s, &l, text, length(len), &fill.to_string())
        },
    );
    let (s, l) = (budget.clone(), limits.clone());
    register_mutating(
        engine,
        "pad",
        move |text: &mut ImmutableString, len: INT, fill: &str| -> Fallible<()> {
            pad_string(&s, &l, text, length(len), fill)
        },
    );
    let (s, l) = (budget.clone(), limits.clone());
    register_mutating(
        engine,
        "pad",
        move |b: &mut Blob, len: INT, value: INT| -> Fallible<()> {
            let len = length(len);
            if len <= b.len() {
                return Ok(());
            }
            room_for(&s, "a BLOB", len, l.max_array_len, len - b.len())?;
            b.resize(len, (value & 0xff) as u8);
            Ok(())
        },
    );
    for with_value in [false, true] {
        let (s, l) = (budget.clone(), limits.clone());
        let make = move |len: INT, value: INT| -> Fallible<Blob> {
            let len = length(len);
            room_for(&s, "a BLOB", len, l.max_array_len, len)?;
            Ok(vec![(value & 0xff) as u8; len])
        };
        if with_value {
            engine.register_fn("blob", make);
        } else {
            engine.register_fn("blob", move |len: INT| make(len, 0));
        }
    }
}

/// Rhai's string `pad`: extends `text` to `len` characters with `fill`.
fn pad_string(
    budget: &Budget,
    limits: &Limits,
    text: &mut ImmutableString,
    len: usize,
    fill: &str,
) -> Fallible<()> {
    let have = text.chars().count();
    if len <= have || fill.is_empty() {
        return Ok(());
    }
    let missing = len - have;
    let fill_chars = fill.chars().count();
    let bytes = missing.div_ceil(fill_chars).saturating_mul(fill.len());
    room_for(
        budget,
        "a string",
        text.len().saturating_add(bytes),
        limits.max_string_bytes,
        bytes,
    )?;
    let out = text.make_mut();
    out.extend(fill.chars().cycle().take(missing));
    Ok(())
}
