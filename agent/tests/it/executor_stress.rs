//! The executor on the production multi-thread runtime, where a job task can
//! be mid-poll on one worker while the read loop cancels it on another.
//!
//! turmoil runs each simulated host on one thread, so no scenario can see
//! these races; they are proven here, by stress with a bounded number of
//! iterations.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use provider_agent::backend::{Backend, BackendError, BackendKind, Job, JobResult, JobSink, ModelInfo};
use provider_agent::clock::AnchoredClock;
use provider_agent::discovery::{ConfiguredBackend, discover};
use provider_agent::executor::board::FrameKind;
use provider_agent::executor::{Executor, ExecutorLimits};
use provider_agent::observer::NoopObserver;
use provider_agent::stats::Stats;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant};

use crate::fixtures::{config, drain, id, job};

/// Cancel-then-resend rounds. Each round is a fresh chance for the old
/// task to be mid-poll while the re-send is admitted. On the code before
/// admission tickets (board keyed by id alone) the fifth round already
/// delivered a chunk of the cancelled job to its re-send.
const ROUNDS: u64 = 1_000;
/// How long one round may wait for the re-send's terminal frame.
const ROUND_TIMEOUT: Duration = Duration::from_secs(5);

/// Streams `request.chunks` chunks, each carrying the number of this
/// execution, yielding between them; reports that number as its token
/// counts, so every frame says which execution produced it.
struct MarkingBackend {
    executions: AtomicU64,
}

#[async_trait]
impl Backend for MarkingBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Vllm
    }
    fn id(&self) -> &str {
        "marking"
    }
    async fn health(&self) -> Result<(), BackendError> {
        Ok(())
    }
    async fn list_models(&self) -> Result<Vec<ModelInfo>, BackendError> {
        Ok(vec![ModelInfo {
            model_id: "m".into(),
            context_window: None,
        }])
    }
    async fn execute(&self, job: &Job, sink: &mut dyn JobSink) -> Result<JobResult, BackendError> {
        let execution = self.executions.fetch_add(1, Ordering::SeqCst);
        let chunks = job.request.get("chunks").and_then(Value::as_u64).unwrap_or(1);
        for _ in 0..chunks {
            sink.send_chunk(Bytes::from(format!("{execution};"))).await?;
            tokio::task::yield_now().await;
        }
        Ok(JobResult {
            input_tokens: Some(execution),
            output_tokens: Some(execution),
        })
    }
}

fn with_chunks(n: u128, chunks: u64) -> provider_agent::protocol::JobFrame {
    let mut frame = job(n, 60_000);
    frame.request.insert("chunks".into(), Value::from(chunks));
    frame
}

/// The oldest queued text frame, parsed, if any.
fn pop_one(exec: &Executor) -> Option<Value> {
    loop {
        match exec.board().pop()?.into_kind() {
            FrameKind::Text(text) => return Some(serde_json::from_str(&text).expect("JSON")),
            _ => continue,
        }
    }
}

/// Which execution produced `frame`: the marker of a chunk, the token count
/// of a terminal frame (`None` for a `job_error`).
fn execution_of(frame: &Value) -> Option<u64> {
    match frame["type"].as_str() {
        Some("job_chunk") => {
            let data = B64.decode(frame["data"].as_str()?).ok()?;
            String::from_utf8(data).ok()?.trim_end_matches(';').parse().ok()
        }
        Some("job_done") => frame["tokens"]["output"].as_u64(),
        _ => None,
    }
}

/// A job re-sent with the id of a job cancelled an instant before, while
/// the old job's task may be mid-poll on another worker, never receives a
/// frame of the old task, and always gets its own terminal frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_after_cancel_never_meets_the_old_task() {
    let backend = Arc::new(MarkingBackend {
        executions: AtomicU64::new(0),
    });
    let backends = vec![ConfiguredBackend {
        backend: backend.clone(),
        allow_list: None,
    }];
    let routes = Arc::new(discover(&backends, &config(2)).await);
    let limits = ExecutorLimits {
        max_concurrent: 2,
        outbound_queue_bytes_max: 1 << 20,
        outbound_control_frames_max: 4096,
        outbound_control_bytes_max: 1 << 20,
    };
    let exec = Executor::new(
        routes,
        limits,
        Arc::new(std::sync::Mutex::new(Stats::default())),
        Arc::new(AnchoredClock::new(0)),
        Arc::new(NoopObserver),
    );
    let mut tasks = JoinSet::new();
    let (mut foreign, mut lost) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let n = u128::from(round) + 1;
        // The old job streams until it is cancelled. Take frames one at a
        // time until its first chunk, so that its task is surely running,
        // and cancel at once: the cancel purges whatever it queued since.
        exec.dispatch(with_chunks(n, u64::MAX), Instant::now(), &mut tasks)
            .unwrap();
        let old = loop {
            if let Some(execution) = pop_one(&exec).as_ref().and_then(execution_of) {
                break execution;
            }
            tokio::task::yield_now().await;
        };
        assert!(exec.cancel(&id(n)), "round {round}: the old job is not live");
        exec.dispatch(with_chunks(n, 3), Instant::now(), &mut tasks).unwrap();
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            let Some(frame) = pop_one(&exec) else {
                if started.elapsed() > ROUND_TIMEOUT {
                    lost.push(round);
                    break;
                }
                tokio::task::yield_now().await;
                continue;
            };
            let ended = frame["type"] == "job_done" || frame["type"] == "job_error";
            seen.push(frame);
            if ended {
                break;
            }
        }
        while tasks.join_next().await.is_some() {}
        seen.extend(drain(&exec));
        foreign.extend(
            seen.iter()
                .filter(|f| execution_of(f) == Some(old))
                .map(|f| (round, f.clone())),
        );
        assert_eq!(exec.in_flight(), 0, "round {round}: a slot leaked");
    }
    assert!(
        foreign.is_empty(),
        "frames of a cancelled job reached its re-send: {:?}",
        &foreign[..foreign.len().min(5)]
    );
    assert!(lost.is_empty(), "re-sends without a terminal frame in rounds {lost:?}");
}
