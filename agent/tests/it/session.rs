//! Session behaviour against an in-memory coordinator: handshake, timeouts,
//! inbound processing while outbound is blocked, batching, teardown.

use std::sync::{Arc, Mutex};

use provider_agent::clock::{AnchoredClock, SharedClock};
use provider_agent::config::AgentConfig;
use provider_agent::discovery::ConfiguredBackend;
use provider_agent::identity::Identity;
use provider_agent::net::{SharedConnector, tls};
use provider_agent::observer::{AgentEvent, Observer, SharedObserver};
use provider_agent::provider_id::{MemoryStore, SharedProviderIdStore};
use provider_agent::session::handshake::INBOUND_MESSAGE_BYTES_MAX;
use provider_agent::session::{self, SessionCtx, SessionEnd, SessionError};
use provider_agent::stats::Stats;
use serde_json::json;
use std::sync::atomic::Ordering;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant, sleep};
use uuid::Uuid;

use crate::coord::{DuplexConnector, Server, handshake, job_frame, recv, recv_type, send};
use crate::fixtures::{ScriptedBackend, Seen, config, routes};

/// Collects agent events.
#[derive(Default)]
struct Events(Mutex<Vec<AgentEvent>>);

impl Observer for Events {
    fn on_event(&self, event: AgentEvent) {
        self.0.lock().unwrap().push(event);
    }
}

struct Harness {
    connector: Arc<DuplexConnector>,
    shutdown_tx: watch::Sender<bool>,
    session: JoinHandle<SessionEnd>,
    events: Arc<Events>,
}

fn start(cfg: AgentConfig, backend: &ScriptedBackend, pipe_bytes: usize) -> Harness {
    let connector = DuplexConnector::new(pipe_bytes);
    let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
    let events = Arc::new(Events::default());
    let (backend, shared_connector, observer) = (backend.clone(), connector.clone(), events.clone());
    let session = tokio::spawn(async move {
        let routes = routes(&backend).await;
        let backends = vec![ConfiguredBackend {
            backend: Arc::new(backend.clone()),
            allow_list: None,
        }];
        let provider_ids: SharedProviderIdStore = Arc::new(MemoryStore::default());
        let identity = Identity::from_secret_bytes([7; 32]);
        let connector: SharedConnector = shared_connector;
        let tls = tls::client_config_webpki();
        let stats = Arc::new(Mutex::new(Stats::default()));
        let clock: SharedClock = Arc::new(AnchoredClock::new(0));
        let observer: SharedObserver = observer;
        let ctx = SessionCtx {
            config: &cfg,
            identity: &identity,
            connector: &connector,
            tls: &tls,
            routes,
            backends: &backends,
            stats: &stats,
            clock: &clock,
            observer: &observer,
            provider_ids: &provider_ids,
            session: 1,
        };
        let mut provider_id = None;
        session::run(ctx, &mut provider_id, &mut shutdown_rx).await
    });
    Harness {
        connector,
        shutdown_tx,
        session,
        events,
    }
}

async fn steady(h: &Harness) -> Server {
    let mut ws = h.connector.accept().await;
    handshake(&mut ws).await;
    ws
}

/// The handshake signs the nonce and ends with sorted capabilities.
#[tokio::test(start_paused = true)]
async fn handshake_signs_nonce_and_sends_capabilities() {
    let backend = ScriptedBackend::new(&[], 0);
    let h = start(config(3), &backend, 1 << 16);
    let mut ws = h.connector.accept().await;
    let caps = handshake(&mut ws).await;
    assert_eq!(caps["models"][0]["model_id"], "m");
    assert_eq!(caps["models"][0]["max_concurrent"], 3);
    assert_eq!(caps["limits"]["max_concurrent_total"], 3);
    assert!(caps["metadata"]["agent_version"].is_string());
}

/// A coordinator that never sends the challenge fails the first step at
/// exactly its timeout.
#[tokio::test(start_paused = true)]
async fn silent_coordinator_times_out_the_first_step() {
    let mut cfg = config(1);
    cfg.session.handshake_step_timeout_ms = 2_000;
    let backend = ScriptedBackend::new(&[], 0);
    let h = start(cfg, &backend, 1 << 16);
    let _ws = h.connector.accept().await;
    let started = Instant::now();
    let end = h.session.await.unwrap();
    assert_eq!(end, SessionEnd::Failed(SessionError::Timeout("auth_challenge")));
    assert_eq!(Instant::now() - started, Duration::from_millis(2_000));
}

