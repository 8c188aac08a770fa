//! The oracle on hand-made traces: every rule catches a trace that breaks
//! it, and passes a clean one. One file per rule family; the helpers are here.

mod bytes;
mod capacity;
mod codes;
mod figures;
mod heartbeat;
mod liveness;
mod measured;
mod outcome;
mod pacing;
mod purge;
mod quiescence;
mod resends;
mod session_end;
mod terminal;
mod timing;
mod usage;

use std::collections::BTreeSet;

use simctl::oracle::{OracleConfig, RULES, Violation, judge};
use simctl::trace::Trace;
use simctl::trace::handmade::TraceBuilder;

/// Small round limits: 2 slots, heartbeats every second, 100 ms bounds.
pub fn config() -> OracleConfig {
    OracleConfig::for_handmade_traces()
}

/// The violations of `rule` alone on `trace`.
pub fn check(rule: &str, trace: &Trace) -> Vec<Violation> {
    assert!(RULES.iter().any(|r| r.name == rule), "no rule {rule}");
    let skip: BTreeSet<String> = RULES
        .iter()
        .filter(|r| r.name != rule)
        .map(|r| r.name.to_owned())
        .collect();
    judge(trace, &config(), &skip).violations
}

pub fn caught(rule: &str, trace: &Trace) -> Violation {
    let found = check(rule, trace);
    assert!(!found.is_empty(), "{rule} missed its violation");
    assert!(found.iter().all(|v| v.rule == rule));
    found[0].clone()
}

pub fn passes(rule: &str, trace: &Trace) {
    let found = check(rule, trace);
    assert!(found.is_empty(), "{rule} flagged a clean trace: {found:?}");
}

/// A job served start to finish: sent, admitted, streamed, done.
pub fn served(b: TraceBuilder, job: &str, at_ms: u64, body: &[u8]) -> TraceBuilder {
    b.job(at_ms, job, 1, 60_000)
        .admitted(at_ms + 1, job, 1)
        .backend(at_ms + 2, Some(at_ms + 20), job, body, "completed")
        .chunk(at_ms + 10, job, 1, body)
        .freed(at_ms + 21, job, 0)
        .done(at_ms + 22, job, 1)
}
