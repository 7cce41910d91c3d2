//! Text functions for scripts: every context-engine operation, as a method
//! on both `Text` views and plain strings, so a script never needs to know
//! which of the two it holds.
//!
//! Structural operations (`slice`, `line`, `chunks`, ...) return views;
//! search results carry small strings, which behave like any Rhai string
//! (usable as map keys, with `parse_int`, and so on).

use rhai::{Array, Dynamic, Engine, ImmutableString, Map, INT};

use super::budget::{Budget, MAP_ITEM, VIEW_ITEM};
use super::convert::{as_text, int, lib_error, offset, positive, script_error, Fallible};
use crate::{GrepOptions, PatternOptions, Text};

/// Registers a function twice: with a `Text` receiver and with a string
/// receiver (turned into a `Text` first). `$t` is bound to `&Text` in `$body`.
macro_rules! text_fn {
    ($engine:expr, $name:expr, |$t:ident $(, $arg:ident : $ty:ty)*| -> $ret:ty $body:block) => {{
        $engine.register_fn($name, move |$t: &mut Text $(, $arg: $ty)*| -> $ret {
            let $t: &Text = &*$t;
            $body
        });
        $engine.register_fn($name, move |s: &mut ImmutableString $(, $arg: $ty)*| -> $ret {
            let owned = Text::from(s.as_str());
            let $t: &Text = &owned;
            $body
        });
    }};
    // `budget b;` gives each of the two closures its own clone of `b`.
    ($engine:expr, $name:expr, budget $b:ident; |$t:ident $(, $arg:ident : $ty:ty)*| -> $ret:ty $body:block) => {{
        {
            let $b = $b.clone();
            $engine.register_fn($name, move |$t: &mut Text $(, $arg: $ty)*| -> $ret {
                let $t: &Text = &*$t;
                $body
            });
        }
        let $b = $b.clone();
        $engine.register_fn($name, move |s: &mut ImmutableString $(, $arg: $ty)*| -> $ret {
            let owned = Text::from(s.as_str());
            let $t: &Text = &owned;
            $body
        });
    }};
    ($engine:expr, $name:expr, budget $b:ident; |$t:ident $(, $arg:ident : $ty:ty)*| $body:expr) => {{
        {
            let $b = $b.clone();
            $engine.register_fn($name, move |$t: &mut Text $(, $arg: $ty)*| {
                let $t: &Text = &*$t;
                $body
            });
        }
        let $b = $b.clone();
        $engine.register_fn($name, move |s: &mut ImmutableString $(, $arg: $ty)*| {
            let owned = Text::from(s.as_str());
            let $t: &Text = &owned;
            $body
        });
    }};
    ($engine:expr, $name:expr, |$t:ident $(, $arg:ident : $ty:ty)*| $body:expr) => {{
        $engine.register_fn($name, move |$t: &mut Text $(, $arg: $ty)*| {
            let $t: &Text = &*$t;
            $body
        });
        $engine.register_fn($name, move |s: &mut ImmutableString $(, $arg: $ty)*| {
            let owned = Text::from(s.as_str());
            let $t: &Text = &owned;
            $body
        });
    }};
}

/// Registers the `Text` type and every text operation.
pub(crate) fn register(engine: &mut Engine, max_array: usize, budget: &Budget) {
    engine.register_type_with_name::<Text>("Text");
    register_views(engine, max_array, budget);
    register_search(engine, max_array, budget);
    register_chunking(engine, max_array, budget);
    register_string_ops(engine, budget);
}

/// Fails when a result of exactly `n` items would exceed the array limit,
/// saying what to do instead.
fn check_len(n: usize, max_array: usize, what: &str, instead: &str) -> Fallible<()> {
    if n > max_array {
        Err(script_error(format!(
            "{what} would return {n} items, more than the array limit of {max_array}; {instead}"
        )))
    } else {
        Ok(())
    }
}

