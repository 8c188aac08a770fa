//! Liveness and host rules on hand-made traces, and the whole oracle on a clean trace.

use simctl::oracle::{RULES, judge};
use std::collections::BTreeSet;

use super::{caught, config, passes, served};
use simctl::trace::handmade::TraceBuilder;
use simctl::trace::{EventKind, FaultAction, Phase, Trace};

// ---- reconnects_after_disruption ----

/// No session after a disconnect is caught.
#[test]
fn reconnects_catches_an_agent_that_stays_away() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .session_closed(1_000, 1)
        .phase(10_000, Phase::Settled)
        .build();
    assert!(
        caught("reconnects_after_disruption", &trace)
            .detail
            .contains("conn 1 closing")
    );
}

/// No session at all from the start is caught.
#[test]
fn reconnects_catches_an_agent_that_never_connects() {
    let trace = TraceBuilder::new().phase(10_000, Phase::Settled).build();
    assert!(
        caught("reconnects_after_disruption", &trace)
            .detail
            .contains("start of the run")
    );
}

/// A session that is sent jobs and answers none is caught.
#[test]
fn reconnects_catches_a_session_that_serves_nothing() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .phase(10_000, Phase::Settled)
        .build();
    assert!(
        caught("reconnects_after_disruption", &trace)
            .detail
            .contains("answered none")
    );
}

/// Reconnecting after a partition heals, and serving there, passes.
#[test]
fn reconnects_passes_a_reconnect_after_a_partition() {
    let hosts = vec!["agent".to_owned(), "coordinator".to_owned()];
    let trace = TraceBuilder::new()
        .session(0, 1)
        .at(
            1_000,
            EventKind::Fault {
                action: FaultAction::Partition,
                hosts: hosts.clone(),
            },
        )
        .at(
            3_000,
            EventKind::Fault {
                action: FaultAction::Repair,
                hosts,
            },
        )
        .session_closed(4_000, 1)
        .session(6_000, 2)
        .job(7_000, "j", 2, 60_000)
        .done(7_100, "j", 2)
        .phase(20_000, Phase::Settled)
        .build();
    passes("reconnects_after_disruption", &trace);
}

/// A partition of the agent–coordinator link that heals at 3 s; the agent
/// is back on conn 2 at 6 s and answers two jobs there with `second`.
fn back_after_a_partition(second: &str) -> TraceBuilder {
    let hosts = vec!["agent".to_owned(), "coordinator".to_owned()];
    let b = TraceBuilder::new()
        .session(0, 1)
        .at(
            1_000,
            EventKind::Fault {
                action: FaultAction::Partition,
                hosts: hosts.clone(),
            },
        )
        .at(
            3_000,
            EventKind::Fault {
                action: FaultAction::Repair,
                hosts,
            },
        )
        .session_closed(4_000, 1)
        .session(6_000, 2)
        .job(7_000, "a", 2, 60_000)
        .error(7_100, "a", 2, "backend_unreachable")
        .job(7_500, "b", 2, 60_000);
    let b = if second == "done" {
        b.done(7_600, "b", 2)
    } else {
        b.error(7_600, "b", 2, second)
    };
    b.phase(20_000, Phase::Settled)
}

/// An agent that reconnects after a partition but completes none of the jobs it answers is caught.
#[test]
fn reconnects_catches_an_agent_that_completes_nothing_after_a_heal() {
    let found = caught(
        "reconnects_after_disruption",
        &back_after_a_partition("internal").build(),
    );
    assert!(found.detail.contains("completed none"), "{}", found.detail);
    assert!(found.detail.contains("partition agent/coordinator"), "{}", found.detail);
}

/// One job completed after the heal passes, whatever else failed.
#[test]
fn reconnects_passes_an_agent_that_completes_a_job_after_a_heal() {
    passes("reconnects_after_disruption", &back_after_a_partition("done").build());
}

/// A backend crash and restart; jobs sent on conn 1 after the restart end
/// with `second` (and one before the crash completes).
fn back_after_a_backend_crash(second: &str) -> TraceBuilder {
    let host = vec!["b1".to_owned()];
    let b = TraceBuilder::new()
        .session(0, 1)
        .job(100, "a", 1, 60_000)
        .done(300, "a", 1)
        .at(
            1_000,
            EventKind::Fault {
                action: FaultAction::Crash,
                hosts: host.clone(),
            },
        )
        .at(
            2_000,
            EventKind::Fault {
                action: FaultAction::Restart,
                hosts: host,
            },
        )
        .job(2_500, "b", 1, 60_000)
        .error(2_510, "b", 1, "backend_unreachable")
        .job(3_000, "c", 1, 60_000);
    let b = if second == "done" {
        b.done(3_200, "c", 1)
    } else {
        b.error(3_010, "c", 1, second)
    };
    b.phase(10_000, Phase::Settled)
}

