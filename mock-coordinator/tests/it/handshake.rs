//! The handshake over real loopback TCP and over duplex pipes in paused
//! time: signatures, every scripted misbehaviour, and what gets recorded.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use mock_coordinator::{CloseReason, Coordinator, Dir, ViolationKind};
use tokio::net::TcpStream;

use crate::client::*;

/// Starts `serve_tcp` on an ephemeral loopback port and connects a client.
async fn tcp_client(coord: &Arc<Coordinator>) -> Ws<TcpStream> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(coord.clone().serve_tcp(listener));
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), stream)
        .await
        .expect("upgrade");
    ws
}

/// A correct signature over real TCP gets `auth_ok` with the script's provider id.
#[tokio::test]
async fn good_signature_gets_auth_ok_over_tcp() {
    let (coord, log) = coordinator("provider_id = \"prov-test-9\"\n");
    let mut ws = tcp_client(&coord).await;
    let (nonce, reply) = login(&mut ws, false).await;
    assert_eq!(reply["type"], "auth_ok");
    assert_eq!(reply["provider_id"], "prov-test-9");
    assert_eq!(nonce.len(), 32);
    send(&mut ws, capabilities(&["a", "b"])).await;
    send(&mut ws, heartbeat(0)).await;
    while log.heartbeats().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let session = &log.sessions()[0];
    assert!(session.auth_ok_us.is_some());
    assert_eq!(
        session.pubkey.as_deref(),
        Some(B64.encode(agent_key().verifying_key().as_bytes()).as_str())
    );
    assert_eq!(session.agent_version.as_deref(), Some("test-agent/0.1"));
    let kinds: Vec<(Dir, String)> = log.frames().into_iter().map(|f| (f.dir, f.kind.to_string())).collect();
    let expected = [
        (Dir::Out, "auth_challenge"),
        (Dir::In, "auth_response"),
        (Dir::Out, "auth_ok"),
        (Dir::In, "capabilities"),
        (Dir::In, "heartbeat"),
    ];
    assert_eq!(kinds, expected.map(|(d, k)| (d, k.to_owned())).to_vec());
    assert_eq!(log.capabilities().len(), 1);
    assert!(log.violations().is_empty(), "{:?}", log.violations());
}

/// A signature over other bytes gets `auth_failed`, a violation and a closed connection.
#[tokio::test]
async fn bad_signature_gets_auth_failed_over_tcp() {
    let (coord, log) = coordinator("");
    let mut ws = tcp_client(&coord).await;
    let (_, reply) = login(&mut ws, true).await;
    assert_eq!(reply["type"], "auth_failed");
    assert!(reply["reason"].as_str().unwrap_or("").contains("signature"), "{reply}");
    assert_eq!(next_text(&mut ws).await, None);
    while log.sessions()[0].closed_us.is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let session = &log.sessions()[0];
    assert!(
        matches!(session.close_reason, Some(CloseReason::AuthFailed(_))),
        "{session:?}"
    );
    assert_eq!(session.auth_ok_us, None);
    assert_eq!(log.violations()[0].kind, ViolationKind::BadSignature);
}

/// `reject` refuses even a good signature, only on the listed connections.
#[tokio::test(start_paused = true)]
async fn reject_mode_on_listed_sessions() {
    let (coord, log) = coordinator("[coordinator.handshake]\nmode = \"reject\"\nsessions = [1]\n");
    let mut first = connect_duplex(&coord, 1 << 16).await;
    let (_, reply) = login(&mut first, false).await;
    assert_eq!(reply["type"], "auth_failed");
    assert_eq!(next_text(&mut first).await, None);
    let mut second = connect_duplex(&coord, 1 << 16).await;
    let (_, reply) = login(&mut second, false).await;
    assert_eq!(reply["type"], "auth_ok");
    let sessions = log.sessions();
    assert_eq!(sessions[0].handshake_mode, "reject");
    assert_eq!(sessions[0].close_reason, Some(CloseReason::ScriptedReject));
    assert_eq!(sessions[1].handshake_mode, "normal");
    assert!(log.violations().is_empty());
}

/// `late` holds `auth_ok` back by `delay_ms`.
#[tokio::test(start_paused = true)]
async fn late_mode_delays_auth_ok() {
    let (coord, log) = coordinator("[coordinator.handshake]\nmode = \"late\"\ndelay_ms = 2500\n");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    let (_, reply) = login(&mut ws, false).await;
    assert_eq!(reply["type"], "auth_ok");
    let frames = log.frames();
    let response_us = frames
        .iter()
        .find(|f| f.kind == "auth_response")
        .map(|f| f.at_us)
        .unwrap();
    let ok_us = log.sessions()[0].auth_ok_us.unwrap();
    assert_eq!(ms(ok_us - response_us), 2500);
}

/// A frame sent while `auth_ok` is held back is a violation.
#[tokio::test(start_paused = true)]
async fn frame_before_auth_ok_is_violation() {
    let (coord, log) = coordinator("[coordinator.handshake]\nmode = \"late\"\ndelay_ms = 1000\n");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    let challenge = next_json(&mut ws).await;
    let nonce = B64.decode(challenge["nonce"].as_str().unwrap()).unwrap();
    send(&mut ws, auth_response(&agent_key(), &nonce)).await;
    send(&mut ws, capabilities(&["a"])).await;
    assert_eq!(next_json(&mut ws).await["type"], "auth_ok");
    let v = log.violations();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].kind, ViolationKind::BeforeAuth);
    assert!(v[0].what.contains("capabilities"), "{}", v[0].what);
}

