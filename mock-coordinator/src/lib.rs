//! Mock coordinator: the coordinator side of `shared/protocol.md`, driven by
//! a [`Script`] and recording everything in a [`Log`], over any byte stream
//! (turmoil's simulated TCP inside the simulation, tokio TCP outside it).
//!
//! Module map:
//! - [`script`] — the `[coordinator]` table: serde types, defaults, validation.
//! - `plan` — the open-loop schedule precomputed from script and seed.
//! - `rng` — every draw from the one seeded RNG.
//! - `frames` — text of every outbound frame, malformed ones included.
//! - [`coordinator`] — [`Coordinator`]: construction, sessions, `serve_*`.
//! - `handshake` — challenge, signature check, scripted misbehaviour.
//! - `enrollment` — single-use enrollment codes.
//! - `routing` — routing by the latest `capabilities` of a session.
//! - `session` — steady-state reader loop, read pauses and slow reads.
//! - `writer` — the per-connection writer task and its outbound queue.
//! - `driver` — the job driver task: timeline, closed loops, relative actions.
//! - `issue` — the driver's actions: jobs, duplicates, faults, cancels.
//! - `resend` — re-sends armed on, or due after, their original's events.
//! - `chain` — the submissions of one `job_id` on one connection, and what
//!   writing a job or a cancel means for them (README, "Attribution").
//! - `inbound` — decoding, attribution and checking of the agent's frames.
//! - [`record`] — record types; [`log`] — the shared [`Log`]; `state` — its
//!   contents; [`framelog`] — its frames, 32 bytes each; [`segmented`] —
//!   the append-only list its long lists are
//!   kept in; [`summary`] — HdrHistogram metrics.
//! - [`digest`] — [`Digest`]: how each connection ended, heartbeat figures,
//!   answers by kind, jobs left waiting, races run; [`checks`] — the
//!   coordinator's own end-of-run checks, printed as violations.
//! - [`clock`] — the injected [`Clock`]; `start` — [`StartOn`], when script
//!   time zero is (clock zero, or the first session's steady state).
//!
//! Determinism: time comes from `tokio::time` and the injected clock,
//! randomness from one `ChaCha8Rng` kept in the [`Log`], collections are
//! ordered, and every `select!` is biased.

mod chain;
pub mod checks;
pub mod clock;
pub mod coordinator;
pub mod digest;
mod driver;
mod enrollment;
pub mod framelog;
mod frames;
mod handshake;
mod inbound;
mod issue;
pub mod log;
mod plan;
pub mod record;
mod resend;
mod rng;
mod routing;
pub mod script;
pub mod segmented;
mod session;
mod start;
mod state;
pub mod summary;
mod writer;

pub use checks::{CheckReport, CheckViolation};
pub use clock::{Clock, tokio_clock};
pub use coordinator::{CONNECTIONS_MAX, Coordinator, READ_BUFFER_BYTES};
pub use digest::Digest;
pub use framelog::{FrameLog, FrameView};
pub use log::{Log, LogSnapshot};
pub use record::{
    CancelTrigger, ChunkRecord, CloseReason, Dir, FrameRecord, HeartbeatRecord, JobKind, JobOutcome, JobRecord, Name,
    Note, ReadBlock, ReadWindow, SessionRecord, Terminal, TerminalRecord, Violation, ViolationKind,
};
pub use script::{Script, ScriptError};
pub use segmented::Segmented;
pub use start::StartOn;
pub use state::{FRAME_RECORDS_MAX, VIOLATIONS_MAX};
pub use summary::{LatencyStats, Summary};
