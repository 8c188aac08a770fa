//! Disruption windows: spans of simulated time during which frames between
//! the agent and the coordinator could not flow on time (a read pause, a
//! partition or hold of their link, a crash of either). Rules that bound a
//! delay stretch the bound by the disrupted time, or exempt the span.

use crate::trace::{FaultAction, Phase, TraceView};

/// The agent's host name in the simulation.
pub const AGENT_HOST: &str = "agent";
/// The coordinator's host name in the simulation.
pub const COORDINATOR_HOST: &str = "coordinator";

/// Half-open spans `[from_us, until_us)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Windows(pub Vec<(u64, u64)>);

impl Windows {
    /// Time in `[from_us, to_us)` covered by any window (overlaps counted
    /// once).
    pub fn covered_us(&self, from_us: u64, to_us: u64) -> u64 {
        let mut clipped: Vec<(u64, u64)> = self
            .0
            .iter()
            .map(|&(a, b)| (a.max(from_us), b.min(to_us)))
            .filter(|(a, b)| a < b)
            .collect();
        clipped.sort_unstable();
        let (mut total, mut reach) = (0, from_us);
        for (a, b) in clipped {
            let start = a.max(reach);
            if b > start {
                total += b - start;
                reach = b;
            }
        }
        total
    }

    /// Whether any window overlaps `[from_us, to_us]`.
    pub fn overlaps(&self, from_us: u64, to_us: u64) -> bool {
        self.0.iter().any(|&(a, b)| a <= to_us && b >= from_us)
    }

    /// The start of the chain of windows containing `at_us` (windows that
    /// overlap chain), or `at_us` itself.
    pub fn chain_start(&self, at_us: u64) -> u64 {
        let mut start = at_us;
        loop {
            let earlier = self
                .0
                .iter()
                .filter(|&&(a, b)| a < start && b >= start)
                .map(|&(a, _)| a)
                .min();
            match earlier {
                Some(a) => start = a,
                None => return start,
            }
        }
    }

    /// The end of the window containing `at_us`, or `at_us` itself.
    pub fn heal_after(&self, at_us: u64) -> u64 {
        let mut heal = at_us;
        // Windows may chain (a crash during a partition): follow them.
        loop {
            let next = self
                .0
                .iter()
                .filter(|&&(a, b)| a <= heal && b > heal)
                .map(|&(_, b)| b)
                .max();
            match next {
                Some(end) => heal = end,
                None => return heal,
            }
        }
    }
}

/// Link faults and crashes that cut the agent off from the coordinator.
pub fn link_disruptions(view: &TraceView) -> Windows {
    Windows(
        fault_windows(view, cuts_agent_off)
            .into_iter()
            .map(|(a, b, _)| (a, b))
            .collect(),
    )
}

/// Link faults and crashes that cut the agent off from a backend (a
/// partition or hold between the agent and a host other than the
/// coordinator, or a crash of such a host): `(from_us, until_us, what)`.
pub fn backend_disruptions(view: &TraceView) -> Vec<(u64, u64, String)> {
    fault_windows(view, cuts_a_backend_off)
}

/// The windows of the partitions, holds and crashes that `cuts` selects,
/// each lasting until its undo (or the heal at the end of the script), with
/// the fault as words (`crash vllm-1`).
fn fault_windows(view: &TraceView, cuts: fn(FaultAction, &[String]) -> bool) -> Vec<(u64, u64, String)> {
    let healed_us = view.phase_us(Phase::Healed).unwrap_or(view.end_us);
    let mut windows = Vec::new();
    for (index, (at, action, hosts)) in view.faults.iter().enumerate() {
        if !matches!(action, FaultAction::Partition | FaultAction::Hold | FaultAction::Crash) {
            continue;
        }
        if !cuts(*action, hosts) {
            continue;
        }
        let undo = undo_of(*action);
        let end = view.faults[index + 1..]
            .iter()
            .find(|(_, a, h)| *a == undo && same_hosts(h, hosts))
            .map_or(healed_us, |(t, _, _)| *t);
        windows.push((*at, end.max(*at), format!("{} {}", action.name(), hosts.join("/"))));
    }
    windows
}

/// [`link_disruptions`] plus the coordinator's read pauses.
pub fn all_disruptions(view: &TraceView) -> Windows {
    let mut windows = link_disruptions(view);
    windows.0.extend(view.read_pauses.iter().copied());
    windows
}

fn cuts_agent_off(action: FaultAction, hosts: &[String]) -> bool {
    let names = |name: &str| hosts.iter().any(|h| h == name);
    if action.is_link() {
        names(AGENT_HOST) && names(COORDINATOR_HOST)
    } else {
        names(AGENT_HOST) || names(COORDINATOR_HOST)
    }
}

fn cuts_a_backend_off(action: FaultAction, hosts: &[String]) -> bool {
    let is_backend = |name: &String| name != AGENT_HOST && name != COORDINATOR_HOST;
    if action.is_link() {
        hosts.iter().any(|h| h == AGENT_HOST) && hosts.iter().any(is_backend)
    } else {
        hosts.iter().any(is_backend)
    }
}

fn undo_of(action: FaultAction) -> FaultAction {
    match action {
        FaultAction::Partition => FaultAction::Repair,
        FaultAction::Hold => FaultAction::Release,
        _ => FaultAction::Restart,
    }
}

fn same_hosts(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Overlapping disruption windows are counted once.
    #[test]
    fn overlapping_windows_count_once() {
        let windows = Windows(vec![(0, 10), (5, 20), (30, 40)]);
        assert_eq!(windows.covered_us(0, 100), 30);
        assert_eq!(windows.covered_us(8, 35), 12 + 5);
    }

    /// Healing follows windows that chain into each other.
    #[test]
    fn heal_follows_chained_windows() {
        let windows = Windows(vec![(0, 10), (5, 20)]);
        assert_eq!(windows.heal_after(3), 20);
        assert_eq!(windows.heal_after(25), 25);
    }

    /// A partition lasts until its repair, a crash until the heal.
    #[test]
    fn partition_lasts_until_repair_or_heal() {
        let view = TraceView {
            faults: vec![
                (10, FaultAction::Partition, vec!["coordinator".into(), "agent".into()]),
                (50, FaultAction::Repair, vec!["agent".into(), "coordinator".into()]),
                (60, FaultAction::Crash, vec!["agent".into()]),
                (70, FaultAction::Partition, vec!["agent".into(), "b1".into()]),
            ],
            phases: vec![(90, Phase::Healed)],
            end_us: 100,
            ..TraceView::default()
        };
        assert_eq!(link_disruptions(&view), Windows(vec![(10, 50), (60, 90)]));
    }
}
