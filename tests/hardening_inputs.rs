//! Hostile inputs through the real binary: endless devices and streams,
//! FIFOs nobody writes to, directories of more files than the kernel
//! allows maps, and cells started under an address-space limit.
//!
//! Every stream test uses a small `--max-stream-size`, so nothing here can
//! fill a disk, and every wait is bounded.

#![cfg(target_os = "linux")]

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use rlm::testing::{MockServer, Reply, Request};

mod common;
use common::{code, rlm};

/// How long any command may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

/// Runs a command to its end: exit code (-1 if killed), stdout, stderr. A
/// command still running after [`PATIENCE`] is killed and fails the test.
fn output(cmd: &mut Command) -> (i32, String, String) {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the rlm binary");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "rlm was still running after {PATIENCE:?}; stderr:\n{}",
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        stdout.join().unwrap(),
        stderr.join().unwrap(),
    )
}

fn no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "rlm panicked:\n{stderr}"
    );
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string; mkfifo only creates a file system entry.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Opens a FIFO for writing once a reader has opened it, trying for at most
/// [`PATIENCE`]: a plain open would block forever if no reader came.
fn open_writer(path: &Path) -> Option<File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path);
        match opened {
            Ok(file) => {
                // SAFETY: F_SETFL on a descriptor this function owns.
                unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, 0) };
                return Some(file);
            }
            // ENXIO: no reader yet.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return None,
        }
    }
}

#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

/// Sets a resource limit in the child just before it runs the binary, as
/// `prlimit` does.
fn with_limit(cmd: &mut Command, resource: Resource, bytes: u64) -> &mut Command {
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(resource, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        })
    }
}

fn script(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("script.rhai");
    std::fs::write(&path, body).unwrap();
    path
}

// ---------------------------------------------------------------------------
// Devices and streams
// ---------------------------------------------------------------------------

#[test]
fn endless_devices_named_as_context_are_refused_at_once_without_spooling() {
    let dir = tempfile::tempdir().unwrap();
    for device in ["/dev/zero", "/dev/urandom"] {
        let started = Instant::now();
        let (exit, stdout, stderr) = output(rlm(dir.path()).args(["stats", device]));
        assert_eq!(exit, 2, "{device}: {stdout}{stderr}");
        assert!(
            stderr.contains(device) && stderr.contains("character device"),
            "{stderr}"
        );
        assert!(stderr.contains("head -c"), "the message says how: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{device} was read"
        );
        no_panic(&stderr);
    }
    let s = script(dir.path(), "print(context.len());");
    let (exit, _, stderr) = output(
        rlm(dir.path())
            .arg("exec")
            .arg(&s)
            .args(["--context", "/dev/zero"]),
    );
    assert_eq!(exit, 2, "{stderr}");
    assert!(stderr.contains("character device"), "{stderr}");
}

#[test]
fn an_endless_standard_input_stops_at_the_stream_cap_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for snapshot in [false, true] {
        let mut cmd = rlm(dir.path());
        cmd.args(["stats", "-", "--max-stream-size", "1M"])
            .stdin(File::open("/dev/zero").unwrap());
        if snapshot {
            cmd.arg("--snapshot");
        }
        let (exit, stdout, stderr) = output(&mut cmd);
        assert_eq!(exit, 2, "snapshot {snapshot}: {stdout}{stderr}");
        assert!(
            stderr.contains("standard input is longer than the limit of 1.0 MiB for a stream")
                && stderr.contains("--max-stream-size"),
            "{stderr}"
        );
        no_panic(&stderr);
    }
}

#[test]
fn a_stream_of_exactly_the_cap_is_accepted_and_one_byte_more_is_not() {
    let dir = tempfile::tempdir().unwrap();
    for (len, ok) in [(4096, true), (4097, false)] {
        // A FIFO, not a file, on standard input: a file would be mapped, uncapped.
        let fifo = dir.path().join(format!("stdin-{len}.fifo"));
        mkfifo(&fifo);
        let path = fifo.clone();
        let writer = std::thread::spawn(move || {
            if let Some(mut w) = open_writer(&path) {
                let _ = w.write_all(&vec![b'x'; len]);
            }
        });
        let stdin = File::open(&fifo).unwrap();
        let (exit, stdout, stderr) = output(
            rlm(dir.path())
                .args(["stats", "-", "--json", "--max-stream-size", "4K"])
                .stdin(stdin),
        );
        writer.join().unwrap();
        assert_eq!(exit == 0, ok, "{len} bytes: {stderr}");
        if ok {
            let v: Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(v["bytes"], 4096);
        } else {
            assert!(stderr.contains("4.0 KiB"), "{stderr}");
        }
    }
}

