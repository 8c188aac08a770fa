//! An index over a [`Trace`](super::Trace): per-job, per-session and
//! per-backend-request views that the oracle rules and the metrics read.

use std::collections::BTreeMap;

use super::blob::Blob;
use super::event::{Event, EventKind, FaultAction, JobKind, Phase, Terminal};

/// One `job` frame the coordinator sent (a job id may be sent more than once).
#[derive(Clone, Debug, PartialEq)]
pub struct JobSend {
    pub at_us: u64,
    /// Index of the event in the trace (orders events of one instant).
    pub seq: usize,
    pub conn: u64,
    pub model: String,
    pub deadline_ms: u64,
    pub kind: JobKind,
}

/// One frame of a job read by the coordinator: a chunk (`what` is its
/// length) or a terminal frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen<T> {
    pub at_us: u64,
    /// Index of the event in the trace.
    pub seq: usize,
    pub conn: u64,
    pub what: T,
}

/// Everything the coordinator saw of one job id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobView {
    pub job: String,
    /// Every `job` frame sent with this id, in order.
    pub sends: Vec<JobSend>,
    /// Every chunk read, in order.
    pub chunks: Vec<Seen<u64>>,
    /// Every terminal frame read, in order.
    pub terminals: Vec<Seen<Terminal>>,
    pub cancel_us: Option<u64>,
    pub session_lost_us: Option<u64>,
    pub undeliverable_us: Option<u64>,
    /// The bytes the coordinator reassembled (empty when no chunk arrived).
    pub bytes: Blob,
    /// Agent view: when the job was admitted or rejected, if it was.
    pub agent_decided_us: Option<u64>,
}

impl JobView {
    /// The first send, if the job was ever sent.
    pub fn first_send(&self) -> Option<&JobSend> {
        self.sends.first()
    }

    /// Terminal frames other than `duplicate_job` rejections of a re-send.
    pub fn own_terminals(&self) -> impl Iterator<Item = &Seen<Terminal>> {
        self.terminals
            .iter()
            .filter(|t| t.what.error_code() != Some("duplicate_job"))
    }

    /// Time of the first terminal frame, if any.
    pub fn first_terminal_us(&self) -> Option<u64> {
        self.own_terminals().map(|t| t.at_us).next()
    }

    /// Whether the coordinator cancelled the job before any terminal arrived.
    pub fn cancelled_before_terminal(&self) -> bool {
        match (self.cancel_us, self.first_terminal_us()) {
            (Some(cancel), Some(terminal)) => cancel < terminal,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// One coordinator connection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionView {
    pub conn: u64,
    pub opened_us: u64,
    pub ready_us: Option<u64>,
    pub closed_us: Option<u64>,
    pub reason: Option<String>,
    /// Every heartbeat read on this connection (`what` is its `queue_depth`).
    pub heartbeats: Vec<Seen<u64>>,
}

/// One request a backend served.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendCall {
    pub backend: String,
    pub request: u64,
    pub job: Option<String>,
    pub method: String,
    pub path: String,
    pub start_us: u64,
    pub end_us: Option<u64>,
    pub status: Option<u16>,
    pub end: Option<String>,
    pub body: Blob,
}

impl BackendCall {
    /// Whether this is a job's execution (a chat completion), not a probe.
    pub fn is_execution(&self) -> bool {
        self.method == "POST" && self.path.ends_with("/chat/completions")
    }
}

/// The indexed trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceView {
    pub jobs: BTreeMap<String, JobView>,
    pub sessions: BTreeMap<u64, SessionView>,
    pub backend_calls: Vec<BackendCall>,
    /// `(from_us, until_us)` of every window in which the coordinator held
    /// back reading (paused or slowed).
    pub read_pauses: Vec<(u64, u64)>,
    /// `(at_us, action, hosts)` of every fault, in order.
    pub faults: Vec<(u64, FaultAction, Vec<String>)>,
    pub phases: Vec<(u64, Phase)>,
    /// `(at_us, host, error)` of hosts whose software stopped by itself.
    pub host_stops: Vec<(u64, String, Option<String>)>,
    /// `(at_us, job, "kind: what")` flagged by the coordinator.
    pub coordinator_flags: Vec<(u64, Option<String>, String)>,
    /// `(source, count)` of records dropped for hitting a bound.
    pub records_dropped: Vec<(String, u64)>,
    /// The agent observer's events, in order.
    pub agent_events: Vec<Event>,
    /// Time of the last event.
    pub end_us: u64,
}

