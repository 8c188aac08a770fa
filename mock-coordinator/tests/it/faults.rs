//! Scripted faults sent to the agent (malformed jobs, duplicate ids,
//! unknown types, disconnects) and the agent's own misbehaviour, which is
//! recorded and tolerated.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use mock_coordinator::script::MalformedKind;
use mock_coordinator::{CloseReason, JobKind, JobOutcome, ViolationKind};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::client::*;

const ALL_MALFORMED: [&str; 13] = [
    "not_json",
    "not_object",
    "no_type",
    "missing_job_id",
    "bad_job_id",
    "missing_model",
    "bad_model",
    "missing_request",
    "request_not_object",
    "bad_deadline",
    "deadline_not_number",
    "zero_deadline",
    "bad_format",
];

/// Every malformed kind is sent at its time, broken as named, and recorded as such.
#[tokio::test(start_paused = true)]
async fn malformed_jobs_sent_as_scripted() {
    let rules: String = ALL_MALFORMED
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            format!(
                "[[coordinator.malformed]]\nat_ms = {}\nkind = \"{kind}\"\n",
                100 + i * 10
            )
        })
        .collect();
    let (coord, log) = coordinator(&rules);
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let mut texts = Vec::new();
    for _ in ALL_MALFORMED {
        texts.push(next_text(&mut ws).await.unwrap());
    }
    assert!(
        serde_json::from_str::<Value>(&texts[0]).is_err(),
        "not_json: {}",
        texts[0]
    );
    let parsed: Vec<Value> = texts[1..].iter().map(|t| serde_json::from_str(t).unwrap()).collect();
    assert!(parsed[0].is_array());
    assert!(parsed[1].get("type").is_none());
    assert!(parsed[2].get("job_id").is_none());
    assert!(uuid::Uuid::parse_str(parsed[3]["job_id"].as_str().unwrap()).is_err());
    assert!(parsed[4].get("model_id").is_none());
    assert!(parsed[5]["model_id"].is_number());
    assert!(parsed[6].get("request").is_none());
    assert!(parsed[7]["request"].is_string());
    assert_eq!(parsed[8]["deadline_ms"], -5);
    assert_eq!(parsed[9]["deadline_ms"], "soon");
    assert_eq!(parsed[10]["deadline_ms"], 0);
    assert_eq!(parsed[11]["format"], "klingon");
    let jobs = log.jobs();
    assert_eq!(jobs.len(), 13);
    assert_eq!(jobs[5].kind, JobKind::Malformed(MalformedKind::MissingModel));
    assert_eq!(ms(jobs[5].sent_us.unwrap()), 150);
    assert!(jobs.iter().all(|j| j.arrival.is_none()));
    // The agent's expected answer to an answerable one is attributed to it.
    let id = jobs[5].job_id.clone();
    send(&mut ws, error(&id, "invalid_job", 0)).await;
    settle().await;
    assert_eq!(log.jobs()[5].outcome(), JobOutcome::Error("invalid_job".into()));
    assert_eq!(MalformedKind::MissingModel.expected_error_code(), Some("invalid_job"));
    assert!(log.violations().is_empty());
}

/// A duplicate re-sends the exact frame; `duplicate_job` goes to the duplicate, the stream to the original.
#[tokio::test(start_paused = true)]
async fn duplicate_job_ids() {
    let (coord, log) = coordinator(
        "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 100\ncount = 1\n\
         [[coordinator.duplicates]]\njob = 0\ndelay_ms = 40\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let original = next_text(&mut ws).await.unwrap();
    let again = next_text(&mut ws).await.unwrap();
    assert_eq!(original, again);
    let id = serde_json::from_str::<Value>(&original).unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    send(&mut ws, error(&id, "duplicate_job", 0)).await;
    send(&mut ws, chunk(&id, b"body")).await;
    send(&mut ws, done(&id, 1, 1, 1)).await;
    settle().await;
    let jobs = log.jobs();
    assert_eq!(jobs[1].kind, JobKind::Duplicate { of: 0 });
    assert_eq!(ms(jobs[1].sent_us.unwrap() - jobs[0].sent_us.unwrap()), 40);
    assert_eq!(jobs[1].outcome(), JobOutcome::Error("duplicate_job".into()));
    assert_eq!(jobs[0].outcome(), JobOutcome::Done);
    assert_eq!(jobs[0].bytes, b"body");
    assert!(log.violations().is_empty(), "{:?}", log.violations());
}

/// Unknown message types are sent as scripted, with their extra fields.
#[tokio::test(start_paused = true)]
async fn unknown_types_sent() {
    let (coord, log) =
        coordinator("[[coordinator.unknown_types]]\nat_ms = 300\ntype = \"config_update\"\nfields = { level = 3 }\n");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let frame = next_json(&mut ws).await;
    assert_eq!(frame, serde_json::json!({"type": "config_update", "level": 3}));
    let out = log.frames().into_iter().find(|f| f.kind == "config_update").unwrap();
    assert_eq!(ms(out.at_us), 300);
}

/// A scripted close ends the connection at its time; the job in flight is session-lost.
#[tokio::test(start_paused = true)]
async fn disconnect_close_loses_jobs() {
    let (coord, log) = coordinator(
        "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 100\ncount = 1\n\
         [[coordinator.disconnects]]\nat_ms = 700\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job = next_json(&mut ws).await;
    let close = ws.next().await.unwrap().unwrap();
    assert!(matches!(close, Message::Close(_)), "{close:?}");
    settle().await;
    let session = &log.sessions()[0];
    assert_eq!(session.close_reason, Some(CloseReason::ScriptedDisconnect));
    assert_eq!(ms(session.closed_us.unwrap()), 700);
    let jobs = log.jobs();
    assert_eq!(jobs[0].outcome(), JobOutcome::SessionLost);
    assert_eq!(ms(jobs[0].session_lost_us.unwrap()), 700);
    // A frame for that job on the next connection is a violation.
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    send(&mut ws, done(job["job_id"].as_str().unwrap(), 0, 0, 0)).await;
    settle().await;
    let v = log.violations();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].kind, v[0].conn), (ViolationKind::LostSessionJob, 2));
}

