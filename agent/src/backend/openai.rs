//! The OpenAI-compatible adapter: one [`Backend`] implementation for every
//! kind of protocol.md (vLLM, llama.cpp, LM Studio, Ollama, OpenRouter,
//! Venice), over hyper's HTTP/1 client on the caller's [`crate::net::Connector`].
//!
//! Every request uses its own connection (see `openai/conn.rs`), owned by the
//! request's future: dropping [`OpenAiBackend::execute`]'s future closes the
//! socket, which is how a cancel or the executor's deadline reaches the
//! server. `execute` has no timeout of its own; `health` and `list_models`
//! are bounded by `discovery_timeout_ms`.
//!
//! Outcomes of `execute` (protocol.md's `error_code` table is authoritative):
//! - 2xx: every body frame is relayed to the sink as the `Bytes` hyper
//!   yields, unchanged and uncopied; end of body (clean EOF, or an error
//!   after `data: [DONE]`, when nothing is missing) → `Ok` with usage.
//! - connect refused / reset / closed before the response head →
//!   `Unreachable` (`backend_unreachable`).
//! - 401/403 → `BadStatus` (`auth_rejected_by_backend`); every other non-2xx,
//!   404 included, → `BadStatus` (`internal`). A 404 is not mapped to
//!   `model_not_loaded`: that code means no discovered backend serves the
//!   model, which the executor decides before calling the backend.
//! - body error before `[DONE]` → `StreamCut` (`internal`), after relaying
//!   every byte received before the cut.
//! - sink gone (cancelled) → `Sink`, returned at once; the connection closes
//!   as the future ends.
//!
//! Jobs with `format = "anthropic"` are sent to the same chat-completions
//! endpoint and relayed the same way: no backend kind here speaks the
//! Anthropic Messages API, so there is nothing else to send them to yet.
//! Close-delimited bodies (no length, not chunked) cannot distinguish a cut
//! from the end; they count as a clean EOF.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;

use crate::backend::usage::{SSE_LINE_BYTES_MAX_DEFAULT, SseUsageScanner};
use crate::backend::{Backend, BackendError, BackendKind, Job, JobResult, JobSink, ModelInfo};
use crate::config::{BackendConfig, SessionConfig};
use crate::deps::EnvLookup;
use crate::net::SharedConnector;
use crate::net::endpoint::{Endpoint, EndpointError};

mod conn;
pub mod wire;

pub use conn::HTTP_READ_BUF_BYTES_MAX;

/// Bounds of the adapter's reads and probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdapterLimits {
    /// Timeout of one `health` or `list_models` call, connect included.
    pub discovery_timeout_ms: u64,
    /// How much of a non-2xx response body is read into the error.
    pub error_body_bytes_max: usize,
    /// Largest model list accepted (OpenRouter's is about a megabyte).
    pub model_list_bytes_max: usize,
    /// Bound on one SSE line inspected for usage (longer lines are relayed
    /// but not inspected).
    pub sse_line_bytes_max: usize,
}

/// Default [`AdapterLimits::error_body_bytes_max`].
pub const ERROR_BODY_BYTES_MAX_DEFAULT: usize = 4 * 1024;
/// Default [`AdapterLimits::model_list_bytes_max`].
pub const MODEL_LIST_BYTES_MAX_DEFAULT: usize = 8 * 1024 * 1024;

impl AdapterLimits {
    /// Defaults, with the discovery timeout taken from `[session]`.
    pub fn from_session(session: &SessionConfig) -> AdapterLimits {
        AdapterLimits {
            discovery_timeout_ms: session.discovery_timeout_ms,
            error_body_bytes_max: ERROR_BODY_BYTES_MAX_DEFAULT,
            model_list_bytes_max: MODEL_LIST_BYTES_MAX_DEFAULT,
            sse_line_bytes_max: SSE_LINE_BYTES_MAX_DEFAULT,
        }
    }
}

