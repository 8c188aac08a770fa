//! The simulated world of one run: a turmoil simulation with a fixed epoch
//! and the scenario's seed, holding the mock coordinator, the mock backends
//! and the real agent. It runs the scripted phase (applying `[[faults]]` on
//! time), heals every fault, then runs a quiet phase until the world has
//! settled or `settle_ms_max` is spent, and returns the run's trace.
//!
//! Files: [`hosts`] (the host closures), [`connector`] (the agent's network),
//! [`backlog`] (keeping SYN bursts within turmoil's listen backlog),
//! [`limits`] (a simulator limit reached: the harness error), [`faults`]
//! (the fault schedule), [`settle`] (the quiet-phase predicate), [`collect`]
//! (records → trace), [`frames`] (which submission each frame belongs to),
//! [`observer`] (agent events), [`agent_subs`] (which
//! submission each agent job event concerns), [`seeds`], [`clock`],
//! [`panics`].

pub mod agent_subs;
pub mod backlog;
pub mod clock;
pub mod collect;
pub mod connector;
pub mod faults;
mod frames;
pub mod hosts;
pub mod limits;
pub mod observer;
pub mod panics;
pub mod seeds;
pub mod settle;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mock_backends::Recorder;
use mock_coordinator::Log;
use provider_agent::observer::AgentEvent;
use turmoil::Sim;

use self::backlog::SynLedger;
use self::connector::TurmoilConnector;
use self::faults::FaultSchedule;
use self::hosts::HostEvents;
use self::limits::{HarnessError, SimLimits};
use self::observer::AgentRecorder;
use crate::oracle::windows::{AGENT_HOST, COORDINATOR_HOST};
use crate::scenario::Scenario;
use crate::scenario::agent::agent_config;
use crate::trace::{Event, EventKind, FaultAction, Phase, Trace};

/// Simulated time per turmoil step.
pub const TICK_MS: u64 = 1;
/// How often the quiet phase checks whether the world has settled.
pub const SETTLE_CHECK_MS: u64 = 100;
/// How long the world keeps running after it settled, so late effects of a
/// bug (a stray frame, a slot never freed) still show in the trace.
pub const QUIET_TAIL_MS: u64 = 500;
/// The first ephemeral port of every host (turmoil's and IANA's).
const EPHEMERAL_PORT_FIRST: u16 = 49_152;
/// How often (in steps) the harness checks that no host died by itself.
const HOST_CHECK_STEPS: u64 = 10;

/// The outcome of running a world.
#[derive(Clone, Debug)]
pub struct WorldRun {
    pub trace: Trace,
    /// Simulated time the run covered, in µs.
    pub sim_us: u64,
    /// Whether the quiet phase found the world settled.
    pub settled: bool,
}

/// The running simulation and what the harness keeps beside it.
struct World<'a> {
    sim: Sim<'a>,
    schedule: FaultSchedule,
    /// Harness events (phases, faults), in order.
    events: Vec<Event>,
    host_events: HostEvents,
    hosts: Vec<String>,
    /// Hosts already reported as stopped by themselves.
    dead: BTreeSet<String>,
    /// The last error `Sim::step` returned, to attach to a dead host.
    last_error: Option<String>,
    steps: u64,
    /// SYNs in flight per listener, recounted before every step.
    ledger: SynLedger,
    /// The scenario's limits on the simulator, named when one is reached.
    limits: SimLimits,
}

impl World<'_> {
    fn now_us(&self) -> u64 {
        u64::try_from(self.sim.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// One tick. A host whose software failed makes `step` return early with
    /// its error; the simulation itself carries on. A panic of the simulator
    /// (a limit reached in the middle of a delivery) ends the run.
    fn step(&mut self) -> Result<(), HarnessError> {
        self.ledger.refresh(&self.sim);
        let at_us = self.now_us();
        if let Err(err) = step_caught(&mut self.sim, at_us, self.limits)? {
            self.last_error = Some(err.to_string());
        }
        self.steps += 1;
        if self.steps % HOST_CHECK_STEPS == 0 {
            self.check_hosts();
        }
        Ok(())
    }

    /// Records hosts whose software stopped without the harness crashing
    /// them (a returned error, or a panic that shut their runtime down).
    fn check_hosts(&mut self) {
        for host in self.hosts.clone() {
            if self.dead.contains(&host) || self.schedule.is_crashed(&host) || self.sim.is_host_running(host.as_str()) {
                continue;
            }
            self.dead.insert(host.clone());
            let reported = self
                .host_events
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|e| matches!(&e.kind, EventKind::HostStopped { host: h, .. } if *h == host));
            if !reported {
                let mut why: Vec<String> = panics::take_captured();
                why.extend(self.last_error.take());
                let error = Some(if why.is_empty() {
                    "software stopped".to_owned()
                } else {
                    why.join("; ")
                });
                self.events
                    .push(Event::new(self.now_us(), EventKind::HostStopped { host, error }));
            }
        }
    }

    /// Steps until `until_us`, applying faults as they come due.
    fn run_until(&mut self, until_us: u64) -> Result<(), HarnessError> {
        while self.now_us() < until_us {
            let now_us = self.now_us();
            if self.schedule.next_due_us().is_some_and(|due| due <= now_us) {
                self.schedule.apply_due(&mut self.sim, now_us, &mut self.events);
            }
            self.step()?;
        }
        Ok(())
    }
}

