//! End-of-run, memory and blocked-outbound rules on hand-made traces.

use super::{caught, passes};
use simctl::trace::handmade::TraceBuilder;
use simctl::trace::{EventKind, Phase};

// ---- in_flight_zero_at_quiescence ----

/// A slot still held after the world settled is caught.
#[test]
fn in_flight_zero_catches_a_leaked_slot() {
    let trace = TraceBuilder::new()
        .admitted(10, "j", 1)
        .phase(100, Phase::Settled)
        .build();
    assert!(caught("in_flight_zero_at_quiescence", &trace).detail.contains("1 slot"));
}

/// A backend stream still open after the world settled is caught.
#[test]
fn in_flight_zero_catches_an_open_stream() {
    let trace = TraceBuilder::new()
        .backend(10, None, "j", b"", "")
        .phase(100, Phase::Settled)
        .build();
    caught("in_flight_zero_at_quiescence", &trace);
}

/// Every slot freed and every stream closed passes.
#[test]
fn in_flight_zero_passes_a_drained_agent() {
    let trace = TraceBuilder::new()
        .admitted(10, "j", 1)
        .backend(11, Some(20), "j", b"", "completed")
        .freed(21, "j", 0)
        .phase(100, Phase::Settled)
        .build();
    passes("in_flight_zero_at_quiescence", &trace);
}

// ---- settles_within_bound ----

/// Running out of settle_ms_max is caught, naming an unanswered job.
#[test]
fn settles_within_bound_catches_a_world_that_never_settles() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .phase(1_000, Phase::SettleBoundHit)
        .build();
    assert_eq!(caught("settles_within_bound", &trace).job.as_deref(), Some("j"));
}

/// A settled world passes.
#[test]
fn settles_within_bound_passes_a_settled_world() {
    passes(
        "settles_within_bound",
        &TraceBuilder::new().phase(1_000, Phase::Settled).build(),
    );
}

// ---- outbound_queue_bounded ----

/// Queued bytes past the bound plus slack are caught.
#[test]
fn outbound_queue_bounded_catches_an_overfull_queue() {
    let trace = TraceBuilder::new()
        .at(
            10,
            EventKind::AgentOutboundQueued {
                bytes: 2_000,
                frames: 9,
            },
        )
        .build();
    caught("outbound_queue_bounded", &trace);
}

/// Queued bytes within the bound plus slack pass.
#[test]
fn outbound_queue_bounded_passes_within_slack() {
    let trace = TraceBuilder::new()
        .at(
            10,
            EventKind::AgentOutboundQueued {
                bytes: 1_010,
                frames: 9,
            },
        )
        .build();
    passes("outbound_queue_bounded", &trace);
}

// ---- inbound_while_outbound_blocked ----

fn paused_session() -> TraceBuilder {
    TraceBuilder::new().session(0, 1).at(
        1_000,
        EventKind::ReadBlocked {
            conn: 1,
            until_us: 3_000_000,
            slow: false,
        },
    )
}

/// A job ignored while the coordinator does not read is caught.
#[test]
fn inbound_while_outbound_blocked_catches_an_ignored_job() {
    let trace = paused_session()
        .job(1_500, "j", 1, 60_000)
        .heartbeat(4_000, 1, 0)
        .build();
    assert_eq!(
        caught("inbound_while_outbound_blocked", &trace).job.as_deref(),
        Some("j")
    );
}

/// A job decided promptly during the pause passes.
#[test]
fn inbound_while_outbound_blocked_passes_a_prompt_decision() {
    let trace = paused_session()
        .job(1_500, "j", 1, 60_000)
        .rejected(1_550, "j", "out_of_capacity", 2)
        .heartbeat(4_000, 1, 0)
        .build();
    passes("inbound_while_outbound_blocked", &trace);
}
