//! Wire messages of `shared/protocol.md` (v2), typed in both directions.
//!
//! Inbound frames are decoded in two stages so that a job with a parseable
//! `job_id` but a bad field can be answered with `invalid_job`, while a frame
//! with no usable id is only counted and logged. Outbound `job_chunk` frames,
//! the hot path, are written straight into a byte buffer by a per-job
//! [`ChunkEncoder`]: no `serde_json::Value`, no intermediate `String`.

use serde::Serialize;
use serde_json::{Map, Value};

mod chunk;
mod job_id;

pub use chunk::{ChunkEncoder, encode_job_chunk, job_chunk_frame_len};
pub use job_id::{JOB_ID_BYTES_MAX, JobId};

/// Default `deadline_ms` when a job omits it (protocol.md).
pub const DEADLINE_MS_DEFAULT: u64 = 60_000;
/// Largest `deadline_ms` accepted. A longer deadline is almost certainly a
/// unit mistake on the coordinator's side (seconds sent as milliseconds would
/// be caught by the lower bound instead), and an hour is far beyond any
/// streaming completion; such a job gets `invalid_job` rather than tying up a
/// slot for days.
pub const DEADLINE_MS_MAX: u64 = 3_600_000;

/// Most bytes of an inbound value quoted back in an `invalid_job` message or
/// written to a log. Inbound frames may be megabytes long; what the agent
/// echoes must not be.
pub const ECHO_BYTES_MAX: usize = 64;

/// `text`, cut to at most [`ECHO_BYTES_MAX`] bytes on a character boundary,
/// with a note of its full length when it was cut.
pub fn bounded(text: &str) -> String {
    if text.len() <= ECHO_BYTES_MAX {
        return text.to_owned();
    }
    let mut end = ECHO_BYTES_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// A short, bounded description of an inbound JSON value for an error
/// message: strings quoted and cut, containers named but not rendered.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{}\"", bounded(s)),
        Value::Array(items) => format!("an array of {} items", items.len()),
        Value::Object(map) => format!("an object of {} keys", map.len()),
        scalar => bounded(&scalar.to_string()),
    }
}

/// Request format of a job (`format` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobFormat {
    Openai,
    Anthropic,
}

/// A decoded `job` frame.
///
/// `deadline_ms` policy (documented in agent/README.md):
/// - absent → [`DEADLINE_MS_DEFAULT`];
/// - `0` → `invalid_job`: a job that has already expired on arrival is a
///   coordinator bug, and answering `backend_timeout` would blame a backend
///   that was never called;
/// - above [`DEADLINE_MS_MAX`], negative, fractional or not a number →
///   `invalid_job`.
#[derive(Clone, Debug, PartialEq)]
pub struct JobFrame {
    pub job_id: JobId,
    pub model_id: String,
    /// The OpenAI chat-completions body, always a JSON object.
    pub request: Map<String, Value>,
    pub format: JobFormat,
    pub deadline_ms: u64,
}

/// A decoded inbound (coordinator → agent) message.
#[derive(Clone, Debug, PartialEq)]
pub enum Inbound {
    AuthChallenge {
        nonce: String,
    },
    AuthOk {
        provider_id: Option<String>,
    },
    AuthFailed {
        reason: Option<String>,
    },
    Job(JobFrame),
    JobCancel {
        job_id: JobId,
    },
    /// A well-formed frame of a type this agent does not act on (for example
    /// `config_update`): logged and ignored.
    Other {
        kind: String,
    },
}

impl Inbound {
    /// The frame's `type`, for logs (never its content).
    pub fn kind(&self) -> &str {
        match self {
            Inbound::AuthChallenge { .. } => "auth_challenge",
            Inbound::AuthOk { .. } => "auth_ok",
            Inbound::AuthFailed { .. } => "auth_failed",
            Inbound::Job(_) => "job",
            Inbound::JobCancel { .. } => "job_cancel",
            Inbound::Other { kind } => kind,
        }
    }
}

