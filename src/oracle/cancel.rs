//! Cancellation: after a `job_cancel` the backend stream closes within the
//! cancel bound, and no frame of the job arrives after that bound.
//!
//! `cancel_close_ms` is two one-way trips at the scenario's worst latency
//! (the cancel to the agent; the close to the backend, or a frame already
//! written back to the coordinator) plus the scheduling steps in between
//! (`expect.rs`), so an agent that honours a cancel even 100 ms late fails.

use super::windows::{all_disruptions, link_disruptions};
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{JobSend, TraceView};

/// A cancel closes the backend stream and silences the job.
pub const CLOSES_STREAM: Rule = Rule {
    name: "cancel_closes_stream",
    summary: "a cancel closes the backend stream within cancel_close_ms, and no frame of the job arrives after that",
    check: closes_stream,
};

fn closes_stream(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let bound_us = config.bounds.cancel_close_ms * 1_000;
    let links = link_disruptions(view);
    let all = all_disruptions(view);
    let mut found = Vec::new();
    // Per submission: a cancel counts for each submission of the id it
    // reached (a stale cancel of a finished original counts for the re-run
    // holding the id), and the frames judged are only those attributed to
    // that submission — a re-send's own frames are not late frames of the
    // cancelled one.
    for (job, send) in view.sends() {
        let Some(cancel_us) = send.cancel_us else { continue };
        if !send.cancelled_before_terminal() {
            tally.excuse("answered before the cancel");
            continue;
        }
        tally.judge();
        // A cancel that could not reach the agent (cut link, dead session)
        // proves nothing; the session's end frees the job instead.
        let conn_alive = session_alive(view, send.conn, cancel_us + bound_us);
        if conn_alive && !links.overlaps(cancel_us, cancel_us + bound_us) {
            check_stream_closed(view, &job.job, send, cancel_us, bound_us, &mut found);
        } else {
            tally.excuse("stream: the cancel could not reach the agent");
        }
        for frame_us in send
            .chunks
            .iter()
            .map(|c| c.at_us)
            .chain(send.terminals.iter().map(|t| t.at_us))
        {
            let allowed_us = cancel_us + bound_us + all.covered_us(cancel_us, frame_us);
            if frame_us > allowed_us {
                let late_ms = (frame_us - cancel_us) as f64 / 1e3;
                let detail = format!(
                    "{}: frame arrived {late_ms:.1} ms after the cancel (bound {} ms)",
                    send.label(),
                    config.bounds.cancel_close_ms
                );
                found.push(Violation::new(CLOSES_STREAM.name, Some(&*job.job), frame_us, detail));
                break;
            }
        }
    }
    found
}

/// Whether connection `conn` was still open at `until_us`.
fn session_alive(view: &TraceView, conn: u64, until_us: u64) -> bool {
    view.sessions
        .get(&conn)
        .is_none_or(|s| s.closed_us.is_none_or(|closed| closed > until_us))
}

fn check_stream_closed(
    view: &TraceView,
    job: &str,
    send: &JobSend,
    cancel_us: u64,
    bound_us: u64,
    found: &mut Vec<Violation>,
) {
    for call in view.executions_of_send(send) {
        let end_us = call.end_us.unwrap_or(u64::MAX);
        if end_us > cancel_us + bound_us {
            let detail = match call.end_us {
                Some(end) => format!(
                    "{}: backend stream closed {:.1} ms after the cancel (bound {:.1} ms)",
                    send.label(),
                    (end - cancel_us) as f64 / 1e3,
                    bound_us as f64 / 1e3
                ),
                None => format!("{}: backend stream never closed after the cancel", send.label()),
            };
            found.push(Violation::new(
                CLOSES_STREAM.name,
                Some(job),
                cancel_us + bound_us,
                detail,
            ));
        }
    }
}
