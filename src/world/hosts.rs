//! The simulated hosts: the mock coordinator, one mock backend per
//! `[[backends]]` entry, and the real agent. Each host closure builds its
//! server anew on every (re)start, with the record objects created outside
//! it so records survive restarts, and an RNG seed derived from the scenario
//! seed, the host name and how many times the host has started.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use mock_backends::{BackendSpec, MockBackend, Recorder};
use mock_coordinator::{Coordinator, Log, Script};
use provider_agent::clock::AnchoredClock;
use provider_agent::config::AgentConfig;
use provider_agent::identity::Identity;
use provider_agent::provider_id::{MemoryStore, SharedProviderIdStore};
use provider_agent::run::{AgentDeps, run};
use tokio::sync::{Semaphore, watch};
use turmoil::Sim;
use turmoil::net::TcpListener;

use super::clock::{EPOCH_UNIX_MS, record_clock, sim_now_us};
use super::connector::TurmoilConnector;
use super::observer::AgentRecorder;
use super::seeds::{host_seed, identity_secret};
use crate::oracle::windows::{AGENT_HOST, COORDINATOR_HOST};
use crate::scenario::agent::COORDINATOR_PORT;
use crate::trace::{Event, EventKind};

/// Events the hosts themselves report to the harness (a host stopping by
/// itself). Concurrency: pushed from host tasks, read after the run; the
/// lock is held only for the push or the copy.
pub type HostEvents = Arc<Mutex<Vec<Event>>>;

/// Counts a host's starts; read and bumped by its closure on each start.
fn next_incarnation(counter: &Rc<Cell<u64>>) -> u64 {
    let incarnation = counter.get();
    counter.set(incarnation + 1);
    incarnation
}

fn host_stopped(events: &HostEvents, host: &str, error: Option<String>) {
    let event = Event::new(
        sim_now_us(),
        EventKind::HostStopped {
            host: host.to_owned(),
            error,
        },
    );
    events
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(event);
}

/// Registers the coordinator host serving `ws://coordinator:9000/`.
pub fn add_coordinator(sim: &mut Sim<'_>, script: &Script, seed: u64, log: &Log, events: &HostEvents) {
    let (script, log, events) = (Arc::new(script.clone()), log.clone(), events.clone());
    let starts = Rc::new(Cell::new(0));
    sim.host(COORDINATOR_HOST, move || {
        let host_seed = host_seed(seed, COORDINATOR_HOST, next_incarnation(&starts));
        let (script, log, events) = (script.clone(), log.clone(), events.clone());
        async move {
            super::panics::name_runtime(COORDINATOR_HOST);
            let coordinator = match Coordinator::new((*script).clone(), host_seed, record_clock(), log) {
                Ok(coordinator) => coordinator,
                Err(err) => {
                    host_stopped(&events, COORDINATOR_HOST, Some(err.to_string()));
                    return Ok(());
                }
            };
            coordinator.start();
            let listener = TcpListener::bind(("0.0.0.0", COORDINATOR_PORT)).await?;
            let slots = Arc::new(Semaphore::new(mock_coordinator::CONNECTIONS_MAX));
            loop {
                // Accept continuously (see `super::backlog`): over the bound,
                // a connection is closed at once, as a loaded server does.
                let (stream, _peer) = listener.accept().await?;
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    continue;
                };
                // Connection tasks are detached: each records its own end,
                // then frees its slot.
                let coordinator = coordinator.clone();
                tokio::spawn(async move {
                    coordinator.serve_connection(stream).await;
                    drop(slot);
                });
            }
        }
    });
}

/// Registers one backend host serving HTTP on its port.
pub fn add_backend(sim: &mut Sim<'_>, spec: &BackendSpec, seed: u64, recorder: &Recorder, events: &HostEvents) {
    let (spec, recorder, events) = (Arc::new(spec.clone()), recorder.clone(), events.clone());
    let starts = Rc::new(Cell::new(0));
    let host = spec.host.clone();
    sim.host(host.as_str(), move || {
        let host_seed = host_seed(seed, &spec.host, next_incarnation(&starts));
        let (spec, recorder, events) = (spec.clone(), recorder.clone(), events.clone());
        async move {
            super::panics::name_runtime(&spec.host);
            let backend = match MockBackend::new((*spec).clone(), host_seed, record_clock(), recorder) {
                Ok(backend) => backend,
                Err(err) => {
                    host_stopped(&events, &spec.host, Some(err.to_string()));
                    return Ok(());
                }
            };
            let listener = TcpListener::bind(("0.0.0.0", spec.port)).await?;
            let slots = Arc::new(Semaphore::new(mock_backends::CONNECTIONS_MAX));
            loop {
                // Accept continuously (see `super::backlog`): over the bound,
                // or under a `host_down` fault, the connection is dropped.
                let (stream, _peer) = listener.accept().await?;
                if !backend.accepts_connections() {
                    continue;
                }
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    continue;
                };
                let backend = backend.clone();
                tokio::spawn(async move {
                    backend.serve_connection(stream).await;
                    drop(slot);
                });
            }
        }
    });
}

/// Registers the agent host running the real `provider_agent::run::run`.
/// Its network is `connector` (see [`TurmoilConnector`]).
pub fn add_agent(
    sim: &mut Sim<'_>,
    config: &AgentConfig,
    seed: u64,
    observer: &AgentRecorder,
    events: &HostEvents,
    connector: &TurmoilConnector,
) {
    let (config, observer, events) = (Arc::new(config.clone()), observer.clone(), events.clone());
    let connector = connector.clone();
    let starts = Rc::new(Cell::new(0));
    // The agent's disk: what it persists (its provider id) survives a crash
    // and is read by the next incarnation.
    let provider_ids: SharedProviderIdStore = Arc::new(MemoryStore::default());
    sim.host(AGENT_HOST, move || {
        let provider_ids = provider_ids.clone();
        let rng_seed = host_seed(seed, AGENT_HOST, next_incarnation(&starts));
        let (config, observer, events) = (config.clone(), observer.clone(), events.clone());
        let connector = connector.clone();
        async move {
            super::panics::name_runtime(AGENT_HOST);
            // The sender lives as long as the agent: the simulation never asks
            // it to shut down; crashing the host is how it stops.
            let (_shutdown_tx, shutdown) = watch::channel(false);
            let deps = AgentDeps {
                connector: Arc::new(connector),
                clock: Arc::new(AnchoredClock::new(EPOCH_UNIX_MS + sim_now_us() / 1_000)),
                rng_seed,
                shutdown,
                observer: Arc::new(observer),
                env: Arc::new(|_| None),
                allow_insecure: true,
                provider_ids: provider_ids.clone(),
            };
            let identity = Identity::from_secret_bytes(identity_secret(seed));
            let outcome = run((*config).clone(), identity, deps).await;
            host_stopped(&events, AGENT_HOST, outcome.err().map(|err| err.to_string()));
            Ok(())
        }
    });
}
