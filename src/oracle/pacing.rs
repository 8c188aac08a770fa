//! Reconnections are paced by the agent's backoff (protocol.md,
//! "Reconnect"): after every session the agent sleeps before it connects
//! again, `base × [0.8, 1.2)` where the base doubles from
//! `backoff_initial_ms` to `backoff_max_ms` with every sleep, and a session
//! that reached steady state resets it to the first step.
//!
//! Judged from the coordinator's log, per pair of connections it accepted
//! in a row (the agent holds one at a time, and any attempt the coordinator
//! never saw — a refused connect, a discovery that failed — only escalates
//! the backoff further):
//!
//! - **Not too early.** Where no disruption or read pause overlapped the
//!   earlier connection (nothing held its frames up), the agent was still
//!   on it when it sent the last frame the coordinator read there (a
//!   latency before the read), and when the coordinator closed it or read
//!   its close (a latency before that, too: had the agent ended it first,
//!   its Close or EOF would have been read first). The next connection is accepted no sooner than that plus the
//!   shortest sleep of the step due: step 0 after a connection that may have
//!   reached steady state, one more step after each that surely failed its
//!   handshake. An agent that reconnects at once, hammering a coordinator
//!   that has just closed on it, breaks this.
//! - **Not too late.** After a connection that reached steady state (the
//!   coordinator read its `capabilities`, so the backoff was reset) and that
//!   the coordinator ended by a scripted close or drop (the agent notices it
//!   a latency later), the next connection is accepted within that notice,
//!   the longest sleep of step 0, and one attempt ([`ReconnectSchedule::attempt_ms`]) —
//!   unless a disruption of the coordinator or of a backend (discovery waits
//!   for it) overlaps that span. An agent whose backoff never resets after a
//!   good session breaks this once it has escalated.
//!
//! A restart of the agent starts its backoff afresh: the pair across it is
//! excused. Nothing is judged when the scenario sets a flat
//! `reconnect_within_ms` (no schedule is known).

use super::backoff::ReconnectSchedule;
use super::windows::{AGENT_HOST, Windows, all_disruptions, backend_disruptions, link_disruptions};
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{FaultAction, SessionView, TraceView};

/// Connections follow the backoff.
pub const PACED: Rule = Rule {
    name: "reconnects_paced_by_backoff",
    summary: "the next connection comes no sooner than the shortest backoff sleep due after the agent was last seen on the previous one, and, after a session that reached steady state and that the coordinator closed or dropped, no later than a latency, the longest first-step sleep and one attempt",
    check: paced,
};

/// Close reasons of handshakes that surely failed before steady state: the
/// agent escalates its backoff after them.
const HANDSHAKE_FAILURES: &[&str] = &[
    "upgrade_failed",
    "auth_failed",
    "handshake_timeout",
    "scripted_reject",
    "scripted_no_challenge",
];

fn paced(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let Some(schedule) = config.reconnect else {
        return Vec::new();
    };
    let latency_us = config.latency_max_ms * 1_000;
    let all = all_disruptions(view);
    let mut cut = link_disruptions(view);
    cut.0
        .extend(backend_disruptions(view).into_iter().map(|(a, b, _)| (a, b)));
    let restarts: Vec<u64> = view
        .faults
        .iter()
        .filter(|(_, action, hosts)| {
            matches!(action, FaultAction::Crash | FaultAction::Restart) && hosts.iter().any(|h| h == AGENT_HOST)
        })
        .map(|(at, _, _)| *at)
        .collect();
    let mut sessions: Vec<&SessionView> = view.sessions.values().collect();
    sessions.sort_by_key(|s| (s.opened_us, s.conn));
    let mut found = Vec::new();
    let mut step = 0_u32;
    for pair in sessions.windows(2) {
        let (earlier, next) = (pair[0], pair[1]);
        if restarts.iter().any(|&r| r >= earlier.opened_us && r <= next.opened_us) {
            tally.excuse("the agent restarted in between");
            step = 0;
            continue;
        }
        if !surely_failed(earlier) {
            step = 0;
        }
        // A frame read late (a read pause, a hold) may have been written
        // long before: the agent's last sighting is known only when
        // nothing held its frames up.
        let span_end_us = earlier.closed_us.unwrap_or(view.end_us).max(next.opened_us);
        if all.overlaps(earlier.opened_us, span_end_us) {
            tally.excuse("a disruption or read pause held frames up");
            step = step.saturating_add(1);
            continue;
        }
        tally.judge();
        let seen_us = last_seen_us(view, earlier, latency_us);
        let earliest_us = seen_us + schedule.sleep_min_ms(step) * 1_000;
        if next.opened_us < earliest_us {
            let detail = format!(
                "conn {} was accepted {:.1} ms after the agent was last seen on conn {}; backoff step {step} sleeps at least {} ms",
                next.conn,
                next.opened_us.saturating_sub(seen_us) as f64 / 1e3,
                earlier.conn,
                schedule.sleep_min_ms(step)
            );
            found.push(Violation::new(PACED.name, None, next.opened_us, detail));
        }
        step = step.saturating_add(1);
    }
    for (index, session) in sessions.iter().enumerate() {
        let next = sessions.get(index + 1).copied();
        found.extend(too_late(view, config, &schedule, &cut, tally, session, next));
    }
    found
}