/// `auth_failed` ends the session before steady state.
#[tokio::test(start_paused = true)]
async fn auth_failed_ends_the_session() {
    let backend = ScriptedBackend::new(&[], 0);
    let h = start(config(1), &backend, 1 << 16);
    let mut ws = h.connector.accept().await;
    send(&mut ws, json!({"type": "auth_challenge", "nonce": "AAAA"})).await;
    recv_type(&mut ws, "auth_response").await;
    send(&mut ws, json!({"type": "auth_failed", "reason": "unknown key"})).await;
    let end = h.session.await.unwrap();
    assert_eq!(end, SessionEnd::Failed(SessionError::AuthFailed("unknown key".into())));
}

/// With the coordinator not reading and the agent's writes blocked, a cancel
/// is still processed at once and a new job is still answered.
#[tokio::test(start_paused = true)]
async fn cancel_is_processed_while_outbound_is_blocked() {
    let chunks: Vec<String> = (0..5_000).map(|i| format!("{i:0>100}")).collect();
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    let backend = ScriptedBackend::new(&refs, 0);
    let h = start(config(1), &backend, 4 << 10);
    let mut ws = steady(&h).await;
    send(&mut ws, job_frame(1, 60_000)).await;
    // Stop reading: the 4 KiB pipe fills, the writer blocks, the outbound
    // budget fills, the backend waits in send_chunk.
    sleep(Duration::from_millis(500)).await;
    assert!(!backend.seen().contains(&Seen::Dropped(crate::fixtures::id(1))));
    send(
        &mut ws,
        json!({"type": "job_cancel", "job_id": Uuid::from_u128(1).to_string()}),
    )
    .await;
    sleep(Duration::from_millis(1)).await;
    assert!(
        backend.seen().contains(&Seen::Dropped(crate::fixtures::id(1))),
        "backend call dropped while blocked"
    );
    send(&mut ws, job_frame(2, 60_000)).await;
    send(&mut ws, job_frame(3, 60_000)).await;
    sleep(Duration::from_millis(1)).await;
    let rejected = h.events.0.lock().unwrap().iter().any(
        |e| matches!(e, AgentEvent::JobRejected { job_id, in_flight: 1, .. } if *job_id == crate::fixtures::id(3)),
    );
    assert!(rejected, "job 3 rejected at capacity without waiting for the socket");
    assert!(!h.session.is_finished(), "the session survives a short stall");
}

/// A coordinator that never reads ends the session after the write timeout,
/// and the session's jobs are cancelled before `run` returns.
#[tokio::test(start_paused = true)]
async fn stalled_writer_ends_session_and_cancels_jobs() {
    let chunks: Vec<String> = (0..5_000).map(|i| format!("{i:0>100}")).collect();
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    let backend = ScriptedBackend::new(&refs, 0);
    let mut cfg = config(1);
    cfg.session.write_timeout_ms = 3_000;
    let h = start(cfg, &backend, 4 << 10);
    let mut ws = steady(&h).await;
    send(&mut ws, job_frame(1, 600_000)).await;
    let started = Instant::now();
    let end = h.session.await.unwrap();
    let SessionEnd::Ended { reason } = end else {
        panic!("{end:?}")
    };
    assert!(reason.contains("blocked for more than 3000 ms"), "{reason}");
    let elapsed = Instant::now() - started;
    assert!(
        elapsed >= Duration::from_millis(3_000) && elapsed < Duration::from_millis(3_100),
        "{elapsed:?}"
    );
    assert!(backend.seen().contains(&Seen::Dropped(crate::fixtures::id(1))));
    let events = h.events.0.lock().unwrap();
    assert!(events.iter().any(|e| matches!(
        e,
        AgentEvent::SlotFreed {
            in_flight: 0,
            cancelled: true,
            ..
        }
    )));
}

