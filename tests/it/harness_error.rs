//! A simulator limit reaches the user as a harness error (the report's
//! `harness_error`, exit 4, the `HARNESS ERROR` line, a JUnit `<error>`),
//! never as a verdict on the agent; a host's own panic is judged, as
//! `hosts_stay_up`, naming the host.
//!
//! The limit reached for real: `[network] ephemeral_ports = 1` leaves the
//! agent one outbound port. turmoil panics on the next `connect` instead of
//! failing it (a kernel returns `EADDRNOTAVAIL`), inside the agent's task;
//! tokio then shuts the agent's runtime down with a panic of its own, and
//! that is what unwinds out of the step.

use simctl::oracle::hosts::STAY_UP;
use simctl::runner::{RunOptions, RunReport, judge_outcome, run_one};
use simctl::scenario::{Scenario, parse};
use simctl::world::limits::{EPHEMERAL_PORTS_KEY, HarnessError};

use crate::support::{simctl, small_with, stdout, temp_dir, write};

/// The small fixture with one ephemeral port per host: the agent's second
/// connection at once (a discovery probe while its session holds the port,
/// or a backend connection) needs a second.
fn one_port() -> String {
    let text = small_with("");
    assert!(text.contains("[network]\n"), "the fixture changed");
    text.replace("[network]\n", "[network]\nephemeral_ports = 1\n")
}

fn scenario(name: &str, text: &str) -> Scenario {
    parse(name, text).unwrap_or_else(|e| panic!("{e}"))
}

fn run(name: &str, text: &str) -> RunReport {
    run_one(name, &scenario(name, text), 7, RunOptions::default())
}

/// The runner reports exhausted ports as a harness error naming the host,
/// the time, the limit and its key; the run is not judged, so no rule
/// blames the agent, and it does not pass.
#[test]
fn exhausted_ports_are_a_harness_error() {
    let report = run("one-port.toml", &one_port());
    let error = report.harness_error.as_ref().expect("a harness error");
    assert_eq!(error.host.as_deref(), Some("agent"));
    assert_eq!(error.key.as_deref(), Some(EPHEMERAL_PORTS_KEY));
    assert_eq!(
        error.limit.as_deref(),
        Some("1 ephemeral port(s) of the host, all in use")
    );
    assert!(error.at_us.is_some(), "the step's time is known");
    assert!(error.message.contains("ports exhausted"), "{}", error.message);
    assert!(report.verdict.violations.is_empty(), "{:?}", report.verdict.violations);
    assert!(report.expect.unmet.is_empty(), "{:?}", report.expect.unmet);
    assert!(!report.passed());
    assert_eq!(report.trace_events, 0, "an unjudged run has no trace");
}

/// The default ports are enough for the same run, which passes: the
/// limit above is the key's doing.
#[test]
fn the_same_run_with_default_ports_passes() {
    let report = run("small.toml", &small_with(""));
    assert!(report.harness_error.is_none(), "{:?}", report.harness_error);
    assert!(report.passed(), "{:?}", report.verdict.violations);
}

/// `simctl run` exits 4, prints the `HARNESS ERROR` line naming host, time,
/// limit and key, and writes the run to JUnit as an `<error>`.
#[test]
fn the_binary_exits_4_with_the_harness_error_line_and_junit_error() {
    let dir = temp_dir("harness-error");
    let file = write(&dir, "one-port.toml", &one_port());
    let junit = dir.join("out.xml");
    let output = simctl(&["run", file.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(4), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("HARNESS ERROR seed 7: simulator limit reached at "))
        .unwrap_or_else(|| panic!("no HARNESS ERROR line: {out}"));
    assert!(
        line.contains(" s on agent: 1 ephemeral port(s) of the host, all in use (raise `network.ephemeral_ports`)"),
        "{line}"
    );
    assert!(
        line.ends_with("(the run was not judged)") || out.contains("(the run was not judged)"),
        "{out}"
    );
    assert!(!out.contains("VIOLATION"), "a simulator limit is no violation: {out}");
    assert!(
        !out.contains("UNMET"),
        "an unjudged run meets no expectation either: {out}"
    );
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(
        xml.contains("failures=\"0\" errors=\"1\"") && xml.contains("<error message=\"harness error\""),
        "{xml}"
    );
    assert!(xml.contains("raise `network.ephemeral_ports`"), "{xml}");
}

/// The runner tells a host's own panic (no limit) from a simulator limit:
/// the former is judged, as a `hosts_stay_up` violation at its time naming
/// the host, and is no harness error; the latter is a harness error with no
/// violation. (The world's side, a real panic in a host's task becoming
/// such an error with its host and message, is `world::tests`.)
#[test]
fn a_host_panic_is_judged_and_a_limit_is_not() {
    let scenario = scenario("small.toml", &small_with(""));
    let host_panic = HarnessError {
        at_us: Some(1_500_000),
        host: Some("vllm-1".to_owned()),
        port: None,
        limit: None,
        key: None,
        message: "panicked at mock-backends/src/x.rs:1:1:\nboom".to_owned(),
    };
    let judge = |error: HarnessError| {
        let options = RunOptions::default();
        judge_outcome("small.toml", &scenario, 7, options, Vec::new(), Err(error), 0.0)
    };
    let judged = judge(host_panic.clone());
    assert!(judged.harness_error.is_none());
    let violation = judged
        .verdict
        .violations
        .iter()
        .find(|v| v.rule == STAY_UP.name)
        .unwrap_or_else(|| panic!("{:?}", judged.verdict.violations));
    assert_eq!(violation.at_us, 1_500_000);
    assert!(
        violation.detail.starts_with("vllm-1's software panicked"),
        "{}",
        violation.detail
    );
    assert!(violation.detail.contains("boom"), "{}", violation.detail);

    let limit = HarnessError {
        limit: Some("listen backlog of 4 pending connection(s)".to_owned()),
        key: Some("network.tcp_capacity".to_owned()),
        port: Some(9000),
        host: Some("coordinator".to_owned()),
        ..host_panic
    };
    let unjudged = judge(limit);
    assert!(unjudged.harness_error.is_some());
    assert!(
        unjudged.verdict.violations.is_empty(),
        "{:?}",
        unjudged.verdict.violations
    );
    let text = unjudged.harness_error.unwrap().to_string();
    assert!(
        text.starts_with("simulator limit reached at 1.500 s on coordinator:9000: listen backlog of 4"),
        "{text}"
    );
}
