//! Hosts and records: no simulated host's software stops by itself (a
//! returned error or a panic), the mock coordinator flagged no protocol
//! violation, and no record source dropped records (an incomplete trace
//! cannot be judged).
//!
//! `records_complete` also holds the agent's observer to account: the rules
//! that read agent events (see the table in `oracle/mod.rs`) would pass an
//! agent whose observer stays silent. So a run in which the coordinator saw
//! something happen while the agent emitted none of the events that report
//! it fails: sessions in steady state but no `SessionStarted`; sessions of
//! the agent closed but no `SessionEnded`; job frames answered or streamed
//! but no admission decision; chunks read but no outbound-queue report.

use super::windows::AGENT_HOST;
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{EventKind, FaultAction, JobKind, TraceView};

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

fn records_complete(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    tally.judge();
    let mut found: Vec<Violation> = view
        .records_dropped
        .iter()
        .map(|(source, count)| {
            let detail = format!("{count} {source} dropped at their bound: the trace is incomplete");
            Violation::new(RECORDS_COMPLETE.name, None, view.end_us, detail)
        })
        .collect();
    for (seen, events, what) in agent_accounts(view) {
        tally.judge();
        if seen > 0 && events == 0 {
            let detail = format!(
                "the coordinator saw {seen} {what}, but the agent's observer emitted none of the events that \
                 report them: the rules that read them cannot judge this run"
            );
            found.push(Violation::new(RECORDS_COMPLETE.name, None, view.end_us, detail));
        }
    }
    found
}

/// `(seen by the coordinator, agent events reporting it, what)` for each
/// kind of agent event a rule reads.
fn agent_accounts(view: &TraceView) -> [(usize, usize, &'static str); 4] {
    let count = |wanted: fn(&EventKind) -> bool| view.agent_events.iter().filter(|e| wanted(&e.kind)).count();
    let ready = view.sessions.values().filter(|s| s.ready_us.is_some()).count();
    // A session the agent's crash ended has no end event: the agent is gone.
    let crashes: Vec<u64> = view
        .faults
        .iter()
        .filter(|(_, action, hosts)| *action == FaultAction::Crash && hosts.iter().any(|h| h == AGENT_HOST))
        .map(|(at, _, _)| *at)
        .collect();
    let closed = view
        .sessions
        .values()
        .filter(|s| s.ready_us.is_some())
        .filter(|s| {
            s.closed_us
                .is_some_and(|closed| !crashes.iter().any(|&c| s.opened_us <= c && c <= closed))
        })
        .count();
    let answered = view
        .sends()
        .filter(|(_, s)| s.kind != JobKind::Malformed && (!s.terminals.is_empty() || !s.chunks.is_empty()))
        .count();
    let chunks: usize = view.sends().map(|(_, s)| s.chunks.len()).sum();
    [
        (
            ready,
            count(|k| matches!(k, EventKind::AgentSessionStarted { .. })),
            "session(s) reach steady state",
        ),
        (
            closed,
            count(|k| matches!(k, EventKind::AgentSessionEnded { .. })),
            "steady session(s) close",
        ),
        (
            answered,
            count(|k| {
                matches!(
                    k,
                    EventKind::AgentJobAdmitted { .. } | EventKind::AgentJobRejected { .. }
                )
            }),
            "job submission(s) answered or streamed",
        ),
        (
            chunks,
            count(|k| matches!(k, EventKind::AgentOutboundQueued { .. })),
            "chunk(s) relayed",
        ),
    ]
}

fn stay_up(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    tally.judge();
    view.host_stops
        .iter()
        .map(|(at, host, error)| {
            let why = error.as_deref().unwrap_or("returned");
            Violation::new(STAY_UP.name, None, *at, format!("host {host} stopped by itself: {why}"))
        })
        .collect()
}

fn coordinator_protocol(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    tally.judge_n(view.sessions.len() as u64);
    view.coordinator_flags
        .iter()
        .map(|(at, job, what)| Violation::new(COORDINATOR_PROTOCOL.name, job.as_deref(), *at, what.clone()))
        .collect()
}
