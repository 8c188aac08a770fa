//! Building a [`TraceView`] from a trace's events: one pass for the
//! submissions, one for everything else, then the pairing of executions.
//!
//! Every job event looks its job up by id. The lookups go through a hash
//! index keyed by the id as the trace spells it (borrowed from the events,
//! so no key is allocated), into a vector of job views; the ordered map the
//! rules read is made once at the end. The index is only ever looked up,
//! never iterated, so hash order cannot reach a verdict. Before, every
//! chunk event walked the `BTreeMap` of job ids comparing strings: 30 % of
//! judging at 320 jobs/s, most of it in `memcmp` (benches/README.md,
//! "Scale").

use rustc_hash::FxHashMap;

use super::blob::Blob;
use super::event::{Event, EventKind};
use super::job::{JobSend, JobView, Seen};
use super::name::{SubName, submission_names};
use super::records::{BackendCall, SessionView};
use super::shared::JobId;
use super::view::TraceView;

/// Indexes `events` (in trace order).
pub(super) fn index(events: &[Event]) -> TraceView {
    let mut builder = Builder::default();
    // Submissions first, so that every frame finds the submission it
    // names wherever it sits in the trace; and each submission's chunks
    // counted, so that its list of them is allocated once.
    let mut chunks_of_sub: Vec<usize> = Vec::new();
    for (seq, event) in events.iter().enumerate() {
        match &event.kind {
            EventKind::JobSent { .. } => builder.add_send(event.at_us, seq, &event.kind),
            &EventKind::Chunk { sub: Some(sub), .. } => {
                // Submission numbers are the coordinator's record indexes:
                // dense from 0. A trace naming absurd ones is only not
                // pre-sized.
                if let Some(sub) = usize::try_from(sub).ok().filter(|&s| s <= events.len()) {
                    if chunks_of_sub.len() <= sub {
                        chunks_of_sub.resize(sub + 1, 0);
                    }
                    chunks_of_sub[sub] += 1;
                }
            }
            _ => {}
        }
    }
    let names = submission_names(events);
    for job in &mut builder.jobs {
        for send in &mut job.sends {
            send.name = names.get(&send.sub).copied().unwrap_or(SubName::Record(send.sub));
            let chunks = usize::try_from(send.sub).ok().and_then(|s| chunks_of_sub.get(s));
            send.chunks.reserve_exact(chunks.copied().unwrap_or(0));
        }
    }
    for (seq, event) in events.iter().enumerate() {
        builder.view.end_us = builder.view.end_us.max(event.at_us);
        builder.add(seq, event);
    }
    let Builder {
        mut view, jobs, by_id, ..
    } = builder;
    view.pair_executions(|job| by_id.get(job).map(|&index| &jobs[index]));
    view.jobs = jobs.into_iter().map(|job| (job.job.clone(), job)).collect();
    view
}

/// The view being built, and its jobs while they are still looked up.
#[derive(Default)]
struct Builder<'e> {
    /// Everything but `jobs`, which waits in `self.jobs`.
    view: TraceView,
    /// The job views, in the order their ids first appeared.
    jobs: Vec<JobView>,
    /// Job id → index into `jobs`. A hash index, although the determinism
    /// guard of clippy.toml steers to ordered maps, because it is only ever
    /// looked up, never iterated: no order leaves it. Fx hashing, as
    /// rustc's own tables: SipHash of 400 k job ids was 3 % of judging at
    /// 1000 jobs/s.
    by_id: FxHashMap<&'e str, usize>,
    /// The same index by the address of an id's text: a trace's events
    /// share one allocation per id (`world::collect` interns them), so most
    /// lookups find it here, hashing one word and comparing none of the
    /// text. Only a cache: an id reached by another allocation (a hand-made
    /// trace) goes through `by_id`, then lands here too.
    by_address: FxHashMap<(usize, usize), usize>,
}

impl<'e> Builder<'e> {
    fn job_mut(&mut self, job: &'e JobId) -> &mut JobView {
        let address = (job.as_ptr() as usize, job.len());
        if let Some(&index) = self.by_address.get(&address) {
            return &mut self.jobs[index];
        }
        let next = self.jobs.len();
        let index = *self.by_id.entry(&**job).or_insert(next);
        // The events borrow the trace for the whole build, so no address
        // is freed and reused for other text while this cache lives.
        self.by_address.insert(address, index);
        if index == next {
            self.jobs.push(JobView {
                job: job.clone(),
                ..JobView::default()
            });
        }
        &mut self.jobs[index]
    }

    fn add(&mut self, seq: usize, event: &'e Event) {
        let at = event.at_us;
        match &event.kind {
            EventKind::Phase { phase } => self.view.phases.push((at, *phase)),
            EventKind::Fault { action, hosts } => self.view.faults.push((at, *action, hosts.clone())),
            EventKind::HostStopped { host, error } => self.view.host_stops.push((at, host.clone(), error.clone())),
            EventKind::CoordinatorFlagged { kind, job, what, .. } => {
                self.view
                    .coordinator_flags
                    .push((at, job.as_deref().map(str::to_owned), format!("{kind}: {what}")));
            }
            EventKind::ReadBlocked { conn, until_us, slow } => {
                self.view.read_pauses.push((at, *until_us));
                if !slow {
                    self.view.read_stops.push((*conn, at, *until_us));
                }
            }
            EventKind::CoordinatorNote { .. } => {}
            EventKind::RecordsDropped { source, count } => self.view.records_dropped.push((source.clone(), *count)),
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
        let session = self.view.sessions.entry(conn).or_insert_with(|| SessionView {
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
                session.heartbeat_figures.push((**figures).clone());
            }
            _ => {}
        }
    }

    fn add_send(&mut self, at: u64, seq: usize, kind: &'e EventKind) {
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

    fn add_job(&mut self, at: u64, seq: usize, kind: &'e EventKind) {
        let Some(job) = kind.job_id() else { return };
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
                let index = self.view.backend_calls.len();
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
                    self.view.executions_by_job.entry(job.clone()).or_default().push(index);
                }
                self.view.calls_by_request.insert((backend.clone(), *request), index);
                self.view.backend_calls.push(call);
            }
            EventKind::BackendEnd {
                backend,
                request,
                status,
                end,
                body,
                ..
            } => {
                let index = self.view.calls_by_request.get(&(backend.clone(), *request));
                if let Some(call) = index.and_then(|&i| self.view.backend_calls.get_mut(i)) {
                    call.end_us = Some(at);
                    call.status = Some(*status);
                    call.end = Some(end.clone());
                    call.body = body.clone();
                }
            }
            _ => {}
        }
    }

    fn add_agent(&mut self, event: &'e Event) {
        match &event.kind {
            EventKind::AgentJobAdmitted { job, .. } => self.job_mut(job).agent_decisions_us.push(event.at_us),
            EventKind::AgentJobRejected { job, code, .. } => {
                let view = self.job_mut(job);
                view.agent_decisions_us.push(event.at_us);
                view.agent_out_of_capacity += u64::from(&**code == "out_of_capacity");
            }
            EventKind::AgentSlotFreed { job, .. } => {
                self.view
                    .agent_freed_by_job
                    .entry(job.clone())
                    .or_default()
                    .push(event.at_us);
            }
            _ => {}
        }
        self.view.agent_events.push(event.clone());
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