/// Like [`check_len`] for searches, which stop one past the limit, so
/// that `n` is only a lower bound.
fn check_capped(n: usize, max_array: usize, what: &str, instead: &str) -> Fallible<()> {
    if n > max_array {
        Err(script_error(format!(
            "{what} would return more than the array limit of {max_array} items; {instead}"
        )))
    } else {
        Ok(())
    }
}

/// A needle or pattern argument: a string, or a Text (a line, a match).
fn arg(value: &Dynamic) -> Fallible<String> {
    as_text(value).map(|t| t.to_string()).ok_or_else(|| {
        script_error(format!(
            "expected a string or a Text, got {}",
            value.type_name()
        ))
    })
}

/// The view as an owned string, refused before allocating when it would
/// exceed the string limit (a whole multi-gigabyte context, say).
fn owned(t: &Text, budget: &Budget) -> Fallible<String> {
    budget.allow_string("this", t.len())?;
    Ok(t.to_string())
}

/// The text of a number to parse: a view trimmed without copying, refused
/// (quoting only its start) when too long to be a number.
fn number_text(t: &Text, what: &str) -> Fallible<String> {
    const LONGEST: usize = 400;
    let bytes = t.bytes();
    let trimmed = bytes.trim_ascii();
    if trimmed.len() > LONGEST {
        let start = Text::from(String::from_utf8_lossy(&trimmed[..60]).as_ref()).to_string();
        return Err(script_error(format!(
            "{what}: a text of {} bytes is not a number (it starts {start:?}...)",
            t.len()
        )));
    }
    Ok(String::from_utf8_lossy(trimmed).into_owned())
}

/// Every line of `t` as a view, refused up front when there are too many.
fn lines(t: &Text, what: &str, max_array: usize, budget: &Budget) -> Fallible<Array> {
    let n = t.line_count();
    let instead = "use grep() to find lines, or chunk_lines(n) to process them in groups";
    check_len(n, max_array, what, instead)?;
    budget.allow(what, 0, n.saturating_mul(VIEW_ITEM), instead)?;
    Ok(views(t.line_views()))
}

fn views(v: Vec<Text>) -> Array {
    v.into_iter().map(Dynamic::from).collect()
}

fn register_views(engine: &mut Engine, max_array: usize, budget: &Budget) {
    // Lengths and offsets are bytes everywhere, strings included, so that
    // offsets from find() and matches() slice the same text on both.
    engine.register_fn("len", |t: &mut Text| int(t.len()));
    engine.register_fn("len", |s: &mut ImmutableString| int(s.len()));
    engine.register_get("len", |s: &mut ImmutableString| int(s.len()));
    text_fn!(engine, "slice", |t, a: INT, b: INT| t
        .slice(offset(a, t.len()), offset(b, t.len())));
    text_fn!(engine, "slice", |t, a: INT| t
        .slice(offset(a, t.len()), t.len()));
    // `t[a..b]` is rewritten into these (see `dsl/source.rs`).
    text_fn!(engine, "slice", |t, r: std::ops::Range<INT>| t
        .slice(offset(r.start, t.len()), offset(r.end, t.len())));
    text_fn!(engine, "slice", |t, r: std::ops::RangeInclusive<INT>| t
        .slice(
            offset(*r.start(), t.len()),
            offset(*r.end(), t.len()).saturating_add(1)
        ));
    text_fn!(engine, "head", |t, n: INT| t.head(n.max(0) as usize));
    text_fn!(engine, "tail", |t, n: INT| t.tail(n.max(0) as usize));
    text_fn!(engine, "line_count", |t| int(t.line_count()));
    text_fn!(engine, "line", |t, n: INT| -> Fallible<Text> {
        let count = t.line_count();
        let k = if n < 0 {
            if n.unsigned_abs() as usize > count {
                return Err(script_error(format!(
                    "line({n}) is out of range: the text has {count} lines, numbered 1 to {count} (negative numbers count from the end)"
                )));
            }
            offset(n, count) + 1
        } else {
            n as usize
        };
        t.line(k).ok_or_else(|| {
            script_error(format!(
                "line({n}) is out of range: the text has {count} lines, numbered 1 to {count} (negative numbers count from the end)"
            ))
        })
    });
    text_fn!(engine, "lines", |t, a: INT, b: INT| {
        let count = t.line_count();
        let from = if a < 0 {
            offset(a, count) + 1
        } else {
            a as usize
        };
        let to = if b < 0 {
            offset(b, count) + 1
        } else {
            b as usize
        };
        t.lines(from, to)
    });
    let b = budget;
    text_fn!(engine, "lines", budget b; |t| lines(t, "lines()", max_array, &b));
    text_fn!(engine, "splitlines", budget b; |t| lines(t, "splitlines()", max_array, &b));
    text_fn!(engine, "documents", |t| views(t.documents()));
    text_fn!(engine, "to_text", |t| t.clone());
    engine.register_indexer_get(|t: &mut Text, r: std::ops::Range<INT>| {
        t.slice(offset(r.start, t.len()), offset(r.end, t.len()))
    });
    engine.register_indexer_get(|t: &mut Text, r: std::ops::RangeInclusive<INT>| {
        let end = offset(*r.end(), t.len()).saturating_add(1);
        t.slice(offset(*r.start(), t.len()), end)
    });
    engine.register_get("name", |t: &mut Text| t.name().to_string());
    engine.register_get("start", |t: &mut Text| int(t.start()));
    engine.register_get("end", |t: &mut Text| int(t.end()));
    engine.register_get("len", |t: &mut Text| int(t.len()));
    // `print` and `to_string` of a Text are in `api_print`.
    engine.register_fn("to_debug", |t: &mut Text| {
        const PREVIEW: usize = 200;
        let shown = t.head(PREVIEW).to_string();
        if t.len() > PREVIEW {
            format!("Text({} bytes: {shown:?}...)", t.len())
        } else {
            format!("{shown:?}")
        }
    });
}

