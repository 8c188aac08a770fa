//! The board: the table of jobs in flight and the outbound frame queue, under
//! one lock.
//!
//! Keeping both behind a single `Mutex` is what makes the executor's
//! guarantees structural rather than a matter of careful ordering:
//!
//! - a job is in flight exactly while it has an entry in `jobs`;
//! - a frame of a job can be queued only while that entry exists;
//! - the terminal frame is queued in the same critical section that removes
//!   the entry (slot freed first, frame queued second), so no one can ever
//!   queue a second terminal frame, and a cancel that finds no entry knows
//!   the terminal frame is already on its way;
//! - a cancel removes the entry and purges the job's queued frames in one
//!   critical section, so nothing of that job is written after it;
//! - every admission gets a [`Ticket`]: the job id plus a generation drawn
//!   from a counter under the lock. A job task can queue a chunk or its
//!   terminal frame only while the entry under its id still has its
//!   generation. Keyed by id alone, a task of a cancelled job that was
//!   mid-poll when the cancel came (on the multi-thread runtime, past its
//!   own cancel check) could push a chunk, or its `job_done`, into the entry
//!   of a new job re-sent with the same id: the new job would then lose its
//!   slot and its own terminal frame. Tickets make that structural too.
//!   (turmoil runs each host on one thread and cannot see this race; the
//!   multi-thread stress test `executor_stress` in the agent's tests does.)
//!
//! The lock is a `std::sync::Mutex`, held only for a few map and queue
//! operations and never across an `.await`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Notify, OwnedSemaphorePermit, oneshot};

use crate::observer::{AgentEvent, SharedObserver};
use crate::protocol::JobId;

/// One admission of a job: its id and the generation the board gave it.
/// A job task holds its ticket and presents it for every chunk and for its
/// terminal frame; an entry with the same id but another generation is a
/// different job (a re-send after a cancel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub job_id: JobId,
    generation: u64,
}

/// One queued outbound frame.
#[derive(Debug)]
pub struct Frame {
    /// The generation of the admission the frame belongs to (unique per
    /// board, so it names one admission even when its id is re-sent), when a
    /// cancel must be able to purge it. A plain number rather than the
    /// [`Ticket`]: chunk frames are the hot path, and this keeps them free of
    /// the id's reference count. Rejections of jobs that never took a slot
    /// carry `None`: a `job_error` answering a duplicate submission must
    /// survive a cancel of the original.
    pub job: Option<u64>,
    pub kind: FrameKind,
    /// Budget held by a `job_chunk` frame; released when the frame leaves
    /// the queue (written or purged).
    permit: Option<OwnedSemaphorePermit>,
}

/// What a queued frame carries.
#[derive(Debug)]
pub enum FrameKind {
    Text(String),
    Ping,
    /// The last frame of a graceful shutdown: the writer sends a close frame,
    /// flushes and stops.
    Close,
}

impl Frame {
    fn len(&self) -> usize {
        match &self.kind {
            FrameKind::Text(text) => text.len(),
            FrameKind::Ping | FrameKind::Close => 0,
        }
    }
}

/// Result of asking for a slot.
#[derive(Debug)]
pub enum Admission {
    /// The job holds a slot under `Ticket`. The receiver resolves when the
    /// job is cancelled or its session ends (the sender is dropped with the
    /// entry).
    Admitted(Ticket, oneshot::Receiver<()>),
    Duplicate,
    Full,
    /// The session is ending: no new work is accepted.
    Closing,
}

/// Why a control frame could not be queued.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("outbound control queue is full ({0} frames or their byte bound): the coordinator stopped reading")]
    ControlFull(usize),
    #[error("the session is closed")]
    Closed,
}

struct Entry {
    /// The admission this entry belongs to.
    generation: u64,
    /// Dropped to tell the job's task to stop.
    _cancel_tx: oneshot::Sender<()>,
}

#[derive(Default)]
struct Inner {
    jobs: BTreeMap<JobId, Entry>,
    /// The generations of the entries in `jobs`, kept beside them so that
    /// the per-chunk check "does this admission still hold its slot" is an
    /// integer lookup, not a comparison of job-id strings (issued in rising
    /// order, so every insert lands at the end).
    live_generations: BTreeSet<u64>,
    /// The generation the next admission gets.
    next_generation: u64,
    queue: VecDeque<Frame>,
    /// Frames in `queue` that hold no budget (terminal, rejections, pings…).
    control_frames: usize,
    /// Bytes of those frames.
    control_bytes: usize,
    queued_bytes: usize,
    queued_bytes_high_water: usize,
    closing: bool,
    closed: bool,
}

