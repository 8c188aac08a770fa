//! An index over a [`Trace`](super::Trace): per-job, per-session and
//! per-backend-request views that the oracle rules and the metrics read.
//! The records it holds are in [`super::job`] (submissions) and
//! [`super::records`] (sessions, backend requests); executions are paired
//! with submissions in [`super::pairing`].

use std::collections::BTreeMap;

use super::blob::Blob;
use super::event::{Event, EventKind, FaultAction, Phase};
use super::job::{JobSend, JobView, Seen};
use super::name::{SubName, submission_names};
use super::records::{BackendCall, SessionView};

/// The indexed trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceView {
    pub jobs: BTreeMap<String, JobView>,
    pub sessions: BTreeMap<u64, SessionView>,
    pub backend_calls: Vec<BackendCall>,
    /// `(from_us, until_us)` of every window in which the coordinator held
    /// back reading (paused or slowed).
    pub read_pauses: Vec<(u64, u64)>,
    /// `(conn, from_us, until_us)` of every window in which the coordinator
    /// did not read `conn` at all (paused, not slowed).
    pub read_stops: Vec<(u64, u64, u64)>,
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
    /// Job id → indexes into `backend_calls` of the executions naming it,
    /// in start order (so a rule looks a job's executions up, never scans).
    pub executions_by_job: BTreeMap<String, Vec<usize>>,
    /// Job id → when the agent freed a slot held by that id, in order
    /// (kept apart from `jobs`: a release names an id the coordinator may
    /// never have sent).
    pub agent_freed_by_job: BTreeMap<String, Vec<u64>>,
    /// `(backend, request)` → index into `backend_calls` of the latest
    /// request so numbered: where its end event lands.
    pub calls_by_request: BTreeMap<(String, u64), usize>,
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
        let names = submission_names(events);
        for job in view.jobs.values_mut() {
            for send in &mut job.sends {
                send.name = names.get(&send.sub).copied().unwrap_or(SubName::Record(send.sub));
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

    /// The execution requests backends recorded for `job`, in start order.
    pub fn executions_of<'a>(&'a self, job: &'a str) -> impl Iterator<Item = &'a BackendCall> + 'a {
        self.executions_by_job
            .get(job)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|&index| self.backend_calls.get(index))
    }

    fn job_mut(&mut self, job: &str) -> &mut JobView {
        // Most events name a job already seen: look it up before paying
        // for an owned key (one lookup more for a new job, one allocation
        // less for every chunk).
        if !self.jobs.contains_key(job) {
            self.insert_job(job);
        }
        self.jobs.get_mut(job).expect("the job was just inserted")
    }

    fn insert_job(&mut self, job: &str) {
        let view = JobView {
            job: job.to_owned(),
            ..JobView::default()
        };
        self.jobs.insert(job.to_owned(), view);
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
            EventKind::ReadBlocked { conn, until_us, slow } => {
                self.read_pauses.push((at, *until_us));
                if !slow {
                    self.read_stops.push((*conn, at, *until_us));
                }
            }
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
            EventKind::Heartbeat {
                queue_depth, figures, ..
            } => {
                session.heartbeats.push(Seen {
                    at_us: at,
                    seq,
                    conn,
                    what: *queue_depth,
                });
                session.heartbeat_figures.push(figures.clone());
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
            ..
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
                model,
                ..
            } => {
                let index = self.backend_calls.len();
                let call = BackendCall {
                    backend: backend.clone(),
                    request: *request,
                    job: job.clone(),
                    method: method.clone(),
                    path: path.clone(),
                    model: model.clone(),
                    start_us: at,
                    end_us: None,
                    status: None,
                    end: None,
                    body: Blob::default(),
                };
                if let Some(job) = job.as_ref().filter(|_| call.is_execution()) {
                    self.executions_by_job.entry(job.clone()).or_default().push(index);
                }
                self.calls_by_request.insert((backend.clone(), *request), index);
                self.backend_calls.push(call);
            }
            EventKind::BackendEnd {
                backend,
                request,
                status,
                end,
                body,
                ..
            } => {
                let index = self.calls_by_request.get(&(backend.clone(), *request));
                if let Some(call) = index.and_then(|&i| self.backend_calls.get_mut(i)) {
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
        match &event.kind {
            EventKind::AgentJobAdmitted { job, .. } => self.job_mut(job).agent_decisions_us.push(event.at_us),
            EventKind::AgentJobRejected { job, code, .. } => {
                let view = self.job_mut(job);
                view.agent_decisions_us.push(event.at_us);
                view.agent_out_of_capacity += u64::from(code == "out_of_capacity");
            }
            EventKind::AgentSlotFreed { job, .. } => {
                self.agent_freed_by_job
                    .entry(job.clone())
                    .or_default()
                    .push(event.at_us);
            }
            _ => {}
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
    use crate::trace::JobKind;
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