/// No inbound frame for `idle_timeout_ms` ends the session.
#[tokio::test(start_paused = true)]
async fn idle_coordinator_ends_the_session() {
    let mut cfg = config(1);
    cfg.session.idle_timeout_ms = 3_000;
    cfg.session.ping_interval_ms = 1_000;
    let backend = ScriptedBackend::new(&[], 0);
    let h = start(cfg, &backend, 1 << 16);
    let _ws = steady(&h).await;
    let started = Instant::now();
    let end = h.session.await.unwrap();
    assert_eq!(
        end,
        SessionEnd::Ended {
            reason: "no inbound frame for 3000 ms".into()
        }
    );
    assert_eq!(Instant::now() - started, Duration::from_millis(3_000));
}

/// A quiet coordinator that keeps reading answers the agent's pings, and
/// the pongs keep the session alive past the idle timeout.
#[tokio::test(start_paused = true)]
async fn pongs_keep_a_quiet_session_alive() {
    let mut cfg = config(1);
    cfg.session.idle_timeout_ms = 3_000;
    cfg.session.ping_interval_ms = 1_000;
    let backend = ScriptedBackend::new(&[], 0);
    let h = start(cfg, &backend, 1 << 16);
    let mut ws = steady(&h).await;
    let reader = tokio::spawn(async move { while recv(&mut ws).await.is_some() {} });
    sleep(Duration::from_secs(20)).await;
    assert!(!h.session.is_finished());
    reader.abort();
}

/// Small chunks queued back to back share socket writes.
#[tokio::test(start_paused = true)]
async fn small_chunks_share_socket_writes() {
    let chunks: Vec<String> = (0..200).map(|i| format!("{i:0>16}")).collect();
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    let backend = ScriptedBackend::new(&refs, 0);
    let h = start(config(1), &backend, 1 << 20);
    let mut ws = steady(&h).await;
    let before = h.connector.writes.load(Ordering::Relaxed);
    send(&mut ws, job_frame(1, 60_000)).await;
    let mut chunks_seen = 0;
    loop {
        let frame = recv(&mut ws).await.unwrap();
        match frame["type"].as_str().unwrap() {
            "job_chunk" => chunks_seen += 1,
            "job_done" => break,
            _ => {}
        }
    }
    let writes = h.connector.writes.load(Ordering::Relaxed) - before;
    assert_eq!(chunks_seen, 200);
    assert!(writes <= 20, "201 frames took {writes} socket writes");
}

/// A connection that drops mid-job ends the session with the job cancelled
/// and its backend call dropped before `run` returns.
#[tokio::test(start_paused = true)]
async fn session_end_cancels_jobs_before_returning() {
    let mut backend = ScriptedBackend::new(&["a"], 0);
    backend.ttft = Duration::from_secs(30);
    let h = start(config(2), &backend, 1 << 16);
    let mut ws = steady(&h).await;
    send(&mut ws, job_frame(1, 60_000)).await;
    send(&mut ws, job_frame(2, 60_000)).await;
    sleep(Duration::from_millis(10)).await;
    drop(ws);
    let end = h.session.await.unwrap();
    assert!(matches!(end, SessionEnd::Ended { .. }), "{end:?}");
    let dropped = backend.seen().iter().filter(|s| matches!(s, Seen::Dropped(_))).count();
    assert_eq!(dropped, 2);
}

/// Heartbeats come on schedule and carry the real queue depth.
#[tokio::test(start_paused = true)]
async fn heartbeat_reports_queue_depth() {
    let mut cfg = config(4);
    cfg.session.heartbeat_interval_ms = 1_000;
    let mut backend = ScriptedBackend::new(&["a"], 0);
    backend.ttft = Duration::from_secs(30);
    let h = start(cfg, &backend, 1 << 16);
    let mut ws = steady(&h).await;
    send(&mut ws, job_frame(1, 60_000)).await;
    send(&mut ws, job_frame(2, 60_000)).await;
    let started = Instant::now();
    let beat = recv_type(&mut ws, "heartbeat").await;
    assert_eq!(beat["queue_depth"], 2);
    assert!(Instant::now() - started <= Duration::from_millis(1_000));
    let next = recv_type(&mut ws, "heartbeat").await;
    assert_eq!(next["queue_depth"], 2);
    assert!(!h.session.is_finished());
    drop(h.shutdown_tx);
}

