//! Throughput of the context engine's hot paths: search and chunking.
//!
//! Every benchmark runs on one 64 MiB English-like corpus generated in
//! process (see `support/corpus.rs`), so results are comparable between
//! machines and runs without any input file. Throughput is in bytes of
//! haystack per second. Sample counts and times are kept low so the whole
//! suite takes about two minutes on two cores; pass criterion's own flags
//! (`cargo bench --bench text_ops -- --measurement-time 10`) for tighter
//! numbers.
//!
//! `benches/compare.sh` measures the same searches against ripgrep and
//! Python on a 1 GiB file.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use criterion::{measurement::WallTime, SamplingMode};
use rlm::{Context, GrepOptions, PatternOptions, Text};

#[path = "support/corpus.rs"]
mod corpus;

const CORPUS_BYTES: usize = 64 << 20;
/// The Unicode `\b` slow path runs at tens of MB/s; keep its input small.
const TRAP_BYTES: usize = 4 << 20;

/// A group measuring bytes per second over `text`, with short, flat sampling.
fn group<'a>(c: &'a mut Criterion, name: &str, text: &Text) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(text.len() as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

fn search(c: &mut Criterion) {
    let ctx = Context::from_bytes("corpus", corpus::generate(CORPUS_BYTES, false));
    let text = ctx.text();
    // Grep and find_any report line numbers; build the line index once, as
    // the first search of a session would.
    black_box(text.line_count());
    let needles = corpus::needles();

    let mut g = group(c, "search", &text);
    g.bench_function("find/last_literal", |b| {
        b.iter(|| text.find(black_box(corpus::LAST_LITERAL)).unwrap())
    });
    g.bench_function("count/rare_literal", |b| {
        b.iter(|| text.count(black_box(corpus::RARE_LITERAL)).unwrap())
    });
    g.bench_function("count_matches/rare_regex", |b| {
        b.iter(|| text.count_matches(black_box(corpus::RARE_REGEX)).unwrap())
    });
    g.bench_function("count_matches/frequent_regex", |b| {
        b.iter(|| {
            text.count_matches(black_box(corpus::FREQUENT_REGEX))
                .unwrap()
        })
    });
    g.bench_function("find_any/100_needles", |b| {
        b.iter(|| text.find_any(black_box(&needles), usize::MAX).unwrap())
    });
    g.bench_function("grep/1pct_lines", |b| {
        let options = GrepOptions::default();
        b.iter(|| {
            text.grep(black_box(corpus::GREP_PATTERN), &options)
                .unwrap()
        })
    });
    g.finish();
}

fn chunking(c: &mut Criterion) {
    let ctx = Context::from_bytes("corpus", corpus::generate(CORPUS_BYTES, false));
    let text = ctx.text();
    black_box(text.line_count());

    let mut g = group(c, "chunk", &text);
    g.bench_function("chunks/100k", |b| {
        b.iter(|| text.chunks(black_box(100_000), 0).unwrap())
    });
    g.bench_function("chunk_lines/1000", |b| {
        b.iter(|| text.chunk_lines(black_box(1000)).unwrap())
    });
    g.bench_function("parts/64", |b| {
        b.iter(|| text.parts(black_box(64)).unwrap())
    });
    g.finish();
}

/// `\w+ing\b` on text with accented words: the ASCII `\b` rewrite against
/// the Unicode `\b` that makes the regex crate leave its DFA.
fn unicode_trap(c: &mut Criterion) {
    let ctx = Context::from_bytes("mixed", corpus::generate(TRAP_BYTES, true));
    let text = ctx.text();
    let unicode = PatternOptions {
        unicode_word_boundary: true,
        ..PatternOptions::default()
    };

    let mut g = group(c, "unicode_trap", &text);
    g.bench_function("ascii_word_boundary", |b| {
        b.iter(|| text.count_matches(black_box(corpus::ING_REGEX)).unwrap())
    });
    g.bench_function("unicode_word_boundary", |b| {
        b.iter(|| {
            text.count_matches((black_box(corpus::ING_REGEX), unicode))
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, search, chunking, unicode_trap);
criterion_main!(benches);