/// One `Sim::step`, its panic caught: a host's software that failed is the
/// inner error (the simulation carries on); a panic (a simulator limit, or
/// a host's own panic, which shuts its runtime down) is the outer one, and
/// ends the run. `at_us`: the simulated time the step started at.
fn step_caught(sim: &mut Sim<'_>, at_us: u64, limits: SimLimits) -> Result<turmoil::Result<bool>, HarnessError> {
    match catch_unwind(AssertUnwindSafe(|| sim.step())) {
        Ok(stepped) => Ok(stepped),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown panic".to_owned());
            let captured = panics::take_captured_panics();
            let host_of = |ip| sim.reverse_lookup(ip);
            Err(HarnessError::from_step_panic(
                message,
                &captured,
                Some(at_us),
                limits,
                host_of,
            ))
        }
    }
}

/// Builds the simulation for `scenario` with `seed`, hosts registered.
fn build<'a>(
    scenario: &Scenario,
    seed: u64,
    log: &Log,
    recorders: &[Recorder],
    observer: &AgentRecorder,
    host_events: &HostEvents,
    ledger: &SynLedger,
) -> Sim<'a> {
    let network = &scenario.network;
    let horizon_ms = scenario.duration_ms + scenario.settle_ms_max + QUIET_TAIL_MS + 60_000;
    let mut sim = turmoil::Builder::new()
        .epoch(clock::epoch())
        .rng_seed(seed)
        .tick_duration(Duration::from_millis(TICK_MS))
        .simulation_duration(Duration::from_millis(horizon_ms))
        .min_message_latency(Duration::from_millis(network.latency_min_ms))
        .max_message_latency(Duration::from_millis(network.latency_max_ms))
        .tcp_capacity(usize::try_from(network.tcp_capacity).unwrap_or(usize::MAX))
        .fail_rate(network.fail_rate)
        .ephemeral_ports(
            EPHEMERAL_PORT_FIRST..=EPHEMERAL_PORT_FIRST.saturating_add(network.ephemeral_ports.saturating_sub(1)),
        )
        .build();
    hosts::add_coordinator(&mut sim, &scenario.coordinator, seed, log, host_events);
    for (spec, recorder) in scenario.backends.iter().zip(recorders) {
        hosts::add_backend(&mut sim, spec, seed, recorder, host_events);
    }
    // Every host the agent may connect to is registered by now; resolving
    // the names here keeps the connector from registering unknown ones.
    let mut addrs = BTreeMap::new();
    addrs.insert(COORDINATOR_HOST.to_owned(), sim.lookup(COORDINATOR_HOST));
    for spec in &scenario.backends {
        addrs.insert(spec.host.clone(), sim.lookup(spec.host.as_str()));
    }
    let connector = TurmoilConnector::new(ledger.clone(), host_events.clone(), Arc::new(addrs));
    hosts::add_agent(
        &mut sim,
        &agent_config(scenario),
        seed,
        observer,
        host_events,
        &connector,
    );
    sim
}

/// Runs `scenario` with `seed` and returns its trace, or the simulator limit
/// that stopped it.
pub fn run(scenario: &Scenario, seed: u64) -> Result<WorldRun, HarnessError> {
    panics::start_capture();
    let outcome = run_captured(scenario, seed);
    panics::stop_capture();
    outcome
}

