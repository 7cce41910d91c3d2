//! Array functions for scripts: slicing the way Text slices, and ordering
//! that reports a broken comparator instead of hiding it.
//!
//! Arrays take the same cuts as Text views (`slice`, `head`, `tail`, and
//! `a[i..j]`, which `source` rewrites into `slice`), with the same rules:
//! negative positions count from the end, and positions past either end
//! clamp, so a cut never fails. They copy the items they keep.
//!
//! Rhai's own `sort(comparator)` and `dedup(comparator)` treat a comparator
//! that throws, or returns something other than a number, as "equal" and
//! carry on, leaving the array quietly unsorted. Ours stop at the first
//! such call, raise its error and leave the array as it was.

use std::ops::{Range, RangeInclusive};

use rhai::{Array, Dynamic, Engine, FnPtr, NativeCallContext, INT};

use super::convert::{as_text, offset, script_error, Fallible};

pub(crate) fn register(engine: &mut Engine) {
    register_cuts(engine);
    register_ordering(engine);
}

/// Items `from..to` of `items`, with both ends resolved and clamped.
fn cut(items: &Array, from: INT, to: usize) -> Array {
    let start = offset(from, items.len()).min(items.len());
    let end = to.min(items.len());
    if start >= end {
        return Array::new();
    }
    items[start..end].to_vec()
}

fn register_cuts(engine: &mut Engine) {
    engine.register_fn("slice", |a: &mut Array, from: INT, to: INT| {
        cut(a, from, offset(to, a.len()))
    });
    engine.register_fn("slice", |a: &mut Array, from: INT| cut(a, from, a.len()));
    engine.register_fn("slice", |a: &mut Array, r: Range<INT>| {
        cut(a, r.start, offset(r.end, a.len()))
    });
    engine.register_fn("slice", |a: &mut Array, r: RangeInclusive<INT>| {
        let end = offset(*r.end(), a.len()).saturating_add(1);
        cut(a, *r.start(), end)
    });
    engine.register_fn("head", |a: &mut Array, n: INT| {
        cut(a, 0, usize::try_from(n).unwrap_or(0))
    });
    engine.register_fn("tail", |a: &mut Array, n: INT| {
        let n = usize::try_from(n).unwrap_or(0).min(a.len());
        a[a.len() - n..].to_vec()
    });
}

/// Calls a comparator on two items and reads its answer as an ordering,
/// or says what was wrong with it.
fn ordering(
    ctx: &NativeCallContext,
    compare: &FnPtr,
    what: &str,
    a: &Dynamic,
    b: &Dynamic,
) -> Fallible<std::cmp::Ordering> {
    let answer: Dynamic = compare.call_within_context(ctx, (a.clone(), b.clone()))?;
    if let Ok(n) = answer.as_int() {
        return Ok(n.cmp(&0));
    }
    if let Ok(f) = answer.as_float() {
        if let Some(o) = f.partial_cmp(&0.0) {
            return Ok(o);
        }
    }
    if let Ok(less) = answer.as_bool() {
        // A Python-style `key(a) < key(b)` answer: true means a comes first.
        return Ok(if less {
            std::cmp::Ordering::Less
        } else {
            std::cmp::Ordering::Greater
        });
    }
    Err(script_error(format!(
        "the comparator of {what} must return a number (negative: a first, 0: equal, positive: b first), got {}",
        ctx.engine().map_type_name(answer.type_name())
    )))
}

/// A stable merge sort of `items` that stops at the first failing
/// comparison and then leaves `items` as it was (the standard library's
/// sort cannot return an error from its comparator). It sorts positions,
/// so no item moves until every comparison has succeeded.
fn sort_by(
    items: &mut Array,
    mut less_or_equal: impl FnMut(&Dynamic, &Dynamic) -> Fallible<bool>,
) -> Fallible<()> {
    let n = items.len();
    if n < 2 {
        return Ok(());
    }
    let mut order: Vec<usize> = (0..n).collect();
    let mut merged: Vec<usize> = Vec::with_capacity(n);
    let mut width = 1;
    while width < n {
        merged.clear();
        for start in (0..n).step_by(2 * width) {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let (mut l, mut r) = (start, mid);
            while l < mid && r < end {
                if less_or_equal(&items[order[l]], &items[order[r]])? {
                    merged.push(order[l]);
                    l += 1;
                } else {
                    merged.push(order[r]);
                    r += 1;
                }
            }
            merged.extend_from_slice(&order[l..mid]);
            merged.extend_from_slice(&order[r..end]);
        }
        std::mem::swap(&mut order, &mut merged);
        width *= 2;
    }
    let mut slots: Vec<Option<Dynamic>> = std::mem::take(items).into_iter().map(Some).collect();
    *items = order.into_iter().filter_map(|i| slots[i].take()).collect();
    Ok(())
}

/// A comparator call read as "a comes no later than b".
fn no_later(
    ctx: &NativeCallContext,
    compare: &FnPtr,
    what: &str,
    a: &Dynamic,
    b: &Dynamic,
) -> Fallible<bool> {
    Ok(ordering(ctx, compare, what, a, b)? != std::cmp::Ordering::Greater)
}

