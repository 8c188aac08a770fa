//! An index over a [`Trace`](super::Trace): per-job, per-session and
//! per-backend-request views that the oracle rules and the metrics read.

use std::collections::BTreeMap;

use super::blob::Blob;
use super::event::{Event, EventKind, FaultAction, JobKind, Phase, Terminal};

/// The `error_code`s the agent answers at admission, before any backend is
/// contacted: a submission answered with one of them (and nothing else)
/// never ran.
pub const ADMISSION_CODES: &[&str] = &["duplicate_job", "out_of_capacity", "model_not_loaded", "invalid_job"];

/// One *submission*: a `job` frame the coordinator wrote, with every frame
/// the coordinator attributed to it. A job id sent once has one; a re-sent
/// id has one per `job` frame (mock-coordinator/README.md, "Attribution":
/// each chunk and terminal frame of an id belongs to exactly one of them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobSend {
    /// The coordinator's record index of the submission.
    pub sub: u64,
    /// When the frame was completely written.
    pub at_us: u64,
    /// Index of the event in the trace (orders events of one instant).
    pub seq: usize,
    pub conn: u64,
    pub model: String,
    pub deadline_ms: u64,
    pub kind: JobKind,
    /// Re-sends: whether the id was free for the agent when this was written.
    pub id_was_free: Option<bool>,
    /// Chunks attributed to this submission, in order.
    pub chunks: Vec<Seen<u64>>,
    /// Terminal frames attributed to this submission, in order (more than
    /// one is a violation).
    pub terminals: Vec<Seen<Terminal>>,
    /// The first `job_cancel` that counted for this submission.
    pub cancel_us: Option<u64>,
    /// When a later submission of the id superseded this cancelled one.
    pub superseded_us: Option<u64>,
    /// When its connection ended while it was in flight.
    pub session_lost_us: Option<u64>,
    /// The bytes the coordinator reassembled for it (empty without chunks).
    pub bytes: Blob,
}

impl JobSend {
    /// Its first terminal frame, if any.
    pub fn first_terminal(&self) -> Option<&Seen<Terminal>> {
        self.terminals.first()
    }

    /// Time of its first terminal frame, if any.
    pub fn first_terminal_us(&self) -> Option<u64> {
        self.first_terminal().map(|t| t.at_us)
    }

    /// Whether a cancel counted for it before any terminal frame arrived.
    pub fn cancelled_before_terminal(&self) -> bool {
        before_terminal(self.cancel_us, self.first_terminal_us())
    }

    /// Whether its connection ended before any terminal frame arrived.
    pub fn lost_before_terminal(&self) -> bool {
        before_terminal(self.session_lost_us, self.first_terminal_us())
    }

    /// Whether it ended with `job_done`.
    pub fn is_done(&self) -> bool {
        matches!(self.first_terminal().map(|t| &t.what), Some(Terminal::Done { .. }))
    }

    /// Whether the agent answered it at admission without running it: its
    /// first terminal carries an [`ADMISSION_CODES`] code and no chunk came.
    pub fn rejected_at_admission(&self) -> bool {
        let code = self.first_terminal().and_then(|t| t.what.error_code());
        self.chunks.is_empty() && code.is_some_and(|c| ADMISSION_CODES.contains(&c))
    }

    /// Whether the agent may have run it, i.e. may have sent a backend
    /// request for it (see [`TraceView::executions_of_send`]): a well-formed
    /// submission not answered at admission. A re-send written while an
    /// earlier submission of the id was live (`id_was_free` false) is
    /// normally answered `duplicate_job`; without any frame of its own it
    /// shows no sign of having been admitted and is taken as not run.
    pub fn may_have_run(&self) -> bool {
        let well_formed = matches!(self.kind, JobKind::Normal | JobKind::Duplicate);
        let unknown_resend = self.id_was_free == Some(false) && self.chunks.is_empty() && self.terminals.is_empty();
        well_formed && !self.rejected_at_admission() && !unknown_resend
    }

