//! Loading contexts from files, directories, globs and stdin.

use std::fs;
use std::path::Path;

use rlm::{Context, ContextBuilder, Error};

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_single_file_is_its_bytes_without_header() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", b"one\ntwo\n");
    let ctx = Context::open(&[dir.path().join("a.txt")]).unwrap();
    assert_eq!(ctx.text().to_string(), "one\ntwo\n");
    assert_eq!(ctx.document_info().len(), 1);
    assert!(ctx.text().name().ends_with("a.txt"));
}

#[test]
fn an_empty_file_gives_an_empty_context() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "empty.txt", b"");
    let ctx = Context::open(&[dir.path().join("empty.txt")]).unwrap();
    let t = ctx.text();
    assert!(ctx.is_empty());
    assert_eq!(t.line_count(), 0);
    assert_eq!(t.line(1), None);
    assert_eq!(t.count("x").unwrap(), 0);
    assert!(t.chunks(10, 0).unwrap().is_empty());
    assert!(t.parts(3).unwrap().is_empty());
    assert_eq!(t.documents().len(), 1);
}

#[test]
fn a_file_of_only_newlines_has_one_empty_line_per_newline() {
    let t = Context::from_string("n", "\n\n\n").text();
    assert_eq!(t.line_count(), 3);
    assert_eq!(t.line(2).unwrap().to_string(), "");
    assert_eq!(t.line(4), None);
    assert_eq!(t.grep("^$", &Default::default()).unwrap().len(), 3);
}

#[test]
fn a_missing_trailing_newline_still_counts_the_last_line() {
    let t = Context::from_string("n", "a\nb").text();
    assert_eq!(t.line_count(), 2);
    assert_eq!(t.line(2).unwrap().to_string(), "b");
    assert_eq!(t.lines(1, 2).to_string(), "a\nb");
}

#[test]
fn crlf_lines_lose_their_carriage_return_and_anchor_correctly() {
    let t = Context::from_string("w", "alpha\r\nbeta\r\n").text();
    assert_eq!(t.line_count(), 2);
    assert_eq!(t.line(1).unwrap().to_string(), "alpha");
    let m = t.matches("^beta$", 10).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].line, 2);
    let hits = t.grep("a$", &Default::default()).unwrap();
    assert_eq!(
        hits.iter().map(|h| h.text.to_string()).collect::<Vec<_>>(),
        ["alpha", "beta"]
    );
}

#[test]
fn non_utf8_bytes_are_searchable_and_render_lossily() {
    let t = Context::from_bytes("bin", b"caf\xe9 ok\n\xff\xfe ok\n".to_vec()).text();
    assert_eq!(t.line_count(), 2);
    assert_eq!(t.count("ok").unwrap(), 2);
    assert_eq!(t.line(1).unwrap().to_string(), "caf\u{fffd} ok");
    // Cutting anywhere never panics, even inside invalid sequences.
    for i in 0..=t.len() {
        let _ = t.slice(i, t.len()).to_string();
        let _ = t.head(i).to_string();
    }
}

#[test]
fn zero_byte_stdin_is_an_empty_context() {
    let ctx = ContextBuilder::new()
        .read("<stdin>", std::io::empty())
        .unwrap();
    assert!(ctx.is_empty());
    assert_eq!(ctx.text().line_count(), 0);
}

#[test]
fn a_stream_is_spooled_and_mapped() {
    let data = "line\n".repeat(10_000);
    let ctx = ContextBuilder::new().read("pipe", data.as_bytes()).unwrap();
    assert_eq!(ctx.len(), data.len());
    assert_eq!(ctx.text().line_count(), 10_000);
    let snap = ContextBuilder::new()
        .snapshot(true)
        .read("pipe", data.as_bytes())
        .unwrap();
    assert_eq!(snap.text(), ctx.text());
}

