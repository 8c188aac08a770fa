//! `wss_loopback`: the agent's session writer (`session::writer::run`)
//! sending `job_chunk` frames over real loopback TCP to a tokio-tungstenite
//! reader, beside a reference on an identical connection: the same frames
//! written with one `send` — one flush, so one socket write — per frame.
//!
//! What is timed: from the first frame handed over until the reader has
//! received the last one, so bytes parked in a buffer do not count as sent.
//! On the CPU clock (`BENCH_CLOCK=cpu`, the gate's) only the sending thread's
//! CPU time counts: the reader's decoding is the coordinator's cost.
//!
//! Both sides get each frame as a fresh `String` clone of one pre-built frame:
//! that clone stands in for the `String` the sink allocates per chunk, and
//! giving it to both sides isolates what differs, the writing strategy.
//! The agent side also goes through what the real writer is fed by: a board
//! holding one admitted job, and the outbound byte budget (the agent's
//! default) that producers wait on, exactly as `BoardSink` does.
//!
//! The reader runs on its own thread and runtime: it stands for the
//! coordinator, another machine, so its work must not be charged to the
//! writer's thread. Both ends use the agent's WebSocket buffer settings and
//! `TCP_NODELAY`, as `TcpConnector` does.
//!
//! Batching (not a timing): after each side's timings, a fixed batch of
//! frames goes through the same connection while a [`CountingStream`]
//! counts the socket writes it takes. Frames per socket write is what the
//! writer exists to raise, and unlike a time it does not move with the
//! machine's load; the figures go to stdout and to `<criterion home>/
//! wss_loopback/batching.json`, where the gate reads them.

mod common;

use std::hint::black_box;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use futures_util::{SinkExt, StreamExt};
use provider_agent::executor::board::{Admission, Board};
use provider_agent::net::BoxStream;
use provider_agent::observer::NoopObserver;
use provider_agent::protocol::encode_job_chunk;
use provider_agent::session::WsStream;
use provider_agent::session::handshake::ws_config;
use provider_agent::session::writer;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use common::{CHUNK_SIZES, job_id, outbound_budget_default, payload, runtime, size_label, slowdown};

/// Bounds every wait of a bench batch: a batch that cannot finish (reader
/// gone, writer stalled) fails loudly instead of hanging CI.
const BATCH_TIMEOUT: Duration = Duration::from_secs(120);

/// The reading end: a thread with its own runtime that counts received
/// messages and signals when the count reaches `target`.
struct Reader {
    received: Arc<AtomicU64>,
    target: Arc<AtomicU64>,
    done: Arc<Notify>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    /// Binds a loopback listener and starts the reader thread, which accepts
    /// one WebSocket connection and reads until it closes. Every message must
    /// be a text frame of `frame_len` bytes.
    fn start(frame_len: usize) -> (Self, SocketAddr) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let addr = listener.local_addr().expect("listener address");
        let received = Arc::new(AtomicU64::new(0));
        let target = Arc::new(AtomicU64::new(u64::MAX));
        let done = Arc::new(Notify::new());
        let (r, t, d) = (received.clone(), target.clone(), done.clone());
        // The reader stands for the coordinator, another machine: it gets its
        // own thread so its decoding is not charged to the writer's thread.
        #[allow(clippy::disallowed_methods)]
        let thread = std::thread::spawn(move || {
            runtime().block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                let (tcp, _) = listener.accept().await.expect("accept");
                tcp.set_nodelay(true).expect("nodelay");
                let mut ws = tokio_tungstenite::accept_async_with_config(tcp, Some(ws_config()))
                    .await
                    .expect("ws accept");
                while let Some(msg) = ws.next().await {
                    match msg {
                        Ok(Message::Text(text)) => {
                            assert_eq!(text.len(), frame_len, "reader got a frame of the wrong length");
                            // SeqCst with `wait_for`'s store-then-load: at
                            // least one side sees the other, so no batch end
                            // is missed.
                            let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                            if n == t.load(Ordering::SeqCst) {
                                d.notify_one();
                            }
                        }
                        Ok(_) => {}
                        // The bench side dropped its connection: done.
                        Err(_) => break,
                    }
                }
            });
        });
        (
            Self {
                received,
                target,
                done,
                thread: Some(thread),
            },
            addr,
        )
    }

    /// Waits until `total` messages have arrived in all.
    async fn wait_for(&self, total: u64) {
        self.target.store(total, Ordering::SeqCst);
        // The last message may have landed before `target` was stored.
        if self.received.load(Ordering::SeqCst) >= total {
            return;
        }
        tokio::time::timeout(BATCH_TIMEOUT, async {
            while self.received.load(Ordering::SeqCst) < total {
                self.done.notified().await;
            }
        })
        .await
        .expect("reader did not receive the batch in time");
    }

    fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            thread.join().expect("reader thread panicked");
        }
    }
}