impl TraceView {
    /// Indexes `events` (in trace order).
    pub fn build(events: &[Event]) -> Self {
        let mut view = Self::default();
        for (seq, event) in events.iter().enumerate() {
            view.end_us = view.end_us.max(event.at_us);
            view.add(seq, event);
        }
        view
    }

    /// Time the given phase began, if it did.
    pub fn phase_us(&self, wanted: Phase) -> Option<u64> {
        self.phases
            .iter()
            .find(|(_, phase)| *phase == wanted)
            .map(|(at, _)| *at)
    }

    /// Microseconds of `[from_us, to_us)` during which the coordinator was
    /// not reading: frames cannot arrive then, so bounds stretch by it.
    pub fn paused_us_within(&self, from_us: u64, to_us: u64) -> u64 {
        self.read_pauses
            .iter()
            .map(|&(start, end)| end.min(to_us).saturating_sub(start.max(from_us)))
            .sum()
    }

    /// The execution requests backends recorded for `job`.
    pub fn executions_of<'a>(&'a self, job: &'a str) -> impl Iterator<Item = &'a BackendCall> + 'a {
        self.backend_calls
            .iter()
            .filter(move |call| call.is_execution() && call.job.as_deref() == Some(job))
    }

    fn job_mut(&mut self, job: &str) -> &mut JobView {
        self.jobs.entry(job.to_owned()).or_insert_with(|| JobView {
            job: job.to_owned(),
            ..JobView::default()
        })
    }

    fn add(&mut self, seq: usize, event: &Event) {
        let at = event.at_us;
        match &event.kind {
            EventKind::Phase { phase } => self.phases.push((at, *phase)),
            EventKind::Fault { action, hosts } => self.faults.push((at, *action, hosts.clone())),
            EventKind::HostStopped { host, error } => self.host_stops.push((at, host.clone(), error.clone())),
            EventKind::CoordinatorFlagged { kind, job, what, .. } => {
                self.coordinator_flags
                    .push((at, job.clone(), format!("{kind}: {what}")));
            }
            EventKind::ReadBlocked { until_us, .. } => self.read_pauses.push((at, *until_us)),
            EventKind::CoordinatorNote { .. } => {}
            EventKind::RecordsDropped { source, count } => self.records_dropped.push((source.clone(), *count)),
            EventKind::BackendRequest { .. } | EventKind::BackendEnd { .. } => self.add_backend(at, &event.kind),
            EventKind::SessionOpened { .. }
            | EventKind::SessionReady { .. }
            | EventKind::SessionClosed { .. }
            | EventKind::Heartbeat { .. } => self.add_session(at, seq, &event.kind),
            kind if kind_is_agent(kind) => self.add_agent(event),
            kind => self.add_job(at, seq, kind),
        }
    }

    fn add_session(&mut self, at: u64, seq: usize, kind: &EventKind) {
        let conn = match kind {
            EventKind::SessionOpened { conn }
            | EventKind::SessionReady { conn, .. }
            | EventKind::SessionClosed { conn, .. }
            | EventKind::Heartbeat { conn, .. } => *conn,
            _ => return,
        };
        let session = self.sessions.entry(conn).or_insert_with(|| SessionView {
            conn,
            opened_us: at,
            ..Default::default()
        });
        match kind {
            EventKind::SessionReady { .. } => session.ready_us = session.ready_us.or(Some(at)),
            EventKind::SessionClosed { reason, .. } => {
                session.closed_us = Some(at);
                session.reason = Some(reason.clone());
            }
            EventKind::Heartbeat { queue_depth, .. } => {
                session.heartbeats.push(Seen {
                    at_us: at,
                    seq,
                    conn,
                    what: *queue_depth,
                });
            }
            _ => {}
        }
    }

    fn add_job(&mut self, at: u64, seq: usize, kind: &EventKind) {
        let Some(job) = kind.job() else { return };
        let view = self.job_mut(job);
        match kind {
            EventKind::JobSent {
                conn,
                model,
                deadline_ms,
                kind,
                ..
            } => view.sends.push(JobSend {
                at_us: at,
                seq,
                conn: *conn,
                model: model.clone(),
                deadline_ms: *deadline_ms,
                kind: *kind,
            }),
            EventKind::JobUndeliverable { .. } => view.undeliverable_us = view.undeliverable_us.or(Some(at)),
            EventKind::CancelSent { .. } => view.cancel_us = view.cancel_us.or(Some(at)),
            EventKind::Chunk { conn, len, .. } => view.chunks.push(Seen {
                at_us: at,
                seq,
                conn: *conn,
                what: *len,
            }),
            EventKind::TerminalReceived { conn, terminal, .. } => {
                view.terminals.push(Seen {
                    at_us: at,
                    seq,
                    conn: *conn,
                    what: terminal.clone(),
                });
            }
            EventKind::JobSessionLost { .. } => view.session_lost_us = view.session_lost_us.or(Some(at)),
            EventKind::JobBytes { bytes, .. } => view.bytes = bytes.clone(),
            _ => {}
        }
    }

    fn add_backend(&mut self, at: u64, kind: &EventKind) {
        match kind {
            EventKind::BackendRequest {
                backend,
                request,
                job,
                method,
                path,
                ..
            } => self.backend_calls.push(BackendCall {
                backend: backend.clone(),
                request: *request,
                job: job.clone(),
                method: method.clone(),
                path: path.clone(),
                start_us: at,
                end_us: None,
                status: None,
                end: None,
                body: Blob::default(),
            }),
            EventKind::BackendEnd {
                backend,
                request,
                status,
                end,
                body,
                ..
            } => {
                let call = self
                    .backend_calls
                    .iter_mut()
                    .rev()
                    .find(|c| &c.backend == backend && c.request == *request);
                if let Some(call) = call {
                    call.end_us = Some(at);
                    call.status = Some(*status);
                    call.end = Some(end.clone());
                    call.body = body.clone();
                }
            }
            _ => {}
        }
    }

    fn add_agent(&mut self, event: &Event) {
        if let EventKind::AgentJobAdmitted { job, .. } | EventKind::AgentJobRejected { job, .. } = &event.kind {
            let view = self.job_mut(job);
            view.agent_decided_us = view.agent_decided_us.or(Some(event.at_us));
        }
        self.agent_events.push(event.clone());
    }
}

