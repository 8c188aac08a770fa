//! Liveness: the agent connects at start, and after every partition, crash
//! or disconnect it reaches steady state on a new session within the
//! reconnect bound of the disruption healing, and serves jobs there: it
//! answers them, and once a disruption has healed, it completes at least
//! one of the jobs it answers before the next one.

use std::collections::BTreeMap;

use super::windows::{AGENT_HOST, COORDINATOR_HOST, Windows, backend_disruptions, link_disruptions};
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{FaultAction, JobKind, Phase, SessionView, TraceView};

/// The agent reconnects and serves again.
pub const RECONNECTS: Rule = Rule {
    name: "reconnects_after_disruption",
    summary: "after start and after every partition, crash or disconnect the agent is serving on a new session within the reconnection bound of the heal (derived from its backoff schedule and the disruption's length, or reconnect_within_ms), and completes a job there",
    check: reconnects,
};

fn reconnects(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let windows = link_disruptions(view);
    let backend_windows = Windows(backend_disruptions(view).into_iter().map(|(a, b, _)| (a, b)).collect());
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
    for (at_us, what) in &disruptions {
        let healed_us = windows.heal_after(*at_us);
        let bound_ms = reconnect_bound_ms(config, &windows, &backend_windows, *at_us, healed_us);
        let deadline_us = healed_us + bound_ms * 1_000;
        let ready = view
            .sessions
            .values()
            .filter_map(|s| s.ready_us)
            .any(|r| r >= *at_us && r <= deadline_us);
        let judged = deadline_us <= view.end_us || view.phase_us(Phase::SettleBoundHit).is_some();
        if judged || ready {
            tally.judge();
        } else {
            tally.excuse("the run ended before the bound");
        }
        if !ready && judged {
            let next_ready = view
                .sessions
                .values()
                .filter_map(|s| s.ready_us)
                .filter(|r| *r >= healed_us)
                .min();
            let took = next_ready.map_or_else(
                || "none did by the end of the run".to_owned(),
                |r| format!("the next one took {:.1} ms", (r - healed_us) as f64 / 1e3),
            );
            let detail = format!("no session reached steady state within {bound_ms} ms after {what} healed: {took}");
            found.push(Violation::new(
                RECONNECTS.name,
                None,
                deadline_us.min(view.end_us),
                detail,
            ));
        }
    }
    found.extend(serves_again(view));
    found.extend(completes_after_heal(view, &disruptions[1..]));
    found
}

/// The reconnection bound of the disruption at `at_us` healing at
/// `healed_us`: derived from the agent's backoff schedule (see
/// [`super::backoff`]), counted from the start of the chain of disruption
/// windows holding `at_us`; or the flat `reconnect_within_ms`.
fn reconnect_bound_ms(config: &OracleConfig, links: &Windows, backends: &Windows, at_us: u64, healed_us: u64) -> u64 {
    let Some(schedule) = config.reconnect else {
        return config.bounds.reconnect_within_ms;
    };
    let since_us = links.chain_start(at_us);
    let backend_cut = backends.overlaps(since_us, healed_us + config.bounds.reconnect_within_ms * 1_000);
    schedule.bound_ms(since_us / 1_000, healed_us / 1_000, backend_cut)
}

fn cuts_session(action: FaultAction, hosts: &[String]) -> bool {
    let names = |n: &str| hosts.iter().any(|h| h == n);
    match action {
        FaultAction::Partition | FaultAction::Hold => names(AGENT_HOST) && names(COORDINATOR_HOST),
        FaultAction::Crash => names(AGENT_HOST) || names(COORDINATOR_HOST),
        _ => false,
    }
}

/// A session still open at the end that was sent jobs served at least one
/// (a terminal frame or a chunk); a job cancelled before any frame of it
/// arrived asks for nothing and is not counted.
fn serves_again(view: &TraceView) -> Vec<Violation> {
    let mut found = Vec::new();
    for session in view
        .sessions
        .values()
        .filter(|s| s.ready_us.is_some() && s.closed_us.is_none())
    {
        // A job the coordinator cancelled before any frame of it arrived
        // asks for no answer; one that streamed was served, answered or not.
        let on_conn: Vec<_> = view
            .sends()
            .filter(|(_, send)| send.conn == session.conn)
            .filter(|(_, send)| !(send.cancel_us.is_some() && send.chunks.is_empty() && send.terminals.is_empty()))
            .collect();
        let sent = on_conn.len();
        let answered = on_conn
            .iter()
            .any(|(_, send)| !send.terminals.is_empty() || !send.chunks.is_empty());
        if sent > 0 && !answered {
            let detail = format!("conn {} was sent {sent} job(s) and answered none", session.conn);
            found.push(Violation::new(RECONNECTS.name, None, view.end_us, detail));
        }
    }
    found
}

