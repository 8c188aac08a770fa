//! The response body hyper writes: a whole buffer, or frames fed by a
//! request task through a channel whose closing tells the task the client
//! went away.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// Frames buffered between a request task and hyper. One keeps the task at
/// most one frame ahead of the socket, so a slow client applies backpressure
/// and a gone client is noticed on the next send.
pub const BODY_CHANNEL_FRAMES_MAX: usize = 1;

/// An item of a streamed body: a frame, or the error that makes hyper close
/// the connection mid-body.
pub(crate) type BodyItem = Result<Frame<Bytes>, BodyError>;

/// Sending half, owned by the request task.
pub(crate) type BodySender = mpsc::Sender<BodyItem>;

/// Why a streamed body stops with an error.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// A `cut` fault: the connection is closed without finishing the body.
    #[error("stream cut by an injected fault")]
    Cut,
}

/// A response body.
pub struct MockBody {
    inner: Inner,
}

enum Inner {
    /// A complete body, taken on the first poll; sent with Content-Length.
    Full(Option<Bytes>),
    /// Frames from a request task; sent chunked. hyper drops this receiver
    /// when the connection ends, which closes the task's sender.
    Channel(mpsc::Receiver<BodyItem>),
}

impl MockBody {
    /// A body of exactly these bytes.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Self {
            inner: Inner::Full(Some(bytes.into())),
        }
    }

    /// A streamed body and the sender that feeds it.
    pub(crate) fn channel() -> (BodySender, Self) {
        let (tx, rx) = mpsc::channel(BODY_CHANNEL_FRAMES_MAX);
        let body = Self {
            inner: Inner::Channel(rx),
        };
        (tx, body)
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.inner {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Channel(rx) => rx.poll_recv(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.inner, Inner::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Inner::Channel(_) => SizeHint::default(),
        }
    }
}
