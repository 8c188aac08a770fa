//! Session-end rules on hand-made traces: a dead session's backend streams
//! close, and no job runs twice.

use super::{caught, passes, served};
use simctl::trace::handmade::TraceBuilder;
use simctl::trace::{EventKind, FaultAction};

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
    assert!(
        found.detail.contains("past the moment the agent ended its session"),
        "{}",
        found.detail
    );
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

fn fault(b: TraceBuilder, at_ms: u64, action: FaultAction, hosts: [&str; 2]) -> TraceBuilder {
    let hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
    b.at(at_ms, EventKind::Fault { action, hosts })
}

/// A job whose session died in a partition (the usual way) and whose stream runs on is caught, from the coordinator's log alone.
#[test]
fn session_end_closes_streams_catches_a_stream_outliving_a_partitioned_session() {
    let b = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(30_000), "j", b"x", "client_gone")
        .chunk(20, "j", 1, b"x");
    let b = fault(b, 1_000, FaultAction::Partition, ["agent", "coordinator"]);
    let trace = b.session_closed(5_000, 1).build();
    let v = caught("session_end_closes_streams", &trace);
    // Noticed by the close plus a trip (5 005 ms), bound 100 ms.
    assert_eq!(v.at_us, 5_105_000);
    assert!(v.detail.contains("the coordinator saw its session end"), "{}", v.detail);
}

/// A stream closed soon after the agent could notice the partition passes.
#[test]
fn session_end_closes_streams_passes_a_close_after_the_idle_timeout() {
    let b = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(3_050), "j", b"x", "client_gone")
        .chunk(20, "j", 1, b"x");
    // Partition at 1 s, noticed by 1 s + idle 2 s + a trip; the coordinator closes at 2.5 s.
    let b = fault(b, 1_000, FaultAction::Partition, ["agent", "coordinator"]);
    passes("session_end_closes_streams", &b.session_closed(2_500, 1).build());
}

/// A cut between the agent and the job's own backend excuses the stream; one to another backend does not.
#[test]
fn session_end_closes_streams_excuses_only_the_jobs_own_backend() {
    let b = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(30_000), "j", b"x", "client_gone")
        .chunk(20, "j", 1, b"x");
    let own = fault(b.clone(), 1_000, FaultAction::Partition, ["agent", "b1"]);
    passes("session_end_closes_streams", &own.session_closed(1_500, 1).build());
    let other = fault(b, 1_000, FaultAction::Partition, ["agent", "b2"]);
    caught("session_end_closes_streams", &other.session_closed(1_500, 1).build());
}
