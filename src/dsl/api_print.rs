//! How values print and interpolate: a Text as its contents, never as its
//! type name, and an error that says what to do when it is too large.
//!
//! Rhai turns a value into text through `print`, `to_string` and
//! `to_debug` (its `debug` calls `to_debug`), and for arrays and maps
//! through `to_debug` of each item.
//! Two of its paths hide failures. When `to_string` fails inside a
//! `${...}` interpolation, Rhai writes the value's type name instead
//! (`Summarize: Text`), and its array printer does the same for each item.
//! So every printer here refuses a result over the string limit *before*
//! copying, and also marks the cell as failed ([`Shared::fail_cell`]): the
//! cell then stops at its next step, before the quietly wrong string can
//! reach a sub-model or an answer.
//!
//! Arrays and maps print as Rhai prints them (`[1, "a"]`, `#{"k": 2}`),
//! with Text items quoted in full like strings.

use std::fmt::Write;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, ImmutableString, Map};

use super::convert::{script_error, Fallible};
use super::session::Shared;
use crate::Text;

/// Builds printed text up to a byte limit.
struct Printer {
    out: String,
    limit: usize,
}

/// The printed form would exceed the string limit.
struct TooLarge;

impl Printer {
    fn reserve(&mut self, more: usize) -> Result<(), TooLarge> {
        if self.out.len().saturating_add(more) > self.limit {
            Err(TooLarge)
        } else {
            Ok(())
        }
    }

    fn push(&mut self, s: &str) -> Result<(), TooLarge> {
        self.reserve(s.len())?;
        self.out.push_str(s);
        Ok(())
    }

    /// A value inside an array or map: strings and texts quoted.
    fn item(&mut self, value: &Dynamic) -> Result<(), TooLarge> {
        if let Some(t) = value.read_lock::<Text>() {
            // Quoting only grows the text, so its length is a lower bound.
            self.reserve(t.len() + 2)?;
            let quoted = format!("{:?}", t.to_string());
            return self.push(&quoted);
        }
        if let Some(s) = value.read_lock::<ImmutableString>() {
            self.reserve(s.len() + 2)?;
            let quoted = format!("{:?}", s.as_str());
            return self.push(&quoted);
        }
        if let Some(a) = value.read_lock::<Array>() {
            return self.array(&a);
        }
        if let Some(m) = value.read_lock::<Map>() {
            return self.map(&m);
        }
        let mut plain = String::new();
        let _ = write!(plain, "{value:?}");
        self.push(&plain)
    }

    fn array(&mut self, items: &Array) -> Result<(), TooLarge> {
        self.push("[")?;
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.push(", ")?;
            }
            self.item(item)?;
        }
        self.push("]")
    }

    fn map(&mut self, map: &Map) -> Result<(), TooLarge> {
        self.push("#{")?;
        for (i, (key, value)) in map.iter().enumerate() {
            if i > 0 {
                self.push(", ")?;
            }
            let key = format!("{:?}: ", key.as_str());
            self.push(&key)?;
            self.item(value)?;
        }
        self.push("}")
    }
}

/// The message for a value too large to become a string.
fn too_large(what: &str, limit: usize) -> String {
    format!(
        "{what} is too large to print or interpolate: it would exceed the string limit of {limit} bytes. \
         Work on a part of it: slice it (`t.head(2000)`, `a[0..10]`), or chunk it (`t.chunks(100000)`) \
         and send each chunk to a sub-model"
    )
}

/// Runs a printer; a result over the limit fails the call and the cell.
fn printed(
    shared: &Shared,
    limit: usize,
    what: &str,
    print: impl FnOnce(&mut Printer) -> Result<(), TooLarge>,
) -> Fallible<String> {
    let mut printer = Printer {
        out: String::new(),
        limit,
    };
    match print(&mut printer) {
        Ok(()) => Ok(printer.out),
        Err(TooLarge) => {
            let message = too_large(what, limit);
            shared.fail_cell(message.clone());
            Err(script_error(message))
        }
    }
}

pub(crate) fn register(engine: &mut Engine, shared: &Arc<Shared>, max_string: usize) {
    for name in ["print", "to_string"] {
        let s = shared.clone();
        engine.register_fn(name, move |t: &mut Text| {
            let what = format!("a Text of {} bytes", t.len());
            printed(&s, max_string, &what, |p| {
                p.reserve(t.len())?;
                p.out = t.to_string();
                Ok(())
            })
        });
    }
    for name in ["print", "to_string", "to_debug"] {
        let s = shared.clone();
        engine.register_fn(name, move |a: &mut Array| {
            let what = format!("an array of {} items", a.len());
            printed(&s, max_string, &what, |p| p.array(a))
        });
        let s = shared.clone();
        engine.register_fn(name, move |m: &mut Map| {
            let what = format!("a map of {} entries", m.len());
            printed(&s, max_string, &what, |p| p.map(m))
        });
    }
}
