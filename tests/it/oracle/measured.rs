//! Violation messages state the value they measured, not only the bound:
//! the inbound, deadline, cancel and liveness rules on hand-made traces
//! whose measured figure is known exactly.

use super::caught;
use simctl::trace::handmade::TraceBuilder;
use simctl::trace::{EventKind, Phase};

/// inbound_while_outbound_blocked says how long the decision took: a job
/// written at 1.5 s into a read pause and rejected at 1.75 s took 250 ms
/// against the 100 ms bound.
#[test]
fn inbound_message_states_the_time_taken() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .at(
            1_000,
            EventKind::ReadBlocked {
                conn: 1,
                until_us: 3_000_000,
                slow: false,
            },
        )
        .job(1_500, "j", 1, 60_000)
        .rejected(1_750, "j", "out_of_capacity", 2)
        .heartbeat(4_000, 1, 0)
        .build();
    let detail = caught("inbound_while_outbound_blocked", &trace).detail;
    assert!(
        detail.ends_with("no admission decision within 100 ms: it took 250.0 ms"),
        "{detail}"
    );
}

/// deadline_enforced states how late the terminal frame was (400 ms past a
/// 1 s deadline), and how early an early timeout was (500 ms before it).
#[test]
fn deadline_messages_state_how_late_or_early() {
    let late = TraceBuilder::new()
        .session(0, 1)
        .job(0, "j", 1, 1_000)
        .backend(2, Some(1_050), "j", b"", "client_gone")
        .error(1_400, "j", 1, "backend_timeout")
        .build();
    let detail = caught("deadline_enforced", &late).detail;
    assert!(
        detail.contains("terminal frame arrived 400.0 ms after the deadline, allowed "),
        "{detail}"
    );
    let early = TraceBuilder::new()
        .session(0, 1)
        .job(0, "j", 1, 1_000)
        .error(500, "j", 1, "backend_timeout")
        .build();
    let detail = caught("deadline_enforced", &early).detail;
    assert!(
        detail.ends_with("backend_timeout 500.0 ms before the deadline elapsed"),
        "{detail}"
    );
}

/// cancel_closes_stream states when the backend stream closed (500 ms after
/// the cancel) and when a late frame came (300 ms after it).
#[test]
fn cancel_messages_state_the_delay() {
    let slow_close = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(600), "j", b"x", "client_gone")
        .cancel(100, "j", 1)
        .build();
    let detail = caught("cancel_closes_stream", &slow_close).detail;
    assert!(
        detail.contains("backend stream closed 500.0 ms after the cancel (bound "),
        "{detail}"
    );
    let late_frame = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(120), "j", b"x", "client_gone")
        .cancel(100, "j", 1)
        .chunk(400, "j", 1, b"x")
        .build();
    let detail = caught("cancel_closes_stream", &late_frame).detail;
    assert!(
        detail.contains("frame arrived 300.0 ms after the cancel (bound 100 ms)"),
        "{detail}"
    );
}

/// reconnects_after_disruption states how long the next session took: the
/// session closed at 1 s and the next reached steady state at 9 s, 8 s
/// after, beyond the 5 s bound.
#[test]
fn liveness_message_states_the_time_to_the_next_session() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .session_closed(1_000, 1)
        .session(9_000, 2)
        .phase(20_000, Phase::Settled)
        .build();
    let detail = caught("reconnects_after_disruption", &trace).detail;
    assert!(
        detail.ends_with("after conn 1 closing healed: the next one took 8000.0 ms"),
        "{detail}"
    );
}
