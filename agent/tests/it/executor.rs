//! The executor's guarantees, with races made deterministic: current-thread
//! runtime, paused clock, and explicit gates instead of sleeps and hope.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use provider_agent::backend::BackendError;
use provider_agent::clock::AnchoredClock;
use provider_agent::executor::{Executor, ExecutorLimits};
use provider_agent::observer::NoopObserver;
use provider_agent::protocol::ErrorCode;
use provider_agent::stats::Stats;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant};

use crate::fixtures::{ScriptedBackend, Seen, drain, executor, id, job, routes, settle, terminals};

fn data(frame: &serde_json::Value) -> String {
    String::from_utf8(B64.decode(frame["data"].as_str().unwrap()).unwrap()).unwrap()
}

/// A completed job yields its chunks in order, then exactly one `job_done`.
#[tokio::test(start_paused = true)]
async fn completed_job_has_chunks_then_one_done() {
    let backend = ScriptedBackend::new(&["a", "bb", "ccc"], 10);
    let exec = executor(&backend, 4, 1 << 20).await;
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    exec.dispatch(job(1, 60_000), start, &mut tasks).unwrap();
    while tasks.join_next().await.is_some() {}
    let frames = drain(&exec);
    assert_eq!(frames.len(), 4);
    assert_eq!(frames.iter().take(3).map(data).collect::<Vec<_>>(), ["a", "bb", "ccc"]);
    assert_eq!(frames[3]["type"], "job_done");
    assert_eq!(frames[3]["tokens"]["output"], 3);
    assert_eq!(frames[3]["duration_ms"], 30);
    assert_eq!(exec.in_flight(), 0);
}

/// A cancel that lands after the backend finished but before the job task
/// ran again wins: no terminal frame, and the slot is free.
#[tokio::test(start_paused = true)]
async fn cancel_wins_race_with_completion() {
    let gate = Arc::new(Notify::new());
    let mut backend = ScriptedBackend::new(&["x"], 0);
    backend.gate = Some(gate.clone());
    let exec = executor(&backend, 1, 1 << 20).await;
    let mut tasks = JoinSet::new();
    exec.dispatch(job(1, 60_000), Instant::now(), &mut tasks).unwrap();
    settle().await;
    gate.notify_one(); // the backend may now return...
    assert!(exec.cancel(&id(1))); // ...but the cancel is processed first
    while tasks.join_next().await.is_some() {}
    let frames = drain(&exec);
    assert!(terminals(&frames).is_empty(), "{frames:?}");
    assert!(frames.is_empty(), "queued chunk purged by the cancel: {frames:?}");
    assert_eq!(exec.in_flight(), 0);
    assert!(backend.seen().contains(&Seen::Dropped(id(1))));
}

/// A completion that is queued before the cancel arrives wins: exactly one
/// terminal frame, and the late cancel changes nothing (no double free).
#[tokio::test(start_paused = true)]
async fn completion_wins_race_with_cancel() {
    let backend = ScriptedBackend::new(&["x"], 0);
    let exec = executor(&backend, 1, 1 << 20).await;
    let mut tasks = JoinSet::new();
    exec.dispatch(job(1, 60_000), Instant::now(), &mut tasks).unwrap();
    while tasks.join_next().await.is_some() {}
    assert!(!exec.cancel(&id(1)));
    assert!(!exec.cancel(&id(1)));
    assert_eq!(exec.in_flight(), 0);
    let frames = drain(&exec);
    assert_eq!(terminals(&frames).len(), 1);
    assert_eq!(terminals(&frames)[0]["type"], "job_done");
    // The freed slot is really free: the next job is admitted.
    exec.dispatch(job(2, 60_000), Instant::now(), &mut tasks).unwrap();
    assert_eq!(exec.in_flight(), 1);
}