/// Why an inbound text frame could not be turned into an [`Inbound`].
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("frame is not a JSON object: {0}")]
    NotJson(String),
    #[error("frame has no string `type` field")]
    NoType,
    /// A `job` whose id parsed but whose other fields did not: the agent
    /// answers `invalid_job` for `job_id`.
    #[error("invalid job {job_id}: {reason}")]
    InvalidJob { job_id: JobId, reason: String },
    /// Any other frame of a known type with a missing or ill-typed field
    /// (including a `job` without a usable `job_id`).
    #[error("invalid `{kind}` frame: {reason}")]
    InvalidFrame { kind: String, reason: String },
}

/// Decodes one inbound text frame.
pub fn decode_inbound(text: &str) -> Result<Inbound, DecodeError> {
    let value: Value = serde_json::from_str(text).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(DecodeError::NotJson("top level is not an object".into()));
    };
    let kind = match obj.get("type") {
        Some(Value::String(s)) => bounded(s),
        _ => return Err(DecodeError::NoType),
    };
    let invalid = |reason: &str| DecodeError::InvalidFrame {
        kind: kind.clone(),
        reason: reason.into(),
    };
    match kind.as_str() {
        "auth_challenge" => match obj.remove("nonce") {
            Some(Value::String(nonce)) => Ok(Inbound::AuthChallenge { nonce }),
            _ => Err(invalid("`nonce` must be a string")),
        },
        "auth_ok" => Ok(Inbound::AuthOk {
            provider_id: optional_string(&obj, "provider_id").map_err(|r| invalid(&r))?,
        }),
        "auth_failed" => Ok(Inbound::AuthFailed {
            reason: optional_string(&obj, "reason")
                .map_err(|r| invalid(&r))?
                .map(|reason| bounded(&reason)),
        }),
        "job_cancel" => Ok(Inbound::JobCancel {
            job_id: job_id_of(&obj).map_err(|r| invalid(&r))?,
        }),
        "job" => {
            let job_id = job_id_of(&obj).map_err(|r| invalid(&r))?;
            decode_job(job_id, obj).map(Inbound::Job)
        }
        _ => Ok(Inbound::Other { kind }),
    }
}

fn optional_string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

fn job_id_of(obj: &Map<String, Value>) -> Result<JobId, String> {
    match obj.get("job_id") {
        Some(Value::String(s)) => JobId::parse(s),
        Some(_) => Err("`job_id` must be a string".into()),
        None => Err("`job_id` is missing".into()),
    }
}

fn decode_job(job_id: JobId, mut obj: Map<String, Value>) -> Result<JobFrame, DecodeError> {
    let invalid = |reason: String| DecodeError::InvalidJob {
        job_id: job_id.clone(),
        reason,
    };
    let model_id = match obj.remove("model_id") {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::String(_)) => return Err(invalid("`model_id` is empty".into())),
        Some(_) => return Err(invalid("`model_id` must be a string".into())),
        None => return Err(invalid("`model_id` is missing".into())),
    };
    let request = match obj.remove("request") {
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid("`request` must be a JSON object".into())),
        None => return Err(invalid("`request` is missing".into())),
    };
    let format = match obj.get("format") {
        None | Some(Value::Null) => JobFormat::Openai,
        Some(Value::String(s)) if s == "openai" => JobFormat::Openai,
        Some(Value::String(s)) if s == "anthropic" => JobFormat::Anthropic,
        Some(other) => {
            return Err(invalid(format!(
                "`format` must be \"openai\" or \"anthropic\", got {}",
                describe(other)
            )));
        }
    };
    let deadline_ms = match obj.get("deadline_ms") {
        None | Some(Value::Null) => DEADLINE_MS_DEFAULT,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => return Err(invalid("`deadline_ms` is 0: the job expired on arrival".into())),
            Some(ms) if ms <= DEADLINE_MS_MAX => ms,
            Some(ms) => {
                return Err(invalid(format!(
                    "`deadline_ms` {ms} exceeds the maximum {DEADLINE_MS_MAX}"
                )));
            }
            None => return Err(invalid(format!("`deadline_ms` must be a positive integer, got {n}"))),
        },
        Some(other) => {
            return Err(invalid(format!(
                "`deadline_ms` must be an integer, got {}",
                describe(other)
            )));
        }
    };
    Ok(JobFrame {
        job_id,
        model_id,
        request,
        format,
        deadline_ms,
    })
}

