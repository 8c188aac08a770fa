//! Record types: what the coordinator saw and did, with simulated
//! timestamps (`*_us`: microseconds from the injected clock).

mod job;
mod name;

pub use job::{CancelTrigger, ChunkRecord, JobKind, JobOutcome, JobRecord, Terminal, TerminalRecord};
pub(crate) use name::Names;
pub use name::{NAMES_MAX, Name};

use serde::Serialize;
use serde_json::Value;

/// Direction of a frame, seen from the coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    /// Agent → coordinator.
    In,
    /// Coordinator → agent.
    Out,
}

/// One WebSocket frame, in or out, as an owned record ([`crate::Log::frames`],
/// [`crate::FrameView::to_record`]). The log itself keeps frames packed in a
/// [`crate::FrameLog`] (32 bytes each) and lends them as
/// [`crate::FrameView`]s, which have these fields and serialize alike.
/// Lengths are 32-bit: a frame read is at most the WebSocket's 64 MiB
/// message size; a longer one written saturates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FrameRecord {
    pub at_us: u64,
    /// Connection number (1-based, counted across coordinator restarts).
    pub conn: u64,
    pub dir: Dir,
    /// The message `type`; or `binary`, `invalid` (not a JSON object),
    /// `untyped` (object without a string `type`), `ping`, `pong`, `close`.
    pub kind: Name,
    /// The frame's `job_id` when it has a string one.
    pub job_id: Option<Name>,
    /// Length of the frame's text (or payload) in bytes.
    pub text_len: u32,
    /// The full text, except for `job_chunk` frames (kept as
    /// [`FrameRecord::data_len`] instead) and for the `job` frames of
    /// well-formed submissions (normal jobs and re-sends): every field of
    /// those is in the [`JobRecord`] (id, model, deadline) or in the
    /// script's request template, and nothing reads them back. A malformed
    /// job frame keeps its text.
    pub text: Option<Box<str>>,
    /// `job_chunk`: length of the decoded `data`, when it decoded.
    pub data_len: Option<u32>,
}

/// One `heartbeat` frame; fields that were missing or ill-typed are `None`
/// (and a violation names them).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeartbeatRecord {
    pub at_us: u64,
    pub conn: u64,
    pub queue_depth: Option<u64>,
    pub tokens_per_sec_p50: Option<f64>,
    pub p50_latency_ms: Option<f64>,
    pub p95_latency_ms: Option<f64>,
    pub error_rate_60s: Option<f64>,
    pub last_error_at: Option<String>,
    pub last_error_code: Option<String>,
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum CloseReason {
    /// The WebSocket upgrade itself failed.
    UpgradeFailed(String),
    /// The agent sent a Close frame or closed the socket.
    AgentClosed,
    /// Reading failed (reset, protocol error).
    ReadFailed(String),
    /// Writing failed.
    WriteFailed(String),
    /// `auth_failed` was sent (bad or missing response, bad signature).
    AuthFailed(String),
    /// No `auth_response` within `handshake.timeout_ms`.
    HandshakeTimeout,
    /// Script: `handshake.mode = "reject"`.
    ScriptedReject,
    /// Script: `handshake.mode = "close_after_auth"`.
    ScriptedCloseAfterAuth,
    /// Script: `handshake.mode = "no_challenge"` ran out its timeout.
    ScriptedNoChallenge,
    /// Script: an entry of `disconnects`.
    ScriptedDisconnect,
    /// Still open in the log when a new coordinator instance was built on
    /// it: the earlier instance crashed (`closed_us` is the restart time).
    CoordinatorRestarted,
    /// The same provider authenticated on a newer connection, so this one
    /// was closed: an agent holds one session, and a new login means it
    /// gave up on (or lost, in a crash) the old one.
    Superseded,
    /// Nothing was read from the agent for `idle_timeout_ms` while reading.
    IdleTimeout,
}

/// One connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionRecord {
    pub conn: u64,
    pub connected_us: u64,
    /// Handshake mode this connection got (`normal`, `reject`, …).
    pub handshake_mode: String,
    /// From `auth_response`, when one arrived.
    pub pubkey: Option<String>,
    pub agent_version: Option<String>,
    pub enrollment_code: Option<String>,
    pub auth_ok_us: Option<u64>,
    pub closed_us: Option<u64>,
    pub close_reason: Option<CloseReason>,
}

/// What kind of protocol violation the agent committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// A text frame that is not a JSON object.
    NotJson,
    /// An object without a string `type`.
    NoType,
    /// A `type` the agent may not send.
    UnknownType,
    /// A binary frame (the protocol never sends them).
    BinaryFrame,
    /// A required field missing or ill-typed.
    BadField,
    /// `job_chunk.data` is not standard base64.
    BadBase64,
    /// A frame for a `job_id` this coordinator never sent.
    UnknownJob,
    /// A frame for a job that already had its terminal frame.
    AfterTerminal,
    /// A frame on a later connection for a job whose session was lost.
    LostSessionJob,
    /// A frame for a job sent on a different, still open connection.
    OtherConnectionJob,
    /// Anything before `auth_response`, or other than it.
    BeforeAuth,
    /// `auth_response` with a signature that does not verify.
    BadSignature,
    /// `auth_response` again after `auth_ok`.
    AuthAfterAuth,
    /// `capabilities.models` not sorted by `model_id`.
    CapabilitiesUnsorted,
    /// `job_error.bytes_emitted` differs from the bytes relayed.
    BytesEmittedMismatch,
    /// `duplicate_job` for a job that was never resubmitted.
    UnexpectedDuplicateJob,
}

/// One protocol violation by the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub at_us: u64,
    pub conn: u64,
    pub kind: ViolationKind,
    pub job_id: Option<String>,
    /// A sentence saying what was wrong.
    pub what: String,
}

/// What blocked reading during a [`ReadWindow`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ReadBlock {
    /// The socket was not polled at all.
    Pause,
    /// At most `frames_per_sec` frames were read.
    Slow { frames_per_sec: f64 },
}

/// A window in which a connection's reader was held back, as it really
/// happened (a connection opened mid-window records the rest of it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReadWindow {
    pub conn: u64,
    pub block: ReadBlock,
    pub start_us: u64,
    /// `None` while the window is still open.
    pub end_us: Option<u64>,
    /// Frames read inside the window.
    pub frames_read: u64,
}

/// A scripted action that could not be carried out, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    pub at_us: u64,
    pub what: String,
}

/// The `capabilities` frames, by connection.
pub type CapabilitiesRecord = (u64, Value);
