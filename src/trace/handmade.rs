//! A builder for hand-made traces, so the oracle can be tested on traces that
//! hold exactly one violation (or none). Times are given in simulated
//! milliseconds for readability.

use std::collections::BTreeMap;

use super::{Blob, Event, EventKind, JobKind, Phase, Terminal, Trace};

/// Builds a [`Trace`] event by event.
#[derive(Clone, Debug, Default)]
pub struct TraceBuilder {
    events: Vec<Event>,
    /// Bytes reassembled so far per job, and the time of its last chunk.
    reassembled: BTreeMap<String, (u64, Vec<u8>)>,
    next_request: u64,
}

fn us(at_ms: u64) -> u64 {
    at_ms * 1_000
}

impl TraceBuilder {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Any event, at `at_ms`.
    pub fn at(mut self, at_ms: u64, kind: EventKind) -> Self {
        self.events.push(Event::new(us(at_ms), kind));
        self
    }

    /// Any event, at `at_us` microseconds.
    pub fn at_us(mut self, at_us: u64, kind: EventKind) -> Self {
        self.events.push(Event::new(at_us, kind));
        self
    }

    /// A run phase.
    pub fn phase(self, at_ms: u64, phase: Phase) -> Self {
        self.at(at_ms, EventKind::Phase { phase })
    }

    /// A connection that is opened and reaches steady state at once.
    pub fn session(self, at_ms: u64, conn: u64) -> Self {
        self.at(at_ms, EventKind::SessionOpened { conn }).at(
            at_ms,
            EventKind::SessionReady {
                conn,
                models: vec!["m".into()],
            },
        )
    }

    /// A connection ends.
    pub fn session_closed(self, at_ms: u64, conn: u64) -> Self {
        self.at(
            at_ms,
            EventKind::SessionClosed {
                conn,
                reason: "closed".into(),
            },
        )
    }

    /// A well-formed job with model `m` is sent.
    pub fn job(self, at_ms: u64, job: &str, conn: u64, deadline_ms: u64) -> Self {
        self.job_of_kind(at_ms, job, conn, deadline_ms, JobKind::Normal)
    }

    /// A job of the given kind is sent.
    pub fn job_of_kind(self, at_ms: u64, job: &str, conn: u64, deadline_ms: u64, kind: JobKind) -> Self {
        self.at(
            at_ms,
            EventKind::JobSent {
                job: job.into(),
                conn,
                model: "m".into(),
                deadline_ms,
                kind,
            },
        )
    }

    /// A chunk carrying `bytes` is read.
    pub fn chunk(mut self, at_ms: u64, job: &str, conn: u64, bytes: &[u8]) -> Self {
        let entry = self.reassembled.entry(job.to_owned()).or_default();
        entry.0 = us(at_ms);
        entry.1.extend_from_slice(bytes);
        self.at(
            at_ms,
            EventKind::Chunk {
                job: job.into(),
                conn,
                len: bytes.len() as u64,
            },
        )
    }

    /// A `job_done` is read.
    pub fn done(self, at_ms: u64, job: &str, conn: u64) -> Self {
        let terminal = Terminal::Done {
            tokens_in: 1,
            tokens_out: 1,
            duration_ms: 1,
        };
        self.at(
            at_ms,
            EventKind::TerminalReceived {
                job: job.into(),
                conn,
                terminal,
            },
        )
    }

    /// A `job_error` with `code` is read.
    pub fn error(self, at_ms: u64, job: &str, conn: u64, code: &str) -> Self {
        let terminal = Terminal::Error {
            code: code.into(),
            tokens_emitted: 0,
            bytes_emitted: None,
        };
        self.at(
            at_ms,
            EventKind::TerminalReceived {
                job: job.into(),
                conn,
                terminal,
            },
        )
    }

    /// A `job_cancel` is sent.
    pub fn cancel(self, at_ms: u64, job: &str, conn: u64) -> Self {
        self.at(at_ms, EventKind::CancelSent { job: job.into(), conn })
    }

    /// A heartbeat is read.
    pub fn heartbeat(self, at_ms: u64, conn: u64, queue_depth: u64) -> Self {
        self.at(at_ms, EventKind::Heartbeat { conn, queue_depth })
    }

    /// Backend `b1` serves `job` from `start_ms` to `end_ms` (never ends when
    /// `None`), writing `body`, ending as `end` (`completed`, `client_gone`…).
    pub fn backend(mut self, start_ms: u64, end_ms: Option<u64>, job: &str, body: &[u8], end: &str) -> Self {
        let request = self.next_request;
        self.next_request += 1;
        let start = EventKind::BackendRequest {
            backend: "b1".into(),
            request,
            job: Some(job.into()),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            model: Some("m".into()),
            stream: true,
        };
        self = self.at(start_ms, start);
        match end_ms {
            Some(end_ms) => self.at(
                end_ms,
                EventKind::BackendEnd {
                    backend: "b1".into(),
                    request,
                    job: Some(job.into()),
                    status: 200,
                    tokens_written: 1,
                    end: end.into(),
                    body: Blob::new(body),
                },
            ),
            None => self,
        }
    }

    /// The agent admits `job`, now holding `in_flight` slots.
    pub fn admitted(self, at_ms: u64, job: &str, in_flight: u64) -> Self {
        self.at(
            at_ms,
            EventKind::AgentJobAdmitted {
                job: job.into(),
                in_flight,
            },
        )
    }

    /// The agent rejects `job` with `code` while holding `in_flight` slots.
    pub fn rejected(self, at_ms: u64, job: &str, code: &str, in_flight: u64) -> Self {
        self.at(
            at_ms,
            EventKind::AgentJobRejected {
                job: job.into(),
                code: code.into(),
                in_flight,
            },
        )
    }

    /// The agent frees `job`'s slot, now holding `in_flight` slots.
    pub fn freed(self, at_ms: u64, job: &str, in_flight: u64) -> Self {
        self.at(
            at_ms,
            EventKind::AgentSlotFreed {
                job: job.into(),
                in_flight,
                cancelled: false,
            },
        )
    }

    /// The trace, in time order (stable), with each job's reassembled bytes.
    pub fn build(mut self) -> Trace {
        for (job, (at_us, bytes)) in std::mem::take(&mut self.reassembled) {
            self.events.push(Event::new(
                at_us,
                EventKind::JobBytes {
                    job,
                    bytes: Blob::from(bytes),
                },
            ));
        }
        self.events.sort_by_key(|event| event.at_us);
        Trace::from_events(self.events)
    }
}
