//! Cross-checks serde cannot express: ranges, host names that must exist,
//! fault sequences that must make sense, expectations that must be
//! satisfiable, and the mock crates' and the agent's own validation, with
//! their key paths moved under the scenario's tables.

use std::collections::BTreeSet;

use super::agent::{agent_config, scenario_path_of_agent_key};
use super::locate::KeyPath;
use super::model::{CountBound, EPHEMERAL_PORTS_DEFAULT, ExpectSection, NetworkSection, PercentileBound, Scenario};
use crate::expect::{ERROR_CODES, OUTCOME_KEYS};
use crate::oracle::windows::{AGENT_HOST, COORDINATOR_HOST};
use crate::trace::FaultAction;

/// Longest `duration_ms` or `settle_ms_max`: one simulated day.
pub const PHASE_MS_MAX: u64 = 86_400_000;
/// Largest one-way latency, in ms.
pub const LATENCY_MS_MAX: u64 = 60_000;
/// Largest `tcp_capacity`.
pub const TCP_CAPACITY_MAX: u64 = 1 << 20;
/// Most `[[faults]]` entries.
pub const FAULTS_MAX: usize = 10_000;

/// One thing wrong with a scenario, at a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: KeyPath,
    pub message: String,
}

fn problem(path: KeyPath, message: impl Into<String>) -> Problem {
    Problem {
        path,
        message: message.into(),
    }
}

fn root(key: &str) -> KeyPath {
    KeyPath::root().key(key)
}

/// Every problem found, in file order of the tables.
pub fn validate(scenario: &Scenario) -> Vec<Problem> {
    let mut found = Vec::new();
    check_top(scenario, &mut found);
    check_agent(scenario, &mut found);
    check_backends(scenario, &mut found);
    if let Err(err) = scenario.coordinator.validate() {
        found.push(mock_error(&err.under("coordinator").to_string()));
    }
    check_network(&scenario.network, &mut found);
    check_faults(scenario, &mut found);
    check_expect(&scenario.expect, &mut found);
    check_live(&scenario.live, &mut found);
    found
}

fn check_live(live: &super::live::LiveSection, found: &mut Vec<Problem>) {
    let path = root("live");
    if live.slack_ms > super::live::LIVE_SLACK_MS_MAX {
        let message = format!("is {}, at most {}", live.slack_ms, super::live::LIVE_SLACK_MS_MAX);
        found.push(problem(path.key("slack_ms"), message));
    }
    if live.skip.as_deref().is_some_and(|why| why.trim().is_empty()) {
        found.push(problem(path.key("skip"), "must say why the scenario cannot run live"));
    }
    if live.rss_bytes_max == Some(0) {
        found.push(problem(path.key("rss_bytes_max"), "must be at least 1"));
    }
    let expect = path.key("expect");
    if !live.expect.is_empty() && live.expect.why.trim().is_empty() {
        found.push(problem(
            expect.key("why"),
            "replacing [expect] bounds live must say why they do not hold live",
        ));
    }
    for (key, bound) in &live.expect.outcomes {
        let at = expect.key("outcomes").key(key);
        if !OUTCOME_KEYS.contains(&key.as_str()) {
            let message = format!("unknown outcome {key:?}, expected one of {}", OUTCOME_KEYS.join(", "));
            found.push(problem(at.clone(), message));
        }
        check_count(at, bound, found);
    }
    for (key, bound) in [
        ("ttfc_ms", live.expect.latency.ttfc_ms),
        ("inter_chunk_ms", live.expect.latency.inter_chunk_ms),
        ("e2e_ms", live.expect.latency.e2e_ms),
    ] {
        if let Some(bound) = bound {
            check_percentiles(expect.key("latency").key(key), &bound, found);
        }
    }
    for (code, bound) in &live.expect.error_codes {
        let at = expect.key("error_codes").key(code);
        if !ERROR_CODES.contains(&code.as_str()) {
            let message = format!(
                "unknown error_code {code:?}, expected one of {}",
                ERROR_CODES.join(", ")
            );
            found.push(problem(at.clone(), message));
        }
        check_count(at, bound, found);
    }
}