/// Registers a function that changes its receiver: such functions must
/// not be pure, or Rhai would let them change a constant (`documents`).
pub(crate) fn register_mutating<
    A: 'static,
    const N: usize,
    const X: bool,
    R: rhai::Variant + Clone,
    const F: bool,
>(
    engine: &mut Engine,
    name: &str,
    f: impl rhai::RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
) {
    rhai::FuncRegistration::new(name)
        .with_purity(false)
        .register_into_engine(engine, f);
}

fn register_ordering(engine: &mut Engine) {
    for name in ["sort", "sort_by"] {
        register_mutating(
            engine,
            name,
            move |ctx: NativeCallContext, items: &mut Array, compare: FnPtr| -> Fallible<()> {
                sort_by(items, |a, b| no_later(&ctx, &compare, name, a, b))
            },
        );
    }
    // Without a comparator: numbers by value, strings and views by their
    // text (Rhai's own `sort()` refuses views and mixed types).
    register_mutating(engine, "sort", |items: &mut Array| -> Fallible<()> {
        sort_by(items, |a, b| {
            Ok(natural_order(a, b) != std::cmp::Ordering::Greater)
        })
    });
    for name in ["order", "order_by"] {
        engine.register_fn(
            name,
            move |ctx: NativeCallContext, items: &mut Array, compare: FnPtr| -> Fallible<Array> {
                let mut sorted = items.clone();
                sort_by(&mut sorted, |a, b| no_later(&ctx, &compare, name, a, b))?;
                Ok(sorted)
            },
        );
    }
    register_mutating(
        engine,
        "dedup",
        |ctx: NativeCallContext, items: &mut Array, same: FnPtr| -> Fallible<()> {
            // Decide every item first, so a failing call leaves the array whole.
            let mut keep = vec![true; items.len()];
            let mut last = 0;
            for i in 1..items.len() {
                let answer: Dynamic =
                    same.call_within_context(&ctx, (items[last].clone(), items[i].clone()))?;
                let duplicate = answer.as_bool().map_err(|t| {
                    script_error(format!(
                        "the function given to dedup must return true or false, got {}",
                        ctx.engine().map_type_name(t)
                    ))
                })?;
                if duplicate {
                    keep[i] = false;
                } else {
                    last = i;
                }
            }
            let mut flags = keep.into_iter();
            items.retain(|_| flags.next().unwrap_or(true));
            Ok(())
        },
    );
}

/// The order of `sorted()` and `sort()`: numbers by value, before strings
/// and views, which compare by their bytes; anything else by its display.
pub(crate) fn natural_order(a: &Dynamic, b: &Dynamic) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let num = |v: &Dynamic| v.as_int().map(|i| i as f64).or_else(|_| v.as_float()).ok();
    match (num(a), num(b)) {
        (Some(x), Some(y)) => return x.total_cmp(&y),
        (Some(_), None) => return Ordering::Less,
        (None, Some(_)) => return Ordering::Greater,
        (None, None) => {}
    }
    match (as_text(a), as_text(b)) {
        (Some(x), Some(y)) => x.bytes().cmp(&y.bytes()),
        _ => super::convert::display(a).cmp(&super::convert::display(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[INT]) -> Array {
        v.iter().map(|&i| Dynamic::from(i)).collect()
    }

    fn values(a: &Array) -> Vec<INT> {
        a.iter().map(|d| d.as_int().unwrap()).collect()
    }

    #[test]
    fn cuts_clamp_and_count_negatives_from_the_end() {
        let a = ints(&[0, 1, 2, 3, 4]);
        assert_eq!(values(&cut(&a, 1, 3)), [1, 2]);
        assert_eq!(values(&cut(&a, -2, 5)), [3, 4]);
        assert_eq!(values(&cut(&a, 3, 1)), Vec::<INT>::new());
        assert_eq!(values(&cut(&a, -99, 99)), [0, 1, 2, 3, 4]);
        assert_eq!(values(&cut(&a, 7, 9)), Vec::<INT>::new());
    }

    #[test]
    fn the_merge_sort_is_stable_and_total() {
        for n in 0..40 {
            let mut a: Array = (0..n)
                .map(|i| Dynamic::from((i * 7919 % 13) as INT))
                .collect();
            let mut expected = values(&a);
            expected.sort();
            sort_by(
                &mut a,
                |x, y| Ok(x.as_int().unwrap() <= y.as_int().unwrap()),
            )
            .unwrap();
            assert_eq!(values(&a), expected, "n = {n}");
        }
        // Stability: sort pairs by their first item only.
        let mut pairs: Array = [(1, 0), (0, 1), (1, 2), (0, 3)]
            .iter()
            .map(|&(k, i)| Dynamic::from(ints(&[k, i])))
            .collect();
        let key = |d: &Dynamic| d.read_lock::<Array>().unwrap()[0].as_int().unwrap();
        sort_by(&mut pairs, |x, y| Ok(key(x) <= key(y))).unwrap();
        let order: Vec<INT> = pairs
            .iter()
            .map(|d| d.read_lock::<Array>().unwrap()[1].as_int().unwrap())
            .collect();
        assert_eq!(order, [1, 3, 0, 2]);
    }
}
