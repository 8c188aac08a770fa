//! The record of one job submission: what was sent, what came back, and the
//! outcome derived from both.

use sealed_bytes::ByteLog;
use serde::{Serialize, Serializer};

use super::Name;
use crate::script::MalformedKind;

/// Which kind of submission a [`JobRecord`] is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// A job of an arrival process.
    Normal,
    /// A re-send of the frame of the job with arrival index `of`.
    Duplicate { of: u64 },
    /// A deliberately broken job frame.
    Malformed(MalformedKind),
}

/// What makes the coordinator cancel a job, copied from the script when the
/// job was issued (rules that selected this job).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CancelTrigger {
    At { rule: usize, at_ms: u64 },
    AfterChunks { rule: usize, after_chunks: u32 },
    AfterSend { rule: usize, delay_ms: u64 },
    RaceCompletion { rule: usize },
}

/// One `job_chunk` attributed to the job: arrival time and decoded length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ChunkRecord {
    pub at_us: u64,
    pub len: usize,
}

/// A terminal frame's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Terminal {
    Done {
        input_tokens: u64,
        output_tokens: u64,
        duration_ms: u64,
    },
    Error {
        code: String,
        message: String,
        tokens_emitted: u64,
        bytes_emitted: Option<u64>,
    },
}

/// One terminal frame attributed to the job. More than one is a violation
/// (also recorded in the violations list) but all are kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TerminalRecord {
    pub at_us: u64,
    pub conn: u64,
    pub frame: Terminal,
}

/// The outcome of a job, derived from its record ([`JobRecord::outcome`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobOutcome {
    /// Never written to a connection (see [`JobRecord::undeliverable`]).
    Undeliverable,
    /// Written; no terminal, no cancel, connection still open.
    InFlight,
    /// First terminal was `job_done`.
    Done,
    /// First terminal was `job_error` with this `error_code`.
    Error(String),
    /// A cancel was written and no terminal followed (none is required).
    Cancelled,
    /// The connection ended with the job in flight.
    SessionLost,
}

impl JobOutcome {
    /// Short label used in summary counts (`error` for every error code).
    pub fn label(&self) -> &'static str {
        match self {
            JobOutcome::Undeliverable => "undeliverable",
            JobOutcome::InFlight => "in_flight",
            JobOutcome::Done => "done",
            JobOutcome::Error(_) => "error",
            JobOutcome::Cancelled => "cancelled",
            JobOutcome::SessionLost => "session_lost",
        }
    }
}

/// Everything about one job submission.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobRecord {
    /// Position in [`crate::Log::jobs`] (submission order, all kinds).
    pub index: usize,
    /// Arrival index (what `cancels[].job` and `duplicates[].job` name);
    /// `None` for duplicates and malformed frames.
    pub arrival: Option<u64>,
    /// Index into the script's `arrivals` of the process that issued it.
    pub rule: Option<usize>,
    pub kind: JobKind,
    /// The `job_id` as sent (not a UUID for some malformed kinds; empty when
    /// the frame carries none). Shared with the job index and with the
    /// frame records that name it.
    pub job_id: Name,
    /// Shared by every job of the model.
    pub model: Name,
    /// `deadline_ms` as sent; `None` when the field was omitted.
    pub deadline_ms: Option<u64>,
    /// Connection the frame was handed to; `None` when no session existed.
    pub conn: Option<u64>,
    /// When the script wanted the job sent.
    pub scheduled_us: u64,
    /// When the frame was completely written to the connection.
    pub sent_us: Option<u64>,
    pub cancel_plan: Vec<CancelTrigger>,
    pub chunks: Vec<ChunkRecord>,
    /// Decoded chunk bytes in arrival order (serialized as base64). Sealed
    /// (packed, with its digest) once no more frames are expected for the
    /// submission: its first terminal frame, a lost session, a later
    /// submission of its id, or the end of the run ([`crate::Log::take_snapshot`]).
    /// A chunk after that unseals it and is recorded all the same.
    #[serde(serialize_with = "as_base64")]
    pub bytes: ByteLog,
    pub terminals: Vec<TerminalRecord>,
    /// When the first `job_cancel` for this submission was written. A
    /// `job_cancel` names only an id, so it counts for every submission of
    /// that id on the connection that was written before it and still
    /// awaited frames (see README, "Attribution").
    pub cancel_sent_us: Option<u64>,
    /// `race_completion`: when the chunk that completed the stream was read
    /// and the cancel racing the terminal frame was queued.
    pub race_fired_us: Option<u64>,
    /// Set when the first terminal frame is read: whether a `job_cancel`
    /// for this submission had been written by then. For a
    /// `race_completion` cancel, `Some(true)` is a race actually run (the
    /// cancel was on the wire before the terminal was read), `Some(false)`
    /// a stale cancel.
    pub cancel_before_terminal: Option<bool>,
    /// Re-sends only: whether, when this frame was written, every earlier
    /// submission of the id on the connection had ended for the agent (its
    /// terminal frame read, or a `job_cancel` for it written). Then the
    /// agent must take it as a new job, and `duplicate_job` is a violation;
    /// otherwise either answer is legitimate (the earlier job may have ended
    /// while this frame was on its way).
    pub id_was_free: Option<bool>,
    /// A cancelled submission without a terminal frame stops receiving
    /// frames when a later submission of its id is written on its
    /// connection; this is when. Frames from then on belong to the later one.
    pub superseded_us: Option<u64>,
    /// When its connection ended while it was in flight.
    pub session_lost_us: Option<u64>,
    /// Why the frame was never written, if it was not.
    pub undeliverable: Option<String>,
    /// A cancel was queued (by a trigger or an `at` rule); keeps triggers
    /// from sending a second one.
    #[serde(skip)]
    pub(crate) cancel_queued: bool,
    /// A `job_cancel` naming this submission's id is in its connection's
    /// outbound queue and not yet written.
    #[serde(skip)]
    pub(crate) cancel_in_queue: bool,
}