fn grep_options(opts: &Map) -> Fallible<GrepOptions> {
    let mut out = GrepOptions::default();
    for (key, value) in opts {
        let number = || -> Fallible<usize> {
            let n = value.as_int().map_err(|t| {
                script_error(format!("grep option `{key}` must be an integer, got {t}"))
            })?;
            positive(n, &format!("grep option `{key}`"), 0)
        };
        match key.as_str() {
            "before" => out.before = number()?,
            "after" => out.after = number()?,
            "context" => {
                out.before = number()?;
                out.after = out.before;
            }
            "max" | "limit" => out.max = Some(number()?),
            "case_insensitive" | "ignore_case" => {
                out.case_insensitive = value
                    .as_bool()
                    .map_err(|t| script_error(format!("grep option `{key}` must be true or false, got {t}")))?
            }
            other => {
                return Err(script_error(format!(
                    "unknown grep option `{other}`; known options: before, after, context, max, case_insensitive"
                )))
            }
        }
    }
    Ok(out)
}

fn grep(
    t: &Text,
    re: &str,
    mut opts: GrepOptions,
    max_array: usize,
    budget: &Budget,
) -> Fallible<Array> {
    let requested = opts.max;
    opts.max = Some(
        requested
            .unwrap_or(max_array.saturating_add(1))
            .min(max_array.saturating_add(1))
            .min(budget.items_left(MAP_ITEM).saturating_add(1)),
    );
    let hits = t.grep(re, &opts).map_err(lib_error)?;
    if requested.is_none() {
        check_capped(
            hits.len(),
            max_array,
            "grep()",
            "pass #{max: n}, narrow the pattern, or count with count_matches()",
        )?;
    }
    let with_context = opts.before > 0 || opts.after > 0;
    let text: usize = hits
        .iter()
        .map(|h| h.text.len() + if with_context { h.context.len() } else { 0 })
        .fold(0, usize::saturating_add);
    budget.allow(
        "grep()",
        text,
        hits.len().saturating_mul(MAP_ITEM),
        "pass a smaller #{max: n} or less context, or narrow the pattern",
    )?;
    if let Some(widest) = hits.iter().map(|h| h.context.len().max(h.text.len())).max() {
        budget.allow_string("grep()", widest)?;
    }
    Ok(hits
        .into_iter()
        .map(|h| {
            let mut m = Map::new();
            m.insert("line".into(), int(h.line).into());
            m.insert("start".into(), int(h.start).into());
            m.insert("text".into(), h.text.to_string().into());
            if with_context {
                m.insert("context".into(), h.context.to_string().into());
            }
            m.into()
        })
        .collect())
}

