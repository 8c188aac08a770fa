//! An in-memory coordinator for session tests: a connector that hands out
//! `tokio::io::duplex` pipes, and a tungstenite server on the other end.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use futures_util::{SinkExt, StreamExt};
use provider_agent::net::{BoxStream, Connector};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// The coordinator's end of one connection.
pub type Server = WebSocketStream<DuplexStream>;

/// Hands the agent one end of a fresh duplex pipe per connect and queues the
/// other end for the test. Counts the agent's socket writes.
pub struct DuplexConnector {
    capacity_bytes: usize,
    /// Sender: `connect`. Receiver: the test, via [`DuplexConnector::accept`].
    accepted_tx: mpsc::UnboundedSender<DuplexStream>,
    accepted_rx: Mutex<mpsc::UnboundedReceiver<DuplexStream>>,
    pub writes: Arc<AtomicUsize>,
}

impl DuplexConnector {
    pub fn new(capacity_bytes: usize) -> Arc<Self> {
        let (accepted_tx, accepted_rx) = mpsc::unbounded_channel();
        Arc::new(Self {
            capacity_bytes,
            accepted_tx,
            accepted_rx: Mutex::new(accepted_rx),
            writes: Arc::default(),
        })
    }

    /// Waits for the agent's next connection and completes the upgrade.
    pub async fn accept(&self) -> Server {
        let stream = self.accepted_rx.lock().await.recv().await.expect("connector alive");
        tokio_tungstenite::accept_async(stream)
            .await
            .expect("websocket upgrade")
    }
}

#[async_trait]
impl Connector for DuplexConnector {
    async fn connect(&self, host: &str, port: u16) -> io::Result<BoxStream> {
        assert_eq!((host, port), ("coordinator", 9000));
        let (agent_end, server_end) = tokio::io::duplex(self.capacity_bytes);
        self.accepted_tx
            .send(server_end)
            .map_err(|_| io::Error::other("test gone"))?;
        Ok(Box::new(Counting {
            inner: agent_end,
            writes: self.writes.clone(),
        }))
    }
}

/// Counts `poll_write` calls that wrote something (socket writes).
struct Counting {
    inner: DuplexStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for Counting {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counting {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            if *n > 0 {
                self.writes.fetch_add(1, Ordering::Relaxed);
            }
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Sends one JSON frame.
pub async fn send(ws: &mut Server, frame: Value) {
    ws.send(Message::Text(frame.to_string().into())).await.expect("send");
}

/// Reads the next text frame as JSON (skipping pings and pongs).
pub async fn recv(ws: &mut Server) -> Option<Value> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).expect("agent sends JSON")),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(other) => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Reads frames until one of type `kind` arrives.
pub async fn recv_type(ws: &mut Server, kind: &str) -> Value {
    loop {
        let frame = recv(ws)
            .await
            .unwrap_or_else(|| panic!("connection ended before {kind}"));
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// Runs the coordinator side of the handshake, verifying the signature.
/// Returns the capabilities frame.
pub async fn handshake(ws: &mut Server) -> Value {
    let nonce = [9u8; 32];
    send(ws, json!({"type": "auth_challenge", "nonce": B64.encode(nonce)})).await;
    let response = recv_type(ws, "auth_response").await;
    let pubkey: [u8; 32] = B64
        .decode(response["pubkey"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let signature: [u8; 64] = B64
        .decode(response["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    VerifyingKey::from_bytes(&pubkey)
        .unwrap()
        .verify(&nonce, &Signature::from_bytes(&signature))
        .expect("signature over the nonce verifies");
    send(ws, json!({"type": "auth_ok", "provider_id": "prov-1"})).await;
    recv_type(ws, "capabilities").await
}

/// A job frame for model `m`.
pub fn job_frame(n: u128, deadline_ms: u64) -> Value {
    json!({"type": "job", "job_id": uuid::Uuid::from_u128(n).to_string(), "model_id": "m",
           "request": {"messages": []}, "deadline_ms": deadline_ms})
}