/// Bytes of frames the batching measurement sends per side and size (at
/// least [`BATCHING_FRAMES_MIN`] frames): a fixed amount, so the figure does
/// not depend on how many iterations criterion chose for the timings.
const BATCHING_BYTES: usize = 8 << 20;
const BATCHING_FRAMES_MIN: usize = 256;

/// A TCP stream that counts the socket writes made through it: every
/// `poll_write` that hands bytes to the kernel is one `write` system call.
struct CountingStream {
    inner: TcpStream,
    /// Writes so far; read by the bench thread (the stream lives on the same
    /// runtime, so the atomic only satisfies `Send`).
    writes: Arc<AtomicU64>,
}

impl CountingStream {
    fn count(&self, result: &Poll<io::Result<usize>>) {
        if matches!(result, Poll::Ready(Ok(n)) if *n > 0) {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl AsyncRead for CountingStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.count(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.count(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Frames sent and socket writes taken by one side's batching measurement.
struct Batching {
    frames: u64,
    writes: u64,
}

impl Batching {
    /// Frames in the measurement: [`BATCHING_BYTES`] worth, at least
    /// [`BATCHING_FRAMES_MIN`].
    fn frames_for(frame: &str) -> u64 {
        (BATCHING_BYTES / frame.len()).max(BATCHING_FRAMES_MIN) as u64
    }

    fn row(&self, side: &str, size: usize, frame: &str) -> Value {
        let per_write = self.frames as f64 / self.writes.max(1) as f64;
        println!(
            "wss_loopback/batching/{side}/{size}: {} frames in {} socket writes, {per_write:.2} frames per write",
            self.frames, self.writes
        );
        json!({ "side": side, "chunk_bytes": size, "frame_bytes": frame.len(), "frames": self.frames,
                "writes": self.writes, "frames_per_write": per_write })
    }
}

/// A client WebSocket to `addr` the way the agent opens one (boxed stream,
/// `TCP_NODELAY`, the agent's buffer settings), and its count of writes.
async fn connect(addr: SocketAddr) -> (WsStream, Arc<AtomicU64>) {
    let tcp = TcpStream::connect(addr).await.expect("connect loopback");
    tcp.set_nodelay(true).expect("nodelay");
    let writes = Arc::new(AtomicU64::new(0));
    let stream: BoxStream = Box::new(CountingStream {
        inner: tcp,
        writes: writes.clone(),
    });
    let url = format!("ws://{addr}/");
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config()))
        .await
        .expect("ws handshake");
    (ws, writes)
}

/// The agent side: `writer::run` draining a board that a producer fills.
fn bench_writer<M: Measurement<Value = Duration>>(
    group: &mut BenchmarkGroup<'_, M>,
    rt: &Runtime,
    frame: &str,
    size: usize,
) -> Batching {
    let (reader, addr) = Reader::start(frame.len());
    let (ws, writes) = rt.block_on(connect(addr));
    let (sink, read_half) = ws.split();
    let board = Arc::new(Board::new(1, 64, 1 << 20, Arc::new(NoopObserver)));
    let Admission::Admitted(ticket, _cancel_rx) = board.admit(job_id()) else {
        panic!("fresh board must admit")
    };
    let budget_max = outbound_budget_default();
    let budget = Arc::new(Semaphore::new(budget_max));
    let write_timeout = Duration::from_secs(10);
    let writer_task = rt.spawn(writer::run(sink, board.clone(), write_timeout));
    let permits = u32::try_from(frame.len().min(budget_max)).expect("frame fits u32");
    let slow = slowdown();
    let mut sent = 0u64;
    // Hands `n` frames to the writer, as `BoardSink` does, and waits until
    // the reader has them all.
    let mut send = |n: u64| {
        sent += n;
        let total = sent;
        let (budget, board, reader, ticket) = (&budget, &board, &reader, &ticket);
        async move {
            for _ in 0..n {
                let permit = budget.clone().acquire_many_owned(permits).await.expect("budget open");
                let text = if slow {
                    // Deliberate slowdown (bench-side only): one more copy of the frame.
                    black_box(frame.to_owned()).clone()
                } else {
                    frame.to_owned()
                };
                board.push_chunk(ticket, text, permit).expect("job is live");
            }
            reader.wait_for(total).await;
        }
    };

    group.bench_function(BenchmarkId::new("writer", size_label(size)), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = common::Stopwatch::start_thread();
                send(iters).await;
                start.elapsed()
            })
        });
    });
    let frames = Batching::frames_for(frame);
    let before = writes.load(Ordering::Relaxed);
    rt.block_on(send(frames));
    let batching = Batching {
        frames,
        writes: writes.load(Ordering::Relaxed) - before,
    };

    board.close();
    let ended = rt.block_on(async { tokio::time::timeout(BATCH_TIMEOUT, writer_task).await });
    ended
        .expect("writer ends once the board closes")
        .expect("writer task")
        .expect("writer ran clean");
    drop(read_half);
    reader.join();
    batching
}

