//! Shared by every bench target: chunk sizes, payloads, the runtime, a fake
//! backend that streams as fast as it can, and the deliberate-slowdown switch.
//!
//! Each bench target compiles this module but uses only part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use provider_agent::backend::{Backend, BackendError, BackendKind, Job, JobResult, JobSink, ModelInfo};
use provider_agent::clock::AnchoredClock;
use provider_agent::config::{AgentConfig, BackendConfig, PricingConfig, SessionConfig};
use provider_agent::discovery::{ConfiguredBackend, Routes, discover};
use provider_agent::executor::{Executor, ExecutorLimits};
use provider_agent::observer::NoopObserver;
use provider_agent::protocol::{JobFormat, JobFrame};
use provider_agent::stats::Stats;
use serde_json::{Map, Value};
use uuid::Uuid;

/// The chunk sizes of the issue, used by every group: one SSE token event
/// (16 B), a typical hyper body frame under token streaming (256 B), a
/// buffered burst (4 KiB) and a full read buffer (64 KiB).
pub const CHUNK_SIZES: [usize; 4] = [16, 256, 4 << 10, 64 << 10];

/// The model every fake backend serves.
pub const MODEL: &str = "bench-model";

/// The job id every single-job bench encodes with (the encoder's cost does
/// not depend on the id's value).
pub const JOB_ID: Uuid = Uuid::from_u128(0x6f1c_2d7e_3b1a_4c5d_8e9f_0a1b_2c3d_4e5f);

/// [`JOB_ID`] as the agent holds it (its canonical spelling).
pub fn job_id() -> provider_agent::protocol::JobId {
    JOB_ID.into()
}

/// Where criterion writes its reports (the rule criterion itself follows), so
/// figures a bench writes by hand (outbound memory, the sweep) land next to
/// the timings of the same run, where the gate reads them.
pub fn criterion_home() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return std::path::PathBuf::from(target).join("criterion");
    }
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("criterion")
}

/// `len` bytes of SSE text, as a backend would send it. Base64 speed does not
/// depend on content, but realistic bytes keep the figures honest if a future
/// encoder ever special-cases (say) zeros.
pub fn payload(len: usize) -> Bytes {
    const EVENT: &[u8] = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" hello\"}}]}\n\n";
    Bytes::from(EVENT.iter().copied().cycle().take(len).collect::<Vec<u8>>())
}

/// Short label of a chunk size for bench ids (`16`, `256`, `4096`, `65536`):
/// plain numbers so that the gate can match them without parsing units.
pub fn size_label(len: usize) -> String {
    len.to_string()
}

/// `BENCH_SLOWDOWN=copy` adds one extra copy per chunk to the *agent* side of
/// every comparison (never to a reference, never to the agent's code). It
/// exists to prove that the regression gate catches a change as small as one
/// added copy; see benches/README.md.
pub fn slowdown() -> bool {
    static SLOWDOWN: OnceLock<bool> = OnceLock::new();
    *SLOWDOWN.get_or_init(|| match std::env::var("BENCH_SLOWDOWN") {
        Ok(v) if v == "copy" => {
            eprintln!("BENCH_SLOWDOWN=copy: the agent side of each comparison copies every chunk once more");
            true
        }
        Ok(v) if !v.is_empty() => panic!("BENCH_SLOWDOWN={v:?}: the only value is \"copy\""),
        _ => false,
    })
}

/// A current-thread runtime, as one simulated host has. Benches run outside
/// the simulation, so owning a runtime here is fine; the builder (not
/// `Runtime::new`, which the workspace's clippy.toml forbids for code inside
/// hosts) makes the single-threaded choice explicit.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Which clock a bench run measures with: `BENCH_CLOCK=cpu` selects the
/// process's CPU time (what the regression gate uses); unset or `wall`, wall
/// time (criterion's default, what `cargo bench` reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockKind {
    Wall,
    Cpu,
}

pub fn clock_kind() -> ClockKind {
    static KIND: OnceLock<ClockKind> = OnceLock::new();
    *KIND.get_or_init(|| match std::env::var("BENCH_CLOCK").as_deref() {
        Ok("cpu") => ClockKind::Cpu,
        Ok("wall") | Ok("") | Err(_) => ClockKind::Wall,
        Ok(other) => panic!("BENCH_CLOCK={other:?}: use \"cpu\" or \"wall\""),
    })
}

