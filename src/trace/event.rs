//! The events of one run, as observed from outside the agent wherever
//! possible: the coordinator's log, the backends' records, the harness's own
//! fault schedule, and (for what nothing outside can see) the agent's
//! observer hooks. Every event serialises to one JSON object.

use serde::{Deserialize, Serialize};

use super::blob::Blob;
use super::shared::{JobId, Name};

/// One timestamped event of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Simulated microseconds since the simulation started.
    pub at_us: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// An event of `kind` at `at_us`.
    pub fn new(at_us: u64, kind: EventKind) -> Self {
        Self { at_us, kind }
    }
}

/// The phases of a run (see `world`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The scripted phase began.
    Scripted,
    /// Every fault was healed (links repaired and released, hosts restarted).
    Healed,
    /// Every job settled and the world went quiet.
    Settled,
    /// The quiet phase hit `settle_ms_max` before the world settled.
    SettleBoundHit,
}

/// A fault the harness applied, or healed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Every message between two hosts is dropped (connections wedge).
    Partition,
    /// Undo a partition.
    Repair,
    /// Messages between two hosts are held back until released.
    Hold,
    /// Deliver held messages.
    Release,
    /// The host's software stops.
    Crash,
    /// The host's software starts again from scratch.
    Restart,
}

impl FaultAction {
    /// Whether this action acts on a link between two hosts.
    pub fn is_link(self) -> bool {
        matches!(self, Self::Partition | Self::Repair | Self::Hold | Self::Release)
    }

    /// The action's name as written in scenarios.
    pub fn name(self) -> &'static str {
        match self {
            Self::Partition => "partition",
            Self::Repair => "repair",
            Self::Hold => "hold",
            Self::Release => "release",
            Self::Crash => "crash",
            Self::Restart => "restart",
        }
    }
}

/// How the coordinator sent a job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// A well-formed job.
    #[default]
    Normal,
    /// A job reusing the id of an earlier one.
    Duplicate,
    /// A job frame with a usable `job_id` but a missing or ill-typed field:
    /// it must be answered with `invalid_job`.
    Invalid,
    /// A frame without a usable `job_id`: it cannot be answered.
    Malformed,
}

/// A terminal frame as the coordinator decoded it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "frame", rename_all = "snake_case")]
pub enum Terminal {
    /// `job_done`.
    Done {
        tokens_in: u64,
        tokens_out: u64,
        duration_ms: u64,
    },
    /// `job_error`.
    Error {
        code: Name,
        tokens_emitted: u64,
        bytes_emitted: Option<u64>,
    },
}

impl Terminal {
    /// The error code, for `job_error`.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Self::Done { .. } => None,
            Self::Error { code, .. } => Some(code),
        }
    }
}

/// The figures of a `heartbeat` frame besides `queue_depth`, as read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HeartbeatFigures {
    pub tokens_per_sec_p50: Option<f64>,
    pub p50_latency_ms: Option<f64>,
    pub p95_latency_ms: Option<f64>,
    pub error_rate_60s: Option<f64>,
    pub last_error_code: Option<String>,
}

/// Every value of [`EventKind::AgentSlotFreed`]'s `why`: finished with
/// `job_done`; with `backend_timeout` at or past the deadline; with another
/// `job_error` (`error:<code>`); by a coordinator `job_cancel`; by the end
/// of its session; finished, but its terminal frame never read; or not
/// matched to any submission.
pub const FREED_WHY: &[&str] = &[
    "completed",
    "deadline",
    "error:<code>",
    "cancelled",
    "session_end",
    "finished_unread",
    "unknown",
];

