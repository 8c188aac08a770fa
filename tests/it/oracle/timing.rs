//! Cancel and deadline rules on hand-made traces.

use super::{caught, passes};
use simctl::trace::handmade::TraceBuilder;
use simctl::trace::{EventKind, Phase};

// ---- cancel_closes_stream ----

/// A backend stream left open after a cancel is caught.
#[test]
fn cancel_closes_stream_catches_an_open_stream() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(500), "j", b"x", "client_gone")
        .cancel(100, "j", 1)
        .build();
    assert!(
        caught("cancel_closes_stream", &trace)
            .detail
            .contains("backend stream closed")
    );
}

/// A frame long after the cancel is caught.
#[test]
fn cancel_closes_stream_catches_a_late_frame() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(120), "j", b"x", "client_gone")
        .cancel(100, "j", 1)
        .chunk(400, "j", 1, b"x")
        .build();
    assert_eq!(caught("cancel_closes_stream", &trace).at_us, 400_000);
}

/// A stream closed promptly after the cancel, and a frame delayed only by a
/// read pause, pass.
#[test]
fn cancel_closes_stream_passes_a_prompt_close() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(150), "j", b"x", "client_gone")
        .cancel(100, "j", 1)
        .at(
            110,
            EventKind::ReadBlocked {
                conn: 1,
                until_us: 1_000_000,
                slow: false,
            },
        )
        .chunk(1_050, "j", 1, b"x")
        .build();
    passes("cancel_closes_stream", &trace);
}

// ---- deadline_enforced ----

/// A job still unanswered past its deadline plus slack is caught.
#[test]
fn deadline_enforced_catches_a_job_past_its_deadline() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(0, "j", 1, 1_000)
        .backend(2, Some(1_050), "j", b"", "client_gone")
        .phase(3_000, Phase::Settled)
        .build();
    assert!(caught("deadline_enforced", &trace).detail.contains("no terminal"));
}

/// backend_timeout before the deadline could elapse is caught.
#[test]
fn deadline_enforced_catches_an_early_timeout() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(0, "j", 1, 1_000)
        .error(500, "j", 1, "backend_timeout")
        .build();
    assert!(
        caught("deadline_enforced", &trace)
            .detail
            .contains("before the deadline")
    );
}

/// A job the deadline cut that ends with another code is caught.
#[test]
fn deadline_enforced_catches_the_wrong_code() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(0, "j", 1, 1_000)
        .backend(2, Some(1_050), "j", b"", "client_gone")
        .error(1_050, "j", 1, "internal")
        .build();
    assert!(
        caught("deadline_enforced", &trace)
            .detail
            .contains("not backend_timeout")
    );
}

/// A timely backend_timeout with the stream closed passes.
#[test]
fn deadline_enforced_passes_a_timeout() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(0, "j", 1, 1_000)
        .backend(2, Some(1_020), "j", b"", "client_gone")
        .error(1_010, "j", 1, "backend_timeout")
        .build();
    passes("deadline_enforced", &trace);
}

/// A terminal frame the agent queued in time but the coordinator only read
/// after a read pause that outlasted the deadline is not late.
#[test]
fn deadline_enforced_credits_a_read_pause_up_to_the_terminal() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 3_000)
        .backend(12, Some(1_400), "j", b"x", "completed")
        .at(
            1_000,
            EventKind::ReadBlocked {
                conn: 1,
                until_us: 8_000_000,
                slow: false,
            },
        )
        .chunk(8_000, "j", 1, b"x")
        .done(8_001, "j", 1)
        .build();
    passes("deadline_enforced", &trace);
}

/// The credit stops at the pause: a terminal frame that arrives well after
/// the pause ended and past deadline + slack is still caught.
#[test]
fn deadline_enforced_still_catches_lateness_beyond_a_pause() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 3_000)
        .backend(12, Some(3_050), "j", b"x", "client_gone")
        .at(
            1_000,
            EventKind::ReadBlocked {
                conn: 1,
                until_us: 2_000_000,
                slow: false,
            },
        )
        .chunk(9_000, "j", 1, b"x")
        .error(9_500, "j", 1, "backend_timeout")
        .build();
    assert!(
        caught("deadline_enforced", &trace)
            .detail
            .contains("after the deadline")
    );
}
