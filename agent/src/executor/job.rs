//! One job's task: run the backend under the deadline, then hand the board
//! exactly one terminal frame — unless the job was cancelled first.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::Shared;
use super::board::{Board, Ticket};
use super::sink::BoardSink;
use crate::backend::{Backend, BackendError, Job, JobResult};
use crate::protocol::{ErrorCode, JobId, Outbound, Tokens};

/// Runs `job` on `backend` until it ends, its deadline passes, or
/// `cancel_rx` resolves (cancel or session end).
pub(super) async fn drive(
    shared: Arc<Shared>,
    ticket: Ticket,
    job: Job,
    backend: Arc<dyn Backend>,
    arrived: Instant,
    deadline: Instant,
    cancel_rx: oneshot::Receiver<()>,
) {
    let job_id = job.job_id.clone();
    debug_assert_eq!(job_id, ticket.job_id);
    let mut guard = SlotGuard {
        board: shared.board.clone(),
        ticket: ticket.clone(),
        armed: true,
    };
    let mut sink = BoardSink::new(
        ticket.clone(),
        shared.board.clone(),
        shared.budget.clone(),
        shared.budget_bytes_max,
    );
    let mut shutdown_rx = shared.shutdown.subscribe();
    let outcome = tokio::select! {
        biased;
        _ = cancel_rx => {
            // Cancelled or the session ended: the board has already freed
            // the slot and purged the job's frames. Dropping the execute
            // future here closes the backend connection.
            guard.armed = false;
            debug!(%job_id, "job stopped by cancel or session end");
            return;
        }
        _ = shutdown_rx.wait_for(|down| *down) => None,
        r = tokio::time::timeout_at(deadline, backend.execute(&job, &mut sink)) => Some(r),
    };
    guard.armed = false;
    let now = Instant::now();
    let duration_ms = millis(now - arrived);
    let terminal = match outcome {
        None => Terminal::Failed(ErrorCode::Internal, "agent is shutting down".into()),
        Some(Ok(Ok(result))) => Terminal::Done(result),
        Some(Ok(Err(BackendError::Sink(_)))) => return, // no longer live: nothing is due
        Some(Ok(Err(err))) => {
            warn!(%job_id, error_code = err.code().as_str(), error = %err, "backend error");
            // The detail stays in this log line; the coordinator gets a
            // short text per class (issue 13: no LAN address, URL or body).
            Terminal::Failed(err.code(), err.public_message())
        }
        Some(Err(_elapsed)) => Terminal::Failed(ErrorCode::BackendTimeout, "deadline_ms elapsed".into()),
    };
    shared.finish(
        &ticket,
        terminal.frame(job_id, duration_ms, &sink),
        terminal.code(),
        duration_ms,
        sink.output_tokens(),
        now,
    );
}

enum Terminal {
    Done(JobResult),
    Failed(ErrorCode, String),
}

impl Terminal {
    fn code(&self) -> Option<ErrorCode> {
        match self {
            Terminal::Done(_) => None,
            Terminal::Failed(code, _) => Some(*code),
        }
    }

    fn frame(&self, job_id: JobId, duration_ms: u64, sink: &BoardSink) -> String {
        match self {
            Terminal::Done(result) => Outbound::JobDone {
                job_id,
                tokens: Tokens {
                    input: result.input_tokens.unwrap_or(0),
                    output: result.output_tokens.unwrap_or(0),
                },
                duration_ms,
            },
            Terminal::Failed(code, message) => Outbound::JobError {
                job_id,
                error_code: *code,
                message: message.clone(),
                tokens_emitted: sink.output_tokens(),
                bytes_emitted: sink.bytes_emitted(),
            },
        }
        .to_text()
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Frees the slot if the task ends without reaching its terminal frame: a
/// panic in a backend must not leak capacity. Aborted tasks (session end)
/// find their entry already gone, so the guard does nothing for them.
struct SlotGuard {
    board: Arc<Board>,
    ticket: Ticket,
    armed: bool,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if self.armed {
            let frame = Outbound::JobError {
                job_id: self.ticket.job_id.clone(),
                error_code: ErrorCode::Internal,
                message: "job task ended unexpectedly".into(),
                tokens_emitted: 0,
                bytes_emitted: 0,
            };
            // Either the terminal frame is queued now, or the job had already
            // left the board; both keep "exactly one terminal frame".
            let _ = self.board.finish(&self.ticket, frame.to_text());
        }
    }
}