/// Why a configured backend could not be set up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendSetupError {
    #[error("backend {kind}: url: {source}")]
    BadUrl {
        kind: &'static str,
        #[source]
        source: EndpointError,
    },
    #[error("backend {kind}: url must be http:// or https://")]
    NotHttp { kind: &'static str },
    #[error("backend {kind}: api_key_env is required for a remote kind")]
    MissingApiKeyEnv { kind: &'static str },
    #[error("backend {kind}: the value of {env_var} is not usable in an HTTP header (control characters?)")]
    InvalidApiKey { kind: &'static str, env_var: String },
}

/// See the module documentation.
pub struct OpenAiBackend {
    kind: BackendKind,
    /// `kind@base_url`, for logs.
    id: String,
    endpoint: Endpoint,
    host_header: HeaderValue,
    /// `Bearer <key>` (marked sensitive), remote kinds only.
    authorization: Option<HeaderValue>,
    connector: SharedConnector,
    tls: Arc<rustls::ClientConfig>,
    limits: AdapterLimits,
}

impl std::fmt::Debug for OpenAiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiBackend")
            .field("id", &self.id)
            .field("has_api_key", &self.authorization.is_some())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl OpenAiBackend {
    /// Sets up the backend of `cfg`. Returns `Ok(None)`, with a warning, for a
    /// remote kind whose `api_key_env` variable is unset or empty: the
    /// backend is skipped and its models are not offered.
    pub fn new(
        cfg: &BackendConfig,
        connector: SharedConnector,
        tls: Arc<rustls::ClientConfig>,
        env: &EnvLookup,
        limits: AdapterLimits,
    ) -> Result<Option<OpenAiBackend>, BackendSetupError> {
        let kind = cfg.kind.as_str();
        let (scheme, endpoint) =
            Endpoint::parse_with_scheme(cfg.base_url()).map_err(|source| BackendSetupError::BadUrl { kind, source })?;
        if scheme.is_websocket() {
            return Err(BackendSetupError::NotHttp { kind });
        }
        let authorization = match cfg.kind.is_local() {
            true => None,
            false => match bearer(cfg, env)? {
                Some(value) => Some(value),
                None => return Ok(None),
            },
        };
        let host_header = HeaderValue::from_str(&endpoint.host_header()).map_err(|_| BackendSetupError::BadUrl {
            kind,
            source: EndpointError::BadHost(endpoint.host.clone()),
        })?;
        let id = format!("{kind}@{}", cfg.base_url());
        Ok(Some(OpenAiBackend {
            kind: cfg.kind,
            id,
            endpoint,
            host_header,
            authorization,
            connector,
            tls,
            limits,
        }))
    }

    fn request(
        &self,
        method: http::Method,
        path: &str,
        accept: &'static str,
        body: Bytes,
    ) -> Result<http::Request<Full<Bytes>>, BackendError> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(self.endpoint.join_path(path))
            .header(HOST, self.host_header.clone())
            .header(USER_AGENT, concat!("provider-agent/", env!("CARGO_PKG_VERSION")))
            .header(ACCEPT, accept);
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        if let Some(value) = &self.authorization {
            builder = builder.header(AUTHORIZATION, value.clone());
        }
        builder
            .body(Full::new(body))
            .map_err(|e| BackendError::Other(format!("cannot build request: {e}")))
    }

    /// GET `path` within the discovery timeout. A 2xx answer returns its
    /// body when `body_bytes_max` is given (more is an error) and is not read
    /// at all otherwise (a health probe only needs the status).
    async fn get_ok(&self, path: &str, body_bytes_max: Option<usize>) -> Result<Bytes, BackendError> {
        let timeout = Duration::from_millis(self.limits.discovery_timeout_ms);
        let exchange = async {
            let request = self.request(http::Method::GET, path, "application/json", Bytes::new())?;
            let mut exchange = conn::send(&*self.connector, &self.endpoint, &self.tls, request).await?;
            let status = exchange.response.status();
            if !status.is_success() {
                return Err(self.bad_status(status, exchange.response.body_mut()).await);
            }
            let Some(bytes_max) = body_bytes_max else {
                return Ok(Bytes::new());
            };
            let (body, truncated) = conn::read_prefix(exchange.response.body_mut(), bytes_max)
                .await
                .map_err(|e| BackendError::StreamCut(format!("{}: {e}", self.id)))?;
            if truncated {
                return Err(BackendError::Other(format!(
                    "{}: {path} answered more than {bytes_max} bytes",
                    self.id
                )));
            }
            Ok(body)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_elapsed) => Err(BackendError::Unreachable(format!(
                "{}: no answer to {path} within {} ms",
                self.id,
                timeout.as_millis()
            ))),
        }
    }

    /// The error for a non-2xx answer, with the first
    /// `error_body_bytes_max` bytes of its body (lossy UTF-8).
    async fn bad_status(&self, status: http::StatusCode, body: &mut Incoming) -> BackendError {
        let text = match conn::read_prefix(body, self.limits.error_body_bytes_max).await {
            Ok((bytes, truncated)) => {
                let mut text = String::from_utf8_lossy(&bytes).trim().to_owned();
                if truncated {
                    text.push_str(" …");
                }
                text
            }
            Err(e) => format!("(body unreadable: {e})"),
        };
        BackendError::BadStatus {
            status: status.as_u16(),
            body: text,
        }
    }

    /// Relays a 2xx body into `sink`; see the module docs for outcomes.
    async fn relay(&self, body: &mut Incoming, sink: &mut dyn JobSink) -> Result<JobResult, BackendError> {
        let mut scanner = SseUsageScanner::with_line_bytes_max(self.limits.sse_line_bytes_max);
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) if scanner.done_seen() => {
                    tracing::debug!(backend = %self.id, error = %e, "body error after [DONE]; stream complete");
                    break;
                }
                Err(e) => return Err(BackendError::StreamCut(format!("{}: {e}", self.id))),
            };
            // Trailers carry no body bytes; empty data frames carry nothing
            // to relay.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            scanner.feed(&data);
            sink.send_chunk(data).await?;
            sink.set_output_tokens(scanner.output_tokens_relayed());
        }
        scanner.finish();
        sink.set_output_tokens(scanner.output_tokens_relayed());
        if !scanner.done_seen() {
            tracing::debug!(backend = %self.id, "stream ended without data: [DONE]");
        }
        let usage = scanner.usage();
        Ok(JobResult {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
        })
    }
}

