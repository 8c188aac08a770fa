//! When the world has settled: every job the coordinator issued has an
//! outcome, no re-send is still to come, no backend request is still
//! running, and the agent holds an authenticated session (so liveness is
//! shown, not assumed).

use mock_backends::Recorder;
use mock_coordinator::{JobKind, JobOutcome, JobRecord, Log};

/// Whether nothing is left to happen.
pub fn settled(log: &Log, backends: &[Recorder]) -> bool {
    let connected = log
        .sessions()
        .iter()
        .any(|s| s.auth_ok_us.is_some() && s.closed_us.is_none());
    if !connected || log.resends_pending() > 0 {
        return false;
    }
    // Looked at in place: this runs every few simulated milliseconds of the
    // quiet phase, and copying every record each time cost a run's peak.
    log.all_jobs(|job| !awaits_answer(job))
        && backends
            .iter()
            .all(|recorder| recorder.all_records(|record| record.end.is_some()))
}

/// Whether the job still waits for something. A malformed frame without a
/// usable `job_id` can never be answered. A re-send is a submission like any
/// other: the coordinator attributes to it exactly the frames that answer it
/// (`duplicate_job`, or its own chunks and terminal frame when it ran as a
/// new job), so it waits for its own terminal frame.
fn awaits_answer(job: &JobRecord) -> bool {
    if job.outcome() != JobOutcome::InFlight {
        return false;
    }
    match &job.kind {
        JobKind::Malformed(how) => how.expected_error_code().is_some(),
        JobKind::Duplicate { .. } | JobKind::Normal => true,
    }
}
