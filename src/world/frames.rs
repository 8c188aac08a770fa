//! Which submission each frame of the coordinator's log belongs to, and the
//! trace event it becomes. A job id may be sent more than once (a re-send
//! after a lost session, a duplicate); the coordinator attributes every
//! chunk and terminal frame to one submission, and this keeps the job
//! records and that attribution together while the frames are replayed in
//! arrival order.

use mock_coordinator::{ChunkRecord, Dir, FrameView, JobRecord, Terminal as CoordTerminal, TerminalRecord};
use serde_json::Value;

use crate::trace::{Event, EventKind, HeartbeatFigures, Interner, Terminal};

/// What frame matching reads of one submission's record, borrowed from it
/// (a long run has tens of thousands; copying their chunk lists would hold
/// them twice while the records are still alive), and how far matching got.
#[derive(Clone, Copy, Debug)]
struct Sub<'j> {
    job_id: &'j str,
    conn: u64,
    index: u64,
    /// Each chunk attributed to it.
    chunks: &'j [ChunkRecord],
    /// Each terminal frame attributed to it; those read on `conn` count
    /// (a submission lives on one connection, but the record keeps the
    /// connection of each anyway).
    terminals: &'j [TerminalRecord],
    cancel_sent_us: Option<u64>,
    /// Chunks and terminal frames matched so far.
    chunks_matched: usize,
    terminals_matched: usize,
}

impl<'j> Sub<'j> {
    fn of(job: &'j JobRecord, conn: u64) -> Self {
        Sub {
            job_id: &job.job_id,
            conn,
            index: job.index as u64,
            chunks: &job.chunks,
            terminals: &job.terminals,
            cancel_sent_us: job.cancel_sent_us,
            chunks_matched: 0,
            terminals_matched: 0,
        }
    }

    fn key(&self) -> (&'j str, u64) {
        (self.job_id, self.conn)
    }

    /// `(at_us, error code)` of the next terminal frame not matched yet.
    fn next_terminal(&self) -> Option<(u64, Option<&'j str>)> {
        let t = self
            .terminals
            .iter()
            .filter(|t| t.conn == self.conn)
            .nth(self.terminals_matched)?;
        let code = match &t.frame {
            CoordTerminal::Done { .. } => None,
            CoordTerminal::Error { code, .. } => Some(code.as_str()),
        };
        Some((t.at_us, code))
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
pub(super) struct Attribution<'j> {
    /// Every submission handed to a connection, sorted by `(job_id, conn)`
    /// and, within one such chain, in submission order.
    subs: Vec<Sub<'j>>,
}

impl<'j> Attribution<'j> {
    /// Over the job records, in submission order.
    pub(super) fn new(jobs: impl IntoIterator<Item = &'j JobRecord>) -> Self {
        let mut subs: Vec<Sub<'j>> = jobs
            .into_iter()
            .filter_map(|job| Some(Sub::of(job, job.conn?)))
            .collect();
        // Stable: a chain keeps submission order.
        subs.sort_by_key(Sub::key);
        Attribution { subs }
    }

    /// The submissions of `job_id` on `conn`, in submission order.
    fn chain(&mut self, job_id: &str, conn: u64) -> &mut [Sub<'j>] {
        let key = (job_id, conn);
        let start = self.subs.partition_point(|sub| sub.key() < key);
        let len = self.subs[start..].iter().take_while(|sub| sub.key() == key).count();
        &mut self.subs[start..start + len]
    }

    /// The submission a chunk of `len` bytes read at `at_us` belongs to.
    fn chunk(&mut self, job_id: &str, conn: u64, at_us: u64, len: usize) -> Option<u64> {
        let owner = self.chain(job_id, conn).iter_mut().find(|sub| {
            sub.chunks
                .get(sub.chunks_matched)
                .is_some_and(|c| c.at_us == at_us && c.len == len)
        })?;
        owner.chunks_matched += 1;
        Some(owner.index)
    }

    /// The submission a terminal frame read at `at_us` belongs to.
    fn terminal(&mut self, job_id: &str, conn: u64, at_us: u64, terminal: &Terminal) -> Option<u64> {
        let code = terminal.error_code();
        let owner = self.chain(job_id, conn).iter_mut().find(|sub| {
            sub.next_terminal()
                .is_some_and(|(at, recorded)| at == at_us && recorded == code)
        })?;
        owner.terminals_matched += 1;
        Some(owner.index)
    }

