//! `--schema`: the answer's JSON Schema, shown to the root model and
//! checked on every submit, through the binary against a loopback model.

mod common;

use std::path::Path;

use common::{code, jsonl, loopback_models, output, rlm};
use rlm::testing::{MockServer, Reply};
use serde_json::{json, Value};

const CONTRACT_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "parties": {"type": "array", "items": {
      "type": "object",
      "properties": {"name": {"type": "string"}},
      "required": ["name"]
    }},
    "renewal": {"type": "string"}
  },
  "required": ["parties", "renewal"],
  "additionalProperties": false
}"#;

const CONTRACT: &str = "This agreement between Acme Corp and Globex Ltd renews on 2027-01-01.\n";

/// A root model that replies with `turns[i]` on its i-th turn (1-based;
/// the last reply repeats).
fn root(turns: Vec<String>) -> MockServer {
    MockServer::start(move |req| {
        let turn = req.message_count().div_ceil(2).max(1);
        let reply = turns
            .get(turn - 1)
            .or(turns.last())
            .cloned()
            .unwrap_or_default();
        Reply::openai_text(&reply, 1000, 100)
    })
}

fn setup(dir: &Path) {
    std::fs::write(dir.join("contract.txt"), CONTRACT).unwrap();
    std::fs::write(dir.join("schema.json"), CONTRACT_SCHEMA).unwrap();
}

fn run_json(dir: &Path, server: &MockServer, extra: &[&str]) -> (i32, Value, String) {
    let (code, stdout, stderr) = output(
        rlm(dir)
            .args([
                "run",
                "--context",
                "contract.txt",
                "-q",
                "Who are the parties?",
            ])
            .args(["--schema", "schema.json", "--output", "json", "--quiet"])
            .args(extra)
            .args(loopback_models(server)),
    );
    let result = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("--output json is not JSON ({e}): {stdout}\n{stderr}"));
    (code, result, stderr)
}

#[test]
fn a_refused_submit_reaches_the_model_with_paths_and_the_repaired_answer_is_json() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let server = root(vec![
        code(r#"submit(#{parties: [#{name: "Acme Corp"}, #{name: 7}], renewal: "2027-01-01"});"#),
        code(
            r#"submit(#{parties: [#{name: "Acme Corp"}, #{name: "Globex Ltd"}], renewal: "2027-01-01"});"#,
        ),
    ]);
    let (exit, result, stderr) = run_json(dir.path(), &server, &[]);
    assert_eq!(exit, 0, "{stderr}");
    assert_eq!(result["status"], "submitted");
    assert_eq!(
        result["answer"],
        json!({"parties": [{"name": "Acme Corp"}, {"name": "Globex Ltd"}], "renewal": "2027-01-01"}),
        "the answer is JSON, not a string"
    );
    assert_eq!(result["iterations"], 2);

    let requests = server.requests();
    let system = requests[0].system().unwrap();
    assert!(
        system.contains(
            &serde_json::from_str::<Value>(CONTRACT_SCHEMA)
                .unwrap()
                .to_string()
        ),
        "the system prompt shows the schema compactly:\n{system}"
    );
    assert!(system.contains("after 3 refused submits"), "{system}");
    let second = requests[1].json().to_string();
    assert!(
        second.contains("$.parties[1].name: 7 is not of type \\\"string\\\""),
        "the model is told where its value is wrong: {second}"
    );
    assert!(second.contains("attempt 1 of 3"), "{second}");
}