/// CPU time used so far by every thread of this process, ended threads
/// included (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`, nanoseconds).
///
/// Why CPU time for the gate: on a shared 2-core machine a neighbour's build
/// steals whole time slices from one side of a ratio and not the other;
/// time the bench is *not* running does not count here, so the ratio stays
/// put. (`/proc/*/schedstat` is no substitute: it only advances on scheduler
/// ticks, 4 ms here, and criterion's short samples then read zero.)
pub fn process_cpu_time() -> Duration {
    cpu_time::ProcessTime::now().as_duration()
}

/// CPU time used so far by the calling thread alone
/// (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`).
///
/// For a bench whose other end runs on a thread of its own and stands for
/// another machine (`wss_loopback`'s reader is the coordinator): process time
/// would charge the reader's decoding, and how often the reader is woken (a
/// matter of when the kernel gives it a core, not of our code), to the side
/// being measured. Thread time counts only what the measured side spends.
pub fn thread_cpu_time() -> Duration {
    cpu_time::ThreadTime::now().as_duration()
}

/// A criterion measurement of process CPU time (see [`process_cpu_time`]),
/// reported with criterion's own duration formatting.
pub struct CpuTime {
    wall: WallTime,
}

impl Default for CpuTime {
    fn default() -> Self {
        Self { wall: WallTime }
    }
}

impl Measurement for CpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        process_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        process_cpu_time().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

/// Times an `iter_custom` batch with the run's clock ([`clock_kind`]).
pub struct Stopwatch {
    kind: ClockKind,
    /// Whether CPU time is this thread's alone ([`thread_cpu_time`]) or the
    /// whole process's ([`process_cpu_time`]); wall time ignores it.
    thread_only: bool,
    wall: std::time::Instant,
    cpu: Duration,
}

impl Stopwatch {
    /// A stopwatch on the run's clock.
    pub fn start() -> Self {
        Self::start_on(clock_kind(), false)
    }

    /// A stopwatch on the run's clock whose CPU time is the calling
    /// thread's alone (see [`thread_cpu_time`] for when that is right).
    pub fn start_thread() -> Self {
        Self::start_on(clock_kind(), true)
    }

    /// A wall-clock stopwatch whatever the run's clock: for figures that are
    /// wall time by definition (a sweep's seeds per minute on 2 cores).
    pub fn start_wall() -> Self {
        Self::start_on(ClockKind::Wall, false)
    }

    /// Wall-clock reads are what a benchmark is for; the workspace-wide ban
    /// on `std::time::Instant::now` protects simulated hosts, not benches.
    #[allow(clippy::disallowed_methods)]
    fn start_on(kind: ClockKind, thread_only: bool) -> Self {
        let mut watch = Self {
            kind,
            thread_only,
            wall: std::time::Instant::now(),
            cpu: Duration::ZERO,
        };
        if kind == ClockKind::Cpu {
            watch.cpu = watch.cpu_now();
        }
        watch
    }

    fn cpu_now(&self) -> Duration {
        if self.thread_only {
            thread_cpu_time()
        } else {
            process_cpu_time()
        }
    }

    pub fn elapsed(&self) -> Duration {
        match self.kind {
            ClockKind::Wall => self.wall.elapsed(),
            ClockKind::Cpu => self.cpu_now().saturating_sub(self.cpu),
        }
    }
}

/// `main` for a bench target: runs `benches` under criterion with the
/// clock [`clock_kind`] selects (criterion's `criterion_main!` fixes the
/// measurement type at compile time, hence this replacement).
macro_rules! bench_main {
    ($($bench:path),+ $(,)?) => {
        fn main() {
            match common::clock_kind() {
                common::ClockKind::Wall => {
                    let mut c = criterion::Criterion::default().configure_from_args();
                    $( $bench(&mut c); )+
                    c.final_summary();
                }
                common::ClockKind::Cpu => {
                    let mut c = criterion::Criterion::default()
                        .with_measurement(common::CpuTime::default())
                        .configure_from_args();
                    $( $bench(&mut c); )+
                    c.final_summary();
                }
            }
        }
    };
}
pub(crate) use bench_main;

/// Splits `total` chunks over at most `jobs` jobs, as evenly as possible.
/// Never returns an empty job (each would still cost a terminal frame).
pub fn split_chunks(total: u64, jobs: u64) -> Vec<u64> {
    let jobs = jobs.min(total).max(1);
    (0..jobs)
        .map(|k| total / jobs + u64::from(k < total % jobs))
        .filter(|&n| n > 0)
        .collect()
}

