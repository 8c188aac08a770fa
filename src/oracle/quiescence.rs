//! The end of a run: the world settles within `settle_ms_max`, the agent's
//! in-flight count is back to zero with every backend stream closed, and the
//! agent's queued outbound bytes stayed within their bound throughout.

use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{EventKind, Phase, TraceView};

/// In flight returns to zero.
pub const IN_FLIGHT_ZERO: Rule = Rule {
    name: "in_flight_zero_at_quiescence",
    summary: "once the world settles, the agent holds no slot and no backend stream is open",
    check: in_flight_zero,
};

/// The world settles.
pub const SETTLES: Rule = Rule {
    name: "settles_within_bound",
    summary: "every job settles and the agent is connected again before settle_ms_max runs out",
    check: settles,
};

/// Queued outbound bytes stay bounded.
pub const OUTBOUND_BOUNDED: Rule = Rule {
    name: "outbound_queue_bounded",
    summary: "bytes queued for the coordinator never exceed outbound_queue_bytes_max (+ outbound_slack_bytes)",
    check: outbound_bounded,
};

fn in_flight_zero(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let Some(settled_us) = view.phase_us(Phase::Settled) else {
        tally.excuse("the world never settled");
        return Vec::new();
    };
    // One item: the agent's slot count at quiescence; one per backend
    // execution: closed by then.
    tally.judge_n(1 + view.backend_calls.iter().filter(|c| c.is_execution()).count() as u64);
    let mut found = Vec::new();
    let last = view.agent_events.iter().rev().find_map(|e| match &e.kind {
        EventKind::AgentJobAdmitted { job, in_flight, .. }
        | EventKind::AgentSlotFreed { job, in_flight, .. }
        | EventKind::AgentJobRejected { job, in_flight, .. } => Some((e.at_us, job, *in_flight)),
        _ => None,
    });
    if let Some((at_us, job, in_flight)) = last
        && in_flight != 0
        && !agent_restarted_after(view, at_us)
    {
        let detail =
            format!("agent still holds {in_flight} slot(s) after the world settled (last change with this job)");
        found.push(Violation::new(
            IN_FLIGHT_ZERO.name,
            Some(job),
            view.end_us.max(settled_us),
            detail,
        ));
    }
    for call in view
        .backend_calls
        .iter()
        .filter(|c| c.is_execution() && c.end_us.is_none())
    {
        let detail = format!(
            "backend {} request {} still streaming after the world settled",
            call.backend, call.request
        );
        found.push(Violation::new(
            IN_FLIGHT_ZERO.name,
            call.job.as_deref(),
            view.end_us,
            detail,
        ));
    }
    found
}

/// A crash of the agent after `at_us` wipes its slots.
fn agent_restarted_after(view: &TraceView, at_us: u64) -> bool {
    view.faults.iter().any(|(t, action, hosts)| {
        *t >= at_us
            && *action == crate::trace::FaultAction::Crash
            && hosts.iter().any(|h| h == super::windows::AGENT_HOST)
    })
}

fn settles(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    tally.judge();
    let Some(hit_us) = view.phase_us(Phase::SettleBoundHit) else {
        return Vec::new();
    };
    // Per submission: a re-send still waits for its own answer.
    let unsettled: Vec<&str> = view
        .sends()
        .filter(|(_, send)| {
            send.kind != crate::trace::JobKind::Malformed
                && send.terminals.is_empty()
                && send.session_lost_us.is_none()
                && send.cancel_us.is_none()
        })
        .map(|(job, _)| &*job.job)
        .collect();
    let open_streams = view
        .backend_calls
        .iter()
        .filter(|c| c.is_execution() && c.end_us.is_none())
        .count();
    let connected = view
        .sessions
        .values()
        .any(|s| s.ready_us.is_some() && s.closed_us.is_none());
    let detail = format!(
        "settle_ms_max ran out: {} submission(s) unanswered{}, {open_streams} backend stream(s) open, agent {}",
        unsettled.len(),
        unsettled.first().map(|j| format!(" (first {j})")).unwrap_or_default(),
        if connected { "connected" } else { "not connected" }
    );
    vec![Violation::new(SETTLES.name, unsettled.first().copied(), hit_us, detail)]
}

fn outbound_bounded(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let limit = config.outbound_queue_bytes_max + config.bounds.outbound_slack_bytes;
    let reports = view
        .agent_events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::AgentOutboundQueued { .. }))
        .count();
    tally.judge_n(reports as u64);
    let worst = view
        .agent_events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::AgentOutboundQueued { bytes, .. } => Some((bytes, e.at_us)),
            _ => None,
        })
        .max_by_key(|&(bytes, at)| (bytes, std::cmp::Reverse(at)));
    match worst {
        Some((bytes, at_us)) if bytes > limit => {
            let detail = format!(
                "{bytes} outbound bytes queued, bound is {} + {}",
                config.outbound_queue_bytes_max, config.bounds.outbound_slack_bytes
            );
            vec![Violation::new(OUTBOUND_BOUNDED.name, None, at_us, detail)]
        }
        _ => Vec::new(),
    }
}
