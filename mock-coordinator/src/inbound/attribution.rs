//! Which submission an agent frame belongs to (README, "Attribution").
//!
//! Frames name a `job_id`; the submissions of that id on the frame's
//! connection form a chain (`crate::chain`). A submission *awaits frames*
//! once written, until its terminal frame is read, its connection ends, or a
//! later submission of the id is written after a cancel of it (it is then
//! superseded). Of the submissions awaiting frames, the oldest is the one
//! the agent is running (or last ran, for a cancelled one whose late frames
//! may still come): chunks and terminal frames belong to it. A
//! `duplicate_job` error answers a re-send, so it belongs to the oldest
//! re-send awaiting frames after that one — or to that one itself when it
//! is a re-send and there is no other.

use crate::record::{JobKind, ViolationKind};
use crate::state::LogState;

/// Where and when a frame arrived.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx {
    pub conn: u64,
    pub at_us: u64,
}

/// Which submission a frame belongs to.
enum Target {
    Open(usize),
    AfterTerminal(usize),
    LostSession(usize),
    OtherConnection(usize),
    Unknown,
}

fn find(state: &LogState, conn: u64, job_id: &str, duplicate_error: bool) -> Target {
    let Some(ids) = state.jobs_by_id.get(job_id) else {
        return Target::Unknown;
    };
    let chain = state.chain(conn, job_id);
    let awaiting: Vec<usize> = chain
        .iter()
        .copied()
        .filter(|&i| state.jobs[i].awaits_frames())
        .collect();
    if duplicate_error
        && let Some(&i) = awaiting
            .iter()
            .skip(1)
            .find(|&&i| matches!(state.jobs[i].kind, JobKind::Duplicate { .. }))
    {
        return Target::Open(i);
    }
    if let Some(&current) = awaiting.first() {
        return Target::Open(current);
    }
    let written = chain.iter().copied().rfind(|&i| state.jobs[i].sent_us.is_some());
    if let Some(i) = written.or(chain.last().copied()) {
        return Target::AfterTerminal(i);
    }
    let jobs = || ids.iter().filter_map(|&i| state.jobs.get(i));
    if let Some(j) = jobs().rfind(|j| j.session_lost_us.is_some()) {
        return Target::LostSession(j.index);
    }
    match jobs().rfind(|j| j.conn.is_some()) {
        Some(j) => Target::OtherConnection(j.index),
        None => Target::Unknown,
    }
}

/// Resolves the target of a frame; anything but an open submission is
/// recorded as a violation. Returns the submission frames may be added to
/// (an open one, or for terminals also a finished one on this connection).
pub(crate) fn resolve(
    state: &mut LogState,
    ctx: Ctx,
    kind: &str,
    job_id: &str,
    duplicate_error: bool,
) -> Option<(usize, bool)> {
    let (index, open, violation) = match find(state, ctx.conn, job_id, duplicate_error) {
        Target::Open(i) => return Some((i, true)),
        Target::AfterTerminal(i) => (
            Some(i),
            false,
            (
                ViolationKind::AfterTerminal,
                "after the job's terminal frame (or, for a cancelled job, after it was re-sent)".to_owned(),
            ),
        ),
        Target::LostSession(i) => {
            let lost_conn = state.jobs[i].conn.unwrap_or_default();
            let why = format!("for a job of connection {lost_conn}, whose session was lost");
            (None, false, (ViolationKind::LostSessionJob, why))
        }
        Target::OtherConnection(i) => {
            let other = state.jobs[i].conn.unwrap_or_default();
            (
                None,
                false,
                (
                    ViolationKind::OtherConnectionJob,
                    format!("for a job sent on connection {other}"),
                ),
            )
        }
        Target::Unknown => (
            None,
            false,
            (
                ViolationKind::UnknownJob,
                "for a job_id this coordinator never sent".to_owned(),
            ),
        ),
    };
    let (vkind, why) = violation;
    state.violation(ctx.at_us, ctx.conn, vkind, Some(job_id), format!("{kind} {why}"));
    index.map(|i| (i, open))
}
