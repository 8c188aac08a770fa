//! Re-sent job ids on hand-made traces: every rule judges each submission
//! (each `job` frame, with the frames the coordinator attributed to it) and
//! the backend execution paired with it, so an id sent more than once is
//! checked like any other job.

use super::{caught, check, passes};
use simctl::trace::handmade::TraceBuilder;
use simctl::trace::{EventKind, JobKind};

/// Job `j` sent at 10 ms and cancelled at 100 ms after relaying `ab` (the
/// backend wrote `abcd` and closed at 105 ms); re-sent at 2 100 ms, after
/// the resend guard, and run again as a new job: `xyz`, job_done.
fn cancelled_then_rerun(rerun_relays: &[u8]) -> TraceBuilder {
    cancelled_with_late_chunk(None, rerun_relays)
}

/// [`cancelled_then_rerun`], with one more chunk of the cancelled original
/// arriving at `late_ms` (before the re-send).
fn cancelled_with_late_chunk(late_ms: Option<u64>, rerun_relays: &[u8]) -> TraceBuilder {
    let b = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .admitted(11, "j", 1)
        .backend(12, Some(105), "j", b"abcd", "client_gone")
        .chunk(20, "j", 1, b"ab")
        .cancel(100, "j", 1);
    let b = match late_ms {
        Some(at_ms) => b.chunk(at_ms, "j", 1, b"c"),
        None => b,
    };
    b.job_of_kind(2_100, "j", 1, 60_000, JobKind::Duplicate)
        .admitted(2_101, "j", 1)
        .backend(2_102, Some(2_120), "j", b"xyz", "completed")
        .chunk(2_110, "j", 1, rerun_relays)
        .done(2_121, "j", 1)
}

/// Job `j` streams from 10 ms to its job_done at 100 ms; a re-send at 20 ms
/// is answered duplicate_job at 22 ms.
fn duplicated_while_streaming(relayed: &[u8]) -> TraceBuilder {
    TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .admitted(11, "j", 1)
        .backend(12, Some(90), "j", b"hello", "completed")
        .chunk(15, "j", 1, relayed)
        .job_of_kind(20, "j", 1, 60_000, JobKind::Duplicate)
        .rejected(21, "j", "duplicate_job", 1)
        .error(22, "j", 1, "duplicate_job")
        .done(100, "j", 1)
}

/// Job `j` ends with job_done at 50 ms; re-sent at 60 ms (the id is free)
/// it runs again from 62 ms; then a stale `at` cancel for the original is
/// written at 200 ms, which the agent applies to the re-run.
fn stale_cancel_of_a_rerun(rerun_end_ms: Option<u64>) -> TraceBuilder {
    TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(40), "j", b"a", "completed")
        .chunk(30, "j", 1, b"a")
        .done(50, "j", 1)
        .job_of_kind(60, "j", 1, 60_000, JobKind::Duplicate)
        .backend(62, rerun_end_ms, "j", b"b", "client_gone")
        .chunk(70, "j", 1, b"b")
        .cancel(200, "j", 1)
}

// ---- bytes_match_backend ----

/// A re-run that relays bytes other than its own backend execution wrote is caught.
#[test]
fn bytes_match_backend_catches_an_altered_rerun() {
    let found = caught("bytes_match_backend", &cancelled_then_rerun(b"xyZ").build());
    assert!(found.detail.starts_with("#0 re-send 1"), "{}", found.detail);
    assert!(found.detail.contains("first difference at byte 2"), "{}", found.detail);
}

/// A cancelled original relaying a prefix of its execution and a re-run relaying all of its own pass.
#[test]
fn bytes_match_backend_passes_a_cancelled_original_and_its_rerun() {
    passes("bytes_match_backend", &cancelled_then_rerun(b"xyz").build());
}

/// An original whose re-send was answered duplicate_job must still complete byte-exact.
#[test]
fn bytes_match_backend_catches_a_duplicated_original_cut_short() {
    let found = caught("bytes_match_backend", &duplicated_while_streaming(b"hell").build());
    assert!(found.detail.starts_with("submission #0"), "{}", found.detail);
    passes("bytes_match_backend", &duplicated_while_streaming(b"hello").build());
}