/// `close_after_auth` sends `auth_ok` and closes at once.
#[tokio::test(start_paused = true)]
async fn close_after_auth() {
    let (coord, log) = coordinator("[coordinator.handshake]\nmode = \"close_after_auth\"\n");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    let (_, reply) = login(&mut ws, false).await;
    assert_eq!(reply["type"], "auth_ok");
    assert_eq!(next_text(&mut ws).await, None);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(
        log.sessions()[0].close_reason,
        Some(CloseReason::ScriptedCloseAfterAuth)
    );
}

/// `no_challenge` sends nothing and closes after `timeout_ms`.
#[tokio::test(start_paused = true)]
async fn no_challenge_sends_nothing() {
    let (coord, log) = coordinator("[coordinator.handshake]\nmode = \"no_challenge\"\ntimeout_ms = 3000\n");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    assert_eq!(next_text(&mut ws).await, None);
    let session = &log.sessions()[0];
    assert_eq!(session.close_reason, Some(CloseReason::ScriptedNoChallenge));
    assert_eq!(ms(session.closed_us.unwrap() - session.connected_us), 3000);
    assert!(log.frames().iter().all(|f| f.dir == Dir::Out && f.kind == "close"));
}

/// No answer to the challenge within `timeout_ms` ends the handshake.
#[tokio::test(start_paused = true)]
async fn silent_agent_times_out() {
    let (coord, log) = coordinator("[coordinator.handshake]\ntimeout_ms = 1500\n");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    assert_eq!(next_json(&mut ws).await["type"], "auth_challenge");
    assert_eq!(next_json(&mut ws).await["type"], "auth_failed");
    assert_eq!(next_text(&mut ws).await, None);
    let session = &log.sessions()[0];
    assert_eq!(session.close_reason, Some(CloseReason::HandshakeTimeout));
    assert_eq!(ms(session.closed_us.unwrap()), 1500);
}

/// Junk instead of `auth_response` fails the handshake and is a violation.
#[tokio::test(start_paused = true)]
async fn junk_instead_of_response() {
    let (coord, log) = coordinator("");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    next_json(&mut ws).await;
    send(&mut ws, "{\"type\":\"heartbeat\"}".into()).await;
    assert_eq!(next_json(&mut ws).await["type"], "auth_failed");
    assert_eq!(log.violations()[0].kind, ViolationKind::BeforeAuth);
}

/// The nonce comes from the seeded RNG: same seed, same nonce; a new connection gets a new one.
#[tokio::test(start_paused = true)]
async fn nonce_is_seeded() {
    let mut nonces = Vec::new();
    for seed in [1, 1, 2] {
        let (coord, _log) = coordinator_seeded("", seed);
        let mut ws = connect_duplex(&coord, 1 << 16).await;
        nonces.push(login(&mut ws, false).await.0);
        let mut again = connect_duplex(&coord, 1 << 16).await;
        let second = login(&mut again, false).await.0;
        assert_ne!(second, nonces[nonces.len() - 1]);
    }
    assert_eq!(nonces[0], nonces[1]);
    assert_ne!(nonces[0], nonces[2]);
}

/// Capabilities with unsorted models are recorded and flagged.
#[tokio::test(start_paused = true)]
async fn unsorted_capabilities_flagged() {
    let (coord, log) = coordinator("");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    login(&mut ws, false).await;
    send(&mut ws, capabilities(&["z", "a"])).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(log.capabilities().len(), 1);
    assert_eq!(log.capabilities()[0].0, 1);
    assert_eq!(log.violations()[0].kind, ViolationKind::CapabilitiesUnsorted);
}

/// With `enrollment_single_use`, a code that already enrolled a connection is
/// refused on a later one; a login without a code is still accepted.
#[tokio::test(start_paused = true)]
async fn single_use_enrollment_code_is_refused_the_second_time() {
    let (coord, log) = coordinator("[coordinator.handshake]\nenrollment_single_use = true\n");
    let login_with = |code: Option<&'static str>| {
        let coord = coord.clone();
        async move {
            let mut ws = connect_duplex(&coord, 1 << 16).await;
            let challenge = next_json(&mut ws).await;
            let nonce = B64.decode(challenge["nonce"].as_str().expect("nonce")).expect("base64");
            let mut response: serde_json::Value = serde_json::from_str(&auth_response(&agent_key(), &nonce)).unwrap();
            if let Some(code) = code {
                response["enrollment_code"] = code.into();
            }
            send(&mut ws, response.to_string()).await;
            next_json(&mut ws).await
        }
    };
    assert_eq!(login_with(Some("code-1")).await["type"], "auth_ok");
    let refused = login_with(Some("code-1")).await;
    assert_eq!(refused["type"], "auth_failed");
    assert_eq!(refused["reason"], "enrollment code already used");
    assert_eq!(login_with(None).await["type"], "auth_ok");
    assert_eq!(login_with(Some("code-2")).await["type"], "auth_ok");
    let sessions = log.sessions();
    assert_eq!(
        sessions[1].close_reason,
        Some(CloseReason::AuthFailed("enrollment code already used".into()))
    );
}
