//! A content-addressed response cache on disk (`--cache DIR`).
//!
//! [`ResponseCache::wrap`] puts it in front of any [`Model`]. An entry's
//! key is the SHA-256 of what decides the answer: the model's name, its
//! [`Model::identity`] (provider, endpoint, the options and headers it
//! adds, never a key), and the request as sent (system prompt, messages,
//! `max_tokens`, `temperature`, and the JSON format or schema a structured
//! sub-call asks for). A hit is served by [`Model::stored`],
//! which the client asks before the ledger admits the call: it sends
//! nothing, costs nothing, counts toward no budget (so it is served even
//! when a budget is spent), and is counted as a cache hit of its model,
//! not as a call.
//!
//! Entries are files, `DIR/ab/abcdef....json`, one JSON object each,
//! written to a temporary file in the same directory and renamed over the
//! entry, so a reader sees a whole entry or none, and any number of
//! processes can share a directory (`rlm batch` shards, concurrent jobs):
//! two writing one key both write a whole answer, and the last rename
//! wins. An entry that is not whole JSON of this format (a crash of some
//! other writer, a disk error, a hand edit) is a miss, and the answer then
//! fetched replaces it. Nothing is ever deleted: remove the directory to
//! empty the cache.
//!
//! Modes ([`CacheMode`]): `readwrite` (the default), `read` (hits only;
//! nothing is written, so a shared cache stays as it is), `write` (every
//! call is sent and its answer stored: refreshes a cache) and `off`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::provider::{BoxFuture, Failure, Model, ModelCall, Response};
use super::structured::ResponseFormat;
use super::wire::{Completion, FinishReason, Message};

/// The format of entries and of the key material; a change makes every
/// old entry a miss instead of a wrong answer.
const FORMAT: u32 = 1;

/// How a response cache is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// Serve hits; never write.
    Read,
    /// Never serve hits; store every answer.
    Write,
    /// Serve hits, and store the answers of misses.
    #[default]
    ReadWrite,
    /// No cache.
    Off,
}

impl CacheMode {
    /// Every mode, as `--cache-mode` and `cache_mode` in `rlm.toml` spell them.
    pub const NAMES: [&'static str; 4] = ["read", "write", "readwrite", "off"];

    /// Whether hits are served.
    pub fn reads(self) -> bool {
        matches!(self, CacheMode::Read | CacheMode::ReadWrite)
    }

    /// Whether answers are stored.
    pub fn writes(self) -> bool {
        matches!(self, CacheMode::Write | CacheMode::ReadWrite)
    }
}

impl std::str::FromStr for CacheMode {
    type Err = String;

    fn from_str(s: &str) -> Result<CacheMode, String> {
        match s {
            "read" => Ok(CacheMode::Read),
            "write" => Ok(CacheMode::Write),
            "readwrite" => Ok(CacheMode::ReadWrite),
            "off" => Ok(CacheMode::Off),
            _ => Err(format!(
                "unknown cache mode {s:?}: expected one of {}",
                CacheMode::NAMES.join(", ")
            )),
        }
    }
}

/// Where the response cache is and how it is used (`--cache`, `--cache-mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    pub dir: PathBuf,
    pub mode: CacheMode,
}

/// A response cache in one directory. See the module docs.
#[derive(Debug)]
pub struct ResponseCache {
    dir: PathBuf,
    mode: CacheMode,
    /// The largest entry read; a larger file is a miss.
    max_entry_bytes: u64,
    /// The first entry that could not be written, if any.
    error: Mutex<Option<String>>,
}

/// What an entry's key is the hash of.
#[derive(Serialize)]
struct KeyMaterial<'a> {
    format: u32,
    model: String,
    identity: &'a str,
    system: Option<&'a str>,
    messages: &'a [Message],
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    /// Absent for a request without one, so those keys stay as they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<&'a ResponseFormat>,
}

