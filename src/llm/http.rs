//! The HTTP models: OpenAI-compatible chat completions, Anthropic
//! messages and Azure OpenAI, one attempt per [`Model::complete`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::client::LlmError;
use super::endpoint::{Endpoint, LlmConfig};
use super::model::Provider;
use super::provider::{BoxFuture, Failure, Model, ModelCall, Response};
use super::retry::{retry_after, retryable_status};
use super::secret::Scrubber;
use super::structured::{self, StructuredOutput};
use super::wire::{self, Completion, FinishReason, ParseFailure};

/// What every HTTP model of a client shares: the connection pool, the
/// scrubber of every configured key, and the response size limit.
pub(crate) struct HttpShared {
    pub(crate) http: reqwest::Client,
    /// Removes every configured key from all a provider sends back.
    pub(crate) scrubber: Scrubber,
    pub(crate) max_response_bytes: usize,
}

impl HttpShared {
    pub(crate) fn new(config: &LlmConfig) -> Result<HttpShared, LlmError> {
        let table_keys = config.models.values().filter_map(|m| m.api_key.as_ref());
        let header_values: Vec<_> = config
            .models
            .values()
            .flat_map(|m| &m.headers)
            .filter(|(k, _)| super::endpoint::carries_credentials(k))
            .filter_map(|(_, v)| super::secret::ApiKey::new(v.as_str()))
            .collect();
        let scrubber = Scrubber::new(
            [
                &config.openai_api_key,
                &config.anthropic_api_key,
                &config.azure_api_key,
            ]
            .into_iter()
            .flatten()
            .chain(table_keys)
            .chain(&header_values),
        );
        Ok(HttpShared {
            http: http_client(config)?,
            scrubber,
            max_response_bytes: config.max_response_bytes,
        })
    }
}

/// A model reached over HTTP at one [`Endpoint`].
pub(crate) struct HttpModel {
    shared: Arc<HttpShared>,
    endpoint: Endpoint,
    /// The request headers: the table's, the key's and the protocol's.
    headers: HeaderMap,
    /// The server refused a `response_format` once: structured calls go
    /// to it with a prompt instruction from then on.
    rejects_response_format: AtomicBool,
}

impl HttpModel {
    pub(crate) fn new(shared: Arc<HttpShared>, endpoint: Endpoint) -> Result<HttpModel, LlmError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &endpoint.headers {
            let bad = || LlmError::Setup(format!("{}: invalid header {name:?}", endpoint.name));
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            let mut value = HeaderValue::from_str(value).map_err(|_| bad())?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let auth = match (&endpoint.key, endpoint.provider) {
            (Some(k), Provider::OpenAi | Provider::Replay) => {
                Some(("authorization", format!("Bearer {}", k.expose())))
            }
            (Some(k), Provider::Anthropic) => Some(("x-api-key", k.expose().to_string())),
            (Some(k), Provider::Azure) => Some(("api-key", k.expose().to_string())),
            (None, _) => None,
        };
        if let Some((name, value)) = auth {
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                LlmError::Setup(format!(
                    "{}: the API key is not a valid header value",
                    endpoint.name
                ))
            })?;
            value.set_sensitive(true);
            // A header the table sets itself wins.
            headers.entry(name).or_insert(value);
        }
        if endpoint.provider == Provider::Anthropic {
            headers
                .entry("anthropic-version")
                .or_insert(HeaderValue::from_static("2023-06-01"));
        }
        Ok(HttpModel {
            shared,
            endpoint,
            headers,
            rejects_response_format: AtomicBool::new(false),
        })
    }

    /// Whether a structured call goes with the provider's own mechanism.
    fn native_format(&self) -> bool {
        self.endpoint.structured_output == StructuredOutput::Native
            && !self.rejects_response_format.load(Ordering::Relaxed)
    }

    /// The JSON body of `call`, with the endpoint's options.
    fn body(&self, call: &ModelCall<'_>, native_format: bool) -> serde_json::Value {
        let e = &self.endpoint;
        let mut body = wire::request_body(
            e.provider,
            &e.name,
            call.request,
            e.completion_tokens,
            native_format,
        );
        if let Some(effort) = &e.reasoning_effort {
            match e.provider {
                Provider::Anthropic => body["output_config"]["effort"] = effort.as_str().into(),
                _ => body["reasoning_effort"] = effort.as_str().into(),
            }
        }
        body
    }

    /// One attempt; a structured call that an OpenAI-compatible server
    /// refuses for its `response_format` is sent again at once with a
    /// prompt instruction instead, and so is every later one.
    async fn attempt(&self, call: ModelCall<'_>) -> Result<Response, Failure> {
        let native = call.request.format.is_some() && self.native_format();
        let result = self.send(call, native).await;
        let refused_format = matches!(
            &result,
            Err(Failure { error: LlmError::Http { status: 400, message, .. }, .. })
                if message.contains("response_format")
        );
        if native && refused_format && self.endpoint.provider != Provider::Anthropic {
            self.rejects_response_format.store(true, Ordering::Relaxed);
            return self.send(call, false).await;
        }
        result
    }

    async fn send(&self, call: ModelCall<'_>, native: bool) -> Result<Response, Failure> {
        let name = call.model.to_string();
        // Everything a provider sends back is scrubbed, answers included:
        // a server can echo the Authorization header in a 200 as well.
        let scrub = |text: String| self.shared.scrubber.scrub(&text);
        let request = self
            .shared
            .http
            .post(&self.endpoint.url)
            .headers(self.headers.clone())
            .json(&self.body(&call, native));
        let response = request.send().await.map_err(|e| {
            Failure::retryable(
                LlmError::Transport {
                    model: name.clone(),
                    message: scrub(describe_transport(&e)),
                },
                None,
            )
        })?;
        let status = response.status().as_u16();
        let after = retry_after(response.headers());
        let success = (200..300).contains(&status);
        let limit = self.shared.max_response_bytes;
        let bytes = match read_body(response, limit).await {
            Ok(Body::Whole(b)) => b,
            // An error body is only quoted: its start says enough.
            Ok(Body::Cut(b)) if !success => b,
            Ok(Body::Cut(_)) => {
                return Err(LlmError::ResponseTooLarge { model: name, limit }.into())
            }
            Err(e) => {
                return Err(Failure::retryable(
                    LlmError::Transport {
                        model: name,
                        message: scrub(describe_transport(&e)),
                    },
                    after,
                ))
            }
        };
        if !success {
            let mut message = scrub(wire::error_text(&bytes));
            if let (401 | 403, Some(withheld)) = (status, &self.endpoint.withheld) {
                message.push_str(&format!(" ({withheld})"));
            }
            let error = LlmError::Http {
                model: name,
                status,
                message,
            };
            return Err(if retryable_status(status) {
                Failure::retryable(error, after)
            } else {
                error.into()
            });
        }
        match wire::parse_response(self.endpoint.provider, &bytes) {
            Ok(c) if c.text.is_empty() && c.finish == FinishReason::Length => {
                Err(LlmError::Empty { model: name }.into())
            }
            Ok(c) => Ok(Completion {
                text: match (&call.request.format, native) {
                    (Some(format), true) => structured::unwrap_answer(format, scrub(c.text)),
                    _ => scrub(c.text),
                },
                finish: match c.finish {
                    FinishReason::Other(reason) => FinishReason::Other(scrub(reason)),
                    finish => finish,
                },
                ..c
            }
            .into()),
            // A 200 with garbage is usually a proxy hiccup: worth another try.
            Err(ParseFailure::Malformed(m)) => Err(Failure::retryable(
                LlmError::Malformed {
                    model: name,
                    message: scrub(m),
                },
                None,
            )),
            Err(ParseFailure::ProviderError(m)) => Err(Failure::retryable(
                LlmError::Http {
                    model: name,
                    status,
                    message: scrub(m),
                },
                after,
            )),
        }
    }
}

