//! The listen backlog: more connection attempts at once than the network's
//! `tcp_capacity` (turmoil's listen backlog) against each mock end in a
//! judged run, never in a simulator panic.

use simctl::runner::{RunOptions, RunReport, run_one};
use simctl::scenario::parse;
use simctl::trace::EventKind;

use crate::support::small_with;

/// The backlog every test here overruns.
const TCP_CAPACITY: usize = 2;

/// Jobs the agent runs at once: enough that its backend connections
/// outnumber the backlog.
const MAX_CONCURRENT: usize = 6;

/// The fixture's `[agent]` table, given more concurrency.
const FIXTURE_AGENT: &str = "[agent]\nmax_concurrent = 2\n";
/// The fixture's arrival rate, doubled.
const FIXTURE_ARRIVALS: &str = "kind = \"fixed\"\nrate_per_sec = 5.0\n";
/// The fixture's `[agent.session]` table, replaced by a test's own.
const FIXTURE_SESSION: &str =
    "[agent.session]\nheartbeat_interval_ms = 500\nping_interval_ms = 1000\nidle_timeout_ms = 3000\n";
/// The fixture's `[network]` table, to which `tcp_capacity` is added.
const FIXTURE_NETWORK: &str = "[network]\nlatency_min_ms = 1\nlatency_max_ms = 3\n";

/// Runs the small fixture with `session` as its `[agent.session]` table, a
/// backlog of [`TCP_CAPACITY`], [`MAX_CONCURRENT`] jobs at once, 10 jobs a
/// second, and `extra` appended.
fn run(name: &str, session: &str, extra: &str, seed: u64) -> RunReport {
    let base = small_with(extra);
    let parts = [FIXTURE_AGENT, FIXTURE_ARRIVALS, FIXTURE_SESSION, FIXTURE_NETWORK];
    assert!(parts.iter().all(|p| base.contains(p)), "the fixture changed");
    let text = base
        .replace(FIXTURE_AGENT, &format!("[agent]\nmax_concurrent = {MAX_CONCURRENT}\n"))
        .replace(FIXTURE_ARRIVALS, "kind = \"fixed\"\nrate_per_sec = 10.0\n")
        .replace(FIXTURE_SESSION, &format!("[agent.session]\n{session}\n"))
        .replace(
            FIXTURE_NETWORK,
            &format!("{FIXTURE_NETWORK}tcp_capacity = {TCP_CAPACITY}\n"),
        );
    let scenario = parse(name, &text).unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions {
        keep_trace: true,
        check_determinism: false,
    };
    run_one(name, &scenario, seed, options)
}

fn assert_judged_and_passed(report: &RunReport) {
    assert!(
        report.harness_error.is_none(),
        "the simulator hit a limit: {:?}",
        report.harness_error
    );
    assert!(
        report.passed(),
        "{:?} {:?}",
        report.verdict.violations,
        report.expect.unmet
    );
    assert!(report.settled, "the run did not settle");
}

fn count(report: &RunReport, what: impl Fn(&EventKind) -> bool) -> usize {
    let trace = report.trace.as_ref().expect("trace kept");
    trace.events.iter().filter(|e| what(&e.kind)).count()
}

/// A held agent-coordinator link while the agent reconnects every few
/// hundred ms: on release, more SYNs than the backlog reach the coordinator
/// at once. The run completes, is judged, and the agent is back.
#[test]
fn reconnect_storm_against_the_coordinator_is_judged() {
    let report = run(
        "backlog-coordinator.toml",
        "connect_timeout_ms = 200\nbackoff_initial_ms = 50\nbackoff_max_ms = 100\n\
         idle_timeout_ms = 600\nheartbeat_interval_ms = 200\nping_interval_ms = 200",
        "[[faults]]\nat_ms = 300\naction = \"hold\"\nbetween = [\"agent\", \"coordinator\"]\n\
         [[faults]]\nat_ms = 1900\naction = \"release\"\nbetween = [\"agent\", \"coordinator\"]",
        1,
    );
    assert_judged_and_passed(&report);
    let ready = count(&report, |k| matches!(k, EventKind::SessionReady { .. }));
    assert!(ready >= 2, "the agent did not reconnect after the release");
    let dropped = count(
        &report,
        |k| matches!(k, EventKind::SynDropped { host, .. } if host == "coordinator"),
    );
    assert!(
        dropped > 0,
        "no SYN was ever over the backlog: the test does not test it"
    );
}

/// A held agent-backend link while jobs keep coming: the agent opens more
/// backend connections than the backlog holds, and on release they all
/// reach the backend at once. The run completes and is judged.
#[test]
fn connection_burst_against_a_backend_is_judged() {
    let report = run(
        "backlog-backend.toml",
        "heartbeat_interval_ms = 500\nping_interval_ms = 1000\nidle_timeout_ms = 3000",
        "[[faults]]\nat_ms = 300\naction = \"hold\"\nbetween = [\"agent\", \"vllm-1\"]\n\
         [[faults]]\nat_ms = 1800\naction = \"release\"\nbetween = [\"agent\", \"vllm-1\"]",
        1,
    );
    assert_judged_and_passed(&report);
    let requests = count(&report, |k| matches!(k, EventKind::BackendRequest { .. }));
    assert!(
        requests > TCP_CAPACITY,
        "only {requests} backend requests: the burst never happened"
    );
    let dropped = count(
        &report,
        |k| matches!(k, EventKind::SynDropped { host, .. } if host == "vllm-1"),
    );
    assert!(
        dropped > 0,
        "no SYN was ever over the backlog: the test does not test it"
    );
}
