//! Moving values between Rhai and Rust: texts, offsets, JSON, errors.

use rhai::{Array, Dynamic, EvalAltResult, ImmutableString, Map, Position, INT};

use crate::Text;

/// The error type of every native function.
pub(crate) type Fallible<T> = Result<T, Box<EvalAltResult>>;

/// A runtime error a script can catch.
pub(crate) fn script_error(message: impl std::fmt::Display) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(message.to_string().into(), Position::NONE).into()
}

/// Converts a library error. An interrupted scan stops the cell in a way
/// `try`/`catch` cannot swallow; the session reports why from its clock.
pub(crate) fn lib_error(e: crate::Error) -> Box<EvalAltResult> {
    match e {
        crate::Error::Interrupted(_) => EvalAltResult::ErrorTerminated(
            Dynamic::from(super::session::STOP_TOKEN),
            Position::NONE,
        )
        .into(),
        other => script_error(other),
    }
}

/// A Text or a string, as a Text. Anything else is `None`.
pub(crate) fn as_text(value: &Dynamic) -> Option<Text> {
    if let Some(t) = value.read_lock::<Text>() {
        return Some(t.clone());
    }
    value
        .read_lock::<ImmutableString>()
        .map(|s| Text::from(s.as_str()))
}

/// A script offset: negative counts from the end, as in Python.
pub(crate) fn offset(i: INT, len: usize) -> usize {
    if i < 0 {
        len.saturating_sub(i.unsigned_abs() as usize)
    } else {
        i as usize
    }
}

/// A count or size argument that must be at least `min`.
pub(crate) fn positive(i: INT, what: &str, min: INT) -> Fallible<usize> {
    if i < min {
        Err(script_error(format!(
            "{what} must be at least {min}, got {i}"
        )))
    } else {
        Ok(i as usize)
    }
}

pub(crate) fn int(n: usize) -> INT {
    INT::try_from(n).unwrap_or(INT::MAX)
}

/// Converts a script value to JSON. Texts become strings; values JSON has
/// no form for (functions, ranges, custom types) become their display string.
pub(crate) fn to_json(value: &Dynamic) -> serde_json::Value {
    use serde_json::Value;
    if value.is_unit() {
        return Value::Null;
    }
    if let Ok(b) = value.as_bool() {
        return Value::Bool(b);
    }
    if let Ok(i) = value.as_int() {
        return Value::from(i);
    }
    if let Ok(f) = value.as_float() {
        return serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    }
    if let Some(s) = value.read_lock::<ImmutableString>() {
        return Value::String(s.to_string());
    }
    if let Some(t) = value.read_lock::<Text>() {
        return Value::String(t.to_string());
    }
    if let Some(a) = value.read_lock::<Array>() {
        return Value::Array(a.iter().map(to_json).collect());
    }
    if let Some(m) = value.read_lock::<Map>() {
        return Value::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect());
    }
    if let Ok(c) = value.as_char() {
        return Value::String(c.to_string());
    }
    Value::String(value.to_string())
}

/// Converts JSON to a script value.
pub(crate) fn from_json(value: serde_json::Value) -> Dynamic {
    use serde_json::Value;
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => b.into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(f64::NAN).into(),
        },
        Value::String(s) => s.into(),
        Value::Array(a) => a.into_iter().map(from_json).collect::<Array>().into(),
        Value::Object(o) => o
            .into_iter()
            .map(|(k, v)| (k.into(), from_json(v)))
            .collect::<Map>()
            .into(),
    }
}

/// How a value reads when printed: strings and texts bare, others as JSON-like.
pub(crate) fn display(value: &Dynamic) -> String {
    if let Some(s) = value.read_lock::<ImmutableString>() {
        return s.to_string();
    }
    if let Some(t) = value.read_lock::<Text>() {
        return t.to_string();
    }
    if value.is::<Array>() || value.is::<Map>() {
        return to_json(value).to_string();
    }
    value.to_string()
}

/// Bytes of text a value holds, counted without copying it.
pub(crate) fn estimated_size(value: &Dynamic) -> usize {
    if let Some(t) = value.read_lock::<Text>() {
        return t.len();
    }
    if let Some(s) = value.read_lock::<ImmutableString>() {
        return s.len();
    }
    if let Some(a) = value.read_lock::<Array>() {
        return a
            .iter()
            .map(|v| estimated_size(v).saturating_add(2))
            .fold(2, usize::saturating_add);
    }
    if let Some(m) = value.read_lock::<Map>() {
        return m
            .iter()
            .map(|(k, v)| estimated_size(v).saturating_add(k.len() + 4))
            .fold(2, usize::saturating_add);
    }
    24
}

/// Fails unless the text form of `value` (as `str`, `to_json` or `join`
/// make it) fits in `max` bytes, judged before anything is copied.
pub(crate) fn fits_in_string(value: &Dynamic, max: usize, what: &str) -> Fallible<()> {
    let size = estimated_size(value);
    if size > max {
        return Err(script_error(format!(
            "{what} would make a string of about {size} bytes, more than the string limit of {max} bytes; \
             work on views instead (slice, chunks), or on a summary"
        )));
    }
    Ok(())
}