#[test]
fn a_directory_of_mixed_files_loads_sorted_with_headers_and_skips_binary_and_hidden() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b.txt", b"bravo\n");
    write(dir.path(), "a.txt", b"alpha without newline");
    write(dir.path(), "sub/c.md", b"charlie\n");
    write(dir.path(), "empty.txt", b"");
    write(dir.path(), "latin1.txt", b"caf\xe9\n");
    write(dir.path(), "image.bin", b"\x89PNG\x00\x00\x01");
    write(dir.path(), ".git/config", b"secret\n");

    let ctx = Context::open(&[dir.path()]).unwrap();
    let names: Vec<&str> = ctx
        .document_info()
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["a.txt", "b.txt", "empty.txt", "latin1.txt", "sub/c.md"]
    );
    let text = ctx.text().to_string();
    assert!(
        text.starts_with("==> a.txt <==\nalpha without newline\n==> b.txt <==\nbravo\n"),
        "{text}"
    );
    assert!(!text.contains("secret"));
    assert_eq!(ctx.skipped().len(), 1);
    assert!(ctx.skipped()[0].reason.contains("binary"));

    let docs = ctx.documents();
    assert_eq!(docs[0].to_string(), "alpha without newline");
    assert_eq!(docs[0].name(), "a.txt");
    assert_eq!(docs[2].len(), 0);
    assert_eq!(docs[4].to_string(), "charlie\n");
    // Lines are whole even across a document without a trailing newline.
    assert_eq!(
        ctx.text().line(2).unwrap().to_string(),
        "alpha without newline"
    );
    assert_eq!(ctx.text().line(3).unwrap().to_string(), "==> b.txt <==");
    // A search hit inside a document knows its line.
    let hit = &ctx.text().grep("charlie", &Default::default()).unwrap()[0];
    assert_eq!(ctx.text().line(hit.line).unwrap().to_string(), "charlie");

    let all = ContextBuilder::new()
        .hidden(true)
        .binary(true)
        .open(&[dir.path()])
        .unwrap();
    assert_eq!(all.document_info().len(), 7);
}

#[test]
fn a_glob_loads_matching_files_in_sorted_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "x2.log", b"two\n");
    write(dir.path(), "x1.log", b"one\n");
    write(dir.path(), "y.txt", b"other\n");
    let pattern = format!("{}/x*.log", dir.path().display());
    let ctx = Context::open(&[pattern.as_str()]).unwrap();
    let docs = ctx.documents();
    assert_eq!(
        docs.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        ["one\n", "two\n"]
    );
    assert!(docs[0].name().ends_with("x1.log"));

    let none = format!("{}/*.nothing", dir.path().display());
    let err = Context::open(&[none.as_str()]).unwrap_err();
    assert!(matches!(err, Error::NoFiles { .. }), "{err}");
    assert!(err.to_string().contains("matched no readable files"));
}

#[test]
fn a_missing_path_is_a_clear_error_naming_it() {
    let err = Context::open(&["/definitely/not/here.txt"]).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    let msg = err.to_string();
    assert!(msg.contains("/definitely/not/here.txt"), "{msg}");
    assert!(msg.contains("no such file"), "{msg}");
}

#[test]
fn an_empty_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Context::open(&[dir.path()]).unwrap_err();
    assert!(
        err.to_string().contains("matched no readable files"),
        "{err}"
    );
}

#[test]
fn a_file_changed_after_opening_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.log");
    fs::write(&path, "original contents\n").unwrap();
    let ctx = Context::open(&[&path]).unwrap();
    ctx.check_unchanged().unwrap();
    fs::write(&path, "short\n").unwrap();
    let err = ctx.check_unchanged().unwrap_err();
    assert!(matches!(err, Error::ContextChanged { .. }), "{err}");
    assert!(err.to_string().contains("snapshot"), "{err}");

    // Snapshot mode owns its bytes and ignores later changes.
    let snap = ContextBuilder::new().snapshot(true).open(&[&path]).unwrap();
    fs::write(&path, "changed again, longer than before\n").unwrap();
    snap.check_unchanged().unwrap();
    assert_eq!(snap.text().to_string(), "short\n");
}

#[test]
fn several_arguments_combine_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "z.txt", b"zulu\n");
    write(dir.path(), "d/a.txt", b"alpha\n");
    let ctx = Context::open(&[dir.path().join("z.txt"), dir.path().join("d")]).unwrap();
    let names: Vec<String> = ctx
        .documents()
        .iter()
        .map(|d| d.name().to_string())
        .collect();
    assert!(names[0].ends_with("z.txt"));
    assert_eq!(names[1], "a.txt");
}
