//! When a session ends, its jobs end with it: the agent cancels every job in
//! flight and closes their backend streams; and no submission is ever run
//! twice, nor one the agent rejected at admission run at all.
//!
//! The session's end is the agent's own `SessionEnded` event: outside
//! observation cannot tell when the agent noticed a dead connection (a
//! partition is only noticed through the agent's idle or write timeout), and
//! that is the moment the guarantee starts to run.

use std::collections::BTreeSet;

use super::windows::link_disruptions;
use super::{OracleConfig, Rule, Violation};
use crate::trace::{BackendCall, EventKind, TraceView};

/// A session's end closes the backend streams of its jobs.
pub const CLOSES_STREAMS: Rule = Rule {
    name: "session_end_closes_streams",
    summary: "when the agent ends a session, the backend streams of its jobs close within cancel_close_ms",
    check: closes_streams,
};

/// Each admitted submission reaches a backend at most once; a rejected one never.
pub const NEVER_RUN_TWICE: Rule = Rule {
    name: "never_run_twice",
    summary: "each job submission the agent admitted is executed by a backend at most once, and one it rejected at admission never",
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
                None => format!(
                    "backend stream on {} never closed after its session ended",
                    call.backend
                ),
            };
            found.push(Violation::new(
                CLOSES_STREAMS.name,
                Some(job),
                ended_us + bound_us,
                detail,
            ));
        }
    }
}

fn never_run_twice(view: &TraceView, _config: &OracleConfig) -> Vec<Violation> {
    let mut found = Vec::new();
    // Executions are paired with submissions (`TraceView::executions_of_send`):
    // a submission the agent answered at admission (duplicate_job, …) is
    // never paired, so a backend request made for it lands on the
    // submission the agent was running under the id — as a second
    // execution there — or, if there was none, on no submission at all.
    for (job, send) in view.sends() {
        let runs: Vec<&BackendCall> = view.executions_of_send(send).collect();
        let [first, second, ..] = runs.as_slice() else { continue };
        let rejected = job.sends.iter().find(|other| {
            other.rejected_at_admission() && other.at_us >= first.start_us && other.at_us <= second.start_us
        });
        let detail = match rejected {
            Some(other) => format!(
                "{} executed {} times; the second request came after {} was answered {} — a rejected submission reached a backend",
                send.label(),
                runs.len(),
                other.label(),
                other.first_terminal().and_then(|t| t.what.error_code()).unwrap_or("?"),
            ),
            None => format!("{} executed {} times", send.label(), runs.len()),
        };
        found.push(Violation::new(
            NEVER_RUN_TWICE.name,
            Some(&job.job),
            second.start_us,
            detail,
        ));
    }
    for call in view
        .unpaired_executions
        .iter()
        .filter_map(|&i| view.backend_calls.get(i))
    {
        let job = call.job.as_deref();
        let detail = match job.and_then(|j| view.jobs.get(j)).filter(|j| !j.sends.is_empty()) {
            None => format!("backend {} executed a job the coordinator never sent", call.backend),
            Some(_) => format!(
                "backend {} executed the job, but no submission of it that may run was written before (every one was answered at admission, or none was sent yet)",
                call.backend
            ),
        };
        found.push(Violation::new(NEVER_RUN_TWICE.name, job, call.start_us, detail));
    }
    found
}