/// An agent that never completes a job again after a backend restarts is caught.
#[test]
fn reconnects_catches_an_agent_that_never_uses_a_restarted_backend() {
    let found = caught(
        "reconnects_after_disruption",
        &back_after_a_backend_crash("backend_unreachable").build(),
    );
    assert!(found.detail.contains("after crash b1 healed"), "{}", found.detail);
}

/// Completing a job once the backend is back passes.
#[test]
fn reconnects_passes_an_agent_that_serves_after_a_backend_restart() {
    passes(
        "reconnects_after_disruption",
        &back_after_a_backend_crash("done").build(),
    );
}

/// Jobs cut short by the next disruption are not held against the window before it.
#[test]
fn reconnects_does_not_judge_jobs_cut_by_the_next_disruption() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .session_closed(1_000, 1)
        .session(2_000, 2)
        .job(2_500, "a", 2, 60_000)
        .session_closed(3_000, 2)
        .session(4_000, 3)
        .job(4_500, "b", 3, 60_000)
        .done(4_700, "b", 3)
        .phase(10_000, Phase::Settled)
        .build();
    passes("reconnects_after_disruption", &trace);
}

/// A backend crash at 1 s with job `s` stuck on it until `s_ends_ms`, the
/// restart at 2 s, job `x` turned away for capacity at 3 s, and the next
/// disruption (a hold of the backend link) at 4 s; `z` streams if asked.
fn slots_held_through_the_window(s_ends_ms: u64, z_streams: bool) -> Trace {
    let host = vec!["b1".to_owned()];
    let link = vec!["agent".to_owned(), "b1".to_owned()];
    let fault = |action, hosts: &Vec<String>| EventKind::Fault {
        action,
        hosts: hosts.clone(),
    };
    let b = TraceBuilder::new()
        .session(0, 1)
        .job(500, "s", 1, 60_000)
        .at(1_000, fault(FaultAction::Crash, &host))
        .at(2_000, fault(FaultAction::Restart, &host))
        .job(3_000, "x", 1, 60_000)
        .error(3_010, "x", 1, "out_of_capacity")
        .job(3_100, "z", 1, 60_000);
    let b = if z_streams {
        b.chunk(3_300, "z", 1, b"data: {}")
    } else {
        b
    };
    b.at(4_000, fault(FaultAction::Hold, &link))
        .at(4_500, fault(FaultAction::Release, &link))
        .error(s_ends_ms, "s", 1, "backend_timeout")
        .done(6_000, "z", 1)
        .phase(10_000, Phase::Settled)
        .build()
}

/// Slots still held at the heal by a job stuck on the dead backend open the window only when it ends.
#[test]
fn reconnects_waits_for_slots_held_by_jobs_stuck_on_a_dead_backend() {
    passes(
        "reconnects_after_disruption",
        &slots_held_through_the_window(5_000, false),
    );
}

/// Once the stuck job has ended, an agent that still turns every job away is caught.
#[test]
fn reconnects_catches_capacity_refused_after_the_slots_are_free() {
    let found = caught(
        "reconnects_after_disruption",
        &slots_held_through_the_window(2_500, false),
    );
    assert!(found.detail.contains("out_of_capacity"), "{}", found.detail);
}

/// A job admitted after the heal that streams before the next disruption shows the agent serves.
#[test]
fn reconnects_counts_a_streaming_job_as_serving() {
    passes(
        "reconnects_after_disruption",
        &slots_held_through_the_window(2_500, true),
    );
}

/// A session whose only job was cancelled before any frame of it arrived is not held to answer it.
#[test]
fn reconnects_does_not_require_an_answer_to_a_job_cancelled_before_any_frame() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .cancel(20, "j", 1)
        .phase(10_000, Phase::Settled)
        .build();
    passes("reconnects_after_disruption", &trace);
}

// ---- hosts_stay_up ----

/// A host that stopped by itself is caught.
#[test]
fn hosts_stay_up_catches_a_dead_host() {
    let trace = TraceBuilder::new()
        .at(
            10,
            EventKind::HostStopped {
                host: "agent".into(),
                error: Some("boom".into()),
            },
        )
        .build();
    assert!(caught("hosts_stay_up", &trace).detail.contains("boom"));
}

/// A trace without stops passes.
#[test]
fn hosts_stay_up_passes_a_quiet_trace() {
    passes("hosts_stay_up", &TraceBuilder::new().session(0, 1).build());
}

// ---- coordinator_protocol ----

