//! Turning the records of a finished run into trace events: the
//! coordinator's log (sessions, frames in arrival order, job records, read
//! windows, its own violations), every backend's request records, the
//! agent's observer events, and the harness's own events. Every job event
//! names the submission (`JobRecord::index`) the coordinator attributed it
//! to, so the oracle can judge each submission of a re-sent id on its own;
//! the agent's job events get theirs from [`agent_subs`].

use std::collections::BTreeMap;

use mock_backends::{Recorder, RequestEnd, RequestRecord};
use mock_coordinator::{
    Dir, FrameRecord, JobKind as CoordJobKind, JobRecord, LogSnapshot, ReadBlock, Terminal as CoordTerminal,
    TerminalRecord,
};
use provider_agent::observer::AgentEvent;
use serde_json::Value;

use super::agent_subs;
use crate::trace::{Blob, Event, EventKind, HeartbeatFigures, JobKind, Source, Terminal, Trace};

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

/// The merged trace of a run.
pub fn trace_of(records: Records<'_>) -> Trace {
    let mut tagged: Vec<(Source, Event)> = records.world.into_iter().map(|e| (Source::World, e)).collect();
    let dropped = [
        ("agent events", records.agent_dropped),
        ("coordinator frames", records.log.frames_dropped),
    ];
    for (source, count) in dropped.into_iter().filter(|(_, count)| *count > 0) {
        let kind = EventKind::RecordsDropped {
            source: source.to_owned(),
            count,
        };
        tagged.push((Source::World, Event::new(records.end_us, kind)));
    }
    tagged.extend(
        coordinator_events(&records.log, records.end_us)
            .into_iter()
            .map(|e| (Source::Coordinator, e)),
    );
    for recorder in records.backends {
        tagged.extend(
            recorder
                .records()
                .iter()
                .flat_map(backend_events)
                .map(|e| (Source::Backend, e)),
        );
    }
    tagged.extend(
        records
            .agent
            .into_iter()
            .map(|(at, e)| (Source::Agent, Event::new(at, agent_event(e)))),
    );
    let mut trace = Trace::merge(tagged);
    agent_subs::attribute(&mut trace.events);
    trace
}

/// A job's id in the trace; malformed frames without one get a stand-in.
fn trace_job_id(job: &JobRecord) -> String {
    if job.job_id.is_empty() {
        format!("malformed#{}", job.index)
    } else {
        job.job_id.clone()
    }
}