/// Everything that can appear in a trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum EventKind {
    // ---- the harness ----
    /// A run phase began or ended.
    Phase { phase: Phase },
    /// The harness applied a fault (`hosts` holds one host or the two ends of a link).
    Fault { action: FaultAction, hosts: Vec<String> },
    /// A host's software ended by itself (returned or panicked).
    HostStopped { host: String, error: Option<String> },
    /// A record source hit its bound and dropped `count` records, so the
    /// trace is incomplete.
    RecordsDropped { source: String, count: u64 },
    /// The agent's SYN to `host:port` was dropped because the listener's
    /// backlog (`tcp_capacity`) was full; the agent's side sends it again
    /// after a back-off (see `world::backlog`).
    SynDropped { host: String, port: u16 },

    // ---- the coordinator's log ----
    /// The coordinator accepted a connection.
    SessionOpened { conn: u64 },
    /// The session reached steady state (`capabilities` received).
    SessionReady { conn: u64, models: Vec<String> },
    /// A connection ended.
    SessionClosed { conn: u64, reason: String },
    /// The coordinator held back reading `conn` until `until_us`: not at
    /// all (`slow` false) or at a few frames per second (`slow` true).
    ReadBlocked { conn: u64, until_us: u64, slow: bool },
    /// A `job` frame was written to `conn`: one *submission* of `job`. A job
    /// id the coordinator re-sends has several; `sub` (the coordinator's
    /// record index) names each one, and every frame of the agent below
    /// carries the submission the coordinator attributed it to (see
    /// mock-coordinator/README.md, "Attribution").
    JobSent {
        job: JobId,
        sub: u64,
        conn: u64,
        model: Name,
        deadline_ms: u64,
        kind: JobKind,
        /// Re-sends only: every earlier submission of the id had ended for
        /// the agent (terminal read or cancel written) when it was written.
        id_was_free: Option<bool>,
        /// The scenario's job number (`job = N` keys; the coordinator's
        /// arrival number): its own for an original, its original's for a
        /// re-send; absent for a broken frame. Names the submission (see
        /// `trace::name`).
        #[serde(skip_serializing_if = "Option::is_none")]
        arrival: Option<u64>,
    },
    /// Submission `sub` came due while no session existed (or its
    /// connection ended before it was written); it was never sent.
    JobUndeliverable {
        job: JobId,
        sub: u64,
        kind: JobKind,
        /// As for [`EventKind::JobSent`].
        #[serde(skip_serializing_if = "Option::is_none")]
        arrival: Option<u64>,
    },
    /// A `job_cancel` frame was written; it counted for the submissions
    /// `subs` (a cancel names only an id: the one it was sent for and every
    /// one of the id on `conn` still awaiting frames). Empty when every one
    /// of them had already been cancelled before.
    CancelSent { job: JobId, conn: u64, subs: Vec<u64> },
    /// A `job_chunk` frame was read; `sub` is the submission it belongs to,
    /// `None` when the coordinator attributed it to none (after the
    /// terminal frame, another connection's job, an unknown id).
    Chunk {
        job: JobId,
        sub: Option<u64>,
        conn: u64,
        len: u64,
    },
    /// A terminal frame was read; `sub` as for [`EventKind::Chunk`].
    TerminalReceived {
        job: JobId,
        sub: Option<u64>,
        conn: u64,
        terminal: Terminal,
    },
    /// Submission `sub`'s connection ended while it was in flight.
    JobSessionLost { job: JobId, sub: u64, conn: u64 },
    /// Cancelled submission `sub` (no terminal frame) stopped receiving
    /// frames: a later submission of its id was written on its connection.
    JobSuperseded { job: JobId, sub: u64 },
    /// The bytes the coordinator reassembled for submission `sub` (at its
    /// last chunk).
    JobBytes { job: JobId, sub: u64, bytes: Blob },
    /// A `heartbeat` frame was read.
    Heartbeat {
        conn: u64,
        queue_depth: u64,
        /// Its other figures (`None` where missing or ill-typed).
        #[serde(flatten)]
        figures: Box<HeartbeatFigures>,
    },
    /// The coordinator itself flagged a protocol violation by the agent.
    CoordinatorFlagged {
        conn: u64,
        kind: String,
        job: Option<JobId>,
        what: String,
    },
    /// A scripted coordinator action that could not be carried out.
    CoordinatorNote { what: String },

    // ---- the backends' records ----
    /// A request reached a backend.
    BackendRequest {
        backend: Name,
        request: u64,
        job: Option<JobId>,
        method: Name,
        path: Name,
        model: Option<Name>,
        stream: bool,
    },
    /// A backend request ended; `body` is every byte the backend wrote.
    BackendEnd {
        backend: Name,
        request: u64,
        job: Option<JobId>,
        status: u16,
        tokens_written: u64,
        end: Name,
        body: Blob,
    },

    // ---- the agent's observer (only what outside observation cannot see) ----
    /// The agent reached steady state on a session.
    AgentSessionStarted { session: u64 },
    /// The agent ended a session and freed its jobs.
    AgentSessionEnded { session: u64, reason: String },
    /// A job took a slot. The agent names only the id; `sub` is the
    /// submission the harness matched the decision to (see
    /// `world::agent_subs`), `None` when none fits.
    AgentJobAdmitted {
        job: JobId,
        sub: Option<u64>,
        in_flight: u64,
    },
    /// A job was rejected without taking a slot; `sub` as for
    /// [`EventKind::AgentJobAdmitted`].
    AgentJobRejected {
        job: JobId,
        sub: Option<u64>,
        code: Name,
        in_flight: u64,
    },
    /// A job released its slot. `sub` is the submission that took it;
    /// `cancelled` is the agent's word (the job was stopped, not finished);
    /// `why` is what freed it, as the harness reads the trace: one of
    /// [`FREED_WHY`].
    AgentSlotFreed {
        job: JobId,
        sub: Option<u64>,
        in_flight: u64,
        cancelled: bool,
        why: Name,
    },
    /// Outbound bytes queued but not yet handed to the socket.
    AgentOutboundQueued { bytes: u64, frames: u64 },
    /// An inbound frame could not be decoded.
    AgentFrameRejected { reason: String },
}

