//! The model seam and per-model endpoints, through the library and the
//! binary against loopback servers: a custom `Model` driving the real
//! loop, the root and its sub-calls on two servers, `[models."NAME"]`
//! tables (OpenAI-compatible, Anthropic, Azure), and which key goes where.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rlm::config::{Overrides, Settings};
use rlm::driver::{Rlm, RunStatus};
use rlm::llm::{
    ApiKey, BoxFuture, CallOptions, ChatRequest, Completion, Failure, Ledger, LlmClient, LlmConfig,
    LlmError, Model, ModelCall, ModelEndpoint, ModelSpec, PriceTable, Provider, Recording,
    Response, RetryPolicy,
};
use rlm::testing::{MockServer, Reply, Request};
use rlm::Context;

mod common;
use common::{code, output, rlm};

const KEY: &str = "sk-pairing-test-4Hq9Zr2LmX7wKpV3";
const OTHER_KEY: &str = "sk-own-key-test-8Tn3Wb6YcQ1jRsD5";

fn ledger() -> Arc<Ledger> {
    Arc::new(Ledger::new(PriceTable::default(), Default::default()))
}

// ---------------------------------------------------------------------------
// A custom model through the real loop
// ---------------------------------------------------------------------------

/// Root turns: first asks a sub-model, then submits what it said. Sub-calls
/// answer with their prompt upper-cased. Every call's kind is remembered.
struct Scripted {
    seen: Mutex<Vec<(&'static str, String)>>,
}

impl Model for Scripted {
    fn complete<'a>(&'a self, call: ModelCall<'a>) -> BoxFuture<'a, Result<Response, Failure>> {
        Box::pin(async move {
            self.seen
                .lock()
                .unwrap()
                .push((call.tag.kind, call.model.to_string()));
            let text = match call.tag.kind {
                "root" if call.request.messages.len() == 1 => {
                    code(r#"let a = llm_query("shout this"); print(a);"#)
                }
                "root" => code("submit(a);"),
                _ => call.prompt().to_uppercase(),
            };
            Ok(Completion {
                text,
                input_tokens: 10,
                output_tokens: 3,
                ..Completion::default()
            }
            .into())
        })
    }

    fn identity(&self) -> String {
        "scripted".into()
    }
}

#[test]
fn a_custom_model_answers_root_turns_and_sub_calls_through_the_real_loop() {
    let model = Arc::new(Scripted {
        seen: Mutex::new(Vec::new()),
    });
    let client = LlmClient::new(LlmConfig::default(), ledger())
        .unwrap()
        .with_model("in-house", model.clone())
        .with_model("in-house-small", model.clone());
    let rlm = Rlm::builder()
        .model("in-house")
        .sub_model("in-house-small")
        .shared_client(client.clone(), "t")
        .build()
        .unwrap();
    let result = rlm.run("Shout.", &Context::from_string("t", "text"));
    assert_eq!(result.status, RunStatus::Submitted, "{:?}", result.error);
    assert_eq!(result.answer, Some(serde_json::json!("SHOUT THIS")));
    let seen = model.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("root", "in-house".to_string()),
            ("sub", "in-house-small".to_string()),
            ("root", "in-house".to_string()),
        ]
    );
    // The client's ledger counted them, as any model's calls.
    let usage = client.ledger().by_model();
    assert_eq!(
        (usage["in-house"].calls, usage["in-house-small"].calls),
        (2, 1)
    );
    assert_eq!(usage["in-house"].input_tokens, 20);
}

/// Fails with a retryable error (and a Retry-After) `n` times, then answers.
struct Flaky {
    left: Mutex<usize>,
}

impl Model for Flaky {
    fn complete<'a>(&'a self, _call: ModelCall<'a>) -> BoxFuture<'a, Result<Response, Failure>> {
        Box::pin(async move {
            let mut left = self.left.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(Failure::retryable(
                    LlmError::Transport {
                        model: "flaky".into(),
                        message: "try later".into(),
                    },
                    Some(Duration::from_millis(50)),
                ));
            }
            Ok(Completion {
                text: "at last".into(),
                ..Completion::default()
            }
            .into())
        })
    }
}