fn as_base64<S: Serializer>(bytes: &ByteLog, s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes.bytes()))
}

impl JobRecord {
    /// The outcome: the first terminal wins, then a written cancel, then a
    /// lost session; a job never written is undeliverable.
    pub fn outcome(&self) -> JobOutcome {
        if let Some(first) = self.terminals.first() {
            return match &first.frame {
                Terminal::Done { .. } => JobOutcome::Done,
                Terminal::Error { code, .. } => JobOutcome::Error(code.clone()),
            };
        }
        if self.cancel_sent_us.is_some() {
            JobOutcome::Cancelled
        } else if self.undeliverable.is_some() {
            JobOutcome::Undeliverable
        } else if self.session_lost_us.is_some() {
            JobOutcome::SessionLost
        } else {
            JobOutcome::InFlight
        }
    }

    /// True while the job can still receive frames on its connection.
    pub(crate) fn is_open(&self) -> bool {
        self.terminals.is_empty() && self.session_lost_us.is_none() && self.undeliverable.is_none()
    }

    /// True while frames for its id may be attributed to it: written, open,
    /// and not superseded by a later submission of the id.
    pub(crate) fn awaits_frames(&self) -> bool {
        self.sent_us.is_some() && self.is_open() && self.superseded_us.is_none()
    }

    /// A fresh record with nothing received yet.
    pub(crate) fn new(index: usize, kind: JobKind, job_id: Name, model: Name) -> JobRecord {
        JobRecord {
            index,
            arrival: None,
            rule: None,
            kind,
            job_id,
            model,
            deadline_ms: None,
            conn: None,
            scheduled_us: 0,
            sent_us: None,
            cancel_plan: Vec::new(),
            chunks: Vec::new(),
            bytes: ByteLog::new(),
            terminals: Vec::new(),
            cancel_sent_us: None,
            race_fired_us: None,
            cancel_before_terminal: None,
            id_was_free: None,
            superseded_us: None,
            session_lost_us: None,
            undeliverable: None,
            cancel_queued: false,
            cancel_in_queue: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> JobRecord {
        JobRecord::new(0, JobKind::Normal, "j".into(), "m".into())
    }

    /// The first terminal decides the outcome even after a cancel.
    #[test]
    fn first_terminal_wins() {
        let mut r = record();
        r.cancel_sent_us = Some(5);
        r.terminals.push(TerminalRecord {
            at_us: 9,
            conn: 1,
            frame: Terminal::Error {
                code: "internal".into(),
                message: String::new(),
                tokens_emitted: 0,
                bytes_emitted: None,
            },
        });
        assert_eq!(r.outcome(), JobOutcome::Error("internal".into()));
    }

    /// Without a terminal: cancelled, then undeliverable, then lost, then in flight.
    #[test]
    fn outcome_precedence() {
        let mut r = record();
        assert_eq!(r.outcome(), JobOutcome::InFlight);
        r.session_lost_us = Some(1);
        assert_eq!(r.outcome(), JobOutcome::SessionLost);
        r.cancel_sent_us = Some(1);
        assert_eq!(r.outcome(), JobOutcome::Cancelled);
    }

    /// Reassembled bytes serialize as base64.
    #[test]
    fn bytes_serialize_as_base64() {
        let mut r = record();
        r.bytes = b"hi".to_vec().into();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["bytes"], "aGk=");
    }
}
