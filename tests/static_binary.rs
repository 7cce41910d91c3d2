//! The static build's checks (`dist/build-static.sh`): an empty chroot that
//! holds only the binary, /etc/hosts, /etc/resolv.conf and a CA file runs a
//! replay, a live loopback run by IP and by host name, and HTTPS.
//!
//! Building that binary takes ten minutes (fat LTO), too long for every
//! `cargo test`, so the chroot checks run only on a binary built before:
//!
//! ```sh
//! dist/build-static.sh                       # builds and checks, or
//! RLM_STATIC_BINARY=target/x86_64-unknown-linux-gnu/dist/rlm cargo test --test static_binary
//! ```
//!
//! Without `RLM_STATIC_BINARY` (as in CI) only the script's syntax is checked.

use std::path::Path;
use std::process::Command;

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/build-static.sh")
}

#[test]
fn the_build_script_and_its_model_server_parse() {
    let o = Command::new("bash")
        .arg("-n")
        .arg(script())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/loopback_model.py");
    let source = std::fs::read_to_string(&server).unwrap();
    assert!(
        source.contains("handle_timeout"),
        "the server must stop by itself"
    );
}

#[test]
fn a_prebuilt_static_binary_passes_the_empty_chroot_checks() {
    let Some(binary) = std::env::var_os("RLM_STATIC_BINARY") else {
        eprintln!("skipped: set RLM_STATIC_BINARY to a binary from dist/build-static.sh");
        return;
    };
    let o = Command::new(script())
        .arg("--check")
        .arg(&binary)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for check in [
        "1. replay",
        "2. live run by IP",
        "3. live run by name",
        "4. HTTPS",
    ] {
        assert!(
            stdout.contains(&format!("ok: {check}")) || stdout.contains("skipped"),
            "{stdout}"
        );
    }
}