fn matches(
    t: &Text,
    re: &str,
    limit: Option<usize>,
    max_array: usize,
    budget: &Budget,
) -> Fallible<Array> {
    let cap = limit
        .unwrap_or(max_array.saturating_add(1))
        .min(max_array.saturating_add(1))
        .min(budget.items_left(MAP_ITEM).saturating_add(1));
    let found = t.matches(re, cap).map_err(lib_error)?;
    if limit.is_none() {
        check_capped(
            found.len(),
            max_array,
            "matches()",
            "pass a limit, e.g. matches(re, 100), or count with count_matches()",
        )?;
    }
    let instead = "pass a smaller limit, or use each match's start and end to slice what you need";
    let mut widest = 0;
    let mut text = 0usize;
    for m in &found {
        let groups = m.groups.iter().flatten().map(Text::len);
        widest = widest
            .max(m.text.len())
            .max(groups.clone().max().unwrap_or(0));
        text = text
            .saturating_add(m.text.len())
            .saturating_add(groups.sum());
    }
    budget.allow_string("matches()", widest)?;
    budget.allow(
        "matches()",
        text,
        found.len().saturating_mul(MAP_ITEM),
        instead,
    )?;
    Ok(found
        .into_iter()
        .map(|m| {
            let mut map = Map::new();
            map.insert("start".into(), int(m.start).into());
            map.insert("end".into(), int(m.end).into());
            map.insert("line".into(), int(m.line).into());
            map.insert("text".into(), m.text.to_string().into());
            let groups: Array = m
                .groups
                .into_iter()
                .map(|g| g.map_or(Dynamic::UNIT, |g| g.to_string().into()))
                .collect();
            map.insert("groups".into(), groups.into());
            map.into()
        })
        .collect())
}

fn find_all(
    t: &Text,
    needle: &str,
    limit: Option<usize>,
    max_array: usize,
    budget: &Budget,
) -> Fallible<Array> {
    let cap = limit
        .unwrap_or(max_array.saturating_add(1))
        .min(max_array.saturating_add(1));
    let found = t.find_all(needle, cap).map_err(lib_error)?;
    if limit.is_none() {
        check_capped(
            found.len(),
            max_array,
            "find_all()",
            "pass a limit, or use count()",
        )?;
    }
    budget.allow(
        "find_all()",
        0,
        found.len().saturating_mul(16),
        "pass a limit, or use count()",
    )?;
    Ok(found.into_iter().map(|p| Dynamic::from(int(p))).collect())
}

