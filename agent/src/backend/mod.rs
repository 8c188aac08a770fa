//! Backends: the trait the executor drives, and the OpenAI-compatible adapter
//! that implements it for every kind of protocol.md.
//!
//! A backend streams a job's response body into a [`JobSink`]. Dropping the
//! future returned by [`Backend::execute`] must close the backend connection:
//! that is how a cancel or a deadline reaches the server.

use crate::protocol::{ErrorCode, JobFormat, JobId};
use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{Map, Value};

pub mod openai;
pub mod usage;

/// The kinds of backend protocol.md names, in routing priority order (the
/// derived `Ord` is that priority: earlier wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Vllm,
    Llamacpp,
    Lmstudio,
    Ollama,
    Venice,
    Openrouter,
}

impl BackendKind {
    /// The wire/config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Vllm => "vllm",
            BackendKind::Llamacpp => "llamacpp",
            BackendKind::Lmstudio => "lmstudio",
            BackendKind::Ollama => "ollama",
            BackendKind::Venice => "venice",
            BackendKind::Openrouter => "openrouter",
        }
    }

    /// Whether the backend runs on the operator's box (no API key).
    pub fn is_local(self) -> bool {
        !matches!(self, BackendKind::Venice | BackendKind::Openrouter)
    }
}

/// A model a backend reported in its model list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    pub model_id: String,
    pub context_window: Option<u64>,
}

/// What a backend needs to run one job.
#[derive(Clone, Debug)]
pub struct Job {
    pub job_id: JobId,
    pub model_id: String,
    pub request: Map<String, Value>,
    pub format: JobFormat,
}

/// Token usage reported by a completed stream (`None` when the backend sent
/// no usage event).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobResult {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

/// Why a job's output could not be delivered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The job was cancelled or its session ended: stop quietly.
    #[error("job is no longer live (cancelled or session ended)")]
    Gone,
}

/// Where a backend streams a job's body bytes.
#[async_trait]
pub trait JobSink: Send {
    /// Queues `chunk` (raw body bytes, any boundary) for the coordinator. May
    /// wait for outbound capacity; the caller's deadline covers that wait.
    async fn send_chunk(&mut self, chunk: Bytes) -> Result<(), SinkError>;
    /// Records the backend's running count of output tokens relayed so far
    /// (monotone). Used for `tokens_emitted` when the job fails later.
    fn set_output_tokens(&mut self, output_tokens: u64);
}

/// A backend failure, mapped to a protocol `error_code` by [`BackendError::code`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("backend unreachable: {0}")]
    Unreachable(String),
    #[error("backend answered HTTP {status}: {body}")]
    BadStatus { status: u16, body: String },
    #[error("API key missing: environment variable {0} is not set")]
    MissingApiKey(String),
    #[error("backend does not serve model {0}")]
    ModelNotFound(String),
    #[error("backend stream cut mid-way: {0}")]
    StreamCut(String),
    #[error("output could not be delivered: {0}")]
    Sink(#[from] SinkError),
    #[error("backend error: {0}")]
    Other(String),
}

impl BackendError {
    /// The protocol.md `error_code` for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            BackendError::Unreachable(_) => ErrorCode::BackendUnreachable,
            BackendError::BadStatus { status: 401 | 403, .. } | BackendError::MissingApiKey(_) => {
                ErrorCode::AuthRejectedByBackend
            }
            BackendError::ModelNotFound(_) => ErrorCode::ModelNotLoaded,
            BackendError::BadStatus { .. }
            | BackendError::StreamCut(_)
            | BackendError::Sink(_)
            | BackendError::Other(_) => ErrorCode::Internal,
        }
    }

    /// The short text `job_error.message` carries: one fixed sentence per
    /// error class, plus the HTTP status where there is one.
    ///
    /// The [`Display`](std::fmt::Display) form holds what the operator needs
    /// (backend address, base URL, up to 4 KiB of the upstream's error body)
    /// and stays in the agent's own log; none of it may reach the
    /// coordinator, which must not learn the operator's LAN layout or see an
    /// upstream body that may echo a masked API key.
    pub fn public_message(&self) -> String {
        match self {
            BackendError::Unreachable(_) => "backend unreachable".into(),
            BackendError::BadStatus { status, .. } => format!("backend answered HTTP {status}"),
            BackendError::MissingApiKey(_) => "backend API key is not configured".into(),
            BackendError::ModelNotFound(_) => "backend does not serve this model".into(),
            BackendError::StreamCut(_) => "backend stream cut mid-way".into(),
            BackendError::Sink(_) => "output could not be delivered".into(),
            BackendError::Other(_) => "backend error".into(),
        }
    }
}

/// One inference server (or BYOK upstream).
#[async_trait]
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    /// A stable, human-readable id (for logs and `capabilities.backend`).
    fn id(&self) -> &str;
    /// Probes the kind's health path. `Ok` means the server answered 2xx.
    async fn health(&self) -> Result<(), BackendError>;
    async fn list_models(&self) -> Result<Vec<ModelInfo>, BackendError>;
    /// Runs one job, streaming the response body into `sink`.
    async fn execute(&self, job: &Job, sink: &mut dyn JobSink) -> Result<JobResult, BackendError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_protocol_codes() {
        let code = |e: BackendError| e.code().as_str();
        assert_eq!(code(BackendError::Unreachable("x".into())), "backend_unreachable");
        assert_eq!(
            code(BackendError::BadStatus {
                status: 401,
                body: String::new()
            }),
            "auth_rejected_by_backend"
        );
        assert_eq!(
            code(BackendError::BadStatus {
                status: 403,
                body: String::new()
            }),
            "auth_rejected_by_backend"
        );
        assert_eq!(
            code(BackendError::MissingApiKey("K".into())),
            "auth_rejected_by_backend"
        );
        assert_eq!(code(BackendError::ModelNotFound("m".into())), "model_not_loaded");
        assert_eq!(
            code(BackendError::BadStatus {
                status: 500,
                body: String::new()
            }),
            "internal"
        );
        assert_eq!(code(BackendError::StreamCut("eof".into())), "internal");
    }

    #[test]
    fn kind_order_is_routing_priority() {
        let mut kinds = vec![
            BackendKind::Openrouter,
            BackendKind::Ollama,
            BackendKind::Vllm,
            BackendKind::Venice,
        ];
        kinds.sort();
        assert_eq!(
            kinds,
            vec![
                BackendKind::Vllm,
                BackendKind::Ollama,
                BackendKind::Venice,
                BackendKind::Openrouter
            ]
        );
    }
}