    /// The submissions for which a `job_cancel` written at `at_us` was the
    /// first to count (the record keeps each submission's first one).
    fn cancel(&mut self, job_id: &str, conn: u64, at_us: u64) -> Vec<u64> {
        self.chain(job_id, conn)
            .iter()
            .filter(|sub| sub.cancel_sent_us == Some(at_us))
            .map(|sub| sub.index)
            .collect()
    }
}

/// Whether [`frame_event`] makes an event of a frame of this direction and
/// kind (it may still make none of a frame it cannot decode): what the
/// collection reserves room for.
pub(super) fn frame_is_read(dir: Dir, kind: &str) -> bool {
    matches!(
        (dir, kind),
        (Dir::Out, "job_cancel")
            | (
                Dir::In,
                "job_chunk" | "job_done" | "job_error" | "heartbeat" | "capabilities"
            )
    )
}

/// The trace event of one frame, for the frames the oracle reads in order.
pub(super) fn frame_event(
    frame: FrameView<'_>,
    attribution: &mut Attribution<'_>,
    ids: &mut Interner,
) -> Option<Event> {
    let conn = frame.conn;
    let kind = match (frame.dir, frame.kind) {
        (Dir::Out, "job_cancel") => {
            let job = ids.intern(frame.job_id?);
            EventKind::CancelSent {
                subs: attribution.cancel(&job, conn, frame.at_us),
                job,
                conn,
            }
        }
        (Dir::In, "job_chunk") => {
            let job = ids.intern(frame.job_id?);
            // A chunk whose data did not decode is recorded on no
            // submission (and flagged by the coordinator).
            let len = frame.data_len;
            EventKind::Chunk {
                sub: len.and_then(|len| attribution.chunk(&job, conn, frame.at_us, len as usize)),
                job,
                conn,
                len: u64::from(len.unwrap_or(0)),
            }
        }
        (Dir::In, "job_done" | "job_error") => {
            let text: Value = serde_json::from_str(frame.text?).ok()?;
            let job = ids.intern(frame.job_id?);
            let terminal = terminal_of(&text, ids);
            EventKind::TerminalReceived {
                sub: attribution.terminal(&job, conn, frame.at_us, &terminal),
                job,
                conn,
                terminal,
            }
        }
        (Dir::In, "heartbeat") => {
            let text: Value = serde_json::from_str(frame.text?).ok()?;
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
            let text: Value = serde_json::from_str(frame.text?).ok()?;
            EventKind::SessionReady {
                conn,
                models: model_ids(&text),
            }
        }
        _ => return None,
    };
    debug_assert!(
        frame_is_read(frame.dir, frame.kind),
        "frame_is_read names every kind read here"
    );
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

    /// A submission's record as a test writes it: `(at_us, len)` chunks,
    /// `(at_us, error code)` terminal frames (on connection 1).
    struct Rec {
        index: u64,
        chunks: Vec<ChunkRecord>,
        terminals: Vec<TerminalRecord>,
        cancel_sent_us: Option<u64>,
    }

    fn rec(index: u64, chunks: &[(u64, usize)], terminals: &[(u64, Option<&str>)], cancel_sent_us: Option<u64>) -> Rec {
        let frame = |code: Option<&str>| match code {
            None => CoordTerminal::Done {
                input_tokens: 0,
                output_tokens: 0,
                duration_ms: 0,
            },
            Some(code) => CoordTerminal::Error {
                code: code.into(),
                message: String::new(),
                tokens_emitted: 0,
                bytes_emitted: Some(0),
            },
        };
        Rec {
            index,
            chunks: chunks.iter().map(|&(at_us, len)| ChunkRecord { at_us, len }).collect(),
            terminals: terminals
                .iter()
                .map(|&(at_us, code)| TerminalRecord {
                    at_us,
                    conn: 1,
                    frame: frame(code),
                })
                .collect(),
            cancel_sent_us,
        }
    }

    /// Matching over submissions of id `j` on connection 1, in the order given.
    fn attribution(recs: &[Rec]) -> Attribution<'_> {
        let mut subs: Vec<Sub<'_>> = recs
            .iter()
            .map(|r| Sub {
                job_id: "j",
                conn: 1,
                index: r.index,
                chunks: &r.chunks,
                terminals: &r.terminals,
                cancel_sent_us: r.cancel_sent_us,
                chunks_matched: 0,
                terminals_matched: 0,
            })
            .collect();
        subs.sort_by_key(Sub::key);
        Attribution { subs }
    }

