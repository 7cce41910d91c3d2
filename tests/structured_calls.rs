//! Typed sub-calls: `llm_query(prompt, #{schema})`, `#{json: true}` and
//! `llm_batch` with either, against loopback servers that check the wire
//! (OpenAI's `response_format`, Anthropic's forced tool use, a server that
//! has neither), and `rlm batch` through the binary.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{code, jsonl, loopback_models, output, rlm};
use rlm::dsl::{LlmAccess, Session, SessionBuilder};
use rlm::llm::{
    Budgets, CacheConfig, CacheMode, Ledger, LlmClient, LlmConfig, ModelEndpoint, ModelSpec,
    PriceTable, RetryPolicy, StructuredOutput,
};
use rlm::testing::{MockServer, Reply, Request};
use rlm::Context;
use serde_json::{json, Value};

/// A schema strict mode takes: every property required, no others.
const PARTIES: &str = r#"#{type: "object",
    properties: #{parties: #{type: "array", items: #{type: "string"}}, renewal: #{type: "string"}},
    required: ["parties", "renewal"], additionalProperties: false}"#;

fn parties_schema() -> Value {
    json!({"type": "object",
        "properties": {"parties": {"type": "array", "items": {"type": "string"}}, "renewal": {"type": "string"}},
        "required": ["parties", "renewal"], "additionalProperties": false})
}

/// A schema with an optional property, which strict mode refuses.
const COUNT: &str = r#"#{type: "object", properties: #{n: #{type: "integer"}, note: #{type: "string"}}, required: ["n"]}"#;

struct Rig {
    _runtime: tokio::runtime::Runtime,
    access: LlmAccess,
}

fn rig(config: LlmConfig, sub_model: &str, budgets: Budgets) -> Rig {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = LlmConfig {
        retry: RetryPolicy {
            max_retries: 0,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        },
        concurrency: 4,
        ..config
    };
    let client = LlmClient::new(
        config,
        Arc::new(Ledger::new(PriceTable::default(), budgets)),
    )
    .unwrap();
    let access = LlmAccess {
        client,
        runtime: runtime.handle().clone(),
        sub_model: Some(ModelSpec::parse(sub_model)),
        context_window: None,
        depth: 0,
        run_id: None,
        scope: None,
    };
    Rig {
        _runtime: runtime,
        access,
    }
}

fn openai(server: &MockServer) -> LlmConfig {
    LlmConfig {
        openai_base_url: server.openai_url(),
        ..LlmConfig::default()
    }
}

fn session(rig: &Rig) -> Session {
    let ctx = Context::from_string(
        "contract",
        "Acme Corp and Globex Ltd renew on 2027-01-01.\n",
    );
    SessionBuilder::new().llm(rig.access.clone()).build(&ctx)
}

/// Runs `cell`, requiring it to succeed; returns what it printed and showed.
fn run(s: &mut Session, cell: &str) -> String {
    let out = s.run_cell(cell);
    assert!(out.error.is_none(), "{}", out.render());
    out.output
}

fn messages(req: &Request) -> Vec<Value> {
    req.json()["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_schema_call_to_openai_sends_a_strict_json_schema_and_returns_a_map() {
    let server = MockServer::start(|_| {
        Reply::openai_text(
            r#"{"parties": ["Acme Corp", "Globex Ltd"], "renewal": "2027-01-01"}"#,
            20,
            10,
        )
    });
    let r = rig(openai(&server), "gpt-5-mini", Budgets::default());
    let mut s = session(&r);
    let out = run(
        &mut s,
        &format!(
            r#"let r = llm_query(`Who are the parties? ${{context}}`, #{{schema: {PARTIES}}});
print(type_of(r)); print(r.parties[1]); print(r.renewal);"#
        ),
    );
    assert_eq!(out, "map\nGlobex Ltd\n2027-01-01\n");
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "a valid answer needs no repair");
    let body = requests[0].json();
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": parties_schema(), "strict": true}})
    );
    assert!(body.get("tools").is_none());
}