#[test]
fn a_custom_models_retryable_failures_are_retried_after_its_retry_after_and_recorded() {
    let config = LlmConfig {
        retry: RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(60),
        },
        ..LlmConfig::default()
    };
    let exchanges = Arc::new(Mutex::new(Vec::new()));
    let sink = exchanges.clone();
    let flaky: Arc<dyn Model> = Arc::new(Flaky {
        left: Mutex::new(2),
    });
    let recorded = Recording::new(flaky, move |x| {
        sink.lock().unwrap().push(x.to_json());
    });
    let client = LlmClient::new(config, ledger())
        .unwrap()
        .with_model("flaky", Arc::new(recorded));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let started = std::time::Instant::now();
    let answer = runtime
        .block_on(client.complete(
            &ModelSpec::parse("flaky"),
            &ChatRequest::prompt("hello"),
            &CallOptions::default(),
        ))
        .unwrap();
    assert_eq!(answer.text, "at last");
    // Two waits of the model's 50 ms, not the policy's 30 s backoff.
    assert!(started.elapsed() < Duration::from_secs(5));
    let usage = &client.ledger().by_model()["flaky"];
    assert_eq!((usage.calls, usage.retries, usage.errors), (1, 2, 0));
    let exchanges = exchanges.lock().unwrap().clone();
    assert_eq!(exchanges.len(), 3, "every attempt is an exchange");
    assert!(exchanges[0]["error"]
        .as_str()
        .unwrap()
        .contains("try later"));
    assert_eq!(exchanges[2]["answer"], "at last");
    assert_eq!(exchanges[2]["messages"][0]["content"], "hello");
}

// ---------------------------------------------------------------------------
// Two endpoints in one run
// ---------------------------------------------------------------------------

/// A root server: asks the sub-model once, then submits its answer.
fn root_server() -> MockServer {
    MockServer::start(|req: &Request| {
        if !req.is_root_turn() {
            return Reply::error(400, "sub-calls do not belong here");
        }
        let step = if req.message_count() == 1 {
            code(r#"let a = llm_query("what is two and two?"); print(a);"#)
        } else {
            code("submit(a);")
        };
        Reply::openai_text(&step, 100, 10)
    })
}

/// A sub-call server, Anthropic's or OpenAI's protocol by path.
fn sub_server() -> MockServer {
    MockServer::start(|req: &Request| {
        if req.is_root_turn() {
            return Reply::error(400, "root turns do not belong here");
        }
        if req.path.ends_with("/messages") {
            Reply::anthropic_text("four (anthropic)", 5, 1)
        } else {
            Reply::openai_text("four", 5, 1)
        }
    })
}

#[test]
fn the_root_and_its_sub_calls_run_on_two_servers_through_the_library() {
    let (root, sub) = (root_server(), sub_server());
    let mut config = LlmConfig {
        openai_base_url: root.openai_url(),
        ..LlmConfig::default()
    };
    config.models.insert(
        "local-sub".into(),
        ModelEndpoint {
            base_url: Some(sub.openai_url()),
            ..ModelEndpoint::default()
        },
    );
    let rlm = Rlm::builder()
        .model("gpt-5")
        .sub_model("local-sub")
        .llm_config(config)
        .build()
        .unwrap();
    let result = rlm.run("Add.", &Context::from_string("t", "2 + 2"));
    assert_eq!(result.status, RunStatus::Submitted, "{:?}", result.error);
    assert_eq!(result.answer, Some(serde_json::json!("four")));
    assert_eq!(root.requests().len(), 2);
    assert!(root.requests().iter().all(Request::is_root_turn));
    let subs = sub.requests();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].model(), "local-sub");
    assert_eq!(subs[0].path, "/v1/chat/completions");
}