fn register_search(engine: &mut Engine, max_array: usize, budget: &Budget) {
    let b = budget;
    text_fn!(engine, "find", |t, needle: Dynamic| -> Fallible<INT> {
        Ok(t.find(&arg(&needle)?).map_err(lib_error)?.map_or(-1, int))
    });
    text_fn!(engine, "find", |t,
                              needle: Dynamic,
                              from: INT|
     -> Fallible<INT> {
        Ok(t.find_from(&arg(&needle)?, offset(from, t.len()))
            .map_err(lib_error)?
            .map_or(-1, int))
    });
    text_fn!(engine, "find_all", budget b; |t, needle: Dynamic| find_all(
        t,
        &arg(&needle)?,
        None,
        max_array,
        &b
    ));
    text_fn!(engine, "find_all", budget b; |t, needle: Dynamic, limit: INT| {
        find_all(
            t,
            &arg(&needle)?,
            Some(positive(limit, "find_all limit", 0)?),
            max_array,
            &b,
        )
    });
    engine.register_fn("contains", |t: &mut Text, needle: Dynamic| {
        t.contains(&arg(&needle)?).map_err(lib_error)
    });
    text_fn!(engine, "count", |t, needle: Dynamic| -> Fallible<INT> {
        Ok(int(t.count(&arg(&needle)?).map_err(lib_error)?))
    });
    text_fn!(engine, "matches", budget b; |t, re: Dynamic| matches(
        t,
        &arg(&re)?,
        None,
        max_array,
        &b
    ));
    text_fn!(engine, "matches", budget b; |t, re: Dynamic, limit: INT| {
        matches(
            t,
            &arg(&re)?,
            Some(positive(limit, "matches limit", 0)?),
            max_array,
            &b,
        )
    });
    text_fn!(engine, "grep", budget b; |t, re: Dynamic| grep(
        t,
        &arg(&re)?,
        GrepOptions::default(),
        max_array,
        &b
    ));
    text_fn!(engine, "grep", budget b; |t, re: Dynamic, opts: Map| grep(
        t,
        &arg(&re)?,
        grep_options(&opts)?,
        max_array,
        &b
    ));
    text_fn!(engine, "count_matches", |t, re: Dynamic| -> Fallible<INT> {
        Ok(int(t
            .count_matches(arg(&re)?.as_str())
            .map_err(lib_error)?))
    });
    text_fn!(engine, "count_matches", |t,
                                       re: Dynamic,
                                       opts: Map|
     -> Fallible<INT> {
        if let Some(other) = opts
            .keys()
            .find(|k| !matches!(k.as_str(), "case_insensitive" | "ignore_case"))
        {
            return Err(script_error(format!(
                "count_matches() takes only the option `case_insensitive`, not `{other}`"
            )));
        }
        let ci = grep_options(&opts)?.case_insensitive;
        let opts = PatternOptions {
            case_insensitive: ci,
            ..Default::default()
        };
        Ok(int(t
            .count_matches((arg(&re)?.as_str(), opts))
            .map_err(lib_error)?))
    });
    text_fn!(engine, "is_match", |t, re: Dynamic| t
        .is_match(arg(&re)?.as_str())
        .map_err(lib_error));
    text_fn!(engine, "find_any", |t, needles: Array| -> Fallible<Array> {
        let strings: Vec<String> = needles
            .iter()
            .map(|n| as_text(n).map(|t| t.to_string()))
            .collect::<Option<_>>()
            .ok_or_else(|| script_error("find_any() takes an array of strings"))?;
        let found = t
            .find_any(&strings, max_array.saturating_add(1))
            .map_err(lib_error)?;
        check_capped(
            found.len(),
            max_array,
            "find_any()",
            "search for fewer needles, or narrow the text",
        )?;
        Ok(found
            .into_iter()
            .map(|m| {
                let mut map = Map::new();
                map.insert("needle".into(), int(m.needle).into());
                map.insert("text".into(), strings[m.needle].clone().into());
                map.insert("start".into(), int(m.start).into());
                map.insert("end".into(), int(m.end).into());
                map.insert("line".into(), int(m.line).into());
                map.into()
            })
            .collect())
    });
}

