//! Shared fixtures: a scripted fake backend, routes and an executor over it,
//! and helpers to read what the executor queued.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use provider_agent::backend::{Backend, BackendError, BackendKind, Job, JobResult, JobSink, ModelInfo};
use provider_agent::clock::AnchoredClock;
use provider_agent::config::{AgentConfig, BackendConfig, PricingConfig};
use provider_agent::discovery::{ConfiguredBackend, Routes, discover};
use provider_agent::executor::board::FrameKind;
use provider_agent::executor::{Executor, ExecutorLimits};
use provider_agent::observer::NoopObserver;
use provider_agent::protocol::JobFrame;
use provider_agent::stats::Stats;
use serde_json::{Map, Value};
use tokio::time::Duration;
use uuid::Uuid;

use provider_agent::protocol::JobId;

/// What the fake backend saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Started(JobId),
    /// The execute future was dropped before it finished (connection closed).
    Dropped(JobId),
    Finished(JobId),
}

/// A backend that streams `chunks` with `gap` before each, then returns
/// `result` (or `error`).
#[derive(Clone)]
pub struct ScriptedBackend {
    pub chunks: Vec<Bytes>,
    pub gap: Duration,
    pub ttft: Duration,
    pub error: Option<BackendError>,
    /// When set, the backend waits for a permit here before returning.
    pub gate: Option<Arc<tokio::sync::Notify>>,
    /// When set, the backend panics after streaming its chunks.
    pub panic: bool,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// The model list it answers; tests change it to model a backend that
    /// finished loading or went away. Health fails while it is empty.
    pub models: Arc<Mutex<Vec<String>>>,
}

impl ScriptedBackend {
    pub fn new(chunks: &[&str], gap_ms: u64) -> Self {
        Self {
            chunks: chunks.iter().map(|c| Bytes::copy_from_slice(c.as_bytes())).collect(),
            gap: Duration::from_millis(gap_ms),
            ttft: Duration::ZERO,
            error: None,
            gate: None,
            panic: false,
            seen: Arc::default(),
            models: Arc::new(Mutex::new(vec!["m".to_owned()])),
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

struct DropProbe {
    job_id: JobId,
    finished: bool,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        let event = if self.finished {
            Seen::Finished(self.job_id.clone())
        } else {
            Seen::Dropped(self.job_id.clone())
        };
        self.seen.lock().unwrap().push(event);
    }
}

#[async_trait]
impl Backend for ScriptedBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Vllm
    }
    fn id(&self) -> &str {
        "scripted"
    }
    async fn health(&self) -> Result<(), BackendError> {
        if self.models.lock().unwrap().is_empty() {
            return Err(BackendError::Unreachable("scripted backend is down".into()));
        }
        Ok(())
    }
    async fn list_models(&self) -> Result<Vec<ModelInfo>, BackendError> {
        let models = self.models.lock().unwrap().clone();
        Ok(models
            .into_iter()
            .map(|model_id| ModelInfo {
                model_id,
                context_window: Some(4096),
            })
            .collect())
    }
    async fn execute(&self, job: &Job, sink: &mut dyn JobSink) -> Result<JobResult, BackendError> {
        self.seen.lock().unwrap().push(Seen::Started(job.job_id.clone()));
        let mut probe = DropProbe {
            job_id: job.job_id.clone(),
            finished: false,
            seen: self.seen.clone(),
        };
        tokio::time::sleep(self.ttft).await;
        for (i, chunk) in self.chunks.iter().enumerate() {
            tokio::time::sleep(self.gap).await;
            sink.send_chunk(chunk.clone()).await?;
            sink.set_output_tokens(i as u64 + 1);
        }
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
        assert!(!self.panic, "scripted backend panic");
        probe.finished = true;
        match &self.error {
            Some(err) => Err(err.clone()),
            None => Ok(JobResult {
                input_tokens: Some(5),
                output_tokens: Some(self.chunks.len() as u64),
            }),
        }
    }
}

/// A minimal valid config (insecure ws to `coordinator:9000`).
pub fn config(max_concurrent: u32) -> AgentConfig {
    let mut config = AgentConfig::with_defaults(
        "ws://coordinator:9000/",
        PathBuf::from("/nonexistent/key"),
        vec![BackendConfig::of_kind(BackendKind::Vllm)],
        PricingConfig::flat(0.1, 0.2),
    );
    config.limits.max_concurrent = max_concurrent;
    config
}

/// Routes serving model `m` from `backend`.
pub async fn routes(backend: &ScriptedBackend) -> Arc<Routes> {
    let backends = vec![ConfiguredBackend {
        backend: Arc::new(backend.clone()),
        allow_list: None,
    }];
    Arc::new(discover(&backends, &config(1)).await)
}

/// An executor over `backend` with the given limits.
pub async fn executor(backend: &ScriptedBackend, max_concurrent: usize, queue_bytes_max: usize) -> Executor {
    let limits = ExecutorLimits {
        max_concurrent,
        outbound_queue_bytes_max: queue_bytes_max,
        outbound_control_frames_max: 64,
        outbound_control_bytes_max: 1 << 20,
    };
    Executor::new(
        routes(backend).await,
        limits,
        Arc::new(Mutex::new(Stats::default())),
        Arc::new(AnchoredClock::new(0)),
        Arc::new(NoopObserver),
    )
}

/// The canonical id of job `n`.
pub fn id(n: u128) -> JobId {
    JobId::from(Uuid::from_u128(n))
}

/// A job frame for model `m`.
pub fn job(n: u128, deadline_ms: u64) -> JobFrame {
    let mut request = Map::new();
    request.insert("messages".into(), Value::Array(vec![]));
    JobFrame {
        job_id: id(n),
        model_id: "m".into(),
        request,
        format: provider_agent::protocol::JobFormat::Openai,
        deadline_ms,
    }
}

/// Pops every queued frame, parsed (pings are skipped).
pub fn drain(exec: &Executor) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(frame) = exec.board().pop() {
        if let FrameKind::Text(text) = frame.into_kind() {
            out.push(serde_json::from_str(&text).unwrap());
        }
    }
    out
}

/// The frames of `frames` that end a job (`job_done` / `job_error`).
pub fn terminals(frames: &[Value]) -> Vec<&Value> {
    frames
        .iter()
        .filter(|f| f["type"] == "job_done" || f["type"] == "job_error")
        .collect()
}

/// Lets every ready task run (paused clock: nothing advances).
pub async fn settle() {
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
}