#[test]
fn the_root_and_its_sub_calls_run_on_two_servers_through_the_cli_each_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ctx.txt"), "2 + 2").unwrap();
    let (root, sub) = (root_server(), sub_server());
    let run = |sub_model: &str, sub_url: &str| {
        output(
            rlm(dir.path())
                .args(["run", "--context", "ctx.txt", "--query", "Add.", "--quiet"])
                .args(["--model", "gpt-5", "--sub-model", sub_model])
                .args(["--sub-base-url", sub_url, "--max-retries", "0"])
                .args(["--output", "json"])
                // The root's key, paired with the root's server only.
                .env("OPENAI_API_KEY", KEY)
                .env("OPENAI_BASE_URL", root.openai_url())
                .env("ANTHROPIC_API_KEY", OTHER_KEY),
        )
    };
    let (code, stdout, stderr) = run("qwen2.5-coder:32b", &sub.openai_url());
    assert_eq!(code, 0, "{stderr}");
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["answer"], "four");
    assert_eq!(result["usage"]["qwen2.5-coder:32b"]["calls"], 1);
    // An Anthropic sub-model on a server of its own, from the same run.
    let (code, stdout, stderr) = run("anthropic:claude-haiku-4-5", &sub.url());
    assert_eq!(code, 0, "{stderr}");
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["answer"], "four (anthropic)");

    let roots = root.requests();
    assert_eq!(roots.len(), 4);
    assert!(roots
        .iter()
        .all(|r| r.header("authorization") == Some(&format!("Bearer {KEY}"))));
    let subs = sub.requests();
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0].path, "/v1/chat/completions");
    assert_eq!(subs[1].path, "/v1/messages");
    for r in &subs {
        for h in ["authorization", "x-api-key", "api-key"] {
            assert_eq!(r.header(h), None, "{h} sent to the sub-model's server");
        }
    }
}

#[test]
fn a_sub_base_url_needs_a_sub_model_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ctx.txt"), "x").unwrap();
    for models in [
        &["--model", "m"][..],
        &["--model", "m", "--sub-model", "m"],
        &["--model", "m", "--sub-model", "openai:m"],
    ] {
        let (code, _, stderr) = output(
            rlm(dir.path())
                .args(["run", "--context", "ctx.txt", "--query", "q"])
                .args(models)
                .args(["--base-url", "http://127.0.0.1:9/v1"])
                .args(["--sub-base-url", "http://127.0.0.1:10/v1"]),
        );
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("sub_base_url"), "{stderr}");
    }
}

// ---------------------------------------------------------------------------
// Which key goes where
// ---------------------------------------------------------------------------

/// Answers every call, or 401 when it carries no credential at all.
fn auth_server(require: bool) -> MockServer {
    MockServer::start(move |req: &Request| {
        let authed = ["authorization", "x-api-key", "api-key"]
            .iter()
            .any(|h| req.header(h).is_some());
        if require && !authed {
            return Reply::error(401, "no key");
        }
        if req.path.contains("/messages") {
            Reply::anthropic_text("ok", 1, 1)
        } else {
            Reply::openai_text("ok", 1, 1)
        }
    })
}

