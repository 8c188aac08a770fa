//! Reading while writing is blocked: while the coordinator is not reading
//! (so the agent's outbound side backs up), the agent still reads and acts on
//! the frames the coordinator sends. Outside observation cannot see an
//! admission decision whose reply is stuck behind the blocked socket, so this
//! rule reads the agent's admission events.

use super::windows::link_disruptions;
use super::{OracleConfig, Rule, Violation};
use crate::trace::{JobKind, TraceView};

/// Inbound frames are processed while outbound is blocked.
pub const WHILE_OUTBOUND_BLOCKED: Rule = Rule {
    name: "inbound_while_outbound_blocked",
    summary: "a job sent while the coordinator is not reading is still admitted or rejected within inbound_decision_ms",
    check: while_outbound_blocked,
};

fn while_outbound_blocked(view: &TraceView, config: &OracleConfig) -> Vec<Violation> {
    let bound_us = config.bounds.inbound_decision_ms * 1_000;
    let links = link_disruptions(view);
    let mut found = Vec::new();
    for job in view.jobs.values() {
        let [send] = job.sends.as_slice() else { continue };
        if send.kind != JobKind::Normal {
            continue;
        }
        let due_us = send.at_us + bound_us;
        let paused = view
            .read_pauses
            .iter()
            .any(|&(from, until)| send.at_us >= from && send.at_us < until);
        let alive = view
            .sessions
            .get(&send.conn)
            .is_none_or(|s| s.closed_us.is_none_or(|c| c > due_us));
        if !paused || !alive || due_us > view.end_us || links.overlaps(send.at_us, due_us) {
            continue;
        }
        if job.agent_decided_us.is_none_or(|decided| decided > due_us) {
            let detail = format!(
                "sent while the coordinator was not reading; no admission decision within {} ms",
                config.bounds.inbound_decision_ms
            );
            found.push(Violation::new(
                WHILE_OUTBOUND_BLOCKED.name,
                Some(&job.job),
                due_us,
                detail,
            ));
        }
    }
    found
}