fn run_captured(scenario: &Scenario, seed: u64) -> Result<WorldRun, HarnessError> {
    let log = Log::new();
    let recorders: Vec<Recorder> = scenario.backends.iter().map(|_| Recorder::new()).collect();
    let observer = AgentRecorder::default();
    let host_events: HostEvents = Arc::new(Mutex::new(Vec::new()));
    let mut hosts = vec![COORDINATOR_HOST.to_owned(), AGENT_HOST.to_owned()];
    hosts.extend(scenario.backends.iter().map(|b| b.host.clone()));
    let ledger = SynLedger::new(usize::try_from(scenario.network.tcp_capacity).unwrap_or(usize::MAX));
    let mut world = World {
        sim: build(scenario, seed, &log, &recorders, &observer, &host_events, &ledger),
        schedule: FaultSchedule::new(&scenario.faults, &hosts),
        events: vec![Event::new(0, EventKind::Phase { phase: Phase::Scripted })],
        host_events: host_events.clone(),
        hosts,
        dead: BTreeSet::new(),
        last_error: None,
        steps: 0,
        ledger,
        limits: SimLimits::of(&scenario.network),
    };
    let scripted_end_us = scenario.duration_ms * 1_000;
    world.run_until(scripted_end_us)?;
    let now_us = world.now_us();
    world.schedule.apply_due(&mut world.sim, now_us, &mut world.events);
    world.schedule.heal_all(&mut world.sim, now_us, &mut world.events);
    world
        .events
        .push(Event::new(now_us, EventKind::Phase { phase: Phase::Healed }));
    let settled = quiet_phase(&mut world, scenario, &log, &recorders)?;
    world.check_hosts();
    let end_us = world.now_us();
    let mut world_events = std::mem::take(&mut world.events);
    world_events.extend(host_events.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned());
    let agent_events = live_agent_events(observer.events(), &world_events);
    let records = collect::Records {
        world: world_events,
        log: log.take_snapshot(),
        backends: &recorders,
        agent: agent_events,
        agent_dropped: observer.dropped(),
        end_us,
    };
    let trace = collect::trace_of(records);
    // Dropping the simulation tears the hosts down; their last records are
    // written after the trace was taken and never reach it.
    drop(world);
    Ok(WorldRun {
        trace,
        sim_us: end_us,
        settled,
    })
}

/// The agent's observer events without those of a crashed incarnation: a
/// `crash` drops the agent's runtime, and its job tasks' drop guards still
/// report slot releases (one tick after the crash) while they are torn down.
/// A crashed host runs no code, and tokio drops those tasks in an order set by
/// process-wide task ids, which differs between two runs of one seed; so the
/// events between a crash of the agent and its restart are left out.
fn live_agent_events(events: Vec<(u64, AgentEvent)>, world: &[Event]) -> Vec<(u64, AgentEvent)> {
    let mut down: Vec<(u64, u64)> = Vec::new();
    let mut crashed_us = None;
    for event in world {
        let EventKind::Fault { action, hosts } = &event.kind else {
            continue;
        };
        if hosts.iter().all(|h| h != AGENT_HOST) {
            continue;
        }
        match action {
            FaultAction::Crash => crashed_us = Some(event.at_us),
            FaultAction::Restart => down.extend(crashed_us.take().map(|c| (c, event.at_us))),
            _ => {}
        }
    }
    down.extend(crashed_us.map(|c| (c, u64::MAX)));
    events
        .into_iter()
        .filter(|(at_us, _)| !down.iter().any(|&(crash, restart)| *at_us > crash && *at_us <= restart))
        .collect()
}

/// Runs until the world settles (then a short tail) or the bound is spent.
fn quiet_phase(
    world: &mut World<'_>,
    scenario: &Scenario,
    log: &Log,
    recorders: &[Recorder],
) -> Result<bool, HarnessError> {
    let bound_us = world.now_us() + scenario.settle_ms_max * 1_000;
    loop {
        let next_check_us = (world.now_us() + SETTLE_CHECK_MS * 1_000).min(bound_us);
        world.run_until(next_check_us)?;
        let now_us = world.now_us();
        if settle::settled(log, recorders) {
            world
                .events
                .push(Event::new(now_us, EventKind::Phase { phase: Phase::Settled }));
            world.run_until(now_us + QUIET_TAIL_MS * 1_000)?;
            return Ok(true);
        }
        if now_us >= bound_us {
            world.events.push(Event::new(
                now_us,
                EventKind::Phase {
                    phase: Phase::SettleBoundHit,
                },
            ));
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SimLimits = SimLimits {
        tcp_capacity: 4,
        ephemeral_ports: 16,
    };

    /// A task of a host's software that panics stops the step with a
    /// [`HarnessError`] that is no limit, names the host and carries the
    /// task's own message, not tokio's runtime-shutdown panic that unwound.
    #[test]
    fn a_host_panic_names_the_host_and_its_cause() {
        panics::start_capture();
        let mut sim = turmoil::Builder::new().tick_duration(Duration::from_millis(1)).build();
        sim.host("vllm-1", || async {
            panics::name_runtime("vllm-1");
            tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                panic!("boom in a connection task");
            });
            std::future::pending::<()>().await;
            Ok(())
        });
        let mut outcome = Ok(Ok(false));
        for at_ms in 0..20 {
            outcome = step_caught(&mut sim, at_ms * 1_000, LIMITS);
            if outcome.is_err() {
                break;
            }
        }
        panics::stop_capture();
        let error = outcome.expect_err("the panic ends the run");
        assert_eq!((error.limit, error.key), (None, None));
        assert_eq!(error.host.as_deref(), Some("vllm-1"));
        assert!(error.message.contains("boom in a connection task"), "{}", error.message);
        assert!(error.at_us.is_some_and(|at_us| (4_000..=6_000).contains(&at_us)));
    }
}
