//! Connecting and the four-step handshake of protocol.md, each step under
//! its own timeout.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Duration, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::{SessionError, WsStream};
use crate::AGENT_VERSION;
use crate::identity::Identity;
use crate::net::endpoint::Endpoint;
use crate::net::{Connector, tls};
use crate::protocol::{Inbound, Outbound, decode_inbound};

/// Largest inbound WebSocket message accepted. Jobs carry chat requests;
/// 16 MiB leaves room for long contexts while bounding memory per frame.
pub const INBOUND_MESSAGE_BYTES_MAX: usize = 16 << 20;
/// tungstenite buffers outbound frames up to this size before writing to the
/// socket: frames queued back to back share one socket write.
pub const WRITE_BUFFER_BYTES: usize = 64 << 10;
/// Hard cap on tungstenite's outbound buffer (it never holds more than about
/// one write buffer plus one frame, because the writer waits for readiness).
pub const WRITE_BUFFER_BYTES_MAX: usize = 64 << 20;

/// The agent's WebSocket settings (buffer sizes and inbound limits above);
/// public so benches measure the writer exactly as the agent configures it.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WRITE_BUFFER_BYTES_MAX)
        .max_message_size(Some(INBOUND_MESSAGE_BYTES_MAX))
        .max_frame_size(Some(INBOUND_MESSAGE_BYTES_MAX))
}

/// Opens the coordinator WebSocket (TCP, TLS for `wss://`, upgrade).
pub async fn connect(
    url: &str,
    connector: &dyn Connector,
    tls_config: &Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
) -> Result<WsStream, SessionError> {
    let endpoint = Endpoint::parse(url).map_err(|e| SessionError::Connect(e.to_string()))?;
    let open = async {
        let stream = tls::open(connector, &endpoint, tls_config)
            .await
            .map_err(|e| SessionError::Connect(e.to_string()))?;
        let (ws, _response) = tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config()))
            .await
            .map_err(|e| SessionError::Connect(e.to_string()))?;
        Ok(ws)
    };
    timeout(connect_timeout, open)
        .await
        .map_err(|_| SessionError::Timeout("connect"))?
}

/// What the handshake needs from the run loop.
pub struct Credentials<'a> {
    pub identity: &'a Identity,
    /// Sent only while the agent has no provider id yet.
    pub enrollment_code: Option<&'a str>,
    /// Updated from `auth_ok` (the run loop keeps it across sessions).
    pub provider_id: &'a mut Option<String>,
}

/// Steps 1–3: challenge, signed response, `auth_ok`.
pub async fn authenticate(
    ws: &mut WsStream,
    creds: Credentials<'_>,
    step_timeout: Duration,
) -> Result<(), SessionError> {
    let nonce = match next_inbound(ws, step_timeout, "auth_challenge").await? {
        Inbound::AuthChallenge { nonce } => nonce,
        other => {
            return Err(SessionError::PreAuth(format!(
                "expected auth_challenge, got {}",
                kind_of(&other)
            )));
        }
    };
    let nonce_bytes = B64
        .decode(nonce.as_bytes())
        .map_err(|e| SessionError::PreAuth(format!("nonce is not base64: {e}")))?;
    let response = Outbound::AuthResponse {
        pubkey: creds.identity.public_key_b64(),
        signature: creds.identity.sign_b64(&nonce_bytes),
        agent_version: AGENT_VERSION.to_string(),
        enrollment_code: if creds.provider_id.is_none() {
            creds.enrollment_code.map(str::to_string)
        } else {
            None
        },
    };
    send(ws, response.to_text(), step_timeout).await?;
    match next_inbound(ws, step_timeout, "auth_ok").await? {
        Inbound::AuthOk { provider_id } => {
            match provider_id.map(|id| crate::provider_id::check(&id).map(|()| id)) {
                Some(Ok(id)) => *creds.provider_id = Some(id),
                Some(Err(err)) => tracing::warn!(%err, "ignoring the provider id of auth_ok"),
                None => {}
            }
            Ok(())
        }
        Inbound::AuthFailed { reason } => Err(SessionError::AuthFailed(reason.unwrap_or_default())),
        other => Err(SessionError::PreAuth(format!(
            "expected auth_ok, got {}",
            kind_of(&other)
        ))),
    }
}

/// Sends one frame directly (handshake only; steady state uses the board).
pub async fn send(ws: &mut WsStream, text: String, write_timeout: Duration) -> Result<(), SessionError> {
    timeout(write_timeout, ws.send(Message::Text(text.into())))
        .await
        .map_err(|_| SessionError::Timeout("handshake write"))?
        .map_err(|e| SessionError::Io(e.to_string()))
}

/// Reads the next text frame before `auth_ok`. Pings and pongs are skipped
/// (tungstenite answers pings itself); anything else that is not a valid
/// protocol frame is a pre-auth failure.
async fn next_inbound(ws: &mut WsStream, step_timeout: Duration, step: &'static str) -> Result<Inbound, SessionError> {
    let read = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    return decode_inbound(&text).map_err(|e| SessionError::PreAuth(format!("{step}: {e}")));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => return Err(SessionError::PreAuth(format!("{step}: binary frame"))),
                Some(Ok(Message::Close(_))) | None => {
                    return Err(SessionError::PreAuth(format!(
                        "{step}: coordinator closed the connection"
                    )));
                }
                Some(Err(e)) => return Err(SessionError::Io(e.to_string())),
            }
        }
    };
    timeout(step_timeout, read)
        .await
        .map_err(|_| SessionError::Timeout(step))?
}

fn kind_of(inbound: &Inbound) -> &str {
    match inbound {
        Inbound::AuthChallenge { .. } => "auth_challenge",
        Inbound::AuthOk { .. } => "auth_ok",
        Inbound::AuthFailed { .. } => "auth_failed",
        Inbound::Job(_) => "job",
        Inbound::JobCancel { .. } => "job_cancel",
        Inbound::Other { kind } => kind,
    }
}
