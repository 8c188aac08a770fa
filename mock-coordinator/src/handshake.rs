//! The handshake: `auth_challenge` → `auth_response` → `auth_ok` /
//! `auth_failed`, with the scripted misbehaviours of [`HandshakeMode`].
//!
//! Runs on the whole WebSocket before it is split; everything the agent
//! sends meanwhile is recorded, and anything but the one `auth_response` is
//! a violation.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, VerifyingKey};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::clock::{ms_to_us, sleep_until_us};
use crate::coordinator::Coordinator;
use crate::inbound::{Parsed, control_record, frame_record, parse, str_field};
use crate::record::{CloseReason, Dir, ViolationKind};
use crate::script::HandshakeMode;
use crate::writer::CLOSE_WRITE_TIMEOUT;
use crate::{frames, rng};

type Ws<S> = WebSocketStream<S>;
type Step<T> = Result<T, CloseReason>;

/// Runs the handshake; `Ok` means `auth_ok` was sent and the connection
/// enters the steady state, `Err` carries why it was closed instead.
pub(crate) async fn run<S>(coord: &Arc<Coordinator>, conn: u64, ws: &mut Ws<S>, mode: HandshakeMode) -> Step<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handshake = &coord.script().handshake;
    let deadline_us = coord.now_us().saturating_add(ms_to_us(handshake.timeout_ms));
    if mode == HandshakeMode::NoChallenge {
        preauth_until(coord, conn, ws, deadline_us, "before any auth_challenge").await?;
        close(coord, conn, ws).await;
        return Err(CloseReason::ScriptedNoChallenge);
    }
    let nonce_len = handshake.nonce_bytes as usize;
    let nonce = coord
        .log()
        .with(|s| s.schedule.as_mut().map(|sch| rng::nonce(&mut sch.rng, nonce_len)));
    let nonce = nonce.unwrap_or_default();
    send(coord, conn, ws, frames::auth_challenge(&B64.encode(&nonce))).await?;
    let response = await_response(coord, conn, ws, deadline_us).await?;
    let verdict = check_response(coord, conn, &response, &nonce);
    if mode == HandshakeMode::Reject {
        fail(coord, conn, ws, "rejected by script").await;
        return Err(CloseReason::ScriptedReject);
    }
    if let Err(why) = verdict {
        fail(coord, conn, ws, &why).await;
        return Err(CloseReason::AuthFailed(why));
    }
    if handshake.enrollment_single_use
        && let Err(why) = crate::enrollment::check_single_use(coord, conn, &response)
    {
        fail(coord, conn, ws, &why).await;
        return Err(CloseReason::AuthFailed(why));
    }
    if mode == HandshakeMode::Late {
        let until_us = coord.now_us().saturating_add(ms_to_us(handshake.delay_ms));
        preauth_until(coord, conn, ws, until_us, "before auth_ok").await?;
    }
    send(coord, conn, ws, frames::auth_ok(&coord.script().provider_id)).await?;
    let at_us = coord.now_us();
    coord
        .log()
        .with(|s| s.session_mut(conn).map(|r| r.auth_ok_us = Some(at_us)));
    if mode == HandshakeMode::CloseAfterAuth {
        close(coord, conn, ws).await;
        return Err(CloseReason::ScriptedCloseAfterAuth);
    }
    Ok(())
}

/// Sends and records one text frame.
async fn send<S>(coord: &Coordinator, conn: u64, ws: &mut Ws<S>, text: String) -> Step<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match ws.send(Message::text(text.as_str())).await {
        Ok(()) => {
            let (at_us, parsed) = (coord.now_us(), parse(&text));
            coord.log().with(|s| {
                let record = frame_record(s, at_us, conn, Dir::Out, &text, &parsed, true);
                s.push_frame(record);
            });
            Ok(())
        }
        Err(e) => Err(CloseReason::WriteFailed(e.to_string())),
    }
}

