//! When a session ends, its jobs end with it: the agent cancels every job in
//! flight and closes their backend streams, and no job is ever run twice.
//!
//! The session's end is the agent's own `SessionEnded` event: outside
//! observation cannot tell when the agent noticed a dead connection (a
//! partition is only noticed through the agent's idle or write timeout), and
//! that is the moment the guarantee starts to run.

use std::collections::BTreeSet;

use super::windows::link_disruptions;
use super::{OracleConfig, Rule, Violation};
use crate::trace::{EventKind, JobKind, TraceView};

/// A session's end closes the backend streams of its jobs.
pub const CLOSES_STREAMS: Rule = Rule {
    name: "session_end_closes_streams",
    summary: "when the agent ends a session, the backend streams of its jobs close within cancel_close_ms",
    check: closes_streams,
};

/// A job sent once reaches a backend at most once.
pub const NEVER_RUN_TWICE: Rule = Rule {
    name: "never_run_twice",
    summary: "a job the coordinator sent once is executed by a backend at most once",
    check: never_run_twice,
};

fn closes_streams(view: &TraceView, config: &OracleConfig) -> Vec<Violation> {
    let bound_us = config.bounds.cancel_close_ms * 1_000;
    let links = link_disruptions(view);
    let mut admitted: BTreeSet<&str> = BTreeSet::new();
    let mut found = Vec::new();
    for event in &view.agent_events {
        match &event.kind {
            EventKind::AgentSessionStarted { .. } => admitted.clear(),
            EventKind::AgentJobAdmitted { job, .. } => {
                admitted.insert(job.as_str());
            }
            EventKind::AgentSessionEnded { .. } => {
                let ended_us = event.at_us;
                // A cut link between agent and backend hides the close from
                // the backend; the session's end proves nothing then.
                if !links.overlaps(ended_us, ended_us + bound_us) {
                    for job in &admitted {
                        check_closed(view, job, ended_us, bound_us, &mut found);
                    }
                }
                admitted.clear();
            }
            _ => {}
        }
    }
    found
}

fn check_closed(view: &TraceView, job: &str, ended_us: u64, bound_us: u64, found: &mut Vec<Violation>) {
    for call in view.executions_of(job).filter(|call| call.start_us <= ended_us) {
        let end_us = call.end_us.unwrap_or(u64::MAX);
        if end_us > ended_us + bound_us {
            let detail = match call.end_us {
                Some(end) => format!(
                    "backend stream on {} ran {:.1} ms past the end of its session",
                    call.backend,
                    (end - ended_us) as f64 / 1e3
                ),
                None => format!("backend stream on {} never closed after its session ended", call.backend),
            };
            found.push(Violation::new(CLOSES_STREAMS.name, Some(job), ended_us + bound_us, detail));
        }
    }
}

fn never_run_twice(view: &TraceView, _config: &OracleConfig) -> Vec<Violation> {
    let mut found = Vec::new();
    for job in view.jobs.values() {
        if job.sends.len() != 1 || !matches!(job.sends[0].kind, JobKind::Normal) {
            continue;
        }
        let runs: Vec<u64> = view.executions_of(&job.job).map(|call| call.start_us).collect();
        if let [_, second, ..] = runs.as_slice() {
            let detail = format!("sent once but executed {} times", runs.len());
            found.push(Violation::new(NEVER_RUN_TWICE.name, Some(&job.job), *second, detail));
        }
    }
    found
}
