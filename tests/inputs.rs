//! Inputs as users have them, through the binary: compressed files (found
//! by their first bytes), corrupt archives and decompression bombs, and
//! directory walks that honour `.gitignore` and `.ignore`; what was
//! skipped, and why, in `rlm stats` and on `rlm exec`'s standard error.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::{output, rlm};

const TEXT: &str = "2025-01-01 ERROR disk full on /var\n2025-01-02 INFO ok\n";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut e =
        lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn stats_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = output(rlm(dir).arg("stats").args(args).arg("--json"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn names(v: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = v["largest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// `rlm exec` of `script` over `context`; exit code, stdout, stderr.
fn exec(dir: &Path, script: &str, context: &[&str]) -> (i32, String, String) {
    // Outside `dir`, so that a walk of `dir` does not find the script.
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(script.as_bytes()).unwrap();
    output(
        rlm(dir)
            .arg("exec")
            .arg(file.path())
            .arg("--context")
            .args(context),
    )
}

#[test]
fn each_compression_format_is_decompressed_and_keeps_its_file_name() {
    let dir = tempfile::tempdir().unwrap();
    type Encode = fn(&[u8]) -> Vec<u8>;
    let formats: [(&str, Encode); 4] = [
        ("app.log.gz", gzip),
        ("app.log.zst", zstd),
        ("app.log.bz2", bzip2),
        ("app.log.xz", xz),
    ];
    for (name, encode) in formats {
        std::fs::write(dir.path().join(name), encode(TEXT.as_bytes())).unwrap();
        // Named alone: the context is exactly the decompressed bytes.
        let (code, stdout, stderr) = exec(
            dir.path(),
            "print(context.len()); print(context.lines()[0]);",
            &[name],
        );
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(
            stdout,
            format!("{}\n2025-01-01 ERROR disk full on /var\n", TEXT.len()),
            "{name}"
        );
    }
    // In a directory, each is a document named after its file.
    let v = stats_json(dir.path(), &["."]);
    assert_eq!(v["documents"], 4);
    assert_eq!(
        names(&v),
        ["app.log.bz2", "app.log.gz", "app.log.xz", "app.log.zst"]
    );
    for d in v["largest"].as_array().unwrap() {
        assert_eq!(d["bytes"], TEXT.len(), "{d}");
    }
    assert_eq!(v["skipped"].as_array().unwrap().len(), 0, "{v}");
}

#[test]
fn compression_is_found_by_its_first_bytes_not_the_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), gzip(TEXT.as_bytes())).unwrap();
    std::fs::write(dir.path().join("plain.gz"), "not compressed at all\n").unwrap();
    let v = stats_json(dir.path(), &["."]);
    let docs: Vec<(String, u64)> = v["largest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().into(),
                d["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        docs.contains(&("notes.txt".into(), TEXT.len() as u64)),
        "{docs:?}"
    );
    assert!(docs.contains(&("plain.gz".into(), 22)), "{docs:?}");
}

#[test]
fn compressed_standard_input_is_decompressed_from_a_file_and_from_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let packed = zstd(TEXT.as_bytes());
    let path = dir.path().join("in.zst");
    std::fs::write(&path, &packed).unwrap();
    let from_file = rlm(dir.path())
        .args(["stats", "-", "--json"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&from_file.stdout).unwrap();
    assert_eq!(v["bytes"], TEXT.len());
    let mut child = rlm(dir.path())
        .args(["stats", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&packed).unwrap();
    let piped = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&piped.stdout).unwrap();
    assert_eq!(v["bytes"], TEXT.len());
}

#[test]
fn no_decompress_makes_archives_binary_again() {
    let dir = tempfile::tempdir().unwrap();
    let packed = gzip(TEXT.as_bytes());
    std::fs::write(dir.path().join("app.log.gz"), &packed).unwrap();
    std::fs::write(dir.path().join("readme.txt"), "hello\n").unwrap();
    let v = stats_json(dir.path(), &[".", "--no-decompress"]);
    assert_eq!(names(&v), ["readme.txt"]);
    assert_eq!(v["skipped"][0]["kind"], "binary", "{v}");
    // Named explicitly, it is loaded as it is.
    let v = stats_json(dir.path(), &["app.log.gz", "--no-decompress"]);
    assert_eq!(v["bytes"], packed.len());
}

#[test]
fn a_corrupt_archive_named_alone_is_an_error_and_one_in_a_directory_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let text = TEXT.repeat(200);
    let packed = gzip(text.as_bytes());
    let truncated = &packed[..packed.len() / 2];
    std::fs::write(dir.path().join("broken.log.gz"), truncated).unwrap();
    std::fs::write(dir.path().join("good.log.gz"), &packed).unwrap();

    let (code, stdout, stderr) = output(rlm(dir.path()).args(["stats", "broken.log.gz"]));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("broken.log.gz")
            && stderr.contains("gzip")
            && stderr.contains("corrupt or truncated")
            && stderr.contains("--no-decompress"),
        "{stderr}"
    );

    let v = stats_json(dir.path(), &["."]);
    assert_eq!(names(&v), ["good.log.gz"]);
    let skipped = &v["skipped"][0];
    assert_eq!(skipped["kind"], "corrupt", "{v}");
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("broken.log.gz"),
        "{v}"
    );
    assert_eq!(v["skipped_by_reason"][0]["reason"], "corrupt");
    assert_eq!(v["skipped_by_reason"][0]["count"], 1);
}

