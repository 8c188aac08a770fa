//! Capacity rules on hand-made traces.

use super::{caught, passes};
use simctl::trace::handmade::TraceBuilder;

// ---- out_of_capacity_truthful ----

/// out_of_capacity with a free slot is caught.
#[test]
fn out_of_capacity_truthful_catches_a_rejection_with_a_free_slot() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .admitted(10, "a", 1)
        .rejected(11, "b", "out_of_capacity", 1)
        .error(13, "b", 1, "out_of_capacity")
        .build();
    assert_eq!(caught("out_of_capacity_truthful", &trace).job.as_deref(), Some("b"));
}

/// An in_flight count that does not add up is caught.
#[test]
fn out_of_capacity_truthful_catches_a_wrong_slot_count() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .admitted(10, "a", 1)
        .admitted(11, "b", 1)
        .build();
    assert!(
        caught("out_of_capacity_truthful", &trace)
            .detail
            .contains("in_flight 1")
    );
}

/// An out_of_capacity frame the agent never decided is caught.
#[test]
fn out_of_capacity_truthful_catches_an_undecided_rejection_frame() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "b", 1, 60_000)
        .error(13, "b", 1, "out_of_capacity")
        .build();
    caught("out_of_capacity_truthful", &trace);
}

/// A rejection with every slot taken passes.
#[test]
fn out_of_capacity_truthful_passes_a_full_agent() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .admitted(10, "a", 1)
        .admitted(11, "b", 2)
        .rejected(12, "c", "out_of_capacity", 2)
        .error(14, "c", 1, "out_of_capacity")
        .freed(20, "a", 1)
        .freed(21, "b", 0)
        .build();
    passes("out_of_capacity_truthful", &trace);
}

// ---- backend_streams_within_limit ----

/// Three concurrent streams with two slots are caught.
#[test]
fn backend_streams_within_limit_catches_a_third_stream() {
    let trace = TraceBuilder::new()
        .backend(10, Some(100), "a", b"", "completed")
        .backend(20, Some(100), "b", b"", "completed")
        .backend(30, Some(100), "c", b"", "completed")
        .build();
    assert_eq!(caught("backend_streams_within_limit", &trace).at_us, 30_000);
}

/// Streams one after another, and a stream the agent released just before
/// the backend noticed, pass.
#[test]
fn backend_streams_within_limit_passes_sequential_streams() {
    let trace = TraceBuilder::new()
        .backend(10, Some(100), "a", b"", "completed")
        .backend(20, Some(150), "b", b"", "client_gone")
        .freed(99, "b", 0)
        .backend(100, Some(200), "c", b"", "completed")
        .backend(110, Some(200), "d", b"", "completed")
        .build();
    passes("backend_streams_within_limit", &trace);
}

/// From the coordinator's log alone, with no agent events: out_of_capacity while a slot was surely free is caught.
#[test]
fn out_of_capacity_truthful_catches_a_false_rejection_from_outside() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "a", 1, 60_000)
        .backend(11, Some(500), "a", b"x", "completed")
        .job(20, "b", 1, 60_000)
        .error(22, "b", 1, "out_of_capacity")
        .chunk(100, "a", 1, b"x")
        .done(501, "a", 1)
        .build();
    caught("out_of_capacity_truthful", &trace);
    let found = super::check("out_of_capacity_truthful", &trace);
    assert!(
        found.iter().any(|v| v.detail.contains("at most 1 of 2 slots")),
        "{found:?}"
    );
}
