//! Heartbeats: one every `heartbeat_interval_ms` on every steady-state
//! session, and a `queue_depth` that matches what the coordinator can see of
//! the jobs executing at that moment.

use super::windows::{Windows, all_disruptions, link_disruptions};
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{JobKind, JobSend, Seen, SessionView, TraceView};

/// Heartbeats arrive on schedule.
pub const SCHEDULE: Rule = Rule {
    name: "heartbeat_schedule",
    summary: "heartbeats arrive every heartbeat_interval_ms (± heartbeat_tolerance_ms, stretched by read pauses)",
    check: schedule,
};

/// `queue_depth` is truthful.
pub const QUEUE_DEPTH: Rule = Rule {
    name: "heartbeat_queue_depth",
    summary: "heartbeat queue_depth lies between the jobs surely executing and the jobs possibly executing",
    check: queue_depth,
};

fn schedule(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let links = link_disruptions(view);
    let all = all_disruptions(view);
    let mut found = Vec::new();
    for session in view.sessions.values() {
        let Some(ready_us) = session.ready_us else {
            tally.excuse("session never reached steady state");
            continue;
        };
        tally.judge();
        check_session(view, session, ready_us, (&links, &all), config, &mut found);
    }
    found
}

fn check_session(
    view: &TraceView,
    session: &SessionView,
    ready_us: u64,
    (links, all): (&Windows, &Windows),
    config: &OracleConfig,
    found: &mut Vec<Violation>,
) {
    let interval_us = config.heartbeat_interval_ms * 1_000;
    let tolerance_us = config.bounds.heartbeat_tolerance_ms * 1_000;
    // After a cut link a connection stays wedged until it is closed: only
    // the time before the first cut is judged.
    let end_us = session.closed_us.unwrap_or(view.end_us);
    let judged_until = links
        .0
        .iter()
        .map(|&(from, _)| from)
        .filter(|&f| f >= ready_us && f <= end_us)
        .min()
        .unwrap_or(end_us);
    let rule = SCHEDULE.name;
    let mut previous_us = ready_us;
    for (index, beat) in session.heartbeats.iter().enumerate() {
        if beat.at_us > judged_until {
            return;
        }
        let gap_us = beat.at_us - previous_us;
        if gap_us > interval_us + tolerance_us + all.covered_us(previous_us, beat.at_us) {
            found.push(Violation::new(
                rule,
                None,
                beat.at_us,
                format!(
                    "no heartbeat for {:.1} ms on conn {} (allowed {:.1} ms: interval + tolerance)",
                    gap_us as f64 / 1e3,
                    session.conn,
                    (interval_us + tolerance_us) as f64 / 1e3
                ),
            ));
        }
        let quiet = !all.overlaps(previous_us.saturating_sub(interval_us), beat.at_us);
        if index > 0 && quiet && gap_us + tolerance_us < interval_us {
            found.push(Violation::new(
                rule,
                None,
                beat.at_us,
                format!(
                    "heartbeat only {:.1} ms after the previous one on conn {} (at least {:.1} ms: interval - tolerance)",
                    gap_us as f64 / 1e3,
                    session.conn,
                    interval_us.saturating_sub(tolerance_us) as f64 / 1e3
                ),
            ));
        }
        previous_us = beat.at_us;
    }
    let open_to_the_end = session.closed_us.is_none() && judged_until == end_us;
    if open_to_the_end && end_us - previous_us > interval_us + tolerance_us + all.covered_us(previous_us, end_us) {
        let detail = format!(
            "no heartbeat for the last {:.1} ms of conn {} (allowed {:.1} ms: interval + tolerance)",
            (end_us - previous_us) as f64 / 1e3,
            session.conn,
            (interval_us + tolerance_us) as f64 / 1e3
        );
        found.push(Violation::new(rule, None, end_us, detail));
    }
}

fn queue_depth(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let mut found = Vec::new();
    for session in view.sessions.values() {
        tally.judge_n(session.heartbeats.len() as u64);
        let sends_on_conn: Vec<&JobSend> = view
            .sends()
            .map(|(_, send)| send)
            .filter(|send| send.conn == session.conn && send.kind != JobKind::Malformed)
            .collect();
        for beat in &session.heartbeats {
            let (mut surely, mut possibly) = (0_u64, 0_u64);
            for send in &sends_on_conn {
                surely += u64::from(surely_executing(send, beat));
                possibly += u64::from(possibly_executing(send, beat));
            }
            let possibly = possibly.min(config.max_concurrent);
            if beat.what < surely || beat.what > possibly {
                let detail = format!(
                    "queue_depth {} but between {surely} and {possibly} jobs were executing",
                    beat.what
                );
                found.push(Violation::new(QUEUE_DEPTH.name, None, beat.at_us, detail));
            }
        }
    }
    found
}

/// Written before the heartbeat, and neither answered nor superseded
/// before it was read. (A cancelled submission may still hold its slot
/// until the agent reads the cancel, so a cancel alone does not rule it out.)
fn possibly_executing(send: &JobSend, beat: &Seen<u64>) -> bool {
    let answered = send.terminals.iter().any(|t| t.seq < beat.seq);
    let superseded = send.superseded_us.is_some_and(|s| s < beat.at_us);
    send.seq < beat.seq && !answered && !superseded
}

/// A chunk of the submission came before the heartbeat and its terminal
/// after it (frames of one connection arrive in the order they were
/// written), and no cancel could have released the slot in between.
fn surely_executing(send: &JobSend, beat: &Seen<u64>) -> bool {
    let chunk_before = send.chunks.iter().any(|c| c.seq < beat.seq);
    let terminal_after = send.terminals.first().is_some_and(|t| t.seq > beat.seq);
    let cancelled = send.cancel_us.is_some_and(|c| c <= beat.at_us);
    chunk_before && terminal_after && !cancelled
}
