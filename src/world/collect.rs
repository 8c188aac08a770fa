//! Turning the records of a finished run into trace events: the
//! coordinator's log (sessions, frames in arrival order, job records, read
//! windows, its own violations), every backend's request records, the
//! agent's observer events, and the harness's own events. Every job event
//! names the submission (`JobRecord::index`) the coordinator attributed it
//! to, so the oracle can judge each submission of a re-sent id on its own;
//! the agent's job events get theirs from [`agent_subs`].

use std::collections::BTreeMap;

use mock_backends::{Recorder, RequestEnd, RequestRecord};
use mock_coordinator::{JobKind as CoordJobKind, JobRecord, LogSnapshot, ReadBlock};
use provider_agent::observer::AgentEvent;
use serde_json::Value;

use super::agent_subs;
use super::frames::{Attribution, frame_event, frame_is_read};
use crate::trace::{Blob, Event, EventKind, Interner, JobId, JobKind, Trace, sort_stable_by_key};

/// The protocol's default `deadline_ms`, applied by the agent when a job
/// frame omits the field.
pub const DEADLINE_MS_PROTOCOL_DEFAULT: u64 = 60_000;

/// Everything recorded during one run.
pub struct Records<'a> {
    pub world: Vec<Event>,
    pub log: LogSnapshot,
    pub backends: &'a [Recorder],
    pub agent: Vec<(u64, AgentEvent)>,
    /// Agent events dropped past their bound.
    pub agent_dropped: u64,
    /// End of the run: open read windows are closed here.
    pub end_us: u64,
}

/// The merged trace of a run. The records are moved into it, not copied:
/// each backend's recorder is emptied, and the bytes the coordinator
/// reassembled for a job are the backend's body's own blob wherever they
/// equal it (see [`Blob::shared`]).
///
/// Memory: this is where a run holds the most, its records and their
/// events at once. So every event goes straight into one buffer of exact
/// size, source by source in [`Source`](crate::trace::Source) order, and is put in trace order
/// there ([`Trace::merge_listed_by_source`]): no event is tagged, copied,
/// or held in a buffer grown by doubling.
pub fn trace_of(records: Records<'_>) -> Trace {
    // Every job id of the trace, one allocation each, shared by its events.
    let mut ids = Interner::default();
    let backend_records: Vec<RequestRecord> = records.backends.iter().flat_map(|r| r.take_records()).collect();
    let mut backend = Vec::with_capacity(2 * backend_records.len());
    for record in backend_records {
        backend_events(record, &mut ids, &mut backend);
    }
    let bodies = bodies_by_job(&backend);
    let frames_dropped = records.log.frames_dropped;
    let dropped: Vec<(&str, u64)> = [
        ("agent events", records.agent_dropped),
        ("coordinator frames", frames_dropped),
    ]
    .into_iter()
    .filter(|(_, count)| *count > 0)
    .collect();
    let capacity = records.world.len()
        + dropped.len()
        + coordinator_events_max(&records.log)
        + backend.len()
        + records.agent.len();
    let mut events = Vec::with_capacity(capacity);
    // Source::World
    events.extend(records.world);
    for (source, count) in dropped {
        let kind = EventKind::RecordsDropped {
            source: source.to_owned(),
            count,
        };
        events.push(Event::new(records.end_us, kind));
    }
    // Source::Coordinator
    coordinator_events(records.log, records.end_us, &bodies, &mut ids, &mut events);
    drop(bodies);
    // Source::Backend, then Source::Agent
    events.extend(backend);
    events.extend(
        records
            .agent
            .into_iter()
            .map(|(at, e)| Event::new(at, agent_event(e, &mut ids))),
    );
    debug_assert!(events.len() <= capacity, "the capacity bounds every event");
    // Frames attributed to nothing made no event: release their room.
    events.shrink_to_fit();
    let mut trace = Trace::merge_listed_by_source(events);
    agent_subs::attribute(&mut trace.events);
    trace
}

/// Most events [`coordinator_events`] makes of `log`: two per session, those
/// of each job ([`job_events_count`]), one per read window, violation, note
/// and frame of a kind the trace reads ([`frame_event`]; one it cannot
/// read makes none).
fn coordinator_events_max(log: &LogSnapshot) -> usize {
    2 * log.sessions.len()
        + log.jobs.iter().map(job_events_count).sum::<usize>()
        + log.read_windows.len()
        + log.violations.len()
        + log.notes.len()
        + log
            .frames
            .iter()
            .filter(|frame| frame_is_read(frame.dir, frame.kind))
            .count()
}