/// A scripted drop ends the connection without a Close frame.
#[tokio::test(start_paused = true)]
async fn disconnect_drop() {
    let (coord, log) = coordinator("[[coordinator.disconnects]]\nat_ms = 200\nkind = \"drop\"\n");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let end = ws.next().await;
    assert!(!matches!(end, Some(Ok(Message::Close(_)))), "{end:?}");
    assert!(log.frames().iter().all(|f| f.kind != "close"));
    assert_eq!(log.sessions()[0].close_reason, Some(CloseReason::ScriptedDisconnect));
}

/// Anything the agent may not send is recorded as a violation and the session goes on.
#[tokio::test(start_paused = true)]
async fn agent_violations_are_tolerated() {
    let (coord, log) =
        coordinator("[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 500\ncount = 1\n");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    send(&mut ws, "this is not json".into()).await;
    send(&mut ws, "{\"job_id\":\"x\"}".into()).await;
    send(&mut ws, "{\"type\":\"config_update\"}".into()).await;
    send(&mut ws, chunk("00000000-0000-4000-8000-000000000000", b"x")).await;
    send(
        &mut ws,
        "{\"type\":\"job_chunk\",\"job_id\":\"a\",\"data\":\"%%%\"}".into(),
    )
    .await;
    send(&mut ws, "{\"type\":\"auth_response\"}".into()).await;
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let job = next_json(&mut ws).await;
    let id = job["job_id"].as_str().unwrap();
    send(&mut ws, done(id, 1, 1, 1)).await;
    send(&mut ws, done(id, 1, 1, 1)).await;
    settle().await;
    let kinds: Vec<ViolationKind> = log.violations().iter().map(|v| v.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ViolationKind::NotJson,
            ViolationKind::NoType,
            ViolationKind::UnknownType,
            ViolationKind::UnknownJob,
            ViolationKind::BadBase64,
            ViolationKind::AuthAfterAuth,
            ViolationKind::BinaryFrame,
            ViolationKind::AfterTerminal,
        ]
    );
    let jobs = log.jobs();
    assert_eq!(jobs[0].outcome(), JobOutcome::Done);
    assert_eq!(jobs[0].terminals.len(), 2);
    assert_eq!(log.sessions()[0].closed_us, None);
}

/// Pings are answered with pongs and recorded.
#[tokio::test(start_paused = true)]
async fn pings_answered() {
    let (coord, log) = coordinator("");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    ws.send(Message::Ping(b"hb".to_vec().into())).await.unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(1), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong(b"hb".to_vec().into()));
    assert!(log.frames().iter().any(|f| f.kind == "ping"));
}

/// An agent that sends nothing for `idle_timeout_ms` is closed as dead, with its job lost.
#[tokio::test(start_paused = true)]
async fn silent_agent_closed_after_idle_timeout() {
    let (coord, log) = coordinator(
        "idle_timeout_ms = 3000\n\
         [[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 100\ncount = 1\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let _job = next_json(&mut ws).await;
    let closed = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(Ok(_)) = ws.next().await {}
    });
    assert!(closed.await.is_ok(), "the silent connection was never closed");
    let session = &log.sessions()[0];
    assert_eq!(session.close_reason, Some(CloseReason::IdleTimeout));
    // The last frame read was the auth response, at the start.
    assert!((3000..3100).contains(&ms(session.closed_us.unwrap())), "{session:?}");
    assert_eq!(log.jobs()[0].outcome(), JobOutcome::SessionLost);
}

/// Pings keep a quiet agent's connection alive, and a read pause does not count as the agent's silence.
#[tokio::test(start_paused = true)]
async fn pings_and_read_pauses_do_not_count_as_idle() {
    let (coord, log) = coordinator(
        "idle_timeout_ms = 3000\n\
         [[coordinator.read_pauses]]\nstart_ms = 1000\nend_ms = 6000\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_millis(500)).await;
    ws.send(Message::Ping(Vec::new().into())).await.unwrap();
    // Silent from 500 ms to 8000 ms, but 1000..6000 is a pause: 2 s of idle reading.
    tokio::time::sleep(Duration::from_millis(7500)).await;
    assert_eq!(log.sessions()[0].closed_us, None, "{:?}", log.sessions()[0]);
    ws.send(Message::Ping(Vec::new().into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(log.sessions()[0].closed_us, None, "{:?}", log.sessions()[0]);
    // Then silence for longer than the timeout closes it, 3 s after the last ping.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    settle().await;
    assert_eq!(log.sessions()[0].close_reason, Some(CloseReason::IdleTimeout));
}