#[test]
fn a_regular_file_on_standard_input_is_mapped_whatever_the_stream_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    std::fs::write(&path, "line\n".repeat(100_000)).unwrap();
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .args(["stats", "-", "--json", "--max-stream-size", "1K"])
            .stdin(File::open(&path).unwrap()),
    );
    assert_eq!(exit, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (v["bytes"].as_u64(), v["lines"].as_u64()),
        (Some(500_000), Some(100_000))
    );
}

#[test]
fn a_fifo_with_no_writer_fails_after_the_read_timeout_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("silent.fifo");
    mkfifo(&fifo);
    let started = Instant::now();
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .args(["stats", "--read-timeout", "1"])
            .arg(&fifo),
    );
    let took = started.elapsed();
    assert_eq!(exit, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("silent.fifo")
            && stderr.contains("no data from")
            && stderr.contains("for 1 s"),
        "{stderr}"
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(20),
        "{took:?}"
    );
}

#[test]
fn a_fifo_with_no_writer_is_bounded_by_the_timeout_of_exec_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("silent.fifo");
    mkfifo(&fifo);
    let s = script(dir.path(), "print(context.len());");
    let started = Instant::now();
    let (exit, _, stderr) = output(
        rlm(dir.path())
            .args(["exec", "--timeout", "1"])
            .arg(&s)
            .arg("--context")
            .arg(&fifo),
    );
    assert_eq!(exit, 2, "{stderr}");
    assert!(
        stderr.contains("no data from") && stderr.contains("for 1 s"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));

    let server = MockServer::start(|_| Reply::openai_text(&code("submit(1);"), 10, 10));
    let started = Instant::now();
    let (exit, _, stderr) = output(
        rlm(dir.path())
            .args(["run", "--quiet", "--timeout", "1", "--query", "q"])
            .args(common::loopback_models(&server))
            .arg("--context")
            .arg(&fifo),
    );
    assert_eq!(exit, 2, "{stderr}");
    assert!(
        stderr.contains("no data from") && stderr.contains("for 1 s"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        server.requests().is_empty(),
        "the run started without its context"
    );
}

#[test]
fn a_fifo_that_is_written_is_read_as_a_stream_and_a_stalled_writer_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("live.fifo");
    mkfifo(&fifo);
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        if let Some(mut w) = open_writer(&path) {
            let _ = w.write_all(b"one\ntwo\n");
        }
    });
    let (exit, stdout, stderr) = output(rlm(dir.path()).args(["stats", "--json"]).arg(&fifo));
    writer.join().unwrap();
    assert_eq!(exit, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (v["bytes"].as_u64(), v["lines"].as_u64()),
        (Some(8), Some(2))
    );

    // A writer that sends a line, then holds the FIFO open and goes quiet.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        if let Some(mut w) = open_writer(&path) {
            let _ = w.write_all(b"first line\n");
            let _ = rx.recv_timeout(PATIENCE);
        }
    });
    let started = Instant::now();
    let (exit, _, stderr) = output(
        rlm(dir.path())
            .args(["stats", "--read-timeout", "0.5"])
            .arg(&fifo),
    );
    let _ = tx.send(());
    writer.join().unwrap();
    assert_eq!(exit, 2, "{stderr}");
    assert!(
        stderr.contains("no data from") && stderr.contains("writer stalled"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn bad_stream_limits_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--max-stream-size", "0"),
        ("--max-stream-size", "lots"),
        ("--max-stream-size", "99999999T"),
        ("--read-timeout", "0"),
        ("--read-timeout", "NaN"),
        ("--read-timeout", "1e30"),
    ] {
        let (exit, _, stderr) = output(rlm(dir.path()).args(["stats", "-", flag, value]));
        assert_eq!(exit, 2, "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
        no_panic(&stderr);
    }
}

// ---------------------------------------------------------------------------
// A directory of more files than the kernel allows maps
// ---------------------------------------------------------------------------

/// `vm.max_map_count`: a process can hold this many memory maps at most.
fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65_530)
}