impl Model for HttpModel {
    fn complete<'a>(&'a self, call: ModelCall<'a>) -> BoxFuture<'a, Result<Response, Failure>> {
        Box::pin(self.attempt(call))
    }

    fn identity(&self) -> String {
        self.endpoint.identity()
    }
}

/// The HTTP client, trusting the system's CA store.
///
/// Where there is none (a scratch container, a chroot, a static binary on a
/// bare system) the platform verifier cannot start; Mozilla's roots,
/// compiled in, stand in for it so HTTPS still works. `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` point the system store elsewhere.
fn http_client(config: &LlmConfig) -> Result<reqwest::Client, LlmError> {
    let builder = || {
        reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_max_idle_per_host(config.concurrency.max(1))
            .user_agent(concat!("rlm/", env!("CARGO_PKG_VERSION")))
    };
    builder().build().or_else(|system| {
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok());
        builder().tls_certs_only(roots).build().map_err(|builtin| {
            LlmError::Setup(format!(
                "with the system's CA store: {}; with built-in roots: {}",
                error_chain(&system),
                error_chain(&builtin)
            ))
        })
    })
}

/// An error and its causes, as one line (reqwest's own `Display` says only
/// "builder error").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A response body, whole or cut at the size limit.
enum Body {
    Whole(Vec<u8>),
    Cut(Vec<u8>),
}

/// Reads `response`'s body chunk by chunk, stopping at `limit` bytes: a
/// `Content-Length` over the limit is refused before reading anything, and
/// an endless body is cut once the limit has arrived.
async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Body, reqwest::Error> {
    let declared = response.content_length().unwrap_or(0);
    if declared > limit as u64 {
        return Ok(Body::Cut(Vec::new()));
    }
    let mut body = Vec::with_capacity(declared as usize);
    while let Some(chunk) = response.chunk().await? {
        if chunk.len() > limit - body.len() {
            let room = limit - body.len();
            body.extend_from_slice(&chunk[..room]);
            return Ok(Body::Cut(body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Body::Whole(body))
}

/// A transport error in words, without the URL's query (keys never go in
/// URLs here, but proxies' might).
fn describe_transport(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out waiting for the server"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the response"
    } else if e.is_request() {
        "the request failed"
    } else {
        "transport error"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what} ({detail})")
    }
}
