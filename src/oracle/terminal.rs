//! Terminal frames: every job that was neither cancelled nor lost with its
//! session gets exactly one terminal frame per send; never two; and nothing of
//! a job arrives after its terminal frame.

use super::{OracleConfig, Rule, Violation};
use crate::trace::{JobKind, JobView, TraceView};

/// Every job not cancelled gets a terminal frame.
pub const EXACTLY_ONE: Rule = Rule {
    name: "exactly_one_terminal",
    summary: "every job sent and neither cancelled nor lost with its session gets a terminal frame",
    check: exactly_one,
};

/// No send is answered twice.
pub const NEVER_TWO: Rule = Rule {
    name: "never_two_terminals",
    summary: "no job gets more terminal frames than it was sent",
    check: never_two,
};

/// Nothing follows a terminal frame.
pub const NO_FRAME_AFTER: Rule = Rule {
    name: "no_chunk_after_terminal",
    summary: "no chunk of a job arrives after its terminal frame, nor for a job never sent",
    check: no_frame_after,
};

/// Whether the job is excused from getting a terminal frame: it was
/// cancelled first, its session died first, or it was malformed (a job whose
/// id cannot be parsed cannot be answered).
fn excused(job: &JobView) -> bool {
    let lost_first = match (job.session_lost_us, job.first_terminal_us()) {
        (Some(lost), Some(terminal)) => lost < terminal,
        (Some(_), None) => true,
        _ => false,
    };
    lost_first || job.cancelled_before_terminal() || job.sends.iter().all(|s| s.kind == JobKind::Malformed)
}

fn exactly_one(view: &TraceView, _config: &OracleConfig) -> Vec<Violation> {
    let mut found = Vec::new();
    for job in view.jobs.values() {
        let owed = job.sends.iter().filter(|s| s.kind != JobKind::Malformed).count();
        if owed == 0 || excused(job) || job.terminals.len() >= owed {
            continue;
        }
        let sent_us = job.first_send().map_or(0, |s| s.at_us);
        found.push(Violation::new(
            EXACTLY_ONE.name,
            Some(&job.job),
            view.end_us,
            format!(
                "sent {owed} time(s) (first at {:.3} s) but got {} terminal frame(s) by the end of the run",
                sent_us as f64 / 1e6,
                job.terminals.len()
            ),
        ));
    }
    found
}

fn never_two(view: &TraceView, _config: &OracleConfig) -> Vec<Violation> {
    let mut found = Vec::new();
    for job in view.jobs.values() {
        for (index, terminal) in job.terminals.iter().enumerate() {
            let sends_before = job.sends.iter().filter(|s| s.seq < terminal.seq).count();
            if index + 1 > sends_before {
                found.push(Violation::new(
                    NEVER_TWO.name,
                    Some(&job.job),
                    terminal.at_us,
                    format!(
                        "terminal frame #{} ({:?}) arrived after only {sends_before} send(s)",
                        index + 1,
                        terminal.what.error_code().unwrap_or("job_done")
                    ),
                ));
            }
        }
    }
    found
}

fn no_frame_after(view: &TraceView, _config: &OracleConfig) -> Vec<Violation> {
    let mut found = Vec::new();
    for job in view.jobs.values() {
        for chunk in &job.chunks {
            let last_send = job.sends.iter().filter(|s| s.seq < chunk.seq).map(|s| s.seq).max();
            let Some(last_send) = last_send else {
                found.push(Violation::new(NO_FRAME_AFTER.name, Some(&job.job), chunk.at_us, "chunk for a job never sent"));
                continue;
            };
            let terminal = job.own_terminals().find(|t| t.seq > last_send && t.seq < chunk.seq);
            if let Some(terminal) = terminal {
                found.push(Violation::new(
                    NO_FRAME_AFTER.name,
                    Some(&job.job),
                    chunk.at_us,
                    format!("chunk of {} bytes arrived after the terminal frame at {} µs", chunk.what, terminal.at_us),
                ));
            }
        }
    }
    found
}
