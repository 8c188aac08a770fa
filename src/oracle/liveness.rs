//! Liveness: the agent connects at start, and after every partition, crash
//! or disconnect it reaches steady state on a new session within the
//! reconnect bound of the disruption healing, and serves jobs there.

use super::windows::{AGENT_HOST, COORDINATOR_HOST, link_disruptions};
use super::{OracleConfig, Rule, Violation};
use crate::trace::{FaultAction, TraceView};

/// The agent reconnects and serves again.
pub const RECONNECTS: Rule = Rule {
    name: "reconnects_after_disruption",
    summary: "after start and after every partition, crash or disconnect the agent is serving on a new session within reconnect_within_ms of the heal",
    check: reconnects,
};

fn reconnects(view: &TraceView, config: &OracleConfig) -> Vec<Violation> {
    let bound_us = config.bounds.reconnect_within_ms * 1_000;
    let windows = link_disruptions(view);
    let mut found = Vec::new();
    let mut disruptions: Vec<(u64, String)> = vec![(0, "the start of the run".to_owned())];
    disruptions.extend(
        view.sessions
            .values()
            .filter_map(|s| s.closed_us.map(|c| (c, format!("conn {} closing", s.conn)))),
    );
    disruptions.extend(
        view.faults
            .iter()
            .filter(|(_, action, hosts)| cuts_session(*action, hosts))
            .map(|(at, action, hosts)| (*at, format!("{} {}", action.name(), hosts.join("/")))),
    );
    for (at_us, what) in disruptions {
        let healed_us = windows.heal_after(at_us);
        let deadline_us = healed_us + bound_us;
        let ready = view
            .sessions
            .values()
            .filter_map(|s| s.ready_us)
            .any(|r| r >= at_us && r <= deadline_us);
        let judged = deadline_us <= view.end_us || view.phase_us(crate::trace::Phase::SettleBoundHit).is_some();
        if !ready && judged {
            let detail = format!(
                "no session reached steady state within {} ms after {what} healed",
                config.bounds.reconnect_within_ms
            );
            found.push(Violation::new(
                RECONNECTS.name,
                None,
                deadline_us.min(view.end_us),
                detail,
            ));
        }
    }
    found.extend(serves_again(view));
    found
}

fn cuts_session(action: FaultAction, hosts: &[String]) -> bool {
    let names = |n: &str| hosts.iter().any(|h| h == n);
    match action {
        FaultAction::Partition | FaultAction::Hold => names(AGENT_HOST) && names(COORDINATOR_HOST),
        FaultAction::Crash => names(AGENT_HOST) || names(COORDINATOR_HOST),
        _ => false,
    }
}

/// A session still open at the end that was sent jobs answered at least one.
fn serves_again(view: &TraceView) -> Vec<Violation> {
    let mut found = Vec::new();
    for session in view
        .sessions
        .values()
        .filter(|s| s.ready_us.is_some() && s.closed_us.is_none())
    {
        let on_conn = |conn: u64| conn == session.conn;
        let sent = view
            .jobs
            .values()
            .filter(|j| j.sends.iter().any(|s| on_conn(s.conn)))
            .count();
        let answered = view.jobs.values().any(|j| j.terminals.iter().any(|t| on_conn(t.conn)));
        if sent > 0 && !answered {
            let detail = format!("conn {} was sent {sent} job(s) and answered none", session.conn);
            found.push(Violation::new(RECONNECTS.name, None, view.end_us, detail));
        }
    }
    found
}
