//! [`Coordinator`]: one coordinator instance — its script, clock, log, the
//! live sessions and the job driver — and the entry points that serve
//! connections.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rand::SeedableRng as _;
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::clock::{Clock, ms_to_us};
use crate::digest::Digest;
use crate::log::Log;
use crate::plan::{self, Plan};
use crate::record::CloseReason;
use crate::script::{Script, ScriptError};
use crate::start::{StartOn, TimeZero};
use crate::state::Schedule;
use crate::writer::Outgoing;
use crate::{driver, handshake, session};

/// Most connections served at once. The accept loop keeps accepting past
/// the bound and closes the extra connections at once, as a loaded server
/// does, so that its listen backlog never fills (a simulated one cannot
/// overflow gracefully: see simctl's `world::backlog`).
pub const CONNECTIONS_MAX: usize = 64;
/// Bytes tungstenite reads from the socket at a time. Kept small so a paused
/// or slow reader leaves the agent's frames in the socket buffers, where
/// they exert backpressure, instead of in ours.
pub const READ_BUFFER_BYTES: usize = 4096;

/// Handle on one authenticated connection, held by the coordinator so the
/// driver can reach it.
#[derive(Clone)]
pub(crate) struct SessionHandle {
    /// Producer side of the connection's outbound queue (consumer: its
    /// writer task). Bounded by `writer::OUTBOUND_QUEUE_FRAMES`.
    pub queue: mpsc::Sender<Outgoing>,
    /// Tells the connection's reader to drop the socket at once (scripted
    /// `drop` disconnect, or a `close` that could not be queued).
    pub drop_now: Arc<Notify>,
    /// Tells the connection's reader that a newer connection authenticated,
    /// so this one is to be closed. Notified by `register_session` of the
    /// newer one; `notify_one` keeps the permit if the reader is busy.
    pub superseded: Arc<Notify>,
}

/// The coordinator side of the protocol, driven by a [`Script`].
pub struct Coordinator {
    script: Arc<Script>,
    plan: Arc<Plan>,
    /// The script clock: the caller's clock shifted to script time zero.
    clock: Clock,
    /// Script time zero on the caller's clock (see [`StartOn`]).
    time_zero: Arc<TimeZero>,
    log: Log,
    /// Authenticated, still open connections by number. Locked briefly by
    /// the driver (to pick a target) and by connection tasks (to register
    /// and deregister); never held across an `.await`.
    sessions: Mutex<BTreeMap<u64, SessionHandle>>,
    /// Wakes the driver when a session authenticates or ends, or a job
    /// leaves a closed loop. `notify_one` keeps a permit, so no wake-up is
    /// lost while the driver is busy. Shared with the driver task, which
    /// waits on it without holding the coordinator itself.
    driver_wake: Arc<Notify>,
    /// Set once the driver task has been spawned (it is spawned once).
    driver_started: AtomicBool,
    /// The driver task's handle, aborted when the coordinator is dropped
    /// (the driver holds only a `Weak` reference, so dropping the last
    /// `Arc` — a restart in the harness — really ends this instance).
    driver_task: Mutex<Option<JoinHandle<()>>>,
    /// Becomes true when the driver has carried out the whole script; the
    /// binary waits on it before draining.
    driver_done: watch::Sender<bool>,
    /// Whether frames written are stamped when their write began rather
    /// than when it completed (see [`Coordinator::stamp_writes_when_begun`]).
    stamp_writes_when_begun: AtomicBool,
}

impl Coordinator {
    /// Builds a coordinator. On a fresh `log` the schedule is computed from
    /// `script` and `seed`; on a log already used by an earlier instance
    /// (a restart) that schedule, RNG and progress are continued and `seed`
    /// is not used — the script must be the same. The earlier instance is
    /// taken to be gone: connections it left open in the log are closed
    /// now with [`CloseReason::CoordinatorRestarted`] and their jobs lost.
    pub fn new(script: Script, seed: u64, clock: Clock, log: Log) -> Result<Arc<Coordinator>, ScriptError> {
        Coordinator::with_start(script, seed, clock, log, StartOn::ClockZero)
    }

