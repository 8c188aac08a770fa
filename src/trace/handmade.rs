//! A builder for hand-made traces, so the oracle can be tested on traces that
//! hold exactly one violation (or none). Times are given in simulated
//! milliseconds for readability.
//!
//! Submissions are numbered from 0 in the order `job`/`job_of_kind` is
//! called, and the builder attributes every frame to a submission the way
//! the mock coordinator does (mock-coordinator/README.md, "Attribution"), in
//! the order the calls are made — so add one id's events in time order:
//!
//! - a chunk or terminal frame belongs to the oldest submission of its id
//!   on its connection that still awaits frames (written, no terminal frame,
//!   not lost, not superseded); a `duplicate_job` error to the oldest
//!   re-send awaiting frames after that one, else to that one; with none
//!   awaiting, a terminal frame goes to the newest submission on the
//!   connection and a chunk to none;
//! - a cancel counts for every submission of the id on its connection
//!   still awaiting frames, or else for the newest one (a stale cancel);
//! - writing a submission supersedes every earlier cancelled one of its id
//!   on its connection that has no terminal frame;
//! - closing a connection loses every submission on it awaiting frames.

use std::collections::BTreeMap;

use super::{Blob, Event, EventKind, HeartbeatFigures, JobKind, Phase, Terminal, Trace};

/// What the builder tracks of one submission to attribute frames.
#[derive(Clone, Debug)]
struct Sub {
    job: String,
    conn: u64,
    kind: JobKind,
    /// The arrival number it carries (see `EventKind::JobSent`).
    arrival: Option<u64>,
    cancelled: bool,
    answered: bool,
    superseded: bool,
    lost: bool,
}

impl Sub {
    fn awaits_frames(&self) -> bool {
        !self.answered && !self.superseded && !self.lost
    }
}

/// Builds a [`Trace`] event by event.
#[derive(Clone, Debug, Default)]
pub struct TraceBuilder {
    events: Vec<Event>,
    subs: Vec<Sub>,
    /// Bytes reassembled so far per submission, and the time of its last chunk.
    reassembled: BTreeMap<u64, (u64, Vec<u8>)>,
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

    /// A connection that is opened and reaches steady state at once,
    /// advertising model `m`.
    pub fn session(self, at_ms: u64, conn: u64) -> Self {
        self.session_serving(at_ms, conn, &["m"])
    }

    /// A connection that is opened and reaches steady state at once,
    /// advertising `models`.
    pub fn session_serving(self, at_ms: u64, conn: u64, models: &[&str]) -> Self {
        let models = models.iter().map(|&m| m.to_owned()).collect();
        self.at(at_ms, EventKind::SessionOpened { conn })
            .at(at_ms, EventKind::SessionReady { conn, models })
    }

    /// A connection ends; its submissions awaiting frames are lost with it.
    pub fn session_closed(mut self, at_ms: u64, conn: u64) -> Self {
        let mut lost = Vec::new();
        for (sub, state) in self.subs.iter_mut().enumerate() {
            if state.conn == conn && state.awaits_frames() {
                state.lost = true;
                lost.push(EventKind::JobSessionLost {
                    job: state.job.as_str().into(),
                    sub: sub as u64,
                    conn,
                });
            }
        }
        self = self.at(
            at_ms,
            EventKind::SessionClosed {
                conn,
                reason: "closed".into(),
            },
        );
        lost.into_iter().fold(self, |b, kind| b.at(at_ms, kind))
    }

    /// A well-formed job with model `m` is sent.
    pub fn job(self, at_ms: u64, job: &str, conn: u64, deadline_ms: u64) -> Self {
        self.job_of_kind(at_ms, job, conn, deadline_ms, JobKind::Normal)
    }

    /// A well-formed job with model `model` is sent.
    pub fn job_for_model(self, at_ms: u64, job: &str, conn: u64, deadline_ms: u64, model: &str) -> Self {
        self.send(at_ms, job, conn, deadline_ms, model, JobKind::Normal)
    }

    /// A job of the given kind with model `m` is sent.
    pub fn job_of_kind(self, at_ms: u64, job: &str, conn: u64, deadline_ms: u64, kind: JobKind) -> Self {
        self.send(at_ms, job, conn, deadline_ms, "m", kind)
    }