/// A mock crate's `key: reason` message as a problem at that key.
fn mock_error(message: &str) -> Problem {
    let (key, reason) = message.split_once(": ").unwrap_or(("", message));
    problem(KeyPath::parse(key), reason)
}

fn check_top(scenario: &Scenario, found: &mut Vec<Problem>) {
    if scenario.name.trim().is_empty() {
        found.push(problem(root("name"), "must not be empty"));
    }
    for (key, value) in [
        ("duration_ms", scenario.duration_ms),
        ("settle_ms_max", scenario.settle_ms_max),
    ] {
        if value == 0 || value > PHASE_MS_MAX {
            found.push(problem(root(key), format!("is {value}, must be 1..={PHASE_MS_MAX}")));
        }
    }
}

fn check_agent(scenario: &Scenario, found: &mut Vec<Problem>) {
    let hosts: BTreeSet<&str> = scenario.backends.iter().map(|b| b.host.as_str()).collect();
    for host in scenario.agent.allow_models.keys() {
        if !hosts.contains(host.as_str()) {
            let path = root("agent").key("allow_models").key(host);
            let valid: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
            let message = format!(
                "no [[backends]] entry has host {host:?} (backend hosts: {})",
                if valid.is_empty() {
                    "none".to_owned()
                } else {
                    valid.join(", ")
                }
            );
            found.push(problem(path, message));
        }
    }
    if let Err(err) = agent_config(scenario).validate(true) {
        let key = err.key().unwrap_or("agent");
        let reason = match &err {
            provider_agent::config::ConfigError::Invalid { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        found.push(problem(scenario_path_of_agent_key(scenario, key), reason));
    }
}

fn check_backends(scenario: &Scenario, found: &mut Vec<Problem>) {
    let mut seen = BTreeSet::new();
    for (i, spec) in scenario.backends.iter().enumerate() {
        let path = root("backends").index(i);
        if let Err(err) = spec.validate() {
            let inner = mock_error(&err.to_string());
            found.push(problem(path.join(&inner.path), inner.message));
        }
        if spec.host == AGENT_HOST || spec.host == COORDINATOR_HOST {
            found.push(problem(
                path.key("host"),
                format!("{:?} is reserved for the simulation's own host", spec.host),
            ));
        } else if !seen.insert(spec.host.as_str()) {
            found.push(problem(
                path.key("host"),
                format!("host {:?} is used by an earlier backend", spec.host),
            ));
        }
    }
}

fn check_network(network: &NetworkSection, found: &mut Vec<Problem>) {
    let path = root("network");
    if network.latency_max_ms > LATENCY_MS_MAX {
        found.push(problem(
            path.key("latency_max_ms"),
            format!("is {}, must be at most {LATENCY_MS_MAX}", network.latency_max_ms),
        ));
    }
    if network.latency_min_ms > network.latency_max_ms {
        let message = format!(
            "({}) must be <= latency_max_ms ({})",
            network.latency_min_ms, network.latency_max_ms
        );
        found.push(problem(path.key("latency_min_ms"), message));
    }
    if network.tcp_capacity == 0 || network.tcp_capacity > TCP_CAPACITY_MAX {
        found.push(problem(
            path.key("tcp_capacity"),
            format!("is {}, must be 1..={TCP_CAPACITY_MAX}", network.tcp_capacity),
        ));
    }
    if network.ephemeral_ports == 0 || network.ephemeral_ports > EPHEMERAL_PORTS_DEFAULT {
        found.push(problem(
            path.key("ephemeral_ports"),
            format!("is {}, must be 1..={EPHEMERAL_PORTS_DEFAULT}", network.ephemeral_ports),
        ));
    }
    if !(0.0..=1.0).contains(&network.fail_rate) {
        found.push(problem(
            path.key("fail_rate"),
            format!("is {}, must be a probability in 0..=1", network.fail_rate),
        ));
    }
}

/// Link and host state while walking the fault list in time order.
#[derive(Default)]
struct FaultState {
    partitioned: BTreeSet<(String, String)>,
    held: BTreeSet<(String, String)>,
    crashed: BTreeSet<String>,
}

fn check_faults(scenario: &Scenario, found: &mut Vec<Problem>) {
    if scenario.faults.len() > FAULTS_MAX {
        found.push(problem(
            root("faults"),
            format!("{} entries, at most {FAULTS_MAX}", scenario.faults.len()),
        ));
        return;
    }
    let mut hosts: BTreeSet<&str> = scenario.backends.iter().map(|b| b.host.as_str()).collect();
    hosts.extend([AGENT_HOST, COORDINATOR_HOST]);
    let mut order: Vec<usize> = (0..scenario.faults.len()).collect();
    order.sort_by_key(|&i| scenario.faults[i].at_ms);
    let mut state = FaultState::default();
    for i in order {
        let before = found.len();
        check_fault_shape(scenario, i, &hosts, found);
        if found.len() == before {
            check_fault_sequence(scenario, i, &mut state, found);
        }
    }
}

fn check_fault_shape(scenario: &Scenario, i: usize, hosts: &BTreeSet<&str>, found: &mut Vec<Problem>) {
    let fault = &scenario.faults[i];
    let path = root("faults").index(i);
    if fault.at_ms > scenario.duration_ms {
        let message = format!(
            "is {}, after the scripted phase ends (duration_ms = {})",
            fault.at_ms, scenario.duration_ms
        );
        found.push(problem(path.key("at_ms"), message));
    }
    let action = fault.action.name();
    if fault.action.is_link() {
        if fault.host.is_some() {
            found.push(problem(
                path.key("host"),
                format!("`{action}` acts on a link: use `between`, not `host`"),
            ));
        }
        match &fault.between {
            None => found.push(problem(
                path,
                format!("`{action}` needs `between = [\"host-a\", \"host-b\"]`"),
            )),
            Some(ends) if ends.len() != 2 || ends[0] == ends[1] => {
                found.push(problem(path.key("between"), "must name two different hosts"));
            }
            Some(ends) => {
                for (j, end) in ends.iter().enumerate() {
                    if !hosts.contains(end.as_str()) {
                        found.push(problem(path.key("between").index(j), unknown_host(end, hosts)));
                    }
                }
            }
        }
    } else {
        if fault.between.is_some() {
            found.push(problem(
                path.key("between"),
                format!("`{action}` acts on a host: use `host`, not `between`"),
            ));
        }
        match &fault.host {
            None => found.push(problem(path, format!("`{action}` needs `host`"))),
            Some(host) if !hosts.contains(host.as_str()) => {
                found.push(problem(path.key("host"), unknown_host(host, hosts)))
            }
            Some(_) => {}
        }
    }
}

/// `unknown host "x" (hosts: "agent", "coordinator", "vllm-1")`.
fn unknown_host(host: &str, hosts: &BTreeSet<&str>) -> String {
    let valid: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
    format!("unknown host {host:?} (hosts: {})", valid.join(", "))
}

fn link_key(ends: &[String]) -> (String, String) {
    let (a, b) = (ends[0].clone(), ends[1].clone());
    if a <= b { (a, b) } else { (b, a) }
}

fn check_fault_sequence(scenario: &Scenario, i: usize, state: &mut FaultState, found: &mut Vec<Problem>) {
    let fault = &scenario.faults[i];
    let path = root("faults").index(i).key("action");
    let ok = match (fault.action, &fault.between, &fault.host) {
        (FaultAction::Partition, Some(ends), _) => state.partitioned.insert(link_key(ends)),
        (FaultAction::Repair, Some(ends), _) => state.partitioned.remove(&link_key(ends)),
        (FaultAction::Hold, Some(ends), _) => state.held.insert(link_key(ends)),
        (FaultAction::Release, Some(ends), _) => state.held.remove(&link_key(ends)),
        (FaultAction::Crash, _, Some(host)) => state.crashed.insert(host.clone()),
        (FaultAction::Restart, _, Some(host)) => state.crashed.remove(host),
        _ => true,
    };
    if !ok {
        let why = match fault.action {
            FaultAction::Partition => "the link is already partitioned",
            FaultAction::Repair => "the link is not partitioned at that time",
            FaultAction::Hold => "the link is already held",
            FaultAction::Release => "the link is not held at that time",
            FaultAction::Crash => "the host is already crashed",
            FaultAction::Restart => "the host is not crashed at that time",
        };
        found.push(problem(
            path,
            format!("`{}` at {} ms: {why}", fault.action.name(), fault.at_ms),
        ));
    }
}

fn check_expect(expect: &ExpectSection, found: &mut Vec<Problem>) {
    let path = root("expect");
    for (key, bound) in &expect.outcomes {
        let at = path.key("outcomes").key(key);
        if !OUTCOME_KEYS.contains(&key.as_str()) {
            found.push(problem(
                at.clone(),
                format!("unknown outcome {key:?}, expected one of {}", OUTCOME_KEYS.join(", ")),
            ));
        }
        check_count(at, bound, found);
    }
    for (code, bound) in &expect.error_codes {
        let at = path.key("error_codes").key(code);
        if !ERROR_CODES.contains(&code.as_str()) {
            found.push(problem(
                at.clone(),
                format!(
                    "unknown error_code {code:?}, expected one of {}",
                    ERROR_CODES.join(", ")
                ),
            ));
        }
        check_count(at, bound, found);
    }
    let latency = path.key("latency");
    for (key, bound) in [
        ("ttfc_ms", expect.latency.ttfc_ms),
        ("inter_chunk_ms", expect.latency.inter_chunk_ms),
        ("e2e_ms", expect.latency.e2e_ms),
    ] {
        if let Some(bound) = bound {
            check_percentiles(latency.key(key), &bound, found);
        }
    }
    let mut skipped = BTreeSet::new();
    for (i, skip) in expect.skip_rules.iter().enumerate() {
        let at = path.key("skip_rules").index(i);
        if crate::oracle::rule_named(&skip.rule).is_none() {
            found.push(problem(
                at.key("rule"),
                format!("no oracle rule is named {:?}", skip.rule),
            ));
        } else if !skipped.insert(skip.rule.as_str()) {
            found.push(problem(at.key("rule"), format!("{:?} is skipped twice", skip.rule)));
        }
        if skip.why.trim().is_empty() {
            found.push(problem(at.key("why"), "an opt-out must say why"));
        }
    }
}

fn check_count(path: KeyPath, bound: &CountBound, found: &mut Vec<Problem>) {
    if bound.eq.is_some() && (bound.min.is_some() || bound.max.is_some()) {
        found.push(problem(path.key("eq"), "`eq` excludes `min` and `max`"));
    }
    if let (Some(min), Some(max)) = (bound.min, bound.max)
        && min > max
    {
        found.push(problem(path.key("min"), format!("({min}) must be <= max ({max})")));
    }
    if bound.eq.is_none() && bound.min.is_none() && bound.max.is_none() {
        found.push(problem(path, "needs `min`, `max` or `eq`"));
    }
}

fn check_percentiles(path: KeyPath, bound: &PercentileBound, found: &mut Vec<Problem>) {
    for (key, value) in [("p50", bound.p50), ("p90", bound.p90), ("p99", bound.p99)] {
        if let Some(value) = value
            && !(value.is_finite() && value >= 0.0)
        {
            found.push(problem(
                path.key(key),
                format!("is {value}, must be a finite number of ms >= 0"),
            ));
        }
    }
}
