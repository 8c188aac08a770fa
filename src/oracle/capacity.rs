//! Capacity: `out_of_capacity` only when every slot is taken, and never more
//! backend streams open at once than `max_concurrent`.

use super::windows::AGENT_HOST;
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{BackendCall, EventKind, FaultAction, TraceView};

/// `out_of_capacity` tells the truth.
pub const OUT_OF_CAPACITY_TRUTHFUL: Rule = Rule {
    name: "out_of_capacity_truthful",
    summary: "no out_of_capacity while fewer than max_concurrent jobs were executing, and the agent's slot count adds up",
    check: out_of_capacity_truthful,
};

/// `out_of_capacity_truthful` judged from outside alone: each
/// `out_of_capacity` answer against the submissions the coordinator had in
/// flight when it wrote the job (see `rejections_seen_from_outside`). Live
/// mode runs it, under the same name, in place of the whole rule, whose
/// other halves count the agent's own admission events (an external agent
/// has none, so they would call every `out_of_capacity` frame unfounded).
pub const OUT_OF_CAPACITY_TRUTHFUL_EXTERNAL: Rule = Rule {
    name: OUT_OF_CAPACITY_TRUTHFUL.name,
    summary: "no out_of_capacity unless the coordinator had max_concurrent other jobs in flight on the session when it wrote the job (judged from the coordinator's log alone)",
    check: rejections_seen_from_outside,
};

/// Backend streams stay within `max_concurrent`.
pub const STREAMS_WITHIN_LIMIT: Rule = Rule {
    name: "backend_streams_within_limit",
    summary: "concurrent backend streams never exceed max_concurrent",
    check: streams_within_limit,
};

/// Times the agent's software was crashed (its slots all vanish then).
fn agent_crashes(view: &TraceView) -> Vec<u64> {
    view.faults
        .iter()
        .filter(|(_, action, hosts)| *action == FaultAction::Crash && hosts.iter().any(|h| h == AGENT_HOST))
        .map(|(at, _, _)| *at)
        .collect()
}

fn out_of_capacity_truthful(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let rule = OUT_OF_CAPACITY_TRUTHFUL.name;
    let crashes = agent_crashes(view);
    let mut found = Vec::new();
    let (mut taken, mut last_us) = (0_u64, 0_u64);
    for event in &view.agent_events {
        if crashes.iter().any(|&c| c > last_us && c <= event.at_us) {
            taken = 0;
        }
        last_us = event.at_us;
        let (job, reported) = match &event.kind {
            EventKind::AgentJobAdmitted { job, in_flight, .. } => {
                taken += 1;
                (job, *in_flight)
            }
            EventKind::AgentSlotFreed { job, in_flight, .. } => {
                taken = taken.saturating_sub(1);
                (job, *in_flight)
            }
            EventKind::AgentJobRejected {
                job, code, in_flight, ..
            } => {
                if code == "out_of_capacity" {
                    tally.judge();
                }
                if code == "out_of_capacity" && taken < config.max_concurrent {
                    let detail = format!(
                        "rejected out_of_capacity while only {taken} of {} slots were taken",
                        config.max_concurrent
                    );
                    found.push(Violation::new(rule, Some(job), event.at_us, detail));
                }
                (job, *in_flight)
            }
            _ => continue,
        };
        if reported != taken {
            let detail = format!("agent reports in_flight {reported}, but admissions minus releases is {taken}");
            found.push(Violation::new(rule, Some(job), event.at_us, detail));
        }
    }
    found.extend(unexplained_rejections(view));
    found.extend(rejections_seen_from_outside(view, config, tally));
    found
}

