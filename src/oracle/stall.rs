//! A blocked write ends the session: when the coordinator stops reading a
//! connection for longer than the agent's writes can wait
//! (`session.write_timeout_ms`), the agent gives that session up and
//! connects again, instead of wedging on it until the coordinator happens
//! to read again.
//!
//! Judged from outside, per window in which the coordinator did not read a
//! connection at all ([`TraceView::read_stops`]). The agent must write a
//! heartbeat every `heartbeat_interval_ms` and a WebSocket ping every
//! `ping_interval_ms`, each at least one write on the socket, and the
//! simulated socket holds `tcp_capacity` writes unread: so its writes are
//! surely blocked [`WriteStall::blocked_within_ms`] after reading stopped
//! (sooner when jobs stream). From then, `write_timeout_ms` ends the session,
//! and the agent connects again after the first backoff step (the session
//! reached steady state) and one attempt. If reading stays stopped past all
//! of that, a newer connection must have been accepted by then, or the
//! connection must have closed.
//!
//! A window ends when reading resumes or when the connection closes; one
//! whose connection closed by the bound passes.
//!
//! Excused: windows overlapped by a partition, hold or crash (of the
//! coordinator link, or of a backend: discovery waits for it), and windows
//! whose bound falls after the end of the run. Windows that end before the
//! bound have nothing to judge.

use serde::Serialize;

use super::windows::{Windows, backend_disruptions, link_disruptions};
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::TraceView;

/// What the rule needs to know of the agent's writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct WriteStall {
    /// `session.write_timeout_ms`: the longest a write may wait.
    pub write_timeout_ms: u64,
    /// How long after the coordinator stops reading the agent's writes are
    /// surely blocked: `(tcp_capacity + 1)` mandatory writes (heartbeats
    /// and pings) plus the heartbeat tolerance.
    pub blocked_within_ms: u64,
}

/// A stalled connection is given up.
pub const ENDS_SESSION: Rule = Rule {
    name: "blocked_write_ends_session",
    summary: "when the coordinator stops reading a connection past the agent's write_timeout_ms (after its writes surely blocked), the agent has connected anew by then plus one first-step reconnection",
    check: ends_session,
};

fn ends_session(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let Some(stall) = config.write_stall else {
        return Vec::new();
    };
    let reconnect_ms = config.reconnect.map_or(config.bounds.reconnect_within_ms, |schedule| {
        2 * config.latency_max_ms + schedule.sleep_max_ms(0) + schedule.attempt_ms
    });
    let bound_ms = stall.blocked_within_ms + stall.write_timeout_ms + reconnect_ms;
    let mut cut: Windows = link_disruptions(view);
    cut.0
        .extend(backend_disruptions(view).into_iter().map(|(a, b, _)| (a, b)));
    let mut found = Vec::new();
    for &(conn, from_us, until_us) in &view.read_stops {
        let due_us = from_us + bound_ms * 1_000;
        let Some(session) = view.sessions.get(&conn) else {
            continue;
        };
        // The window ends when reading resumes or the connection closes,
        // whichever comes first.
        if session.closed_us.is_some_and(|c| c <= due_us) {
            tally.judge();
            continue;
        }
        if until_us <= due_us {
            continue;
        }
        let renewed = view
            .sessions
            .values()
            .any(|s| s.conn != conn && s.opened_us >= from_us && s.opened_us <= due_us);
        if renewed {
            tally.judge();
            continue;
        }
        if cut.overlaps(from_us, due_us) {
            tally.excuse("a partition, hold or crash overlaps the stall");
            continue;
        }
        if due_us > view.end_us {
            tally.excuse("the run ended before the bound");
            continue;
        }
        tally.judge();
        let detail = format!(
            "the coordinator stopped reading conn {conn} at {:.3} s until {:.3} s; the agent kept the session past {:.3} s \
             (writes surely blocked within {} ms, write_timeout_ms {}, one reconnection {reconnect_ms} ms) and connected anew only {}",
            from_us as f64 / 1e6,
            until_us as f64 / 1e6,
            due_us as f64 / 1e6,
            stall.blocked_within_ms,
            stall.write_timeout_ms,
            next_open(view, from_us, conn)
        );
        found.push(Violation::new(ENDS_SESSION.name, None, due_us, detail));
    }
    found
}

/// When the agent next connected after `from_us`, in words.
fn next_open(view: &TraceView, from_us: u64, conn: u64) -> String {
    view.sessions
        .values()
        .filter(|s| s.conn != conn && s.opened_us >= from_us)
        .map(|s| s.opened_us)
        .min()
        .map_or_else(|| "never".to_owned(), |at| format!("at {:.3} s", at as f64 / 1e6))
}
