//! `[[faults]]` in a live run: which can be applied (partitions and holds
//! of the agent's links, crash and restart of the agent), the refusal of
//! those that cannot (naming each), and the schedule that applies them on
//! the script's clock and heals them all at the end of the scripted phase.
//! Every action is recorded as the same trace event the simulation records.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::proxy::Link;
use crate::oracle::windows::AGENT_HOST;
use crate::scenario::Scenario;
use crate::scenario::model::WorldFault;
use crate::trace::{Event, EventKind, FaultAction};

/// Why each fault of `scenario` that cannot be applied live cannot; empty
/// when the scenario can run live.
pub fn refusals(scenario: &Scenario) -> Vec<String> {
    let mut found = Vec::new();
    for (i, fault) in scenario.faults.iter().enumerate() {
        let hosts = fault.hosts();
        let what = format!(
            "faults[{i}] ({} of {} at {} ms)",
            fault.action.name(),
            hosts.join("↔"),
            fault.at_ms
        );
        if !fault.action.is_link() && hosts.iter().any(|h| h != AGENT_HOST) {
            found.push(format!(
                "{what}: only the agent can be crashed and restarted in a live run; the mocks run inside simctl"
            ));
        }
    }
    if scenario.network.ephemeral_ports != crate::scenario::model::EPHEMERAL_PORTS_DEFAULT {
        found.push(format!(
            "network.ephemeral_ports = {}: a limit of the simulator only",
            scenario.network.ephemeral_ports
        ));
    }
    if scenario.network.fail_rate > 0.0 {
        found.push(format!(
            "network.fail_rate = {}: random connection failures exist only in the simulation",
            scenario.network.fail_rate
        ));
    }
    found
}

/// The sorted pair naming a link.
pub fn link_key(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

/// What the schedule asks of the live driver besides link state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentAction {
    /// SIGKILL the agent.
    Crash,
    /// Start a fresh agent process on the same state directory.
    Restart,
}

/// Faults still to apply and the ones in force.
#[derive(Debug, Default)]
pub struct LiveFaults {
    /// `(at_us, fault)` in time order (file order within one instant).
    pending: VecDeque<(u64, WorldFault)>,
    /// The proxied links, by sorted host pair. Links between two mocks carry
    /// no traffic in this world (nor in the simulation), so faults on them
    /// are recorded and change nothing.
    links: BTreeMap<(String, String), Arc<Link>>,
    partitioned: BTreeSet<(String, String)>,
    held: BTreeSet<(String, String)>,
    agent_down: bool,
}

impl LiveFaults {
    /// The schedule of `faults` acting on `links`.
    pub fn new(faults: &[WorldFault], links: BTreeMap<(String, String), Arc<Link>>) -> LiveFaults {
        let mut pending: Vec<(u64, WorldFault)> = faults.iter().map(|f| (f.at_ms * 1_000, f.clone())).collect();
        pending.sort_by_key(|(at, _)| *at);
        LiveFaults {
            pending: pending.into(),
            links,
            ..LiveFaults::default()
        }
    }

    /// Script time of the next fault, if any.
    pub fn next_due_us(&self) -> Option<u64> {
        self.pending.front().map(|(at, _)| *at)
    }

    /// Applies every fault due by `now_us`; returns what the agent's
    /// process must undergo, in order.
    pub fn apply_due(&mut self, now_us: u64, events: &mut Vec<Event>) -> Vec<AgentAction> {
        let mut actions = Vec::new();
        while self.pending.front().is_some_and(|(at, _)| *at <= now_us) {
            let Some((_, fault)) = self.pending.pop_front() else {
                break;
            };
            actions.extend(self.apply(fault.action, &fault.hosts(), now_us, events));
        }
        actions
    }

