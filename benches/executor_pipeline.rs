//! `executor_pipeline`: a backend that streams chunks as fast as it can →
//! the agent's executor → `BoardSink` (encode, byte budget) → the board (the
//! outbound queue) → a drain that pops frames as the writer would, minus the
//! socket. Beside it, in the same group, `bare`: the least any pipeline could
//! do — the same encoder into a fresh `String` per chunk, through a bounded
//! tokio channel of the same byte capacity, to the same kind of drain. The
//! ratio is the cost of the executor's machinery (admission, budget
//! semaphore, board lock, `async_trait` sink, terminal frames).
//!
//! Both run `JOBS` concurrent jobs (the agent's default `max_concurrent`) on
//! one current-thread runtime, the shape of the agent's host.
//!
//! `outbound_memory` (not a timing): with nobody draining, N jobs stream
//! until the budget stops them; the figures (board high water, jobs waiting
//! for budget) go to stdout and to `<criterion home>/outbound_memory/
//! figures.json` for the gate. See benches/README.md.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use provider_agent::executor::Executor;
use provider_agent::executor::board::FrameKind;
use provider_agent::protocol::{ChunkEncoder, job_chunk_frame_len};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use common::{
    CHUNK_SIZES, FloodBackend, executor, flood_job, outbound_budget_default, payload, routes, runtime, size_label,
    slowdown, split_chunks,
};

/// Concurrent jobs per batch: the agent's default `limits.max_concurrent`.
const JOBS: u64 = provider_agent::config::MAX_CONCURRENT_DEFAULT as u64;

/// Bounds each batch: a pipeline that stops moving fails instead of hanging.
const BATCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Pops frames off the executor's board until `expected` have come out
/// (chunks plus one terminal frame per job). Returns how many were `job_done`.
async fn drain(exec: &Executor, expected: u64) -> u64 {
    let board = exec.board();
    let (mut popped, mut done) = (0u64, 0u64);
    while popped < expected {
        while let Some(frame) = board.pop() {
            popped += 1;
            // `into_kind` releases the frame's budget, as the writer does.
            if let FrameKind::Text(text) = frame.into_kind() {
                done += u64::from(text.starts_with(r#"{"type":"job_done""#));
                std::hint::black_box(text);
            }
        }
        if popped < expected {
            board.frame_ready().await;
        }
    }
    done
}

struct Agent {
    exec: Executor,
    next_id: u128,
}

impl Agent {
    /// Streams `chunks` chunks over `JOBS` jobs through the executor and
    /// drains them; returns the number of `job_done` frames seen.
    async fn run(&mut self, chunks: u64) -> u64 {
        let plan = split_chunks(chunks, JOBS);
        let expected = chunks + plan.len() as u64;
        let mut tasks = JoinSet::new();
        for n in &plan {
            self.next_id += 1;
            let job = flood_job(Uuid::from_u128(self.next_id), *n);
            self.exec
                .dispatch(job, Instant::now(), &mut tasks)
                .expect("control queue has room");
        }
        let done = tokio::time::timeout(BATCH_TIMEOUT, drain(&self.exec, expected))
            .await
            .expect("pipeline stalled");
        while let Some(joined) = tasks.join_next().await {
            joined.expect("job task");
        }
        done
    }
}

fn bench_agent<M: Measurement<Value = Duration>>(group: &mut BenchmarkGroup<'_, M>, rt: &Runtime, size: usize) {
    let backend = FloodBackend::new(payload(size));
    let mut agent = rt.block_on(async {
        let routes = routes(Arc::new(backend)).await;
        Agent {
            exec: executor(routes, JOBS as usize),
            next_id: 0,
        }
    });
    // Sanity, outside the timing: every job ends with `job_done` and every
    // frame comes out.
    assert_eq!(
        rt.block_on(agent.run(3 * JOBS)),
        JOBS,
        "every job must end with job_done"
    );

    group.bench_function(BenchmarkId::new("agent", size_label(size)), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = common::Stopwatch::start();
                agent.run(iters).await;
                start.elapsed()
            })
        });
    });
    agent.exec.close();
}

/// The reference pipeline: the agent's encoder (one per job, a fresh `String`
/// per chunk, as the sink does), a bounded channel
/// with the agent's byte budget expressed in frames, a drain.
async fn run_bare(chunk: &Bytes, chunks: u64) {
    let plan = split_chunks(chunks, JOBS);
    let frame_len = job_chunk_frame_len(chunk.len());
    let capacity = (outbound_budget_default() / frame_len).max(1);
    let (tx, mut rx) = mpsc::channel::<String>(capacity);
    let mut tasks = JoinSet::new();
    for (k, n) in plan.into_iter().enumerate() {
        let (tx, chunk) = (tx.clone(), chunk.clone());
        let job_id = Uuid::from_u128(k as u128 + 1);
        tasks.spawn(async move {
            let encoder = ChunkEncoder::new(&job_id.into());
            for _ in 0..n {
                tx.send(encoder.encode(&chunk)).await.expect("drain alive");
            }
        });
    }
    drop(tx);
    let drained = async {
        let mut popped = 0u64;
        while let Some(text) = rx.recv().await {
            popped += 1;
            std::hint::black_box(text);
        }
        popped
    };
    let popped = tokio::time::timeout(BATCH_TIMEOUT, drained)
        .await
        .expect("bare pipeline stalled");
    assert_eq!(popped, chunks);
    while let Some(joined) = tasks.join_next().await {
        joined.expect("producer task");
    }
}