/// A second job with an id in flight gets `duplicate_job`; the first job
/// runs on untouched and ends with its own `job_done`.
#[tokio::test(start_paused = true)]
async fn duplicate_job_is_rejected_and_first_untouched() {
    let backend = ScriptedBackend::new(&["a", "b"], 10);
    let exec = executor(&backend, 4, 1 << 20).await;
    let mut tasks = JoinSet::new();
    exec.dispatch(job(7, 60_000), Instant::now(), &mut tasks).unwrap();
    exec.dispatch(job(7, 60_000), Instant::now(), &mut tasks).unwrap();
    assert_eq!(exec.in_flight(), 1);
    while tasks.join_next().await.is_some() {}
    let frames = drain(&exec);
    let ends = terminals(&frames);
    assert_eq!(ends.len(), 2, "{frames:?}");
    assert_eq!(ends[0]["error_code"], "duplicate_job");
    assert_eq!(ends[1]["type"], "job_done");
    assert_eq!(frames.iter().filter(|f| f["type"] == "job_chunk").count(), 2);
    assert_eq!(
        backend.seen().iter().filter(|s| matches!(s, Seen::Started(_))).count(),
        1
    );
}

/// `out_of_capacity` is answered only when `max_concurrent` jobs hold a slot.
#[tokio::test(start_paused = true)]
async fn out_of_capacity_only_when_full() {
    let backend = ScriptedBackend::new(&["a"], 100);
    let exec = executor(&backend, 2, 1 << 20).await;
    let mut tasks = JoinSet::new();
    exec.dispatch(job(1, 60_000), Instant::now(), &mut tasks).unwrap();
    exec.dispatch(job(2, 60_000), Instant::now(), &mut tasks).unwrap();
    assert!(
        drain(&exec).is_empty(),
        "two jobs under max_concurrent=2 are both admitted"
    );
    exec.dispatch(job(3, 60_000), Instant::now(), &mut tasks).unwrap();
    let frames = drain(&exec);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["error_code"], "out_of_capacity");
    assert_eq!(frames[0]["job_id"], id(3).to_string());
    assert_eq!(exec.in_flight(), 2);
}

/// The slot is freed before the terminal frame is queued: the moment the
/// terminal frame can be seen, a new job is admitted.
#[tokio::test(start_paused = true)]
async fn slot_is_free_when_terminal_frame_is_visible() {
    let backend = ScriptedBackend::new(&[], 0);
    let exec = executor(&backend, 1, 1 << 20).await;
    let mut tasks = JoinSet::new();
    exec.dispatch(job(1, 60_000), Instant::now(), &mut tasks).unwrap();
    for _ in 0..100 {
        settle().await;
        if exec.board().queued().0 > 0 {
            break;
        }
    }
    assert_eq!(exec.board().queued().0, 1, "job 1's terminal frame is queued");
    assert_eq!(exec.in_flight(), 0);
    exec.dispatch(job(2, 60_000), Instant::now(), &mut tasks).unwrap();
    let frames = drain(&exec);
    assert_eq!(
        terminals(&frames).len(),
        1,
        "only job 1's done; job 2 admitted: {frames:?}"
    );
    assert_eq!(exec.in_flight(), 1);
}

/// Jobs that finish on their first poll, before the dispatcher even yields,
/// neither leak nor double-free slots: 200 of them through one slot.
#[tokio::test(start_paused = true)]
async fn instant_jobs_never_leak_a_slot() {
    let backend = ScriptedBackend::new(&[], 0);
    let exec = executor(&backend, 1, 1 << 20).await;
    let mut tasks = JoinSet::new();
    let mut frames = Vec::new();
    for n in 0..200u128 {
        exec.dispatch(job(n, 60_000), Instant::now(), &mut tasks).unwrap();
        while tasks.join_next().await.is_some() {}
        assert_eq!(exec.in_flight(), 0);
        frames.extend(drain(&exec));
    }
    assert_eq!(frames.len(), 200);
    assert!(
        frames.iter().all(|f| f["type"] == "job_done"),
        "no out_of_capacity with a free slot"
    );
}