/// `Bearer <key>` from the environment, `None` (with a warning) when unset.
fn bearer(cfg: &BackendConfig, env: &EnvLookup) -> Result<Option<HeaderValue>, BackendSetupError> {
    let kind = cfg.kind.as_str();
    let env_var = cfg
        .api_key_env
        .as_deref()
        .ok_or(BackendSetupError::MissingApiKeyEnv { kind })?;
    let Some(key) = env(env_var).filter(|key| !key.trim().is_empty()) else {
        tracing::warn!(
            backend = kind,
            env_var,
            "API key environment variable is not set; backend skipped"
        );
        return Ok(None);
    };
    let mut value =
        HeaderValue::from_str(&format!("Bearer {}", key.trim())).map_err(|_| BackendSetupError::InvalidApiKey {
            kind,
            env_var: env_var.to_owned(),
        })?;
    value.set_sensitive(true);
    Ok(Some(value))
}

#[async_trait]
impl Backend for OpenAiBackend {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    fn id(&self) -> &str {
        &self.id
    }

    async fn health(&self) -> Result<(), BackendError> {
        self.get_ok(wire::health_path(self.kind), None).await.map(drop)
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>, BackendError> {
        let body = self
            .get_ok(wire::MODELS_PATH, Some(self.limits.model_list_bytes_max))
            .await?;
        wire::parse_model_list(&body).map_err(|reason| BackendError::Other(format!("{}: {reason}", self.id)))
    }

    async fn execute(&self, job: &Job, sink: &mut dyn JobSink) -> Result<JobResult, BackendError> {
        let body = wire::chat_request_body(&job.request, &job.model_id)
            .map_err(|e| BackendError::Other(format!("cannot encode request: {e}")))?;
        let request = self.request(
            http::Method::POST,
            wire::CHAT_COMPLETIONS_PATH,
            "text/event-stream",
            body,
        )?;
        let mut exchange = conn::send(&*self.connector, &self.endpoint, &self.tls, request).await?;
        let status = exchange.response.status();
        if !status.is_success() {
            return Err(self.bad_status(status, exchange.response.body_mut()).await);
        }
        self.relay(exchange.response.body_mut(), sink).await
        // `exchange` drops here (or wherever this future is dropped), which
        // aborts the connection task and closes the socket.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::TcpConnector;
    use crate::net::tls::client_config_webpki;

    fn setup(
        kind: BackendKind,
        env_var: Option<&str>,
        env_value: Option<&'static str>,
    ) -> Result<Option<OpenAiBackend>, BackendSetupError> {
        let cfg = BackendConfig {
            kind,
            url: None,
            api_key_env: env_var.map(str::to_owned),
            models: None,
        };
        let env: EnvLookup = Arc::new(move |_name: &str| env_value.map(str::to_owned));
        let limits = AdapterLimits::from_session(&SessionConfig::default());
        OpenAiBackend::new(&cfg, Arc::new(TcpConnector), client_config_webpki(), &env, limits)
    }

    /// Proves a remote backend with an unset or blank key variable is skipped, not an error.
    #[test]
    fn remote_kind_without_key_is_skipped() {
        assert!(
            setup(BackendKind::Openrouter, Some("OR_KEY"), None)
                .expect("no error")
                .is_none()
        );
        assert!(
            setup(BackendKind::Openrouter, Some("OR_KEY"), Some("  "))
                .expect("no error")
                .is_none()
        );
    }

    /// Proves a remote backend sends a sensitive Bearer header that Debug does not print.
    #[test]
    fn remote_kind_with_key_gets_a_sensitive_bearer() {
        let backend = setup(BackendKind::Venice, Some("V_KEY"), Some("sk-secret"))
            .expect("ok")
            .expect("set up");
        let value = backend.authorization.as_ref().expect("bearer");
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().expect("ascii"), "Bearer sk-secret");
        assert_eq!(backend.id(), "venice@https://api.venice.ai/api");
        let debug = format!("{backend:?}");
        assert!(!debug.contains("sk-secret"), "{debug}");
    }

    /// Proves an API key unusable in a header is an error naming the variable, not the key.
    #[test]
    fn key_with_control_characters_is_an_error_that_hides_the_key() {
        let err = setup(BackendKind::Venice, Some("V_KEY"), Some("sk-se\ncret")).expect_err("invalid header");
        assert!(!err.to_string().contains("sk-se"), "{err}");
        assert!(err.to_string().contains("V_KEY"), "{err}");
    }

    /// Proves a local backend needs no key and uses its kind's default url and Host header.
    #[test]
    fn local_kind_needs_no_key_and_uses_the_default_url() {
        let backend = setup(BackendKind::Ollama, None, None).expect("ok").expect("set up");
        assert!(backend.authorization.is_none());
        assert_eq!(
            (backend.endpoint.host.as_str(), backend.endpoint.port),
            ("127.0.0.1", 11434)
        );
        assert_eq!(backend.host_header.to_str().expect("ascii"), "127.0.0.1:11434");
    }

    /// Proves a remote backend without api_key_env is a setup error.
    #[test]
    fn remote_kind_without_api_key_env_is_a_setup_error() {
        assert_eq!(
            setup(BackendKind::Openrouter, None, None).expect_err("error"),
            BackendSetupError::MissingApiKeyEnv { kind: "openrouter" }
        );
    }
}