/// Sends a Close frame (bounded in time) and records it.
async fn close<S>(coord: &Coordinator, conn: u64, ws: &mut Ws<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Ok(Ok(())) = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, ws.close(None)).await {
        let at_us = coord.now_us();
        coord.log().with(|s| {
            let record = control_record(s, at_us, conn, Dir::Out, "close", 0);
            s.push_frame(record);
        });
    }
}

/// Sends `auth_failed` and closes; errors are moot as the connection ends.
async fn fail<S>(coord: &Coordinator, conn: u64, ws: &mut Ws<S>, reason: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = send(coord, conn, ws, frames::auth_failed(reason)).await;
    close(coord, conn, ws).await;
}

/// What one recorded pre-auth message was.
enum PreAuth {
    /// The `auth_response` object.
    Response(Map<String, Value>),
    /// A ping or pong (tungstenite answers pings itself).
    Control,
    /// Anything else, described for the violation.
    Unexpected(String),
}

/// Records one pre-auth message; `Err` when it ends the connection.
fn record_preauth(coord: &Coordinator, conn: u64, msg: Message) -> Step<PreAuth> {
    let at_us = coord.now_us();
    let log = coord.log();
    let control = |kind: &str, len: usize| {
        log.with(|s| {
            let record = control_record(s, at_us, conn, Dir::In, kind, len);
            s.push_frame(record);
        });
    };
    match msg {
        Message::Close(_) => Err(CloseReason::AgentClosed),
        Message::Ping(p) => {
            control("ping", p.len());
            Ok(PreAuth::Control)
        }
        Message::Pong(p) => {
            control("pong", p.len());
            Ok(PreAuth::Control)
        }
        Message::Frame(_) => Ok(PreAuth::Control),
        Message::Binary(b) => {
            control("binary", b.len());
            Ok(PreAuth::Unexpected("a binary frame".into()))
        }
        Message::Text(text) => {
            let parsed = parse(text.as_str());
            log.with(|s| {
                let record = frame_record(s, at_us, conn, Dir::In, text.as_str(), &parsed, true);
                s.push_frame(record);
            });
            Ok(match parsed {
                Parsed::Typed { kind, obj } if kind == "auth_response" => PreAuth::Response(obj),
                Parsed::Typed { kind, .. } => PreAuth::Unexpected(format!("`{kind}`")),
                Parsed::Untyped(_) => PreAuth::Unexpected("an object without `type`".into()),
                Parsed::Invalid(why) => PreAuth::Unexpected(format!("a frame that is {why}")),
            })
        }
    }
}

fn before_auth(coord: &Coordinator, conn: u64, what: String) {
    let at_us = coord.now_us();
    coord
        .log()
        .with(|s| s.violation(at_us, conn, ViolationKind::BeforeAuth, None, what));
}

/// Reads until `deadline_us`, recording everything the agent sends as a
/// violation (`when` says what it came before).
async fn preauth_until<S>(coord: &Coordinator, conn: u64, ws: &mut Ws<S>, deadline_us: u64, when: &str) -> Step<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let msg = tokio::select! {
            biased;
            () = sleep_until_us(coord.clock(), deadline_us) => return Ok(()),
            msg = ws.next() => msg,
        };
        match record_preauth(coord, conn, next_or_end(msg)?)? {
            PreAuth::Control => {}
            PreAuth::Response(_) => before_auth(coord, conn, format!("`auth_response` {when}")),
            PreAuth::Unexpected(what) => before_auth(coord, conn, format!("{what} {when}")),
        }
    }
}

