//! The steady state of one authenticated connection.
//!
//! The WebSocket is split: a writer task (see [`crate::writer`]) owns the
//! write half, and this module's reader loop owns the read half. During a
//! scripted read pause the reader does not poll the socket at all, so the
//! agent's writes back up into the (simulated) TCP buffers and block, while
//! the writer goes on sending jobs and cancels on schedule.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::SplitStream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::clock::{ms_to_us, sleep_until_us};
use crate::coordinator::{Coordinator, SessionHandle};
use crate::frames;
use crate::inbound::{CancelOrder, InFrame, control_record, ingest};
use crate::record::{CloseReason, Dir, ReadBlock, ReadWindow};
use crate::writer::{self, CLOSE_WRITE_TIMEOUT, Effect, OUTBOUND_QUEUE_FRAMES, Outgoing, WriterEnd};

type WsStream<S> = SplitStream<WebSocketStream<S>>;

/// Longest the reader waits for a cancel that a frame fired to be written
/// before it decodes the next frame. The writer normally writes it at once;
/// it waits only when the agent has stopped reading (the socket is full),
/// and then the reader must go on reading, or both sides would block.
pub(crate) const TRIGGERED_CANCEL_WRITE_WAIT: Duration = Duration::from_millis(100);

/// Serves the steady state until either side ends the connection.
pub(crate) async fn run<S>(coord: Arc<Coordinator>, conn: u64, ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, mut stream) = ws.split();
    // The outbound queue: the driver and this reader produce, the writer
    // task consumes, in order.
    let (queue, queue_rx) = mpsc::channel(OUTBOUND_QUEUE_FRAMES);
    let drop_now = Arc::new(Notify::new());
    let superseded = Arc::new(Notify::new());
    // The writer task's handle: the reader loop watches it so that a failed
    // write or a scripted disconnect ends the session, and aborts it when
    // the session ends for another reason.
    let mut writer = tokio::spawn(writer::run(coord.clone(), conn, sink, queue_rx));
    let handle = SessionHandle {
        queue: queue.clone(),
        drop_now: drop_now.clone(),
        superseded: superseded.clone(),
    };
    coord.register_session(conn, handle);
    let mut reader = Reader {
        coord: &coord,
        conn,
        queue,
        window: None,
    };
    let ends = Ends {
        drop_now: &drop_now,
        superseded: &superseded,
    };
    let reason = reader.run(&mut stream, &mut writer, ends).await;
    coord.deregister_session(conn);
    reader.end_window(coord.now_us());
    drop(reader);
    writer.abort();
    if reason == CloseReason::AgentClosed {
        // tungstenite queued the reply to the agent's Close; one more read
        // flushes it (and then reports the closed connection).
        let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, stream.next()).await;
    }
    coord.close(conn, reason);
}

/// A read window of this connection that is still open in the record.
struct OpenWindow {
    /// Index into the log's `read_windows`.
    index: usize,
    end_us: u64,
}

/// What, besides the agent, can end a session: the notifies of its
/// [`SessionHandle`].
#[derive(Clone, Copy)]
struct Ends<'a> {
    drop_now: &'a Notify,
    superseded: &'a Notify,
}

struct Reader<'a> {
    coord: &'a Coordinator,
    conn: u64,
    /// Producer side of this connection's outbound queue, for cancels that
    /// chunk triggers fire.
    queue: mpsc::Sender<Outgoing>,
    window: Option<OpenWindow>,
}

fn writer_reason(end: Result<WriterEnd, JoinError>) -> CloseReason {
    match end {
        Ok(WriterEnd::Disconnected) => CloseReason::ScriptedDisconnect,
        Ok(WriterEnd::Failed(e)) => CloseReason::WriteFailed(e),
        Ok(WriterEnd::QueueClosed) => CloseReason::WriteFailed("outbound queue closed".into()),
        Err(e) => CloseReason::WriteFailed(format!("writer task ended: {e}")),
    }
}

/// Sleeps until `at_us`, or forever when there is no such time.
async fn sleep_until_opt(clock: &crate::Clock, at_us: Option<u64>) {
    match at_us {
        Some(at_us) => sleep_until_us(clock, at_us).await,
        None => std::future::pending().await,
    }
}