#[test]
fn too_many_refused_submits_end_invalid_answer_with_exit_8_and_the_last_value() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let server = root(vec![
        code(r#"submit(#{parties: []});"#),
        code(r#"submit(#{parties: [], renewal: 2027});"#),
        code(r#"submit("never reached");"#),
    ]);
    let (exit, result, stderr) = run_json(dir.path(), &server, &["--max-invalid-answers", "2"]);
    assert_eq!(exit, 8, "{stderr}");
    assert_eq!(result["status"], "invalid_answer");
    assert_eq!(result["answer"], json!({"parties": [], "renewal": 2027}));
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("2 time(s)") && error.contains("$.renewal"),
        "{error}"
    );
    assert_eq!(
        server.requests().len(),
        2,
        "the run ended at the second refusal"
    );
}

#[test]
fn turns_running_out_after_refusals_is_invalid_answer_not_max_iterations() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let server = root(vec![code(r#"submit(#{parties: "Acme"});"#)]);
    let (exit, result, stderr) = run_json(dir.path(), &server, &["--max-iterations", "2"]);
    assert_eq!(exit, 8, "{stderr}");
    assert_eq!(result["status"], "invalid_answer");
    assert_eq!(result["answer"], json!({"parties": "Acme"}));
}

#[test]
fn json_text_that_matches_is_taken_as_its_value() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    // Models often submit to_json(value) instead of the value.
    let server = root(vec![code(
        r#"let m = #{parties: [#{name: "Acme Corp"}], renewal: "2027-01-01"}; submit(to_json(m));"#,
    )]);
    let (exit, result, stderr) = run_json(dir.path(), &server, &[]);
    assert_eq!(exit, 0, "{stderr}");
    assert_eq!(result["answer"]["parties"][0]["name"], "Acme Corp");
    assert_eq!(result["answer_text"], result["answer"].to_string());
}

#[test]
fn a_bad_schema_is_a_clear_error_before_any_model_call() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let server = root(vec![code("submit(1);")]);
    for (body, expected) in [
        ("{\"type\": \"strng\"}", "is not a valid JSON Schema"),
        ("{\"type\": ", "is not JSON"),
    ] {
        std::fs::write(dir.path().join("schema.json"), body).unwrap();
        let (exit, stdout, stderr) = output(
            rlm(dir.path())
                .args([
                    "run",
                    "--context",
                    "contract.txt",
                    "-q",
                    "q",
                    "--schema",
                    "schema.json",
                ])
                .args(loopback_models(&server)),
        );
        assert_eq!(exit, 2, "{stdout}{stderr}");
        assert!(
            stderr.contains("schema.json") && stderr.contains(expected),
            "{stderr}"
        );
    }
    let (exit, _, stderr) = output(
        rlm(dir.path())
            .args([
                "run",
                "--context",
                "contract.txt",
                "-q",
                "q",
                "--schema",
                "nope.json",
            ])
            .args(loopback_models(&server)),
    );
    assert_eq!(exit, 2);
    assert!(stderr.contains("cannot read schema nope.json"), "{stderr}");
    assert!(server.requests().is_empty(), "no model was called");
}

#[test]
fn a_batch_with_schemas_writes_answers_that_all_validate() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    std::fs::write(
        dir.path().join("count.json"),
        r#"{"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}"#,
    )
    .unwrap();
    let tasks = [
        // The batch's --schema.
        json!({"id": "default", "query": "parties", "context": "contract.txt"}),
        // A schema file of its own, and an inline one.
        json!({"id": "file", "query": "count", "context": "contract.txt", "schema": "count.json"}),
        json!({"id": "inline", "query": "words", "context_text": "a b c",
               "schema": {"type": "array", "items": {"type": "string"}}}),
        // A schema that cannot compile fails its task only.
        json!({"id": "broken", "query": "q", "context_text": "x", "schema": {"type": 5}}),
    ];
    let lines: String = tasks.iter().map(|t| format!("{t}\n")).collect();
    std::fs::write(dir.path().join("tasks.jsonl"), lines).unwrap();
    // Each task's model first submits a string, which its schema refuses,
    // then the value its query asks for.
    let server = MockServer::start(|req| {
        let turn = req.message_count().div_ceil(2);
        let query = req.first_user_message();
        let value = if query.contains("parties") {
            r#"#{parties: [#{name: "Acme Corp"}, #{name: "Globex Ltd"}], renewal: "2027-01-01"}"#
        } else if query.contains("count") {
            "#{n: 2}"
        } else {
            r#"["a", "b", "c"]"#
        };
        let body = if turn == 1 {
            r#"submit("not yet");"#.to_string()
        } else {
            format!("submit({value});")
        };
        Reply::openai_text(&code(&body), 1000, 100)
    });
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .args(["batch", "tasks.jsonl", "--out", "results.jsonl", "--quiet"])
            .args(["--schema", "schema.json"])
            .args(loopback_models(&server)),
    );
    assert_eq!(
        exit, 3,
        "one task fails, so not every line is submitted:\n{stdout}{stderr}"
    );
    let results = jsonl(&dir.path().join("results.jsonl"));
    let by_id = |id: &str| results.iter().find(|r| r["id"] == id).unwrap().clone();
    let schema = |text: &str| {
        rlm::schema::AnswerSchema::from_json(serde_json::from_str(text).unwrap()).unwrap()
    };

    let default = by_id("default");
    assert_eq!(default["status"], "submitted", "{default}");
    assert!(schema(CONTRACT_SCHEMA).check(&default["answer"]).is_ok());
    assert_eq!(by_id("file")["answer"], json!({"n": 2}));
    assert_eq!(by_id("inline")["answer"], json!(["a", "b", "c"]));
    let broken = by_id("broken");
    assert_eq!(broken["status"], "failed");
    assert!(
        broken["error"].as_str().unwrap().contains("`schema`"),
        "{broken}"
    );
    for id in ["default", "file", "inline"] {
        assert_eq!(
            by_id(id)["iterations"],
            2,
            "{id} was refused once, then repaired"
        );
    }
}
