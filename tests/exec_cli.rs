//! `rlm exec` through the binary: what a script printed, the recursion
//! functions that need a root model, and the help of its model flags.

use serde_json::Value;

mod common;
use common::{output, rlm};

/// Writes `script` and a small context into `dir`; returns their paths.
fn setup(dir: &std::path::Path, script: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (path, ctx) = (dir.join("script.rhai"), dir.join("notes.txt"));
    std::fs::write(&path, script).unwrap();
    std::fs::write(&ctx, "alpha\nbeta\n").unwrap();
    (path, ctx)
}

fn exec(dir: &std::path::Path, script: &str, format: &str) -> (i32, String, String) {
    let (path, ctx) = setup(dir, script);
    output(
        rlm(dir)
            .arg("exec")
            .arg(&path)
            .arg("--context")
            .arg(&ctx)
            .args(["--output", format]),
    )
}

#[test]
fn exec_prints_what_a_submitting_script_printed_then_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"print("check 42"); submit(42);"#;
    let (exit, stdout, stderr) = exec(dir.path(), script, "text");
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout, "check 42\n42\n");

    let (exit, stdout, stderr) = exec(dir.path(), script, "json");
    assert_eq!(exit, 0, "stdout: {stdout}\nstderr: {stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(result["output"], "check 42\n");
    assert_eq!(result["answer"], 42);
}

#[test]
fn rlm_query_and_rlm_batch_in_exec_say_they_need_a_root_model_and_rlm_run() {
    let dir = tempfile::tempdir().unwrap();
    for script in [
        r#"print("before"); rlm_query("Who?", context);"#,
        r#"print("before"); rlm_query("Who?", "a string");"#,
        r#"print("before"); rlm_batch("Who?", context.chunk_lines(1));"#,
    ] {
        for format in ["text", "json"] {
            let (exit, stdout, stderr) = exec(dir.path(), script, format);
            assert_eq!(exit, 1, "{script}\nstdout: {stdout}\nstderr: {stderr}");
            let said = if format == "json" {
                let result: Value =
                    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
                assert_eq!(result["output"], "before\n", "{result}");
                result["error"].as_str().unwrap_or_default().to_string()
            } else {
                assert_eq!(stdout, "before\n", "{script}");
                stderr
            };
            assert!(
                said.contains("needs a root model") && said.contains("`rlm run`"),
                "{script}: {said}"
            );
            assert!(
                !said.contains("Function not found") && !said.contains("ImmutableString"),
                "{script}: {said}"
            );
        }
    }
}

#[test]
fn exec_help_does_not_call_model_the_root_model() {
    let dir = tempfile::tempdir().unwrap();
    let (exit, stdout, stderr) = output(rlm(dir.path()).args(["exec", "--help"]));
    assert_eq!(exit, 0, "{stderr}");
    // Help text wraps to the terminal's width.
    let help = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!help.to_lowercase().contains("the root model"), "{help}");
    let model = help
        .split("--model <MODEL>")
        .nth(1)
        .and_then(|rest| rest.split("--sub-model <SUB_MODEL>").next())
        .unwrap_or_else(|| panic!("{help}"));
    assert!(
        model.contains("llm_query") && model.contains("no root model"),
        "{model}"
    );
    // The commands that have a root model still call it that.
    let (_, run_help, _) = output(rlm(dir.path()).args(["run", "--help"]));
    assert!(run_help.contains("The root model"), "{run_help}");
}
