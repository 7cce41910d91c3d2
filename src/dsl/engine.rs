//! Building the sandboxed Rhai engine for a session.
//!
//! The sandbox is what is *not* registered: Rhai has no file, network,
//! process or environment access unless the host adds it, and we add none.
//! On top of that we close the doors Rhai opens by default: the file-based
//! module resolver (`import "x"` would read `x.rhai`), `eval`, and a `sleep`
//! that ignores deadlines; and we set every limit explicitly.

use std::sync::Arc;

use rhai::module_resolvers::DummyModuleResolver;
use rhai::{Dynamic, Engine, Token};

use super::session::{Shared, STOP_TOKEN};
use super::{api_array, api_print, api_sized, api_text, api_util, Limits};

/// Operations between two checks of the wall clock.
const CLOCK_CHECK_EVERY: u64 = 64;

pub(crate) fn build(limits: &Limits, shared: &Arc<Shared>) -> Engine {
    let mut engine = Engine::new();
    engine.set_module_resolver(DummyModuleResolver::new());
    engine.disable_symbol("eval");
    engine.set_max_operations(limits.max_operations);
    if shared.memory.is_none() {
        // Without the counting allocator, Rhai's per-type limits are the
        // only bounds. With it, they stay off: Rhai enforces them by
        // walking a whole array or map after every change, which makes a
        // `push` loop quadratic, and the session's memory limit covers
        // every container at once (see `crate::alloc`).
        engine.set_max_string_size(limits.max_string_bytes);
        engine.set_max_array_size(limits.max_array_len);
        engine.set_max_map_size(limits.max_map_len);
    }
    engine.set_max_call_levels(limits.max_call_depth);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_fn_expr_depth);
    engine.set_max_variables(limits.max_variables);
    engine.set_max_functions(limits.max_functions);
    engine.set_max_modules(0);
    // No interning of strings a script makes: once Rhai's bloom filter
    // fills, every new string is interned, and a full interner scans all
    // its entries to evict one, so `${i}` in a loop cost 5 µs a string
    // (30,000 instructions; `valgrind --tool=callgrind`).
    engine.set_max_strings_interned(0);

    let pieces = shared.clone();
    #[allow(deprecated)] // `on_parse_token` is stable in practice; Rhai marks it volatile.
    engine.on_parse_token(move |token, pos, _| match token {
        Token::StringConstant(s) => match pieces.backtick_escapes(pos, &s) {
            Some(text) => Token::StringConstant(Box::new(text.into())),
            None => Token::StringConstant(s),
        },
        Token::InterpolatedString(s) => match pieces.backtick_escapes(pos, &s) {
            Some(text) => Token::InterpolatedString(Box::new(text.into())),
            None => Token::InterpolatedString(s),
        },
        other => other,
    });
    let out = shared.clone();
    engine.on_print(move |s| out.print(s));
    let out = shared.clone();
    engine.on_debug(move |s, _, pos| {
        if pos.is_none() {
            out.print(&format!("[debug] {s}"));
        } else {
            out.print(&format!("[debug line {}] {s}", pos.line().unwrap_or(0)));
        }
    });
    let progress = shared.clone();
    let max_operations = limits.max_operations;
    let max_memory = limits.max_memory_bytes;
    engine.on_progress(move |ops| {
        if max_operations > 0 && progress.count_operation() > max_operations {
            progress.fail_cell(super::session::too_many_operations(max_operations));
        }
        if let Some(why) = progress.memory_exceeded(max_memory) {
            progress.fail_cell(why);
        }
        if progress.cell_failed()
            || (ops % CLOCK_CHECK_EVERY == 0 && progress.clock.stop_reason().is_some())
        {
            Some(Dynamic::from(STOP_TOKEN))
        } else {
            None
        }
    });
    // Script functions cannot see outer variables, but models write helper
    // functions that use the context; resolve the session globals anywhere
    // a local of the same name does not shadow them.
    let globals = shared.clone();
    #[allow(deprecated)] // `on_var` is stable in practice; Rhai marks it volatile.
    engine.on_var(move |name, _, ctx| {
        if !matches!(name, "context" | "documents" | "query") || ctx.scope().contains(name) {
            return Ok(None);
        }
        Ok(globals.global(name))
    });

    let budget = super::budget::Budget::new(shared, limits);
    api_text::register(&mut engine, limits.max_array_len, &budget);
    api_array::register(&mut engine);
    api_sized::register(&mut engine, &budget, limits);
    api_print::register(&mut engine, shared, limits.max_string_bytes);
    api_util::register(&mut engine, shared, limits.max_string_bytes);
    register_show_vars(&mut engine, shared);
    engine
}

/// `show_vars()` needs the caller's scope, which only custom syntax can see.
///
/// Rhai tokenizes `()` as one token (the unit value), so the syntax accepts
/// both `show_vars()` and `show_vars( )`.
fn register_show_vars(engine: &mut Engine, shared: &Arc<Shared>) {
    let out = shared.clone();
    engine.register_custom_syntax_with_state_raw(
        "show_vars",
        |symbols, look_ahead, _| {
            Ok(match (symbols.len(), symbols.last().map(|s| s.as_str())) {
                (1, _) if look_ahead == "()" => Some("()".into()),
                (1, _) => Some("(".into()),
                (2, Some("(")) => Some(")".into()),
                _ => None,
            })
        },
        false,
        move |ctx, _, _| {
            let mut lines = Vec::new();
            // As the session keeps them after the cell: each name once, where
            // it was first declared, with its latest value. `iter_raw` walks
            // newest first, so the first entry seen of a name is its latest.
            let mut latest = std::collections::HashMap::new();
            let mut order = Vec::new();
            for (name, constant, value) in ctx.scope().iter_raw() {
                latest.entry(name).or_insert((constant, value));
                order.push(name);
            }
            let mut listed = std::collections::HashSet::new();
            for name in order.into_iter().rev() {
                if super::session::is_global(name) || !listed.insert(name) {
                    continue;
                }
                let Some(&(constant, value)) = latest.get(name) else {
                    continue;
                };
                lines.push(format!(
                    "{name}{}: {} ({})",
                    if constant { " (const)" } else { "" },
                    ctx.engine().map_type_name(value.type_name()),
                    super::session::describe_size(value)
                ));
            }
            if lines.is_empty() {
                out.print("no user variables yet");
            } else {
                out.print(&lines.join("\n"));
            }
            Ok(Dynamic::UNIT)
        },
    );
}