/// The reference: one `send` (so one flush) per frame on the same kind of
/// connection.
fn bench_flush_per_frame<M: Measurement<Value = Duration>>(
    group: &mut BenchmarkGroup<'_, M>,
    rt: &Runtime,
    frame: &str,
    size: usize,
) -> Batching {
    let (reader, addr) = Reader::start(frame.len());
    let (mut ws, writes) = rt.block_on(connect(addr));
    let mut sent = 0u64;
    group.bench_function(BenchmarkId::new("flush_per_frame", size_label(size)), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = common::Stopwatch::start_thread();
                sent += iters;
                send_per_frame(&mut ws, &reader, frame, iters, sent).await;
                start.elapsed()
            })
        });
    });
    let frames = Batching::frames_for(frame);
    let before = writes.load(Ordering::Relaxed);
    sent += frames;
    rt.block_on(send_per_frame(&mut ws, &reader, frame, frames, sent));
    let batching = Batching {
        frames,
        writes: writes.load(Ordering::Relaxed) - before,
    };

    drop(ws);
    reader.join();
    batching
}

/// The reference's way: `n` frames, one `send` (so one flush) each; then
/// waits until the reader has `total` in all.
async fn send_per_frame(ws: &mut WsStream, reader: &Reader, frame: &str, n: u64, total: u64) {
    for _ in 0..n {
        let send = ws.send(Message::Text(frame.to_owned().into()));
        tokio::time::timeout(BATCH_TIMEOUT, send)
            .await
            .expect("send stalled")
            .expect("send");
    }
    reader.wait_for(total).await;
}

fn wss_loopback<M: Measurement<Value = Duration>>(c: &mut Criterion<M>) {
    let rt = runtime();
    let mut group = c.benchmark_group("wss_loopback");
    let mut rows = Vec::new();
    for size in CHUNK_SIZES {
        let mut frame = String::new();
        encode_job_chunk(&mut frame, &job_id(), &payload(size));
        // Chunk (body) bytes, as in every group: bytes/s here is relayed
        // payload, not wire bytes (a frame is ~4/3 of its chunk plus 78 B).
        group.throughput(Throughput::Bytes(size as u64));
        let writer = bench_writer(&mut group, &rt, &frame, size);
        rows.push(writer.row("writer", size, &frame));
        let reference = bench_flush_per_frame(&mut group, &rt, &frame, size);
        rows.push(reference.row("flush_per_frame", size, &frame));
    }
    group.finish();
    let dir = common::criterion_home().join("wss_loopback");
    std::fs::create_dir_all(&dir).expect("create figures dir");
    let path = dir.join("batching.json");
    let figures = json!({ "rows": Value::Array(rows) });
    std::fs::write(&path, serde_json::to_string_pretty(&figures).expect("json")).expect("write figures");
    println!("wss_loopback: batching figures written to {}", path.display());
}

common::bench_main!(wss_loopback);
