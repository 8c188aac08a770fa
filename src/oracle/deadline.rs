//! Deadlines: a job whose `deadline_ms` elapses ends within the deadline plus
//! a bound, with `backend_timeout`, and its backend stream closes; and no job
//! is called timed out before its deadline.

use super::windows::{all_disruptions, link_disruptions};
use super::{OracleConfig, Rule, Violation};
use crate::trace::{JobKind, JobView, Terminal, TraceView};

/// Deadlines end jobs, truthfully.
pub const ENFORCED: Rule = Rule {
    name: "deadline_enforced",
    summary: "a job ends within deadline_ms + deadline_slack_ms, with backend_timeout when the deadline cut it, never before",
    check: enforced,
};

/// The error code a deadline must produce.
const TIMEOUT_CODE: &str = "backend_timeout";

fn enforced(view: &TraceView, config: &OracleConfig) -> Vec<Violation> {
    let slack_us = config.bounds.deadline_slack_ms * 1_000;
    let links = link_disruptions(view);
    let all = all_disruptions(view);
    let mut found = Vec::new();
    for job in view.jobs.values() {
        if job.sends.len() != 1 || job.sends[0].kind != JobKind::Normal {
            continue;
        }
        let sent_us = job.sends[0].at_us;
        let deadline_us = sent_us + job.sends[0].deadline_ms * 1_000;
        let limit_us = deadline_us + slack_us;
        if let Some(early) = job
            .own_terminals()
            .find(|t| t.what.error_code() == Some(TIMEOUT_CODE) && t.at_us < deadline_us)
        {
            let detail = format!(
                "backend_timeout {:.1} ms before the deadline elapsed",
                (deadline_us - early.at_us) as f64 / 1e3
            );
            found.push(Violation::new(ENFORCED.name, Some(&job.job), early.at_us, detail));
        }
        if excused(view, job, limit_us) || links.overlaps(sent_us, limit_us) {
            continue;
        }
        let stretched_us = limit_us + all.covered_us(sent_us, limit_us);
        check_terminal(view, job, deadline_us, stretched_us, &mut found);
        check_stream(view, job, limit_us, &mut found);
    }
    found
}

/// Cancelled, lost with its session, or on a session that closed before the
/// bound: the deadline is no longer the agent's to enforce.
fn excused(view: &TraceView, job: &JobView, limit_us: u64) -> bool {
    let cancelled = job.cancel_us.is_some_and(|c| c <= limit_us) && job.cancelled_before_terminal();
    let lost = job.session_lost_us.is_some_and(|l| l <= limit_us);
    let conn = job.sends[0].conn;
    let closed = view
        .sessions
        .get(&conn)
        .and_then(|s| s.closed_us)
        .is_some_and(|c| c <= limit_us);
    cancelled || lost || closed
}

fn check_terminal(view: &TraceView, job: &JobView, deadline_us: u64, limit_us: u64, found: &mut Vec<Violation>) {
    let Some(terminal) = job.own_terminals().next() else {
        found.push(Violation::new(
            ENFORCED.name,
            Some(&job.job),
            limit_us,
            "no terminal frame by deadline + slack",
        ));
        return;
    };
    if terminal.at_us > limit_us {
        let late_ms = (terminal.at_us - deadline_us) as f64 / 1e3;
        let detail = format!("terminal frame arrived {late_ms:.1} ms after the deadline");
        found.push(Violation::new(ENFORCED.name, Some(&job.job), terminal.at_us, detail));
        return;
    }
    if terminal.what.error_code() == Some(TIMEOUT_CODE) {
        return;
    }
    // The agent's deadline falls between the job's sending and its backend
    // request's arrival, plus `deadline_ms`. A backend stream still open
    // after the latest possible agent deadline proves the deadline cut the
    // job, so the terminal frame must say so. (A job rejected before any
    // backend request, or served in time, may end with any code.)
    let deadline_ms = job.sends[0].deadline_ms;
    let cut = view
        .executions_of(&job.job)
        .any(|c| c.end_us.is_none_or(|end| end > c.start_us + deadline_ms * 1_000));
    if cut {
        let what = match &terminal.what {
            Terminal::Done { .. } => "job_done",
            Terminal::Error { code, .. } => code,
        };
        let detail = format!(
            "the backend was still streaming when the deadline passed, yet the job ended with {what}, not {TIMEOUT_CODE}"
        );
        found.push(Violation::new(ENFORCED.name, Some(&job.job), terminal.at_us, detail));
    }
}

fn check_stream(view: &TraceView, job: &JobView, limit_us: u64, found: &mut Vec<Violation>) {
    for call in view.executions_of(&job.job) {
        if call.end_us.is_none_or(|end| end > limit_us) {
            let detail = "backend stream still open at deadline + slack";
            found.push(Violation::new(ENFORCED.name, Some(&job.job), limit_us, detail));
        }
    }
}
