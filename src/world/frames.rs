//! Which submission each frame of the coordinator's log belongs to, and the
//! trace event it becomes. A job id may be sent more than once (a re-send
//! after a lost session, a duplicate); the coordinator attributes every
//! chunk and terminal frame to one submission, and this keeps the job
//! records and that attribution together while the frames are replayed in
//! arrival order.

use std::collections::BTreeMap;

use mock_coordinator::{Dir, FrameRecord, JobRecord, Terminal as CoordTerminal, TerminalRecord};
use serde_json::Value;

use crate::trace::{Event, EventKind, HeartbeatFigures, Interner, Terminal};

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
pub(super) struct Attribution {
    /// Submissions by `(job_id, conn)`, in submission order.
    chains: BTreeMap<(String, u64), Vec<SubRecord>>,
    /// Per submission: chunks and terminal frames matched so far.
    matched: BTreeMap<u64, (usize, usize)>,
}

impl Attribution {
    pub(super) fn new(jobs: &[JobRecord]) -> Self {
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
pub(super) fn frame_event(frame: &FrameRecord, attribution: &mut Attribution, ids: &mut Interner) -> Option<Event> {
    let conn = frame.conn;
    let kind = match (frame.dir, frame.kind.as_str()) {
        (Dir::Out, "job_cancel") => {
            let job = ids.intern(frame.job_id.as_deref()?);
            EventKind::CancelSent {
                subs: attribution.cancel(&job, conn, frame.at_us),
                job,
                conn,
            }
        }
        (Dir::In, "job_chunk") => {
            let job = ids.intern(frame.job_id.as_deref()?);
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
            let job = ids.intern(frame.job_id.as_deref()?);
            let terminal = terminal_of(&text, ids);
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
                figures: Box::new(HeartbeatFigures {
                    tokens_per_sec_p50: text.get("tokens_per_sec_p50").and_then(Value::as_f64),
                    p50_latency_ms: text.get("p50_latency_ms").and_then(Value::as_f64),
                    p95_latency_ms: text.get("p95_latency_ms").and_then(Value::as_f64),
                    error_rate_60s: text.get("error_rate_60s").and_then(Value::as_f64),
                    last_error_code: text.get("last_error_code").and_then(Value::as_str).map(str::to_owned),
                }),
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

fn terminal_of(frame: &Value, ids: &mut Interner) -> Terminal {
    let number = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    match frame.get("type").and_then(Value::as_str) {
        Some("job_done") => Terminal::Done {
            tokens_in: number(frame.pointer("/tokens/input")),
            tokens_out: number(frame.pointer("/tokens/output")),
            duration_ms: number(frame.get("duration_ms")),
        },
        _ => Terminal::Error {
            code: ids.intern(frame.get("error_code").and_then(Value::as_str).unwrap_or("")),
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
