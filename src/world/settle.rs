//! When the world has settled: every job the coordinator issued has an
//! outcome, no backend request is still running, and the agent holds an
//! authenticated session (so liveness is shown, not assumed).

use mock_backends::Recorder;
use mock_coordinator::{JobKind, JobOutcome, JobRecord, Log};

/// Whether nothing is left to happen.
pub fn settled(log: &Log, backends: &[Recorder]) -> bool {
    let connected = log
        .sessions()
        .iter()
        .any(|s| s.auth_ok_us.is_some() && s.closed_us.is_none());
    if !connected {
        return false;
    }
    let jobs = log.jobs();
    jobs.iter().all(|job| !awaits_answer(job, &jobs))
        && backends
            .iter()
            .all(|recorder| recorder.records().iter().all(|record| record.end.is_some()))
}

/// Whether the job still waits for something. A malformed frame without a
/// usable `job_id` can never be answered. A re-send is answered by any
/// terminal frame for its id that arrived after it was sent, whichever
/// submission the coordinator attributed that frame to.
fn awaits_answer(job: &JobRecord, all: &[JobRecord]) -> bool {
    if job.outcome() != JobOutcome::InFlight {
        return false;
    }
    match &job.kind {
        JobKind::Malformed(how) => how.expected_error_code().is_some(),
        JobKind::Duplicate { .. } => {
            let sent_us = job.sent_us.unwrap_or(0);
            let same_id = all.iter().filter(|other| other.job_id == job.job_id);
            !same_id.flat_map(|other| &other.terminals).any(|t| t.at_us >= sent_us)
        }
        JobKind::Normal => true,
    }
}