/// `tokens` of a `job_done` frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

/// One entry of `capabilities.models`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelCapability {
    pub model_id: String,
    pub input_per_1m: f64,
    pub output_per_1m: f64,
    pub max_concurrent: u32,
    pub backend: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
}

/// `capabilities.limits`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Limits {
    pub max_concurrent_total: u32,
    pub max_tokens_per_minute: Option<u64>,
}

/// `capabilities.metadata`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metadata {
    pub agent_version: String,
}

/// Outbound (agent → coordinator) messages other than `job_chunk`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outbound {
    AuthResponse {
        pubkey: String,
        signature: String,
        agent_version: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        enrollment_code: Option<String>,
    },
    Capabilities {
        models: Vec<ModelCapability>,
        limits: Limits,
        metadata: Metadata,
    },
    JobDone {
        job_id: JobId,
        tokens: Tokens,
        duration_ms: u64,
    },
    JobError {
        job_id: JobId,
        error_code: ErrorCode,
        message: String,
        tokens_emitted: u64,
        bytes_emitted: u64,
    },
    Heartbeat {
        queue_depth: u32,
        tokens_per_sec_p50: f64,
        p50_latency_ms: u64,
        p95_latency_ms: u64,
        error_rate_60s: f64,
        last_error_at: Option<String>,
        last_error_code: Option<ErrorCode>,
    },
}

impl Outbound {
    /// Serialises the message as the text of one WebSocket frame.
    pub fn to_text(&self) -> String {
        // Serialising these plain structs cannot fail: no maps with non-string
        // keys, no non-finite floats (callers pass finite statistics).
        serde_json::to_string(self).unwrap_or_else(|e| unreachable!("outbound frame serialises: {e}"))
    }
}

/// The `error_code` vocabulary of protocol.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    OutOfCapacity,
    ModelNotLoaded,
    BackendUnreachable,
    BackendTimeout,
    AuthRejectedByBackend,
    Internal,
    InvalidJob,
    DuplicateJob,
}