/// Every body a backend wrote, by the job id its request carried.
fn bodies_by_job(backend: &[Event]) -> BTreeMap<&str, Vec<&Blob>> {
    let mut bodies: BTreeMap<&str, Vec<&Blob>> = BTreeMap::new();
    for event in backend {
        if let EventKind::BackendEnd {
            job: Some(job), body, ..
        } = &event.kind
        {
            bodies.entry(&**job).or_default().push(body);
        }
    }
    bodies
}

/// A job's id in the trace; malformed frames without one get a stand-in.
fn trace_job_id(job: &JobRecord, ids: &mut Interner) -> JobId {
    if job.job_id.is_empty() {
        ids.intern(&format!("malformed#{}", job.index))
    } else {
        ids.intern(&job.job_id)
    }
}

/// Appends the coordinator's events to `out`, in the coordinator's order.
fn coordinator_events(
    mut log: LogSnapshot,
    end_us: u64,
    bodies: &BTreeMap<&str, Vec<&Blob>>,
    ids: &mut Interner,
    out: &mut Vec<Event>,
) {
    let start = out.len();
    let events = out;
    for session in &log.sessions {
        events.push(Event::new(
            session.connected_us,
            EventKind::SessionOpened { conn: session.conn },
        ));
        if let Some(closed_us) = session.closed_us {
            let reason = session
                .close_reason
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), tagged_text);
            events.push(Event::new(
                closed_us,
                EventKind::SessionClosed {
                    conn: session.conn,
                    reason,
                },
            ));
        }
    }
    for job in &mut log.jobs {
        job_events(job, bodies, ids, events);
    }
    for window in &log.read_windows {
        let slow = matches!(window.block, ReadBlock::Slow { .. });
        let until_us = window.end_us.unwrap_or(end_us);
        events.push(Event::new(
            window.start_us,
            EventKind::ReadBlocked {
                conn: window.conn,
                until_us,
                slow,
            },
        ));
    }
    for v in &log.violations {
        let (kind, job) = (json_text(&v.kind), v.job_id.as_deref().map(|id| ids.intern(id)));
        events.push(Event::new(
            v.at_us,
            EventKind::CoordinatorFlagged {
                conn: v.conn,
                kind,
                job,
                what: v.what.clone(),
            },
        ));
    }
    events.extend(
        log.notes
            .iter()
            .map(|n| Event::new(n.at_us, EventKind::CoordinatorNote { what: n.what.clone() })),
    );
    let mut attribution = Attribution::new(&log.jobs);
    // The frame log is consumed as it is walked: each of its segments is
    // freed once its frames became events.
    std::mem::take(&mut log.frames).consume(|frame| events.extend(frame_event(frame, &mut attribution, ids)));
    // Within one instant (one 1 ms step) nothing the coordinator wrote can
    // have been answered yet, so frames read come first; the sort is stable,
    // so reads keep the order the coordinator read them in.
    sort_stable_by_key(&mut events[start..], |e| (e.at_us, !is_read(&e.kind)));
}

/// Whether the event is a frame the coordinator read from the agent.
fn is_read(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Chunk { .. }
            | EventKind::TerminalReceived { .. }
            | EventKind::Heartbeat { .. }
            | EventKind::SessionReady { .. }
    )
}

/// How many events [`job_events`] makes of `job`.
fn job_events_count(job: &JobRecord) -> usize {
    let sent = job.sent_us.is_some() && job.conn.is_some();
    usize::from(sent || job.undeliverable.is_some())
        + usize::from(job.session_lost_us.is_some() && job.conn.is_some())
        + usize::from(job.superseded_us.is_some())
        + usize::from(!job.chunks.is_empty())
}

/// Appends a job's events to `events`; its reassembled bytes move into the
/// trace.
fn job_events(job: &mut JobRecord, bodies: &BTreeMap<&str, Vec<&Blob>>, ids: &mut Interner, events: &mut Vec<Event>) {
    let id = trace_job_id(job, ids);
    let sub = job.index as u64;
    let kind = match job.kind {
        CoordJobKind::Normal => JobKind::Normal,
        CoordJobKind::Duplicate { .. } => JobKind::Duplicate,
        CoordJobKind::Malformed(how) if how.expected_error_code().is_some() => JobKind::Invalid,
        CoordJobKind::Malformed(_) => JobKind::Malformed,
    };
    let arrival = match job.kind {
        CoordJobKind::Duplicate { of } => Some(of),
        _ => job.arrival,
    };
    if let (Some(sent_us), Some(conn)) = (job.sent_us, job.conn) {
        let deadline_ms = job.deadline_ms.unwrap_or(DEADLINE_MS_PROTOCOL_DEFAULT);
        events.push(Event::new(
            sent_us,
            EventKind::JobSent {
                job: id.clone(),
                sub,
                conn,
                model: ids.intern(&job.model),
                deadline_ms,
                kind,
                id_was_free: job.id_was_free,
                arrival,
            },
        ));
    } else if job.undeliverable.is_some() {
        events.push(Event::new(
            job.scheduled_us,
            EventKind::JobUndeliverable {
                job: id.clone(),
                sub,
                kind,
                arrival,
            },
        ));
    }
    if let (Some(lost_us), Some(conn)) = (job.session_lost_us, job.conn) {
        events.push(Event::new(
            lost_us,
            EventKind::JobSessionLost {
                job: id.clone(),
                sub,
                conn,
            },
        ));
    }
    if let Some(superseded_us) = job.superseded_us {
        events.push(Event::new(
            superseded_us,
            EventKind::JobSuperseded { job: id.clone(), sub },
        ));
    }
    if let Some(last) = job.chunks.last() {
        let candidates = bodies.get(&*id).into_iter().flatten().copied();
        let bytes = Blob::shared(std::mem::take(&mut job.bytes), candidates);
        events.push(Event::new(last.at_us, EventKind::JobBytes { job: id, sub, bytes }));
    }
}

