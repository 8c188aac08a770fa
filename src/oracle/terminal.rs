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
        check_invalid_answer(job, &mut found);
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
            // Sends and answers pair up in order (a re-send may be answered
            // after the original): a chunk is late only when every send
            // before it has already been answered.
            let sent = job.sends.iter().filter(|s| s.seq < chunk.seq).count();
            let answered = job.terminals.iter().filter(|t| t.seq < chunk.seq).count();
            if sent == 0 {
                found.push(Violation::new(
                    NO_FRAME_AFTER.name,
                    Some(&job.job),
                    chunk.at_us,
                    "chunk for a job never sent",
                ));
            } else if answered >= sent {
                let last = job
                    .terminals
                    .iter()
                    .filter(|t| t.seq < chunk.seq)
                    .map(|t| t.at_us)
                    .max()
                    .unwrap_or(0);
                let detail = format!(
                    "chunk of {} bytes arrived after the terminal frame at {last} µs",
                    chunk.what
                );
                found.push(Violation::new(NO_FRAME_AFTER.name, Some(&job.job), chunk.at_us, detail));
            }
        }
    }
    found
}

/// A job frame with a usable id but a bad field is answered `invalid_job`.
fn check_invalid_answer(job: &JobView, found: &mut Vec<Violation>) {
    if job.first_send().map(|s| s.kind) != Some(JobKind::Invalid) {
        return;
    }
    let Some(first) = job.own_terminals().next() else {
        return;
    };
    if first.what.error_code() != Some("invalid_job") {
        let got = first.what.error_code().unwrap_or("job_done");
        let detail = format!("an invalid job frame was answered {got}, not invalid_job");
        found.push(Violation::new(EXACTLY_ONE.name, Some(&job.job), first.at_us, detail));
    }
}
