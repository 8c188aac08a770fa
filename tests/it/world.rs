//! The world: faults are applied and healed on time, the agent reconnects
//! after them, and the real agent passes the oracle through them.

use simctl::runner::{RunOptions, run_one};
use simctl::scenario::parse;
use simctl::trace::{EventKind, FaultAction, Phase};

use crate::support::small_with;

fn run(extra: &str, seed: u64) -> simctl::runner::RunReport {
    let scenario = parse("faults.toml", &small_with(extra)).unwrap_or_else(|e| panic!("{e}"));
    run_one(
        "faults.toml",
        &scenario,
        seed,
        RunOptions {
            keep_trace: true,
            check_determinism: false,
        },
    )
}

fn faults(report: &simctl::runner::RunReport) -> Vec<(u64, FaultAction, Vec<String>)> {
    let trace = report.trace.as_ref().unwrap();
    trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Fault { action, hosts } => Some((e.at_us, *action, hosts.clone())),
            _ => None,
        })
        .collect()
}

/// A crash and restart of the agent: applied at their times, the agent
/// reconnects, and every rule holds.
#[test]
fn agent_crash_and_restart() {
    let report = run(
        "[[faults]]\nat_ms = 700\naction = \"crash\"\nhost = \"agent\"\n[[faults]]\nat_ms = 900\naction = \"restart\"\nhost = \"agent\"",
        3,
    );
    assert_eq!(
        faults(&report),
        vec![
            (700_000, FaultAction::Crash, vec!["agent".into()]),
            (900_000, FaultAction::Restart, vec!["agent".into()])
        ]
    );
    let sessions = report
        .trace
        .as_ref()
        .unwrap()
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::SessionReady { .. }))
        .count();
    assert!(sessions >= 2, "the agent did not reconnect");
    assert!(
        report.passed(),
        "{:?} {:?}",
        report.verdict.violations,
        report.expect.unmet
    );
}

/// A partition left open at the end of the scripted phase is healed then.
#[test]
fn open_partition_is_healed_at_the_end() {
    let report = run(
        "[[faults]]\nat_ms = 1500\naction = \"partition\"\nbetween = [\"agent\", \"vllm-1\"]",
        4,
    );
    let applied = faults(&report);
    assert_eq!(applied.len(), 2, "{applied:?}");
    assert_eq!(applied[1].1, FaultAction::Repair);
    assert_eq!(applied[1].0, 2_000_000, "healed when the scripted phase ends");
    let trace = report.trace.as_ref().unwrap();
    assert!(
        trace
            .events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Phase { phase: Phase::Healed }))
    );
}

/// A coordinator crash during the run: the agent comes back on a new
/// connection once the coordinator restarts.
#[test]
fn coordinator_crash_and_restart() {
    let report = run(
        "[[faults]]\nat_ms = 600\naction = \"crash\"\nhost = \"coordinator\"\n[[faults]]\nat_ms = 800\naction = \"restart\"\nhost = \"coordinator\"",
        5,
    );
    let trace = report.trace.as_ref().unwrap();
    let ready: Vec<u64> = trace
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::SessionReady { .. }))
        .map(|e| e.at_us)
        .collect();
    assert!(
        ready.iter().any(|&t| t > 800_000),
        "no session after the restart: {ready:?}"
    );
    assert!(
        report.passed(),
        "{:?} {:?}",
        report.verdict.violations,
        report.expect.unmet
    );
}
