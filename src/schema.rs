//! JSON Schemas for answers: what a run's `submit` must produce.
//!
//! A run given an [`AnswerSchema`] shows it to the root model in the system
//! prompt and checks every submitted value against it. A value that fails
//! does not end the run: the cell fails with one line per violation, each
//! naming where in the value it is (`$.parties[1].name: ...`), so the model
//! can repair its answer on the next turn.
//!
//! ```
//! use rlm::schema::AnswerSchema;
//! let schema = AnswerSchema::from_json(serde_json::json!({
//!     "type": "object",
//!     "properties": {"total": {"type": "integer"}},
//!     "required": ["total"]
//! })).unwrap();
//! assert!(schema.check(&serde_json::json!({"total": 7})).is_ok());
//! let errors = schema.check(&serde_json::json!({"total": "seven"})).unwrap_err();
//! assert_eq!(errors, ["$.total: \"seven\" is not of type \"integer\""]);
//! ```

use std::fmt;
use std::path::Path;

use serde_json::Value;

/// Violations reported for one value; the rest are summarised in a count.
const MAX_REPORTED: usize = 10;
/// A violation quoting a value longer than this says "the value" instead.
const MAX_QUOTED: usize = 80;
/// Bytes of schema file read; a schema is a contract, not a data set.
const MAX_SCHEMA_BYTES: u64 = 1 << 20;

/// Why a schema could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot read schema {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("schema {path} is larger than 1 MiB")]
    TooLarge { path: String },
    #[error("schema {origin} is not JSON: {cause}")]
    NotJson {
        origin: String,
        cause: serde_json::Error,
    },
    #[error("schema {origin} is not a valid JSON Schema: {reason}")]
    Invalid { origin: String, reason: String },
}

/// A compiled JSON Schema for a run's answer.
pub struct AnswerSchema {
    source: Value,
    validator: jsonschema::Validator,
}

