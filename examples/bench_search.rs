//! One search over one file from the command line, for `benches/compare.sh`.
//!
//! ```text
//! bench_search count <literal> <file>            Text::count
//! bench_search find <literal> <file>             Text::find (offset, or -1)
//! bench_search count_matches <regex> <file>      Text::count_matches, ASCII \b (the default)
//! bench_search count_matches_unicode <regex> <file>
//!                                                the same with Unicode \b
//! bench_search open <file>                       Context::open and len only
//! bench_search gen <bytes> <file>                write the benchmark corpus
//! bench_search gen_non_ascii <bytes> <file>      ... with accented words mixed in
//! bench_search gen_dir <bytes> <dir>             the corpus cut into 1,000 files
//! ```
//!
//! A `<file>` may also be a directory: the context then holds every file
//! in it, as `rlm` would load them.
//!
//! A search prints one line, `result=N bytes=N open_s=S search_s=S
//! rss_anon_kib=N rss_file_kib=N hwm_kib=N`, so the script can check the
//! result against the other tools and separate the time spent opening from
//! the time spent searching. The memory figures come from
//! `/proc/self/status` (omitted elsewhere): pages of a mapped file count as
//! `rss_file`, and are the page cache, not memory this process allocated.
//! `RAYON_NUM_THREADS=1` runs the search on one thread. `peak_anon_kib` is
//! the largest `RssAnon` a sampling thread saw during open and search
//! (every millisecond): the memory the search allocated, beyond the
//! mapped files.

use std::process::ExitCode;
use std::time::Instant;

use rlm::{Context, PatternOptions};

#[path = "../benches/support/corpus.rs"]
#[allow(dead_code)]
mod corpus;

const USAGE: &str =
    "usage: bench_search <count|find|count_matches|count_matches_unicode> <pattern> <file>
       bench_search open <file>
       bench_search <gen|gen_non_ascii> <bytes> <file>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args.as_slice() {
        ["open", file] => search(file, |_| Ok(0)),
        ["gen", size, file] => gen(size, file, false),
        ["gen_non_ascii", size, file] => gen(size, file, true),
        ["gen_dir", size, dir] => gen_dir(size, dir),
        ["count", needle, file] => search(file, |ctx| Ok(ctx.text().count(needle)? as i64)),
        ["find", needle, file] => search(file, |ctx| {
            Ok(ctx.text().find(needle)?.map_or(-1, |p| p as i64))
        }),
        ["count_matches", regex, file] => {
            search(file, |ctx| Ok(ctx.text().count_matches(*regex)? as i64))
        }
        ["count_matches_unicode", regex, file] => search(file, |ctx| {
            let options = PatternOptions {
                unicode_word_boundary: true,
                ..PatternOptions::default()
            };
            Ok(ctx.text().count_matches((*regex, options))? as i64)
        }),
        _ => Err(USAGE.to_string()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench_search: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Opens `file`, runs `op` on it and prints the result with its timings.
fn search(file: &str, op: impl FnOnce(&Context) -> rlm::Result<i64>) -> Result<(), String> {
    let sampler = PeakAnon::start();
    let started = Instant::now();
    let ctx = Context::open(&[file]).map_err(|e| e.to_string())?;
    let bytes = ctx.len();
    let opened = started.elapsed();
    let result = op(&ctx).map_err(|e| e.to_string())?;
    let searched = started.elapsed() - opened;
    let peak = sampler.stop();
    println!(
        "result={result} bytes={bytes} open_s={:.6} search_s={:.6}{} peak_anon_kib={peak}",
        opened.as_secs_f64(),
        searched.as_secs_f64(),
        memory()
    );
    Ok(())
}

/// A thread that samples `RssAnon` until stopped, keeping the largest.
struct PeakAnon {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl PeakAnon {
    fn start() -> PeakAnon {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_anon_kib());
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            peak.max(rss_anon_kib())
        });
        PeakAnon { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// `RssAnon` from `/proc/self/status` in KiB, or 0.
fn rss_anon_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Writes about `size` bytes of the corpus to `dir` as 1,000 files of whole lines.
fn gen_dir(size: &str, dir: &str) -> Result<(), String> {
    const FILES: usize = 1000;
    let size: usize = size
        .parse()
        .map_err(|e| format!("bad size {size:?}: {e}"))?;
    let corpus = corpus::generate(size, false);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
    let mut at = 0;
    for i in 0..FILES {
        let nominal = (corpus.len() * (i + 1) / FILES).max(at);
        let end = if i + 1 == FILES {
            corpus.len()
        } else {
            corpus[nominal..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(corpus.len(), |p| nominal + p + 1)
        };
        let path = format!("{dir}/part-{i:04}.txt");
        std::fs::write(&path, &corpus[at..end]).map_err(|e| format!("cannot write {path}: {e}"))?;
        at = end;
    }
    Ok(())
}

/// Writes about `size` bytes of the benchmark corpus to `file`.
fn gen(size: &str, file: &str, non_ascii: bool) -> Result<(), String> {
    let size: usize = size
        .parse()
        .map_err(|e| format!("bad size {size:?}: {e}"))?;
    std::fs::write(file, corpus::generate(size, non_ascii))
        .map_err(|e| format!("cannot write {file}: {e}"))
}

/// ` rss_anon_kib=.. rss_file_kib=.. hwm_kib=..` from `/proc/self/status`, or "".
fn memory() -> String {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return String::new();
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or("?")
            .to_string()
    };
    format!(
        " rss_anon_kib={} rss_file_kib={} hwm_kib={}",
        field("RssAnon:"),
        field("RssFile:"),
        field("VmHWM:")
    )
}
