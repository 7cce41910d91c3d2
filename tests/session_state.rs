//! The session keeps exactly the variables a reader of the cells expects.
//!
//! Random sequences of cells (`let`, re-`let`, assignment, shadowing in
//! blocks, closures and functions, failing cells, cells that hit the
//! operation limit, cells that do not parse) run in a real session. After
//! every cell, its variables are compared with a reference model: a plain
//! map where the last top-level `let` wins, a failing cell keeps what it
//! assigned before it failed, and a cell that does not parse changes
//! nothing.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rlm::dsl::{Limits, Session, SessionBuilder};
use rlm::Context;
use serde_json::{json, Value};

const NAMES: &[&str] = &["a", "b", "c", "hits", "names"];

/// One statement of a cell, as the reference model understands it.
#[derive(Debug, Clone)]
enum Stmt {
    /// `let x = n;`
    Let(usize, i64),
    /// `x = n;` (fails if `x` is not defined)
    Assign(usize, i64),
    /// `let x = x * 1 + n;` (fails if `x` is not defined or not a number)
    LetFromSelf(usize, i64),
    /// `{ let x = n; }`: shadows only inside the block.
    BlockLet(usize, i64),
    /// `if true { let x = n; }`
    IfLet(usize, i64),
    /// `let x = [n].map(|y| y + m)[0];`: the closure parameter shadows `y`.
    ClosureShadow(usize, usize, i64, i64),
    /// `fn pick(y) { let y = n; y } let x = pick(m);`
    FnShadow(usize, usize, i64, i64),
    /// `for i in 0..2 { x = n; }` (fails if `x` is not defined)
    LoopAssign(usize, i64),
    /// `let x = [n, m];`: an array value.
    LetArray(usize, i64, i64),
    /// `throw "boom";`
    Throw,
    /// `loop { k += 1; }`: stops at the operation limit.
    Endless,
}

impl Stmt {
    /// The statement's source; `at` (its place in the cell) keeps function
    /// names apart, since one cell may not define a function twice.
    fn code(&self, at: usize) -> String {
        let n = |i: &usize| NAMES[*i];
        match self {
            Stmt::Let(x, v) => format!("let {} = {v};", n(x)),
            Stmt::Assign(x, v) => format!("{} = {v};", n(x)),
            Stmt::LetFromSelf(x, v) => format!("let {0} = {0} * 1 + {v};", n(x)),
            Stmt::BlockLet(x, v) => format!("{{ let {} = {v}; }}", n(x)),
            Stmt::IfLet(x, v) => format!("if true {{ let {} = {v}; }}", n(x)),
            Stmt::ClosureShadow(x, y, v, m) => {
                format!("let {} = [{v}].map(|{1}| {1} + {m})[0];", n(x), n(y))
            }
            Stmt::FnShadow(x, y, v, m) => {
                format!(
                    "fn pick{at}({1}) {{ let {1} = {v}; {1} }} let {0} = pick{at}({m});",
                    n(x),
                    n(y)
                )
            }
            Stmt::LoopAssign(x, v) => format!("for i in 0..2 {{ {} = {v}; }}", n(x)),
            Stmt::LetArray(x, v, m) => format!("let {} = [{v}, {m}];", n(x)),
            Stmt::Throw => "throw \"boom\";".into(),
            Stmt::Endless => "let k = 0; loop { k += 1; }".into(),
        }
    }

    /// Applies the statement to the reference; `false` if it fails (and so
    /// ends the cell).
    fn apply(&self, vars: &mut BTreeMap<String, Value>) -> bool {
        let name = |i: &usize| NAMES[*i].to_string();
        match self {
            Stmt::Let(x, v) => {
                vars.insert(name(x), json!(v));
            }
            Stmt::Assign(x, v) | Stmt::LoopAssign(x, v) => match vars.get_mut(&name(x)) {
                Some(slot) => *slot = json!(v),
                None => return false,
            },
            Stmt::LetFromSelf(x, v) => match vars.get(&name(x)).and_then(Value::as_i64) {
                Some(old) => {
                    vars.insert(name(x), json!(old + v));
                }
                // Not defined, or an array (which has no `*`).
                None => return false,
            },
            Stmt::BlockLet(..) | Stmt::IfLet(..) => {}
            Stmt::ClosureShadow(x, _, v, m) => {
                vars.insert(name(x), json!(v + m));
            }
            Stmt::FnShadow(x, _, v, _) => {
                vars.insert(name(x), json!(v));
            }
            Stmt::LetArray(x, v, m) => {
                vars.insert(name(x), json!([v, m]));
            }
            Stmt::Throw => return false,
            Stmt::Endless => {
                // `k` is declared before the loop fails.
                vars.insert("k".into(), Value::Null);
                return false;
            }
        }
        true
    }
}

/// A cell: its statements, and whether a syntax error spoils it whole.
#[derive(Debug, Clone)]
struct Cell {
    stmts: Vec<Stmt>,
    broken: bool,
}

