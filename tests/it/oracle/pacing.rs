//! Reconnection pacing, blocked writes and broken frames on hand-made traces.

use std::collections::BTreeSet;

use simctl::oracle::backoff::ReconnectSchedule;
use simctl::oracle::{OracleConfig, RULES, Violation, judge};
use simctl::trace::handmade::TraceBuilder;
use simctl::trace::{EventKind, FaultAction, JobKind, Phase, Trace};

use super::{caught, config, passes};

/// The hand-made config with a known backoff: 1 s doubling to 4 s, one
/// attempt 100 ms.
fn paced_config() -> OracleConfig {
    OracleConfig {
        reconnect: Some(ReconnectSchedule {
            idle_timeout_ms: 2_000,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 4_000,
            attempt_wedged_ms: 1_000,
            attempt_ms: 100,
            discovery_stall_ms: 1_000,
            round_trip_ms: 10,
        }),
        ..config()
    }
}

fn pacing(trace: &Trace) -> Vec<Violation> {
    let skip: BTreeSet<String> = RULES
        .iter()
        .filter(|r| r.name != "reconnects_paced_by_backoff")
        .map(|r| r.name.to_owned())
        .collect();
    judge(trace, &paced_config(), &skip).violations
}

fn closed(b: TraceBuilder, at_ms: u64, conn: u64, reason: &str) -> TraceBuilder {
    b.at(
        at_ms,
        EventKind::SessionClosed {
            conn,
            reason: reason.into(),
        },
    )
}

/// After the coordinator closes a ready session, reconnecting at once or
/// after the escalated backoff is caught; within the first step passes.
#[test]
fn pacing_bounds_the_sleep_after_a_ready_session() {
    let after = |reopen_ms| {
        let b = closed(TraceBuilder::new().session(0, 1), 5_000, 1, "scripted_disconnect");
        b.session(reopen_ms, 2).phase(9_000, Phase::Settled).build()
    };
    assert!(pacing(&after(5_900)).is_empty(), "{:?}", pacing(&after(5_900)));
    let early = pacing(&after(5_010));
    assert_eq!(early.len(), 1, "{early:?}");
    assert!(
        early[0].detail.contains("sleeps at least 799 ms"),
        "{}",
        early[0].detail
    );
    let late = pacing(&after(7_000));
    assert_eq!(late.len(), 1, "{late:?}");
    assert!(late[0].detail.contains("due within 1305 ms"), "{}", late[0].detail);
}

/// Failed handshakes escalate the backoff: a second retry at the first
/// step's pace is caught, one at the second step's passes.
#[test]
fn pacing_follows_escalation_after_failed_handshakes() {
    let retries = |third_ms| {
        let b = TraceBuilder::new().at(0, EventKind::SessionOpened { conn: 1 });
        let b = closed(b, 10, 1, "auth_failed: bad signature");
        let b = closed(
            b.at(900, EventKind::SessionOpened { conn: 2 }),
            910,
            2,
            "auth_failed: bad signature",
        );
        b.session(third_ms, 3).phase(9_000, Phase::Settled).build()
    };
    assert!(pacing(&retries(2_600)).is_empty());
    let found = pacing(&retries(1_800));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].detail.contains("step 1"), "{}", found[0].detail);
}

/// A restart of the agent starts its backoff afresh: no pace is asked across it.
#[test]
fn pacing_excuses_an_agent_restart() {
    let b = closed(TraceBuilder::new().session(0, 1), 5_000, 1, "read_failed: reset");
    let trace = b
        .at(
            5_000,
            EventKind::Fault {
                action: FaultAction::Restart,
                hosts: vec!["agent".into()],
            },
        )
        .session(5_010, 2)
        .phase(9_000, Phase::Settled)
        .build();
    assert!(pacing(&trace).is_empty());
}

// ---- blocked_write_ends_session ----

fn stalled(b: TraceBuilder, from_ms: u64, until_ms: u64, slow: bool) -> TraceBuilder {
    b.at(
        from_ms,
        EventKind::ReadBlocked {
            conn: 1,
            until_us: until_ms * 1_000,
            slow,
        },
    )
}

/// A session kept through a long read stop is caught; a new connection in
/// time, a short stop or a slow reader passes.
#[test]
fn blocked_write_ends_session_demands_a_new_connection() {
    let base = || TraceBuilder::new().session(0, 1);
    let kept = stalled(base(), 1_000, 20_000, false)
        .phase(20_000, Phase::Settled)
        .build();
    assert!(
        caught("blocked_write_ends_session", &kept)
            .detail
            .contains("kept the session")
    );
    let renewed = stalled(base(), 1_000, 20_000, false).session(4_000, 2);
    passes(
        "blocked_write_ends_session",
        &renewed.phase(20_000, Phase::Settled).build(),
    );
    let short = stalled(base(), 1_000, 6_000, false)
        .phase(20_000, Phase::Settled)
        .build();
    passes("blocked_write_ends_session", &short);
    let slow = stalled(base(), 1_000, 20_000, true)
        .phase(20_000, Phase::Settled)
        .build();
    passes("blocked_write_ends_session", &slow);
}

// ---- unusable_frame_keeps_session ----

/// The agent closing the session right after an invalid or malformed frame
/// is caught; keeping it, or a close during a partition, passes.
#[test]
fn unusable_frame_keeps_session_catches_a_close() {
    let frame = |kind| {
        TraceBuilder::new()
            .session(0, 1)
            .job_of_kind(1_000, "bad", 1, 60_000, kind)
    };
    let invalid = frame(JobKind::Invalid).error(1_003, "bad", 1, "invalid_job");
    let v = caught(
        "unusable_frame_keeps_session",
        &closed(invalid.clone(), 1_004, 1, "agent_closed").build(),
    );
    assert!(v.detail.contains("invalid job frame"), "{}", v.detail);
    caught(
        "unusable_frame_keeps_session",
        &closed(frame(JobKind::Malformed), 1_006, 1, "agent_closed").build(),
    );
    passes(
        "unusable_frame_keeps_session",
        &invalid.clone().phase(5_000, Phase::Settled).build(),
    );
    let cut = invalid.at(
        1_001,
        EventKind::Fault {
            action: FaultAction::Partition,
            hosts: vec!["agent".into(), "coordinator".into()],
        },
    );
    passes(
        "unusable_frame_keeps_session",
        &closed(cut, 1_004, 1, "agent_closed").build(),
    );
}
