//! The examples of examples/c, compiled with the machine's `cc` against
//! include/rlm.h and the cdylib `cargo test --workspace` built, and run:
//! a C program against a loopback model server, a C program whose model is
//! its own callback (also under valgrind, which must find no leak), and
//! Python's standard ctypes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rlm::testing::{MockServer, Reply};
use serde_json::Value;

/// Compiles examples/c/NAME.c into `dir` with every warning an error,
/// linked with the shared library.
fn compile(name: &str, dir: &Path) -> PathBuf {
    let lib = common::lib_dir();
    compile_with(name, dir, |c| {
        c.arg("-L")
            .arg(&lib)
            .arg("-lrlm_capi")
            .arg(format!("-Wl,-rpath,{}", lib.display()));
    })
}

fn compile_with(name: &str, dir: &Path, link: impl FnOnce(&mut Command)) -> PathBuf {
    let repo = common::repo();
    let exe = dir.join(name);
    let mut c = Command::new("cc");
    c.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-g"])
        .arg("-I")
        .arg(repo.join("include"))
        .arg(repo.join(format!("examples/c/{name}.c")));
    link(&mut c);
    let out = c.arg("-o").arg(&exe).output().expect("run cc (gcc)");
    assert!(
        out.status.success(),
        "cc {name}.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// A command with no model settings or keys from the environment.
fn clean(mut c: Command) -> Command {
    for var in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "RLM_MODEL",
        "RLM_SUB_MODEL",
        "ANTHROPIC_API_KEY",
    ] {
        c.env_remove(var);
    }
    c
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The JSON after `prefix ` on each line that has it.
fn lines_after(text: &str, prefix: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|j| serde_json::from_str(j).unwrap_or_else(|e| panic!("{e}: {j}")))
        .collect()
}

#[test]
fn ask_file_answers_over_a_file_against_a_loopback_server_and_prints_the_events() {
    let server = MockServer::start(|_| {
        Reply::openai_text(
            "```rhai\nsubmit(context.grep(`ERROR`).len());\n```",
            300,
            20,
        )
    });
    let dir = common::scratch();
    let log = dir.path().join("app.log");
    std::fs::write(
        &log,
        "ok\nERROR disk full\nok\nERROR timeout\nERROR again\n",
    )
    .unwrap();
    let exe = compile("ask_file", dir.path());
    let mut c = clean(Command::new(&exe));
    let out = c
        .arg(server.openai_url())
        .arg("gpt-5")
        .arg(&log)
        .arg("How many errors are logged?")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = &lines_after(&text, "result ")[0];
    assert_eq!(result["answer"], 3);
    assert_eq!(result["status"], "submitted");
    let events = lines_after(&text, "event ");
    let names: Vec<_> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "run_start",
            "root_request",
            "root_response",
            "cell",
            "final"
        ]
    );
    // The trace's format: every line names its run, depth and time.
    assert!(events
        .iter()
        .all(|e| e["run"] == "0" && e["depth"] == 0 && e["t"].is_number()));
    assert_eq!(events[0]["context"]["names"][0], log.display().to_string());
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn host_model_runs_on_its_own_callback_with_a_host_function_and_no_network() {
    let dir = common::scratch();
    let exe = compile("host_model", dir.path());
    let out = clean(Command::new(&exe)).output().unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = &lines_after(&text, "result ")[0];
    assert_eq!(
        result["answer"],
        serde_json::json!({"price": 3, "sum": "4", "lines": 2})
    );
    assert_eq!(result["usage"]["in-house"]["calls"], 2, "{result}");
    let events = lines_after(&text, "event ");
    let sub = events
        .iter()
        .find(|e| e["event"] == "sub_call")
        .expect("a sub_call event");
    assert_eq!(sub["answer"], "4");
}

#[test]
fn host_model_links_with_the_static_library_too() {
    let dir = common::scratch();
    let archive = common::lib_dir().join("librlm_capi.a");
    assert!(archive.is_file(), "{} was not built", archive.display());
    // The link line docs/embedding.md gives.
    let exe = compile_with("host_model", dir.path(), |c| {
        c.arg(&archive).args(["-lpthread", "-ldl", "-lm"]);
    });
    let out = clean(Command::new(&exe)).output().unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines_after(&text, "result ")[0]["answer"]["price"], 3);
}

#[test]
fn valgrind_finds_no_leak_in_a_full_run_with_events_and_a_host_model() {
    // No suppressions: every definite or indirect loss fails the test.
    let dir = common::scratch();
    let exe = compile("host_model", dir.path());
    let out = clean(Command::new("valgrind"))
        .args([
            "--leak-check=full",
            "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99",
        ])
        .arg(&exe)
        .output()
        .expect("run valgrind");
    let (text, report) = (
        stdout(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "valgrind:\n{report}\nstdout:\n{text}"
    );
    assert!(report.contains("definitely lost: 0 bytes"), "{report}");
    assert!(report.contains("indirectly lost: 0 bytes"), "{report}");
    assert!(report.contains("ERROR SUMMARY: 0 errors"), "{report}");
    assert!(text.contains("\"status\":\"submitted\""), "{text}");
}

#[test]
fn python_ctypes_drives_a_run_from_the_header_alone() {
    let script = common::repo().join("examples/c/ctypes_demo.py");
    let out = clean(Command::new("python3"))
        .arg(&script)
        .arg(common::cdylib())
        .output()
        .expect("run python3");
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("status submitted"), "{text}");
    assert!(text.contains("answer HELLO FROM PYTHON!"), "{text}");
    assert!(
        text.contains("events run_start root_request root_response cell final"),
        "{text}"
    );
}