impl Cell {
    fn code(&self) -> String {
        let mut code: Vec<String> = self
            .stmts
            .iter()
            .enumerate()
            .map(|(at, st)| st.code(at))
            .collect();
        if self.broken {
            code.push("let = ;".into());
        }
        code.join("\n")
    }
}

fn stmt() -> impl Strategy<Value = Stmt> {
    let x = 0..NAMES.len();
    let v = -50i64..50;
    prop_oneof![
        4 => (x.clone(), v.clone()).prop_map(|(x, v)| Stmt::Let(x, v)),
        2 => (x.clone(), v.clone()).prop_map(|(x, v)| Stmt::Assign(x, v)),
        2 => (x.clone(), v.clone()).prop_map(|(x, v)| Stmt::LetFromSelf(x, v)),
        1 => (x.clone(), v.clone()).prop_map(|(x, v)| Stmt::BlockLet(x, v)),
        1 => (x.clone(), v.clone()).prop_map(|(x, v)| Stmt::IfLet(x, v)),
        1 => (x.clone(), x.clone(), v.clone(), v.clone())
            .prop_map(|(x, y, v, m)| Stmt::ClosureShadow(x, y, v, m)),
        1 => (x.clone(), x.clone(), v.clone(), v.clone())
            .prop_map(|(x, y, v, m)| Stmt::FnShadow(x, y, v, m)),
        1 => (x.clone(), v.clone()).prop_map(|(x, v)| Stmt::LoopAssign(x, v)),
        1 => (x, v.clone(), v).prop_map(|(x, v, m)| Stmt::LetArray(x, v, m)),
        1 => Just(Stmt::Throw),
        1 => Just(Stmt::Endless),
    ]
}

fn cell() -> impl Strategy<Value = Cell> {
    (
        prop::collection::vec(stmt(), 1..5),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(stmts, broken)| Cell { stmts, broken })
}

fn session() -> Session {
    let limits = Limits {
        max_operations: 20_000,
        ..Limits::default()
    };
    SessionBuilder::new()
        .limits(limits)
        .build(&Context::from_string("doc", "alpha\nbeta\n"))
}

/// The session's variables, with `k` (the endless loop's counter, whose
/// value depends on where the limit struck) reduced to its presence.
fn actual(session: &Session) -> BTreeMap<String, Value> {
    session
        .variables()
        .into_iter()
        .map(|(name, value)| {
            let value = if name == "k" { Value::Null } else { value };
            (name, value)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn variables_after_every_cell_match_the_reference(cells in prop::collection::vec(cell(), 1..8)) {
        let mut s = session();
        let mut reference: BTreeMap<String, Value> = BTreeMap::new();
        for (i, cell) in cells.iter().enumerate() {
            let out = s.run_cell(&cell.code());
            // A cell that does not parse runs nothing; otherwise statements
            // apply in order until one fails.
            let expect_error = cell.broken || !cell.stmts.iter().all(|st| st.apply(&mut reference));
            prop_assert_eq!(
                out.error.is_some(),
                expect_error,
                "cell {} ({}) error: {:?}",
                i + 1,
                cell.code(),
                out.error
            );
            prop_assert_eq!(actual(&s), reference.clone(), "after cell {}:\n{}", i + 1, cell.code());
        }
        // Every variable is readable by a later cell with its value.
        for (name, value) in &reference {
            if name == "k" {
                continue;
            }
            let out = s.run_cell(&format!("print(to_json({name}));"));
            prop_assert_eq!(out.error, None);
            prop_assert_eq!(out.output.trim(), value.to_string());
        }
    }
}

#[test]
fn the_reported_repro_keeps_every_variable() {
    let mut s = session();
    s.run_cell("let names = [1, 2]; let hits = [3];");
    s.run_cell(r#"let d = "abc"; let off = 1; let hits = [4, 5];"#);
    let out = s.run_cell("print(d.len());");
    assert_eq!(out.error, None);
    assert_eq!(out.output, "3\n");
    let names: Vec<String> = s.variables().into_iter().map(|(n, _)| n).collect();
    // A re-declared variable keeps the place of its first declaration.
    assert_eq!(names, ["names", "hits", "d", "off"]);
}

#[test]
fn a_cell_over_the_variable_limit_keeps_the_session_usable() {
    let limits = Limits {
        max_variables: 8,
        ..Limits::default()
    };
    let mut s = SessionBuilder::new()
        .limits(limits)
        .build(&Context::from_string("doc", "x\n"));
    assert_eq!(s.run_cell("let a = 1; let b = 2;").error, None);
    let code: String = (0..20).map(|i| format!("let v{i} = {i};\n")).collect();
    let err = s.run_cell(&code).error.unwrap_or_default();
    assert!(err.contains("variables"), "{err}");
    // The earlier variables survive and new ones can still be declared.
    let out = s.run_cell("let c = a + b; print(c);");
    assert_eq!(out.error, None);
    assert_eq!(out.output, "3\n");
}
