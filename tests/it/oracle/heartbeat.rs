//! Heartbeat rules on hand-made traces.

use super::{caught, passes};
use simctl::trace::EventKind;
use simctl::trace::handmade::TraceBuilder;

// ---- heartbeat_schedule ----

/// A session with a heartbeat every second for five seconds, then closed.
fn steady_heartbeats(every_ms: u64, until_ms: u64) -> TraceBuilder {
    let mut b = TraceBuilder::new().session(0, 1);
    let mut at = every_ms;
    while at <= until_ms {
        b = b.heartbeat(at, 1, 0);
        at += every_ms;
    }
    b
}

/// A heartbeat gap of three intervals is caught.
#[test]
fn heartbeat_schedule_catches_a_gap() {
    let trace = steady_heartbeats(1_000, 2_000).heartbeat(5_000, 1, 0).build();
    assert_eq!(caught("heartbeat_schedule", &trace).at_us, 5_000_000);
}

/// Heartbeats far more often than the interval are caught.
#[test]
fn heartbeat_schedule_catches_a_storm() {
    let trace = steady_heartbeats(200, 3_000).build();
    caught("heartbeat_schedule", &trace);
}

/// Heartbeats on schedule, and a gap explained by a read pause, pass.
#[test]
fn heartbeat_schedule_passes_on_schedule_and_through_a_pause() {
    passes("heartbeat_schedule", &steady_heartbeats(1_000, 5_000).build());
    let paused = steady_heartbeats(1_000, 2_000)
        .at(
            2_100,
            EventKind::ReadBlocked {
                conn: 1,
                until_us: 4_500_000,
                slow: false,
            },
        )
        .heartbeat(4_500, 1, 0)
        .heartbeat(4_501, 1, 0)
        .heartbeat(5_500, 1, 0)
        .build();
    passes("heartbeat_schedule", &paused);
}

// ---- heartbeat_queue_depth ----

/// queue_depth above the jobs that could be executing is caught.
#[test]
fn heartbeat_queue_depth_catches_an_inflated_depth() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .heartbeat(20, 1, 3)
        .build();
    assert!(caught("heartbeat_queue_depth", &trace).detail.contains("queue_depth 3"));
}

/// queue_depth 0 while a job is surely streaming is caught.
#[test]
fn heartbeat_queue_depth_catches_a_hidden_job() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .chunk(15, "j", 1, b"x")
        .heartbeat(20, 1, 0)
        .done(30, "j", 1)
        .build();
    caught("heartbeat_queue_depth", &trace);
}

/// The true depth passes.
#[test]
fn heartbeat_queue_depth_passes_the_truth() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .chunk(15, "j", 1, b"x")
        .heartbeat(20, 1, 1)
        .done(30, "j", 1)
        .heartbeat(40, 1, 0)
        .build();
    passes("heartbeat_queue_depth", &trace);
}