/// A gzip file of `members` concatenated members of 16 MiB of one letter
/// each: tiny on disk, `members` × 16 MiB decompressed.
fn bomb(path: &Path, members: usize) -> u64 {
    let member = gzip(&vec![b'a'; 16 << 20]);
    let mut f = std::fs::File::create(path).unwrap();
    for _ in 0..members {
        f.write_all(&member).unwrap();
    }
    members as u64 * (16 << 20)
}

#[test]
fn a_decompression_bomb_stops_at_the_cap_naming_it_and_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    bomb(&dir.path().join("bomb.gz"), 4);
    let (code, _, stderr) =
        output(rlm(dir.path()).args(["stats", "bomb.gz", "--max-stream-size", "8M"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("bomb.gz")
            && stderr.contains("8.0 MiB")
            && stderr.contains("--max-stream-size"),
        "{stderr}"
    );
    // Under the cap, it loads.
    let v = stats_json(dir.path(), &["bomb.gz", "--max-stream-size", "64M"]);
    assert_eq!(v["bytes"], 64 << 20);
    // In a directory, it is skipped with the reason, not fatal.
    std::fs::write(dir.path().join("ok.txt"), "fine\n").unwrap();
    let v = stats_json(dir.path(), &[".", "--max-stream-size", "8M"]);
    assert_eq!(names(&v), ["ok.txt"]);
    assert_eq!(v["skipped"][0]["kind"], "too_large", "{v}");
}

fn prlimit_works() -> bool {
    Command::new("prlimit")
        .args(["--as=4000000000", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_bomb_larger_than_the_address_space_fails_cleanly_under_prlimit() {
    if !prlimit_works() {
        eprintln!("skipped: prlimit is not installed (util-linux)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 2 GiB decompressed, in a process allowed 1 GiB of address space.
    bomb(&dir.path().join("bomb.gz"), 128);
    for snapshot in [false, true] {
        let mut c = Command::new("prlimit");
        c.arg(format!("--as={}", 1u64 << 30))
            .arg(env!("CARGO_BIN_EXE_rlm"))
            .current_dir(dir.path())
            .args(["stats", "bomb.gz", "--max-stream-size", "256M"]);
        if snapshot {
            c.arg("--snapshot");
        }
        let (code, stdout, stderr) = output(&mut c);
        assert_eq!(code, 2, "snapshot {snapshot}: {stdout}{stderr}");
        assert!(
            stderr.contains("256.0 MiB") && stderr.contains("--max-stream-size"),
            "snapshot {snapshot}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// A directory outside any git repository with a .gitignore, a .ignore,
/// a hidden file and ordinary files.
fn tree_with_ignore_files(dir: &Path) {
    std::fs::write(dir.join(".gitignore"), "target/\n*.tmp\n").unwrap();
    std::fs::write(dir.join(".ignore"), "secret.txt\n").unwrap();
    std::fs::write(dir.join(".env"), "KEY=1\n").unwrap();
    std::fs::write(dir.join("main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(dir.join("scratch.tmp"), "tmp\n").unwrap();
    std::fs::write(dir.join("secret.txt"), "s\n").unwrap();
    std::fs::create_dir_all(dir.join("target/debug")).unwrap();
    std::fs::write(dir.join("target/debug/out.txt"), "built\n").unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), "pub fn f() {}\n").unwrap();
}

#[test]
fn a_walk_honours_gitignore_and_ignore_even_outside_git_unless_no_ignore() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    tree_with_ignore_files(&tree);
    let v = stats_json(dir.path(), &["tree"]);
    assert_eq!(names(&v), ["main.rs", "src/lib.rs"]);

    let v = stats_json(dir.path(), &["tree", "--no-ignore"]);
    assert_eq!(
        names(&v),
        [
            "main.rs",
            "scratch.tmp",
            "secret.txt",
            "src/lib.rs",
            "target/debug/out.txt"
        ]
    );

    let v = stats_json(dir.path(), &["tree", "--hidden"]);
    assert_eq!(
        names(&v),
        [".env", ".gitignore", ".ignore", "main.rs", "src/lib.rs"]
    );

    // A file named explicitly is loaded whatever the ignore files say.
    let v = stats_json(dir.path(), &["tree/secret.txt"]);
    assert_eq!(v["documents"], 1);
}

#[test]
fn documents_of_a_walk_come_in_sorted_path_order() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.txt", "a.txt", "a/z.txt", "a/b/c.txt", "c/a.txt"] {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{name}\n")).unwrap();
    }
    let (code, stdout, stderr) = exec(
        dir.path(),
        "for d in context.documents() { print(d.name); }",
        &["."],
    );
    assert_eq!(code, 0, "{stderr}");
    // Component by component, as a sorted recursive listing: a/ before a.txt.
    assert_eq!(stdout, "a/b/c.txt\na/z.txt\na.txt\nb.txt\nc/a.txt\n");
}

/// A directory of `binary` binary files, one corrupt archive and a text file.
fn tree_with_skips(dir: &Path, binary: usize) {
    for i in 0..binary {
        std::fs::write(dir.join(format!("blob{i:02}.bin")), b"\0\x01\x02").unwrap();
    }
    let packed = gzip(TEXT.repeat(100).as_bytes());
    std::fs::write(dir.join("torn.gz"), &packed[..packed.len() - 20]).unwrap();
    std::fs::write(dir.join("notes.txt"), TEXT).unwrap();
}

#[test]
fn stats_counts_skipped_files_by_reason_and_lists_them_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    tree_with_skips(&tree, 12);
    let (code, stdout, stderr) = output(rlm(dir.path()).args(["stats", "tree"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("skipped 13 files (--list-skipped lists them):"),
        "{stdout}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let binary = lines
        .iter()
        .filter(|l| l.contains("binary: a NUL byte"))
        .collect::<Vec<_>>();
    assert_eq!(binary.len(), 1, "one line per reason: {stdout}");
    assert!(
        binary[0].trim_start().starts_with("12  binary") && binary[0].contains("blob00.bin"),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("1  corrupt") && l.contains("torn.gz")),
        "{stdout}"
    );
    assert!(!stdout.contains("blob11.bin"), "not listed: {stdout}");

    let (_, stdout, _) = output(rlm(dir.path()).args(["stats", "tree", "--list-skipped"]));
    for i in 0..12 {
        assert!(
            stdout.contains(&format!("blob{i:02}.bin: binary")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("torn.gz: cannot decompress"), "{stdout}");
}

#[test]
fn exec_says_on_stderr_how_many_files_were_skipped_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    tree_with_skips(&tree, 3);
    let (code, stdout, stderr) = exec(dir.path(), "print(context.documents().len());", &["tree"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "1\n");
    let notes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("rlm: skipped"))
        .collect();
    assert_eq!(notes.len(), 2, "{stderr}");
    assert!(
        notes[0].starts_with("rlm: skipped 3 files: binary"),
        "{stderr}"
    );
    assert!(
        notes[1].starts_with("rlm: skipped 1 file: corrupt"),
        "{stderr}"
    );
    assert!(notes[1].contains("--list-skipped"), "{stderr}");
    // Nothing skipped, nothing said.
    let (_, _, stderr) = exec(dir.path(), "print(1);", &["tree/notes.txt"]);
    assert!(!stderr.contains("skipped"), "{stderr}");
}

#[test]
fn run_says_on_stderr_how_many_files_were_skipped_and_why() {
    let server = rlm::testing::MockServer::start(|_| {
        rlm::testing::Reply::openai_text(&common::code("submit(context.documents().len());"), 10, 5)
    });
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    tree_with_skips(&tree, 2);
    let (code, stdout, stderr) = output(
        rlm(dir.path())
            .args(["run", "--context", "tree", "--query", "How many documents?"])
            .args(["--quiet", "--max-retries", "0"])
            .args(common::loopback_models(&server)),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "1");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("rlm: skipped 2 files: binary")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("rlm: skipped 1 file: corrupt")),
        "{stderr}"
    );
}
