//! Steady state: the read loop, heartbeats, pings, the idle timeout, and
//! teardown.
//!
//! The loop never awaits outbound capacity: every inbound frame is handled
//! by synchronous executor calls that only touch the board. A coordinator
//! that stops reading therefore still gets its jobs rejected or admitted and
//! its cancels processed; the writer's timeout, not the read loop, decides
//! when the session has stalled.

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant, MissedTickBehavior, interval_at, sleep_until, timeout};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, warn};

use super::rediscovery::Rediscovery;
use super::writer::{self, WriterError};
use super::{SessionCtx, SessionEnd, WsStream};
use crate::clock::rfc3339_ms;
use crate::executor::board::{FrameKind, QueueError};
use crate::executor::{Executor, ExecutorLimits};
use crate::observer::AgentEvent;
use crate::protocol::{DecodeError, ErrorCode, Inbound, Outbound, decode_inbound};

/// Steady-state loop of one session.
pub(super) async fn run(ws: WsStream, ctx: &SessionCtx<'_>, shutdown: &mut watch::Receiver<bool>) -> SessionEnd {
    let cfg = &ctx.config.session;
    let limits = ExecutorLimits {
        max_concurrent: ctx.config.limits.max_concurrent as usize,
        outbound_queue_bytes_max: cfg.outbound_queue_bytes_max,
        outbound_control_frames_max: cfg.outbound_control_frames_max,
        outbound_control_bytes_max: cfg.outbound_control_bytes_max,
    };
    let mut executor = Executor::new(
        ctx.routes.clone(),
        limits,
        ctx.stats.clone(),
        ctx.clock.clone(),
        ctx.observer.clone(),
    );
    let board = executor.board().clone();
    let (sink, mut stream) = ws.split();
    let write_timeout = Duration::from_millis(cfg.write_timeout_ms);
    // The writer task: sole owner of the sink. Its handle is held here and
    // the task is aborted at teardown if it has not finished by then.
    let mut writer = tokio::spawn(writer::run(sink, board.clone(), write_timeout));
    // One task per admitted job; aborted and joined at teardown.
    let mut tasks: JoinSet<()> = JoinSet::new();
    let now = Instant::now();
    let heartbeat_period = Duration::from_millis(cfg.heartbeat_interval_ms);
    let mut heartbeat = interval_at(now + heartbeat_period, heartbeat_period);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let ping_period = Duration::from_millis(cfg.ping_interval_ms);
    let mut ping = interval_at(now + ping_period, ping_period);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut rediscovery = Rediscovery::new(ctx.backends, ctx.config, &ctx.routes);
    let idle = Duration::from_millis(cfg.idle_timeout_ms);
    let mut idle_deadline = now + idle;

    let reason = loop {
        tokio::select! {
            biased;
            _ = crate::deps::shutdown_requested(shutdown) => {
                drain_gracefully(&executor, &mut tasks, &mut writer, cfg.shutdown_flush_timeout_ms).await;
                break None;
            }
            done = &mut writer => break Some(writer_end(done)),
            _ = board.overflowed() => break Some(QueueError::ControlFull(cfg.outbound_control_frames_max).to_string()),
            _ = heartbeat.tick() => {
                executor.log_pending_rejections();
                if let Err(err) = board.push_control(FrameKind::Text(heartbeat_frame(ctx, &executor))) {
                    break Some(err.to_string());
                }
            }
            _ = ping.tick() => {
                if let Err(err) = board.push_control(FrameKind::Ping) {
                    break Some(err.to_string());
                }
            }
            routes = rediscovery.next() => {
                let frame = super::capabilities(ctx.config, &routes).to_text();
                executor.set_routes(routes);
                if let Err(err) = board.push_control(FrameKind::Text(frame)) {
                    break Some(err.to_string());
                }
            }
            Some(joined) = tasks.join_next() => {
                if let Err(err) = joined {
                    // A job task panicked; its slot guard already queued the
                    // terminal frame and freed the slot.
                    warn!(%err, "job task failed");
                }
            }
            msg = stream.next() => {
                idle_deadline = Instant::now() + idle;
                if let Err(reason) = on_message(msg, ctx, &executor, &mut tasks) {
                    break Some(reason);
                }
            }
            _ = sleep_until(idle_deadline) => break Some(format!("no inbound frame for {} ms", cfg.idle_timeout_ms)),
        }
    };
    let lost = executor.close();
    if !lost.is_empty() {
        warn!(
            jobs = lost.len(),
            "session ended with jobs in flight; they are cancelled"
        );
    }
    tasks.shutdown().await;
    writer.abort();
    debug_assert_eq!(executor.in_flight(), 0, "every slot is free after teardown");
    match reason {
        None => SessionEnd::Shutdown,
        Some(reason) => SessionEnd::Ended { reason },
    }
}

