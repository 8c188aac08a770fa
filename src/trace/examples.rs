//! One instance of every [`EventKind`], for tests that must cover them all
//! (docs/TRACE.md documents every `ev` tag: `tests/it/names.rs`).

use super::{Blob, EventKind, FaultAction, JobKind, Phase, Terminal};

/// One event of every kind, in [`super::EVENT_KINDS`] order.
pub fn every_event_kind() -> Vec<EventKind> {
    let job = || crate::trace::JobId::from("6f1c2d7e-3b1a-4c5d-8e9f-0a1b2c3d4e5f");
    vec![
        EventKind::Phase { phase: Phase::Scripted },
        EventKind::Fault {
            action: FaultAction::Partition,
            hosts: vec!["agent".into(), "coordinator".into()],
        },
        EventKind::HostStopped {
            host: "agent".into(),
            error: None,
        },
        EventKind::RecordsDropped {
            source: "agent events".into(),
            count: 1,
        },
        EventKind::SynDropped {
            host: "vllm-1".into(),
            port: 8000,
        },
        EventKind::SessionOpened { conn: 1 },
        EventKind::SessionReady {
            conn: 1,
            models: vec!["m".into()],
        },
        EventKind::SessionClosed {
            conn: 1,
            reason: "agent_closed".into(),
        },
        EventKind::ReadBlocked {
            conn: 1,
            until_us: 5,
            slow: false,
        },
        EventKind::JobSent {
            job: job(),
            sub: 0,
            conn: 1,
            model: "m".into(),
            deadline_ms: 1_000,
            kind: JobKind::Normal,
            id_was_free: None,
            arrival: Some(0),
        },
        EventKind::JobUndeliverable {
            job: job(),
            sub: 1,
            kind: JobKind::Normal,
            arrival: Some(1),
        },
        EventKind::CancelSent {
            job: job(),
            conn: 1,
            subs: vec![0],
        },
        EventKind::Chunk {
            job: job(),
            sub: Some(0),
            conn: 1,
            len: 3,
        },
        EventKind::TerminalReceived {
            job: job(),
            sub: Some(0),
            conn: 1,
            terminal: Terminal::Done {
                tokens_in: 1,
                tokens_out: 2,
                duration_ms: 3,
            },
        },
        EventKind::JobSessionLost {
            job: job(),
            sub: 0,
            conn: 1,
        },
        EventKind::JobSuperseded { job: job(), sub: 0 },
        EventKind::JobBytes {
            job: job(),
            sub: 0,
            bytes: Blob::new(b"abc"),
        },
        EventKind::Heartbeat {
            conn: 1,
            queue_depth: 0,
            figures: Box::default(),
        },
        EventKind::CoordinatorFlagged {
            conn: 1,
            kind: "bytes_emitted_mismatch".into(),
            job: Some(job()),
            what: "…".into(),
        },
        EventKind::CoordinatorNote { what: "…".into() },
        EventKind::BackendRequest {
            backend: "vllm-1".into(),
            request: 0,
            job: Some(job()),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            model: Some("m".into()),
            stream: true,
        },
        EventKind::BackendEnd {
            backend: "vllm-1".into(),
            request: 0,
            job: Some(job()),
            status: 200,
            tokens_written: 2,
            end: "completed".into(),
            body: Blob::new(b"data: [DONE]"),
        },
        EventKind::AgentSessionStarted { session: 1 },
        EventKind::AgentSessionEnded {
            session: 1,
            reason: "closed".into(),
        },
        EventKind::AgentJobAdmitted {
            job: job(),
            sub: Some(0),
            in_flight: 1,
        },
        EventKind::AgentJobRejected {
            job: job(),
            sub: Some(0),
            code: "out_of_capacity".into(),
            in_flight: 1,
        },
        EventKind::AgentSlotFreed {
            job: job(),
            sub: Some(0),
            in_flight: 0,
            cancelled: false,
            why: "completed".into(),
        },
        EventKind::AgentOutboundQueued { bytes: 10, frames: 1 },
        EventKind::AgentFrameRejected {
            reason: "not JSON".into(),
        },
    ]
}