/// One entry's file.
#[derive(Serialize, Deserialize)]
struct Entry {
    rlm_response_cache: u32,
    key: String,
    model: String,
    text: String,
    /// `stop`, `length`, or `other:REASON`.
    finish: String,
    input_tokens: u64,
    output_tokens: u64,
}

impl ResponseCache {
    /// The cache in `config.dir`, created if it is written to. Entries
    /// larger than `max_entry_bytes` are misses.
    pub fn open(config: &CacheConfig, max_entry_bytes: u64) -> std::io::Result<ResponseCache> {
        if config.mode.writes() {
            std::fs::create_dir_all(&config.dir)?;
        }
        Ok(ResponseCache {
            dir: config.dir.clone(),
            mode: config.mode,
            max_entry_bytes,
            error: Mutex::new(None),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How it is used.
    pub fn mode(&self) -> CacheMode {
        self.mode
    }

    /// `model` with this cache in front of it. In mode `off`, `model` itself.
    pub fn wrap(self: &Arc<Self>, model: Arc<dyn Model>) -> Arc<dyn Model> {
        if self.mode == CacheMode::Off {
            return model;
        }
        Arc::new(Cached {
            identity: model.identity(),
            cache: self.clone(),
            inner: model,
        })
    }

    /// The key of `call` to a model of `identity`: 64 hex digits.
    pub fn key(identity: &str, call: &ModelCall<'_>) -> String {
        let material = KeyMaterial {
            format: FORMAT,
            model: call.model.to_string(),
            identity,
            system: call.request.system.as_deref(),
            messages: &call.request.messages,
            max_tokens: call.request.max_tokens,
            temperature: call.request.temperature,
            response_format: call.request.format.as_ref(),
        };
        let bytes = serde_json::to_vec(&material).unwrap_or_default();
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Where the entry of `key` is.
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.json"))
    }

    /// The answer stored under `key`, if a whole, readable entry is there.
    pub fn get(&self, key: &str) -> Option<Completion> {
        let file = std::fs::File::open(self.path(key)).ok()?;
        let mut bytes = Vec::new();
        file.take(self.max_entry_bytes + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        if bytes.len() as u64 > self.max_entry_bytes {
            return None;
        }
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        if entry.rlm_response_cache != FORMAT || entry.key != key {
            return None;
        }
        let finish = match entry.finish.as_str() {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            other => FinishReason::Other(other.strip_prefix("other:")?.to_string()),
        };
        Some(Completion {
            text: entry.text,
            finish,
            input_tokens: entry.input_tokens,
            output_tokens: entry.output_tokens,
            ..Completion::default()
        })
    }

    /// Stores `completion` of `model` under `key`: a temporary file in the
    /// entry's directory, renamed over the entry. A failure is remembered
    /// ([`ResponseCache::error`]), not returned: the answer is good either way.
    pub fn put(&self, key: &str, model: &str, completion: &Completion) {
        if let Err(e) = self.write(key, model, completion) {
            if let Ok(mut first) = self.error.lock() {
                first.get_or_insert_with(|| {
                    format!(
                        "cannot write to the response cache {}: {e}",
                        self.dir.display()
                    )
                });
            }
        }
    }

    fn write(&self, key: &str, model: &str, c: &Completion) -> std::io::Result<()> {
        let entry = Entry {
            rlm_response_cache: FORMAT,
            key: key.to_string(),
            model: model.to_string(),
            text: c.text.clone(),
            finish: match &c.finish {
                FinishReason::Stop => "stop".into(),
                FinishReason::Length => "length".into(),
                FinishReason::Other(reason) => format!("other:{reason}"),
            },
            input_tokens: c.input_tokens,
            output_tokens: c.output_tokens,
        };
        let path = self.path(key);
        let dir = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(dir)?;
        let mut file = tempfile::Builder::new()
            .prefix(&format!(".{key}."))
            .suffix(".tmp")
            .tempfile_in(dir)?;
        let mut bytes = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        file.write_all(&bytes)?;
        file.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    /// The first write that failed, as a message, if any did.
    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}

/// A model with a response cache in front of it.
struct Cached {
    cache: Arc<ResponseCache>,
    inner: Arc<dyn Model>,
    /// `inner`'s identity, computed once.
    identity: String,
}

impl Model for Cached {
    fn stored<'a>(&'a self, call: ModelCall<'a>) -> BoxFuture<'a, Option<Completion>> {
        Box::pin(async move {
            if self.cache.mode.reads() {
                if let Some(hit) = self.cache.get(&ResponseCache::key(&self.identity, &call)) {
                    return Some(hit);
                }
            }
            self.inner.stored(call).await
        })
    }

    fn complete<'a>(&'a self, call: ModelCall<'a>) -> BoxFuture<'a, Result<Response, Failure>> {
        Box::pin(async move {
            let result = self.inner.complete(call).await;
            if let Ok(response) = &result {
                if self.cache.mode.writes() {
                    let key = ResponseCache::key(&self.identity, &call);
                    self.cache
                        .put(&key, &call.model.to_string(), &response.completion);
                }
            }
            result
        })
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{CallTag, ChatRequest, ModelSpec};

    fn call<'a>(model: &'a ModelSpec, request: &'a ChatRequest, tag: &'a CallTag) -> ModelCall<'a> {
        ModelCall {
            model,
            request,
            tag,
        }
    }

    #[test]
    fn keys_change_with_everything_that_changes_the_answer_and_nothing_else() {
        let (m, tag) = (ModelSpec::parse("m"), CallTag::default());
        let base = ChatRequest::prompt("q");
        let key = |id: &str, model: &ModelSpec, r: &ChatRequest| {
            ResponseCache::key(id, &call(model, r, &tag))
        };
        let k = key("a", &m, &base);
        assert_eq!(k.len(), 64);
        assert_eq!(k, key("a", &m, &base.clone()));
        let root = CallTag {
            kind: "root",
            ..CallTag::default()
        };
        assert_eq!(k, ResponseCache::key("a", &call(&m, &base, &root)));
        for other in [
            key("b", &m, &base),
            key("a", &ModelSpec::parse("anthropic:m"), &base),
            key("a", &m, &ChatRequest::prompt("q2")),
            key(
                "a",
                &m,
                &ChatRequest {
                    max_tokens: Some(5),
                    ..base.clone()
                },
            ),
            key(
                "a",
                &m,
                &ChatRequest {
                    temperature: Some(0.0),
                    ..base.clone()
                },
            ),
            key(
                "a",
                &m,
                &ChatRequest {
                    system: Some("s".into()),
                    ..base.clone()
                },
            ),
        ] {
            assert_ne!(k, other);
        }
    }

    #[test]
    fn entries_round_trip_and_anything_else_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let config = CacheConfig {
            dir: dir.path().join("c"),
            mode: CacheMode::ReadWrite,
        };
        let cache = ResponseCache::open(&config, 1 << 20).unwrap();
        let key = "ab".repeat(32);
        assert!(cache.get(&key).is_none());
        let c = Completion {
            text: "hi".into(),
            finish: FinishReason::Other("content_filter".into()),
            input_tokens: 3,
            output_tokens: 1,
            ..Completion::default()
        };
        cache.put(&key, "m", &c);
        assert_eq!(cache.get(&key), Some(c.clone()));
        let path = cache.path(&key);
        for torn in [
            &b""[..],
            b"{\"rlm_response_cache\":1,\"key\"",
            b"\xff\xfe",
            b"[]",
        ] {
            std::fs::write(&path, torn).unwrap();
            assert!(cache.get(&key).is_none());
        }
        // Another key's entry under this name is no answer to this key.
        cache.put(&"cd".repeat(32), "m", &c);
        std::fs::copy(cache.path(&"cd".repeat(32)), &path).unwrap();
        assert!(cache.get(&key).is_none());
        cache.put(&key, "m", &c);
        assert_eq!(cache.get(&key), Some(c));
        assert!(cache.error().is_none());
        // Only whole entries are ever in place: no temporary file is left.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(".json")), "{names:?}");
    }
}