/// After each disruption heals, the agent completes a job again.
///
/// For a disruption of the session (`session_disruptions`: a connection
/// closing, a partition or hold of the agent–coordinator link, a crash of
/// either) the agent serves again from the first session ready after the
/// heal; for one of a backend (a partition or hold of an agent–backend link,
/// a crash of a backend host) from the heal, on the newest session ready
/// then. Judged are the jobs sent on that session from then until the next
/// fault begins or the session closes, that were answered before that
/// (other than `duplicate_job`, which is about the id, not serving): if
/// there are any, at least one must be `job_done`, or some job sent since
/// the heal must have streamed a chunk before the window closes (jobs longer
/// than the window fill every slot and turn the rest away truthfully, yet
/// the agent serves). Jobs cut short by the
/// next disruption are not judged, and a window with no answered job
/// proves nothing either way (`exactly_one_terminal` covers silence).
///
/// The window opens only once the slots held at the heal are free again: a
/// job streaming from a backend that lost power, or over a held link, holds
/// its slot until its deadline (nothing tells the agent the stream is dead),
/// and until then `out_of_capacity` is the truthful answer to new jobs.
fn completes_after_heal(view: &TraceView, session_disruptions: &[(u64, String)]) -> Vec<Violation> {
    let links = link_disruptions(view);
    let backends = backend_disruptions(view);
    let fault_starts: Vec<u64> = links
        .0
        .iter()
        .map(|&(from, _)| from)
        .chain(backends.iter().map(|&(from, _, _)| from))
        .collect();
    // (serving from, session) → the disruptions it recovers from: several
    // may heal into one session (a partition and the close it causes).
    let mut serving: BTreeMap<(u64, u64), (&SessionView, Vec<&str>)> = BTreeMap::new();
    for (at_us, what) in session_disruptions {
        let healed_us = links.heal_after(*at_us);
        let first_ready = view
            .sessions
            .values()
            .filter(|s| s.ready_us.is_some_and(|r| r >= healed_us && r >= *at_us))
            .min_by_key(|s| s.ready_us);
        if let Some(session) = first_ready {
            let from_us = session.ready_us.unwrap_or(healed_us);
            let entry = serving.entry((from_us, session.conn)).or_insert((session, Vec::new()));
            entry.1.push(what);
        }
    }
    for (_, healed_us, what) in &backends {
        let newest = view
            .sessions
            .values()
            .filter(|s| s.ready_us.is_some_and(|r| r <= *healed_us) && s.closed_us.is_none_or(|c| c > *healed_us))
            .max_by_key(|s| s.ready_us);
        if let Some(session) = newest {
            let entry = serving
                .entry((*healed_us, session.conn))
                .or_insert((session, Vec::new()));
            entry.1.push(what);
        }
    }
    let mut found = Vec::new();
    for ((healed_us, _), (session, whats)) in serving {
        let next_fault = fault_starts.iter().copied().filter(|&f| f > healed_us).min();
        let from_us = slots_free_us(view, session.conn, healed_us);
        let until_us = next_fault
            .into_iter()
            .chain(session.closed_us)
            .min()
            .unwrap_or(u64::MAX);
        if from_us >= until_us {
            continue;
        }
        let answered: Vec<_> = view
            .sends()
            .map(|(_, send)| send)
            .filter(|send| {
                send.conn == session.conn
                    && matches!(send.kind, JobKind::Normal | JobKind::Duplicate)
                    && send.at_us >= from_us
                    && send.at_us < until_us
            })
            .filter_map(|send| send.first_terminal())
            .filter(|t| t.at_us < until_us && t.what.error_code() != Some("duplicate_job"))
            .collect();
        if answered.is_empty() || answered.iter().any(|t| t.what.error_code().is_none()) {
            continue;
        }
        if streamed_in_window(view, session.conn, healed_us, until_us) {
            continue;
        }
        let mut codes: Vec<&str> = answered.iter().filter_map(|t| t.what.error_code()).collect();
        codes.sort_unstable();
        codes.dedup();
        let at_us = answered.iter().map(|t| t.at_us).max().unwrap_or(from_us);
        let detail = format!(
            "after {} healed, conn {} answered {} job(s) sent from {:.3} s and completed none ({})",
            whats.join(" and "),
            session.conn,
            answered.len(),
            from_us as f64 / 1e6,
            codes.join(", ")
        );
        found.push(Violation::new(RECONNECTS.name, None, at_us, detail));
    }
    found
}

/// When the jobs of connection `conn` sent before `at_us` and still running
/// then have all ended: each by its first terminal frame, or its cancel.
/// `u64::MAX` if one never ends (it is lost with its session, or is silent,
/// which `exactly_one_terminal` judges).
fn slots_free_us(view: &TraceView, conn: u64, at_us: u64) -> u64 {
    view.sends()
        .map(|(_, send)| send)
        .filter(|send| send.conn == conn && send.at_us < at_us)
        .map(|send| {
            send.first_terminal()
                .map(|t| t.at_us)
                .or(send.cancel_us)
                .unwrap_or(u64::MAX)
        })
        .filter(|&end_us| end_us > at_us)
        .max()
        .unwrap_or(at_us)
}

/// Whether a job sent on `conn` in `[from_us, until_us)` streamed a chunk
/// before `until_us`: the agent admitted and served it.
fn streamed_in_window(view: &TraceView, conn: u64, from_us: u64, until_us: u64) -> bool {
    view.sends().map(|(_, send)| send).any(|send| {
        send.conn == conn
            && (from_us..until_us).contains(&send.at_us)
            && send.chunks.first().is_some_and(|c| c.at_us < until_us)
    })
}