    /// A new submission is written (numbered in call order).
    fn send(mut self, at_ms: u64, job: &str, conn: u64, deadline_ms: u64, model: &str, kind: JobKind) -> Self {
        let sub = self.subs.len() as u64;
        let mut free = true;
        let mut superseded = Vec::new();
        for (earlier, state) in self.subs.iter_mut().enumerate() {
            if state.job != job || state.conn != conn {
                continue;
            }
            free &= state.answered || state.cancelled || state.lost;
            if state.cancelled && !state.answered && !state.superseded {
                state.superseded = true;
                superseded.push(earlier as u64);
            }
        }
        let arrival = self.arrival_of(job, kind);
        self.subs.push(Sub {
            job: job.to_owned(),
            conn,
            kind,
            arrival,
            cancelled: false,
            answered: false,
            superseded: false,
            lost: false,
        });
        self = self.at(
            at_ms,
            EventKind::JobSent {
                job: job.into(),
                sub,
                conn,
                model: model.into(),
                deadline_ms,
                kind,
                id_was_free: (kind == JobKind::Duplicate).then_some(free),
                arrival,
            },
        );
        superseded.into_iter().fold(self, |b, sub| {
            b.at(at_ms, EventKind::JobSuperseded { job: job.into(), sub })
        })
    }

    /// A job comes due with no session: submission never written.
    pub fn undeliverable(mut self, at_ms: u64, job: &str) -> Self {
        let sub = self.subs.len() as u64;
        let arrival = self.arrival_of(job, JobKind::Normal);
        self.subs.push(Sub {
            job: job.to_owned(),
            conn: 0,
            kind: JobKind::Normal,
            arrival,
            cancelled: false,
            answered: false,
            superseded: false,
            lost: true,
        });
        self.at(
            at_ms,
            EventKind::JobUndeliverable {
                job: job.into(),
                sub,
                kind: JobKind::Normal,
                arrival,
            },
        )
    }

    /// The arrival number a new submission of `job` carries, as the mock
    /// coordinator numbers them: originals count from 0 in call order, a
    /// re-send carries its original's, a broken frame none.
    fn arrival_of(&self, job: &str, kind: JobKind) -> Option<u64> {
        match kind {
            JobKind::Normal => Some(self.subs.iter().filter(|s| s.kind == JobKind::Normal).count() as u64),
            JobKind::Duplicate => self.subs.iter().find(|s| s.job == job).and_then(|s| s.arrival),
            JobKind::Invalid | JobKind::Malformed => None,
        }
    }

    /// Submissions of `job` on `conn` awaiting frames, oldest first.
    fn awaiting(&self, job: &str, conn: u64) -> Vec<usize> {
        (0..self.subs.len())
            .filter(|&i| {
                let s = &self.subs[i];
                s.job == job && s.conn == conn && s.awaits_frames()
            })
            .collect()
    }

    /// The newest submission of `job` on `conn`.
    fn newest(&self, job: &str, conn: u64) -> Option<usize> {
        (0..self.subs.len()).rfind(|&i| self.subs[i].job == job && self.subs[i].conn == conn)
    }

    /// A chunk carrying `bytes` is read.
    pub fn chunk(mut self, at_ms: u64, job: &str, conn: u64, bytes: &[u8]) -> Self {
        let sub = self.awaiting(job, conn).first().map(|&i| i as u64);
        if let Some(sub) = sub {
            let entry = self.reassembled.entry(sub).or_default();
            entry.0 = us(at_ms);
            entry.1.extend_from_slice(bytes);
        }
        self.at(
            at_ms,
            EventKind::Chunk {
                job: job.into(),
                sub,
                conn,
                len: bytes.len() as u64,
            },
        )
    }

    /// Any terminal frame is read.
    pub fn terminal(mut self, at_ms: u64, job: &str, conn: u64, terminal: Terminal) -> Self {
        let awaiting = self.awaiting(job, conn);
        let resend = awaiting
            .iter()
            .skip(1)
            .copied()
            .find(|&i| self.subs[i].kind == JobKind::Duplicate);
        let sub = match terminal.error_code() {
            Some("duplicate_job") => resend.or(awaiting.first().copied()),
            _ => awaiting.first().copied(),
        }
        .or_else(|| self.newest(job, conn));
        if let Some(sub) = sub {
            self.subs[sub].answered = true;
        }
        self.at(
            at_ms,
            EventKind::TerminalReceived {
                job: job.into(),
                sub: sub.map(|s| s as u64),
                conn,
                terminal,
            },
        )
    }

    /// A `job_done` is read, reporting no tokens (what the agent reports for
    /// a backend body without usage, as the builder's bodies are).
    pub fn done(self, at_ms: u64, job: &str, conn: u64) -> Self {
        self.done_with_tokens(at_ms, job, conn, 0, 0)
    }