    /// An original that streams and ends, and a re-send answered
    /// `duplicate_job` in the same instant as the original's `job_done`.
    fn original_and_duplicate() -> Vec<Rec> {
        vec![
            rec(0, &[(10, 3), (20, 3)], &[(20, None)], Some(30)),
            rec(1, &[], &[(20, Some("duplicate_job"))], None),
        ]
    }

    /// A `duplicate_job` read before the original's `job_done` in one instant goes to the re-send, the `job_done` to the original.
    #[test]
    fn terminals_are_told_apart_by_code_within_an_instant() {
        let recs = original_and_duplicate();
        let mut attribution = attribution(&recs);
        assert_eq!(attribution.chunk("j", 1, 10, 3), Some(0));
        assert_eq!(attribution.terminal("j", 1, 20, &error("duplicate_job")), Some(1));
        assert_eq!(attribution.chunk("j", 1, 20, 3), Some(0));
        assert_eq!(attribution.terminal("j", 1, 20, &done()), Some(0));
    }

    /// A frame no record holds (after the terminal, another connection, another id) belongs to no submission.
    #[test]
    fn unrecorded_frames_belong_to_none() {
        let recs = original_and_duplicate();
        let mut attribution = attribution(&recs);
        assert_eq!(attribution.chunk("j", 1, 10, 3), Some(0));
        assert_eq!(attribution.chunk("j", 1, 15, 3), None);
        assert_eq!(attribution.chunk("j", 2, 20, 3), None);
        assert_eq!(attribution.terminal("k", 1, 20, &done()), None);
    }

    /// Chunks alike in time and length go to the older submission first, then to the re-run.
    #[test]
    fn alike_chunks_go_to_the_older_submission_first() {
        let recs = vec![rec(4, &[(10, 2)], &[(10, None)], None), rec(7, &[(10, 2)], &[], None)];
        let mut attribution = attribution(&recs);
        assert_eq!(attribution.chunk("j", 1, 10, 2), Some(4));
        assert_eq!(attribution.terminal("j", 1, 10, &done()), Some(4));
        assert_eq!(attribution.chunk("j", 1, 10, 2), Some(7));
    }

    /// A cancel lists the submissions whose first cancel it was.
    #[test]
    fn a_cancel_lists_the_submissions_it_counted_for() {
        let recs = original_and_duplicate();
        let mut attribution = attribution(&recs);
        assert_eq!(attribution.cancel("j", 1, 30), vec![0]);
        assert!(attribution.cancel("j", 1, 31).is_empty());
    }

    /// Chains are found among others sorted around them, and keep submission order.
    #[test]
    fn chains_are_found_among_others() {
        let recs = original_and_duplicate();
        let mut subs: Vec<Sub<'_>> = Vec::new();
        for (job_id, conn) in [("k", 1), ("j", 2), ("i", 1), ("j", 1), ("j", 0)] {
            subs.extend(recs.iter().map(|r| Sub {
                job_id,
                conn,
                index: r.index + 10 * conn,
                chunks: &r.chunks,
                terminals: &r.terminals,
                cancel_sent_us: r.cancel_sent_us,
                chunks_matched: 0,
                terminals_matched: 0,
            }));
        }
        subs.sort_by_key(Sub::key);
        let mut attribution = Attribution { subs };
        assert_eq!(
            attribution.chain("j", 2).iter().map(|s| s.index).collect::<Vec<_>>(),
            vec![20, 21]
        );
        assert_eq!(attribution.chunk("j", 1, 10, 3), Some(10));
        assert!(attribution.chain("h", 1).is_empty() && attribution.chain("z", 0).is_empty());
    }
}