/// From the coordinator's log alone: an `out_of_capacity` answer to a
/// submission needs `max_concurrent` others on its connection that may
/// have held a slot when the agent read it — written before it, run (not
/// answered at admission), and neither answered, cancelled nor superseded
/// before it was written (frames of one connection arrive in order, so the
/// agent had read those before reading it).
fn rejections_seen_from_outside(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let mut found = Vec::new();
    for (job, send) in view.sends() {
        let Some(first) = send.first_terminal() else { continue };
        if first.what.error_code() != Some("out_of_capacity") {
            continue;
        }
        tally.judge();
        let holders = view
            .sends()
            .map(|(_, other)| other)
            .filter(|other| other.conn == send.conn && other.seq < send.seq && other.may_have_run())
            .filter(|other| {
                let answered = other.first_terminal().is_some_and(|t| t.seq < send.seq);
                let cancelled = other.cancel_us.is_some_and(|c| c < send.at_us);
                let superseded = other.superseded_us.is_some_and(|s| s < send.at_us);
                !answered && !cancelled && !superseded
            })
            .count() as u64;
        if holders < config.max_concurrent {
            let detail = format!(
                "{}: out_of_capacity, but at most {holders} of {} slots can have been held when it arrived",
                send.label(),
                config.max_concurrent
            );
            found.push(Violation::new(
                OUT_OF_CAPACITY_TRUTHFUL.name,
                Some(&job.job),
                first.at_us,
                detail,
            ));
        }
    }
    found
}

/// `out_of_capacity` frames the coordinator read without the agent having
/// decided so at admission (the decision must go through slot accounting):
/// per id, no more such frames than such decisions.
fn unexplained_rejections(view: &TraceView) -> Vec<Violation> {
    let mut found = Vec::new();
    for job in view.jobs.values() {
        let claimed: Vec<u64> = job
            .sends
            .iter()
            .flat_map(|send| &send.terminals)
            .chain(&job.stray_terminals)
            .filter(|t| t.what.error_code() == Some("out_of_capacity"))
            .map(|t| t.at_us)
            .collect();
        if claimed.is_empty() {
            continue;
        }
        let decided = view
            .agent_events
            .iter()
            .filter(|e| {
                matches!(&e.kind, EventKind::AgentJobRejected { job: j, code, .. } if *j == job.job && code == "out_of_capacity")
            })
            .count();
        if let Some(&at_us) = claimed.get(decided) {
            let detail = format!(
                "{} out_of_capacity frame(s) but {decided} out_of_capacity admission decision(s)",
                claimed.len()
            );
            found.push(Violation::new(
                OUT_OF_CAPACITY_TRUTHFUL.name,
                Some(&job.job),
                at_us,
                detail,
            ));
        }
    }
    found
}

/// When a stream stopped counting against the limit. A backend notices a
/// client that went away only at its next write, so when the agent released
/// the slot (or crashed) and the backend confirmed the close within the
/// cancel bound, the stream counts as closed at the release.
fn closed_at(call: &BackendCall, view: &TraceView, crashes: &[u64], config: &OracleConfig) -> u64 {
    let Some(end_us) = call.end_us else { return u64::MAX };
    let grace_us = config.bounds.cancel_close_ms * 1_000;
    let freed = view.agent_events.iter().filter_map(|e| match &e.kind {
        EventKind::AgentSlotFreed { job, .. } if call.job.as_deref() == Some(job.as_str()) => Some(e.at_us),
        _ => None,
    });
    let released = freed
        .chain(crashes.iter().copied())
        .filter(|&t| t >= call.start_us && t <= end_us)
        .min();
    match released {
        Some(release_us) if call.end.as_deref() == Some("client_gone") && end_us <= release_us + grace_us => release_us,
        _ => end_us,
    }
}

fn streams_within_limit(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let crashes = agent_crashes(view);
    tally.judge_n(view.backend_calls.iter().filter(|c| c.is_execution()).count() as u64);
    // (time, +1 start / -1 end, job); ends sort before starts at one instant.
    let mut edges: Vec<(u64, i8, Option<&str>)> = Vec::new();
    for call in view.backend_calls.iter().filter(|c| c.is_execution()) {
        edges.push((call.start_us, 1, call.job.as_deref()));
        edges.push((closed_at(call, view, &crashes, config), -1, call.job.as_deref()));
    }
    edges.sort_by_key(|&(at, delta, _)| (at, delta));
    let mut found = Vec::new();
    let mut open = 0_i64;
    for (at, delta, job) in edges {
        open += i64::from(delta);
        if delta > 0 && open > config.max_concurrent as i64 {
            let detail = format!(
                "{open} backend streams open at once, max_concurrent is {}",
                config.max_concurrent
            );
            found.push(Violation::new(STREAMS_WITHIN_LIMIT.name, job, at, detail));
        }
    }
    found
}
