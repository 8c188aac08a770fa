//! Cancel and deadline rules on hand-made traces.

use super::{caught, passes};
use simctl::trace::handmade::TraceBuilder;
use simctl::trace::{EventKind, FaultAction, Phase};

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

fn fault(b: TraceBuilder, at_ms: u64, action: FaultAction, hosts: [&str; 2]) -> TraceBuilder {
    let hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
    b.at(at_ms, EventKind::Fault { action, hosts })
}

/// A hold of the coordinator link no longer excuses the backend side: a stream left open past the deadline is caught.
#[test]
fn deadline_enforced_judges_the_stream_through_a_coordinator_hold() {
    let b = TraceBuilder::new()
        .session(0, 1)
        .job(0, "j", 1, 1_000)
        .backend(2, None, "j", b"x", "completed");
    let b = fault(b, 500, FaultAction::Hold, ["agent", "coordinator"]);
    let b = fault(b, 700, FaultAction::Release, ["agent", "coordinator"]);
    let b = b.error(1_050, "j", 1, "backend_timeout");
    let v = caught("deadline_enforced", &b.build());
    // The limit stretches by the 200 ms hold: 1 000 + 100 + 200 ms.
    assert_eq!(v.at_us, 1_300_000);
    assert!(v.detail.contains("backend stream still open"), "{}", v.detail);
}

/// A cut between the agent and the job's own backend excuses its stream.
#[test]
fn deadline_enforced_excuses_the_jobs_own_backend_link() {
    let b = TraceBuilder::new()
        .session(0, 1)
        .job(0, "j", 1, 1_000)
        .backend(2, None, "j", b"x", "completed");
    let b = fault(b, 500, FaultAction::Partition, ["agent", "b1"]);
    passes("deadline_enforced", &b.error(1_050, "j", 1, "backend_timeout").build());
}

/// The derived cancel bound on the default network is tight: two 5 ms trips plus 20 ms of scheduling.
#[test]
fn cancel_bound_fails_an_agent_100_ms_late() {
    let scenario = simctl::scenario::load::parse("t.toml", "name = \"t\"\nduration_ms = 1000\n")
        .expect("a minimal scenario parses");
    let bounds = simctl::expect::oracle_config(&scenario).bounds;
    assert_eq!((bounds.cancel_close_ms, bounds.deadline_slack_ms), (30, 30));
    assert!(
        bounds.cancel_close_ms + 5 < 100,
        "a 100 ms-late close exceeds the bound"
    );
}
