//! Deadlines: a job whose `deadline_ms` elapses ends within the deadline plus
//! a bound, with `backend_timeout`, and its backend stream closes; and no job
//! is called timed out before its deadline.
//!
//! `deadline_slack_ms` is two one-way trips at the scenario's worst latency
//! plus the scheduling steps of the agent's timer (`expect.rs`): the job
//! frame's trip starts the agent's clock, the terminal frame's (or the
//! close's) trip ends the judged span.
//!
//! Each half is excused only by a disruption of the links it depends on:
//! the terminal frame by a partition, hold or crash between the agent and
//! the coordinator (with no terminal frame read; one that did arrive is
//! judged, the bound stretched by the disrupted time), the backend stream
//! by one between the agent and that stream's backend, or by a crash of the
//! agent. Both are excused when the job was cancelled or lost its session
//! first.

use super::windows::{AGENT_HOST, all_disruptions, backend_disruptions, link_disruptions};
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{BackendCall, FaultAction, JobKind, JobSend, Terminal, TraceView};

/// Deadlines end jobs, truthfully.
pub const ENFORCED: Rule = Rule {
    name: "deadline_enforced",
    summary: "a job ends within deadline_ms + deadline_slack_ms, with backend_timeout when the deadline cut it, never before",
    check: enforced,
};

/// The error code a deadline must produce.
const TIMEOUT_CODE: &str = "backend_timeout";

fn enforced(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let slack_us = config.bounds.deadline_slack_ms * 1_000;
    let links = link_disruptions(view);
    let all = all_disruptions(view);
    let backends = backend_disruptions(view);
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
            found.push(Violation::new(ENFORCED.name, Some(&*job.job), early.at_us, detail));
        }
        if let Some(why) = excused(view, send, limit_us) {
            tally.excuse(why);
            continue;
        }
        tally.judge();
        // Time in which frames could not arrive (the coordinator not reading,
        // a link or host down) is credited up to the terminal frame's arrival,
        // not just up to the limit: a terminal frame queued in time but read
        // after a long pause is not late (as in `cancel`).
        let until_us = send.first_terminal().map_or(limit_us, |t| t.at_us.max(limit_us));
        let stretched_us = limit_us + all.covered_us(sent_us, until_us);
        let terminal_cut = send.terminals.is_empty() && links.overlaps(sent_us, stretched_us);
        if terminal_cut {
            tally.excuse("terminal: coordinator link cut");
        } else {
            check_terminal(view, &job.job, send, deadline_us, stretched_us, &mut found);
        }
        // The job frame's own delivery may have been held back by a hold of
        // the coordinator link: the agent's deadline starts later by that.
        let stream_limit_us = limit_us + links.covered_us(sent_us, limit_us);
        for call in view.executions_of_send(send) {
            let cut = |&(a, b, ref what): &(u64, u64, String)| {
                a <= stream_limit_us && b >= call.start_us && names_host(what, &call.backend)
            };
            if backends.iter().any(cut) || agent_crashed(view, call.start_us, stream_limit_us) {
                tally.excuse("stream: its backend cut off or the agent crashed");
                continue;
            }
            check_stream(&job.job, send, call, stream_limit_us, &mut found);
        }
    }
    found
}

/// Whether a fault description (`partition agent/vllm-1`) names `host`.
fn names_host(what: &str, host: &str) -> bool {
    what.split([' ', '/']).any(|h| h == host)
}

/// Whether the agent's host was crashed within `[from_us, to_us]` (a
/// stream cannot start while it is down).
fn agent_crashed(view: &TraceView, from_us: u64, to_us: u64) -> bool {
    view.faults.iter().any(|(at, action, hosts)| {
        *action == FaultAction::Crash && (from_us..=to_us).contains(at) && hosts.iter().any(|h| h == AGENT_HOST)
    })
}

/// Cancelled, lost with its session, or on a session that closed before the
/// bound: the deadline is no longer the agent's to enforce.
fn excused(view: &TraceView, send: &JobSend, limit_us: u64) -> Option<&'static str> {
    let cancelled = send.cancel_us.is_some_and(|c| c <= limit_us) && send.cancelled_before_terminal();
    let lost = send.session_lost_us.is_some_and(|l| l <= limit_us);
    let closed = view
        .sessions
        .get(&send.conn)
        .and_then(|s| s.closed_us)
        .is_some_and(|c| c <= limit_us);
    if cancelled {
        Some("cancelled before the deadline")
    } else if lost || closed {
        Some("session ended before the deadline")
    } else {
        None
    }
}

fn check_terminal(
    view: &TraceView,
    job: &str,
    send: &JobSend,
    deadline_us: u64,
    limit_us: u64,
    found: &mut Vec<Violation>,
) {
    // The label is written only for a violation (most submissions have none).
    let label = || send.label();
    let Some(terminal) = send.first_terminal() else {
        let detail = format!(
            "{}: no terminal frame within {:.1} ms past the deadline (slack, plus time the coordinator could not read): none came at all",
            label(),
            limit_us.saturating_sub(deadline_us) as f64 / 1e3
        );
        found.push(Violation::new(ENFORCED.name, Some(job), limit_us, detail));
        return;
    };
    if terminal.at_us > limit_us {
        let late_ms = (terminal.at_us - deadline_us) as f64 / 1e3;
        let detail = format!(
            "{}: terminal frame arrived {late_ms:.1} ms after the deadline, allowed {:.1} ms",
            label(),
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
            "{}: the backend was still streaming when the deadline passed, yet it ended with {what}, not {TIMEOUT_CODE}",
            label()
        );
        found.push(Violation::new(ENFORCED.name, Some(job), terminal.at_us, detail));
    }
}

fn check_stream(job: &str, send: &JobSend, call: &BackendCall, limit_us: u64, found: &mut Vec<Violation>) {
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
