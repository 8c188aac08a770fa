//! Scripted cancels and faults: malformed jobs, duplicate job ids, unknown
//! message types and coordinator-side disconnects.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What triggers a scripted `job_cancel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelKind {
    /// At `at_ms`, cancel job `job` (required). Sent even when the job has
    /// already finished, as long as its connection is still open: a stale
    /// cancel is a legitimate test of the agent.
    At,
    /// When job `job` (or each job selected by `fraction`) has delivered its
    /// `after_chunks`-th chunk and is still in flight.
    AfterChunks,
    /// Each job with probability `fraction` (seeded RNG), `delay_ms` after
    /// its frame was handed to the connection, if it is still in flight.
    Fraction,
    /// The moment a chunk of job `job` (or each job selected by `fraction`)
    /// arrives whose reassembled bytes contain a non-null `finish_reason` or
    /// `[DONE]`: the cancel races the agent's terminal frame on purpose.
    RaceCompletion,
}

/// One scripted cancel rule. Job selection: `job` picks one job by arrival
/// index; otherwise each job is selected with probability `fraction`
/// (default 1.0, i.e. every job).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRule {
    pub kind: CancelKind,
    /// Arrival index of the target job.
    #[serde(default)]
    pub job: Option<u64>,
    /// `at`: when to send the cancel.
    #[serde(default)]
    pub at_ms: Option<u64>,
    /// `after_chunks`: chunk count (≥ 1) after which to cancel.
    #[serde(default)]
    pub after_chunks: Option<u32>,
    /// Probability (0..=1) that a job is selected when `job` is absent.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// `fraction`: delay after the job was handed to the connection.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

impl CancelRule {
    /// Selection probability used when no `job` is given.
    pub fn fraction_or_all(&self) -> f64 {
        self.fraction.unwrap_or(1.0)
    }
}

/// How a scripted malformed `job` frame is broken. The ones marked
/// "answerable" keep a parseable `job_id`, so the agent is expected to answer
/// `job_error` with `invalid_job`; the others carry no usable id and are
/// expected to be logged and dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MalformedKind {
    /// Not JSON at all.
    NotJson,
    /// A JSON array instead of an object.
    NotObject,
    /// An object without `type`.
    NoType,
    /// A `job` without `job_id`.
    MissingJobId,
    /// A `job` whose `job_id` is not a UUID.
    BadJobId,
    /// Answerable: `model_id` missing.
    MissingModel,
    /// Answerable: `model_id` is a number.
    BadModel,
    /// Answerable: `request` missing.
    MissingRequest,
    /// Answerable: `request` is a string.
    RequestNotObject,
    /// Answerable: `deadline_ms` is negative.
    BadDeadline,
    /// Answerable: `deadline_ms` is a string.
    DeadlineNotNumber,
    /// Answerable: `deadline_ms` is 0.
    ZeroDeadline,
    /// Answerable: `format` is an unknown string.
    BadFormat,
}

impl MalformedKind {
    /// The `error_code` the agent is expected to answer with, if any.
    pub fn expected_error_code(self) -> Option<&'static str> {
        match self {
            MalformedKind::NotJson
            | MalformedKind::NotObject
            | MalformedKind::NoType
            | MalformedKind::MissingJobId
            | MalformedKind::BadJobId => None,
            _ => Some("invalid_job"),
        }
    }
}

/// Send one malformed job frame at `at_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MalformedRule {
    pub at_ms: u64,
    pub kind: MalformedKind,
}

/// What a re-send's `delay_ms` counts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResendAfter {
    /// The original was handed to its connection.
    #[default]
    Sent,
    /// The original's first terminal frame was read. Never fires for a job
    /// that gets no terminal frame, nor for one a cancel was queued for
    /// before its terminal arrived.
    Terminal,
    /// A `job_cancel` for the original was written (also a stale one, sent
    /// after the job ended). Never fires for a job that is not cancelled.
    Cancel,
}

/// Re-send job `job`'s exact frame (same `job_id`) `delay_ms` after the
/// moment `after` names. While the original is in flight the agent must
/// answer the re-send with `duplicate_job` and leave the original alone;
/// once the original has ended (terminal frame, or cancelled) the re-send is
/// a new job. Re-sends of a cancelled job are held back by
/// [`super::Script::resend_guard_ms`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateRule {
    pub job: u64,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub after: ResendAfter,
}

/// Send `{"type": <type>, ...fields}` at `at_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnknownTypeRule {
    pub at_ms: u64,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// How the coordinator ends a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectKind {
    /// A WebSocket Close frame, then the socket is dropped.
    #[default]
    Close,
    /// The socket is dropped without a Close frame.
    Drop,
}

/// End every open connection at `at_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisconnectRule {
    pub at_ms: u64,
    #[serde(default)]
    pub kind: DisconnectKind,
}
