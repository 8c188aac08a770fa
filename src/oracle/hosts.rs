//! Hosts and records: no simulated host's software stops by itself (a
//! returned error or a panic), the mock coordinator flagged no protocol
//! violation, and no record source dropped records (an incomplete trace
//! cannot be judged).

use super::{OracleConfig, Rule, Violation};
use crate::trace::TraceView;

/// No host dies on its own.
pub const STAY_UP: Rule = Rule {
    name: "hosts_stay_up",
    summary: "no host's software returns or panics unless the scenario crashed it",
    check: stay_up,
};

/// The coordinator saw a well-behaved agent.
pub const COORDINATOR_PROTOCOL: Rule = Rule {
    name: "coordinator_protocol",
    summary: "the mock coordinator flagged no protocol violation (bad frame, unknown job, bad handshake)",
    check: coordinator_protocol,
};

/// The trace is complete.
pub const RECORDS_COMPLETE: Rule = Rule {
    name: "records_complete",
    summary: "no record source hit its bound and dropped records, so every rule saw everything",
    check: records_complete,
};

fn records_complete(view: &TraceView, _config: &OracleConfig) -> Vec<Violation> {
    view.records_dropped
        .iter()
        .map(|(source, count)| {
            let detail = format!("{count} {source} dropped at their bound: the trace is incomplete");
            Violation::new(RECORDS_COMPLETE.name, None, view.end_us, detail)
        })
        .collect()
}

fn stay_up(view: &TraceView, _config: &OracleConfig) -> Vec<Violation> {
    view.host_stops
        .iter()
        .map(|(at, host, error)| {
            let why = error.as_deref().unwrap_or("returned");
            Violation::new(STAY_UP.name, None, *at, format!("host {host} stopped by itself: {why}"))
        })
        .collect()
}

fn coordinator_protocol(view: &TraceView, _config: &OracleConfig) -> Vec<Violation> {
    view.coordinator_flags
        .iter()
        .map(|(at, job, what)| Violation::new(COORDINATOR_PROTOCOL.name, job.as_deref(), *at, what.clone()))
        .collect()
}