/// A backend that streams `request.chunks` copies of one chunk as fast as
/// the sink takes them: no sleeps, no I/O. The chunk is a `Bytes` clone (a
/// reference count), as hyper hands body frames to the real adapter.
#[derive(Clone)]
pub struct FloodBackend {
    pub chunk: Bytes,
    /// Calls to `send_chunk` that have started and not returned: each one
    /// holds an encoded frame that is not (yet) on the board. The memory
    /// bench reads it to account for bytes the board cannot see.
    pub in_send: Arc<AtomicUsize>,
}

impl FloodBackend {
    pub fn new(chunk: Bytes) -> Self {
        Self {
            chunk,
            in_send: Arc::default(),
        }
    }
}

#[async_trait]
impl Backend for FloodBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Vllm
    }
    fn id(&self) -> &str {
        "flood"
    }
    async fn health(&self) -> Result<(), BackendError> {
        Ok(())
    }
    async fn list_models(&self) -> Result<Vec<ModelInfo>, BackendError> {
        Ok(vec![ModelInfo {
            model_id: MODEL.into(),
            context_window: Some(32_768),
        }])
    }
    async fn execute(&self, job: &Job, sink: &mut dyn JobSink) -> Result<JobResult, BackendError> {
        let chunks = job.request.get("chunks").and_then(Value::as_u64).unwrap_or(0);
        for i in 0..chunks {
            // The deliberate slowdown: one more copy of every chunk on the
            // agent's side of the pipeline comparison.
            let chunk = if slowdown() {
                Bytes::copy_from_slice(std::hint::black_box(&self.chunk))
            } else {
                self.chunk.clone()
            };
            self.in_send.fetch_add(1, Ordering::Relaxed);
            let sent = sink.send_chunk(chunk).await;
            self.in_send.fetch_sub(1, Ordering::Relaxed);
            sent?;
            sink.set_output_tokens(i + 1);
        }
        Ok(JobResult {
            input_tokens: Some(1),
            output_tokens: Some(chunks),
        })
    }
}

/// A valid agent config for the fake backend (only what `discover` reads
/// matters: pricing).
fn config() -> AgentConfig {
    AgentConfig::with_defaults(
        "ws://coordinator:9000/",
        "/nonexistent/bench-key".into(),
        vec![BackendConfig::of_kind(BackendKind::Vllm)],
        PricingConfig::flat(0.1, 0.2),
    )
}

/// Routes serving [`MODEL`] from `backend`, built by the agent's own discovery.
pub async fn routes(backend: Arc<dyn Backend>) -> Arc<Routes> {
    let backends = vec![ConfiguredBackend {
        backend,
        allow_list: None,
    }];
    Arc::new(discover(&backends, &config()).await)
}

/// The agent's default outbound budget (`session.outbound_queue_bytes_max`).
pub fn outbound_budget_default() -> usize {
    SessionConfig::default().outbound_queue_bytes_max
}

/// An executor over `routes` with the agent's default queue limits.
/// Must be called inside a runtime (the clock reads tokio time).
pub fn executor(routes: Arc<Routes>, max_concurrent: usize) -> Executor {
    let session = SessionConfig::default();
    let limits = ExecutorLimits {
        max_concurrent,
        outbound_queue_bytes_max: session.outbound_queue_bytes_max,
        outbound_control_frames_max: session.outbound_control_frames_max,
        outbound_control_bytes_max: session.outbound_control_bytes_max,
    };
    Executor::new(
        routes,
        limits,
        Arc::new(Mutex::new(Stats::default())),
        Arc::new(AnchoredClock::new(0)),
        Arc::new(NoopObserver),
    )
}

/// A job for [`MODEL`] asking the flood backend for `chunks` chunks. The
/// deadline is the longest the agent accepts: a bench must never time out.
pub fn flood_job(job_id: Uuid, chunks: u64) -> JobFrame {
    let job_id = job_id.into();
    let mut request = Map::new();
    request.insert("messages".into(), Value::Array(vec![]));
    request.insert("chunks".into(), Value::from(chunks));
    JobFrame {
        job_id,
        model_id: MODEL.into(),
        request,
        format: JobFormat::Openai,
        deadline_ms: provider_agent::protocol::DEADLINE_MS_MAX,
    }
}
