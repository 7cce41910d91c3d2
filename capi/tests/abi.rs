//! The header and the library agree: every function `include/rlm.h`
//! declares is exported by librlm_capi.so, and every `rlm_` symbol it
//! exports is declared. The header also compiles as C and as C++ with
//! every warning an error.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

/// The header with its comments removed.
fn header_code() -> String {
    let text = std::fs::read_to_string(common::repo().join("include/rlm.h")).expect("read rlm.h");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("*/")
            .expect("an unclosed comment in rlm.h");
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names `rlm_...` directly followed by `(`: the declared functions
/// (a callback typedef's name is followed by `)`).
fn declared() -> BTreeSet<String> {
    let code = header_code();
    let bytes = code.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while let Some(at) = code[i..].find("rlm_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let next = code[end..].trim_start().chars().next();
        if boundary && next == Some('(') {
            names.insert(code[start..end].to_string());
        }
        i = end.max(start + 1);
    }
    names
}

/// The `rlm_` functions the cdylib exports.
fn exported() -> BTreeSet<String> {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(common::cdylib())
        .output()
        .expect("run nm (binutils)");
    assert!(
        out.status.success(),
        "nm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace().rev();
            let name = parts.next()?;
            let kind = parts.next()?;
            (kind == "T" && name.starts_with("rlm_")).then(|| name.to_string())
        })
        .collect()
}

#[test]
fn every_declared_function_is_exported_and_every_export_is_declared() {
    let (declared, exported) = (declared(), exported());
    assert!(
        declared.len() >= 18,
        "too few declarations found: {declared:?}"
    );
    let missing: Vec<_> = declared.difference(&exported).collect();
    let undeclared: Vec<_> = exported.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "declared in rlm.h but not exported: {missing:?}"
    );
    assert!(
        undeclared.is_empty(),
        "exported but not in rlm.h: {undeclared:?}"
    );
}

#[test]
fn the_header_compiles_cleanly_as_c_and_as_cpp() {
    let dir = common::scratch();
    let src = dir.path().join("include_only.c");
    std::fs::write(
        &src,
        "#include \"rlm.h\"\nint main(void) { return rlm_version() == 0; }\n",
    )
    .unwrap();
    let include = common::repo().join("include");
    for (compiler, std) in [("cc", "-std=c99"), ("c++", "-std=c++11")] {
        let mut c = Command::new(compiler);
        c.args([
            std,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
        ])
        .arg("-I")
        .arg(&include);
        if compiler == "c++" {
            c.args(["-x", "c++"]);
        }
        let out = c
            .arg(&src)
            .output()
            .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
        assert!(
            out.status.success(),
            "{compiler} rejects rlm.h:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_readme_snippet_compiles_against_the_header() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).expect("read README.md");
    let section = readme
        .split("## Embedding from C")
        .nth(1)
        .expect("README.md has an \"Embedding from C\" section");
    let code = section
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section has a ```c block");
    let (includes, body): (Vec<&str>, Vec<&str>) = code.lines().partition(|l| l.starts_with('#'));
    let program = format!(
        "#include <stdio.h>\n{}\nint main(void) {{\n{}\nreturn 0;\n}}\n",
        includes.join("\n"),
        body.join("\n")
    );
    let dir = common::scratch();
    let src = dir.path().join("readme.c");
    std::fs::write(&src, program).unwrap();
    let out = Command::new("cc")
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            "-I",
        ])
        .arg(common::repo().join("include"))
        .arg(&src)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "the README's C does not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
