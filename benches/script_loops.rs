//! Script loops that grow a value one step at a time, as models write
//! them: `push` onto an array, insert into a map, append to a string.
//!
//! They must stay linear. Before the session's memory was counted by the
//! allocator (`rlm::alloc`), Rhai re-measured the whole array after every
//! `push` (100,000 pushes took 18.3 s), and its string interner made every
//! `${i}` cost 30,000 instructions. The bench installs the counting
//! allocator, as the `rlm` binary does, and runs each loop at two sizes so
//! that the ratio between them shows the growth: linear is 10x.
//!
//! For figures that do not move with the machine's load, count
//! instructions instead: `valgrind --tool=callgrind target/release/rlm exec
//! script.rhai --context FILE`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use rlm::dsl::{Limits, SessionBuilder};
use rlm::Context;

#[global_allocator]
static ALLOCATOR: rlm::alloc::Counting = rlm::alloc::Counting::system();

const LOOPS: &[(&str, &str)] = &[
    (
        "push",
        "let a = []; for i in 0..N { a.push(`item ${i}`); } a.len()",
    ),
    (
        "map_insert",
        "let m = #{}; for i in 0..N { m[`k${i}`] = i; } m.len()",
    ),
    (
        "string_append",
        "let t = \"\"; for i in 0..N { t += `line ${i}\\n`; } t.len()",
    ),
];

fn loops(c: &mut Criterion) {
    let ctx = Context::from_string("bench", "x\n");
    let limits = Limits {
        max_operations: 1_000_000_000,
        cell_timeout: Duration::from_secs(600),
        ..Limits::default()
    };
    for (name, code) in LOOPS {
        let mut g = c.benchmark_group(*name);
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_secs(3));
        // 1,000,000 is issue 14's size (each under 2 s); 100,000 beside it
        // shows the growth.
        for n in [100_000u64, 1_000_000] {
            g.throughput(Throughput::Elements(n));
            let script = code.replace('N', &n.to_string());
            g.bench_function(n.to_string(), |b| {
                b.iter(|| {
                    let mut session = SessionBuilder::new().limits(limits.clone()).build(&ctx);
                    let out = session.run_cell(black_box(&script));
                    assert!(out.error.is_none(), "{}", out.render());
                    out
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, loops);
criterion_main!(benches);
