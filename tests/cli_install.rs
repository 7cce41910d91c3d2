//! What a user installs beside the binary (completions, man pages), the
//! "did you mean" for a mistyped command, and the argument orderings
//! that `--context`'s open list of values makes easy to get wrong: each
//! works, or fails with exit 2 and a message naming the fix.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::{output, rlm};

const COMMANDS: &[&str] = &[
    "stats",
    "run",
    "batch",
    "eval",
    "exec",
    "mcp",
    "serve",
    "completions",
    "man",
];

fn completions(shell: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = output(rlm(dir.path()).args(["completions", shell]));
    assert_eq!(code, 0, "{shell}: {stderr}");
    assert!(!stdout.is_empty(), "{shell}: empty script");
    for name in COMMANDS {
        assert!(stdout.contains(name), "{shell}: no {name} in the script");
    }
    assert!(stdout.contains("context"), "{shell}: no --context");
    stdout
}

/// Runs `program args` with `input` on standard input; `None` when the
/// program is not installed.
fn pipe(program: &str, args: &[&str], input: &str) -> Option<(i32, String, String)> {
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("starting {program}: {e}"),
    };
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn bash_completion_parses_and_completes_a_command_and_a_flag() {
    let script = completions("bash");
    let (code, _, stderr) = pipe("bash", &["-n"], &script).expect("bash is installed");
    assert_eq!(code, 0, "bash -n refused the script: {stderr}");
    // Sourced and asked, as bash asks it on Tab.
    let ask = format!(
        "{script}\nCOMP_WORDS=(rlm ru); COMP_CWORD=1; _rlm rlm ru rlm; echo \"${{COMPREPLY[@]}}\"\n\
         COMP_WORDS=(rlm exec --con); COMP_CWORD=2; _rlm rlm --con exec; echo \"${{COMPREPLY[@]}}\"\n"
    );
    let (code, stdout, stderr) = pipe("bash", &[], &ask).expect("bash is installed");
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first().copied(), Some("run"), "{stdout}");
    let flags: Vec<&str> = lines.get(1).map_or(vec![], |l| l.split(' ').collect());
    assert!(flags.contains(&"--context"), "{stdout}");
    assert!(flags.iter().all(|f| f.starts_with("--con")), "{stdout}");
}

#[test]
fn zsh_completion_is_a_compdef_function_listing_each_command() {
    let script = completions("zsh");
    if let Some((code, _, stderr)) = pipe("zsh", &["-n"], &script) {
        assert_eq!(code, 0, "zsh -n refused the script: {stderr}");
    }
    // Checked whether or not zsh is here to parse it.
    assert!(script.starts_with("#compdef rlm\n"), "{}", &script[..40]);
    assert!(script.contains("compdef _rlm rlm"));
    for name in COMMANDS {
        assert!(
            script.contains(&format!("'{name}:")),
            "zsh: no entry for {name}"
        );
    }
}

#[test]
fn fish_completion_is_complete_commands_for_rlm() {
    let script = completions("fish");
    if let Some((code, _, stderr)) = pipe("fish", &["--no-execute"], &script) {
        assert_eq!(code, 0, "fish refused the script: {stderr}");
    }
    for name in COMMANDS {
        assert!(
            script.contains(&format!(
                "complete -c rlm -n \"__fish_rlm_needs_command\" -f -a \"{name}\""
            )),
            "fish: no completion of {name}"
        );
    }
    assert!(script.contains("__fish_rlm_using_subcommand exec\" -s c -l context"));
}