    /// How details name it: `submission #N` for an original (or a malformed
    /// frame), `re-send #N` for a re-send, `N` being [`JobSend::sub`].
    pub fn label(&self) -> String {
        match self.kind {
            JobKind::Duplicate => format!("re-send #{}", self.sub),
            _ => format!("submission #{}", self.sub),
        }
    }
}

/// Whether `event` happened and came before `terminal` (or there was none).
fn before_terminal(event: Option<u64>, terminal: Option<u64>) -> bool {
    match (event, terminal) {
        (Some(event), Some(terminal)) => event < terminal,
        (Some(_), None) => true,
        _ => false,
    }
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
    /// Every submission written with this id, in write order.
    pub sends: Vec<JobSend>,
    /// `(sub, kind)` of submissions that were never written.
    pub undeliverable: Vec<(u64, JobKind)>,
    /// Chunks the coordinator attributed to no submission.
    pub stray_chunks: Vec<Seen<u64>>,
    /// Terminal frames the coordinator attributed to no submission.
    pub stray_terminals: Vec<Seen<Terminal>>,
    /// Agent view: when the agent admitted or rejected a job with this id,
    /// in order (one decision per `job` frame it read).
    pub agent_decisions_us: Vec<u64>,
}

impl JobView {
    /// The first submission, if the job was ever sent.
    pub fn first_send(&self) -> Option<&JobSend> {
        self.sends.first()
    }

    /// The submission numbered `sub`.
    pub fn send(&self, sub: u64) -> Option<&JobSend> {
        self.sends.iter().find(|s| s.sub == sub)
    }

    fn send_mut(&mut self, sub: u64) -> Option<&mut JobSend> {
        self.sends.iter_mut().find(|s| s.sub == sub)
    }
}

/// One coordinator connection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionView {
    pub conn: u64,
    pub opened_us: u64,
    pub ready_us: Option<u64>,
    /// The models its first `capabilities` advertised (at the handshake).
    pub models: Option<Vec<String>>,
    /// Every `capabilities` read, in order: `(read at µs, models)`. An agent
    /// that rediscovers its backends sends it again when they change.
    pub capabilities: Vec<(u64, Vec<String>)>,
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
    /// Submission → indexes into `backend_calls` of the executions paired
    /// with it (see [`TraceView::executions_of_send`]).
    pub executions: BTreeMap<u64, Vec<usize>>,
    /// Indexes into `backend_calls` of executions naming a job id but
    /// paired with no submission: none of that id that may have run was
    /// written before they started.
    pub unpaired_executions: Vec<usize>,
}

impl TraceView {
    /// Indexes `events` (in trace order).
    pub fn build(events: &[Event]) -> Self {
        let mut view = Self::default();
        // Submissions first, so that every frame finds the submission it
        // names wherever it sits in the trace.
        for (seq, event) in events.iter().enumerate() {
            if let EventKind::JobSent { .. } = &event.kind {
                view.add_send(event.at_us, seq, &event.kind);
            }
        }
        for (seq, event) in events.iter().enumerate() {
            view.end_us = view.end_us.max(event.at_us);
            view.add(seq, event);
        }
        view.pair_executions();
        view
    }

    /// Every submission written, with its job id, by job id then write order.
    pub fn sends(&self) -> impl Iterator<Item = (&JobView, &JobSend)> {
        self.jobs
            .values()
            .flat_map(|job| job.sends.iter().map(move |send| (job, send)))
    }