fn kind_is_agent(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::AgentSessionStarted { .. }
            | EventKind::AgentSessionEnded { .. }
            | EventKind::AgentJobAdmitted { .. }
            | EventKind::AgentJobRejected { .. }
            | EventKind::AgentSlotFreed { .. }
            | EventKind::AgentOutboundQueued { .. }
            | EventKind::AgentFrameRejected { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read pauses count only where they overlap the asked span.
    #[test]
    fn pauses_stretch_only_over_the_overlap() {
        let view = TraceView {
            read_pauses: vec![(100, 200), (500, 600)],
            ..TraceView::default()
        };
        assert_eq!(view.paused_us_within(150, 550), 50 + 50);
        assert_eq!(view.paused_us_within(0, 50), 0);
    }

    /// A backend end event completes the request it names.
    #[test]
    fn backend_end_completes_its_request() {
        let events = vec![
            Event::new(
                1,
                EventKind::BackendRequest {
                    backend: "b".into(),
                    request: 7,
                    job: Some("j".into()),
                    method: "POST".into(),
                    path: "/v1/chat/completions".into(),
                    model: None,
                    stream: true,
                },
            ),
            Event::new(
                9,
                EventKind::BackendEnd {
                    backend: "b".into(),
                    request: 7,
                    job: Some("j".into()),
                    status: 200,
                    tokens_written: 3,
                    end: "completed".into(),
                    body: Blob::new(b"xyz"),
                },
            ),
        ];
        let view = TraceView::build(&events);
        let call = view.executions_of("j").next().unwrap();
        assert_eq!(
            (call.start_us, call.end_us, call.body.as_bytes()),
            (1, Some(9), &b"xyz"[..])
        );
    }
}