/// Malformed frames are answered (`invalid_job`, `duplicate_job`) or counted,
/// never fatal; a good job after them completes.
#[tokio::test(start_paused = true)]
async fn malformed_frames_are_never_fatal() {
    let mut backend = ScriptedBackend::new(&["a"], 0);
    backend.ttft = Duration::from_millis(100);
    let h = start(config(4), &backend, 1 << 16);
    let mut ws = steady(&h).await;
    let id = |n: u128| Uuid::from_u128(n).to_string();
    ws_send_raw(&mut ws, "not json").await;
    send(&mut ws, json!({"type": "config_update", "x": 1})).await;
    send(
        &mut ws,
        json!({"type": "job", "job_id": "not-a-uuid", "model_id": "m", "request": {}}),
    )
    .await;
    send(&mut ws, json!({"type": "job", "job_id": id(5), "request": {}})).await;
    send(&mut ws, job_frame(6, 60_000)).await;
    send(&mut ws, json!({"type": "job", "job_id": id(6), "deadline_ms": "soon"})).await;
    let mut ends = Vec::new();
    while ends.len() < 3 {
        let frame = recv(&mut ws).await.unwrap();
        if frame["type"] == "job_error" || frame["type"] == "job_done" {
            ends.push(frame);
        }
    }
    assert_eq!(
        (
            ends[0]["job_id"].as_str().unwrap(),
            ends[0]["error_code"].as_str().unwrap()
        ),
        (id(5).as_str(), "invalid_job")
    );
    assert_eq!(
        (
            ends[1]["job_id"].as_str().unwrap(),
            ends[1]["error_code"].as_str().unwrap()
        ),
        (id(6).as_str(), "duplicate_job")
    );
    assert_eq!(
        (ends[2]["job_id"].as_str().unwrap(), ends[2]["type"].as_str().unwrap()),
        (id(6).as_str(), "job_done")
    );
    let rejected = h
        .events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, AgentEvent::FrameRejected { .. }))
        .count();
    assert_eq!(rejected, 2, "the non-JSON frame and the job without a usable id");
    assert!(!h.session.is_finished());
}

async fn ws_send_raw(ws: &mut Server, text: &str) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(text.to_string().into()))
        .await
        .unwrap();
}

/// Graceful shutdown ends each job with a terminal frame, then closes.
#[tokio::test(start_paused = true)]
async fn graceful_shutdown_sends_terminal_frames_then_closes() {
    let mut backend = ScriptedBackend::new(&["a"], 0);
    backend.ttft = Duration::from_secs(30);
    let h = start(config(2), &backend, 1 << 16);
    let mut ws = steady(&h).await;
    send(&mut ws, job_frame(1, 60_000)).await;
    sleep(Duration::from_millis(10)).await;
    h.shutdown_tx.send(true).unwrap();
    let end = recv_type(&mut ws, "job_error").await;
    assert_eq!(end["error_code"], "internal");
    assert!(recv(&mut ws).await.is_none(), "a close frame follows");
    assert_eq!(h.session.await.unwrap(), SessionEnd::Shutdown);
}

/// In steady state the agent probes its backends every
/// `discovery_interval_ms`: a model that appears is advertised by a new
/// `capabilities` frame and then served; one that goes away is no longer
/// advertised and its jobs get `model_not_loaded`.
#[tokio::test(start_paused = true)]
async fn rediscovery_re_sends_capabilities_and_routes_by_them() {
    let mut cfg = config(2);
    cfg.session.discovery_interval_ms = 1_000;
    let backend = ScriptedBackend::new(&["x"], 1);
    let h = start(cfg, &backend, 1 << 16);
    let mut ws = steady(&h).await;
    *backend.models.lock().unwrap() = vec!["m".to_owned(), "n".to_owned()];
    let caps = tokio::time::timeout(Duration::from_millis(1_500), recv_type(&mut ws, "capabilities"))
        .await
        .expect("capabilities re-sent after the next rediscovery");
    let ids: Vec<&str> = caps["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m", "n"]);
    let mut job = job_frame(1, 60_000);
    job["model_id"] = "n".into();
    send(&mut ws, job).await;
    assert_eq!(
        recv_type(&mut ws, "job_done").await["job_id"],
        job_frame(1, 0)["job_id"]
    );
    *backend.models.lock().unwrap() = Vec::new();
    let caps = tokio::time::timeout(Duration::from_millis(1_500), recv_type(&mut ws, "capabilities"))
        .await
        .expect("capabilities re-sent when the backend went away");
    assert_eq!(caps["models"], json!([]));
    send(&mut ws, job_frame(2, 60_000)).await;
    assert_eq!(recv_type(&mut ws, "job_error").await["error_code"], "model_not_loaded");
}

