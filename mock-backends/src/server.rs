//! One fake inference server: its state, and HTTP/1.1 over any transport.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::abort::{AbortFlag, AbortableTcp};
use crate::capacity::Capacity;
use crate::clock::Clock;
use crate::faults::FaultTable;
use crate::record::Recorder;
use crate::rng::HostRng;
use crate::routes::{Catalog, route};
use crate::spec::{BackendSpec, SpecError};

/// Most connections one server serves at once. Its accept loop keeps
/// accepting past the bound and closes the extra connections at once, as a
/// loaded server does, so that its listen backlog never fills (a simulated
/// one cannot overflow gracefully: see simctl's `world::backlog`).
pub const CONNECTIONS_MAX: usize = 256;

/// A fake vLLM / llama.cpp / LM Studio / Ollama server. Create one per host
/// (re)start with `new`, then feed it connections.
pub struct MockBackend {
    spec: BackendSpec,
    clock: Clock,
    recorder: Recorder,
    rng: HostRng,
    capacity: Capacity,
    faults: FaultTable,
    catalog: Catalog,
    /// Chat completions seen so far, for `nth` (1-based once incremented).
    chat_requests: AtomicU64,
    /// Health checks seen so far, for `nth`.
    health_requests: AtomicU64,
    /// Connection attempts seen by `accepts_connections`, for `nth`.
    connection_attempts: AtomicU64,
}

/// What the requests of one connection share.
#[derive(Clone, Debug)]
pub(crate) struct ConnCtx {
    /// The recorder's id of this connection.
    pub id: u64,
    /// Reset request for the transport, armed by a `cut` fault.
    pub abort: AbortFlag,
}

impl MockBackend {
    /// Validates `spec` and builds the server. `seed` seeds the host's one
    /// RNG; `clock` stamps every record; `recorder` receives them (pass the
    /// same one to every restart of the host).
    pub fn new(spec: BackendSpec, seed: u64, clock: Clock, recorder: Recorder) -> Result<Arc<MockBackend>, SpecError> {
        spec.validate()?;
        Ok(Arc::new(MockBackend {
            capacity: Capacity::new(spec.max_num_seqs, spec.overflow, spec.queue_depth_max),
            faults: FaultTable::new(&spec.faults),
            catalog: Catalog::new(&spec),
            rng: HostRng::new(seed),
            spec,
            clock,
            recorder,
            chat_requests: AtomicU64::new(0),
            health_requests: AtomicU64::new(0),
            connection_attempts: AtomicU64::new(0),
        }))
    }

    /// The profile it serves.
    pub fn spec(&self) -> &BackendSpec {
        &self.spec
    }

    /// Where its records go.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Completions generating right now.
    pub fn active_streams(&self) -> usize {
        (self.spec.max_num_seqs as usize).saturating_sub(self.capacity.free_slots())
    }

    /// Completions waiting for a slot right now.
    pub fn queued_requests(&self) -> u32 {
        self.capacity.queued()
    }

    /// Asks whether to serve a new connection; false while a `host_down`
    /// fault fires, and the caller's accept loop must then drop the
    /// connection at once. Each call counts as one connection attempt for
    /// `nth`. To refuse at the TCP level instead, simctl can crash the host.
    pub fn accepts_connections(&self) -> bool {
        let ordinal = self.connection_attempts.fetch_add(1, Ordering::SeqCst) + 1;
        let down = self.faults.host_down(ordinal, self.now_us(), &self.rng);
        if down {
            self.recorder.count_refused();
            tracing::debug!(backend = %self.spec.host, ordinal, "connection refused by host_down");
        }
        !down
    }

    /// Serves HTTP/1.1 on one accepted connection until it closes. The
    /// transport cannot be reset, so a `cut` closes it normally (FIN).
    pub async fn serve_connection<S>(self: Arc<Self>, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_io(stream, AbortFlag::default()).await;
    }

    /// Accepts TCP connections forever, each served by a task of its own; a
    /// `cut` resets the connection (RST). Honors `accepts_connections`; past
    /// [`CONNECTIONS_MAX`] at once, a connection is reset at once.
    /// Returns only on an accept error that is not about one connection.
    pub async fn serve_tcp(self: Arc<Self>, listener: TcpListener) -> io::Result<()> {
        // Each connection task holds one permit until it ends.
        let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _peer)) => stream,
                Err(err) if is_per_connection(&err) => continue,
                Err(err) => return Err(err),
            };
            if !self.accepts_connections() {
                // Reset rather than close, the nearest to "refused" once accepted.
                let _ = stream.set_zero_linger();
                continue;
            }
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::debug!(backend = %self.spec.host, "connection reset: {CONNECTIONS_MAX} already served");
                let _ = stream.set_zero_linger();
                continue;
            };
            // SSE events are small: send each frame as soon as it is written.
            let _ = stream.set_nodelay(true);
            let abort = AbortFlag::default();
            let io = AbortableTcp::new(stream, abort.clone());
            // Detached: the task ends with its connection and nothing awaits
            // it; then its slot is free.
            let backend = self.clone();
            tokio::spawn(async move {
                backend.serve_io(io, abort).await;
                drop(slot);
            });
        }
    }

    async fn serve_io<S>(self: Arc<Self>, io: S, abort: AbortFlag)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let conn = ConnCtx {
            id: self.recorder.next_connection_id(),
            abort,
        };
        let backend = self.clone();
        let conn_id = conn.id;
        let service = service_fn(move |request| route(backend.clone(), conn.clone(), request));
        let mut builder = http1::Builder::new();
        // No hyper timers (they would need a wall-clock timer) and no Date
        // header (hyper reads the system clock for it). Without half-close,
        // hyper reads for EOF while a response is pending, which is how a
        // client leaving a silent stream is noticed.
        builder
            .header_read_timeout(None)
            .auto_date_header(false)
            .half_close(false);
        if let Err(err) = builder.serve_connection(TokioIo::new(io), service).await {
            tracing::debug!(backend = %self.spec.host, conn_id, %err, "connection ended with an error");
        }
    }

    pub(crate) fn now_us(&self) -> u64 {
        (self.clock)()
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn rng(&self) -> &HostRng {
        &self.rng
    }

    pub(crate) fn capacity(&self) -> &Capacity {
        &self.capacity
    }

    pub(crate) fn faults(&self) -> &FaultTable {
        &self.faults
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The index of the served model named `model`; no name means the
    /// first model, as vLLM serves its only model.
    pub(crate) fn model_index(&self, model: Option<&str>) -> Option<usize> {
        match model {
            None => Some(0),
            Some(id) => self.spec.models.iter().position(|m| m.id == id),
        }
    }

    /// Counts a chat completion and returns its 1-based ordinal.
    pub(crate) fn next_chat_ordinal(&self) -> u64 {
        self.chat_requests.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Counts a health check and returns its 1-based ordinal.
    pub(crate) fn next_health_ordinal(&self) -> u64 {
        self.health_requests.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// Accept errors that concern one connection only; the loop goes on.
fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}
