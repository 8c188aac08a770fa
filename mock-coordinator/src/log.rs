//! [`Log`]: the coordinator's record, shared with the harness.
//!
//! One `Log` outlives coordinator restarts: simctl creates it outside the
//! host and hands it to every new [`crate::Coordinator`]. Besides the
//! records it holds the schedule, the RNG and the driver's progress, so a
//! restarted coordinator continues where the previous one stopped.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::framelog::FrameLog;
use crate::record::{FrameRecord, HeartbeatRecord, JobRecord, Note, ReadWindow, SessionRecord, Violation};
use crate::segmented::Segmented;
use crate::state::LogState;
use crate::summary::Summary;

/// Shared, cloneable handle to the record.
///
/// Concurrency: one `std::sync::Mutex` guards all of it. Every task of
/// every connection (reader, writer) and the job driver take it for one
/// short synchronous update and never hold it across an `.await`; the
/// harness takes it only to copy snapshots out.
#[derive(Clone, Default)]
pub struct Log {
    inner: Arc<Mutex<LogState>>,
}

/// Every list of the record at one instant, for writing out as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct LogSnapshot {
    pub sessions: Vec<SessionRecord>,
    /// In submission order ([`JobRecord::index`] is the position).
    pub jobs: Segmented<JobRecord>,
    pub frames: FrameLog,
    pub frames_dropped: u64,
    pub heartbeats: Vec<HeartbeatRecord>,
    pub capabilities: Vec<(u64, Value)>,
    pub violations: Vec<Violation>,
    pub read_windows: Vec<ReadWindow>,
    pub notes: Vec<Note>,
    pub summary: Summary,
}

impl Log {
    pub fn new() -> Log {
        Log::default()
    }

    /// Locks the state. A panic elsewhere while the lock was held cannot
    /// leave the records half-written in a way that matters more than
    /// losing them, so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one synchronous update under the lock.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut LogState) -> R) -> R {
        f(&mut self.lock())
    }

    /// Every frame in and out, in the order they were recorded.
    pub fn frames(&self) -> Vec<FrameRecord> {
        self.lock().frames.iter().map(|f| f.to_record()).collect()
    }

    /// Frames not kept because the bound [`crate::FRAME_RECORDS_MAX`] was hit.
    pub fn frames_dropped(&self) -> u64 {
        self.lock().frames_dropped
    }

    /// Every job submission in submission order.
    pub fn jobs(&self) -> Vec<JobRecord> {
        self.lock().jobs.iter().cloned().collect()
    }

    /// Whether `test` holds for every job submission, looked at under the
    /// lock without copying them (a harness polls this while a run settles).
    pub fn all_jobs(&self, test: impl FnMut(&JobRecord) -> bool) -> bool {
        self.lock().jobs.iter().all(test)
    }

    pub fn heartbeats(&self) -> Vec<HeartbeatRecord> {
        self.lock().heartbeats.clone()
    }

    /// `(connection, capabilities frame)` for every `capabilities` received.
    pub fn capabilities(&self) -> Vec<(u64, Value)> {
        self.lock().capabilities.clone()
    }

    /// One record per connection, in connection order.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.lock().sessions.clone()
    }

    /// Protocol violations committed by the agent.
    pub fn violations(&self) -> Vec<Violation> {
        self.lock().violations.clone()
    }

    /// Windows in which a connection's reader was paused or slowed.
    pub fn read_blocked_windows(&self) -> Vec<ReadWindow> {
        self.lock().read_windows.clone()
    }

    /// Scripted actions that could not be carried out, with the reason.
    pub fn notes(&self) -> Vec<Note> {
        self.lock().notes.clone()
    }

    /// Re-sends (`[[coordinator.duplicates]]`) whose time has come or is
    /// known but that have not been written yet, held-back ones included.
    /// A harness must not call the world settled while this is not 0.
    pub fn resends_pending(&self) -> usize {
        self.lock().resends.due_count()
    }

    /// Metrics over the record so far.
    pub fn summary(&self) -> Summary {
        Summary::of(&self.lock())
    }

    /// What a person needs at the end of a run (connections, heartbeat
    /// figures, answers, waiting jobs, races, end-of-run checks), judged
    /// as of `end_us` on the script clock.
    pub fn digest(&self, end_us: u64) -> Digest {
        Digest::of(&self.lock(), end_us)
    }

    /// Every list, moved out rather than copied, for a harness whose run is
    /// over: the record is left empty (and its indexes with it), so a task
    /// that still wrote to it would write to a fresh record that nobody
    /// reads. At the end of a long run the lists are most of the memory a
    /// coordinator holds, and [`Log::snapshot`] would hold them twice.
    pub fn take_snapshot(&self) -> LogSnapshot {
        let mut s = self.lock();
        let summary = Summary::of(&s);
        s.jobs_by_id.clear();
        // The run is over: the jobs still streaming are read as they are.
        for job in &mut s.jobs {
            job.bytes.seal();
        }
        LogSnapshot {
            sessions: std::mem::take(&mut s.sessions),
            jobs: std::mem::take(&mut s.jobs),
            frames: std::mem::take(&mut s.frames).finish(),
            frames_dropped: s.frames_dropped,
            heartbeats: std::mem::take(&mut s.heartbeats),
            capabilities: std::mem::take(&mut s.capabilities),
            violations: std::mem::take(&mut s.violations),
            read_windows: std::mem::take(&mut s.read_windows),
            notes: std::mem::take(&mut s.notes),
            summary,
        }
    }

    /// Every list at once, taken under one lock so they agree.
    pub fn snapshot(&self) -> LogSnapshot {
        let s = self.lock();
        LogSnapshot {
            sessions: s.sessions.clone(),
            jobs: s.jobs.clone(),
            frames: s.frames.clone().finish(),
            frames_dropped: s.frames_dropped,
            heartbeats: s.heartbeats.clone(),
            capabilities: s.capabilities.clone(),
            violations: s.violations.clone(),
            read_windows: s.read_windows.clone(),
            notes: s.notes.clone(),
            summary: Summary::of(&s),
        }
    }
}
