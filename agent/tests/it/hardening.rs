//! Issue 13's hardening, one test per defect found in review: each failed on
//! the code before its fix.

use std::sync::Arc;

use provider_agent::backend::BackendError;
use provider_agent::executor::board::{Admission, Board, FrameKind, QueueError};
use provider_agent::observer::NoopObserver;
use provider_agent::protocol::{DecodeError, ErrorCode, Inbound, JobId, decode_inbound};
use provider_agent::stats::{ENTRIES_MAX, Stats};
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant};

use crate::fixtures::{ScriptedBackend, drain, executor, job};

const ID: &str = "6f1c2d7e-3b1a-4c5d-8e9f-0a1b2c3d4e5f";

/// A failing backend's detail (LAN address, base URL, upstream error body
/// echoing a key) stays in the agent's log: `job_error.message` is a short
/// text per error class.
#[tokio::test(start_paused = true)]
async fn job_error_message_does_not_leak_backend_detail() {
    let secrets = ["10.0.0.7:8000", "http://10.0.0.7:8000/v1", "sk-or-v1-abc…xyz"];
    let errors = [
        BackendError::Unreachable("connect to 10.0.0.7:8000 (http://10.0.0.7:8000/v1) refused".into()),
        BackendError::BadStatus {
            status: 401,
            body: r#"{"error":"invalid key sk-or-v1-abc…xyz at http://10.0.0.7:8000/v1"}"#.into(),
        },
        BackendError::BadStatus {
            status: 500,
            body: "x".repeat(4096) + " 10.0.0.7:8000",
        },
        BackendError::StreamCut("reset by 10.0.0.7:8000".into()),
        BackendError::Other("http://10.0.0.7:8000/v1 said sk-or-v1-abc…xyz".into()),
    ];
    for error in errors {
        let mut backend = ScriptedBackend::new(&["a"], 1);
        backend.error = Some(error.clone());
        let exec = executor(&backend, 1, 1 << 20).await;
        let mut tasks = JoinSet::new();
        exec.dispatch(job(1, 60_000), Instant::now(), &mut tasks).unwrap();
        while tasks.join_next().await.is_some() {}
        let frames = drain(&exec);
        let end = frames.last().expect("terminal frame");
        assert_eq!(end["type"], "job_error");
        assert_eq!(end["error_code"], error.code().as_str());
        let message = end["message"].as_str().expect("message");
        assert!(message.len() <= 80, "{error:?}: message too long: {message}");
        for secret in secrets {
            assert!(!message.contains(secret), "{error:?} leaked {secret:?}: {message}");
        }
    }
}

/// An `invalid_job` answer quotes at most a bounded prefix of the offending
/// value: a 16 MiB `format` string must not become a 16 MiB control frame.
#[test]
fn invalid_job_reason_quotes_a_bounded_prefix() {
    let huge = "x".repeat(16 << 20);
    let cases = [
        serde_json::json!({"type": "job", "job_id": ID, "model_id": "m", "request": {}, "format": huge}),
        serde_json::json!({"type": "job", "job_id": ID, "model_id": "m", "request": {}, "deadline_ms": huge}),
        serde_json::json!({"type": "job", "job_id": ID, "model_id": "m", "request": {}, "format": [huge]}),
    ];
    for case in cases {
        match decode_inbound(&case.to_string()) {
            Err(DecodeError::InvalidJob { reason, .. }) => {
                assert!(reason.len() <= 256, "reason of {} bytes", reason.len());
            }
            other => panic!("not invalid_job: {:?}", other.map(|_| ())),
        }
    }
}

/// An unknown frame type is named in logs and events by a bounded prefix only.
#[test]
fn unknown_kind_is_bounded() {
    let huge = "t".repeat(1 << 20);
    let text = serde_json::json!({"type": huge}).to_string();
    match decode_inbound(&text) {
        Ok(Inbound::Other { kind }) => assert!(kind.len() <= 256, "kind of {} bytes", kind.len()),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// A board that is closing admits nothing, before it is closed as after: a
/// job read during a graceful end would take a slot and then be lost with
/// the session (a gap `cargo mutants` found: `closing || closed` → `&&`).
#[test]
fn a_closing_board_admits_no_job() {
    let board = Board::new(4, 1_000, 64 << 10, Arc::new(NoopObserver));
    board.start_closing();
    assert!(matches!(
        board.admit(JobId::from(uuid::Uuid::from_u128(1))),
        Admission::Closing
    ));
    assert_eq!(board.in_flight(), 0);
    board.close();
    assert!(matches!(
        board.admit(JobId::from(uuid::Uuid::from_u128(2))),
        Admission::Closing
    ));
}

/// Control frames are bounded in bytes as well as in count: a few huge
/// frames overflow the control queue long before the frame count does.
#[test]
fn control_queue_is_bounded_in_bytes() {
    let board = Board::new(1, 1_000, 64 << 10, Arc::new(NoopObserver));
    let frame = || FrameKind::Text("y".repeat(16 << 10));
    for _ in 0..4 {
        board.push_control(frame()).expect("within the byte bound");
    }
    assert!(matches!(board.push_control(frame()), Err(QueueError::ControlFull(_))));
    assert!(board.queued().1 <= 64 << 10);
}

/// A flood of rejections does not push completions out of the heartbeat's
/// window: latency and tokens/s still describe the jobs that ran, and the
/// error rate counts every outcome of the window.
#[tokio::test(start_paused = true)]
async fn rejection_flood_keeps_completion_figures() {
    let mut stats = Stats::default();
    let t0 = Instant::now();
    for _ in 0..10 {
        stats.record_done(t0, 2_000, 100);
    }
    let flood = 3 * ENTRIES_MAX;
    for _ in 0..flood {
        stats.record_error(t0, 1, ErrorCode::OutOfCapacity);
    }
    let snap = stats.snapshot(t0 + Duration::from_millis(1_000));
    assert_eq!(snap.p50_latency_ms, 2_000);
    assert_eq!(snap.p95_latency_ms, 2_000);
    assert_eq!(snap.tokens_per_sec_p50, 50.0);
    let expected_rate = flood as f64 / (flood + 10) as f64;
    assert!(
        (snap.error_rate_60s - expected_rate).abs() < 1e-9,
        "{}",
        snap.error_rate_60s
    );
    assert_eq!(snap.last_error_code, Some(ErrorCode::OutOfCapacity));
}

/// Two spellings of one UUID are two jobs: the second is admitted, not
/// answered `duplicate_job`, and each job's frames carry its own spelling.
#[tokio::test(start_paused = true)]
async fn two_spellings_of_one_uuid_are_two_jobs() {
    let backend = ScriptedBackend::new(&["a"], 1);
    let exec = executor(&backend, 4, 1 << 20).await;
    let mut tasks = JoinSet::new();
    let spellings = [ID.to_uppercase(), format!("{{{ID}}}")];
    for spelling in &spellings {
        let mut frame = job(1, 60_000);
        frame.job_id = JobId::parse(spelling).expect("a UUID");
        exec.dispatch(frame, Instant::now(), &mut tasks).unwrap();
    }
    assert_eq!(exec.in_flight(), 2, "both spellings hold a slot");
    while tasks.join_next().await.is_some() {}
    let frames = drain(&exec);
    for spelling in &spellings {
        let ends: Vec<_> = frames
            .iter()
            .filter(|f| f["job_id"] == spelling.as_str() && f["type"] == "job_done")
            .collect();
        assert_eq!(ends.len(), 1, "{spelling}: {frames:?}");
    }
    assert!(frames.iter().all(|f| f["error_code"].is_null()), "{frames:?}");
}