fn coordinator_events(log: &LogSnapshot, end_us: u64) -> Vec<Event> {
    let mut events = Vec::new();
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
    events.extend(log.jobs.iter().flat_map(job_events));
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
        let (kind, job) = (json_text(&v.kind), v.job_id.clone());
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
    events.extend(
        log.frames
            .iter()
            .filter_map(|frame| frame_event(frame, &mut attribution)),
    );
    // Within one instant (one 1 ms step) nothing the coordinator wrote can
    // have been answered yet, so frames read come first; the sort is stable,
    // so reads keep the order the coordinator read them in.
    events.sort_by_key(|e| (e.at_us, !is_read(&e.kind)));
    events
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

fn job_events(job: &JobRecord) -> Vec<Event> {
    let id = trace_job_id(job);
    let sub = job.index as u64;
    let mut events = Vec::new();
    let kind = match job.kind {
        CoordJobKind::Normal => JobKind::Normal,
        CoordJobKind::Duplicate { .. } => JobKind::Duplicate,
        CoordJobKind::Malformed(how) if how.expected_error_code().is_some() => JobKind::Invalid,
        CoordJobKind::Malformed(_) => JobKind::Malformed,
    };
    if let (Some(sent_us), Some(conn)) = (job.sent_us, job.conn) {
        let deadline_ms = job.deadline_ms.unwrap_or(DEADLINE_MS_PROTOCOL_DEFAULT);
        events.push(Event::new(
            sent_us,
            EventKind::JobSent {
                job: id.clone(),
                sub,
                conn,
                model: job.model.clone(),
                deadline_ms,
                kind,
                id_was_free: job.id_was_free,
            },
        ));
    } else if job.undeliverable.is_some() {
        events.push(Event::new(
            job.scheduled_us,
            EventKind::JobUndeliverable {
                job: id.clone(),
                sub,
                kind,
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
        events.push(Event::new(
            last.at_us,
            EventKind::JobBytes {
                job: id,
                sub,
                bytes: Blob::new(&job.bytes),
            },
        ));
    }
    events
}

/// What frame matching needs of one submission's record.
#[derive(Clone, Debug, Default, PartialEq)]
struct SubRecord {
    index: u64,
    /// `(at_us, len)` of each chunk attributed to it.
    chunks: Vec<(u64, usize)>,
    /// `(at_us, error_code)` of each terminal frame attributed to it
    /// (`None` for `job_done`).
    terminals: Vec<(u64, Option<String>)>,
    cancel_sent_us: Option<u64>,
}

impl SubRecord {
    fn of(job: &JobRecord) -> Self {
        let code = |t: &TerminalRecord| match &t.frame {
            CoordTerminal::Done { .. } => None,
            CoordTerminal::Error { code, .. } => Some(code.clone()),
        };
        Self {
            index: job.index as u64,
            chunks: job.chunks.iter().map(|c| (c.at_us, c.len)).collect(),
            // A submission lives on one connection; its terminal frames
            // were read there (the record keeps the connection anyway).
            terminals: job
                .terminals
                .iter()
                .filter(|t| Some(t.conn) == job.conn)
                .map(|t| (t.at_us, code(t)))
                .collect(),
            cancel_sent_us: job.cancel_sent_us,
        }
    }
}

/// Which submission each frame of a job belongs to, as the coordinator
/// attributed it. Frames name only a `job_id`; the coordinator records on
/// each submission the chunks and terminal frames it attributed to it, with
/// the very time of the frame, so each frame is matched back to a record:
/// among the submissions of its id on its connection, the one whose next
/// unmatched chunk (terminal frame) has the frame's time and length (kind
/// and error code). Frames of one submission are matched in order; should
/// two submissions both fit — two frames of one id alike in all that, in
/// one microsecond — the older one takes the first, as the coordinator gives
/// frames to the oldest submission awaiting them. A frame no record fits was
/// attributed to none (after the terminal frame, another connection's job,
/// an unknown id).
#[derive(Debug, Default)]
struct Attribution {
    /// Submissions by `(job_id, conn)`, in submission order.
    chains: BTreeMap<(String, u64), Vec<SubRecord>>,
    /// Per submission: chunks and terminal frames matched so far.
    matched: BTreeMap<u64, (usize, usize)>,
}

impl Attribution {
    fn new(jobs: &[JobRecord]) -> Self {
        let mut attribution = Self::default();
        for job in jobs {
            if let Some(conn) = job.conn {
                attribution.add(&job.job_id, conn, SubRecord::of(job));
            }
        }
        attribution
    }

    /// Adds the next submission of `job_id` on `conn`.
    fn add(&mut self, job_id: &str, conn: u64, sub: SubRecord) {
        self.chains.entry((job_id.to_owned(), conn)).or_default().push(sub);
    }

    fn chain(&self, job_id: &str, conn: u64) -> &[SubRecord] {
        self.chains
            .get(&(job_id.to_owned(), conn))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The submission a chunk of `len` bytes read at `at_us` belongs to.
    fn chunk(&mut self, job_id: &str, conn: u64, at_us: u64, len: usize) -> Option<u64> {
        let owner = self.chain(job_id, conn).iter().find(|sub| {
            let done = self.matched.get(&sub.index).map_or(0, |m| m.0);
            sub.chunks.get(done) == Some(&(at_us, len))
        })?;
        let index = owner.index;
        self.matched.entry(index).or_default().0 += 1;
        Some(index)
    }

    /// The submission a terminal frame read at `at_us` belongs to.
    fn terminal(&mut self, job_id: &str, conn: u64, at_us: u64, terminal: &Terminal) -> Option<u64> {
        let code = terminal.error_code();
        let owner = self.chain(job_id, conn).iter().find(|sub| {
            let done = self.matched.get(&sub.index).map_or(0, |m| m.1);
            sub.terminals
                .get(done)
                .is_some_and(|(at, recorded)| *at == at_us && recorded.as_deref() == code)
        })?;
        let index = owner.index;
        self.matched.entry(index).or_default().1 += 1;
        Some(index)
    }

    /// The submissions for which a `job_cancel` written at `at_us` was the
    /// first to count (the record keeps each submission's first one).
    fn cancel(&self, job_id: &str, conn: u64, at_us: u64) -> Vec<u64> {
        self.chain(job_id, conn)
            .iter()
            .filter(|sub| sub.cancel_sent_us == Some(at_us))
            .map(|sub| sub.index)
            .collect()
    }
}

/// The trace event of one frame, for the frames the oracle reads in order.
fn frame_event(frame: &FrameRecord, attribution: &mut Attribution) -> Option<Event> {
    let conn = frame.conn;
    let kind = match (frame.dir, frame.kind.as_str()) {
        (Dir::Out, "job_cancel") => {
            let job = frame.job_id.clone()?;
            EventKind::CancelSent {
                subs: attribution.cancel(&job, conn, frame.at_us),
                job,
                conn,
            }
        }
        (Dir::In, "job_chunk") => {
            let job = frame.job_id.clone()?;
            // A chunk whose data did not decode is recorded on no
            // submission (and flagged by the coordinator).
            let len = frame.data_len;
            EventKind::Chunk {
                sub: len.and_then(|len| attribution.chunk(&job, conn, frame.at_us, len)),
                job,
                conn,
                len: len.unwrap_or(0) as u64,
            }
        }
        (Dir::In, "job_done" | "job_error") => {
            let text: Value = serde_json::from_str(frame.text.as_deref()?).ok()?;
            let job = frame.job_id.clone()?;
            let terminal = terminal_of(&text);
            EventKind::TerminalReceived {
                sub: attribution.terminal(&job, conn, frame.at_us, &terminal),
                job,
                conn,
                terminal,
            }
        }
        (Dir::In, "heartbeat") => {
            let text: Value = serde_json::from_str(frame.text.as_deref()?).ok()?;
            EventKind::Heartbeat {
                conn,
                queue_depth: text.get("queue_depth")?.as_u64()?,
                figures: HeartbeatFigures {
                    tokens_per_sec_p50: text.get("tokens_per_sec_p50").and_then(Value::as_f64),
                    p50_latency_ms: text.get("p50_latency_ms").and_then(Value::as_f64),
                    p95_latency_ms: text.get("p95_latency_ms").and_then(Value::as_f64),
                    error_rate_60s: text.get("error_rate_60s").and_then(Value::as_f64),
                    last_error_code: text.get("last_error_code").and_then(Value::as_str).map(str::to_owned),
                },
            }
        }
        (Dir::In, "capabilities") => {
            let text: Value = serde_json::from_str(frame.text.as_deref()?).ok()?;
            EventKind::SessionReady {
                conn,
                models: model_ids(&text),
            }
        }
        _ => return None,
    };
    Some(Event::new(frame.at_us, kind))
}

fn terminal_of(frame: &Value) -> Terminal {
    let number = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    match frame.get("type").and_then(Value::as_str) {
        Some("job_done") => Terminal::Done {
            tokens_in: number(frame.pointer("/tokens/input")),
            tokens_out: number(frame.pointer("/tokens/output")),
            duration_ms: number(frame.get("duration_ms")),
        },
        _ => Terminal::Error {
            code: frame.get("error_code").and_then(Value::as_str).unwrap_or("").to_owned(),
            tokens_emitted: number(frame.get("tokens_emitted")),
            bytes_emitted: frame.get("bytes_emitted").and_then(Value::as_u64),
        },
    }
}

fn model_ids(capabilities: &Value) -> Vec<String> {
    let models = capabilities
        .get("models")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    models
        .iter()
        .filter_map(|m| m.get("model_id").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
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

fn backend_events(record: &RequestRecord) -> Vec<Event> {
    let mut events = vec![Event::new(
        record.arrival_us,
        EventKind::BackendRequest {
            backend: record.backend.clone(),
            request: record.request_id,
            job: record.job_id.clone(),
            method: record.method.clone(),
            path: record.path.clone(),
            model: record.model.clone(),
            stream: record.stream,
        },
    )];
    if let (Some(end_us), Some(end)) = (record.end_us, &record.end) {
        let end = match end {
            RequestEnd::Completed => "completed".to_owned(),
            RequestEnd::ClientGone => "client_gone".to_owned(),
            RequestEnd::Fault(what) => format!("fault:{what}"),
            RequestEnd::Rejected(status) => format!("rejected:{status}"),
        };
        events.push(Event::new(
            end_us,
            EventKind::BackendEnd {
                backend: record.backend.clone(),
                request: record.request_id,
                job: record.job_id.clone(),
                status: record.status,
                tokens_written: record.tokens_written,
                end,
                body: Blob::new(&record.body),
            },
        ));
    }
    events
}

fn agent_event(event: AgentEvent) -> EventKind {
    let count = |n: usize| n as u64;
    match event {
        AgentEvent::SessionStarted { session } => EventKind::AgentSessionStarted { session },
        AgentEvent::SessionEnded { session, reason } => EventKind::AgentSessionEnded { session, reason },
        AgentEvent::JobAdmitted { job_id, in_flight } => EventKind::AgentJobAdmitted {
            job: job_id.to_string(),
            sub: None,
            in_flight: count(in_flight),
        },
        AgentEvent::JobRejected {
            job_id,
            code,
            in_flight,
        } => EventKind::AgentJobRejected {
            job: job_id.to_string(),
            sub: None,
            code: code.as_str().to_owned(),
            in_flight: count(in_flight),
        },
        AgentEvent::SlotFreed {
            job_id,
            in_flight,
            cancelled,
        } => EventKind::AgentSlotFreed {
            job: job_id.to_string(),
            sub: None,
            in_flight: count(in_flight),
            cancelled,
            why: String::new(),
        },
        AgentEvent::OutboundQueued { bytes, frames } => EventKind::AgentOutboundQueued {
            bytes: count(bytes),
            frames: count(frames),
        },
        AgentEvent::FrameRejected { reason } => EventKind::AgentFrameRejected { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done() -> Terminal {
        Terminal::Done {
            tokens_in: 0,
            tokens_out: 0,
            duration_ms: 0,
        }
    }

    fn error(code: &str) -> Terminal {
        Terminal::Error {
            code: code.into(),
            tokens_emitted: 0,
            bytes_emitted: Some(0),
        }
    }

    /// An original that streams and ends, and a re-send answered
    /// `duplicate_job` in the same instant as the original's `job_done`.
    fn original_and_duplicate() -> Attribution {
        let mut attribution = Attribution::default();
        let original = SubRecord {
            index: 0,
            chunks: vec![(10, 3), (20, 3)],
            terminals: vec![(20, None)],
            cancel_sent_us: Some(30),
        };
        let resend = SubRecord {
            index: 1,
            chunks: vec![],
            terminals: vec![(20, Some("duplicate_job".into()))],
            cancel_sent_us: None,
        };
        attribution.add("j", 1, original);
        attribution.add("j", 1, resend);
        attribution
    }

    /// A `duplicate_job` read before the original's `job_done` in one instant goes to the re-send, the `job_done` to the original.
    #[test]
    fn terminals_are_told_apart_by_code_within_an_instant() {
        let mut attribution = original_and_duplicate();
        assert_eq!(attribution.chunk("j", 1, 10, 3), Some(0));
        assert_eq!(attribution.terminal("j", 1, 20, &error("duplicate_job")), Some(1));
        assert_eq!(attribution.chunk("j", 1, 20, 3), Some(0));
        assert_eq!(attribution.terminal("j", 1, 20, &done()), Some(0));
    }

    /// A frame no record holds (after the terminal, another connection, another id) belongs to no submission.
    #[test]
    fn unrecorded_frames_belong_to_none() {
        let mut attribution = original_and_duplicate();
        assert_eq!(attribution.chunk("j", 1, 10, 3), Some(0));
        assert_eq!(attribution.chunk("j", 1, 15, 3), None);
        assert_eq!(attribution.chunk("j", 2, 20, 3), None);
        assert_eq!(attribution.terminal("k", 1, 20, &done()), None);
    }

    /// Chunks alike in time and length go to the older submission first, then to the re-run.
    #[test]
    fn alike_chunks_go_to_the_older_submission_first() {
        let mut attribution = Attribution::default();
        let first = SubRecord {
            index: 4,
            chunks: vec![(10, 2)],
            terminals: vec![(10, None)],
            cancel_sent_us: None,
        };
        let rerun = SubRecord {
            index: 7,
            chunks: vec![(10, 2)],
            ..SubRecord::default()
        };
        attribution.add("j", 1, first);
        attribution.add("j", 1, rerun);
        assert_eq!(attribution.chunk("j", 1, 10, 2), Some(4));
        assert_eq!(attribution.terminal("j", 1, 10, &done()), Some(4));
        assert_eq!(attribution.chunk("j", 1, 10, 2), Some(7));
    }

    /// A cancel lists the submissions whose first cancel it was.
    #[test]
    fn a_cancel_lists_the_submissions_it_counted_for() {
        let attribution = original_and_duplicate();
        assert_eq!(attribution.cancel("j", 1, 30), vec![0]);
        assert!(attribution.cancel("j", 1, 31).is_empty());
    }
}
