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
//! such call and raise its error.

use std::ops::{Range, RangeInclusive};

use rhai::{Array, Dynamic, Engine, FnPtr, NativeCallContext, INT};

use super::convert::{offset, script_error, Fallible};

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

/// A stable merge sort that stops at the first failing comparison (the
/// standard library's sort cannot return an error from its comparator).
fn sort_by(
    items: &mut Array,
    mut less_or_equal: impl FnMut(&Dynamic, &Dynamic) -> Fallible<bool>,
) -> Fallible<()> {
    let n = items.len();
    if n < 2 {
        return Ok(());
    }
    let mut from: Vec<Dynamic> = std::mem::take(items);
    let mut into: Vec<Dynamic> = Vec::with_capacity(n);
    let mut width = 1;
    while width < n {
        let mut start = 0;
        let mut drain = from.into_iter().peekable();
        while start < n {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let left: Vec<Dynamic> = drain.by_ref().take(mid - start).collect();
            let right: Vec<Dynamic> = drain.by_ref().take(end - mid).collect();
            merge(left, right, &mut into, &mut less_or_equal)?;
            start = end;
        }
        from = std::mem::take(&mut into);
        into = Vec::with_capacity(n);
        width *= 2;
    }
    *items = from;
    Ok(())
}

fn merge(
    left: Vec<Dynamic>,
    right: Vec<Dynamic>,
    into: &mut Vec<Dynamic>,
    less_or_equal: &mut impl FnMut(&Dynamic, &Dynamic) -> Fallible<bool>,
) -> Fallible<()> {
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    while let (Some(l), Some(r)) = (left.peek(), right.peek()) {
        let next = if less_or_equal(l, r)? {
            left.next()
        } else {
            right.next()
        };
        into.extend(next);
    }
    into.extend(left);
    into.extend(right);
    Ok(())
}

fn register_ordering(engine: &mut Engine) {
    for name in ["sort", "sort_by"] {
        engine.register_fn(
            name,
            move |ctx: NativeCallContext, items: &mut Array, compare: FnPtr| -> Fallible<()> {
                sort_by(items, |a, b| {
                    Ok(ordering(&ctx, &compare, name, a, b)? != std::cmp::Ordering::Greater)
                })
            },
        );
    }
    for name in ["order", "order_by"] {
        engine.register_fn(
            name,
            move |ctx: NativeCallContext, items: &mut Array, compare: FnPtr| -> Fallible<Array> {
                let mut sorted = items.clone();
                sort_by(&mut sorted, |a, b| {
                    Ok(ordering(&ctx, &compare, name, a, b)? != std::cmp::Ordering::Greater)
                })?;
                Ok(sorted)
            },
        );
    }
    engine.register_fn(
        "dedup",
        |ctx: NativeCallContext, items: &mut Array, same: FnPtr| -> Fallible<()> {
            let mut kept: Array = Array::with_capacity(items.len());
            for item in std::mem::take(items) {
                let duplicate = match kept.last() {
                    Some(last) => {
                        let answer: Dynamic =
                            same.call_within_context(&ctx, (last.clone(), item.clone()))?;
                        answer.as_bool().map_err(|t| {
                            script_error(format!(
                                "the function given to dedup must return true or false, got {}",
                                ctx.engine().map_type_name(t)
                            ))
                        })?
                    }
                    None => false,
                };
                if !duplicate {
                    kept.push(item);
                }
            }
            *items = kept;
            Ok(())
        },
    );
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