// ---- cancel_closes_stream ----

/// A late frame of a cancelled job that was later re-sent is judged against the cancel bound.
#[test]
fn cancel_closes_stream_catches_a_late_frame_of_a_resent_job() {
    let trace = cancelled_with_late_chunk(Some(500), b"xyz").build();
    let found = caught("cancel_closes_stream", &trace);
    assert_eq!(found.at_us, 500_000);
    assert!(found.detail.starts_with("submission #0"), "{}", found.detail);
}

/// The re-send's own frames, long after the original's cancel, are not late frames of the original; a frame within the bound passes.
#[test]
fn cancel_closes_stream_passes_a_rerun_after_a_cancel() {
    passes("cancel_closes_stream", &cancelled_then_rerun(b"xyz").build());
    passes(
        "cancel_closes_stream",
        &cancelled_with_late_chunk(Some(150), b"xyz").build(),
    );
}

/// A stale cancel reaches the re-run holding the id: its backend stream must close in time.
#[test]
fn cancel_closes_stream_catches_a_rerun_ignoring_a_stale_cancel() {
    let found = caught("cancel_closes_stream", &stale_cancel_of_a_rerun(Some(1_000)).build());
    assert!(found.detail.starts_with("#0 re-send 1"), "{}", found.detail);
    passes("cancel_closes_stream", &stale_cancel_of_a_rerun(Some(210)).build());
}

// ---- exactly_one_terminal ----

/// A stale cancel that ends the re-run excuses the re-run's missing terminal frame.
#[test]
fn exactly_one_terminal_passes_a_rerun_ended_by_a_stale_cancel() {
    passes("exactly_one_terminal", &stale_cancel_of_a_rerun(Some(210)).build());
}

/// A re-run that no cancel reached must get its own terminal frame.
#[test]
fn exactly_one_terminal_catches_an_unanswered_rerun() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .done(50, "j", 1)
        .job_of_kind(60, "j", 1, 60_000, JobKind::Duplicate)
        .chunk(70, "j", 1, b"b")
        .build();
    let found = caught("exactly_one_terminal", &trace);
    assert!(found.detail.starts_with("#0 re-send 1"), "{}", found.detail);
}

// ---- never_two_terminals / no_chunk_after_terminal ----

/// A re-run answered twice is caught, though its id was sent twice.
#[test]
fn never_two_terminals_catches_a_rerun_answered_twice() {
    let trace = cancelled_then_rerun(b"xyz").error(2_130, "j", 1, "internal").build();
    let found = caught("never_two_terminals", &trace);
    assert_eq!(found.at_us, 2_130_000);
    assert!(found.detail.starts_with("#0 re-send 1"), "{}", found.detail);
}

/// A chunk after the re-run's terminal frame is caught, though the id was sent twice.
#[test]
fn no_chunk_after_terminal_catches_a_chunk_after_a_rerun() {
    let trace = cancelled_then_rerun(b"xyz").chunk(2_130, "j", 1, b"!").build();
    assert_eq!(caught("no_chunk_after_terminal", &trace).at_us, 2_130_000);
    passes("no_chunk_after_terminal", &cancelled_then_rerun(b"xyz").build());
}

// ---- deadline_enforced ----

/// A re-run still running past its own deadline is caught.
#[test]
fn deadline_enforced_catches_a_rerun_past_its_deadline() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(0, "j", 1, 1_000)
        .backend(2, Some(100), "j", b"a", "completed")
        .chunk(50, "j", 1, b"a")
        .done(110, "j", 1)
        .job_of_kind(2_000, "j", 1, 1_000, JobKind::Duplicate)
        .backend(2_002, None, "j", b"", "")
        .build();
    let found = caught("deadline_enforced", &trace);
    assert_eq!(found.at_us, 3_100_000);
    assert!(found.detail.starts_with("#0 re-send 1"), "{}", found.detail);
}