impl ErrorCode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::OutOfCapacity => "out_of_capacity",
            ErrorCode::ModelNotLoaded => "model_not_loaded",
            ErrorCode::BackendUnreachable => "backend_unreachable",
            ErrorCode::BackendTimeout => "backend_timeout",
            ErrorCode::AuthRejectedByBackend => "auth_rejected_by_backend",
            ErrorCode::Internal => "internal",
            ErrorCode::InvalidJob => "invalid_job",
            ErrorCode::DuplicateJob => "duplicate_job",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "6f1c2d7e-3b1a-4c5d-8e9f-0a1b2c3d4e5f";

    fn id() -> JobId {
        JobId::parse(ID).unwrap()
    }

    #[test]
    fn job_decodes_with_defaults() {
        let text = json!({"type": "job", "job_id": ID, "model_id": "m", "request": {"messages": []}}).to_string();
        let Inbound::Job(job) = decode_inbound(&text).unwrap() else {
            panic!("not a job")
        };
        assert_eq!(job.deadline_ms, DEADLINE_MS_DEFAULT);
        assert_eq!(job.format, JobFormat::Openai);
        assert_eq!(job.model_id, "m");
    }

    #[test]
    fn job_with_bad_fields_is_invalid_job_with_its_id() {
        let cases = [
            json!({"type": "job", "job_id": ID, "request": {}}),
            json!({"type": "job", "job_id": ID, "model_id": 3, "request": {}}),
            json!({"type": "job", "job_id": ID, "model_id": "m"}),
            json!({"type": "job", "job_id": ID, "model_id": "m", "request": "hi"}),
            json!({"type": "job", "job_id": ID, "model_id": "m", "request": {}, "deadline_ms": 0}),
            json!({"type": "job", "job_id": ID, "model_id": "m", "request": {}, "deadline_ms": -5}),
            json!({"type": "job", "job_id": ID, "model_id": "m", "request": {}, "deadline_ms": 1.5}),
            json!({"type": "job", "job_id": ID, "model_id": "m", "request": {}, "deadline_ms": DEADLINE_MS_MAX + 1}),
            json!({"type": "job", "job_id": ID, "model_id": "m", "request": {}, "format": "xml"}),
        ];
        for case in cases {
            match decode_inbound(&case.to_string()) {
                Err(DecodeError::InvalidJob { job_id, .. }) => assert_eq!(job_id, id(), "{case}"),
                other => panic!("{case}: {other:?}"),
            }
        }
    }

    /// Proves a job id is kept, compared and echoed exactly as written (issue
    /// 13 item 7): upper-case and brace forms are accepted, not canonicalised.
    #[test]
    fn job_ids_are_kept_as_written() {
        let spellings = [
            "6F1C2D7E-3B1A-4C5D-8E9F-0A1B2C3D4E5F",
            "{6f1c2d7e-3b1a-4c5d-8e9f-0a1b2c3d4e5f}",
            "6f1c2d7e3b1a4c5d8e9f0a1b2c3d4e5f",
            "urn:uuid:6f1c2d7e-3b1a-4c5d-8e9f-0a1b2c3d4e5f",
        ];
        for spelling in spellings {
            let text = json!({"type": "job", "job_id": spelling, "model_id": "m", "request": {}}).to_string();
            let Inbound::Job(job) = decode_inbound(&text).unwrap() else {
                panic!("not a job")
            };
            assert_eq!(job.job_id.to_string(), spelling);
            assert_ne!(job.job_id, id(), "two spellings are two jobs");
            let done = Outbound::JobDone {
                job_id: job.job_id.clone(),
                tokens: Tokens::default(),
                duration_ms: 1,
            };
            let v: Value = serde_json::from_str(&done.to_text()).unwrap();
            assert_eq!(v["job_id"], spelling);
            let chunk = ChunkEncoder::new(&job.job_id).encode(b"abc");
            let v: Value = serde_json::from_str(&chunk).unwrap();
            assert_eq!(v["job_id"], spelling);
            assert_eq!(chunk.len(), ChunkEncoder::new(&job.job_id).frame_len(3));
        }
        let cancel = json!({"type": "job_cancel", "job_id": spellings[1]}).to_string();
        let Inbound::JobCancel { job_id } = decode_inbound(&cancel).unwrap() else {
            panic!("not a cancel")
        };
        assert_eq!(job_id.as_str(), spellings[1]);
    }

    #[test]
    fn frames_without_usable_id_or_type_are_decode_errors() {
        assert!(matches!(decode_inbound("not json"), Err(DecodeError::NotJson(_))));
        assert!(matches!(decode_inbound("[1]"), Err(DecodeError::NotJson(_))));
        assert_eq!(decode_inbound(r#"{"job_id":"x"}"#), Err(DecodeError::NoType));
        let bad_id = json!({"type": "job", "job_id": "nope", "model_id": "m", "request": {}});
        assert!(matches!(
            decode_inbound(&bad_id.to_string()),
            Err(DecodeError::InvalidFrame { .. })
        ));
    }

    #[test]
    fn unknown_types_are_other() {
        let got = decode_inbound(r#"{"type":"config_update","x":1}"#).unwrap();
        assert_eq!(
            got,
            Inbound::Other {
                kind: "config_update".into()
            }
        );
    }

    #[test]
    fn outbound_frames_have_protocol_shape() {
        let done = Outbound::JobDone {
            job_id: id(),
            tokens: Tokens { input: 3, output: 4 },
            duration_ms: 9,
        };
        let v: Value = serde_json::from_str(&done.to_text()).unwrap();
        assert_eq!(
            v,
            json!({"type": "job_done", "job_id": ID, "tokens": {"input": 3, "output": 4}, "duration_ms": 9})
        );
        let err = Outbound::JobError {
            job_id: id(),
            error_code: ErrorCode::BackendTimeout,
            message: "m".into(),
            tokens_emitted: 1,
            bytes_emitted: 2,
        };
        let v: Value = serde_json::from_str(&err.to_text()).unwrap();
        assert_eq!(v["error_code"], "backend_timeout");
        assert_eq!(v["bytes_emitted"], 2);
    }
}
