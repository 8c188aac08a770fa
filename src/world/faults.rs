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
}

fn link(hosts: &[String]) -> (String, String) {
    let (a, b) = (hosts[0].clone(), hosts[1].clone());
    if a <= b { (a, b) } else { (b, a) }
}

impl FaultSchedule {
    /// The schedule of `faults` (validated: links name two known hosts,
    /// host actions one).
    pub fn new(faults: &[WorldFault]) -> Self {
        let mut pending: Vec<(u64, WorldFault)> = faults.iter().map(|f| (f.at_ms * 1_000, f.clone())).collect();
        pending.sort_by_key(|(at, _)| *at);
        Self {
            pending: pending.into(),
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
                sim.crash(hosts[0].as_str());
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
}