#[test]
fn a_schema_strict_mode_cannot_take_goes_with_strict_false_and_non_objects_are_wrapped() {
    let server = MockServer::start(|req| {
        if req.prompt().contains("list") {
            Reply::openai_text(r#"{"value": ["Acme Corp", "Globex Ltd"]}"#, 20, 10)
        } else {
            Reply::openai_text(r#"{"n": 2}"#, 20, 5)
        }
    });
    let r = rig(openai(&server), "gpt-5-mini", Budgets::default());
    let mut s = session(&r);
    let out = run(
        &mut s,
        &format!(
            r#"let c = llm_query("count them", #{{schema: {COUNT}}});
let l = llm_query("list them", #{{schema: #{{type: "array", items: #{{type: "string"}}}}}});
print(c.n); print(type_of(l)); print(l[0]);"#
        ),
    );
    assert_eq!(out, "2\narray\nAcme Corp\n");
    let requests = server.requests();
    let count = requests[0].json()["response_format"].clone();
    assert_eq!(count["json_schema"]["strict"], false, "{count}");
    assert_eq!(count["json_schema"]["schema"]["required"], json!(["n"]));
    let list = requests[1].json()["response_format"]["json_schema"].clone();
    assert_eq!(list["strict"], true, "{list}");
    assert_eq!(
        list["schema"],
        json!({"type": "object", "properties": {"value": {"type": "array", "items": {"type": "string"}}},
               "required": ["value"], "additionalProperties": false}),
        "an array schema is sent as the one property of an object"
    );
}

#[test]
fn json_true_sends_json_object_with_a_system_line_that_says_json() {
    let server = MockServer::start(|_| {
        Reply::openai_text(
            "Here it is:\n```json\n{\"total\": 3, \"ok\": true}\n```",
            20,
            10,
        )
    });
    let r = rig(openai(&server), "gpt-5-mini", Budgets::default());
    let mut s = session(&r);
    let out = run(
        &mut s,
        r#"let r = llm_query("Sum the numbers", #{json: true, system: "Be exact."}); print(r.total + 1); print(r.ok);"#,
    );
    assert_eq!(out, "4\ntrue\n");
    let req = &server.requests()[0];
    assert_eq!(
        req.json()["response_format"],
        json!({"type": "json_object"})
    );
    let system = req.system().unwrap();
    assert!(
        system.starts_with("Be exact.") && system.contains("JSON"),
        "{system}"
    );
}

/// Answers by the prompt's first word, in the shapes models really use.
fn shapes_server() -> MockServer {
    MockServer::start(|req| {
        let prompt = req.prompt();
        let text = match prompt.split_whitespace().next().unwrap_or("") {
            "bare" => r#"{"n": 1}"#.to_string(),
            "fenced" => "Sure.\n```json\n{\"n\": 2}\n```\nAnything else?".to_string(),
            "prose" => {
                "I counted [carefully] and the result is {\"n\": 3, \"note\": \"three\"}, as asked."
                    .to_string()
            }
            _ => "I cannot answer that.".to_string(),
        };
        Reply::openai_text(&text, 10, 5)
    })
}

#[test]
fn bare_fenced_and_prose_answers_are_parsed_and_a_typed_batch_returns_values() {
    let server = shapes_server();
    let r = rig(openai(&server), "gpt-5-mini", Budgets::default());
    let mut s = session(&r);
    let out = run(
        &mut s,
        &format!(
            r#"let rs = llm_batch(["bare count", "fenced count", "prose count"], #{{schema: {COUNT}}});
print(rs.map(|r| r.n)); print(rs[2].note); print(type_of(rs[0]));"#
        ),
    );
    assert_eq!(out, "[1, 2, 3]\nthree\nmap\n");
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "no answer needed a repair");
    assert!(requests
        .iter()
        .all(|r| r.json()["response_format"]["type"] == "json_schema"));
}

#[test]
fn an_invalid_answer_gets_one_repair_call_that_shows_the_model_its_errors() {
    let server = MockServer::start(|req| {
        if req.message_count() == 1 {
            Reply::openai_text(r#"{"n": "two"}"#, 10, 5)
        } else {
            Reply::openai_text(r#"{"n": 2}"#, 30, 5)
        }
    });
    let r = rig(openai(&server), "gpt-5-mini", Budgets::default());
    let mut s = session(&r);
    let out = run(
        &mut s,
        &format!(
            r#"let r = llm_query("how many?", #{{schema: {COUNT}}}); print(r.n); print(usage().calls);"#
        ),
    );
    assert_eq!(
        out, "2\n2\n",
        "the repair is a call of its own in the ledger"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let repair = messages(&requests[1]);
    assert_eq!(repair.len(), 3, "{repair:?}");
    assert_eq!(repair[0]["content"], "how many?");
    assert_eq!(
        repair[1],
        json!({"role": "assistant", "content": "{\"n\": \"two\"}"})
    );
    let prompt = repair[2]["content"].as_str().unwrap();
    assert!(
        prompt.contains("$.n: \"two\" is not of type \"integer\""),
        "the validation error reaches the model: {prompt}"
    );
    assert_eq!(
        requests[1].json()["response_format"],
        requests[0].json()["response_format"],
        "the repair asks for the same format"
    );
}

#[test]
fn a_repair_that_fails_too_gives_the_failure_map_in_llm_query_and_llm_batch() {
    let server = shapes_server();
    let r = rig(openai(&server), "gpt-5-mini", Budgets::default());
    let mut s = session(&r);
    let out = run(
        &mut s,
        &format!(
            r#"let r = llm_query("nonsense", #{{schema: {COUNT}}});
print(type_of(r) == "map" && "error" in r); print(r.error); print(r.raw);
let rs = llm_batch(["bare", "nonsense"], #{{schema: {COUNT}}});
print(rs[0].n); print("error" in rs[1]);"#
        ),
    );
    assert_eq!(
        out,
        "true\nthe answer did not validate after one repair: $: the answer contains no JSON value\nI cannot answer that.\n1\ntrue\n"
    );
    // One call and one repair for each failure, one call for the good item.
    assert_eq!(server.requests().len(), 5);
}

#[test]
fn a_failed_call_in_a_typed_batch_is_a_failure_map_and_untyped_batches_keep_error_strings() {
    let server = MockServer::start(|req| {
        if req.prompt().contains("FAIL") {
            Reply::error(400, "refused by policy")
        } else {
            Reply::openai_text(r#"{"n": 5}"#, 10, 5)
        }
    });
    let r = rig(openai(&server), "gpt-5-mini", Budgets::default());
    let mut s = session(&r);
    let out = run(
        &mut s,
        r#"let typed = llm_batch(["ok", "FAIL"], #{json: true});
print(typed[0].n); print(typed[1].error); print(typed[1].raw == "");
let plain = llm_batch(["ok", "FAIL"]); print(plain[1]);
let q = llm_query("FAIL", #{json: true}); print("error" in q);"#,
    );
    assert_eq!(
        out,
        "5\ngpt-5-mini: HTTP 400: mock_error: refused by policy\ntrue\nERROR: gpt-5-mini: HTTP 400: mock_error: refused by policy\ntrue\n"
    );
}

#[test]
fn the_repair_call_is_budgeted_and_a_refused_repair_keeps_the_first_answer() {
    let server = MockServer::start(|_| Reply::openai_text(r#"{"n": "two"}"#, 10, 5));
    let budgets = Budgets {
        max_calls: Some(1),
        ..Budgets::default()
    };
    let r = rig(openai(&server), "gpt-5-mini", budgets);
    let mut s = session(&r);
    let out = run(
        &mut s,
        &format!(
            r#"let r = llm_query("how many?", #{{schema: {COUNT}}}); print(r.raw); print(r.error);"#
        ),
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(r#"{"n": "two"}"#));
    let error = lines.next().unwrap();
    assert!(
        error.contains("the repair call failed") && error.contains("this call was not sent"),
        "{error}"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "the budget refused the repair before sending it"
    );
}

#[test]
fn anthropic_gets_forced_tool_use_and_the_tool_input_is_the_answer() {
    let server = MockServer::start(|req| {
        let schema = req.json()["tools"][0]["input_schema"].clone();
        if schema["properties"].get("value").is_some() {
            Reply::anthropic_tool_use("answer", json!({"value": ["Acme Corp"]}), 20, 10)
        } else if schema == json!({"type": "object"}) {
            Reply::anthropic_tool_use("answer", json!({"anything": 1}), 20, 10)
        } else {
            Reply::anthropic_tool_use(
                "answer",
                json!({"parties": ["Acme Corp", "Globex Ltd"], "renewal": "2027-01-01"}),
                20,
                10,
            )
        }
    });
    let config = LlmConfig {
        anthropic_base_url: server.url(),
        ..LlmConfig::default()
    };
    let r = rig(config, "anthropic:claude-haiku-4-5", Budgets::default());
    let mut s = session(&r);
    let out = run(
        &mut s,
        &format!(
            r#"let r = llm_query("parties?", #{{schema: {PARTIES}}}); print(r.parties[0]);
let l = llm_query("list", #{{schema: #{{type: "array", items: #{{type: "string"}}}}}}); print(l);
let j = llm_query("any", #{{json: true}}); print(j.anything);"#
        ),
    );
    assert_eq!(out, "Acme Corp\n[\"Acme Corp\"]\n1\n");
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let body = requests[0].json();
    assert_eq!(requests[0].path, "/v1/messages");
    assert_eq!(body["tools"][0]["name"], "answer");
    assert_eq!(body["tools"][0]["input_schema"], parties_schema());
    assert!(body["tools"][0]["description"].as_str().unwrap().len() > 10);
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "answer"})
    );
    assert!(body.get("response_format").is_none());
    assert_eq!(
        requests[1].json()["tools"][0]["input_schema"]["required"],
        json!(["value"])
    );
    assert_eq!(
        requests[2].json()["tools"][0]["input_schema"],
        json!({"type": "object"})
    );
}

#[test]
fn a_server_that_refuses_response_format_gets_a_prompt_instruction_from_then_on() {
    let server = MockServer::start(|req| {
        if req.json().get("response_format").is_some() {
            return Reply::error(
                400,
                "Unrecognized request argument supplied: response_format",
            );
        }
        Reply::openai_text("The answer is {\"n\": 4}.", 10, 5)
    });
    let r = rig(openai(&server), "llama", Budgets::default());
    let mut s = session(&r);
    let out = run(
        &mut s,
        &format!(
            r#"print(llm_query("first", #{{schema: {COUNT}}}).n); print(llm_query("second", #{{schema: {COUNT}}}).n); print(usage().calls);"#
        ),
    );
    assert_eq!(out, "4\n4\n2\n");
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "one refusal, then each call once");
    assert!(requests[0].json().get("response_format").is_some());
    for req in &requests[1..] {
        assert!(req.json().get("response_format").is_none());
        let system = req.system().unwrap();
        assert!(
            system.contains("JSON Schema") && system.contains(r#""required":["n"]"#),
            "the schema is in the instruction: {system}"
        );
    }
}

#[test]
fn a_model_configured_for_prompt_structured_output_never_gets_response_format() {
    let server = MockServer::start(|_| Reply::openai_text("```json\n{\"n\": 9}\n```", 10, 5));
    let mut config = openai(&server);
    config.models.insert(
        "local-model".into(),
        ModelEndpoint {
            structured_output: Some(StructuredOutput::Prompt),
            ..ModelEndpoint::default()
        },
    );
    let r = rig(config, "local-model", Budgets::default());
    let mut s = session(&r);
    assert_eq!(
        run(&mut s, r#"print(llm_query("n?", #{json: true}).n);"#),
        "9\n"
    );
    let req = &server.requests()[0];
    assert!(req.json().get("response_format").is_none());
    assert!(req.system().unwrap().contains("Answer with JSON only"));
}

#[test]
fn cache_keys_differ_with_and_without_a_schema() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start(|req| {
        let text = if req.json().get("response_format").is_some() {
            r#"{"n": 1}"#
        } else {
            "one"
        };
        Reply::openai_text(text, 10, 5)
    });
    let config = LlmConfig {
        cache: Some(CacheConfig {
            dir: dir.path().to_path_buf(),
            mode: CacheMode::ReadWrite,
        }),
        ..openai(&server)
    };
    let r = rig(config, "gpt-5-mini", Budgets::default());
    let mut s = session(&r);
    let cell = format!(
        r#"print(llm_query("q")); print(llm_query("q", #{{json: true}}).n); print(llm_query("q", #{{schema: {COUNT}}}).n);
print(llm_query("q", #{{schema: #{{type: "object", properties: #{{n: #{{type: "integer"}}}}}}}}).n);"#
    );
    assert_eq!(run(&mut s, &cell), "one\n1\n1\n1\n");
    assert_eq!(server.requests().len(), 4, "four formats, four keys");
    assert_eq!(run(&mut s, &cell), "one\n1\n1\n1\n");
    assert_eq!(
        server.requests().len(),
        4,
        "each is served from its own entry"
    );
    let u = run(&mut s, "print(usage().cache_hits);");
    assert_eq!(u, "4\n");
}

#[test]
fn bad_schema_options_are_script_errors_that_say_what_to_pass() {
    let server = shapes_server();
    let r = rig(openai(&server), "gpt-5-mini", Budgets::default());
    let mut s = session(&r);
    for (cell, expected) in [
        (
            r#"llm_query("bare", #{schema: 5})"#,
            "option schema must be a map",
        ),
        (
            r#"llm_query("bare", #{schema: #{type: "strng"}})"#,
            "option schema: schema (inline) is not a valid JSON Schema",
        ),
        (
            r#"llm_query("bare", #{schema: "{oops"})"#,
            "option schema is a string but not JSON",
        ),
        (
            r#"llm_query("bare", #{json: "yes"})"#,
            "option json must be true or false",
        ),
        (
            r#"llm_query("bare", #{shema: #{}})"#,
            "known options: model, max_tokens, temperature, system, schema, json",
        ),
    ] {
        let out = s.run_cell(cell);
        let error = out.error.unwrap_or_default();
        assert!(error.contains(expected), "{cell}: {error}");
    }
    assert!(server.requests().is_empty(), "nothing was sent");
    // A schema given as JSON text works like the map.
    let out = run(
        &mut s,
        r#"print(llm_query("bare", #{schema: `{"type": "object", "required": ["n"]}`}).n);"#,
    );
    assert_eq!(out, "1\n");
}

#[test]
fn a_batch_with_a_schema_per_task_and_typed_sub_calls_writes_answers_that_all_validate() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("a.txt"),
        "Acme Corp and Globex Ltd agree; renewal 2027-01-01.\n",
    )
    .unwrap();
    std::fs::write(
        root.join("b.txt"),
        "Initech and Umbrella agree; renewal 2028-06-30.\n",
    )
    .unwrap();
    let contract = json!({"type": "object",
        "properties": {"parties": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                       "renewal": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}},
        "required": ["parties", "renewal"], "additionalProperties": false});
    std::fs::write(root.join("contract.schema.json"), contract.to_string()).unwrap();
    let tasks = [
        json!({"id": "a", "query": "Parties and renewal date?", "context": "a.txt", "schema": "contract.schema.json"}),
        json!({"id": "b", "query": "Parties and renewal date?", "context": "b.txt", "schema": "contract.schema.json"}),
        json!({"id": "count", "query": "How many contracts mention a renewal?", "context_text": "x",
               "schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}),
    ];
    let lines: String = tasks.iter().map(|t| format!("{t}\n")).collect();
    std::fs::write(root.join("tasks.jsonl"), lines).unwrap();
    // The root model (gpt-5) asks the sub-model for typed values and
    // submits them; the sub-model (gpt-5-mini) answers the JSON its
    // response_format asks for, once in a fence and once with a wrong
    // field that its repair fixes.
    let server = MockServer::start(|req| {
        if req.model() == "gpt-5" {
            let body = if req.first_user_message().contains("How many") {
                r#"let rs = llm_batch(["one", "two"], #{json: true}); submit(#{n: rs.filter(|r| "renewal" in r).len()});"#
            } else {
                r#"let schema = #{type: "object", properties: #{parties: #{type: "array", items: #{type: "string"}}, renewal: #{type: "string"}}, required: ["parties", "renewal"], additionalProperties: false};
let r = llm_query(`Extract the parties and the renewal date:\n${context}`, #{schema: schema});
if "error" in r { print(r.error); } else { submit(r); }"#
            };
            return Reply::openai_text(&code(body), 1000, 100);
        }
        assert!(
            req.json()["response_format"].is_object(),
            "every sub-call asks for JSON"
        );
        let prompt = req.first_user_message();
        let text = if prompt.contains("Acme") {
            "```json\n{\"parties\": [\"Acme Corp\", \"Globex Ltd\"], \"renewal\": \"2027-01-01\"}\n```".to_string()
        } else if prompt.contains("Initech") && req.message_count() == 1 {
            r#"{"parties": "Initech, Umbrella", "renewal": "2028-06-30"}"#.to_string()
        } else if prompt.contains("Initech") {
            r#"{"parties": ["Initech", "Umbrella"], "renewal": "2028-06-30"}"#.to_string()
        } else {
            r#"{"renewal": "2029-01-01"}"#.to_string()
        };
        Reply::openai_text(&text, 200, 30)
    });
    let (exit, stdout, stderr) = output(
        rlm(root)
            .args(["batch", "tasks.jsonl", "--out", "results.jsonl", "--quiet"])
            .args(loopback_models(&server)),
    );
    assert_eq!(exit, 0, "{stdout}{stderr}");
    let results = jsonl(&root.join("results.jsonl"));
    assert_eq!(results.len(), 3);
    let check = rlm::schema::AnswerSchema::from_json(contract).unwrap();
    for r in &results {
        assert_eq!(r["status"], "submitted", "{r}");
        if r["id"] != "count" {
            assert!(check.check(&r["answer"]).is_ok(), "{r}");
        }
    }
    let by_id = |id: &str| results.iter().find(|r| r["id"] == id).unwrap()["answer"].clone();
    assert_eq!(
        by_id("a"),
        json!({"parties": ["Acme Corp", "Globex Ltd"], "renewal": "2027-01-01"})
    );
    assert_eq!(by_id("b")["parties"], json!(["Initech", "Umbrella"]));
    assert_eq!(by_id("count"), json!({"n": 2}));
    let repairs = server
        .requests()
        .iter()
        .filter(|r| r.model() == "gpt-5-mini" && r.message_count() == 3)
        .count();
    assert_eq!(repairs, 1, "only task b's answer needed a repair");
}

#[test]
fn azure_deployments_get_the_same_response_format_as_openai() {
    let server = MockServer::start(|_| Reply::openai_text(r#"{"n": 7}"#, 10, 5));
    let config = LlmConfig {
        azure_base_url: Some(server.url()),
        azure_api_key: rlm::llm::ApiKey::new("azure-key-0123456789abcdef"),
        azure_key_base_url: Some(server.url()),
        ..LlmConfig::default()
    };
    let r = rig(config, "azure:gpt-4o-prod", Budgets::default());
    let mut s = session(&r);
    assert_eq!(
        run(
            &mut s,
            &format!(r#"print(llm_query("n?", #{{schema: {COUNT}}}).n);"#)
        ),
        "7\n"
    );
    let req = &server.requests()[0];
    assert!(
        req.path
            .starts_with("/openai/deployments/gpt-4o-prod/chat/completions"),
        "{}",
        req.path
    );
    assert_eq!(req.json()["response_format"]["type"], "json_schema");
    assert_eq!(
        req.json()["response_format"]["json_schema"]["name"],
        "answer"
    );
}

#[test]
fn rlm_run_with_an_anthropic_sub_model_submits_the_tool_input_as_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.txt"),
        "Acme Corp and Globex Ltd renew on 2027-01-01.\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("schema.json"), parties_schema().to_string()).unwrap();
    let root = MockServer::start(|_| {
        Reply::openai_text(
            &code(&format!(
                "let r = llm_query(`Parties and renewal: ${{context}}`, #{{schema: {PARTIES}}}); submit(r);"
            )),
            1000,
            100,
        )
    });
    let sub = MockServer::start(|req| {
        assert_eq!(
            req.json()["tool_choice"],
            json!({"type": "tool", "name": "answer"})
        );
        Reply::anthropic_tool_use(
            "answer",
            json!({"parties": ["Acme Corp", "Globex Ltd"], "renewal": "2027-01-01"}),
            50,
            20,
        )
    });
    let (exit, stdout, stderr) = output(
        rlm(dir.path())
            .args([
                "run",
                "--context",
                "c.txt",
                "-q",
                "Who signed?",
                "--schema",
                "schema.json",
            ])
            .args([
                "--output",
                "json",
                "--quiet",
                "--model",
                "gpt-5",
                "--base-url",
            ])
            .arg(root.openai_url())
            .args([
                "--sub-model",
                "anthropic:claude-haiku-4-5",
                "--anthropic-base-url",
            ])
            .arg(sub.url()),
    );
    assert_eq!(exit, 0, "{stdout}{stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["status"], "submitted");
    assert_eq!(
        result["answer"],
        json!({"parties": ["Acme Corp", "Globex Ltd"], "renewal": "2027-01-01"})
    );
    let requests = sub.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/messages");
    assert_eq!(
        requests[0].json()["tools"][0]["input_schema"],
        parties_schema()
    );
}
