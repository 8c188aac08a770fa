//! Terminal frames, judged per submission (each `job` frame the coordinator
//! wrote, with the frames it attributed to it): every submission that was
//! neither cancelled, superseded nor lost with its session gets a terminal
//! frame; none gets two; and no chunk arrives that belongs to no
//! submission (after its terminal frame, or for a job never sent).

use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{JobKind, JobSend, TraceView};

/// Every submission not cancelled gets a terminal frame.
pub const EXACTLY_ONE: Rule = Rule {
    name: "exactly_one_terminal",
    summary: "every job submission sent and neither cancelled nor lost with its session gets a terminal frame",
    check: exactly_one,
};

/// No submission is answered twice.
pub const NEVER_TWO: Rule = Rule {
    name: "never_two_terminals",
    summary: "no job submission gets more than one terminal frame, and none arrives for a job never sent",
    check: never_two,
};

/// Nothing follows a terminal frame.
pub const NO_FRAME_AFTER: Rule = Rule {
    name: "no_chunk_after_terminal",
    summary: "no chunk of a job arrives after its submission's terminal frame, nor for a job never sent",
    check: no_frame_after,
};

/// Whether the submission is excused from getting a terminal frame: a
/// cancel reached it first (including a stale one, sent for an earlier
/// submission of its id, that the agent applies to this one), its session
/// died first, or it was malformed (a job whose id cannot be parsed cannot
/// be answered). A superseded submission was cancelled first.
fn excuse_of(send: &JobSend) -> Option<&'static str> {
    if send.kind == JobKind::Malformed {
        Some("malformed: cannot be answered")
    } else if send.cancelled_before_terminal() {
        Some("cancelled first")
    } else if send.lost_before_terminal() {
        Some("lost with its session")
    } else {
        None
    }
}

fn exactly_one(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let mut found = Vec::new();
    for (job, send) in view.sends() {
        check_invalid_answer(&job.job, send, &mut found);
        if !send.terminals.is_empty() {
            tally.judge();
            continue;
        }
        if let Some(why) = excuse_of(send) {
            tally.excuse(why);
            continue;
        }
        tally.judge();
        found.push(Violation::new(
            EXACTLY_ONE.name,
            Some(&*job.job),
            view.end_us,
            format!(
                "{} (sent at {:.3} s) got no terminal frame by the end of the run",
                send.label(),
                send.at_us as f64 / 1e6,
            ),
        ));
    }
    found
}

fn never_two(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let mut found = Vec::new();
    for job in view.jobs.values() {
        tally.judge_n(job.sends.len() as u64);
        for send in &job.sends {
            for terminal in send.terminals.iter().skip(1) {
                let first = send.terminals[0].what.error_code().unwrap_or("job_done");
                found.push(Violation::new(
                    NEVER_TWO.name,
                    Some(&*job.job),
                    terminal.at_us,
                    format!(
                        "{}: a second terminal frame ({}) after {first}",
                        send.label(),
                        terminal.what.error_code().unwrap_or("job_done")
                    ),
                ));
            }
        }
        for terminal in &job.stray_terminals {
            let detail = format!(
                "terminal frame ({}) on conn {} for no submission of this id there",
                terminal.what.error_code().unwrap_or("job_done"),
                terminal.conn
            );
            found.push(Violation::new(NEVER_TWO.name, Some(&*job.job), terminal.at_us, detail));
        }
    }
    found
}

fn no_frame_after(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let mut found = Vec::new();
    for job in view.jobs.values() {
        tally.judge_n(job.sends.len() as u64);
        for chunk in &job.stray_chunks {
            // The coordinator gives a chunk to the oldest submission of its
            // id on its connection still awaiting frames; one it gave to
            // none came after every such submission's terminal frame (or
            // supersession), or names a job not sent on that connection.
            let on_conn: Vec<&JobSend> = job.sends.iter().filter(|s| s.conn == chunk.conn).collect();
            let detail = if job.sends.is_empty() {
                "chunk for a job never sent".to_owned()
            } else if on_conn.is_empty() {
                format!("chunk on conn {} for a job not sent there", chunk.conn)
            } else {
                let last = on_conn
                    .iter()
                    .filter_map(|s| s.first_terminal_us())
                    .filter(|&t| t <= chunk.at_us)
                    .max()
                    .unwrap_or(0);
                format!(
                    "chunk of {} bytes arrived after the terminal frame at {last} µs",
                    chunk.what
                )
            };
            found.push(Violation::new(
                NO_FRAME_AFTER.name,
                Some(&*job.job),
                chunk.at_us,
                detail,
            ));
        }
        for send in &job.sends {
            let Some(terminal) = send.first_terminal() else {
                continue;
            };
            for chunk in send.chunks.iter().filter(|c| c.seq > terminal.seq) {
                let detail = format!(
                    "{}: chunk of {} bytes arrived after its terminal frame at {} µs",
                    send.label(),
                    chunk.what,
                    terminal.at_us
                );
                found.push(Violation::new(
                    NO_FRAME_AFTER.name,
                    Some(&*job.job),
                    chunk.at_us,
                    detail,
                ));
            }
        }
    }
    found
}

/// A job frame with a usable id but a bad field is answered `invalid_job`.
fn check_invalid_answer(job: &str, send: &JobSend, found: &mut Vec<Violation>) {
    if send.kind != JobKind::Invalid {
        return;
    }
    let Some(first) = send.first_terminal() else {
        return;
    };
    if first.what.error_code() != Some("invalid_job") {
        let got = first.what.error_code().unwrap_or("job_done");
        let detail = format!("an invalid job frame was answered {got}, not invalid_job");
        found.push(Violation::new(EXACTLY_ONE.name, Some(job), first.at_us, detail));
    }
}