fn writer_end(done: Result<Result<(), WriterError>, tokio::task::JoinError>) -> String {
    match done {
        Ok(Ok(())) => "writer stopped".into(),
        Ok(Err(err)) => err.to_string(),
        Err(err) => format!("writer task failed: {err}"),
    }
}

/// Handles one inbound WebSocket item. `Err` ends the session.
fn on_message(
    msg: Option<Result<Message, WsError>>,
    ctx: &SessionCtx<'_>,
    executor: &Executor,
    tasks: &mut JoinSet<()>,
) -> Result<(), String> {
    match msg {
        Some(Ok(Message::Text(text))) => on_text(&text, ctx, executor, tasks).map_err(|e| e.to_string()),
        // Binary frames are never sent and ignored on receipt (protocol.md);
        // tungstenite answers pings itself.
        Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(()),
        Some(Ok(Message::Close(frame))) => Err(format!("coordinator closed the session: {frame:?}")),
        Some(Err(err)) => Err(format!("read failed: {err}")),
        None => Err("coordinator connection ended".into()),
    }
}

/// Handles one inbound text frame. Decode errors are counted and logged,
/// never fatal; only an overflowing control queue ends the session.
fn on_text(text: &str, ctx: &SessionCtx<'_>, executor: &Executor, tasks: &mut JoinSet<()>) -> Result<(), QueueError> {
    match decode_inbound(text) {
        Ok(Inbound::Job(job)) => executor.dispatch(job, Instant::now(), tasks),
        Ok(Inbound::JobCancel { job_id }) => {
            executor.cancel(&job_id);
            Ok(())
        }
        Ok(Inbound::Other { kind }) => {
            debug!(%kind, "ignoring inbound frame of an unhandled type");
            Ok(())
        }
        Ok(other @ (Inbound::AuthChallenge { .. } | Inbound::AuthOk { .. } | Inbound::AuthFailed { .. })) => {
            // Only the type is logged: the frame's fields are the
            // coordinator's and may be arbitrarily long.
            reject_frame(ctx, format!("handshake frame `{}` in steady state", other.kind()));
            Ok(())
        }
        Err(DecodeError::InvalidJob { job_id, reason }) => {
            // An id in flight keeps its job: the bad frame is answered as a
            // duplicate so that no `invalid_job` can be mistaken for the
            // first job's terminal frame.
            let (code, message) = if executor.board().is_live(&job_id) {
                (
                    ErrorCode::DuplicateJob,
                    "a job with this job_id is in flight".to_string(),
                )
            } else {
                (ErrorCode::InvalidJob, reason)
            };
            executor.reject(job_id, code, &message)
        }
        Err(err) => {
            reject_frame(ctx, err.to_string());
            Ok(())
        }
    }
}

fn reject_frame(ctx: &SessionCtx<'_>, reason: String) {
    warn!(%reason, "inbound frame rejected");
    ctx.observer.on_event(AgentEvent::FrameRejected { reason });
}

fn heartbeat_frame(ctx: &SessionCtx<'_>, executor: &Executor) -> String {
    let snapshot = ctx
        .stats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .snapshot(Instant::now());
    Outbound::Heartbeat {
        queue_depth: u32::try_from(executor.in_flight()).unwrap_or(u32::MAX),
        tokens_per_sec_p50: snapshot.tokens_per_sec_p50,
        p50_latency_ms: snapshot.p50_latency_ms,
        p95_latency_ms: snapshot.p95_latency_ms,
        error_rate_60s: snapshot.error_rate_60s,
        last_error_at: snapshot.last_error_unix_ms.map(rfc3339_ms),
        last_error_code: snapshot.last_error_code,
    }
    .to_text()
}

/// Graceful shutdown: every job ends with a terminal frame, the queue is
/// written out and a close frame follows, all within `flush_timeout_ms`.
async fn drain_gracefully(
    executor: &Executor,
    tasks: &mut JoinSet<()>,
    writer: &mut tokio::task::JoinHandle<Result<(), WriterError>>,
    flush_timeout_ms: u64,
) {
    executor.shut_down_jobs();
    let drain = async {
        while tasks.join_next().await.is_some() {}
        debug_assert_eq!(executor.in_flight(), 0);
        if executor.board().push_control(FrameKind::Close).is_ok() {
            let _ = (&mut *writer).await;
        }
    };
    if timeout(Duration::from_millis(flush_timeout_ms), drain).await.is_err() {
        warn!(flush_timeout_ms, "graceful shutdown did not flush in time");
    }
}