/// A fresh directory on tmpfs where there is one, so that creating tens of
/// thousands of files is fast.
fn fast_tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

#[test]
fn a_directory_of_more_files_than_the_kernel_allows_maps_loads_with_few_descriptors() {
    // One map per file once exhausted every map the process could make:
    // at 70,000 files (vm.max_map_count is 65,530 by default) `stats`
    // aborted and `exec` could not start its cell thread.
    let files = max_map_count() + 4_470;
    assert!(
        files < 1_000_000,
        "vm.max_map_count is too large to test here"
    );
    let dir = fast_tempdir();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    for i in 0..files {
        std::fs::write(corpus.join(format!("f{i:06}.txt")), format!("line {i}\n")).unwrap();
    }

    let mut stats = rlm(dir.path());
    stats.args(["stats", "--json", "--top", "1"]).arg(&corpus);
    // Loading holds no descriptor per file: 64 are plenty.
    with_limit(&mut stats, libc::RLIMIT_NOFILE, 64);
    let (exit, stdout, stderr) = output(&mut stats);
    no_panic(&stderr);
    assert_eq!(exit, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["documents"].as_u64(), Some(files as u64));
    assert_eq!(
        v["lines"].as_u64(),
        Some(2 * files as u64),
        "a header and a line each"
    );

    let s = script(
        dir.path(),
        r#"print(documents.len()); print(context.count_matches("line \\d+"));"#,
    );
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .arg("exec")
            .arg(&s)
            .arg("--context")
            .arg(&corpus),
    );
    no_panic(&stderr);
    assert_eq!(exit, 0, "{stderr}");
    assert_eq!(stdout, format!("{files}\n{files}\n"));
}

// ---------------------------------------------------------------------------
// Cells under an address-space limit
// ---------------------------------------------------------------------------

const GIB: u64 = 1 << 30;

#[test]
fn exec_starts_its_cell_under_a_one_gib_address_space_limit() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx.txt");
    std::fs::write(&ctx, "alpha\nbeta\n").unwrap();
    let s = script(
        dir.path(),
        "fn depth(n) { if n == 0 { 0 } else { 1 + depth(n - 1) } }\nprint(depth(50)); print(context.line_count());",
    );
    let mut cmd = rlm(dir.path());
    cmd.arg("exec").arg(&s).arg("--context").arg(&ctx);
    with_limit(&mut cmd, libc::RLIMIT_AS, GIB);
    let (exit, stdout, stderr) = output(&mut cmd);
    no_panic(&stderr);
    assert_eq!((exit, stdout.as_str()), (0, "50\n2\n"), "{stderr}");
}

/// The first user message of a request: a child's names its question.
fn first_user_message(req: &Request) -> String {
    req.json()["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn eight_rlm_batch_children_all_run_their_cells_under_an_eight_gib_address_space_limit() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx.txt");
    std::fs::write(&ctx, "a\nb\nc\nd\ne\nf\ng\nh\n").unwrap();
    let server = MockServer::start(|req| {
        if !req.is_root_turn() {
            return Reply::openai_text("unused", 1, 1);
        }
        if first_user_message(req).contains("Shout the letter") {
            // Each child's cell sleeps, so all eight cells run at once.
            return Reply::openai_text(&code("sleep(0.5); submit(context.to_upper());"), 10, 10);
        }
        Reply::openai_text(
            &code(r#"submit(rlm_batch("Shout the letter", context.chunk_lines(1)).join(""));"#),
            10,
            10,
        )
    });
    let mut cmd = rlm(dir.path());
    cmd.args([
        "run",
        "--quiet",
        "--query",
        "Shout every letter",
        "--concurrency",
        "8",
    ])
    .args(common::loopback_models(&server))
    .arg("--context")
    .arg(&ctx);
    with_limit(&mut cmd, libc::RLIMIT_AS, 8 * GIB);
    let (exit, stdout, stderr) = output(&mut cmd);
    no_panic(&stderr);
    assert_eq!(exit, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "A\nB\nC\nD\nE\nF\nG\nH", "{stderr}");
}