/// The `ev` tag of every [`EventKind`], in declaration order. docs/TRACE.md
/// has a row for each (a test checks it, against a serialised instance of
/// every variant from `trace::handmade::every_event_kind`).
pub const EVENT_KINDS: &[&str] = &[
    "phase",
    "fault",
    "host_stopped",
    "records_dropped",
    "syn_dropped",
    "session_opened",
    "session_ready",
    "session_closed",
    "read_blocked",
    "job_sent",
    "job_undeliverable",
    "cancel_sent",
    "chunk",
    "terminal_received",
    "job_session_lost",
    "job_superseded",
    "job_bytes",
    "heartbeat",
    "coordinator_flagged",
    "coordinator_note",
    "backend_request",
    "backend_end",
    "agent_session_started",
    "agent_session_ended",
    "agent_job_admitted",
    "agent_job_rejected",
    "agent_slot_freed",
    "agent_outbound_queued",
    "agent_frame_rejected",
];

impl EventKind {
    /// Its `ev` tag, one of [`EVENT_KINDS`]. The match has no wildcard, so
    /// a new variant does not compile until it is named here: add it to
    /// [`EVENT_KINDS`], to `handmade::every_event_kind` and to docs/TRACE.md.
    pub fn tag(&self) -> &'static str {
        let index = match self {
            Self::Phase { .. } => 0,
            Self::Fault { .. } => 1,
            Self::HostStopped { .. } => 2,
            Self::RecordsDropped { .. } => 3,
            Self::SynDropped { .. } => 4,
            Self::SessionOpened { .. } => 5,
            Self::SessionReady { .. } => 6,
            Self::SessionClosed { .. } => 7,
            Self::ReadBlocked { .. } => 8,
            Self::JobSent { .. } => 9,
            Self::JobUndeliverable { .. } => 10,
            Self::CancelSent { .. } => 11,
            Self::Chunk { .. } => 12,
            Self::TerminalReceived { .. } => 13,
            Self::JobSessionLost { .. } => 14,
            Self::JobSuperseded { .. } => 15,
            Self::JobBytes { .. } => 16,
            Self::Heartbeat { .. } => 17,
            Self::CoordinatorFlagged { .. } => 18,
            Self::CoordinatorNote { .. } => 19,
            Self::BackendRequest { .. } => 20,
            Self::BackendEnd { .. } => 21,
            Self::AgentSessionStarted { .. } => 22,
            Self::AgentSessionEnded { .. } => 23,
            Self::AgentJobAdmitted { .. } => 24,
            Self::AgentJobRejected { .. } => 25,
            Self::AgentSlotFreed { .. } => 26,
            Self::AgentOutboundQueued { .. } => 27,
            Self::AgentFrameRejected { .. } => 28,
        };
        EVENT_KINDS[index]
    }

    /// The job this event concerns, if any.
    pub fn job(&self) -> Option<&str> {
        self.job_id().map(|job| &**job)
    }

    /// [`EventKind::job`] as the shared id the event holds.
    pub fn job_id(&self) -> Option<&JobId> {
        match self {
            Self::JobSent { job, .. }
            | Self::JobUndeliverable { job, .. }
            | Self::CancelSent { job, .. }
            | Self::Chunk { job, .. }
            | Self::TerminalReceived { job, .. }
            | Self::JobSessionLost { job, .. }
            | Self::JobSuperseded { job, .. }
            | Self::JobBytes { job, .. }
            | Self::AgentJobAdmitted { job, .. }
            | Self::AgentJobRejected { job, .. }
            | Self::AgentSlotFreed { job, .. } => Some(job),
            Self::BackendRequest { job, .. } | Self::BackendEnd { job, .. } => job.as_ref(),
            _ => None,
        }
    }
}
#[cfg(test)]
mod size {
    /// Every event of a trace is as large as its largest kind, so a kind
    /// that grows grows the whole trace (issue 16): large, rare payloads
    /// are boxed and a blob is one pointer.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_event_stays_within_104_bytes() {
        assert!(size_of::<super::Event>() <= 104, "{} bytes", size_of::<super::Event>());
    }
}
