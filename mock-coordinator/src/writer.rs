//! The writer task of one authenticated connection.
//!
//! It owns the WebSocket's write half and drains the connection's outbound
//! queue in order. Because reading happens in another task, the coordinator
//! keeps writing jobs, cancels and faults on schedule even while its reader
//! is paused and the agent's own writes are blocked. A frame is recorded,
//! and its effect applied, once it has been completely written.

use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt as _;
use futures_util::stream::SplitSink;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::coordinator::Coordinator;
use crate::inbound::{control_record, frame_record, parse};
use crate::record::{Dir, JobKind};
use crate::script::DisconnectKind;

/// Outbound frames queued per connection. Jobs that find the queue full are
/// recorded as undeliverable rather than delaying the whole schedule.
pub(crate) const OUTBOUND_QUEUE_FRAMES: usize = 4096;
/// How long a Close frame may take to write before the socket is dropped.
pub(crate) const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// What writing a frame means for the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    None,
    /// `jobs[i]` was written: set its `sent_us`.
    JobWritten(usize),
    /// A cancel for `jobs[i]` was written: set its `cancel_sent_us`.
    CancelWritten(usize),
}

/// One entry of the outbound queue.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Text {
        text: String,
        effect: Effect,
    },
    /// A text frame whose writer waits to hear that it was written (or
    /// could not be): a cancel fired by a frame, which the reader must see
    /// leave before it decodes the next frame.
    Acked {
        text: String,
        effect: Effect,
        written: oneshot::Sender<()>,
    },
    /// Script: end the connection (a Close frame, or just drop the socket).
    Disconnect(DisconnectKind),
}

/// Why the writer stopped.
#[derive(Debug)]
pub(crate) enum WriterEnd {
    /// Every sender is gone: the connection is being torn down.
    QueueClosed,
    /// A scripted disconnect was carried out.
    Disconnected,
    /// Writing failed.
    Failed(String),
}

pub(crate) type WsSink<S> = SplitSink<WebSocketStream<S>, Message>;

/// Runs until the queue closes, a disconnect is scripted, or a write fails.
pub(crate) async fn run<S>(
    coord: Arc<Coordinator>,
    conn: u64,
    mut sink: WsSink<S>,
    mut queue: mpsc::Receiver<Outgoing>,
) -> WriterEnd
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    while let Some(out) = queue.recv().await {
        match out {
            Outgoing::Text { text, effect } => {
                let began_us = coord.now_us();
                if let Err(e) = sink.send(Message::text(text.as_str())).await {
                    return WriterEnd::Failed(e.to_string());
                }
                coord.written(conn, &text, effect, began_us);
            }
            Outgoing::Acked { text, effect, written } => {
                let began_us = coord.now_us();
                if let Err(e) = sink.send(Message::text(text.as_str())).await {
                    return WriterEnd::Failed(e.to_string());
                }
                coord.written(conn, &text, effect, began_us);
                // The reader may have stopped waiting; that is fine.
                let _ = written.send(());
            }
            Outgoing::Disconnect(kind) => {
                if kind == DisconnectKind::Close {
                    let close = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, sink.send(Message::Close(None)));
                    if matches!(close.await, Ok(Ok(()))) {
                        let at_us = coord.now_us();
                        coord.log().with(|s| {
                            let record = control_record(s, at_us, conn, Dir::Out, "close", 0);
                            s.push_frame(record);
                        });
                    }
                }
                return WriterEnd::Disconnected;
            }
        }
    }
    WriterEnd::QueueClosed
}

impl Coordinator {
    /// Records a frame written on `conn` (its write began at `began_us`)
    /// and applies its effect, stamped per [`Coordinator::stamp_writes_when_begun`].
    pub(crate) fn written(&self, conn: u64, text: &str, effect: Effect, began_us: u64) {
        let at_us = if self.stamps_writes_when_begun() {
            began_us
        } else {
            self.now_us()
        };
        let parsed = parse(text);
        let freed_slot = self.log().with(|s| {
            // A well-formed job frame's text is not kept (see
            // `FrameRecord::text`): its record holds what it said.
            let keep_text = match effect {
                Effect::JobWritten(i) => s.jobs.get(i).is_none_or(|j| matches!(j.kind, JobKind::Malformed(_))),
                _ => true,
            };
            let record = frame_record(s, at_us, conn, Dir::Out, text, &parsed, keep_text);
            s.push_frame(record);
            match effect {
                Effect::None => false,
                Effect::JobWritten(i) => {
                    s.job_written(i, at_us);
                    false
                }
                Effect::CancelWritten(i) => {
                    s.cancel_written(i, at_us);
                    // A slot freed, or a re-send timed from the cancel due.
                    true
                }
            }
        });
        if freed_slot {
            self.wake_driver();
        }
    }
}