#[test]
fn powershell_and_elvish_completions_register_for_rlm() {
    let ps = completions("powershell");
    assert!(ps.contains("Register-ArgumentCompleter -Native -CommandName 'rlm'"));
    let elvish = completions("elvish");
    assert!(elvish.contains("edit:completion:arg-completer[rlm]"));
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = output(rlm(dir.path()).args(["completions", "tcsh"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("possible values: bash"), "{stderr}");
}

/// `rlm man ARGS`, rendered by groff with every warning on: the roff, and
/// the page as a reader sees it.
fn man_page(args: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (code, roff, stderr) = output(rlm(dir.path()).arg("man").args(args));
    assert_eq!(code, 0, "rlm man {args:?}: {stderr}");
    assert!(
        roff.starts_with(".ie \\n(.g .ds Aq") || roff.contains("\n.TH "),
        "{roff}"
    );
    let (code, text, warnings) = pipe(
        "groff",
        &["-man", "-Tutf8", "-ww", "-P-c", "-P-b", "-P-u"],
        &roff,
    )
    .expect("groff renders the man pages (Debian: groff-base; .ci/run installs it)");
    assert_eq!(code, 0, "groff failed on rlm man {args:?}: {warnings}");
    assert!(
        warnings.is_empty(),
        "groff warned on rlm man {args:?}: {warnings}"
    );
    // Justified lines pad words with spaces; compare words.
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (roff, text)
}

#[test]
fn man_pages_render_as_roff_one_per_command() {
    let (_, text) = man_page(&[]);
    assert!(text.contains("SYNOPSIS"), "{text}");
    for name in COMMANDS {
        assert!(
            text.contains(&format!("rlm-{name}(1)")),
            "rlm(1) does not list {name}: {text}"
        );
    }
    for name in COMMANDS {
        let (roff, text) = man_page(&[name]);
        assert!(roff.contains(&format!(".TH rlm-{name} 1")), "{roff}");
        assert!(
            text.contains(&format!("rlm {name}")),
            "rlm-{name}(1): {text}"
        );
    }
    let (_, text) = man_page(&["run"]);
    for flag in ["--context", "--query", "--max-cost", "--config"] {
        assert!(text.contains(flag), "rlm-run(1) lacks {flag}");
    }
}

#[test]
fn man_for_an_unknown_command_names_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = output(rlm(dir.path()).args(["man", "rnu"]));
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(stderr.contains("the commands are stats, run"), "{stderr}");
}

#[test]
fn a_mistyped_command_gets_the_one_it_was_meant_to_be() {
    let dir = tempfile::tempdir().unwrap();
    for (typed, meant) in [
        ("rnu", "run"),
        ("exce", "exec"),
        ("bacth", "batch"),
        ("stat", "stats"),
    ] {
        let (code, _, stderr) = output(rlm(dir.path()).arg(typed));
        assert_eq!(code, 2, "{typed}");
        assert!(
            stderr.contains(&format!("a similar subcommand exists: '{meant}'")),
            "{typed}: {stderr}"
        );
    }
    let (code, _, stderr) = output(rlm(dir.path()).arg("frobnicate"));
    assert_eq!(code, 2);
    assert!(!stderr.contains("similar"), "{stderr}");
}

/// A directory with a log and a script that prints the log's length.
fn exec_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.log"), "one\ntwo\n").unwrap();
    std::fs::write(dir.path().join("b.log"), "three\n").unwrap();
    std::fs::write(dir.path().join("s.rhai"), "print(context.len());").unwrap();
    dir
}

fn exec_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    output(rlm(dir).arg("exec").args(args))
}

#[test]
fn exec_takes_the_script_before_after_or_past_dashes_from_the_context() {
    let dir = exec_dir();
    for args in [
        &["s.rhai", "--context", "a.log"][..],
        &["--context", "a.log", "s.rhai"],
        &["--context", "a.log", "--", "s.rhai"],
        &["-c", "a.log", "--query", "q", "s.rhai"],
    ] {
        let (code, stdout, stderr) = exec_in(dir.path(), args);
        assert_eq!((code, stdout.trim()), (0, "8"), "{args:?}: {stderr}");
    }
    // Both files are context; the script still comes last.
    let (code, stdout, stderr) = exec_in(dir.path(), &["--context", "a.log", "b.log", "s.rhai"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.trim().parse::<u64>().unwrap() > 8, "{stdout}");
}

#[test]
fn exec_without_a_script_says_where_to_put_it() {
    let dir = exec_dir();
    for args in [
        &["--context", "a.log", "b.log"][..],
        &["--context", "s.rhai"],
    ] {
        let (code, stdout, stderr) = exec_in(dir.path(), args);
        assert_eq!((code, stdout.as_str()), (2, ""), "{args:?}");
        assert!(
            stderr.contains("rlm exec SCRIPT --context PATH...")
                && stderr.contains("rlm exec --context PATH... -- SCRIPT"),
            "{args:?}: {stderr}"
        );
    }
    let (code, _, stderr) = exec_in(dir.path(), &["s.rhai", "a.log"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("go after --context"), "{stderr}");
}

#[test]
fn run_with_the_question_as_a_positional_says_to_use_query() {
    let dir = exec_dir();
    let (code, _, stderr) =
        output(rlm(dir.path()).args(["run", "which lines?", "--context", "a.log"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("--query \"which lines?\""), "{stderr}");
    let (code, _, stderr) =
        output(rlm(dir.path()).args(["run", "--context", "a.log", "which lines?"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("\"which lines?\" was read as a path")
            && stderr.contains("--query \"which lines?\""),
        "{stderr}"
    );
    let (code, _, stderr) = output(rlm(dir.path()).args(["run", "--context", "a.log"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("pass the question with --query"),
        "{stderr}"
    );
}

#[test]
fn run_takes_the_query_before_or_after_the_context() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let trace = root.join("examples/traces/missed_deliveries.jsonl");
    let log = root.join("examples/data/deliveries.log");
    let query = "Which vendors missed a delivery in 2025?";
    let model = format!("--model=replay:{}", trace.display());
    let before = ["run", "--quiet", &model, "--query", query, "--context"];
    let after = ["run", "--quiet", &model, "--context"];
    let (code, first, stderr) = output(rlm(root).args(before).arg(&log));
    assert_eq!(code, 0, "{stderr}");
    let (code, second, stderr) = output(rlm(root).args(after).arg(&log).args(["--query", query]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(first, second);
}
