//! The mutable state behind a [`crate::Log`] and the small, lock-held
//! operations on it. Callers hold the log's mutex only for one of these
//! synchronous calls, never across an `.await`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::framelog::{FrameLog, NewFrame};
use crate::plan::Plan;
use crate::record::{
    CloseReason, HeartbeatRecord, JobRecord, Name, Names, Note, ReadWindow, SessionRecord, Violation, ViolationKind,
};
use crate::resend::Resends;
use crate::script::Script;
use crate::segmented::Segmented;

/// Most frame records kept; later frames are counted in `frames_dropped`
/// (and `records_complete` fails the run). A frame is kept in 32 bytes
/// (`FrameLog`), so the bound is ≈ 512 MB: about two simulated hours at 100
/// jobs/s (≈ 2 300 frames/s). 4 M, the bound while a frame took ≈ 180
/// bytes, cut a one-hour soak at 100 jobs/s off at 29 minutes.
pub const FRAME_RECORDS_MAX: usize = 16_000_000;
/// Most violations kept; a flood from a broken agent is counted instead.
pub const VIOLATIONS_MAX: usize = 100_000;
/// Most notes kept.
const NOTES_MAX: usize = 100_000;

/// The schedule shared by every coordinator instance built on one log: the
/// script, its precomputed plan and the host's one RNG, which continues
/// across restarts so no nonce or job id is ever drawn twice.
pub(crate) struct Schedule {
    pub script: Arc<Script>,
    pub plan: Arc<Plan>,
    pub rng: ChaCha8Rng,
}

/// How far the job driver got; lives in the log so that a restarted
/// coordinator continues the schedule instead of starting it again.
#[derive(Default)]
pub(crate) struct Progress {
    /// Next entry of `plan.timeline` to carry out.
    pub timeline_cursor: usize,
    /// Arrival index the next issued job gets.
    pub next_arrival: u64,
    /// Jobs issued so far by each closed-loop process (by `arrivals` index).
    pub closed_issued: BTreeMap<usize, u64>,
    /// Script time zero on the caller's clock, once a
    /// [`crate::StartOn::FirstSession`] coordinator set it; a restart keeps it.
    pub time_zero_us: Option<u64>,
}

/// The record indexes of one `job_id`'s submissions, in submission order:
/// almost always one, so it is kept without an allocation of its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Submissions {
    #[default]
    None,
    One(usize),
    Many(Vec<usize>),
}

impl Submissions {
    pub fn push(&mut self, index: usize) {
        *self = match std::mem::take(self) {
            Submissions::None => Submissions::One(index),
            Submissions::One(first) => Submissions::Many(vec![first, index]),
            Submissions::Many(mut all) => {
                all.push(index);
                Submissions::Many(all)
            }
        };
    }

    pub fn iter(&self) -> std::slice::Iter<'_, usize> {
        self.as_slice().iter()
    }

    pub fn as_slice(&self) -> &[usize] {
        match self {
            Submissions::None => &[],
            Submissions::One(index) => std::slice::from_ref(index),
            Submissions::Many(all) => all,
        }
    }
}

#[derive(Default)]
pub(crate) struct LogState {
    pub frames: FrameLog,
    pub frames_dropped: u64,
    pub jobs: Segmented<JobRecord>,
    /// Submissions by `job_id`, in submission order. Lookup only (never
    /// iterated, so its order leaks nowhere); its keys are the [`Name`]s
    /// the job records and the frame log share.
    pub jobs_by_id: FxHashMap<Name, Submissions>,
    /// Model names, shared by the job records.
    pub names: Names,
    pub heartbeats: Vec<HeartbeatRecord>,
    pub capabilities: Vec<(u64, Value)>,
    /// Indexed by `conn - 1`.
    pub sessions: Vec<SessionRecord>,
    pub violations: Vec<Violation>,
    pub violations_dropped: u64,
    pub read_windows: Vec<ReadWindow>,
    pub notes: Vec<Note>,
    pub schedule: Option<Schedule>,
    pub progress: Progress,
    /// Re-sends armed or due, waiting for the driver.
    pub resends: Resends,
}

impl LogState {
    /// Opens the record of a new connection and returns its number.
    pub fn open_session(&mut self, at_us: u64, handshake_mode: &str) -> u64 {
        let conn = self.sessions.len() as u64 + 1;
        self.sessions.push(SessionRecord {
            conn,
            connected_us: at_us,
            handshake_mode: handshake_mode.to_owned(),
            pubkey: None,
            agent_version: None,
            enrollment_code: None,
            auth_ok_us: None,
            closed_us: None,
            close_reason: None,
        });
        conn
    }

    pub fn session_mut(&mut self, conn: u64) -> Option<&mut SessionRecord> {
        let i = usize::try_from(conn).ok()?.checked_sub(1)?;
        self.sessions.get_mut(i)
    }

