//! `rlm stats` through the binary: text and JSON, stdin, and errors.

use std::io::Write;
use std::process::{Command, Stdio};

fn rlm(args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn stats_of_a_directory_as_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.txt"), "a\nb\nc\n").unwrap();
    std::fs::write(dir.path().join("small.txt"), "x").unwrap();
    std::fs::write(dir.path().join("blob.bin"), b"\0\0\0").unwrap();
    let out = rlm(&["stats", dir.path().to_str().unwrap(), "--json"], b"");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["documents"], 2);
    assert_eq!(v["largest"][0]["name"], "big.txt");
    assert_eq!(v["largest"][0]["lines"], 3);
    assert_eq!(v["skipped"].as_array().unwrap().len(), 1);
    // Headers are part of the context: "==> big.txt <==\n" and "==> small.txt <==\n".
    assert_eq!(v["bytes"], 6 + 1 + 16 + 18);
}

#[test]
fn zero_byte_stdin_and_piped_stdin() {
    let out = rlm(&["stats", "-"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("size:       0 bytes") && text.contains("lines:      0"),
        "{text}"
    );
    let out = rlm(&["stats", "-", "--json"], b"one\ntwo\n");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["bytes"].as_u64(), v["lines"].as_u64()),
        (Some(8), Some(2))
    );
}

#[test]
fn a_missing_path_exits_2_naming_it() {
    let out = rlm(&["stats", "/no/such/corpus"], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/no/such/corpus") && err.contains("no such file"),
        "{err}"
    );
}
