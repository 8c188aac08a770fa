//! Deadlines: a job whose `deadline_ms` elapses ends within the deadline plus
//! a bound, with `backend_timeout`, and its backend stream closes; and no job
//! is called timed out before its deadline.

use super::windows::{all_disruptions, link_disruptions};
use super::{OracleConfig, Rule, Violation};
use crate::trace::{JobKind, JobSend, Terminal, TraceView};

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
    // Per submission: each one the agent admits runs against its own
    // deadline, measured from its own arrival (a re-run's from the re-send).
    for (job, send) in view.sends() {
        if !matches!(send.kind, JobKind::Normal | JobKind::Duplicate) {
            continue;
        }
        let sent_us = send.at_us;
        let deadline_us = sent_us + send.deadline_ms * 1_000;
        let limit_us = deadline_us + slack_us;
        if let Some(early) = send
            .terminals
            .iter()
            .find(|t| t.what.error_code() == Some(TIMEOUT_CODE) && t.at_us < deadline_us)
        {
            let detail = format!(
                "{}: backend_timeout {:.1} ms before the deadline elapsed",
                send.label(),
                (deadline_us - early.at_us) as f64 / 1e3
            );
            found.push(Violation::new(ENFORCED.name, Some(&job.job), early.at_us, detail));
        }
        if excused(view, send, limit_us) || links.overlaps(sent_us, limit_us) {
            continue;
        }
        // Time in which frames could not arrive (the coordinator not reading,
        // a link or host down) is credited up to the terminal frame's arrival,
        // not just up to the limit: a terminal frame queued in time but read
        // after a long pause is not late (as in `cancel`).
        let until_us = send.first_terminal().map_or(limit_us, |t| t.at_us.max(limit_us));
        let stretched_us = limit_us + all.covered_us(sent_us, until_us);
        check_terminal(view, &job.job, send, deadline_us, stretched_us, &mut found);
        check_stream(view, &job.job, send, limit_us, &mut found);
    }
    found
}

/// Cancelled, lost with its session, or on a session that closed before the
/// bound: the deadline is no longer the agent's to enforce.
fn excused(view: &TraceView, send: &JobSend, limit_us: u64) -> bool {
    let cancelled = send.cancel_us.is_some_and(|c| c <= limit_us) && send.cancelled_before_terminal();
    let lost = send.session_lost_us.is_some_and(|l| l <= limit_us);
    let closed = view
        .sessions
        .get(&send.conn)
        .and_then(|s| s.closed_us)
        .is_some_and(|c| c <= limit_us);
    cancelled || lost || closed
}

fn check_terminal(
    view: &TraceView,
    job: &str,
    send: &JobSend,
    deadline_us: u64,
    limit_us: u64,
    found: &mut Vec<Violation>,
) {
    let label = send.label();
    let Some(terminal) = send.first_terminal() else {
        let detail = format!(
            "{label}: no terminal frame within {:.1} ms past the deadline (slack, plus time the coordinator could not read): none came at all",
            limit_us.saturating_sub(deadline_us) as f64 / 1e3
        );
        found.push(Violation::new(ENFORCED.name, Some(job), limit_us, detail));
        return;
    };
    if terminal.at_us > limit_us {
        let late_ms = (terminal.at_us - deadline_us) as f64 / 1e3;
        let detail = format!(
            "{label}: terminal frame arrived {late_ms:.1} ms after the deadline, allowed {:.1} ms",
            limit_us.saturating_sub(deadline_us) as f64 / 1e3
        );
        found.push(Violation::new(ENFORCED.name, Some(job), terminal.at_us, detail));
        return;
    }
    if terminal.what.error_code() == Some(TIMEOUT_CODE) {
        return;
    }
    // The agent's deadline falls between the submission's sending and its
    // backend request's arrival, plus `deadline_ms`. A backend stream still
    // open after the latest possible agent deadline proves the deadline cut
    // the job, so the terminal frame must say so. (A submission rejected
    // before any backend request, or served in time, may end with any code.)
    let deadline_ms = send.deadline_ms;
    let cut = view
        .executions_of_send(send)
        .any(|c| c.end_us.is_none_or(|end| end > c.start_us + deadline_ms * 1_000));
    if cut {
        let what = match &terminal.what {
            Terminal::Done { .. } => "job_done",
            Terminal::Error { code, .. } => code,
        };
        let detail = format!(
            "{label}: the backend was still streaming when the deadline passed, yet it ended with {what}, not {TIMEOUT_CODE}"
        );
        found.push(Violation::new(ENFORCED.name, Some(job), terminal.at_us, detail));
    }
}

fn check_stream(view: &TraceView, job: &str, send: &JobSend, limit_us: u64, found: &mut Vec<Violation>) {
    for call in view.executions_of_send(send) {
        if call.end_us.is_none_or(|end| end > limit_us) {
            let closed = call.end_us.map_or_else(
                || "it never closed".to_owned(),
                |end| format!("it closed {:.1} ms later", end.saturating_sub(limit_us) as f64 / 1e3),
            );
            let detail = format!(
                "{}: backend stream still open at deadline + slack: {closed}",
                send.label()
            );
            found.push(Violation::new(ENFORCED.name, Some(job), limit_us, detail));
        }
    }
}
