//! Replays the fuzz seeds and every saved crash through the fuzz target
//! bodies (`rlm::fuzzing`), on stable, so CI runs what the fuzzer ran
//! without needing nightly or libFuzzer. `fuzz/run.sh` does the fuzzing.

use std::path::{Path, PathBuf};

// As in the `rlm` binary and the fuzz targets: sessions count what they hold.
#[global_allocator]
static ALLOCATOR: rlm::alloc::Counting = rlm::alloc::Counting::system();

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz");

/// The files of `fuzz/<kind>/<target>/`, sorted; none if the folder is absent.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(FUZZ_DIR).join(kind).join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Runs `run` on each input, naming the input that panics.
fn replay(target: &str, run: fn(&[u8]), files: &[PathBuf]) {
    for file in files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!(
                "fuzz target `{target}` fails on {}\n(reproduce with `cargo +nightly fuzz run {target} {}`)",
                file.display(),
                file.display()
            );
        }
    }
}

#[test]
fn every_target_has_a_fuzz_binary_and_seeds() {
    for (name, _) in rlm::fuzzing::TARGETS {
        let binary = Path::new(FUZZ_DIR).join(format!("fuzz_targets/{name}.rs"));
        assert!(binary.is_file(), "no {}", binary.display());
        assert!(
            inputs("seeds", name).len() >= 4,
            "fuzz/seeds/{name} needs seed inputs"
        );
    }
    let binaries = std::fs::read_dir(Path::new(FUZZ_DIR).join("fuzz_targets")).unwrap();
    for entry in binaries {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        assert!(
            rlm::fuzzing::TARGETS.iter().any(|(n, _)| *n == stem),
            "fuzz target {stem} is not in rlm::fuzzing::TARGETS, so CI does not replay it"
        );
    }
}

#[test]
fn seeds_and_regressions_pass_every_target() {
    for (name, run) in rlm::fuzzing::TARGETS {
        replay(name, *run, &inputs("seeds", name));
        replay(name, *run, &inputs("regressions", name));
    }
}
