//! The `[[faults]]` schedule: applies each fault when its time comes, keeps
//! track of what is broken, and heals everything at the end of the scripted
//! phase. Every action is recorded as a trace event.

use std::collections::{BTreeSet, VecDeque};

use turmoil::Sim;

use crate::scenario::model::WorldFault;
use crate::trace::{Event, EventKind, FaultAction};

/// Faults still to apply, and the ones in force.
#[derive(Debug, Default)]
pub struct FaultSchedule {
    /// `(at_us, fault)` in time order (file order within one instant).
    pending: VecDeque<(u64, WorldFault)>,
    partitioned: BTreeSet<(String, String)>,
    held: BTreeSet<(String, String)>,
    crashed: BTreeSet<String>,
    /// Every host of the world, in a fixed order: a crash isolates the
    /// crashing host from each of them (see [`FaultSchedule::crash`]).
    hosts: Vec<String>,
}

fn link(hosts: &[String]) -> (String, String) {
    let (a, b) = (hosts[0].clone(), hosts[1].clone());
    if a <= b { (a, b) } else { (b, a) }
}

impl FaultSchedule {
    /// The schedule of `faults` (validated: links name two known hosts,
    /// host actions one) in a world of `hosts`.
    pub fn new(faults: &[WorldFault], hosts: &[String]) -> Self {
        let mut pending: Vec<(u64, WorldFault)> = faults.iter().map(|f| (f.at_ms * 1_000, f.clone())).collect();
        pending.sort_by_key(|(at, _)| *at);
        Self {
            pending: pending.into(),
            hosts: hosts.to_vec(),
            ..Self::default()
        }
    }

    /// Time of the next fault, if any.
    pub fn next_due_us(&self) -> Option<u64> {
        self.pending.front().map(|(at, _)| *at)
    }

    /// Whether the harness crashed `host` and has not restarted it.
    pub fn is_crashed(&self, host: &str) -> bool {
        self.crashed.contains(host)
    }

    /// Applies every fault due at or before `now_us`.
    pub fn apply_due(&mut self, sim: &mut Sim<'_>, now_us: u64, events: &mut Vec<Event>) {
        while self.pending.front().is_some_and(|(at, _)| *at <= now_us) {
            let Some((_, fault)) = self.pending.pop_front() else {
                break;
            };
            self.apply(sim, fault.action, &fault.hosts(), now_us, events);
        }
    }

    /// Repairs and releases every link and restarts every crashed host.
    pub fn heal_all(&mut self, sim: &mut Sim<'_>, now_us: u64, events: &mut Vec<Event>) {
        for (a, b) in std::mem::take(&mut self.partitioned) {
            self.apply(sim, FaultAction::Repair, &[a, b], now_us, events);
        }
        for (a, b) in std::mem::take(&mut self.held) {
            self.apply(sim, FaultAction::Release, &[a, b], now_us, events);
        }
        for host in std::mem::take(&mut self.crashed) {
            self.apply(sim, FaultAction::Restart, &[host], now_us, events);
        }
    }

    fn apply(
        &mut self,
        sim: &mut Sim<'_>,
        action: FaultAction,
        hosts: &[String],
        now_us: u64,
        events: &mut Vec<Event>,
    ) {
        match action {
            FaultAction::Partition => {
                sim.partition(hosts[0].as_str(), hosts[1].as_str());
                self.partitioned.insert(link(hosts));
            }
            FaultAction::Repair => {
                sim.repair(hosts[0].as_str(), hosts[1].as_str());
                self.partitioned.remove(&link(hosts));
            }
            FaultAction::Hold => {
                sim.hold(hosts[0].as_str(), hosts[1].as_str());
                self.held.insert(link(hosts));
            }
            FaultAction::Release => {
                sim.release(hosts[0].as_str(), hosts[1].as_str());
                self.held.remove(&link(hosts));
            }
            FaultAction::Crash => {
                self.crash(sim, &hosts[0]);
                self.crashed.insert(hosts[0].clone());
            }
            FaultAction::Restart => {
                sim.bounce(hosts[0].as_str());
                self.crashed.remove(&hosts[0]);
            }
        }
        events.push(Event::new(
            now_us,
            EventKind::Fault {
                action,
                hosts: hosts.to_vec(),
            },
        ));
    }

    /// Crashes `host` like a power loss: its software stops, and nothing it
    /// had on the wire, nor any FIN or RST of its sockets, reaches a peer.
    /// Peers learn of the crash only by their own timeouts, or by a RST when
    /// they write to the host after its restart.
    ///
    /// Why not let the sockets close: dropping the host's runtime drops its
    /// tasks in an order set by tokio's process-wide task ids, and each
    /// dropped socket sends a FIN that draws its latency from the world's
    /// RNG; so which FIN got which latency would depend on what else ran in
    /// the process before, and two runs of one seed in one process would
    /// differ. Partitioned messages are dropped before any latency draw
    /// (turmoil 0.7.2, `top.rs`, `Link::enqueue`), so isolating the host for
    /// the instant of the crash keeps the run a function of its seed.
    fn crash(&self, sim: &mut Sim<'_>, host: &str) {
        let peers: Vec<&String> = self.hosts.iter().filter(|h| h.as_str() != host).collect();
        for peer in &peers {
            sim.partition(host, peer.as_str());
        }
        sim.crash(host);
        for peer in peers {
            let pair = link(&[host.to_owned(), peer.clone()]);
            if self.partitioned.contains(&pair) {
                continue;
            }
            sim.repair(host, peer.as_str());
            if self.held.contains(&pair) {
                sim.hold(host, peer.as_str());
            }
        }
    }
}
