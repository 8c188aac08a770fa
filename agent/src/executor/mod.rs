//! The job executor: admission, capacity, cancel, deadlines, and exactly one
//! terminal frame per accepted job.
//!
//! - [`board`]: the jobs in flight and the outbound queue under one lock;
//!   every guarantee below is enforced there.
//! - [`sink`]: the `JobSink` a backend streams into.
//! - `job`: one job's task.
//! - [`reject_log`]: `out_of_capacity` logged at debug, summed at info.
//!
//! Guarantees (each has a test in `agent/tests/it/executor.rs`):
//! 1. Exactly one terminal frame (`job_done` or `job_error`) per accepted
//!    job, never two, also when a cancel races completion, a duplicate
//!    `job_id` arrives, or the session ends (then none: the session is gone).
//! 2. `out_of_capacity` only when `max_concurrent` jobs hold a slot at that
//!    instant; the slot is freed before the terminal frame is queued; the
//!    count cannot underflow or leak (a job's slot is its map entry).
//! 3. A cancel frees the slot, drops the backend call (closing its
//!    connection) and purges the job's queued frames.
//! 4. The deadline runs from the job's arrival and covers the whole job,
//!    outbound waits included; expiry gives `backend_timeout`.
//! 5. `invalid_job` for a bad job with a usable id; `duplicate_job` for an id
//!    in flight, the first job untouched.
//!
//! Every method the read loop calls is synchronous: inbound processing never
//! waits for outbound capacity.

pub mod board;
mod job;
pub mod reject_log;
pub mod sink;

use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant};
use tracing::{debug, info, warn};

use crate::backend::Job;
use crate::clock::SharedClock;
use crate::discovery::Routes;
use crate::observer::{AgentEvent, SharedObserver};
use crate::protocol::{ErrorCode, JobFrame, JobId, Outbound};
use crate::stats::Stats;
use board::{Admission, Board, FrameKind, QueueError, Ticket};
use reject_log::{RejectTally, Summary};

/// What the executor's parts share: the board, the outbound byte budget, the
/// statistics and the clock.
pub(crate) struct Shared {
    pub(crate) board: Arc<Board>,
    pub(crate) budget: Arc<Semaphore>,
    pub(crate) budget_bytes_max: usize,
    stats: Arc<Mutex<Stats>>,
    clock: SharedClock,
    observer: SharedObserver,
    /// Turned `true` once by [`Executor::shut_down_jobs`]; every job task
    /// watches it and ends with `job_error` `internal`.
    pub(crate) shutdown: watch::Sender<bool>,
    /// `out_of_capacity` rejections since the last info summary; locked
    /// only by the read loop's `reject`, for one count.
    rejections: Mutex<RejectTally>,
}

impl Shared {
    /// Queues a terminal frame through the board and records its outcome.
    fn finish(
        &self,
        ticket: &Ticket,
        text: String,
        code: Option<ErrorCode>,
        duration_ms: u64,
        output_tokens: u64,
        now: Instant,
    ) {
        let job_id = &ticket.job_id;
        match self.board.finish(ticket, text) {
            Ok(true) => {
                let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
                match code {
                    None => stats.record_done(now, duration_ms, output_tokens),
                    Some(code) => stats.record_error(now, self.clock.unix_ms(), code),
                }
            }
            Ok(false) => debug!(%job_id, "job was cancelled before its terminal frame"),
            Err(err) => warn!(%job_id, %err, "terminal frame dropped: the session is ending"),
        }
    }
}

/// Executor limits.
#[derive(Clone, Copy, Debug)]
pub struct ExecutorLimits {
    pub max_concurrent: usize,
    pub outbound_queue_bytes_max: usize,
    pub outbound_control_frames_max: usize,
    pub outbound_control_bytes_max: usize,
}

/// One session's executor. Created when a session reaches steady state and
/// closed when it ends.
pub struct Executor {
    shared: Arc<Shared>,
    routes: Arc<Routes>,
}

impl Executor {
    pub fn new(
        routes: Arc<Routes>,
        limits: ExecutorLimits,
        stats: Arc<Mutex<Stats>>,
        clock: SharedClock,
        observer: SharedObserver,
    ) -> Self {
        let budget_bytes_max = limits.outbound_queue_bytes_max.clamp(1, u32::MAX as usize);
        let board = Arc::new(Board::new(
            limits.max_concurrent,
            limits.outbound_control_frames_max,
            limits.outbound_control_bytes_max,
            observer.clone(),
        ));
        let shared = Shared {
            board,
            budget: Arc::new(Semaphore::new(budget_bytes_max)),
            budget_bytes_max,
            stats,
            clock,
            observer,
            shutdown: watch::Sender::new(false),
            rejections: Mutex::new(RejectTally::default()),
        };
        Self {
            shared: Arc::new(shared),
            routes,
        }
    }

    /// Routes jobs admitted from now on by `routes` (after a rediscovery).
    /// Jobs in flight keep the backend they were given.
    pub fn set_routes(&mut self, routes: Arc<Routes>) {
        self.routes = routes;
    }

    /// The board (the writer drains it; tests inspect it).
    pub fn board(&self) -> &Arc<Board> {
        &self.shared.board
    }