/// Everything the agent logs while it is set as the thread's default
/// subscriber, at every level, as text.
#[derive(Clone, Default)]
struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Longest rejection reason a steady-state handshake frame may cause: its
/// type and a sentence, never its fields. A log line adds its level, target
/// and field name (no time: the capture has none) to the reason.
const HANDSHAKE_ECHO_BYTES_MAX: usize = 100;

/// An `auth_challenge` with a 1 MiB nonce in steady state is rejected and
/// logged by type only (the reason and every log line stay short, and no
/// part of the nonce appears), and the session carries on serving jobs.
#[tokio::test(start_paused = true)]
async fn a_steady_state_handshake_frame_is_logged_by_type_only() {
    let capture = LogCapture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime has one thread: the session's tasks log here.
    let _guard = tracing::subscriber::set_default(subscriber);
    let backend = ScriptedBackend::new(&["a"], 0);
    let h = start(config(2), &backend, 1 << 22);
    let mut ws = steady(&h).await;
    let nonce = "n".repeat(1 << 20);
    send(&mut ws, json!({"type": "auth_challenge", "nonce": nonce})).await;
    send(&mut ws, job_frame(1, 60_000)).await;
    assert_eq!(
        recv_type(&mut ws, "job_done").await["job_id"],
        Uuid::from_u128(1).to_string()
    );
    assert!(!h.session.is_finished(), "the session survived the frame");

    let reasons: Vec<String> = h
        .events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            AgentEvent::FrameRejected { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("auth_challenge"), "{}", reasons[0]);
    assert!(
        reasons[0].len() <= HANDSHAKE_ECHO_BYTES_MAX,
        "{} bytes",
        reasons[0].len()
    );
    let logs = capture.text();
    assert!(logs.contains("auth_challenge"), "the rejection was logged: {logs}");
    let longest = logs.lines().map(str::len).max().unwrap_or(0);
    assert!(longest <= 2 * HANDSHAKE_ECHO_BYTES_MAX, "a log line of {longest} bytes");
    assert!(!logs.contains("nnnnnnnnnnnnnnnn"), "part of the nonce was logged");
    drop(h.shutdown_tx);
}

/// An inbound message over `INBOUND_MESSAGE_BYTES_MAX` (16 MiB) is refused
/// while it is read and ends the session, also when it comes in frames that
/// are each under the frame bound: the agent never buffers more than its
/// bound for one message (with tungstenite's defaults it would take 64 MiB).
#[tokio::test(start_paused = true)]
async fn an_inbound_message_over_its_bound_ends_the_session() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let backend = ScriptedBackend::new(&[], 0);
    let h = start(config(1), &backend, 1 << 16);
    let mut ws = steady(&h).await;
    let half = INBOUND_MESSAGE_BYTES_MAX / 2 + 1;
    let first = Frame::message(vec![b'x'; half], OpCode::Data(Data::Text), false);
    let last = Frame::message(vec![b'x'; half], OpCode::Data(Data::Continue), true);
    // The agent may drop the connection before the last frame is written.
    let _ = ws.send(Message::Frame(first)).await;
    let _ = ws.send(Message::Frame(last)).await;
    let SessionEnd::Ended { reason } = h.session.await.unwrap() else {
        panic!("the session ends")
    };
    assert!(
        reason.starts_with("read failed") && reason.contains("too long"),
        "{reason}"
    );
}
