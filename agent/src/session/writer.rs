//! The session's writer task: the only code that writes to the socket in
//! steady state.
//!
//! It takes a frame off the board only once the WebSocket sink is ready for
//! it, so frames stay on the board — where a cancel can still purge them —
//! until the socket can actually take them. Frames queued back to back are
//! handed to tungstenite without a flush in between (they share socket
//! writes); the writer flushes when the board runs dry. Every wait on the
//! socket is bounded by `write_timeout`: a coordinator that stops reading
//! ends the session instead of hanging it.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, future::poll_fn};
use tokio::time::{Duration, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::WsStream;
use crate::executor::board::{Board, FrameKind};

/// The write half of the session's WebSocket.
pub type WsSink = SplitSink<WsStream, Message>;

/// Why the writer stopped.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriterError {
    #[error("outbound write blocked for more than {0} ms")]
    Stalled(u64),
    #[error("outbound write failed: {0}")]
    Io(String),
}

/// Drains `board` into `sink` until the board closes, a close frame has
/// been written, or the socket fails or stalls.
pub async fn run(mut sink: WsSink, board: Arc<Board>, write_timeout: Duration) -> Result<(), WriterError> {
    let stalled = || WriterError::Stalled(u64::try_from(write_timeout.as_millis()).unwrap_or(u64::MAX));
    let mut unflushed = false;
    loop {
        timeout(write_timeout, poll_fn(|cx| sink.poll_ready_unpin(cx)))
            .await
            .map_err(|_| stalled())?
            .map_err(|e| WriterError::Io(e.to_string()))?;
        let frame = loop {
            if let Some(frame) = board.pop() {
                break frame;
            }
            if unflushed {
                timeout(write_timeout, sink.flush())
                    .await
                    .map_err(|_| stalled())?
                    .map_err(|e| WriterError::Io(e.to_string()))?;
                unflushed = false;
                continue;
            }
            if board.is_closed() {
                return Ok(());
            }
            board.frame_ready().await;
        };
        let (message, last) = match frame.into_kind() {
            FrameKind::Text(text) => (Message::Text(text.into()), false),
            FrameKind::Ping => (Message::Ping(Bytes::new()), false),
            FrameKind::Close => (
                Message::Close(Some(CloseFrame {
                    code: CloseCode::Away,
                    reason: "agent shutting down".into(),
                })),
                true,
            ),
        };
        sink.start_send_unpin(message)
            .map_err(|e| WriterError::Io(e.to_string()))?;
        unflushed = true;
        if last {
            timeout(write_timeout, sink.flush())
                .await
                .map_err(|_| stalled())?
                .map_err(|e| WriterError::Io(e.to_string()))?;
            return Ok(());
        }
    }
}
