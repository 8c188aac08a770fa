//! When a session ends, its jobs end with it: the agent cancels every job in
//! flight and closes their backend streams; and no submission is ever run
//! twice, nor one the agent rejected at admission run at all.
//!
//! `session_end_closes_streams` judges twice, from two sides:
//! - from outside: every submission the coordinator saw lose its session
//!   (`JobSessionLost`) has its backend streams closed within
//!   `cancel_close_ms` of the latest moment the agent can have noticed the
//!   end — the close plus one trip, or, for a connection that ended during
//!   a partition, hold or crash of the coordinator, the disruption's start
//!   plus the agent's `idle_timeout_ms` (a wedged connection is only
//!   noticed through silence);
//! - from the agent's `SessionEnded` event, where the observer reports
//!   one: every job it admitted on that session.
//!
//! Only a disruption of the job's own backend (a partition or hold of its
//! agent–backend link, a crash of the backend host) excuses a stream: it
//! hides the close from that backend. A crash of the agent excuses every
//! stream (a crashed host closes nothing). A disruption of the
//! agent–coordinator link excuses nothing: it is the usual way a session
//! dies.

use std::collections::BTreeSet;

use super::windows::{AGENT_HOST, Windows, backend_disruptions, link_disruptions};
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{BackendCall, EventKind, FaultAction, JobSend, TraceView};

/// A session's end closes the backend streams of its jobs.
pub const CLOSES_STREAMS: Rule = Rule {
    name: "session_end_closes_streams",
    summary: "when a session ends, the backend streams of its jobs close within cancel_close_ms of the agent noticing (the close plus a trip, or a cut-off link's start plus idle_timeout_ms)",
    check: closes_streams,
};

/// Each admitted submission reaches a backend at most once; a rejected one never.
pub const NEVER_RUN_TWICE: Rule = Rule {
    name: "never_run_twice",
    summary: "each job submission the agent admitted is executed by a backend at most once, and one it rejected at admission never",
    check: never_run_twice,
};

/// What excuses a stream from closing: its backend cut off, or the agent crashed.
struct Excuses {
    /// Per backend host, when it was cut off from the agent.
    backends: Vec<(u64, u64, String)>,
    /// When the agent's host was crashed.
    agent_crashes: Windows,
}

impl Excuses {
    fn of(view: &TraceView) -> Self {
        let mut crashes = Vec::new();
        for (index, (at, action, hosts)) in view.faults.iter().enumerate() {
            if *action == FaultAction::Crash && hosts.iter().any(|h| h == AGENT_HOST) {
                let restart = view.faults[index + 1..]
                    .iter()
                    .find(|(_, a, h)| *a == FaultAction::Restart && h.iter().any(|h| h == AGENT_HOST))
                    .map_or(view.end_us, |(t, _, _)| *t);
                crashes.push((*at, restart));
            }
        }
        Self {
            backends: backend_disruptions(view),
            agent_crashes: Windows(crashes),
        }
    }

    /// Why the close of `call` between `from_us` and `to_us` is not judged.
    fn of_call(&self, call: &BackendCall, from_us: u64, to_us: u64) -> Option<&'static str> {
        let backend_cut = self
            .backends
            .iter()
            .any(|(a, b, what)| *a <= to_us && *b >= from_us && what.split([' ', '/']).any(|h| h == &*call.backend));
        if self.agent_crashes.overlaps(call.start_us, to_us) {
            Some("the agent crashed")
        } else if backend_cut {
            Some("its backend was cut off")
        } else {
            None
        }
    }
}

fn closes_streams(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let bound_us = config.bounds.cancel_close_ms * 1_000;
    let excuses = Excuses::of(view);
    let mut found = Vec::new();
    for (job, send) in view.sends() {
        if !send.lost_before_terminal() || send.cancelled_before_terminal() {
            continue;
        }
        let Some(noticed_us) = noticed_by(view, config, send) else {
            continue;
        };
        for call in view.executions_of_send(send).filter(|c| c.start_us <= noticed_us) {
            if let Some(why) = excuses.of_call(call, call.start_us, noticed_us + bound_us) {
                tally.excuse(why);
                continue;
            }
            tally.judge();
            check_closed(
                call,
                &job.job,
                noticed_us,
                bound_us,
                "the coordinator saw its session end",
                &mut found,
            );
        }
    }
    found.extend(by_agent_events(view, bound_us, &excuses, tally));
    found
}

/// The latest moment the agent can have noticed that `send`'s connection
/// ended: its close plus one trip, or, when it ended during a disruption
/// of the agent–coordinator link, that disruption's start plus the idle
/// timeout and one trip (whichever is later).
fn noticed_by(view: &TraceView, config: &OracleConfig, send: &JobSend) -> Option<u64> {
    let closed_us = view.sessions.get(&send.conn)?.closed_us.or(send.session_lost_us)?;
    let trip_us = config.latency_max_ms * 1_000;
    let idle_us = config.idle_timeout_ms * 1_000;
    // A disruption that began before the close and ended less than an idle
    // timeout before it may have left the agent waiting out its silence.
    let cut_start = link_disruptions(view)
        .0
        .iter()
        .filter(|&&(a, b)| a <= closed_us && b + idle_us >= closed_us)
        .map(|&(a, _)| a)
        .min();
    let silence_us = cut_start.map_or(0, |a| a + idle_us + trip_us);
    Some((closed_us + trip_us).max(silence_us))
}

/// The agent's own account: every job it admitted on a session it ended.
fn by_agent_events(view: &TraceView, bound_us: u64, excuses: &Excuses, tally: &mut Tally) -> Vec<Violation> {
    let mut admitted: BTreeSet<&str> = BTreeSet::new();
    let mut found = Vec::new();
    for event in &view.agent_events {
        match &event.kind {
            EventKind::AgentSessionStarted { .. } => admitted.clear(),
            EventKind::AgentJobAdmitted { job, .. } => {
                admitted.insert(&**job);
            }
            EventKind::AgentSessionEnded { .. } => {
                let ended_us = event.at_us;
                for job in &admitted {
                    for call in view.executions_of(job).filter(|call| call.start_us <= ended_us) {
                        if call.end_us.is_some_and(|end| end <= ended_us) {
                            continue;
                        }
                        if let Some(why) = excuses.of_call(call, call.start_us, ended_us + bound_us) {
                            tally.excuse(why);
                            continue;
                        }
                        tally.judge();
                        check_closed(call, job, ended_us, bound_us, "the agent ended its session", &mut found);
                    }
                }
                admitted.clear();
            }
            _ => {}
        }
    }
    found
}

fn check_closed(call: &BackendCall, job: &str, ended_us: u64, bound_us: u64, how: &str, found: &mut Vec<Violation>) {
    let end_us = call.end_us.unwrap_or(u64::MAX);
    if end_us > ended_us + bound_us {
        let detail = match call.end_us {
            Some(end) => format!(
                "backend stream on {} ran {:.1} ms past the moment {how}",
                call.backend,
                end.saturating_sub(ended_us) as f64 / 1e3
            ),
            None => format!("backend stream on {} never closed after {how}", call.backend),
        };
        found.push(Violation::new(
            CLOSES_STREAMS.name,
            Some(job),
            ended_us + bound_us,
            detail,
        ));
    }
}

fn never_run_twice(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let mut found = Vec::new();
    tally.judge_n(view.backend_calls.iter().filter(|c| c.is_execution()).count() as u64);
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
            Some(&*job.job),
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
