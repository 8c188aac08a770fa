//! Wire messages of `shared/protocol.md` (v2), typed in both directions.
//!
//! Inbound frames are decoded in two stages so that a job with a parseable
//! `job_id` but a bad field can be answered with `invalid_job`, while a frame
//! with no usable id is only counted and logged. Outbound `job_chunk` frames,
//! the hot path, are written straight into a byte buffer by a per-job
//! [`ChunkEncoder`]: no `serde_json::Value`, no intermediate `String`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Default `deadline_ms` when a job omits it (protocol.md).
pub const DEADLINE_MS_DEFAULT: u64 = 60_000;
/// Largest `deadline_ms` accepted. A longer deadline is almost certainly a
/// unit mistake on the coordinator's side (seconds sent as milliseconds would
/// be caught by the lower bound instead), and an hour is far beyond any
/// streaming completion; such a job gets `invalid_job` rather than tying up a
/// slot for days.
pub const DEADLINE_MS_MAX: u64 = 3_600_000;

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
    pub job_id: Uuid,
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
        job_id: Uuid,
    },
    /// A well-formed frame of a type this agent does not act on (for example
    /// `config_update`): logged and ignored.
    Other {
        kind: String,
    },
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
    InvalidJob { job_id: Uuid, reason: String },
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
        Some(Value::String(s)) => s.clone(),
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
            reason: optional_string(&obj, "reason").map_err(|r| invalid(&r))?,
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

fn job_id_of(obj: &Map<String, Value>) -> Result<Uuid, String> {
    match obj.get("job_id") {
        Some(Value::String(s)) => Uuid::parse_str(s).map_err(|e| format!("`job_id` is not a UUID: {e}")),
        Some(_) => Err("`job_id` must be a string".into()),
        None => Err("`job_id` is missing".into()),
    }
}