fn next_or_end(msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> Step<Message> {
    match msg {
        None => Err(CloseReason::AgentClosed),
        Some(Err(e)) => Err(CloseReason::ReadFailed(e.to_string())),
        Some(Ok(m)) => Ok(m),
    }
}

/// Waits for `auth_response`; anything else fails the handshake.
async fn await_response<S>(coord: &Coordinator, conn: u64, ws: &mut Ws<S>, deadline_us: u64) -> Step<Map<String, Value>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let msg = tokio::select! {
            biased;
            () = sleep_until_us(coord.clock(), deadline_us) => {
                fail(coord, conn, ws, "no auth_response in time").await;
                return Err(CloseReason::HandshakeTimeout);
            }
            msg = ws.next() => next_or_end(msg)?,
        };
        match record_preauth(coord, conn, msg)? {
            PreAuth::Control => {}
            PreAuth::Response(obj) => return Ok(obj),
            PreAuth::Unexpected(what) => {
                before_auth(coord, conn, format!("{what} instead of auth_response"));
                let why = "expected auth_response".to_owned();
                fail(coord, conn, ws, &why).await;
                return Err(CloseReason::AuthFailed(why));
            }
        }
    }
}

/// Records the response's identity fields and verifies the signature.
/// Problems are recorded as violations and returned as the reason.
fn check_response(coord: &Coordinator, conn: u64, obj: &Map<String, Value>, nonce: &[u8]) -> Result<(), String> {
    let at_us = coord.now_us();
    let verdict = verify(obj, nonce);
    coord.log().with(|s| {
        if let Some(r) = s.session_mut(conn) {
            r.pubkey = str_field(obj, "pubkey").map(str::to_owned);
            r.agent_version = str_field(obj, "agent_version").map(str::to_owned);
            r.enrollment_code = str_field(obj, "enrollment_code").map(str::to_owned);
        }
        if str_field(obj, "agent_version").is_none() {
            let what = "auth_response without a string `agent_version`".to_owned();
            s.violation(at_us, conn, ViolationKind::BadField, None, what);
        }
        if let Err(why) = &verdict {
            s.violation(
                at_us,
                conn,
                ViolationKind::BadSignature,
                None,
                format!("auth_response: {why}"),
            );
        }
    });
    verdict
}

/// Pure Ed25519 (strict) over exactly the nonce bytes.
pub(crate) fn verify(obj: &Map<String, Value>, nonce: &[u8]) -> Result<(), String> {
    let field = |key: &str| -> Result<Vec<u8>, String> {
        let text = str_field(obj, key).ok_or_else(|| format!("`{key}` is missing or not a string"))?;
        B64.decode(text)
            .map_err(|e| format!("`{key}` is not standard base64: {e}"))
    };
    let pubkey: [u8; 32] = field("pubkey")?
        .try_into()
        .map_err(|v: Vec<u8>| format!("`pubkey` has {} bytes, expected 32", v.len()))?;
    let signature: [u8; 64] = field("signature")?
        .try_into()
        .map_err(|v: Vec<u8>| format!("`signature` has {} bytes, expected 64", v.len()))?;
    let key = VerifyingKey::from_bytes(&pubkey).map_err(|e| format!("`pubkey` is not a valid key: {e}"))?;
    key.verify_strict(nonce, &Signature::from_bytes(&signature))
        .map_err(|_| "signature does not verify over the nonce".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};
    use serde_json::json;

    fn response(key: &SigningKey, signed: &[u8]) -> Map<String, Value> {
        let sig = key.sign(signed);
        let v = json!({
            "type": "auth_response",
            "pubkey": B64.encode(key.verifying_key().as_bytes()),
            "signature": B64.encode(sig.to_bytes()),
            "agent_version": "t",
        });
        v.as_object().cloned().unwrap()
    }

    /// A signature over the nonce verifies; over other bytes it does not.
    #[test]
    fn verify_signature() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        assert_eq!(verify(&response(&key, b"nonce"), b"nonce"), Ok(()));
        assert!(verify(&response(&key, b"other"), b"nonce").is_err());
    }

    /// Malformed fields are named.
    #[test]
    fn verify_names_bad_fields() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let mut obj = response(&key, b"n");
        obj.insert("pubkey".into(), json!("!!"));
        assert!(verify(&obj, b"n").unwrap_err().contains("`pubkey`"));
        obj.remove("signature");
        obj.insert("pubkey".into(), json!(B64.encode([1u8; 5])));
        assert!(verify(&obj, b"n").unwrap_err().contains("32"));
    }
}