    /// Jobs executing now (the heartbeat's `queue_depth`).
    pub fn in_flight(&self) -> usize {
        self.shared.board.in_flight()
    }

    /// Admits `job` and spawns its task on `tasks`, or queues its rejection.
    /// Never waits. An error means the control queue overflowed: the session
    /// must end.
    pub fn dispatch(&self, job: JobFrame, arrived: Instant, tasks: &mut JoinSet<()>) -> Result<(), QueueError> {
        let job_id = job.job_id;
        if self.shared.board.is_live(&job_id) {
            return self.reject(job_id, ErrorCode::DuplicateJob, "a job with this job_id is in flight");
        }
        let Some(route) = self.routes.get(&job.model_id) else {
            return self.reject(job_id, ErrorCode::ModelNotLoaded, "no backend serves this model");
        };
        let backend = route.backend.clone();
        let (ticket, cancel_rx) = match self.shared.board.admit(job_id.clone()) {
            Admission::Admitted(ticket, rx) => (ticket, rx),
            Admission::Duplicate => {
                return self.reject(job_id, ErrorCode::DuplicateJob, "a job with this job_id is in flight");
            }
            Admission::Full => return self.reject(job_id, ErrorCode::OutOfCapacity, "agent at max_concurrent"),
            Admission::Closing => return self.reject(job_id, ErrorCode::Internal, "agent is shutting down"),
        };
        let deadline = arrived + Duration::from_millis(job.deadline_ms);
        let job = Job {
            job_id,
            model_id: job.model_id,
            request: job.request,
            format: job.format,
        };
        tasks.spawn(job::drive(
            self.shared.clone(),
            ticket,
            job,
            backend,
            arrived,
            deadline,
            cancel_rx,
        ));
        Ok(())
    }

    /// Queues a `job_error` for a job that never took a slot.
    pub fn reject(&self, job_id: JobId, code: ErrorCode, message: &str) -> Result<(), QueueError> {
        let in_flight = self.shared.board.in_flight();
        if code == ErrorCode::OutOfCapacity {
            self.log_out_of_capacity(&job_id, in_flight);
        } else {
            info!(%job_id, error_code = code.as_str(), in_flight, "rejecting job");
        }
        self.shared.observer.on_event(AgentEvent::JobRejected {
            job_id: job_id.clone(),
            code,
            in_flight,
        });
        let frame = Outbound::JobError {
            job_id,
            error_code: code,
            message: message.into(),
            tokens_emitted: 0,
            bytes_emitted: 0,
        };
        self.shared.board.push_control(FrameKind::Text(frame.to_text()))?;
        let mut stats = self.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.record_error(Instant::now(), self.shared.clock.unix_ms(), code);
        Ok(())
    }

    /// Logs one `out_of_capacity` rejection: at debug, and at info only as
    /// a periodic summary (see [`reject_log`]).
    fn log_out_of_capacity(&self, job_id: &JobId, in_flight: usize) {
        debug!(%job_id, error_code = "out_of_capacity", in_flight, "rejecting job");
        let mut tally = self.shared.rejections.lock().unwrap_or_else(|p| p.into_inner());
        match tally.count(Instant::now()) {
            Some(Summary::First) => info!(
                in_flight,
                "rejecting jobs out_of_capacity (at max_concurrent); further ones are summed every {}s",
                reject_log::OUT_OF_CAPACITY_SUMMARY_EVERY_S
            ),
            Some(Summary::Since { count, over }) => info!(
                rejected = count,
                over_s = over.as_secs(),
                in_flight,
                "rejected jobs out_of_capacity"
            ),
            None => {}
        }
    }

    /// Sums at info the `out_of_capacity` rejections not yet logged (see
    /// [`reject_log`]): called at each heartbeat and when the session ends,
    /// so the end of a burst is not left unsummed. Only the log changes.
    pub fn log_pending_rejections(&self) {
        let pending = self
            .shared
            .rejections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .flush(Instant::now());
        if let Some(Summary::Since { count, over }) = pending {
            info!(
                rejected = count,
                over_s = over.as_secs(),
                "rejected jobs out_of_capacity"
            );
        }
    }

    /// Handles `job_cancel`: frees the slot, purges queued frames, stops the
    /// backend call. Unknown or already finished jobs are ignored.
    pub fn cancel(&self, job_id: &JobId) -> bool {
        let cancelled = self.shared.board.cancel(job_id);
        if cancelled {
            info!(%job_id, "job cancelled");
        } else {
            debug!(%job_id, "cancel for a job not in flight (finished, or never seen)");
        }
        cancelled
    }

    /// Graceful shutdown: no new admissions, and every job in flight ends now
    /// with `job_error` `internal`, written by its own task (so the frame
    /// carries the tokens and bytes it emitted). The caller then waits until
    /// [`Executor::in_flight`] is zero.
    pub fn shut_down_jobs(&self) {
        self.shared.board.start_closing();
        self.shared.shutdown.send_replace(true);
    }

    /// Ends the session's work: frees every slot and tells every job task to
    /// stop; the caller then awaits `tasks.shutdown()`. Closes the budget so
    /// a producer waiting for it wakes up and stops.
    pub fn close(&self) -> Vec<JobId> {
        self.log_pending_rejections();
        let lost = self.shared.board.close();
        self.shared.budget.close();
        lost
    }
}
