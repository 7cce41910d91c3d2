//! Finding what `cargo test --workspace` built, without building anything.
//!
//! The tests must not run a nested `cargo build`: it would resolve other
//! features and rebuild every dependency. Cargo builds the cdylib and the
//! staticlib into the profile's `deps/` before it runs these tests, and
//! the test binary itself lives in that `deps/`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root (the workspace's).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("capi/ has a parent")
        .to_path_buf()
}

/// The directory holding `librlm_capi.so` and `.a`, found from this test
/// binary's own path (target/debug/deps/abi-HASH).
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the test binary's directory");
    // `cargo test` leaves the libraries in deps/; target/debug/ gets a copy
    // only from `cargo build`, which may be older, so deps/ comes first.
    let candidates = [
        Some(deps.to_path_buf()),
        deps.parent().map(Path::to_path_buf),
    ];
    // Both libraries from the same place, so a stale copy in one
    // directory is never paired with a fresh one in the other.
    for dir in candidates.into_iter().flatten() {
        if dir.join("librlm_capi.so").is_file() && dir.join("librlm_capi.a").is_file() {
            return dir;
        }
    }
    panic!(
        "librlm_capi.so and librlm_capi.a are not next to {} nor in its parent: build the tests with \
         `cargo test --workspace`, which builds the cdylib first",
        exe.display()
    )
}

/// The shared library.
pub fn cdylib() -> PathBuf {
    lib_dir().join("librlm_capi.so")
}

/// A scratch directory for compiled examples.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}
