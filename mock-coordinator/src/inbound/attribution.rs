//! Which submission an agent frame belongs to.
//!
//! A frame for `job_id` belongs to the oldest submission of
//! that id on the same connection that is still open (no terminal yet). So
//! while an original is in flight its chunks stay with it, and once it has
//! finished a re-submission of the id is a fresh job. The one exception is a
//! `duplicate_job` error, which refers to the duplicate submission.

use crate::record::{JobKind, JobRecord, ViolationKind};
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
    let here = |j: &&JobRecord| j.conn == Some(conn);
    let jobs = || ids.iter().filter_map(|&i| state.jobs.get(i));
    let open = |j: &&JobRecord| here(j) && j.terminals.is_empty() && j.undeliverable.is_none();
    if duplicate_error
        && let Some(j) = jobs()
            .filter(open)
            .find(|j| matches!(j.kind, JobKind::Duplicate { .. }))
    {
        return Target::Open(j.index);
    }
    if let Some(j) = jobs().find(open) {
        return Target::Open(j.index);
    }
    if let Some(j) = jobs().rfind(here) {
        return Target::AfterTerminal(j.index);
    }
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
                "after the job's terminal frame".to_owned(),
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
