//! docs/config.md documents exactly the keys `rlm.toml` accepts: its
//! tables list every key the parser knows and no other, and its example
//! file uses every documented key and loads through `Settings::resolve`.
//!
//! The parser's own list comes from its errors: `rlm.toml` is read with
//! serde's `deny_unknown_fields`, whose refusal of an unknown key lists
//! every expected one, so a key added to `src/config.rs` without a row in
//! the doc fails here. Prices are read by `rlm::llm::Price`, which takes
//! unknown keys silently; its fields are read off its `Deserialize`
//! instead.

use std::collections::BTreeSet;
use std::path::Path;

use rlm::config::{Overrides, Settings};

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The keys in the first column of the doc's tables, as written there:
/// `model`, `budgets.max_calls`, `prices."MODEL".input_per_million`.
fn documented_keys(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |"))
        .map(|(key, _)| key.to_string())
        .collect()
}

/// The ```toml block of the doc.
fn example(doc: &str) -> &str {
    let start = doc.find("```toml\n").expect("an example toml block") + "```toml\n".len();
    let len = doc[start..].find("```").expect("the end of the example");
    &doc[start..start + len]
}

/// Every key of a TOML table, dotted; a model's name under `prices`
/// becomes `"MODEL"` and under `models` `"NAME"`, as the doc writes them.
/// A model's `headers` and `price` are one key each: tables of their own
/// shape, documented by one row.
fn toml_keys(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let key = match prefix {
            "prices." => "\"MODEL\"".to_string(),
            "models." => "\"NAME\"".to_string(),
            _ => key.clone(),
        };
        let leaf = prefix == "models.\"NAME\"." && (key == "headers" || key == "price");
        match value {
            toml::Value::Table(inner) if !leaf => toml_keys(inner, &format!("{prefix}{key}."), out),
            _ => {
                out.insert(format!("{prefix}{key}"));
            }
        }
    }
}

fn resolve(file_text: &str) -> Result<Settings, rlm::config::ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rlm.toml");
    std::fs::write(&file, file_text).unwrap();
    Settings::resolve_with(
        &Overrides {
            config: Some(file),
            ..Default::default()
        },
        |_| None,
    )
}

/// The keys the parser expects in a table, from its refusal of an unknown one.
fn accepted_keys(header: &str, prefix: &str) -> BTreeSet<String> {
    let err = resolve(&format!("{header}\nnot_a_key_of_rlm = 1\n"))
        .expect_err("an unknown key is refused")
        .to_string();
    let (_, expected) = err
        .split_once("expected ")
        .unwrap_or_else(|| panic!("serde's list of expected keys in {err:?}"));
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| format!("{prefix}{k}"))
        .collect()
}

/// The field names a `Deserialize` type asks for, read by a deserializer
/// that only records what `deserialize_struct` is given.
fn struct_fields<T: for<'de> serde::Deserialize<'de>>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};

    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

#[test]
fn the_doc_lists_every_key_the_parser_accepts_and_no_other() {
    let documented = documented_keys(&doc());
    let mut accepted = accepted_keys("", "");
    // Tables are documented by their keys, not by their own names.
    assert!(
        accepted.remove("budgets") && accepted.remove("prices") && accepted.remove("models"),
        "{accepted:?}"
    );
    accepted.extend(accepted_keys("[budgets]", "budgets."));
    accepted.extend(accepted_keys("[models.m]", "models.\"NAME\"."));
    accepted.extend(
        struct_fields::<rlm::llm::Price>()
            .iter()
            .map(|f| format!("prices.\"MODEL\".{f}")),
    );
    let undocumented: Vec<_> = accepted.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "keys the parser accepts but docs/config.md does not list: {undocumented:?}; \
         keys docs/config.md lists but the parser refuses: {unknown:?}"
    );
}

#[test]
fn the_example_uses_every_documented_key_and_loads() {
    let doc = doc();
    let text = example(&doc);
    let table: toml::Table = text.parse().expect("the example is TOML");
    let mut used = BTreeSet::new();
    toml_keys(&table, "", &mut used);
    assert_eq!(
        used,
        documented_keys(&doc),
        "the example and the tables differ"
    );

    let s = resolve(text).unwrap_or_else(|e| panic!("the example does not load: {e}"));
    assert_eq!(s.model.as_deref(), Some("gpt-5"));
    assert_eq!(s.sub_model.as_deref(), Some("gpt-5-mini"));
    assert_eq!(s.llm.openai_base_url, "http://localhost:8000/v1");
    assert_eq!(s.llm.concurrency, 32);
    assert_eq!(s.llm.requests_per_minute, Some(500));
    assert_eq!(s.llm.request_timeout, std::time::Duration::from_secs(300));
    assert_eq!(s.sub_context_tokens, 272_000);
    assert_eq!(s.budgets.max_calls, Some(5000));
    let cache = s.llm.cache.as_ref().expect("the example's cache");
    assert!(cache.dir.ends_with(".rlm-cache") && cache.dir.is_absolute());
    assert_eq!(cache.mode, rlm::llm::CacheMode::ReadWrite);
    let sub = &s.llm.models["gpt-5-mini"];
    assert_eq!(sub.base_url.as_deref(), Some("http://localhost:8001/v1"));
    let routed = &s.llm.models["openai/o4-mini"];
    assert_eq!(routed.api_key_env.as_deref(), Some("OPENROUTER_API_KEY"));
    assert_eq!(routed.reasoning_effort.as_deref(), Some("high"));
    assert!(s.prices.lookup("openai/o4-mini").is_some());
    assert_eq!(
        s.llm.models["claude-haiku-4-5"].provider,
        Some(rlm::llm::Provider::Anthropic)
    );
    assert_eq!(
        s.llm.models["gpt-4o-prod"].api_version.as_deref(),
        Some("2024-10-21")
    );
    assert_eq!(s.budgets.max_cost_usd, Some(25.0));
    let price = s
        .prices
        .lookup("my-finetune-v2")
        .expect("the example's price");
    assert_eq!(
        (price.input_per_million, price.output_per_million),
        (0.5, 1.5)
    );
}

#[test]
fn the_documented_defaults_are_the_defaults() {
    let s = resolve("").unwrap();
    let doc = doc();
    let row = |key: &str| -> String {
        doc.lines()
            .find(|l| l.starts_with(&format!("| `{key}` |")))
            .unwrap_or_else(|| panic!("no row for {key}"))
            .split(" | ")
            .nth(2)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(row("base_url"), format!("`{}`", s.llm.openai_base_url));
    assert_eq!(
        row("anthropic_base_url"),
        format!("`{}`", s.llm.anthropic_base_url)
    );
    assert_eq!(row("concurrency"), s.llm.concurrency.to_string());
    assert_eq!(
        row("request_timeout_s"),
        s.llm.request_timeout.as_secs().to_string()
    );
    assert_eq!(row("max_retries"), s.llm.retry.max_retries.to_string());
    assert_eq!(row("sub_context_tokens"), s.sub_context_tokens.to_string());
    assert!(
        row("max_response_bytes").starts_with(&s.llm.max_response_bytes.to_string()),
        "{}",
        row("max_response_bytes")
    );
}
