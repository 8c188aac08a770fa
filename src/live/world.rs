//! The live world of one run: the mock coordinator and one mock backend per
//! `[[backends]]` entry, served in-process on real loopback sockets with
//! ephemeral ports, each behind a proxy on the agent's link to it, all
//! recording on the run's [`ScriptClock`] into the same records the
//! simulation collects.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use mock_backends::{MockBackend, Recorder};
use mock_coordinator::{Clock, Coordinator, Log, tokio_clock};

use super::clock::{LIVE_START, ScriptClock};
use super::faults::link_key;
use super::proxy::{self, Buffers, Link, Proxy};
use super::vars::Endpoints;
use crate::oracle::windows::{AGENT_HOST, COORDINATOR_HOST};
use crate::scenario::Scenario;
use crate::world::seeds::host_seed;

/// `SO_RCVBUF` asked for on the coordinator's sockets (and the `SO_SNDBUF`
/// of the proxy's socket to it, and the receive buffer of the proxy's
/// sockets accepted from the agent), which also advertise a small MSS
/// (`proxy::SMALL_MSS_BYTES`). Loopback TCP otherwise buffers megabytes
/// before a writer blocks (2.75 MiB measured); with these, a read pause of
/// the coordinator blocks the agent's writes after about 170 KiB, most of
/// it the agent's own send buffer. Linux doubles the figure asked for: each
/// of these buffers holds 8 KiB.
pub const COORDINATOR_SOCKET_BUFFER_BYTES: u32 = 4096;

/// Why the live world could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot listen on loopback: {0}")]
    Listen(#[from] io::Error),
    #[error("the mock coordinator refused the script: {0}")]
    Coordinator(String),
    #[error("mock backend `{host}` refused its profile: {error}")]
    Backend { host: String, error: String },
}

/// The mocks and proxies of a live run. Dropping it stops accepting; the
/// connections end with the runtime.
pub struct LiveWorld {
    pub log: Log,
    /// One per `[[backends]]` entry, in order.
    pub recorders: Vec<Recorder>,
    /// Where the agent connects.
    pub endpoints: Endpoints,
    /// The agent's links by sorted host pair.
    pub links: BTreeMap<(String, String), Arc<Link>>,
    /// Script time, shared by every record of the run.
    pub clock: ScriptClock,
    /// Real time since the world started, in µs: the clock script time
    /// zero is set on.
    pub base: Clock,
    coordinator: Arc<Coordinator>,
    /// The proxies' accept loops, stopped on drop.
    _proxies: Vec<Proxy>,
    /// The mocks' accept loops. Aborted on drop.
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for LiveWorld {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

impl LiveWorld {
    /// Starts the mocks and their proxies for `scenario` with `seed`. Each
    /// mock's RNG is seeded as its host's first start in the simulation, so
    /// the coordinator's job plan is the simulation's for the same seed.
    /// Script time stays 0 until the agent's first session reaches the
    /// steady state ([`LiveWorld::wait_ready`]).
    pub fn start(scenario: &Scenario, seed: u64) -> Result<LiveWorld, SetupError> {
        let log = Log::new();
        let base = tokio_clock();
        let coordinator_seed = host_seed(seed, COORDINATOR_HOST, 0);
        let coordinator = Coordinator::with_start(
            scenario.coordinator.clone(),
            coordinator_seed,
            base.clone(),
            log.clone(),
            LIVE_START,
        )
        .map_err(|err| SetupError::Coordinator(err.to_string()))?;
        // Real threads can be preempted between a write and the clock
        // reading after it: stamp frames when their write began.
        coordinator.stamp_writes_when_begun();
        let clock = ScriptClock::of(&coordinator);
        let listener = proxy::loopback_listener(Some(COORDINATOR_SOCKET_BUFFER_BYTES))?;
        let coordinator_addr = listener.local_addr()?;
        let mut servers = vec![tokio::spawn({
            let coordinator = coordinator.clone();
            async move {
                let _ = coordinator.serve_tcp(listener).await;
            }
        })];
        let small = Buffers {
            downstream_recv_bytes: Some(COORDINATOR_SOCKET_BUFFER_BYTES),
            upstream_send_bytes: Some(COORDINATOR_SOCKET_BUFFER_BYTES),
        };
        let mut links = BTreeMap::new();
        let link = Link::new();
        let coordinator_proxy = proxy::start(coordinator_addr, link.clone(), small)?;
        links.insert(link_key(AGENT_HOST, COORDINATOR_HOST), link);
        let mut endpoints = Endpoints {
            coordinator: coordinator_proxy.addr,
            backends: Vec::new(),
        };
        let mut proxies = vec![coordinator_proxy];
        let mut recorders = Vec::new();
        for spec in &scenario.backends {
            let recorder = Recorder::new();
            let backend_seed = host_seed(seed, &spec.host, 0);
            let backend =
                MockBackend::new(spec.clone(), backend_seed, clock.as_clock(), recorder.clone()).map_err(|err| {
                    SetupError::Backend {
                        host: spec.host.clone(),
                        error: err.to_string(),
                    }
                })?;
            let listener = proxy::loopback_listener(None)?;
            let addr = listener.local_addr()?;
            servers.push(tokio::spawn(async move {
                let _ = backend.serve_tcp(listener).await;
            }));
            let link = Link::new();
            let backend_proxy = proxy::start(addr, link.clone(), Buffers::default())?;
            links.insert(link_key(AGENT_HOST, &spec.host), link);
            endpoints.backends.push((spec.host.clone(), backend_proxy.addr));
            proxies.push(backend_proxy);
            recorders.push(recorder);
        }
        Ok(LiveWorld {
            log,
            recorders,
            endpoints,
            links,
            clock,
            base,
            coordinator,
            _proxies: proxies,
            servers,
        })
    }

    /// Resolves when the agent's first session reaches the steady state,
    /// which is script time zero, with that moment in µs of [`Self::base`].
    pub async fn wait_ready(&self) -> u64 {
        self.coordinator.wait_time_zero().await
    }
}
