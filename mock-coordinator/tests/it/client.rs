//! A minimal agent for the tests: a real tokio-tungstenite WebSocket client
//! that signs the challenge with ed25519-dalek and speaks the agent's side
//! of the protocol frame by frame, as each test dictates.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, SigningKey};
use futures_util::{SinkExt as _, StreamExt as _};
use mock_coordinator::{Clock, Coordinator, Log, Script, ScriptError, tokio_clock};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

pub type Ws<S> = WebSocketStream<S>;

/// Seed every test uses unless it compares seeds.
pub const SEED: u64 = 7;

/// The test agent's identity key.
pub fn agent_key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

/// A coordinator on a fresh log, from the body of a `[coordinator]` table.
pub fn coordinator(body: &str) -> (Arc<Coordinator>, Log) {
    coordinator_seeded(body, SEED)
}

pub fn coordinator_seeded(body: &str, seed: u64) -> (Arc<Coordinator>, Log) {
    let log = Log::new();
    let coord = coordinator_on(body, seed, tokio_clock(), &log).expect("coordinator builds");
    (coord, log)
}

/// A started coordinator on an existing log and clock (for restarts).
pub fn coordinator_on(body: &str, seed: u64, clock: Clock, log: &Log) -> Result<Arc<Coordinator>, ScriptError> {
    let script = Script::from_scenario_toml(&format!("[coordinator]\n{body}")).expect("test script is valid");
    let coord = Coordinator::new(script, seed, clock, log.clone())?;
    coord.start();
    Ok(coord)
}

/// Connects a client over an in-memory duplex pipe with `buf_bytes` of
/// buffer in each direction; the coordinator serves the other end.
pub async fn connect_duplex(coord: &Arc<Coordinator>, buf_bytes: usize) -> Ws<DuplexStream> {
    let (client, server) = tokio::io::duplex(buf_bytes);
    tokio::spawn(coord.clone().serve_connection(server));
    let (ws, _) = tokio_tungstenite::client_async("ws://coordinator/", client)
        .await
        .expect("ws upgrade");
    ws
}

/// The next text frame (pings and pongs skipped); `None` once closed.
pub async fn next_text<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut Ws<S>) -> Option<String> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => return Some(t.as_str().to_owned()),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            Ok(Message::Binary(_)) => panic!("coordinator sent a binary frame"),
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
}

/// The next text frame as JSON; panics when the connection ended.
pub async fn next_json<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut Ws<S>) -> Value {
    let text = next_text(ws).await.expect("connection still open");
    serde_json::from_str(&text).expect("coordinator sent JSON")
}

pub async fn send<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut Ws<S>, text: String) {
    ws.send(Message::text(text)).await.expect("send");
}

/// `auth_response` signing `signed` (normally the decoded nonce).
pub fn auth_response(key: &SigningKey, signed: &[u8]) -> String {
    json!({
        "type": "auth_response",
        "pubkey": B64.encode(key.verifying_key().as_bytes()),
        "signature": B64.encode(key.sign(signed).to_bytes()),
        "agent_version": "test-agent/0.1",
    })
    .to_string()
}

/// Reads the challenge, answers it (signing the nonce unless `corrupt`),
/// and returns the nonce bytes and the coordinator's reply.
pub async fn login<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut Ws<S>, corrupt: bool) -> (Vec<u8>, Value) {
    let challenge = next_json(ws).await;
    assert_eq!(challenge["type"], "auth_challenge");
    let nonce = B64
        .decode(challenge["nonce"].as_str().expect("nonce"))
        .expect("nonce is base64");
    let mut signed = nonce.clone();
    if corrupt {
        signed.push(0);
    }
    send(ws, auth_response(&agent_key(), &signed)).await;
    (nonce, next_json(ws).await)
}

/// Logs in, expects `auth_ok` and sends a sorted `capabilities`.
pub async fn authed<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut Ws<S>) {
    let (_, reply) = login(ws, false).await;
    assert_eq!(reply["type"], "auth_ok", "{reply}");
    send(ws, capabilities(&["m-a", "m-b"])).await;
}

pub fn capabilities(models: &[&str]) -> String {
    let models: Vec<Value> = models
        .iter()
        .map(|m| json!({"model_id": m, "input_per_1m": 1.0, "output_per_1m": 2.0, "max_concurrent": 4, "backend": "vllm"}))
        .collect();
    json!({
        "type": "capabilities",
        "models": models,
        "limits": {"max_concurrent_total": 8, "max_tokens_per_minute": null},
        "metadata": {"agent_version": "test-agent/0.1"},
    })
    .to_string()
}

pub fn chunk(job_id: &str, data: &[u8]) -> String {
    json!({"type": "job_chunk", "job_id": job_id, "data": B64.encode(data)}).to_string()
}

pub fn done(job_id: &str, input: u64, output: u64, duration_ms: u64) -> String {
    json!({"type": "job_done", "job_id": job_id, "tokens": {"input": input, "output": output}, "duration_ms": duration_ms})
        .to_string()
}

pub fn error(job_id: &str, code: &str, bytes_emitted: u64) -> String {
    json!({"type": "job_error", "job_id": job_id, "error_code": code, "message": "test",
           "tokens_emitted": 0, "bytes_emitted": bytes_emitted})
    .to_string()
}

pub fn heartbeat(queue_depth: u64) -> String {
    json!({"type": "heartbeat", "queue_depth": queue_depth, "tokens_per_sec_p50": 12.5, "p50_latency_ms": 40.0,
           "p95_latency_ms": 90.0, "error_rate_60s": 0.0, "last_error_at": null, "last_error_code": null})
    .to_string()
}

/// The coordinator's clock reading in milliseconds (paused tokio time).
pub fn ms(us: u64) -> u64 {
    us / 1000
}

/// Lets every task process what it has been sent (paused time advances
/// only once all of them are idle).
pub async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
}