/// `rlm exec` making one sub-call to `model`, in `dir`, with `args` and `env`.
fn exec_one(dir: &Path, model: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    std::fs::write(dir.join("ctx.txt"), "x").unwrap();
    std::fs::write(dir.join("probe.rhai"), r#"print(llm_query("hi"));"#).unwrap();
    let mut c = rlm(dir);
    c.args([
        "exec",
        "probe.rhai",
        "--context",
        "ctx.txt",
        "--max-retries",
        "0",
    ])
    .args(["--sub-model", model])
    .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    output(&mut c)
}

/// The credential headers of the server's last request.
fn last_auth(server: &MockServer) -> Vec<(String, String)> {
    let requests = server.requests();
    let last = requests.last().expect("a request");
    ["authorization", "x-api-key", "api-key"]
        .iter()
        .filter_map(|h| last.header(h).map(|v| (h.to_string(), v.to_string())))
        .collect()
}

#[test]
fn a_key_goes_only_to_the_base_url_it_is_paired_with() {
    let dir = tempfile::tempdir().unwrap();
    let server = auth_server(false);
    let (openai, anthropic) = (server.openai_url(), server.url());
    let elsewhere = auth_server(false);
    let bearer = vec![("authorization".to_string(), format!("Bearer {KEY}"))];

    // --base-url alone: the key stays home.
    let (code, _, stderr) = exec_one(
        dir.path(),
        "m",
        &["--base-url", &openai],
        &[("OPENAI_API_KEY", KEY)],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(last_auth(&server), vec![]);
    // OPENAI_BASE_URL beside the key pairs them; the flag naming the same
    // server (by origin) is then fine too.
    for args in [&[][..], &["--base-url", &format!("{}/", server.url())]] {
        let (code, _, stderr) = exec_one(
            dir.path(),
            "m",
            args,
            &[("OPENAI_API_KEY", KEY), ("OPENAI_BASE_URL", &openai)],
        );
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(last_auth(&server), bearer);
    }
    // Paired with another server: not sent to this one.
    let (code, _, stderr) = exec_one(
        dir.path(),
        "m",
        &["--base-url", &openai],
        &[
            ("OPENAI_API_KEY", KEY),
            ("OPENAI_BASE_URL", &elsewhere.openai_url()),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(last_auth(&server), vec![]);
    assert!(elsewhere.requests().is_empty());

    // Anthropic: the same rule, its own variables.
    let claude = "anthropic:claude-haiku-4-5";
    let (code, _, stderr) = exec_one(
        dir.path(),
        claude,
        &["--anthropic-base-url", &anthropic],
        &[("ANTHROPIC_API_KEY", KEY)],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(last_auth(&server), vec![]);
    let (code, _, stderr) = exec_one(
        dir.path(),
        claude,
        &[],
        &[
            ("ANTHROPIC_API_KEY", KEY),
            ("ANTHROPIC_BASE_URL", &anthropic),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        last_auth(&server),
        vec![("x-api-key".to_string(), KEY.to_string())]
    );

    // A model's own key goes to the base_url beside it, and OPENAI_API_KEY
    // (paired elsewhere) does not.
    let toml = dir.path().join("rlm.toml");
    std::fs::write(
        &toml,
        format!(
            "[models.own]\nbase_url = \"{openai}\"\napi_key_env = \"OWN_KEY\"\n\n[models.plain]\nbase_url = \"{openai}\"\n"
        ),
    )
    .unwrap();
    let env = [("OPENAI_API_KEY", KEY), ("OWN_KEY", OTHER_KEY)];
    let (code, _, stderr) = exec_one(dir.path(), "own", &[], &env);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        last_auth(&server),
        vec![("authorization".to_string(), format!("Bearer {OTHER_KEY}"))]
    );
    let (code, _, stderr) = exec_one(dir.path(), "plain", &[], &env);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(last_auth(&server), vec![]);
    // Named and not set: refused before anything is sent, naming it.
    let before = server.requests().len();
    let (code, _, stderr) = exec_one(dir.path(), "own", &[], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("OWN_KEY"), "{stderr}");
    assert_eq!(server.requests().len(), before);
    std::fs::remove_file(&toml).unwrap();
}

#[test]
fn a_server_that_wants_a_key_it_was_not_given_gets_a_401_that_says_how_to_pair_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = auth_server(true);
    let (code, _, stderr) = exec_one(
        dir.path(),
        "m",
        &["--base-url", &server.openai_url()],
        &[("OPENAI_API_KEY", KEY)],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(
        stderr.contains("OPENAI_API_KEY is set but was not sent")
            && stderr.contains("OPENAI_BASE_URL"),
        "{stderr}"
    );
    assert!(!stderr.contains(&KEY[10..]), "{stderr}");
    assert_eq!(server.requests().len(), 1, "a 401 is not retried");
}

#[test]
fn a_run_refuses_a_model_whose_own_key_is_not_set_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ctx.txt"), "x").unwrap();
    let server = root_server();
    std::fs::write(
        dir.path().join("rlm.toml"),
        format!(
            "[models.\"gpt-5\"]\nbase_url = \"{}\"\napi_key_env = \"RLM_TEST_UNSET_KEY\"\n",
            server.openai_url()
        ),
    )
    .unwrap();
    let (code, _, stderr) = output(
        rlm(dir.path())
            .args([
                "run",
                "--context",
                "ctx.txt",
                "--query",
                "q",
                "--model",
                "gpt-5",
            ])
            .env_remove("RLM_TEST_UNSET_KEY"),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("RLM_TEST_UNSET_KEY"), "{stderr}");
    assert!(server.requests().is_empty());
}

// ---------------------------------------------------------------------------
// [models."NAME"] on the wire
// ---------------------------------------------------------------------------

fn client(config: LlmConfig) -> LlmClient {
    LlmClient::new(
        LlmConfig {
            retry: RetryPolicy {
                max_retries: 0,
                ..RetryPolicy::default()
            },
            ..config
        },
        ledger(),
    )
    .unwrap()
}

fn ask(c: &LlmClient, model: &str) -> Result<Completion, LlmError> {
    tokio::runtime::Runtime::new().unwrap().block_on(c.complete(
        &ModelSpec::parse(model),
        &ChatRequest::prompt("hi"),
        &CallOptions::default(),
    ))
}

#[test]
fn a_models_table_sets_its_defaults_headers_and_reasoning_effort_on_the_wire() {
    let server = auth_server(false);
    let mut config = LlmConfig::default();
    config.models.insert(
        "tuned".into(),
        ModelEndpoint {
            base_url: Some(server.openai_url()),
            headers: vec![("X-Title".into(), "rlm".into())],
            max_tokens: Some(77),
            temperature: Some(0.5),
            reasoning_effort: Some("low".into()),
            ..ModelEndpoint::default()
        },
    );
    config.models.insert(
        "claude-tuned".into(),
        ModelEndpoint {
            provider: Some(Provider::Anthropic),
            base_url: Some(server.url()),
            reasoning_effort: Some("medium".into()),
            headers: vec![("anthropic-version".into(), "2099-01-01".into())],
            ..ModelEndpoint::default()
        },
    );
    let c = client(config);
    assert_eq!(ask(&c, "tuned").unwrap().text, "ok");
    let r = &server.requests()[0];
    assert_eq!(r.header("x-title"), Some("rlm"));
    let body = r.json();
    assert_eq!(
        (&body["model"], &body["max_tokens"], &body["temperature"]),
        (&"tuned".into(), &77.into(), &0.5.into())
    );
    assert_eq!(body["reasoning_effort"], "low");
    // The request as sent carries the defaults, for the ledger and observers.
    assert_eq!(c.ledger().by_model()["tuned"].calls, 1);

    assert_eq!(ask(&c, "claude-tuned").unwrap().text, "ok");
    let r = &server.requests()[1];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("anthropic-version"), Some("2099-01-01"));
    assert_eq!(r.json()["output_config"]["effort"], "medium");
    assert_eq!(r.json()["model"], "claude-tuned");
}

#[test]
fn azure_deployments_get_their_url_api_version_and_api_key_header() {
    let server = auth_server(true);
    let mut config = LlmConfig {
        azure_base_url: Some(server.url()),
        azure_api_key: ApiKey::new(KEY),
        azure_key_base_url: Some(server.url()),
        ..LlmConfig::default()
    };
    config.models.insert(
        "o3-prod".into(),
        ModelEndpoint {
            provider: Some(Provider::Azure),
            base_url: Some(format!("{}/", server.url())),
            api_key_env: Some("O3_KEY".into()),
            api_key: ApiKey::new(OTHER_KEY),
            key_base_url: Some(server.url()),
            api_version: Some("2025-01-01-preview".into()),
            reasoning_effort: Some("high".into()),
            max_tokens: Some(100),
            ..ModelEndpoint::default()
        },
    );
    let c = client(config);
    // `azure:NAME` through AZURE_OPENAI_ENDPOINT's settings, the GA version.
    assert_eq!(ask(&c, "azure:gpt-4o-prod").unwrap().text, "ok");
    let r = &server.requests()[0];
    assert_eq!(
        r.path,
        "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(r.header("api-key"), Some(KEY));
    assert_eq!(r.header("authorization"), None);
    // A table's deployment: its own key, version and options.
    assert_eq!(ask(&c, "o3-prod").unwrap().text, "ok");
    let r = &server.requests()[1];
    assert_eq!(
        r.path,
        "/openai/deployments/o3-prod/chat/completions?api-version=2025-01-01-preview"
    );
    assert_eq!(r.header("api-key"), Some(OTHER_KEY));
    let body = r.json();
    assert_eq!(body["max_completion_tokens"], 100);
    assert_eq!(body["reasoning_effort"], "high");
    assert!(body.get("max_tokens").is_none());
    assert_eq!(c.ledger().by_model()["o3-prod"].calls, 1);

    // No key that belongs to it: refused before sending.
    let c = client(LlmConfig {
        azure_base_url: Some(server.url()),
        azure_api_key: ApiKey::new(KEY),
        ..LlmConfig::default()
    });
    let err = ask(&c, "azure:gpt-4o-prod").unwrap_err();
    assert!(matches!(err, LlmError::NoApiKey { .. }), "{err}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn azure_through_the_environment_and_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let server = auth_server(true);
    let (code, stdout, stderr) = exec_one(
        dir.path(),
        "azure:chat-prod",
        &[],
        &[
            ("AZURE_OPENAI_API_KEY", KEY),
            ("AZURE_OPENAI_ENDPOINT", &server.url()),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok"), "{stdout}");
    assert_eq!(
        last_auth(&server),
        vec![("api-key".to_string(), KEY.to_string())]
    );
    // No endpoint at all: exit 2 before anything, naming the variable.
    let (code, _, stderr) = exec_one(
        dir.path(),
        "azure:chat-prod",
        &[],
        &[("AZURE_OPENAI_API_KEY", KEY)],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("AZURE_OPENAI_ENDPOINT"), "{stderr}");
}

// ---------------------------------------------------------------------------
// The README's example
// ---------------------------------------------------------------------------

#[test]
fn the_readmes_rlm_toml_loads() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("```toml\n# rlm.toml\n")
        .expect("the README's rlm.toml")
        + 8;
    let len = readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rlm.toml");
    std::fs::write(&file, &readme[start..start + len]).unwrap();
    let s = Settings::resolve_with(
        &Overrides {
            config: Some(file),
            ..Default::default()
        },
        |name| (name == "OPENROUTER_API_KEY").then(|| OTHER_KEY.to_string()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(s.llm.cache.is_some());
    let sub = ModelSpec::parse(s.sub_model.as_deref().unwrap());
    let e = s.llm.endpoint(&sub).unwrap();
    assert!(e.key.is_none() && e.base_url.starts_with("http://localhost:11434"));
    let routed = s
        .llm
        .endpoint(&ModelSpec::parse("openai/gpt-5-mini"))
        .unwrap();
    assert!(routed.key.is_some());
    assert_eq!(
        s.llm
            .endpoint(&ModelSpec::parse("claude-opus-4-5"))
            .map(|e| e.provider)
            .err(),
        Some(LlmError::NoApiKey {
            model: "claude-opus-4-5".into(),
            var: "ANTHROPIC_API_KEY".into(),
            fix: "set ANTHROPIC_API_KEY, or point --anthropic-base-url at a server that needs none"
                .into(),
        })
    );
    assert!(s.prices.lookup("qwen2.5-coder:32b").is_some());
}

#[test]
fn bad_models_tables_are_refused_naming_the_model_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rlm.toml");
    for (table, key) in [
        ("[models.m]\nprovider = \"gemini\"\n", "provider"),
        (
            "[models.\"anthropic:m\"]\nprovider = \"openai\"\n",
            "provider",
        ),
        ("[models.m]\nbase_url = \"localhost:1\"\n", "base_url"),
        ("[models.m]\ntemperature = 9.0\n", "temperature"),
        ("[models.m]\nmax_tokens = 0\n", "max_tokens"),
        ("[models.m]\napi_version = \"2024-10-21\"\n", "api_version"),
        (
            "[models.m]\nheaders = { \"bad header\" = \"x\" }\n",
            "headers",
        ),
        ("[models.m]\nbase_ur = \"http://x\"\n", "base_ur"),
        ("cache_mode = \"read\"\n", "cache_mode"),
    ] {
        std::fs::write(&file, table).unwrap();
        let err = Settings::resolve_with(
            &Overrides {
                config: Some(file.clone()),
                ..Default::default()
            },
            |_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(key), "{table}: {err}");
    }
}

#[test]
fn a_built_in_model_wrapped_and_registered_back_keeps_its_endpoint_and_the_cache() {
    let server = auth_server(false);
    let dir = tempfile::tempdir().unwrap();
    let client = LlmClient::new(
        LlmConfig {
            openai_base_url: server.openai_url(),
            cache: Some(rlm::llm::CacheConfig {
                dir: dir.path().to_path_buf(),
                mode: rlm::llm::CacheMode::ReadWrite,
            }),
            ..LlmConfig::default()
        },
        ledger(),
    )
    .unwrap();
    let spec = ModelSpec::parse("gpt-5-mini");
    let exchanges = Arc::new(Mutex::new(Vec::new()));
    let sink = exchanges.clone();
    let recorded = Recording::new(client.model(&spec).unwrap(), move |x| {
        sink.lock().unwrap().push((x.stored, x.to_json()));
    });
    let client = client.with_model("gpt-5-mini", Arc::new(recorded));
    for _ in 0..2 {
        assert_eq!(ask(&client, "gpt-5-mini").unwrap().text, "ok");
    }
    // One exchange on the wire; the second call never reached the recording.
    assert_eq!(server.requests().len(), 1);
    let exchanges = exchanges.lock().unwrap().clone();
    assert_eq!(exchanges.len(), 1);
    assert_eq!(
        (exchanges[0].0, &exchanges[0].1["answer"]),
        (false, &"ok".into())
    );
    let usage = &client.ledger().by_model()["gpt-5-mini"];
    assert_eq!((usage.calls, usage.cache_hits), (1, 1));
}

#[test]
fn the_builder_takes_a_custom_model_and_its_calls_reach_the_sinks() {
    use rlm::events::{Event, RunEvent, RunSink};
    #[derive(Default)]
    struct SubCalls(Mutex<Vec<String>>);
    impl RunSink for SubCalls {
        fn event(&self, event: &RunEvent<'_>) {
            if let Event::SubCallEnd(record) = &event.event {
                self.0.lock().unwrap().push(record.model.to_string());
            }
        }
    }
    let model = Arc::new(Scripted {
        seen: Mutex::new(Vec::new()),
    });
    let sink = Arc::new(SubCalls::default());
    let rlm = Rlm::builder()
        .model("in-house")
        .sub_model("in-house-small")
        .custom_model("in-house", model.clone())
        .custom_model("in-house-small", model.clone())
        .sink(sink.clone())
        .build()
        .unwrap();
    let result = rlm.run("Shout.", &Context::from_string("t", "text"));
    assert_eq!(result.status, RunStatus::Submitted, "{:?}", result.error);
    assert_eq!(result.answer, Some(serde_json::json!("SHOUT THIS")));
    assert_eq!(model.seen.lock().unwrap().len(), 3);
    // Without a shared client, the run's own sinks see its sub-calls.
    assert_eq!(*sink.0.lock().unwrap(), vec!["in-house-small".to_string()]);
    let usage = rlm.client().ledger().by_model();
    assert_eq!(
        (usage["in-house"].calls, usage["in-house-small"].calls),
        (2, 1)
    );
}
