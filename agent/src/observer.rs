//! Optional hooks through which a harness watches what outside observation
//! cannot see (slot accounting, queued outbound bytes). Production passes
//! [`NoopObserver`]. Observers must be cheap and must never block: they are
//! called with the executor's lock held.

use std::sync::Arc;

use crate::protocol::{ErrorCode, JobId};

/// An event inside the agent.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentEvent {
    /// A session reached steady state (`auth_ok` received, capabilities sent).
    SessionStarted { session: u64 },
    /// A session ended; every job of it has been cancelled and its slot freed.
    SessionEnded { session: u64, reason: String },
    /// A job took a slot; `in_flight` counts it.
    JobAdmitted { job_id: JobId, in_flight: usize },
    /// A job was rejected without taking a slot.
    JobRejected {
        job_id: JobId,
        code: ErrorCode,
        in_flight: usize,
    },
    /// A job released its slot; `in_flight` no longer counts it.
    SlotFreed {
        job_id: JobId,
        in_flight: usize,
        cancelled: bool,
    },
    /// Outbound bytes queued but not yet handed to the socket changed.
    OutboundQueued { bytes: usize, frames: usize },
    /// An inbound frame could not be decoded (counted, never fatal).
    FrameRejected { reason: String },
}

/// Receives [`AgentEvent`]s.
pub trait Observer: Send + Sync + 'static {
    fn on_event(&self, event: AgentEvent);
}

/// Discards every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {
    fn on_event(&self, _event: AgentEvent) {}
}

/// Shared observer handle.
pub type SharedObserver = Arc<dyn Observer>;