    /// [`Coordinator::new`], with script time zero chosen by `start`. With
    /// [`StartOn::FirstSession`] the job driver waits for the first session
    /// to reach the steady state, and every timestamp of the record counts
    /// from that moment (earlier ones read 0); [`Coordinator::time_zero_us`]
    /// says where it fell on `clock`. A restart on the same log keeps the
    /// zero its predecessor set.
    pub fn with_start(
        script: Script,
        seed: u64,
        clock: Clock,
        log: Log,
        start: StartOn,
    ) -> Result<Arc<Coordinator>, ScriptError> {
        script.validate()?;
        let restored = log.with(|s| s.progress.time_zero_us);
        let time_zero = TimeZero::new(clock, start, restored);
        let clock = time_zero.script_clock();
        let now_us = clock();
        let (script, plan) = log.with(|s| match &s.schedule {
            Some(existing) if *existing.script != script => Err(ScriptError::LogScriptMismatch),
            Some(existing) => {
                let kept = (existing.script.clone(), existing.plan.clone());
                s.close_orphaned_sessions(now_us);
                // Relative actions die with the instance that scheduled them
                // (README, "Limits"); re-sends wait in the log, so say so.
                let lost = s.resends.clear();
                if lost > 0 {
                    s.note(
                        now_us,
                        format!("{lost} re-send(s) pending in the earlier instance were lost"),
                    );
                }
                Ok(kept)
            }
            None => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let plan = Arc::new(plan::build(&script, &mut rng)?);
                let script = Arc::new(script);
                s.schedule = Some(Schedule {
                    script: script.clone(),
                    plan: plan.clone(),
                    rng,
                });
                Ok((script, plan))
            }
        })?;
        Ok(Arc::new(Coordinator {
            script,
            plan,
            clock,
            time_zero,
            log,
            sessions: Mutex::new(BTreeMap::new()),
            driver_wake: Arc::new(Notify::new()),
            driver_started: AtomicBool::new(false),
            driver_task: Mutex::new(None),
            driver_done: watch::Sender::new(false),
            stamp_writes_when_begun: AtomicBool::new(false),
        }))
    }

    pub fn script(&self) -> &Script {
        &self.script
    }

    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn now_us(&self) -> u64 {
        (self.clock)()
    }

    /// The [`Digest`] of the record as of now.
    pub fn digest(&self) -> Digest {
        self.log.digest(self.now_us())
    }

    /// Where script time zero fell on the caller's clock, in microseconds;
    /// `None` while [`StartOn::FirstSession`] waits for its session.
    pub fn time_zero_us(&self) -> Option<u64> {
        self.time_zero.zero_us()
    }

    /// From now on, stamps each frame it writes (and the job or cancel
    /// the frame carries: `sent_us`, `cancel_sent_us`) with the moment its
    /// write began, not the moment it completed. On real sockets with real
    /// threads the completion is read from the clock only after the write
    /// returns, and a thread preempted in between stamps the frame after
    /// the agent has already acted on it (a backend request for a job "sent"
    /// later); the start of the write is a time the agent cannot have
    /// beaten. In the simulation, where nothing runs between the write and
    /// the clock reading, the default (completion) stays.
    pub fn stamp_writes_when_begun(&self) {
        self.stamp_writes_when_begun.store(true, Ordering::SeqCst);
    }

    pub(crate) fn stamps_writes_when_begun(&self) -> bool {
        self.stamp_writes_when_begun.load(Ordering::Relaxed)
    }

    /// Resolves with [`Coordinator::time_zero_us`] once it is set: at once
    /// for [`StartOn::ClockZero`], else when the first session reaches the
    /// steady state. A harness waits on this instead of polling.
    pub async fn wait_time_zero(&self) -> u64 {
        self.time_zero.wait().await;
        self.time_zero.zero_us().unwrap_or(0)
    }

    /// The script clock this coordinator stamps its record with (the
    /// caller's clock shifted to script time zero; 0 before it), for the
    /// other recorders of the same run (mock backends, fault schedules) to
    /// share, so that every record counts from the same zero.
    pub fn script_clock(&self) -> Clock {
        self.clock.clone()
    }

    /// Starts the job driver if it is not running yet. Serving a connection
    /// starts it too; call this right after [`Coordinator::new`] so that
    /// jobs due before the first connection are recorded as undeliverable
    /// on time. Does nothing outside a tokio runtime.
    pub fn start(self: &Arc<Self>) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if !self.driver_started.swap(true, Ordering::SeqCst) {
            let (coord, wake) = (Arc::downgrade(self), self.driver_wake.clone());
            let task = if self.time_zero.zero_us().is_some() {
                tokio::spawn(driver::run(coord, wake))
            } else {
                // The script waits for its time zero; the gate holds no
                // strong reference, so dropping the coordinator still ends it.
                let zero = self.time_zero.clone();
                tokio::spawn(async move {
                    zero.wait().await;
                    driver::run(coord, wake).await;
                })
            };
            *self.driver_task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        }
    }

    /// Resolves once the driver has carried out every scripted action
    /// (jobs may still be streaming). Starts the driver if needed.
    pub async fn wait_finished(self: &Arc<Self>) {
        self.start();
        let mut done = self.driver_done.subscribe();
        // An error means the sender is gone, which cannot happen while
        // `self` is alive; either way there is nothing left to wait for.
        let _ = done.wait_for(|d| *d).await;
    }

    /// Time at which the script's last timed action is due, in microseconds
    /// (closed loops may run on after it until their `count` is reached).
    pub fn script_end_us(&self) -> u64 {
        let timeline = self.plan.timeline.last().map_or(0, |(at, _)| *at);
        let closed = self.script.arrivals.iter().filter_map(|a| a.end_ms).map(ms_to_us);
        closed.fold(timeline, u64::max)
    }

    pub(crate) fn mark_driver_done(&self) {
        self.driver_done.send_replace(true);
    }

    pub(crate) fn wake_driver(&self) {
        self.driver_wake.notify_one();
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, SessionHandle>> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a newly authenticated connection and tells every older
    /// one to close: the agent keeps one session, so a new login means the
    /// old connection is dead or abandoned even if no FIN ever came (the
    /// agent's host lost power, or a partition swallowed it).
    pub(crate) fn register_session(&self, conn: u64, handle: SessionHandle) {
        if let Some(zero_us) = self.time_zero.arm() {
            let what = format!("script time zero: connection {conn} reached the steady state");
            self.log.with(|s| {
                s.progress.time_zero_us = Some(zero_us);
                s.note(0, what);
            });
        }
        let mut sessions = self.sessions();
        for older in sessions.values() {
            older.superseded.notify_one();
        }
        sessions.insert(conn, handle);
        drop(sessions);
        self.wake_driver();
    }

    pub(crate) fn deregister_session(&self, conn: u64) {
        self.sessions().remove(&conn);
        self.wake_driver();
    }

    /// The newest authenticated connection: where new jobs go.
    pub(crate) fn newest_session(&self) -> Option<(u64, SessionHandle)> {
        self.sessions().iter().next_back().map(|(c, h)| (*c, h.clone()))
    }

    pub(crate) fn session(&self, conn: u64) -> Option<SessionHandle> {
        self.sessions().get(&conn).cloned()
    }

    pub(crate) fn all_sessions(&self) -> Vec<(u64, SessionHandle)> {
        self.sessions().iter().map(|(c, h)| (*c, h.clone())).collect()
    }

    /// Serves one agent connection on any byte stream (turmoil or tokio
    /// TCP, or an in-memory duplex): WebSocket upgrade, handshake, then the
    /// steady state until either side ends it. Everything is recorded.
    pub async fn serve_connection<S>(self: Arc<Self>, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.start();
        let connected_us = self.now_us();
        let handshake = &self.script.handshake;
        // Numbering and mode choice happen under one lock so concurrent
        // connections cannot get the same number.
        let (conn, mode) = self.log.with(|s| {
            let mode = handshake.mode_for(s.sessions.len() as u64 + 1);
            (s.open_session(connected_us, mode.as_str()), mode)
        });
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
        let upgrade = tokio_tungstenite::accept_async_with_config(stream, Some(config));
        let limit = std::time::Duration::from_millis(self.script.handshake.timeout_ms);
        let mut ws = match tokio::time::timeout(limit, upgrade).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => return self.close(conn, CloseReason::UpgradeFailed(e.to_string())),
            Err(_) => return self.close(conn, CloseReason::UpgradeFailed("timed out".into())),
        };
        match handshake::run(&self, conn, &mut ws, mode).await {
            Ok(()) => session::run(self, conn, ws).await,
            Err(reason) => self.close(conn, reason),
        }
    }

    /// Records the end of connection `conn`.
    pub(crate) fn close(&self, conn: u64, reason: CloseReason) {
        let at_us = self.now_us();
        self.log.with(|s| s.close_session(conn, at_us, reason));
        self.wake_driver();
    }

    /// Accepts agent connections on a tokio TCP listener and serves each in
    /// its own task, at most [`CONNECTIONS_MAX`] at once: past the bound, a
    /// connection is accepted and closed at once. Returns only when
    /// accepting fails.
    pub async fn serve_tcp(self: Arc<Self>, listener: tokio::net::TcpListener) -> io::Result<()> {
        self.start();
        // Bounds concurrent connections: each connection task holds one
        // permit until it ends.
        let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
        loop {
            let (stream, _peer) = listener.accept().await?;
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::debug!("connection closed: {CONNECTIONS_MAX} already served");
                continue;
            };
            // Frames are small and latency is measured: do not batch.
            let _ = stream.set_nodelay(true);
            let coord = self.clone();
            // Connection tasks are detached: each ends with its connection
            // and records its own end; the permit frees its slot.
            tokio::spawn(async move {
                coord.serve_connection(stream).await;
                drop(permit);
            });
        }
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        if let Some(task) = self.driver_task.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}