    /// A `job_done` reporting `tokens_in` and `tokens_out` is read.
    pub fn done_with_tokens(self, at_ms: u64, job: &str, conn: u64, tokens_in: u64, tokens_out: u64) -> Self {
        let terminal = Terminal::Done {
            tokens_in,
            tokens_out,
            duration_ms: 1,
        };
        self.terminal(at_ms, job, conn, terminal)
    }

    /// A `job_error` with `code` is read.
    pub fn error(self, at_ms: u64, job: &str, conn: u64, code: &str) -> Self {
        let terminal = Terminal::Error {
            code: code.into(),
            tokens_emitted: 0,
            bytes_emitted: None,
        };
        self.terminal(at_ms, job, conn, terminal)
    }

    /// A `job_cancel` is sent.
    pub fn cancel(mut self, at_ms: u64, job: &str, conn: u64) -> Self {
        let mut targets = self.awaiting(job, conn);
        if targets.is_empty() {
            targets.extend(self.newest(job, conn));
        }
        let mut subs = Vec::new();
        for i in targets {
            if !self.subs[i].cancelled {
                self.subs[i].cancelled = true;
                subs.push(i as u64);
            }
        }
        self.at(
            at_ms,
            EventKind::CancelSent {
                job: job.into(),
                conn,
                subs,
            },
        )
    }

    /// A heartbeat is read.
    pub fn heartbeat(self, at_ms: u64, conn: u64, queue_depth: u64) -> Self {
        self.at(
            at_ms,
            EventKind::Heartbeat {
                conn,
                queue_depth,
                figures: Box::default(),
            },
        )
    }

    /// A heartbeat carrying `figures` is read.
    pub fn heartbeat_figures(self, at_ms: u64, conn: u64, queue_depth: u64, figures: HeartbeatFigures) -> Self {
        self.at(
            at_ms,
            EventKind::Heartbeat {
                conn,
                queue_depth,
                figures: Box::new(figures),
            },
        )
    }

    /// Backend `b1` serves `job` from `start_ms` to `end_ms` (never ends when
    /// `None`), answering 200, writing `body`, ending as `end` (`completed`,
    /// `client_gone`…).
    pub fn backend(self, start_ms: u64, end_ms: Option<u64>, job: &str, body: &[u8], end: &str) -> Self {
        self.backend_answer(start_ms, end_ms, job, 200, body, end)
    }

    /// As [`TraceBuilder::backend`], answering `status` (0: no answer head)
    /// with `body`.
    pub fn backend_answer(
        mut self,
        start_ms: u64,
        end_ms: Option<u64>,
        job: &str,
        status: u16,
        body: &[u8],
        end: &str,
    ) -> Self {
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
                    status,
                    tokens_written: 1,
                    end: end.into(),
                    body: Blob::new(body),
                },
            ),
            None => self,
        }
    }

    /// Backend `b1` serves `job` from `start_ms` to `end_ms` for a request
    /// that asked for `model` (`None`: the body had no `model`).
    pub fn backend_for_model(mut self, start_ms: u64, end_ms: u64, job: &str, model: Option<&str>) -> Self {
        let request = self.next_request;
        self = self.backend(start_ms, Some(end_ms), job, b"data: [DONE]\n\n", "completed");
        for event in &mut self.events {
            if let EventKind::BackendRequest {
                request: r, model: m, ..
            } = &mut event.kind
                && *r == request
            {
                *m = model.map(Into::into);
            }
        }
        self
    }

    /// The agent admits `job`, now holding `in_flight` slots.
    pub fn admitted(self, at_ms: u64, job: &str, in_flight: u64) -> Self {
        self.at(
            at_ms,
            EventKind::AgentJobAdmitted {
                job: job.into(),
                sub: None,
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
                sub: None,
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
                sub: None,
                in_flight,
                cancelled: false,
                why: "completed".into(),
            },
        )
    }

    /// The trace, in time order (stable), with each submission's reassembled
    /// bytes.
    pub fn build(mut self) -> Trace {
        for (sub, (at_us, bytes)) in std::mem::take(&mut self.reassembled) {
            let job = self.subs[sub as usize].job.as_str().into();
            self.events.push(Event::new(
                at_us,
                EventKind::JobBytes {
                    job,
                    sub,
                    bytes: Blob::from(bytes),
                },
            ));
        }
        self.events.sort_by_key(|event| event.at_us);
        Trace::from_events(self.events)
    }
}