    /// Repairs and releases every link and restarts a crashed agent.
    pub fn heal_all(&mut self, now_us: u64, events: &mut Vec<Event>) -> Vec<AgentAction> {
        let mut actions = Vec::new();
        for (a, b) in std::mem::take(&mut self.partitioned) {
            actions.extend(self.apply(FaultAction::Repair, &[a, b], now_us, events));
        }
        for (a, b) in std::mem::take(&mut self.held) {
            actions.extend(self.apply(FaultAction::Release, &[a, b], now_us, events));
        }
        if self.agent_down {
            actions.extend(self.apply(FaultAction::Restart, &[AGENT_HOST.to_owned()], now_us, events));
        }
        actions
    }

    fn apply(
        &mut self,
        action: FaultAction,
        hosts: &[String],
        now_us: u64,
        events: &mut Vec<Event>,
    ) -> Option<AgentAction> {
        events.push(Event::new(
            now_us,
            EventKind::Fault {
                action,
                hosts: hosts.to_vec(),
            },
        ));
        if action.is_link() {
            let key = link_key(&hosts[0], &hosts[1]);
            let link = self.links.get(&key).cloned();
            match action {
                FaultAction::Partition => self.partitioned.insert(key.clone()),
                FaultAction::Repair => self.partitioned.remove(&key),
                FaultAction::Hold => self.held.insert(key.clone()),
                _ => self.held.remove(&key),
            };
            if let Some(link) = link {
                match action {
                    FaultAction::Partition => link.partition(),
                    FaultAction::Repair => link.repair(),
                    FaultAction::Hold => link.hold(),
                    _ => link.release(),
                }
            }
            return None;
        }
        // Only the agent is crashed or restarted (see `refusals`).
        let crash = action == FaultAction::Crash;
        self.agent_down = crash;
        for link in self.links.values() {
            if crash { link.crash() } else { link.restart() }
        }
        Some(if crash {
            AgentAction::Crash
        } else {
            AgentAction::Restart
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(at_ms: u64, action: FaultAction, host: Option<&str>, between: Option<[&str; 2]>) -> WorldFault {
        WorldFault {
            at_ms,
            action,
            host: host.map(str::to_owned),
            between: between.map(|b| b.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    /// A crash of a mock host and a random failure rate are refused, each named.
    #[test]
    fn faults_on_mocks_are_refused_by_name() {
        let text = "name = \"x\"\nduration_ms = 9000\n[network]\nfail_rate = 0.01\n\
                    [[faults]]\nat_ms = 1000\naction = \"crash\"\nhost = \"coordinator\"\n\
                    [[faults]]\nat_ms = 2000\naction = \"restart\"\nhost = \"coordinator\"\n";
        let scenario = crate::scenario::parse("x.toml", text).unwrap();
        let why = refusals(&scenario);
        assert_eq!(why.len(), 3, "{why:?}");
        assert!(why[0].starts_with("faults[0] (crash of coordinator at 1000 ms): only the agent"));
        assert!(why[2].starts_with("network.fail_rate = 0.01"));
    }

    /// Link faults set their link; an agent crash cuts every link and asks for a kill; healing undoes all.
    #[test]
    fn schedule_sets_links_and_asks_for_kills() {
        let link = Link::new();
        let links = [(link_key("agent", "coordinator"), link.clone())].into();
        let faults = [
            fault(10, FaultAction::Hold, None, Some(["coordinator", "agent"])),
            fault(20, FaultAction::Crash, Some("agent"), None),
        ];
        let mut schedule = LiveFaults::new(&faults, links);
        let mut events = Vec::new();
        assert!(schedule.apply_due(10_000, &mut events).is_empty());
        assert!(link.state().held);
        assert_eq!(schedule.apply_due(20_000, &mut events), vec![AgentAction::Crash]);
        assert!(link.state().down);
        assert_eq!(schedule.heal_all(30_000, &mut events), vec![AgentAction::Restart]);
        assert!(link.state().up() && !link.state().held);
        assert_eq!(events.len(), 4);
    }
}
