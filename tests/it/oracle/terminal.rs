//! Terminal-frame rules on hand-made traces.

use super::{caught, passes, served};
use simctl::trace::handmade::TraceBuilder;
use simctl::trace::{EventKind, JobKind, Phase};

// ---- exactly_one_terminal ----

/// A job that never gets a terminal frame is caught.
#[test]
fn exactly_one_terminal_catches_a_silent_job() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .phase(500, Phase::Settled)
        .build();
    let v = caught("exactly_one_terminal", &trace);
    assert_eq!(v.job.as_deref(), Some("j"));
}

/// Answered, cancelled and session-lost jobs all pass.
#[test]
fn exactly_one_terminal_passes_answered_cancelled_and_lost_jobs() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "a", 1, 60_000)
        .done(20, "a", 1)
        .job(10, "b", 1, 60_000)
        .cancel(15, "b", 1)
        .job(10, "c", 1, 60_000)
        .at(
            30,
            EventKind::JobSessionLost {
                job: "c".into(),
                sub: 2,
                conn: 1,
            },
        )
        .build();
    passes("exactly_one_terminal", &trace);
}

// ---- never_two_terminals ----

/// A second terminal frame for one send is caught.
#[test]
fn never_two_terminals_catches_a_double_answer() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .done(20, "j", 1)
        .error(25, "j", 1, "internal")
        .build();
    assert_eq!(caught("never_two_terminals", &trace).at_us, 25_000);
}

/// A duplicate send answered with duplicate_job, then the original's done, passes.
#[test]
fn never_two_terminals_passes_a_duplicate_answered_once_each() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .job_of_kind(12, "j", 1, 60_000, JobKind::Duplicate)
        .error(14, "j", 1, "duplicate_job")
        .done(20, "j", 1)
        .build();
    passes("never_two_terminals", &trace);
}

// ---- no_chunk_after_terminal ----

/// A chunk after the terminal frame is caught.
#[test]
fn no_chunk_after_terminal_catches_a_late_chunk() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .chunk(15, "j", 1, b"a")
        .done(20, "j", 1)
        .chunk(21, "j", 1, b"b")
        .build();
    assert_eq!(caught("no_chunk_after_terminal", &trace).at_us, 21_000);
}

/// A chunk for a job that was never sent is caught.
#[test]
fn no_chunk_after_terminal_catches_a_chunk_of_an_unknown_job() {
    let trace = TraceBuilder::new().session(0, 1).chunk(15, "ghost", 1, b"a").build();
    caught("no_chunk_after_terminal", &trace);
}

/// Chunks before the terminal frame pass.
#[test]
fn no_chunk_after_terminal_passes_an_ordered_stream() {
    let trace = served(TraceBuilder::new().session(0, 1), "j", 10, b"data").build();
    passes("no_chunk_after_terminal", &trace);
}

/// An invalid job frame (usable id, bad field) must be answered, with invalid_job.
#[test]
fn exactly_one_terminal_demands_invalid_job_for_invalid_frames() {
    let unanswered = TraceBuilder::new()
        .session(0, 1)
        .job_of_kind(10, "j", 1, 60_000, JobKind::Invalid)
        .build();
    caught("exactly_one_terminal", &unanswered);
    let wrong = TraceBuilder::new()
        .session(0, 1)
        .job_of_kind(10, "j", 1, 60_000, JobKind::Invalid)
        .error(12, "j", 1, "internal")
        .build();
    assert!(
        caught("exactly_one_terminal", &wrong)
            .detail
            .contains("not invalid_job")
    );
    let right = TraceBuilder::new()
        .session(0, 1)
        .job_of_kind(10, "j", 1, 60_000, JobKind::Invalid)
        .error(12, "j", 1, "invalid_job")
        .job_of_kind(10, "malformed#3", 1, 60_000, JobKind::Malformed)
        .build();
    passes("exactly_one_terminal", &right);
}