/// Shared by the session's read loop (admit, cancel, reject), the job tasks
/// (chunks, terminal frames) and the writer task (pop).
pub struct Board {
    inner: Mutex<Inner>,
    /// Wakes the writer when the queue goes from empty to non-empty (or the
    /// board closes). `notify_one` stores a permit, so a wake-up sent while
    /// the writer is busy is not lost.
    frame_ready: Notify,
    /// Tells the session that the control queue overflowed (stored permit:
    /// the session may be busy when it happens).
    overflow: Notify,
    jobs_in_flight_max: usize,
    control_frames_max: usize,
    /// Control frames are bounded in bytes as well as in count: a count alone
    /// lets a few large frames (a long rejection, a large `capabilities`)
    /// grow the queue without a byte limit.
    control_bytes_max: usize,
    observer: SharedObserver,
}

impl Board {
    pub fn new(
        jobs_in_flight_max: usize,
        control_frames_max: usize,
        control_bytes_max: usize,
        observer: SharedObserver,
    ) -> Self {
        debug_assert!(jobs_in_flight_max > 0);
        Self {
            inner: Mutex::new(Inner::default()),
            frame_ready: Notify::new(),
            overflow: Notify::new(),
            jobs_in_flight_max,
            control_frames_max,
            control_bytes_max,
            observer,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock is a bug in the executor; carrying
        // on with the data is still the best way to keep other jobs alive.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Jobs holding a slot now.
    pub fn in_flight(&self) -> usize {
        self.lock().jobs.len()
    }

    /// Takes a slot for `job_id` unless it is a duplicate, the board is full,
    /// or the session is ending.
    pub fn admit(&self, job_id: JobId) -> Admission {
        let mut inner = self.lock();
        if inner.closing || inner.closed {
            return Admission::Closing;
        }
        if inner.jobs.contains_key(&job_id) {
            return Admission::Duplicate;
        }
        if inner.jobs.len() >= self.jobs_in_flight_max {
            return Admission::Full;
        }
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let generation = inner.next_generation;
        inner.next_generation += 1;
        let entry = Entry {
            generation,
            _cancel_tx: cancel_tx,
        };
        inner.jobs.insert(job_id.clone(), entry);
        inner.live_generations.insert(generation);
        let in_flight = inner.jobs.len();
        debug_assert_eq!(in_flight, inner.live_generations.len());
        debug_assert!(in_flight <= self.jobs_in_flight_max);
        self.observer.on_event(AgentEvent::JobAdmitted {
            job_id: job_id.clone(),
            in_flight,
        });
        Admission::Admitted(Ticket { job_id, generation }, cancel_rx)
    }

    /// Whether `ticket`'s admission still holds its slot.
    fn holds(inner: &Inner, ticket: &Ticket) -> bool {
        let live = inner.live_generations.contains(&ticket.generation);
        debug_assert_eq!(
            live,
            inner
                .jobs
                .get(&ticket.job_id)
                .is_some_and(|entry| entry.generation == ticket.generation),
            "the generation index disagrees with the jobs"
        );
        live
    }

    /// The jobs holding a slot, in id order.
    pub fn live_jobs(&self) -> Vec<JobId> {
        self.lock().jobs.keys().cloned().collect()
    }

    /// Whether `job_id` holds a slot.
    pub fn is_live(&self, job_id: &JobId) -> bool {
        self.lock().jobs.contains_key(job_id)
    }

    /// Cancels a live job: frees its slot, purges its queued frames and wakes
    /// its task. Returns `false` when the job is not in flight (unknown, or
    /// its terminal frame is already queued).
    pub fn cancel(&self, job_id: &JobId) -> bool {
        let mut inner = self.lock();
        let Some(entry) = inner.jobs.remove(job_id) else {
            return false;
        };
        inner.live_generations.remove(&entry.generation);
        let in_flight = inner.jobs.len();
        self.observer.on_event(AgentEvent::SlotFreed {
            job_id: job_id.clone(),
            in_flight,
            cancelled: true,
        });
        let purged: Vec<Frame> = {
            let (keep, purge): (VecDeque<Frame>, VecDeque<Frame>) =
                inner.queue.drain(..).partition(|f| f.job != Some(entry.generation));
            inner.queue = keep;
            purge.into()
        };
        for frame in &purged {
            Self::account_removed(&mut inner, frame);
        }
        true
    }

    /// Queues a `job_chunk` frame of a live admission. Returns the frame
    /// back when it is no longer live (cancelled, session ended, or its id
    /// now belongs to a re-sent job).
    pub fn push_chunk(&self, ticket: &Ticket, text: String, permit: OwnedSemaphorePermit) -> Result<(), String> {
        let mut inner = self.lock();
        if !Self::holds(&inner, ticket) || inner.closed {
            return Err(text);
        }
        let frame = Frame {
            job: Some(ticket.generation),
            kind: FrameKind::Text(text),
            permit: Some(permit),
        };
        self.enqueue(&mut inner, frame);
        Ok(())
    }

    /// Frees the slot of a live admission and queues its terminal frame, in
    /// that order and atomically. Returns `false` (and queues nothing) when
    /// the admission was cancelled first: then no terminal frame is due, and
    /// an entry of a re-sent job under the same id is left untouched.
    pub fn finish(&self, ticket: &Ticket, terminal: String) -> Result<bool, QueueError> {
        let mut inner = self.lock();
        if !Self::holds(&inner, ticket) {
            return Ok(false);
        }
        inner.jobs.remove(&ticket.job_id);
        inner.live_generations.remove(&ticket.generation);
        let in_flight = inner.jobs.len();
        self.observer.on_event(AgentEvent::SlotFreed {
            job_id: ticket.job_id.clone(),
            in_flight,
            cancelled: false,
        });
        self.push_control_locked(&mut inner, Some(ticket.generation), FrameKind::Text(terminal))?;
        Ok(true)
    }

    /// Queues a frame that holds no budget: a rejection, a heartbeat, a ping.
    pub fn push_control(&self, kind: FrameKind) -> Result<(), QueueError> {
        let mut inner = self.lock();
        self.push_control_locked(&mut inner, None, kind)
    }

    fn push_control_locked(&self, inner: &mut Inner, job: Option<u64>, kind: FrameKind) -> Result<(), QueueError> {
        if inner.closed {
            return Err(QueueError::Closed);
        }
        let frame = Frame {
            job,
            kind,
            permit: None,
        };
        if inner.control_frames >= self.control_frames_max || inner.control_bytes + frame.len() > self.control_bytes_max
        {
            self.overflow.notify_one();
            return Err(QueueError::ControlFull(inner.control_frames));
        }
        inner.control_frames += 1;
        inner.control_bytes += frame.len();
        self.enqueue(inner, frame);
        Ok(())
    }

    fn enqueue(&self, inner: &mut Inner, frame: Frame) {
        inner.queued_bytes += frame.len();
        if inner.queued_bytes > inner.queued_bytes_high_water {
            inner.queued_bytes_high_water = inner.queued_bytes;
            self.observer.on_event(AgentEvent::OutboundQueued {
                bytes: inner.queued_bytes,
                frames: inner.queue.len() + 1,
            });
        }
        let was_empty = inner.queue.is_empty();
        inner.queue.push_back(frame);
        if was_empty {
            self.frame_ready.notify_one();
        }
    }

    fn account_removed(inner: &mut Inner, frame: &Frame) {
        inner.queued_bytes -= frame.len();
        if frame.permit.is_none() {
            inner.control_frames -= 1;
            inner.control_bytes -= frame.len();
        }
    }

    /// Takes the oldest queued frame (for the writer). Its budget is released
    /// when the returned frame's permit is dropped, which [`Frame::into_kind`]
    /// does.
    pub fn pop(&self) -> Option<Frame> {
        let mut inner = self.lock();
        let frame = inner.queue.pop_front()?;
        Self::account_removed(&mut inner, &frame);
        Some(frame)
    }

    /// Waits until a frame may be queued (the writer calls this when `pop`
    /// found nothing).
    pub async fn frame_ready(&self) {
        self.frame_ready.notified().await;
    }

    /// Starts a graceful end: no new admissions; existing jobs carry on until
    /// they are finished or cancelled.
    pub fn start_closing(&self) {
        self.lock().closing = true;
    }

    /// Ends the session's work: every job loses its slot (its task is told to
    /// stop), the queue is dropped, nothing more can be queued. Returns the
    /// ids of the jobs that were still in flight.
    pub fn close(&self) -> Vec<JobId> {
        let mut inner = self.lock();
        inner.closed = true;
        inner.closing = true;
        let jobs = std::mem::take(&mut inner.jobs);
        inner.live_generations.clear();
        let mut remaining = jobs.len();
        for job_id in jobs.keys() {
            remaining -= 1;
            self.observer.on_event(AgentEvent::SlotFreed {
                job_id: job_id.clone(),
                in_flight: remaining,
                cancelled: true,
            });
        }
        inner.queue.clear();
        inner.queued_bytes = 0;
        inner.control_frames = 0;
        inner.control_bytes = 0;
        self.frame_ready.notify_one();
        jobs.into_keys().collect()
    }

    /// Whether [`Board::close`] has run.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Resolves once a control frame was refused because the control queue
    /// is full: the session must end.
    pub async fn overflowed(&self) {
        self.overflow.notified().await;
    }

    /// Queued frames and bytes now (for tests and the memory bound).
    pub fn queued(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.queue.len(), inner.queued_bytes)
    }

    /// The most bytes ever queued at once on this board.
    pub fn queued_bytes_high_water(&self) -> usize {
        self.lock().queued_bytes_high_water
    }
}

impl Frame {
    /// The payload, releasing the frame's budget.
    pub fn into_kind(self) -> FrameKind {
        drop(self.permit);
        self.kind
    }
}
