//! An unusable inbound frame never ends the session.
//!
//! protocol.md: a malformed frame is answered `invalid_job` when it names a
//! usable `job_id`, and otherwise logged and ignored; either way the session
//! goes on. Judged from outside: for every broken `job` frame the
//! coordinator wrote (`JobKind::Invalid` or `JobKind::Malformed`), its
//! connection must not be closed from the agent's side — the coordinator
//! reading the agent's Close or EOF, a reset, or a newer login superseding
//! it — within [`Bounds::inbound_decision_ms`](super::Bounds) plus a round
//! trip of the frame's writing: the time the agent has to decide on a frame,
//! and for the coordinator to see what it did.
//!
//! Excused: a frame whose session ended within that span while a disruption
//! could have ended it instead (a partition, hold or crash cutting the agent
//! off from the coordinator, or a coordinator read pause overlapping the
//! span), and a frame written within the span's length of the end of the
//! run (the agent is shut down then).

use super::windows::all_disruptions;
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{JobKind, TraceView};

/// Broken frames do not cost the session.
pub const KEEPS_SESSION: Rule = Rule {
    name: "unusable_frame_keeps_session",
    summary: "a malformed or invalid job frame never ends the session: its connection is not closed from the agent's side within inbound_decision_ms plus a round trip of the frame",
    check: keeps_session,
};

/// Close reasons (as the coordinator logs them) that mean the agent ended
/// the connection: it sent a Close or closed the socket, reset it, or
/// logged in on a newer connection.
const AGENT_SIDE_CLOSES: &[&str] = &["agent_closed", "read_failed", "superseded"];

fn keeps_session(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let span_us = (config.bounds.inbound_decision_ms + 2 * config.latency_max_ms) * 1_000;
    let disruptions = all_disruptions(view);
    let mut found = Vec::new();
    for (job, send) in view.sends() {
        if !matches!(send.kind, JobKind::Invalid | JobKind::Malformed) {
            continue;
        }
        let Some(session) = view.sessions.get(&send.conn) else {
            continue;
        };
        let due_us = send.at_us + span_us;
        let closed_in_span = session.closed_us.filter(|&c| c >= send.at_us && c <= due_us);
        let Some(closed_us) = closed_in_span else {
            if due_us > view.end_us && session.closed_us.is_none() {
                tally.excuse("the run ended before the bound");
            } else {
                tally.judge();
            }
            continue;
        };
        let reason = session.reason.as_deref().unwrap_or("unknown");
        if !AGENT_SIDE_CLOSES.iter().any(|r| reason.starts_with(r)) {
            tally.excuse("the coordinator ended the session");
            continue;
        }
        if disruptions.overlaps(send.at_us, closed_us) {
            tally.excuse("a disruption could have ended the session");
            continue;
        }
        tally.judge();
        let detail = format!(
            "{} was a {} job frame; the agent ended conn {} {:.1} ms after it was written ({reason}), with no disruption to explain it",
            send.label(),
            if send.kind == JobKind::Invalid {
                "invalid"
            } else {
                "malformed"
            },
            send.conn,
            (closed_us - send.at_us) as f64 / 1e3
        );
        found.push(Violation::new(KEEPS_SESSION.name, Some(&*job.job), closed_us, detail));
    }
    found
}
