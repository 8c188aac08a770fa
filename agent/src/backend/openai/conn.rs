//! One HTTP/1.1 exchange on one fresh connection, owned by the caller's
//! future: the connection task is aborted when the returned [`Exchange`]
//! is dropped, which closes the socket. That is how a cancel or a deadline
//! (both implemented by dropping the backend's future) reaches the server.

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use crate::backend::BackendError;
use crate::net::Connector;
use crate::net::endpoint::Endpoint;
use crate::net::tls::open;

/// Bound on hyper's read buffer for one connection: response heads larger
/// than this are rejected, and body data is handed over in pieces of at most
/// this size. (hyper's own minimum is 8 KiB.)
pub const HTTP_READ_BUF_BYTES_MAX: usize = 256 * 1024;

/// Aborts the task driving the HTTP/1 connection when dropped. The task owns
/// the socket, so aborting it closes the connection.
#[derive(Debug)]
struct ConnectionTask(JoinHandle<()>);

impl Drop for ConnectionTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A response whose connection stays open exactly as long as this value.
#[derive(Debug)]
pub struct Exchange {
    pub response: http::Response<Incoming>,
    /// Concurrency role: the spawned task that reads and writes the socket
    /// for `response`'s body; it must outlive the body reads and must die with
    /// the caller's future.
    _connection: ConnectionTask,
}

/// Opens a connection to `endpoint`, sends `request` and waits for the
/// response head. Failures before the head map to
/// [`BackendError::Unreachable`] (refused, reset, closed, TLS failure) or,
/// for a malformed response, [`BackendError::Other`].
pub async fn send(
    connector: &dyn Connector,
    endpoint: &Endpoint,
    tls: &Arc<rustls::ClientConfig>,
    request: http::Request<Full<Bytes>>,
) -> Result<Exchange, BackendError> {
    let stream = open(connector, endpoint, tls)
        .await
        .map_err(|e| unreachable_io(endpoint, &e))?;
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(HTTP_READ_BUF_BYTES_MAX)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| classify(endpoint, &e))?;
    let connection = ConnectionTask(tokio::spawn(async move {
        // The outcome reaches the request side through `sender` and the
        // body; there is nothing more to do with it here.
        if let Err(error) = connection.await {
            tracing::debug!(%error, "backend connection ended with an error");
        }
    }));
    let response = sender.send_request(request).await.map_err(|e| classify(endpoint, &e))?;
    Ok(Exchange {
        response,
        _connection: connection,
    })
}

fn unreachable_io(endpoint: &Endpoint, error: &io::Error) -> BackendError {
    BackendError::Unreachable(format!("{}:{}: {error}", endpoint.host, endpoint.port))
}

/// A malformed answer is the backend's bug, not unreachability; anything
/// else before the head (closed, reset, incomplete) means the backend
/// dropped the connection before answering.
fn classify(endpoint: &Endpoint, error: &hyper::Error) -> BackendError {
    let shown = format!("{}:{}: {error}", endpoint.host, endpoint.port);
    if error.is_parse() || error.is_parse_status() || error.is_parse_too_large() || error.is_user() {
        BackendError::Other(shown)
    } else {
        BackendError::Unreachable(shown)
    }
}

/// Reads at most `bytes_max` bytes of `body`. Returns the bytes and whether
/// the body had more (the rest is left unread; the caller drops the
/// connection).
pub async fn read_prefix(body: &mut Incoming, bytes_max: usize) -> Result<(Bytes, bool), hyper::Error> {
    let mut collected = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let room = bytes_max - collected.len();
        if data.len() > room {
            collected.extend_from_slice(&data[..room]);
            return Ok((collected.freeze(), true));
        }
        collected.extend_from_slice(&data);
        debug_assert!(collected.len() <= bytes_max);
    }
    Ok((collected.freeze(), false))
}