    /// The backend executions paired with `send`.
    ///
    /// Pairing rule: each execution (a chat-completion request carrying
    /// the id in `user`) goes to the *latest* submission of its id that may
    /// have run ([`JobSend::may_have_run`]) and was written no later than
    /// the request reached the backend. Executions of one id are thus
    /// paired in time order with the submissions that ran. This is exact
    /// when the agent (1) sends a backend request for a submission only
    /// after reading it, (2) runs at most one submission of an id at a time
    /// and admits them in the order it reads them, so an admitted
    /// submission's request reaches the backend before the next admitted
    /// one of its id is written — for a cancelled one that holds because
    /// the coordinator writes no re-send of it within `resend_guard_ms` of
    /// the cancel — and (3) never runs a submission it answered at
    /// admission. An agent breaking (2) or (3) shows up as two executions
    /// paired with one submission, or as an execution paired with none
    /// ([`TraceView::unpaired_executions`]).
    ///
    /// Limits: a re-send written while its id was live that never shows a
    /// frame of its own (its session ended first) is taken as not run; had
    /// the agent run it, its request would count as the earlier
    /// submission's second. So would a request that a held or partitioned
    /// agent–backend link delays past the next admitted submission's write.
    pub fn executions_of_send<'a>(&'a self, send: &JobSend) -> impl Iterator<Item = &'a BackendCall> + 'a {
        self.executions
            .get(&send.sub)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|&index| self.backend_calls.get(index))
    }

    fn pair_executions(&mut self) {
        for (index, call) in self.backend_calls.iter().enumerate() {
            // A request whose body never arrived (the agent went away while
            // sending it) names no job and cannot be paired.
            let Some(job) = call.job.as_deref().filter(|_| call.is_execution()) else {
                continue;
            };
            let owner = self.jobs.get(job).and_then(|job| {
                job.sends
                    .iter()
                    .rev()
                    .find(|send| send.may_have_run() && send.at_us <= call.start_us)
            });
            match owner {
                Some(send) => self.executions.entry(send.sub).or_default().push(index),
                None => self.unpaired_executions.push(index),
            }
        }
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
            EventKind::SessionReady { models, .. } => {
                session.ready_us = session.ready_us.or(Some(at));
                session.models.get_or_insert_with(|| models.clone());
                session.capabilities.push((at, models.clone()));
            }
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

    fn add_send(&mut self, at: u64, seq: usize, kind: &EventKind) {
        let EventKind::JobSent {
            job,
            sub,
            conn,
            model,
            deadline_ms,
            kind,
            id_was_free,
        } = kind
        else {
            return;
        };
        self.job_mut(job).sends.push(JobSend {
            sub: *sub,
            at_us: at,
            seq,
            conn: *conn,
            model: model.clone(),
            deadline_ms: *deadline_ms,
            kind: *kind,
            id_was_free: *id_was_free,
            ..JobSend::default()
        });
    }

    fn add_job(&mut self, at: u64, seq: usize, kind: &EventKind) {
        let Some(job) = kind.job() else { return };
        let view = self.job_mut(job);
        match kind {
            EventKind::JobUndeliverable { sub, kind, .. } => view.undeliverable.push((*sub, *kind)),
            EventKind::CancelSent { subs, .. } => {
                for sub in subs {
                    if let Some(send) = view.send_mut(*sub) {
                        send.cancel_us = send.cancel_us.or(Some(at));
                    }
                }
            }
            EventKind::Chunk { sub, conn, len, .. } => {
                let seen = Seen {
                    at_us: at,
                    seq,
                    conn: *conn,
                    what: *len,
                };
                match sub.and_then(|sub| view.send_mut(sub)) {
                    Some(send) => send.chunks.push(seen),
                    None => view.stray_chunks.push(seen),
                }
            }
            EventKind::TerminalReceived {
                sub, conn, terminal, ..
            } => {
                let seen = Seen {
                    at_us: at,
                    seq,
                    conn: *conn,
                    what: terminal.clone(),
                };
                match sub.and_then(|sub| view.send_mut(sub)) {
                    Some(send) => send.terminals.push(seen),
                    None => view.stray_terminals.push(seen),
                }
            }
            EventKind::JobSessionLost { sub, .. } => {
                if let Some(send) = view.send_mut(*sub) {
                    send.session_lost_us = send.session_lost_us.or(Some(at));
                }
            }
            EventKind::JobSuperseded { sub, .. } => {
                if let Some(send) = view.send_mut(*sub) {
                    send.superseded_us = send.superseded_us.or(Some(at));
                }
            }
            EventKind::JobBytes { sub, bytes, .. } => {
                if let Some(send) = view.send_mut(*sub) {
                    send.bytes = bytes.clone();
                }
            }
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
            self.job_mut(job).agent_decisions_us.push(event.at_us);
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
    use crate::trace::handmade::TraceBuilder;

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

    fn executions(view: &TraceView, job: &str) -> Vec<(u64, Vec<u64>)> {
        view.jobs[job]
            .sends
            .iter()
            .map(|send| {
                let starts = view.executions_of_send(send).map(|c| c.start_us / 1_000).collect();
                (send.sub, starts)
            })
            .collect()
    }

    /// A re-send answered duplicate_job before the original's request reached the backend is not paired; a re-run after the terminal is.
    #[test]
    fn executions_pair_with_the_submission_that_ran() {
        let trace = TraceBuilder::new()
            .session(0, 1)
            .job(10, "j", 1, 60_000)
            .job_of_kind(10, "j", 1, 60_000, JobKind::Duplicate)
            .error(12, "j", 1, "duplicate_job")
            .backend(13, Some(20), "j", b"x", "completed")
            .chunk(15, "j", 1, b"x")
            .done(21, "j", 1)
            .job_of_kind(30, "j", 1, 60_000, JobKind::Duplicate)
            .backend(32, Some(40), "j", b"y", "completed")
            .chunk(35, "j", 1, b"y")
            .done(41, "j", 1)
            .build();
        let view = TraceView::build(&trace.events);
        assert_eq!(executions(&view, "j"), vec![(0, vec![13]), (1, vec![]), (2, vec![32])]);
        assert!(view.unpaired_executions.is_empty());
    }

    /// A re-send written while the id was live that shows no frame of its own is taken as not run.
    #[test]
    fn a_silent_resend_of_a_live_id_is_not_paired() {
        let trace = TraceBuilder::new()
            .session(0, 1)
            .job(10, "j", 1, 60_000)
            .job_of_kind(11, "j", 1, 60_000, JobKind::Duplicate)
            .backend(13, Some(20), "j", b"x", "completed")
            .session_closed(14, 1)
            .build();
        let view = TraceView::build(&trace.events);
        assert_eq!(executions(&view, "j"), vec![(0, vec![13]), (1, vec![])]);
    }

    /// An execution before any submission of its id that may run is paired with none.
    #[test]
    fn an_execution_of_a_rejected_job_is_unpaired() {
        let trace = TraceBuilder::new()
            .session(0, 1)
            .job(10, "j", 1, 60_000)
            .error(12, "j", 1, "out_of_capacity")
            .backend(13, Some(20), "j", b"x", "completed")
            .build();
        let view = TraceView::build(&trace.events);
        assert_eq!(view.unpaired_executions, vec![0]);
    }

    /// Frames land on the submission the trace names, strays on the job.
    #[test]
    fn frames_land_on_their_submission() {
        let trace = TraceBuilder::new()
            .session(0, 1)
            .job(10, "j", 1, 60_000)
            .chunk(12, "j", 1, b"ab")
            .cancel(13, "j", 1)
            .job_of_kind(2_000, "j", 1, 60_000, JobKind::Duplicate)
            .chunk(2_010, "j", 1, b"cde")
            .done(2_020, "j", 1)
            .chunk(2_030, "j", 1, b"f")
            .build();
        let view = TraceView::build(&trace.events);
        let job = &view.jobs["j"];
        let (original, rerun) = (&job.sends[0], &job.sends[1]);
        assert_eq!(
            (original.bytes.as_bytes(), original.cancel_us, original.superseded_us),
            (&b"ab"[..], Some(13_000), Some(2_000_000))
        );
        assert_eq!((rerun.bytes.as_bytes(), rerun.is_done()), (&b"cde"[..], true));
        assert_eq!(job.stray_chunks.len(), 1);
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