/// A cancel frees the slot, drops the backend call and purges frames of
/// the job that were already queued.
#[tokio::test(start_paused = true)]
async fn cancel_purges_queued_frames_and_drops_backend() {
    let gate = Arc::new(Notify::new());
    let mut backend = ScriptedBackend::new(&["a", "b", "c"], 0);
    backend.gate = Some(gate);
    let exec = executor(&backend, 2, 1 << 20).await;
    let mut tasks = JoinSet::new();
    exec.dispatch(job(1, 60_000), Instant::now(), &mut tasks).unwrap();
    exec.dispatch(job(2, 60_000), Instant::now(), &mut tasks).unwrap();
    settle().await;
    assert_eq!(exec.board().queued().0, 6, "both jobs queued three chunks");
    assert!(exec.cancel(&id(1)));
    assert_eq!(exec.board().queued().0, 3, "job 1's chunks are gone");
    settle().await;
    assert_eq!(exec.in_flight(), 1);
    assert!(backend.seen().contains(&Seen::Dropped(id(1))));
    let frames = drain(&exec);
    assert!(frames.iter().all(|f| f["job_id"] == id(2).to_string()));
}

/// The deadline covers outbound waits: a job stuck waiting for outbound
/// budget ends with `backend_timeout` exactly at arrival + deadline.
#[tokio::test(start_paused = true)]
async fn deadline_covers_outbound_wait() {
    let backend = ScriptedBackend::new(&["first", "second", "third"], 0);
    // Room for one chunk frame only; nobody drains the board.
    let exec = executor(&backend, 1, 100).await;
    let mut tasks = JoinSet::new();
    let arrived = Instant::now();
    exec.dispatch(job(1, 500), arrived, &mut tasks).unwrap();
    while tasks.join_next().await.is_some() {}
    assert_eq!(Instant::now() - arrived, Duration::from_millis(500));
    let frames = drain(&exec);
    let ends = terminals(&frames);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["error_code"], "backend_timeout");
    assert_eq!(ends[0]["bytes_emitted"], 5, "only the first chunk was queued");
    assert!(backend.seen().contains(&Seen::Dropped(id(1))));
}

/// The deadline runs from the job's arrival, not from its dispatch.
#[tokio::test(start_paused = true)]
async fn deadline_runs_from_arrival() {
    let mut backend = ScriptedBackend::new(&["a"], 0);
    backend.ttft = Duration::from_secs(10);
    let exec = executor(&backend, 1, 1 << 20).await;
    let mut tasks = JoinSet::new();
    let arrived = Instant::now();
    tokio::time::advance(Duration::from_millis(300)).await;
    exec.dispatch(job(1, 500), arrived, &mut tasks).unwrap();
    while tasks.join_next().await.is_some() {}
    assert_eq!(Instant::now() - arrived, Duration::from_millis(500));
    assert_eq!(drain(&exec)[0]["error_code"], "backend_timeout");
}

/// When the session ends, every job loses its slot, its backend call is
/// dropped, and no terminal frame is queued for it.
#[tokio::test(start_paused = true)]
async fn session_close_cancels_everything() {
    let mut backend = ScriptedBackend::new(&["a"], 0);
    backend.ttft = Duration::from_secs(10);
    let exec = executor(&backend, 4, 1 << 20).await;
    let mut tasks = JoinSet::new();
    exec.dispatch(job(1, 60_000), Instant::now(), &mut tasks).unwrap();
    exec.dispatch(job(2, 60_000), Instant::now(), &mut tasks).unwrap();
    settle().await;
    let lost = exec.close();
    assert_eq!(lost, vec![id(1), id(2)]);
    tasks.shutdown().await;
    assert_eq!(exec.in_flight(), 0);
    assert!(drain(&exec).is_empty());
    let dropped = backend.seen().iter().filter(|s| matches!(s, Seen::Dropped(_))).count();
    assert_eq!(dropped, 2);
    assert!(
        exec.dispatch(job(3, 60_000), Instant::now(), &mut tasks).is_err(),
        "a closed board takes nothing"
    );
}

