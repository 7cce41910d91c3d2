//! An error that comes from the operating system names it once. The
//! messages used to carry the OS error and also return it as their source,
//! so the binary's `{:#}` printed it twice.

mod common;

fn assert_said_once(args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tasks.jsonl"),
        "{\"id\":\"a\",\"query\":\"q\",\"context_text\":\"x\"}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("ctx.txt"), "some text\n").unwrap();
    let (code, _, stderr) = common::output(common::rlm(dir.path()).args(args));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr.matches("os error 2").count(),
        1,
        "{args:?}: {stderr}"
    );
}

#[test]
fn a_results_file_in_a_missing_directory() {
    assert_said_once(&[
        "batch",
        "tasks.jsonl",
        "--out",
        "no/such/dir/out.jsonl",
        "--model",
        "m",
        "--base-url",
        "http://127.0.0.1:9/v1",
    ]);
}

#[test]
fn a_missing_config_file() {
    assert_said_once(&[
        "run", "-c", "ctx.txt", "-q", "q", "--model", "m", "--config", "no.toml",
    ]);
}

#[test]
fn a_trace_in_a_missing_directory() {
    assert_said_once(&[
        "run",
        "-c",
        "ctx.txt",
        "-q",
        "q",
        "--model",
        "m",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--trace",
        "no/such/dir/trace.jsonl",
    ]);
}