    /// Records a frame, or counts it in `frames_dropped` past
    /// [`FRAME_RECORDS_MAX`].
    pub fn push_frame(&mut self, record: NewFrame<'_>) {
        if !self.frames.push(record) {
            self.frames_dropped += 1;
        }
    }

    pub fn violation(&mut self, at_us: u64, conn: u64, kind: ViolationKind, job_id: Option<&str>, what: String) {
        if self.violations.len() >= VIOLATIONS_MAX {
            self.violations_dropped += 1;
            return;
        }
        self.violations.push(Violation {
            at_us,
            conn,
            kind,
            job_id: job_id.map(str::to_owned),
            what,
        });
    }

    pub fn note(&mut self, at_us: u64, what: String) {
        if self.notes.len() < NOTES_MAX {
            self.notes.push(Note { at_us, what });
        }
    }

    /// Appends a job record (its `index` is set here) and indexes its id.
    pub fn push_job(&mut self, mut record: JobRecord) -> usize {
        let index = self.jobs.len();
        record.index = index;
        record.model = self.names.share(record.model);
        if !record.job_id.is_empty() {
            match self.jobs_by_id.get_key_value(&*record.job_id) {
                // A re-send: one allocation for every submission of the id.
                Some((name, _)) => record.job_id = name.clone(),
                None => {
                    self.jobs_by_id.insert(record.job_id.clone(), Submissions::default());
                    self.frames.register_id(&record.job_id);
                }
            }
            if let Some(ids) = self.jobs_by_id.get_mut(&*record.job_id) {
                ids.push(index);
            }
        }
        self.jobs.push(record);
        index
    }

    /// Records the end of a connection (the first reason wins) and settles
    /// its jobs: written and open ones are lost, unwritten ones were never
    /// delivered.
    pub fn close_session(&mut self, conn: u64, at_us: u64, reason: CloseReason) {
        if let Some(s) = self.session_mut(conn)
            && s.closed_us.is_none()
        {
            s.closed_us = Some(at_us);
            s.close_reason = Some(reason);
        }
        for job in self.jobs.iter_mut().filter(|j| j.conn == Some(conn)) {
            // The connection's queue is gone with it: a cancel still in it
            // will never be written.
            job.cancel_in_queue = false;
            if !job.is_open() {
                continue;
            }
            if job.sent_us.is_some() {
                job.session_lost_us = Some(at_us);
                // Its frames end with the session: keep the bytes packed.
                job.bytes.seal();
            } else {
                job.undeliverable = Some("connection ended before the frame was written".into());
            }
        }
        for w in self.read_windows.iter_mut().filter(|w| w.conn == conn) {
            w.end_us.get_or_insert(at_us);
        }
    }
}

impl LogState {
    /// Closes the connections an earlier, crashed coordinator instance left
    /// open: their tasks died with it, so nobody else will.
    pub fn close_orphaned_sessions(&mut self, at_us: u64) {
        let open: Vec<u64> = self
            .sessions
            .iter()
            .filter(|s| s.closed_us.is_none())
            .map(|s| s.conn)
            .collect();
        for conn in open {
            self.close_session(conn, at_us, CloseReason::CoordinatorRestarted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::JobKind;

    /// Closing a session loses written jobs and marks unwritten ones undeliverable.
    #[test]
    fn close_settles_jobs() {
        let mut s = LogState::default();
        let conn = s.open_session(0, "normal");
        let mut written = JobRecord::new(0, JobKind::Normal, "a".into(), "m".into());
        written.conn = Some(conn);
        written.sent_us = Some(5);
        let mut queued = JobRecord::new(0, JobKind::Normal, "b".into(), "m".into());
        queued.conn = Some(conn);
        s.push_job(written);
        s.push_job(queued);
        s.close_session(conn, 10, CloseReason::AgentClosed);
        assert_eq!(s.jobs[0].session_lost_us, Some(10));
        assert!(s.jobs[1].undeliverable.is_some());
        assert_eq!(s.sessions[0].close_reason, Some(CloseReason::AgentClosed));
        s.close_session(conn, 20, CloseReason::ScriptedDisconnect);
        assert_eq!(s.sessions[0].closed_us, Some(10));
    }

    /// Submissions of one id share its name with the index, and keep their order.
    #[test]
    fn submissions_of_an_id_share_its_name() {
        let mut s = LogState::default();
        for id in ["a", "b", "a", "a"] {
            s.push_job(JobRecord::new(0, JobKind::Normal, id.into(), "m".into()));
        }
        assert_eq!(s.jobs_by_id["a"].as_slice(), &[0, 2, 3]);
        assert_eq!(s.jobs_by_id["b"], Submissions::One(1));
        assert!(s.jobs[0].job_id.shares(&s.jobs[3].job_id));
        assert!(s.jobs[0].model.shares(&s.jobs[1].model));
    }
}