/// A backend failure maps to its code and reports tokens and bytes emitted.
#[tokio::test(start_paused = true)]
async fn backend_error_reports_code_tokens_and_bytes() {
    let mut backend = ScriptedBackend::new(&["ab", "cde"], 1);
    backend.error = Some(BackendError::BadStatus {
        status: 401,
        body: String::new(),
    });
    let exec = executor(&backend, 1, 1 << 20).await;
    let mut tasks = JoinSet::new();
    exec.dispatch(job(1, 60_000), Instant::now(), &mut tasks).unwrap();
    while tasks.join_next().await.is_some() {}
    let frames = drain(&exec);
    let end = terminals(&frames)[0];
    assert_eq!(end["error_code"], "auth_rejected_by_backend");
    assert_eq!(end["tokens_emitted"], 2);
    assert_eq!(end["bytes_emitted"], 5);
}

/// Graceful shutdown ends each job with one `internal` terminal frame and
/// turns new jobs away.
#[tokio::test(start_paused = true)]
async fn graceful_shutdown_ends_jobs_with_terminal_frames() {
    let mut backend = ScriptedBackend::new(&["a", "b"], 0);
    backend.gate = Some(Arc::new(Notify::new()));
    let exec = executor(&backend, 4, 1 << 20).await;
    let mut tasks = JoinSet::new();
    exec.dispatch(job(1, 60_000), Instant::now(), &mut tasks).unwrap();
    settle().await;
    exec.shut_down_jobs();
    exec.dispatch(job(2, 60_000), Instant::now(), &mut tasks).unwrap();
    while tasks.join_next().await.is_some() {}
    let frames = drain(&exec);
    let ends = terminals(&frames);
    assert_eq!(ends.len(), 2, "{frames:?}");
    let by_id = |n: u128| ends.iter().find(|f| f["job_id"] == id(n).to_string()).unwrap();
    assert_eq!(by_id(1)["error_code"], "internal");
    assert_eq!(by_id(1)["bytes_emitted"], 2);
    assert_eq!(by_id(2)["error_code"], "internal");
    assert_eq!(exec.in_flight(), 0);
}

/// A panicking backend still frees its slot and gets one `internal` frame.
#[tokio::test(start_paused = true)]
async fn panicking_backend_frees_its_slot() {
    let mut backend = ScriptedBackend::new(&["a"], 0);
    backend.panic = true;
    let exec = executor(&backend, 1, 1 << 20).await;
    let mut tasks = JoinSet::new();
    exec.dispatch(job(1, 60_000), Instant::now(), &mut tasks).unwrap();
    while let Some(joined) = tasks.join_next().await {
        assert!(joined.is_err(), "the task panicked");
    }
    assert_eq!(exec.in_flight(), 0);
    let frames = drain(&exec);
    assert_eq!(terminals(&frames).len(), 1);
    assert_eq!(terminals(&frames)[0]["error_code"], "internal");
}

/// A job that ends in a backend error counts in the heartbeat figures as an
/// error with its code, not as a completion: `error_rate_60s` and
/// `last_error_code` describe it, and the latency figures leave it out.
#[tokio::test(start_paused = true)]
async fn failed_job_counts_as_an_error_in_the_heartbeat_figures() {
    let mut backend = ScriptedBackend::new(&["ab"], 10);
    backend.error = Some(BackendError::BadStatus {
        status: 401,
        body: String::new(),
    });
    let stats = Arc::new(Mutex::new(Stats::default()));
    let limits = ExecutorLimits {
        max_concurrent: 1,
        outbound_queue_bytes_max: 1 << 20,
        outbound_control_frames_max: 64,
        outbound_control_bytes_max: 1 << 20,
    };
    let exec = Executor::new(
        routes(&backend).await,
        limits,
        stats.clone(),
        Arc::new(AnchoredClock::new(0)),
        Arc::new(NoopObserver),
    );
    let mut tasks = JoinSet::new();
    exec.dispatch(job(1, 60_000), Instant::now(), &mut tasks).unwrap();
    while tasks.join_next().await.is_some() {}
    assert_eq!(terminals(&drain(&exec))[0]["error_code"], "auth_rejected_by_backend");
    let snap = stats.lock().unwrap().snapshot(Instant::now());
    assert_eq!(snap.error_rate_60s, 1.0);
    assert_eq!(snap.last_error_code, Some(ErrorCode::AuthRejectedByBackend));
    assert_eq!(snap.p50_latency_ms, 0, "no completion in the window");
}
