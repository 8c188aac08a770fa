//! Session-end rules on hand-made traces: a dead session's backend streams
//! close, and no job runs twice.

use super::{caught, passes, served};
use simctl::trace::EventKind;
use simctl::trace::handmade::TraceBuilder;

fn started(b: TraceBuilder, at_ms: u64) -> TraceBuilder {
    b.at(at_ms, EventKind::AgentSessionStarted { session: 1 })
}

fn ended(b: TraceBuilder, at_ms: u64) -> TraceBuilder {
    b.at(
        at_ms,
        EventKind::AgentSessionEnded {
            session: 1,
            reason: "connection lost".into(),
        },
    )
}

/// A backend stream that keeps running after its session ended is caught.
#[test]
fn session_end_closes_streams_catches_a_stream_left_running() {
    let b = started(TraceBuilder::new().session(0, 1), 0)
        .job(10, "j", 1, 60_000)
        .admitted(11, "j", 1)
        .backend(12, Some(2_000), "j", b"x", "completed");
    let trace = ended(b, 500).session_closed(500, 1).build();
    let found = caught("session_end_closes_streams", &trace);
    assert_eq!(found.at_us, 600_000);
    assert!(found.detail.contains("past the end of its session"), "{}", found.detail);
}

/// A stream that never ends after its session ended is caught.
#[test]
fn session_end_closes_streams_catches_a_stream_never_closed() {
    let b = started(TraceBuilder::new().session(0, 1), 0)
        .job(10, "j", 1, 60_000)
        .admitted(11, "j", 1)
        .backend(12, None, "j", b"", "");
    let trace = ended(b, 500).build();
    assert!(
        caught("session_end_closes_streams", &trace)
            .detail
            .contains("never closed")
    );
}

/// Streams closed promptly at the session's end, and jobs of an earlier
/// session that already finished, pass.
#[test]
fn session_end_closes_streams_passes_a_prompt_close() {
    let b = started(served(TraceBuilder::new().session(0, 1), "done-before", 10, b"x"), 0)
        .job(100, "j", 1, 60_000)
        .admitted(101, "j", 1)
        .backend(102, Some(550), "j", b"x", "client_gone");
    let trace = ended(b, 500).session_closed(500, 1).build();
    passes("session_end_closes_streams", &trace);
}

/// A job sent once but executed twice is caught.
#[test]
fn never_run_twice_catches_a_second_execution() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(100), "j", b"x", "completed")
        .backend(200, Some(300), "j", b"x", "completed")
        .build();
    assert_eq!(caught("never_run_twice", &trace).at_us, 200_000);
}

/// A job executed once passes.
#[test]
fn never_run_twice_passes_a_single_execution() {
    let trace = served(TraceBuilder::new().session(0, 1), "j", 10, b"x").build();
    passes("never_run_twice", &trace);
}