fn register_chunking(engine: &mut Engine, max_array: usize, budget: &Budget) {
    let b = budget.clone();
    let chunks = move |t: &Text, size: INT, overlap: INT| -> Fallible<Array> {
        let size = positive(size, "chunk size", 1)?;
        let overlap = positive(overlap, "chunk overlap", 0)?;
        let n = t.len() / size.saturating_sub(overlap).max(1);
        let instead = "use a larger chunk size";
        check_len(n, max_array, "chunks()", instead)?;
        b.allow("chunks()", 0, n.saturating_mul(VIEW_ITEM), instead)?;
        Ok(views(t.chunks(size, overlap).map_err(lib_error)?))
    };
    let c = chunks.clone();
    text_fn!(engine, "chunks", budget c; |t, size: INT| c(t, size, 0));
    text_fn!(engine, "chunks", budget chunks; |t, size: INT, overlap: INT| chunks(
        t, size, overlap
    ));
    let b = budget;
    text_fn!(engine, "chunk_lines", budget b; |t, n: INT| -> Fallible<Array> {
        let n = positive(n, "lines per chunk", 1)?;
        let count = t.line_count().div_ceil(n);
        let instead = "use more lines per chunk";
        check_len(count, max_array, "chunk_lines()", instead)?;
        b.allow("chunk_lines()", 0, count.saturating_mul(VIEW_ITEM), instead)?;
        Ok(views(t.chunk_lines(n).map_err(lib_error)?))
    });
    text_fn!(engine, "parts", budget b; |t, k: INT| -> Fallible<Array> {
        let k = positive(k, "number of parts", 1)?;
        check_len(k, max_array, "parts()", "ask for fewer parts")?;
        b.allow("parts()", 0, k.saturating_mul(VIEW_ITEM), "ask for fewer parts")?;
        Ok(views(t.parts(k).map_err(lib_error)?))
    });
    text_fn!(engine, "split_on", budget b; |t, re: Dynamic| -> Fallible<Array> {
        let instead = "split into larger pieces, or use chunks()";
        // At most one piece past the limit is ever made: 200 million
        // single-byte pieces of a 1 GiB text would take 8 GB to hold.
        let pieces = t
            .split_on_at_most(arg(&re)?.as_str(), max_array)
            .map_err(lib_error)?
            .ok_or_else(|| {
                script_error(format!(
                    "split_on() would return more than the array limit of {max_array} items; {instead}"
                ))
            })?;
        b.allow("split_on()", 0, pieces.len().saturating_mul(VIEW_ITEM), instead)?;
        Ok(views(pieces))
    });
}