/// An internally tagged enum (`{"reason": …, "detail": …}`) as
/// `reason` or `reason: detail`.
fn tagged_text<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => {
            let tag = map
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned();
            match map.get("detail") {
                Some(Value::String(detail)) => format!("{tag}: {detail}"),
                Some(other) => format!("{tag}: {other}"),
                None => tag,
            }
        }
        _ => json_text(value),
    }
}

/// A serde enum value as compact JSON text without quotes for plain strings.
fn json_text<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(text)) => text,
        Ok(other) => other.to_string(),
        Err(err) => format!("unserialisable: {err}"),
    }
}

/// Appends a request's events (its arrival, and its end if it ended) to
/// `events`.
fn backend_events(record: RequestRecord, ids: &mut Interner, events: &mut Vec<Event>) {
    let job = record.job_id.as_deref().map(|id| ids.intern(id));
    let backend = ids.intern(&record.backend);
    events.push(Event::new(
        record.arrival_us,
        EventKind::BackendRequest {
            backend: backend.clone(),
            request: record.request_id,
            job: job.clone(),
            method: ids.intern(&record.method),
            path: ids.intern(&record.path),
            model: record.model.as_deref().map(|model| ids.intern(model)),
            stream: record.stream,
        },
    ));
    if let (Some(end_us), Some(end)) = (record.end_us, &record.end) {
        let end = match end {
            RequestEnd::Completed => ids.intern("completed"),
            RequestEnd::ClientGone => ids.intern("client_gone"),
            RequestEnd::Fault(what) => ids.intern(&format!("fault:{what}")),
            RequestEnd::Rejected(status) => ids.intern(&format!("rejected:{status}")),
        };
        events.push(Event::new(
            end_us,
            EventKind::BackendEnd {
                backend,
                request: record.request_id,
                job,
                status: record.status,
                tokens_written: record.tokens_written,
                end,
                body: Blob::from(record.body),
            },
        ));
    }
}

fn agent_event(event: AgentEvent, ids: &mut Interner) -> EventKind {
    // The id written into one reused buffer, so a known id costs no allocation.
    let mut text = String::new();
    let mut job = |id: &dyn std::fmt::Display| {
        use std::fmt::Write as _;
        text.clear();
        let _ = write!(text, "{id}");
        ids.intern(&text)
    };
    let count = |n: usize| n as u64;
    match event {
        AgentEvent::SessionStarted { session } => EventKind::AgentSessionStarted { session },
        AgentEvent::SessionEnded { session, reason } => EventKind::AgentSessionEnded { session, reason },
        AgentEvent::JobAdmitted { job_id, in_flight } => EventKind::AgentJobAdmitted {
            job: job(&job_id),
            sub: None,
            in_flight: count(in_flight),
        },
        AgentEvent::JobRejected {
            job_id,
            code,
            in_flight,
        } => EventKind::AgentJobRejected {
            job: job(&job_id),
            sub: None,
            code: job(&code.as_str()),
            in_flight: count(in_flight),
        },
        AgentEvent::SlotFreed {
            job_id,
            in_flight,
            cancelled,
        } => EventKind::AgentSlotFreed {
            job: job(&job_id),
            sub: None,
            in_flight: count(in_flight),
            cancelled,
            why: ids.intern(""),
        },
        AgentEvent::OutboundQueued { bytes, frames } => EventKind::AgentOutboundQueued {
            bytes: count(bytes),
            frames: count(frames),
        },
        AgentEvent::FrameRejected { reason } => EventKind::AgentFrameRejected { reason },
    }
}