/// Whether the connection surely failed its handshake (the agent escalates).
fn surely_failed(session: &SessionView) -> bool {
    session.ready_us.is_none()
        && session
            .reason
            .as_deref()
            .is_some_and(|r| HANDSHAKE_FAILURES.iter().any(|f| r.starts_with(f)))
}

/// The latest time the agent was surely still on `session`.
fn last_seen_us(view: &TraceView, session: &SessionView, latency_us: u64) -> u64 {
    let conn = session.conn;
    let frames = view
        .sends()
        .map(|(_, send)| send)
        .filter(|send| send.conn == conn)
        .flat_map(|send| {
            let chunks = send.chunks.iter().map(|c| c.at_us);
            chunks.chain(send.terminals.iter().map(|t| t.at_us))
        });
    let read_us = frames
        .chain(session.ready_us)
        .chain(session.capabilities.iter().map(|(at, _)| *at))
        .chain(session.heartbeats.iter().map(|h| h.at_us))
        .max()
        .unwrap_or(session.opened_us);
    // With nothing in the way, the coordinator would have read the agent's
    // own Close or EOF before closing the connection itself. A newer login
    // superseding it says nothing: the agent may have left it long before.
    let close_us = session
        .closed_us
        .filter(|_| !session.reason.as_deref().is_some_and(|r| r.starts_with("superseded")));
    read_us.max(close_us.unwrap_or(0)).saturating_sub(latency_us)
}

/// The late half: after a ready session the coordinator ended, the next
/// connection comes within notice + first-step sleep + one attempt.
fn too_late(
    view: &TraceView,
    config: &OracleConfig,
    schedule: &ReconnectSchedule,
    cut: &Windows,
    tally: &mut Tally,
    session: &SessionView,
    next: Option<&SessionView>,
) -> Option<Violation> {
    session.ready_us?;
    let closed_us = session.closed_us?;
    let reason = session.reason.as_deref().unwrap_or("unknown");
    // A scripted close or drop reaches the agent a latency later. Other
    // ends are not bounded here: a crash (its restart closes the old
    // connection in the log) may be noticed during the outage, after which
    // the backoff escalates; `reconnects_after_disruption` bounds those.
    if !reason.starts_with("scripted_disconnect") {
        return None;
    }
    let notice_ms = config.latency_max_ms;
    let bound_ms = notice_ms + schedule.sleep_max_ms(0) + schedule.attempt_ms;
    let due_us = closed_us + bound_ms * 1_000;
    if next.is_some_and(|n| n.opened_us <= due_us) {
        tally.judge();
        return None;
    }
    if cut.overlaps(closed_us, due_us) {
        tally.excuse("a disruption overlaps the reconnection");
        return None;
    }
    if due_us > view.end_us {
        tally.excuse("the run ended before the bound");
        return None;
    }
    tally.judge();
    let took = next.map_or_else(
        || "none came".to_owned(),
        |n| {
            format!(
                "conn {} came after {:.1} ms",
                n.conn,
                (n.opened_us - closed_us) as f64 / 1e3
            )
        },
    );
    let detail = format!(
        "conn {} reached steady state and was ended by the coordinator ({reason}); the next connection was due within {bound_ms} ms (notice {notice_ms} ms, first backoff step at most {} ms, one attempt {} ms): {took}",
        session.conn,
        schedule.sleep_max_ms(0),
        schedule.attempt_ms
    );
    Some(Violation::new(PACED.name, None, due_us, detail))
}