/// Common string operations on `Text`, plus Python-style aliases on both.
fn register_string_ops(engine: &mut Engine, budget: &Budget) {
    let b = budget;
    // Concatenation and comparison with strings. A sum is a copy, sized
    // before it is made.
    let joined = |budget: &Budget, len: usize, f: &dyn Fn() -> String| -> Fallible<String> {
        budget.allow_string("`+`", len)?;
        Ok(f())
    };
    let bb = budget.clone();
    engine.register_fn("+", move |a: Text, b: &str| {
        joined(&bb, a.len() + b.len(), &|| format!("{a}{b}"))
    });
    let bb = budget.clone();
    engine.register_fn("+", move |a: &str, b: Text| {
        joined(&bb, a.len() + b.len(), &|| format!("{a}{b}"))
    });
    let bb = budget.clone();
    engine.register_fn("+", move |a: Text, b: Text| {
        joined(&bb, a.len() + b.len(), &|| format!("{a}{b}"))
    });
    let bb = budget.clone();
    engine.register_fn("+", move |a: Text, b: INT| {
        joined(&bb, a.len() + 20, &|| format!("{a}{b}"))
    });
    let bb = budget.clone();
    engine.register_fn("+", move |a: INT, b: Text| {
        joined(&bb, b.len() + 20, &|| format!("{a}{b}"))
    });
    engine.register_fn("==", |a: Text, b: Text| a == b);
    engine.register_fn("==", |a: Text, b: &str| a == b);
    engine.register_fn("==", |a: &str, b: Text| b == a);
    engine.register_fn("!=", |a: Text, b: Text| a != b);
    engine.register_fn("!=", |a: Text, b: &str| a != b);
    engine.register_fn("!=", |a: &str, b: Text| b != a);
    macro_rules! ordering {
        ($op:literal, $cmp:expr) => {
            engine.register_fn($op, |a: Text, b: Text| {
                $cmp(a.bytes().as_ref().cmp(b.bytes().as_ref()))
            });
            engine.register_fn($op, |a: Text, b: &str| {
                $cmp(a.bytes().as_ref().cmp(b.as_bytes()))
            });
            engine.register_fn($op, |a: &str, b: Text| {
                $cmp(a.as_bytes().cmp(b.bytes().as_ref()))
            });
        };
    }
    ordering!("<", std::cmp::Ordering::is_lt);
    ordering!("<=", std::cmp::Ordering::is_le);
    ordering!(">", std::cmp::Ordering::is_gt);
    ordering!(">=", std::cmp::Ordering::is_ge);

    // Rhai's own string methods change the string in place and return `()`,
    // which makes `let t = s.trim();` silently `()`. These versions still
    // change a variable in place, and also return the result.
    engine.register_fn("trim", |s: &mut ImmutableString| {
        *s = s.trim().into();
        s.clone()
    });
    engine.register_fn("to_upper", |s: &mut ImmutableString| {
        *s = s.to_uppercase().into();
        s.clone()
    });
    engine.register_fn("to_lower", |s: &mut ImmutableString| {
        *s = s.to_lowercase().into();
        s.clone()
    });
    engine.register_fn(
        "replace",
        |s: &mut ImmutableString, from: &str, to: &str| {
            *s = s.replace(from, to).into();
            s.clone()
        },
    );
    let bb = budget.clone();
    engine.register_fn("trim", move |t: &mut Text| -> Fallible<String> {
        Ok(owned(t, &bb)?.trim().to_string())
    });
    let bb = budget.clone();
    engine.register_fn("to_upper", move |t: &mut Text| -> Fallible<String> {
        Ok(owned(t, &bb)?.to_uppercase())
    });
    let bb = budget.clone();
    engine.register_fn("to_lower", move |t: &mut Text| -> Fallible<String> {
        Ok(owned(t, &bb)?.to_lowercase())
    });
    let bb = budget.clone();
    engine.register_fn(
        "replace",
        move |t: &mut Text, from: &str, to: &str| -> Fallible<String> {
            Ok(owned(t, &bb)?.replace(from, to))
        },
    );
    let bb = budget.clone();
    engine.register_fn("split", move |t: &mut Text, sep: &str| -> Fallible<Array> {
        Ok(owned(t, &bb)?
            .split(sep)
            .map(|p| Dynamic::from(p.to_string()))
            .collect())
    });
    engine.register_fn("starts_with", |t: &mut Text, p: &str| {
        t.bytes().starts_with(p.as_bytes())
    });
    engine.register_fn("ends_with", |t: &mut Text, p: &str| {
        t.bytes().ends_with(p.as_bytes())
    });
    engine.register_fn("is_empty", |t: &mut Text| t.is_empty());
    engine.register_fn("parse_int", |t: Text| -> Fallible<INT> {
        let s = number_text(&t, "parse_int")?;
        s.parse::<INT>()
            .map_err(|_| script_error(format!("parse_int: {s:?} is not an integer")))
    });
    engine.register_fn("parse_float", |t: Text| -> Fallible<f64> {
        let s = number_text(&t, "parse_float")?;
        s.parse::<f64>()
            .map_err(|_| script_error(format!("parse_float: {s:?} is not a number")))
    });

    // Python-style names, returning new values on both strings and texts.
    text_fn!(engine, "lower", budget b; |t| -> Fallible<String> {
        Ok(owned(t, &b)?.to_lowercase())
    });
    text_fn!(engine, "upper", budget b; |t| -> Fallible<String> {
        Ok(owned(t, &b)?.to_uppercase())
    });
    text_fn!(engine, "strip", budget b; |t| -> Fallible<String> {
        Ok(owned(t, &b)?.trim().to_string())
    });
    text_fn!(engine, "lstrip", budget b; |t| -> Fallible<String> {
        Ok(owned(t, &b)?.trim_start().to_string())
    });
    text_fn!(engine, "rstrip", budget b; |t| -> Fallible<String> {
        Ok(owned(t, &b)?.trim_end().to_string())
    });
    text_fn!(engine, "startswith", |t, p: &str| t
        .bytes()
        .starts_with(p.as_bytes()));
    text_fn!(engine, "endswith", |t, p: &str| t
        .bytes()
        .ends_with(p.as_bytes()));
    text_fn!(engine, "split", budget b; |t| -> Fallible<Array> {
        Ok(owned(t, &b)?
            .split_whitespace()
            .map(|p| Dynamic::from(p.to_string()))
            .collect())
    });
}
