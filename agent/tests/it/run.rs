//! The run loop: reconnect backoff escalates on failures before `auth_ok`,
//! resets after a steady session, and shutdown ends it.

use std::sync::Arc;

use provider_agent::clock::AnchoredClock;
use provider_agent::identity::Identity;
use provider_agent::observer::NoopObserver;
use provider_agent::run::{AgentDeps, run};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::{Duration, Instant};

use crate::coord::{DuplexConnector, handshake, recv_type, send};
use crate::fixtures::config;

fn deps(connector: Arc<DuplexConnector>, shutdown: watch::Receiver<bool>) -> AgentDeps {
    AgentDeps {
        connector,
        clock: Arc::new(AnchoredClock::new(0)),
        rng_seed: 11,
        shutdown,
        observer: Arc::new(NoopObserver),
        env: Arc::new(|_| None),
        allow_insecure: true,
        provider_ids: Arc::new(provider_agent::provider_id::MemoryStore::default()),
    }
}

/// Sleeps between connects double after each `auth_failed` (with jitter in
/// [0.8, 1.2)), and return to the first step after a steady session.
#[tokio::test(start_paused = true)]
async fn backoff_escalates_then_resets() {
    let mut cfg = config(2);
    cfg.backends.clear();
    let connector = DuplexConnector::new(1 << 16);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let agent = tokio::spawn(run(
        cfg,
        Identity::from_secret_bytes([3; 32]),
        deps(connector.clone(), shutdown_rx),
    ));
    let mut connects = Vec::new();
    for _ in 0..3 {
        let mut ws = connector.accept().await;
        connects.push(Instant::now());
        send(&mut ws, json!({"type": "auth_challenge", "nonce": "AAAA"})).await;
        recv_type(&mut ws, "auth_response").await;
        send(&mut ws, json!({"type": "auth_failed"})).await;
    }
    let mut ws = connector.accept().await;
    connects.push(Instant::now());
    let caps = handshake(&mut ws).await;
    assert_eq!(caps["models"], json!([]), "capabilities are sent even with no models");
    drop(ws);
    let _ws = connector.accept().await;
    connects.push(Instant::now());
    let gaps: Vec<Duration> = connects.windows(2).map(|w| w[1] - w[0]).collect();
    let within = |gap: Duration, base_ms: u64| {
        gap >= Duration::from_millis(base_ms * 8 / 10) && gap < Duration::from_millis(base_ms * 12 / 10 + 5)
    };
    assert!(within(gaps[0], 1_000), "{gaps:?}");
    assert!(within(gaps[1], 2_000), "{gaps:?}");
    assert!(within(gaps[2], 4_000), "{gaps:?}");
    assert!(within(gaps[3], 1_000), "reset after steady state: {gaps:?}");
    shutdown_tx.send(true).unwrap();
    agent.await.unwrap().unwrap();
}

/// Shutdown during a backoff sleep returns at once, cleanly.
#[tokio::test(start_paused = true)]
async fn shutdown_during_backoff_returns_ok() {
    let mut cfg = config(1);
    cfg.backends.clear();
    let connector = DuplexConnector::new(1 << 16);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let agent = tokio::spawn(run(
        cfg,
        Identity::from_secret_bytes([3; 32]),
        deps(connector.clone(), shutdown_rx),
    ));
    drop(connector.accept().await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = Instant::now();
    shutdown_tx.send(true).unwrap();
    agent.await.unwrap().unwrap();
    assert_eq!(Instant::now(), asked);
}

/// The `provider_id` of `auth_ok` is persisted at once: an agent restarted
/// with the same store logs in without its enrollment code (which a
/// coordinator may accept only once), and so does its next session.
#[tokio::test(start_paused = true)]
async fn provider_id_is_persisted_and_the_code_sent_only_once() {
    let mut cfg = config(1);
    cfg.backends.clear();
    cfg.coordinator.enrollment_code = Some("enroll-once".into());
    let store = provider_agent::provider_id::MemoryStore::default();
    let mut codes = Vec::new();
    for incarnation in 0..2 {
        let connector = DuplexConnector::new(1 << 16);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut agent_deps = deps(connector.clone(), shutdown_rx);
        agent_deps.provider_ids = Arc::new(store.clone());
        let agent = tokio::spawn(run(cfg.clone(), Identity::from_secret_bytes([3; 32]), agent_deps));
        let mut ws = connector.accept().await;
        send(&mut ws, json!({"type": "auth_challenge", "nonce": "AAAA"})).await;
        let response = recv_type(&mut ws, "auth_response").await;
        codes.push(response["enrollment_code"].clone());
        send(&mut ws, json!({"type": "auth_ok", "provider_id": "prov-7"})).await;
        recv_type(&mut ws, "capabilities").await;
        if incarnation == 0 {
            // A crash right after auth_ok: the task is dropped, nothing runs.
            agent.abort();
            let _ = agent.await;
        } else {
            shutdown_tx.send(true).unwrap();
            agent.await.unwrap().unwrap();
        }
    }
    assert_eq!(codes, vec![json!("enroll-once"), serde_json::Value::Null]);
    use provider_agent::provider_id::ProviderIdStore as _;
    assert_eq!(store.load().unwrap().as_deref(), Some("prov-7"));
}