impl fmt::Debug for AnswerSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnswerSchema")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl AnswerSchema {
    /// Compiles `schema` (any draft `jsonschema` knows; 2020-12 by default).
    /// Remote `$ref`s are not fetched: a run never reaches the network for
    /// its schema.
    pub fn from_json(schema: Value) -> Result<AnswerSchema, SchemaError> {
        Self::compile(schema, "(inline)")
    }

    /// Reads and compiles a schema file.
    pub fn from_file(path: &Path) -> Result<AnswerSchema, SchemaError> {
        let shown = path.display().to_string();
        let read = |cause| SchemaError::Read {
            path: shown.clone(),
            cause,
        };
        let len = std::fs::metadata(path).map_err(read)?.len();
        if len > MAX_SCHEMA_BYTES {
            return Err(SchemaError::TooLarge { path: shown });
        }
        let bytes = std::fs::read(path).map_err(read)?;
        let schema = serde_json::from_slice(&bytes).map_err(|cause| SchemaError::NotJson {
            origin: shown.clone(),
            cause,
        })?;
        Self::compile(schema, &shown)
    }

    fn compile(schema: Value, origin: &str) -> Result<AnswerSchema, SchemaError> {
        if !schema.is_object() && !schema.is_boolean() {
            return Err(SchemaError::Invalid {
                origin: origin.to_string(),
                reason: "a schema is an object (or true/false)".to_string(),
            });
        }
        let validator = jsonschema::validator_for(&schema).map_err(|e| SchemaError::Invalid {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
        Ok(AnswerSchema {
            source: schema,
            validator,
        })
    }

    /// The schema as it was given.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// The schema on one line, as the system prompt shows it.
    pub fn compact(&self) -> String {
        self.source.to_string()
    }

    /// Checks `value`: `Ok` when it is valid, otherwise one line per
    /// violation (at most ten, then a count of the rest), each starting
    /// with the path of the offending part (`$` is the whole value).
    pub fn check(&self, value: &Value) -> Result<(), Vec<String>> {
        if self.validator.is_valid(value) {
            return Ok(());
        }
        let mut lines = Vec::new();
        let mut more = 0usize;
        for error in self.validator.iter_errors(value) {
            if lines.len() == MAX_REPORTED {
                more += 1;
                continue;
            }
            let path = json_path(value, error.instance_path().as_str());
            let quoted = error.instance().to_string();
            let message = if quoted.len() <= MAX_QUOTED {
                error.to_string()
            } else {
                error.masked_with("the value").to_string()
            };
            lines.push(format!("{path}: {message}"));
        }
        if more > 0 {
            lines.push(format!("... and {more} more"));
        }
        if lines.is_empty() {
            // `is_valid` and `iter_errors` disagreeing would be a bug in the
            // validator; the value is still not accepted.
            lines.push("$: does not match the schema".to_string());
        }
        Err(lines)
    }
}

/// A JSON Pointer into `value` as a JSONPath (`/a/0/b` -> `$.a[0].b`).
/// Whether a segment is an index is read off the value, so an object key
/// made of digits stays a key.
fn json_path(value: &Value, pointer: &str) -> String {
    let mut out = String::from("$");
    let mut at = Some(value);
    for raw in pointer.split('/').skip(1) {
        let key = raw.replace("~1", "/").replace("~0", "~");
        match at {
            Some(Value::Array(items)) => {
                let _ = fmt::Write::write_fmt(&mut out, format_args!("[{key}]"));
                at = key.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            other => {
                let plain =
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if plain {
                    out.push('.');
                    out.push_str(&key);
                } else {
                    out.push_str(&format!("[{}]", Value::String(key.clone())));
                }
                at = match other {
                    Some(Value::Object(map)) => map.get(&key),
                    _ => None,
                };
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parties() -> AnswerSchema {
        AnswerSchema::from_json(json!({
            "type": "object",
            "properties": {
                "parties": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"]
                }},
                "renewal": {"type": "string", "format": "date"}
            },
            "required": ["parties"]
        }))
        .unwrap()
    }

    #[test]
    fn paths_name_array_items_and_keys() {
        let errors = parties()
            .check(&json!({"parties": [{"name": "A"}, {"name": 3}]}))
            .unwrap_err();
        assert_eq!(errors, ["$.parties[1].name: 3 is not of type \"string\""]);
    }

    #[test]
    fn missing_fields_are_named_at_their_object() {
        let errors = parties().check(&json!({})).unwrap_err();
        assert_eq!(errors, ["$: \"parties\" is a required property"]);
    }

    #[test]
    fn digit_keys_of_objects_stay_keys_and_odd_keys_are_quoted() {
        let v = json!({"7": {"a b": 1}});
        assert_eq!(json_path(&v, "/7/a b"), "$.7[\"a b\"]");
        let v = json!([[0, [1]]]);
        assert_eq!(json_path(&v, "/0/1/0"), "$[0][1][0]");
        assert_eq!(json_path(&json!({"a/b": 1}), "/a~1b"), "$[\"a/b\"]");
    }

    #[test]
    fn long_values_are_not_quoted_and_errors_are_capped() {
        let schema =
            AnswerSchema::from_json(json!({"type": "array", "items": {"type": "integer"}}))
                .unwrap();
        let long = "x".repeat(500);
        let errors = schema.check(&json!([long])).unwrap_err();
        assert_eq!(errors, ["$[0]: the value is not of type \"integer\""]);
        let many: Vec<Value> = (0..25).map(|i| json!(format!("{i}"))).collect();
        let errors = schema.check(&Value::Array(many)).unwrap_err();
        assert_eq!(errors.len(), MAX_REPORTED + 1);
        assert_eq!(errors[MAX_REPORTED], "... and 15 more");
    }

    #[test]
    fn bad_schemas_are_refused_with_their_origin() {
        let e = AnswerSchema::from_json(json!({"type": "no-such-type"})).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("schema (inline) is not a valid JSON Schema"));
        let e = AnswerSchema::from_json(json!([1])).unwrap_err();
        assert!(e.to_string().contains("a schema is an object"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = AnswerSchema::from_file(&path).unwrap_err();
        assert!(e.to_string().contains("s.json is not JSON"), "{e}");
        let e = AnswerSchema::from_file(&dir.path().join("missing.json")).unwrap_err();
        assert!(e.to_string().starts_with("cannot read schema"), "{e}");
    }

    #[test]
    fn remote_refs_are_not_fetched() {
        let e = AnswerSchema::from_json(json!({"$ref": "https://example.invalid/s.json"}));
        assert!(
            e.is_err(),
            "a remote $ref must fail to compile, not be fetched"
        );
    }
}