fn bench_bare<M: Measurement<Value = Duration>>(group: &mut BenchmarkGroup<'_, M>, rt: &Runtime, size: usize) {
    let chunk = payload(size);
    group.bench_function(BenchmarkId::new("bare", size_label(size)), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = common::Stopwatch::start();
                run_bare(&chunk, iters).await;
                start.elapsed()
            })
        });
    });
}

fn executor_pipeline<M: Measurement<Value = Duration>>(c: &mut Criterion<M>) {
    if slowdown() {
        eprintln!("executor_pipeline: agent side copies each chunk once more (FloodBackend)");
    }
    let rt = runtime();
    let mut group = c.benchmark_group("executor_pipeline");
    for size in CHUNK_SIZES {
        // Chunk bytes per iteration (one iteration = one chunk relayed).
        group.throughput(Throughput::Bytes(size as u64));
        bench_agent(&mut group, &rt, size);
        bench_bare(&mut group, &rt, size);
    }
    group.finish();
}

/// Streaming-job counts compared by the memory measurement.
const MEMORY_JOBS: [usize; 3] = [1, 8, 64];

/// What one memory measurement found once every job was stuck on the budget.
struct MemoryFigures {
    board_high_water: usize,
    board_bytes: usize,
    board_frames: usize,
    /// `send_chunk` calls parked on the budget. Each holds only its raw
    /// chunk: the sink takes budget for the exact frame length before it
    /// encodes, so no encoded frame exists outside the board.
    jobs_waiting_for_budget: usize,
}

/// Starts `jobs` endless streams with nobody draining, waits until nothing
/// moves any more, and reads the queue figures.
fn measure_memory(size: usize, jobs: usize) -> MemoryFigures {
    let rt = runtime();
    rt.block_on(async {
        let backend = FloodBackend::new(payload(size));
        let in_send = backend.in_send.clone();
        let exec = executor(routes(Arc::new(backend)).await, jobs);
        let mut tasks = JoinSet::new();
        for k in 0..jobs {
            exec.dispatch(
                flood_job(Uuid::from_u128(k as u128 + 1), u64::MAX),
                Instant::now(),
                &mut tasks,
            )
            .expect("room for the job");
        }
        // Settled = every job parked in `send_chunk` and the board unchanged
        // over three consecutive 1 ms sleeps (during which the current-thread
        // runtime runs every task that can run). Bounded: 10 s at most.
        let mut last = None;
        let mut stable = 0;
        for _ in 0..10_000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let now = (
                exec.board().queued(),
                exec.board().queued_bytes_high_water(),
                in_send.load(Ordering::Relaxed),
            );
            stable = if Some(now) == last && now.2 == jobs {
                stable + 1
            } else {
                0
            };
            last = Some(now);
            if stable == 3 {
                break;
            }
        }
        assert_eq!(
            stable, 3,
            "streams did not settle on the budget ({size} B, {jobs} jobs)"
        );
        let ((board_frames, board_bytes), board_high_water, jobs_waiting_for_budget) = last.expect("settled");
        exec.close();
        tasks.shutdown().await;
        MemoryFigures {
            board_high_water,
            board_bytes,
            board_frames,
            jobs_waiting_for_budget,
        }
    })
}

fn outbound_memory<M: Measurement>(_c: &mut Criterion<M>) {
    let budget = outbound_budget_default();
    println!("outbound_memory: nobody drains; outbound_queue_bytes_max = {budget} B");
    println!(
        "{:>7} {:>5} {:>10} {:>12} {:>12} {:>8}",
        "chunk", "jobs", "frame B", "board HW B", "board frames", "waiting"
    );
    let mut rows = Vec::new();
    for size in CHUNK_SIZES {
        let frame_len = job_chunk_frame_len(size);
        for jobs in MEMORY_JOBS {
            let m = measure_memory(size, jobs);
            println!(
                "{size:>7} {jobs:>5} {frame_len:>10} {:>12} {:>12} {:>8}",
                m.board_high_water, m.board_frames, m.jobs_waiting_for_budget
            );
            rows.push(json!({
                "chunk_bytes": size,
                "jobs": jobs,
                "frame_bytes": frame_len,
                "board_high_water_bytes": m.board_high_water,
                "board_bytes_settled": m.board_bytes,
                "board_frames_settled": m.board_frames,
                "jobs_waiting_for_budget": m.jobs_waiting_for_budget,
            }));
        }
    }
    let figures = json!({ "outbound_queue_bytes_max": budget, "rows": Value::Array(rows) });
    let dir = common::criterion_home().join("outbound_memory");
    std::fs::create_dir_all(&dir).expect("create figures dir");
    let path = dir.join("figures.json");
    std::fs::write(&path, serde_json::to_string_pretty(&figures).expect("json")).expect("write figures");
    println!("outbound_memory: figures written to {}", path.display());
}

common::bench_main!(executor_pipeline, outbound_memory);