impl Reader<'_> {
    async fn run<S>(
        &mut self,
        stream: &mut WsStream<S>,
        writer: &mut JoinHandle<WriterEnd>,
        ends: Ends<'_>,
    ) -> CloseReason
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let script = self.coord.script();
        let clock = self.coord.clock();
        let idle_us = ms_to_us(script.idle_timeout_ms);
        // When the connection counts as dead if nothing arrives; pushed back
        // by every frame read and by the end of every read pause.
        let mut idle_deadline_us = (idle_us > 0).then(|| self.coord.now_us() + idle_us);
        loop {
            let now_us = self.coord.now_us();
            self.settle_window(now_us);
            if let Some(end_us) = script.read_pause_end_us(now_us) {
                self.open_window(now_us, ReadBlock::Pause, end_us);
                tokio::select! {
                    biased;
                    () = ends.drop_now.notified() => return CloseReason::ScriptedDisconnect,
                    () = ends.superseded.notified() => return CloseReason::Superseded,
                    end = &mut *writer => return writer_reason(end),
                    () = sleep_until_us(clock, end_us) => {}
                }
                idle_deadline_us = idle_deadline_us.map(|_| end_us + idle_us);
                continue;
            }
            let next_pause_us = script.next_read_pause_us(now_us);
            let msg = tokio::select! {
                biased;
                () = ends.drop_now.notified() => return CloseReason::ScriptedDisconnect,
                () = ends.superseded.notified() => return CloseReason::Superseded,
                end = &mut *writer => return writer_reason(end),
                () = sleep_until_opt(clock, next_pause_us) => continue,
                msg = stream.next() => msg,
                () = sleep_until_opt(clock, idle_deadline_us) => return CloseReason::IdleTimeout,
            };
            idle_deadline_us = idle_deadline_us.map(|_| self.coord.now_us() + idle_us);
            let msg = match msg {
                None => return CloseReason::AgentClosed,
                Some(Err(e)) => return CloseReason::ReadFailed(e.to_string()),
                Some(Ok(msg)) => msg,
            };
            if let Message::Close(_) = msg {
                let (at_us, conn) = (self.coord.now_us(), self.conn);
                self.coord.log().with(|s| {
                    let record = control_record(s, at_us, conn, Dir::In, "close", 0);
                    s.push_frame(record);
                });
                return CloseReason::AgentClosed;
            }
            // React per frame: a cancel this frame fired (a `race_completion`
            // cancel races the terminal frame that may already sit in our
            // read buffer) is written before the next frame is decoded.
            for written in self.handle(&msg) {
                tokio::select! {
                    biased;
                    () = ends.drop_now.notified() => return CloseReason::ScriptedDisconnect,
                    () = ends.superseded.notified() => return CloseReason::Superseded,
                    end = &mut *writer => return writer_reason(end),
                    // An error means the writer dropped it unwritten: it is
                    // ending, which the select above reports next time.
                    _ = written => {}
                    () = tokio::time::sleep(TRIGGERED_CANCEL_WRITE_WAIT) => self.note_cancel_waiting(),
                }
            }
            let Some(delay) = self.slow_read_delay() else { continue };
            tokio::select! {
                biased;
                () = ends.drop_now.notified() => return CloseReason::ScriptedDisconnect,
                () = ends.superseded.notified() => return CloseReason::Superseded,
                end = &mut *writer => return writer_reason(end),
                () = tokio::time::sleep(delay) => {}
            }
            // A slow reader's own pause is not the agent's silence.
            idle_deadline_us = idle_deadline_us.map(|_| self.coord.now_us() + idle_us);
        }
    }

    /// Records and applies one frame, then queues the cancels it
    /// triggered; returns, per queued cancel, the signal of its write.
    fn handle(&mut self, msg: &Message) -> Vec<oneshot::Receiver<()>> {
        let frame = match msg {
            Message::Text(text) => InFrame::Text(text.as_str()),
            Message::Binary(b) => InFrame::Binary(b.len()),
            Message::Ping(p) => InFrame::Ping(p.len()),
            Message::Pong(p) => InFrame::Pong(p.len()),
            Message::Close(_) | Message::Frame(_) => return Vec::new(),
        };
        let (conn, at_us) = (self.conn, self.coord.now_us());
        let reaction = self.coord.log().with(|s| ingest(s, conn, at_us, frame));
        let written = reaction
            .cancels
            .into_iter()
            .filter_map(|o| self.send_cancel(o))
            .collect();
        if reaction.job_finished {
            self.coord.wake_driver();
        }
        written
    }

    /// Notes that a triggered cancel was not written within
    /// [`TRIGGERED_CANCEL_WRITE_WAIT`], so the reader read on without it.
    fn note_cancel_waiting(&self) {
        let at_us = self.coord.now_us();
        let what = format!(
            "a triggered cancel on connection {} was not written within {} ms (the agent is not reading); \
             reading on",
            self.conn,
            TRIGGERED_CANCEL_WRITE_WAIT.as_millis()
        );
        self.coord.log().with(|s| s.note(at_us, what));
    }

    /// Queues a triggered cancel; returns the signal of its write.
    fn send_cancel(&self, order: CancelOrder) -> Option<oneshot::Receiver<()>> {
        let (written, signal) = oneshot::channel();
        let out = Outgoing::Acked {
            text: frames::cancel(&order.job_id),
            effect: Effect::CancelWritten(order.record),
            written,
        };
        if let Err(e) = self.queue.try_send(out) {
            let at_us = self.coord.now_us();
            let what = format!("cancel for job {} not sent: outbound queue {e}", order.job_id);
            self.coord.log().with(|s| {
                if let Some(job) = s.jobs.get_mut(order.record) {
                    job.cancel_in_queue = false;
                }
                s.note(at_us, what);
            });
            return None;
        }
        Some(signal)
    }

    /// In a slow-read window: counts the frame and returns the pause that
    /// keeps the read rate at `frames_per_sec` (cut short at the window's end).
    fn slow_read_delay(&mut self) -> Option<Duration> {
        let now_us = self.coord.now_us();
        let (frames_per_sec, end_us) = self.coord.script().slow_read_at_us(now_us)?;
        self.open_window(now_us, ReadBlock::Slow { frames_per_sec }, end_us);
        if let Some(w) = &self.window {
            let index = w.index;
            self.coord
                .log()
                .with(|s| s.read_windows.get_mut(index).map(|r| r.frames_read += 1));
        }
        // The pause never outlasts the window, however low the rate.
        let gap = Duration::try_from_secs_f64(1.0 / frames_per_sec).unwrap_or(Duration::MAX);
        Some(gap.min(Duration::from_micros(end_us.saturating_sub(now_us))))
    }

    /// Opens a window record unless one of the same kind is already open.
    fn open_window(&mut self, now_us: u64, block: ReadBlock, end_us: u64) {
        let conn = self.conn;
        if let Some(w) = &self.window {
            let same = self
                .coord
                .log()
                .with(|s| s.read_windows.get(w.index).map(|r| r.block == block));
            if same == Some(true) {
                return;
            }
            self.end_window(now_us);
        }
        let index = self.coord.log().with(|s| {
            let record = ReadWindow {
                conn,
                block,
                start_us: now_us,
                end_us: None,
                frames_read: 0,
            };
            s.read_windows.push(record);
            s.read_windows.len() - 1
        });
        self.window = Some(OpenWindow { index, end_us });
    }

    /// Closes the open window once its scheduled end has passed.
    fn settle_window(&mut self, now_us: u64) {
        if let Some(w) = &self.window
            && now_us >= w.end_us
        {
            let (index, end_us) = (w.index, w.end_us);
            self.coord
                .log()
                .with(|s| s.read_windows.get_mut(index).map(|r| r.end_us = Some(end_us)));
            self.window = None;
        }
    }

    /// Closes the open window now (connection end, or another kind begins).
    fn end_window(&mut self, now_us: u64) {
        if let Some(w) = self.window.take() {
            let end_us = now_us.min(w.end_us);
            self.coord
                .log()
                .with(|s| s.read_windows.get_mut(w.index).map(|r| r.end_us = Some(end_us)));
        }
    }
}
