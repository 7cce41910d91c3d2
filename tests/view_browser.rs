//! The page `rlm view` writes, driven in headless Chromium through
//! playwright-core (tests/browser/view.mjs): a recorded three-level run is
//! opened down to its grandchild's sub-call, its total cost is the trace's,
//! printed HTML stays text, and `rlm view --serve` follows a trace as it
//! is written. Needs /usr/bin/chromium, `node` and `.ci/node/node_modules`
//! (installed by `.ci/setup`); without them the test says so and passes,
//! unless RLM_REQUIRE_BROWSER=1 (as in `.ci/run`), when it fails.

mod common;
mod view_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The browser's tools, or why they are missing.
fn tools() -> Result<PathBuf, String> {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/node/node_modules");
    if !Path::new("/usr/bin/chromium").exists() {
        return Err("/usr/bin/chromium is not installed (Debian package chromium)".into());
    }
    if !modules.join("playwright-core").exists() {
        return Err(format!(
            "{} has no playwright-core (run .ci/setup)",
            modules.display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(modules),
        _ => Err("node is not on PATH".into()),
    }
}

fn node(modules: &Path, env: &[(&str, String)]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/view.mjs");
    let mut c = Command::new("node");
    c.arg(script).env("RLM_NODE_MODULES", modules);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the browser script failed:\n{text}");
    eprintln!("{text}");
}

#[test]
fn the_page_of_a_recursive_run_opens_down_to_a_grandchild_and_follows_a_live_trace() {
    let modules = match tools() {
        Ok(m) => m,
        Err(why) if std::env::var("RLM_REQUIRE_BROWSER").is_ok_and(|v| v == "1") => {
            panic!("RLM_REQUIRE_BROWSER=1 but the browser test cannot run: {why}")
        }
        Err(why) => {
            eprintln!("skipping the browser test: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let server = view_support::server();
    let trace = view_support::record(dir.path(), &server);
    let page = dir.path().join("run.html");
    let (code, _, err) = common::output(
        common::rlm(dir.path())
            .arg("view")
            .arg(&trace)
            .arg("-o")
            .arg(&page),
    );
    assert_eq!(code, 0, "{err}");
    let events = common::jsonl(&trace);
    let cost = events
        .iter()
        .find(|e| e["event"] == "final")
        .and_then(|e| e["cost_usd"].as_f64())
        .expect("a priced run has a cost");
    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/view-screenshot.png");

    // Watch mode: the trace up to the first sub-call exists; the rest is
    // appended by the browser script while the page is open.
    let live = dir.path().join("live.jsonl");
    let rest = dir.path().join("rest.jsonl");
    let text = std::fs::read_to_string(&trace).unwrap();
    let cut = text
        .find("\"event\":\"sub_call\"")
        .and_then(|i| text[..i].rfind('\n'))
        .unwrap()
        + 1;
    std::fs::write(&live, &text[..cut]).unwrap();
    std::fs::write(&rest, &text[cut..]).unwrap();
    let mut serving = common::rlm(dir.path())
        .args(["view", "--serve"])
        .arg(&live)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(serving.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_string();

    let result = std::panic::catch_unwind(|| {
        node(
            &modules,
            &[
                ("PAGE_URL", format!("file://{}", page.display())),
                ("EXPECT_COST", format!("${cost:.4}")),
                ("SCREENSHOT", screenshot.display().to_string()),
                ("WATCH_URL", url.clone()),
                ("TRACE", live.display().to_string()),
                ("APPEND", rest.display().to_string()),
            ],
        )
    });
    let _ = serving.kill();
    let _ = serving.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(screenshot.exists());
}