/// A violation flagged by the mock coordinator is reported.
#[test]
fn coordinator_protocol_reports_the_coordinators_flags() {
    let flag = EventKind::CoordinatorFlagged {
        conn: 1,
        kind: "bad_base64".into(),
        job: Some("j".into()),
        what: "not base64".into(),
    };
    let v = caught("coordinator_protocol", &TraceBuilder::new().at(10, flag).build());
    assert_eq!(
        (v.job.as_deref(), v.detail.as_str()),
        (Some("j"), "bad_base64: not base64")
    );
}

/// Without flags the rule passes.
#[test]
fn coordinator_protocol_passes_without_flags() {
    passes("coordinator_protocol", &TraceBuilder::new().session(0, 1).build());
}

// ---- records_complete ----

/// Records dropped at a bound make the trace incomplete, and the run fails.
#[test]
fn records_complete_catches_dropped_records() {
    let dropped = EventKind::RecordsDropped {
        source: "agent events".into(),
        count: 3,
    };
    let v = caught("records_complete", &TraceBuilder::new().at(10, dropped).build());
    assert!(v.detail.contains("3 agent events dropped"), "{}", v.detail);
}

/// A complete trace passes.
#[test]
fn records_complete_passes_a_complete_trace() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .at(0, EventKind::AgentSessionStarted { session: 1 })
        .build();
    passes("records_complete", &trace);
}

/// An agent whose observer reports nothing the rules read fails records_complete.
#[test]
fn records_complete_catches_a_silent_observer() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(11, Some(20), "j", b"x", "completed")
        .chunk(15, "j", 1, b"x")
        .done(21, "j", 1)
        .build();
    let found = super::check("records_complete", &trace);
    let details: Vec<&str> = found.iter().map(|v| v.detail.as_str()).collect();
    assert_eq!(found.len(), 3, "{details:?}");
    assert!(details[0].contains("1 session(s) reach steady state"), "{details:?}");
    assert!(details[1].contains("1 job submission(s) answered"), "{details:?}");
    assert!(details[2].contains("1 chunk(s) relayed"), "{details:?}");
}

// ---- the whole oracle ----

/// A realistic clean trace passes every rule at once.
#[test]
fn a_clean_trace_passes_every_rule() {
    let mut b = TraceBuilder::new()
        .session(0, 1)
        .at(0, EventKind::AgentSessionStarted { session: 1 })
        .at(110, EventKind::AgentOutboundQueued { bytes: 5, frames: 1 });
    b = served(b, "a", 100, b"first");
    b = served(b, "b", 600, b"second");
    for at in [1_000, 2_000, 3_000] {
        b = b.heartbeat(at, 1, 0);
    }
    let trace = b.phase(3_000, Phase::Settled).build();
    let verdict = judge(&trace, &config(), &BTreeSet::new());
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    assert_eq!(verdict.checked.len(), RULES.len());
}

/// The derived reconnection bound follows the backoff schedule: a short partition allows one capped step, not the flat worst case.
#[test]
fn reconnects_derives_its_bound_from_the_backoff_schedule() {
    let hosts = vec!["agent".to_owned(), "coordinator".to_owned()];
    let trace_ready_at = |ready_ms: u64| {
        TraceBuilder::new()
            .session(0, 1)
            .at(
                1_000,
                EventKind::Fault {
                    action: FaultAction::Partition,
                    hosts: hosts.clone(),
                },
            )
            .at(
                3_000,
                EventKind::Fault {
                    action: FaultAction::Repair,
                    hosts: hosts.clone(),
                },
            )
            .session_closed(3_500, 1)
            .session(ready_ms, 2)
            .job(ready_ms + 100, "j", 2, 60_000)
            .done(ready_ms + 200, "j", 2)
            .phase(60_000, Phase::Settled)
            .build()
    };
    let mut config = config();
    config.bounds.reconnect_within_ms = 50_000;
    config.reconnect = Some(simctl::oracle::backoff::ReconnectSchedule {
        idle_timeout_ms: 2_000,
        backoff_initial_ms: 1_000,
        backoff_max_ms: 4_000,
        attempt_wedged_ms: 1_000,
        attempt_ms: 100,
        discovery_stall_ms: 0,
        round_trip_ms: 10,
    });
    // From the partition at 1 s to the heal at 3 s, two sleeps can have
    // begun (0.8 s, then 1.6 s): wedge 1 s + 1.2 × 2 s + 100 ms after 3 s.
    let bound_ms = 3_000 + 1_000 + 2_400 + 100;
    let judged = |ready_ms| {
        let verdict = judge(&trace_ready_at(ready_ms), &config, &BTreeSet::new());
        verdict
            .violations
            .into_iter()
            .filter(|v| v.rule == "reconnects_after_disruption")
            .count()
    };
    assert_eq!(judged(bound_ms - 10), 0);
    assert!(
        judged(bound_ms + 10) > 0,
        "a reconnect past the derived bound is caught"
    );
}