fn decode_job(job_id: Uuid, mut obj: Map<String, Value>) -> Result<JobFrame, DecodeError> {
    let invalid = |reason: String| DecodeError::InvalidJob { job_id, reason };
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
                "`format` must be \"openai\" or \"anthropic\", got {other}"
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
        Some(other) => return Err(invalid(format!("`deadline_ms` must be an integer, got {other}"))),
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
        job_id: Uuid,
        tokens: Tokens,
        duration_ms: u64,
    },
    JobError {
        job_id: Uuid,
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

const CHUNK_PREFIX: &str = r#"{"type":"job_chunk","job_id":""#;
const CHUNK_MIDDLE: &str = r#"","data":""#;
const CHUNK_SUFFIX: &str = r#""}"#;
/// Length of a hyphenated UUID.
const UUID_TEXT_LEN: usize = 36;
/// Length of a frame's head, `{"type":"job_chunk","job_id":"<uuid>","data":"`:
/// the same for every job, since a hyphenated UUID always has 36 characters.
const CHUNK_HEAD_LEN: usize = CHUNK_PREFIX.len() + UUID_TEXT_LEN + CHUNK_MIDDLE.len();

/// Exact length of the `job_chunk` frame for `data_len` bytes, as written by
/// [`ChunkEncoder::encode`] and [`encode_job_chunk`].
pub fn job_chunk_frame_len(data_len: usize) -> usize {
    CHUNK_HEAD_LEN + data_len.div_ceil(3) * 4 + CHUNK_SUFFIX.len()
}

/// Writes the `job_chunk` frames of one job.
///
/// The frame's head, everything before the base64 text, depends only on the
/// job id, so it is rendered once per job here instead of formatting the
/// UUID again for every chunk.
#[derive(Clone, Debug)]
pub struct ChunkEncoder {
    head: [u8; CHUNK_HEAD_LEN],
}

impl ChunkEncoder {
    pub fn new(job_id: &Uuid) -> Self {
        Self {
            head: render_head(job_id),
        }
    }

    /// The `job_chunk` frame for `data`, in a `String` of exactly
    /// [`job_chunk_frame_len`] bytes (one allocation, never regrown).
    ///
    /// The output is plain ASCII JSON, identical to what serde would produce
    /// for `{"type":"job_chunk","job_id":…,"data":…}`: a UUID and standard
    /// base64 never need escaping. It is a `String` so that it becomes a
    /// WebSocket text frame without another UTF-8 check or a copy.
    pub fn encode(&self, data: &[u8]) -> String {
        encode_frame(&self.head, data)
    }
}

/// `{"type":"job_chunk","job_id":"<uuid>","data":"` for `job_id`.
fn render_head(job_id: &Uuid) -> [u8; CHUNK_HEAD_LEN] {
    let mut head = [0u8; CHUNK_HEAD_LEN];
    let (prefix, rest) = head.split_at_mut(CHUNK_PREFIX.len());
    prefix.copy_from_slice(CHUNK_PREFIX.as_bytes());
    let (id, middle) = rest.split_at_mut(UUID_TEXT_LEN);
    job_id.hyphenated().encode_lower(id);
    middle.copy_from_slice(CHUNK_MIDDLE.as_bytes());
    head
}

/// Head, base64 of `data`, suffix: built as bytes and then turned into a
/// `String`.
///
/// Why bytes: `unsafe` is forbidden in this workspace, so nothing can write
/// base64 straight into a `String`'s buffer. `encode_slice` into the byte
/// buffer writes in place, and `String::from_utf8`'s one pass of ASCII
/// validation costs less than `encode_string`, which zeroes a 1 KiB stack
/// buffer, encodes into it, validates that and copies it out.
fn encode_frame(head: &[u8; CHUNK_HEAD_LEN], data: &[u8]) -> String {
    let frame_len = job_chunk_frame_len(data.len());
    let mut buf = Vec::with_capacity(frame_len);
    buf.extend_from_slice(head);
    buf.resize(frame_len - CHUNK_SUFFIX.len(), 0);
    B64.encode_slice(data, &mut buf[CHUNK_HEAD_LEN..])
        .expect("buffer sized by job_chunk_frame_len");
    buf.extend_from_slice(CHUNK_SUFFIX.as_bytes());
    debug_assert_eq!(buf.len(), frame_len);
    String::from_utf8(buf).expect("a job_chunk frame is ASCII")
}

/// Appends a `job_chunk` frame for `data` to `out`, for one-off frames; a
/// job's stream uses a [`ChunkEncoder`], which renders the head only once.
///
/// The frame is built as in [`ChunkEncoder::encode`]; an empty `out` takes
/// it over without a copy, otherwise it is copied onto the end of `out`.
pub fn encode_job_chunk(out: &mut String, job_id: &Uuid, data: &[u8]) {
    let frame = encode_frame(&render_head(job_id), data);
    if out.is_empty() {
        *out = frame;
    } else {
        out.push_str(&frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "6f1c2d7e-3b1a-4c5d-8e9f-0a1b2c3d4e5f";

    fn id() -> Uuid {
        Uuid::parse_str(ID).unwrap()
    }

    #[test]
    fn chunk_encoder_matches_serde_for_every_length_mod_3() {
        for len in [0usize, 1, 2, 3, 4, 5, 16, 256, 4097] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut out = String::from("prefix");
            encode_job_chunk(&mut out, &id(), &data);
            let expected = json!({"type": "job_chunk", "job_id": ID, "data": B64.encode(&data)});
            let got: Value = serde_json::from_str(&out[6..]).unwrap();
            assert_eq!(got, expected, "len {len}");
            assert_eq!(out.len() - 6, job_chunk_frame_len(len));
        }
    }

    /// The frame as serde writes it from a struct with the wire's field
    /// order, to compare byte for byte (a `json!` map sorts its keys).
    #[derive(Serialize)]
    struct SerdeChunk {
        r#type: &'static str,
        job_id: Uuid,
        data: String,
    }

    #[test]
    fn job_encoder_is_byte_identical_to_serde_for_every_length_mod_3() {
        let encoder = ChunkEncoder::new(&id());
        for len in [0usize, 1, 2, 3, 4, 5, 16, 256, 4097, 65536] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let out = encoder.encode(&data);
            let serde_frame = SerdeChunk {
                r#type: "job_chunk",
                job_id: id(),
                data: B64.encode(&data),
            };
            assert_eq!(out, serde_json::to_string(&serde_frame).unwrap(), "len {len}");
            assert_eq!(out.len(), job_chunk_frame_len(len));
        }
    }

    #[test]
    fn job_encoder_and_one_off_encoder_agree() {
        let data = b"data: {}\n\n";
        let mut one_off = String::new();
        encode_job_chunk(&mut one_off, &id(), data);
        assert_eq!(ChunkEncoder::new(&id()).encode(data), one_off);
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