/// A re-run's deadline runs from its own sending, not the original's.
#[test]
fn deadline_enforced_times_a_rerun_from_its_own_send() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(0, "j", 1, 1_000)
        .backend(2, Some(100), "j", b"a", "completed")
        .chunk(50, "j", 1, b"a")
        .done(110, "j", 1)
        .job_of_kind(2_000, "j", 1, 1_000, JobKind::Duplicate)
        .backend(2_002, Some(3_010), "j", b"", "client_gone")
        .error(3_010, "j", 1, "backend_timeout")
        .build();
    passes("deadline_enforced", &trace);
}

// ---- inbound_while_outbound_blocked ----

fn resent_during_a_pause(decided: bool) -> TraceBuilder {
    let b = TraceBuilder::new()
        .session(0, 1)
        .job(500, "j", 1, 60_000)
        .admitted(501, "j", 1)
        .at(
            1_000,
            EventKind::ReadBlocked {
                conn: 1,
                until_us: 3_000_000,
                slow: false,
            },
        )
        .job_of_kind(1_500, "j", 1, 60_000, JobKind::Duplicate);
    let b = if decided {
        b.rejected(1_501, "j", "duplicate_job", 1)
    } else {
        b
    };
    b.heartbeat(4_000, 1, 1)
}

/// A re-send ignored while the coordinator does not read is caught, though its original was decided.
#[test]
fn inbound_while_outbound_blocked_catches_an_ignored_resend() {
    let found = caught("inbound_while_outbound_blocked", &resent_during_a_pause(false).build());
    assert!(found.detail.starts_with("#0 re-send 1"), "{}", found.detail);
}

/// A re-send rejected promptly during the pause passes.
#[test]
fn inbound_while_outbound_blocked_passes_a_decided_resend() {
    passes("inbound_while_outbound_blocked", &resent_during_a_pause(true).build());
}

// ---- never_run_twice ----

/// A re-send the agent answered duplicate_job must not reach a backend.
#[test]
fn never_run_twice_catches_a_rejected_resend_that_runs() {
    let trace = duplicated_while_streaming(b"hello")
        .backend(25, Some(95), "j", b"hello", "completed")
        .build();
    let found = caught("never_run_twice", &trace);
    assert_eq!(found.at_us, 25_000);
    assert!(
        found.detail.contains("rejected submission reached a backend"),
        "{}",
        found.detail
    );
}

/// A submission admitted once but executed twice is caught, though its id was sent twice.
#[test]
fn never_run_twice_catches_a_rerun_executed_twice() {
    let trace = cancelled_then_rerun(b"xyz")
        .backend(2_115, Some(2_118), "j", b"xyz", "completed")
        .build();
    let found = caught("never_run_twice", &trace);
    assert!(
        found.detail.starts_with("#0 re-send 1 executed 2 times"),
        "{}",
        found.detail
    );
}

/// A job the agent answered at admission must not reach a backend at all.
#[test]
fn never_run_twice_catches_an_execution_of_a_rejected_job() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .error(12, "j", 1, "out_of_capacity")
        .backend(13, Some(20), "j", b"x", "completed")
        .build();
    let found = caught("never_run_twice", &trace);
    assert!(
        found.detail.contains("no submission of it that may run"),
        "{}",
        found.detail
    );
}

/// An original, a rejected duplicate and a re-run after a cancel, each run at most once, pass.
#[test]
fn never_run_twice_passes_each_submission_run_once() {
    passes("never_run_twice", &duplicated_while_streaming(b"hello").build());
    passes("never_run_twice", &cancelled_then_rerun(b"xyz").build());
}

// ---- heartbeat_queue_depth ----

/// An original that is surely executing counts in queue_depth even when its id was re-sent.
#[test]
fn heartbeat_queue_depth_counts_a_duplicated_job() {
    let trace = duplicated_while_streaming(b"hello").heartbeat(50, 1, 0).build();
    let found = caught("heartbeat_queue_depth", &trace);
    assert!(found.detail.contains("between 1 and"), "{}", found.detail);
    let honest = duplicated_while_streaming(b"hello").heartbeat(50, 1, 1).build();
    assert!(check("heartbeat_queue_depth", &honest).is_empty());
}
