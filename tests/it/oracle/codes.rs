//! `error_code_truthful` on hand-made traces: each code against what the
//! backend's record, the clock, the routes and the frame show, and the
//! races in which more than one code is true.

use super::{caught, passes};
use simctl::trace::handmade::TraceBuilder;
use simctl::trace::{EventKind, FaultAction, JobKind, Phase};

const RULE: &str = "error_code_truthful";

/// Job `j` (deadline 1 s, so due at 1.010 s) whose request reached backend
/// `b1` at 12 ms and ended at `end_ms` with `status` and `end`.
fn ran(status: u16, end_ms: u64, end: &str) -> TraceBuilder {
    TraceBuilder::new().session(0, 1).job(10, "j", 1, 1_000).backend_answer(
        12,
        Some(end_ms),
        "j",
        status,
        b"data: x\n\n",
        end,
    )
}

/// The detail of the violation `trace` holds.
fn detail(trace: TraceBuilder) -> String {
    caught(RULE, &trace.build()).detail
}

// ---- each mapping, broken ----

/// A 401 answered internal is caught: 401 and 403 are the backend's auth rejection.
#[test]
fn catches_an_auth_rejection_called_internal() {
    let why = detail(ran(401, 13, "fault:status").error(14, "j", 1, "internal"));
    assert!(
        why.contains("answered 401: it must be auth_rejected_by_backend"),
        "{why}"
    );
}

/// A 500 answered backend_unreachable is caught: the backend did answer.
#[test]
fn catches_a_bad_status_called_unreachable() {
    let why = detail(ran(500, 13, "fault:status").error(14, "j", 1, "backend_unreachable"));
    assert!(why.contains("answered 500: it must be internal"), "{why}");
}

/// A backend's own 429 called an auth rejection is caught.
#[test]
fn catches_a_busy_backend_called_an_auth_rejection() {
    let why = detail(ran(429, 13, "rejected:429").error(14, "j", 1, "auth_rejected_by_backend"));
    assert!(why.contains("it must be internal"), "{why}");
}

/// A 2xx stream cut mid-way answered backend_unreachable is caught.
#[test]
fn catches_a_cut_called_unreachable() {
    let why = detail(ran(200, 100, "fault:cut").error(101, "j", 1, "backend_unreachable"));
    assert!(why.contains("stopped mid-way: it must be internal"), "{why}");
}

/// A cut answered backend_timeout long before the deadline is caught.
#[test]
fn catches_a_cut_called_a_timeout() {
    let why = detail(ran(200, 100, "fault:cut").error(101, "j", 1, "backend_timeout"));
    assert!(why.contains("909.0 ms before the deadline"), "{why}");
    assert!(why.contains("stopped mid-way: it must be internal"), "{why}");
}

/// A routed job no backend ever saw, answered internal, is caught: a refused connection is backend_unreachable.
#[test]
fn catches_a_refused_connection_called_internal() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 1_000)
        .error(14, "j", 1, "internal");
    let why = detail(trace);
    assert!(
        why.contains("no backend answered its request: it must be backend_unreachable"),
        "{why}"
    );
}

/// A request the backend dropped before its answer head, answered internal, is caught.
#[test]
fn catches_a_dropped_request_called_internal() {
    let why = detail(ran(0, 13, "client_gone").error(14, "j", 1, "internal"));
    assert!(why.contains("it must be backend_unreachable"), "{why}");
}

/// A stream still open well past the deadline, answered internal, is caught.
#[test]
fn catches_a_stream_past_the_deadline_called_internal() {
    let why = detail(ran(200, 1_300, "client_gone").error(1_050, "j", 1, "internal"));
    assert!(
        why.contains("still streaming past the deadline: it must be backend_timeout"),
        "{why}"
    );
}

/// A response the backend completed, answered internal, is caught.
#[test]
fn catches_a_completed_response_called_internal() {
    let why = detail(ran(200, 100, "completed").error(101, "j", 1, "internal"));
    assert!(why.contains("completed its response"), "{why}");
}

/// model_not_loaded for a model the session advertised is caught.
#[test]
fn catches_model_not_loaded_for_a_served_model() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 1_000)
        .error(12, "j", 1, "model_not_loaded");
    assert!(detail(trace).contains("capabilities list model m"));
}

/// model_not_loaded for a job a backend then ran is caught.
#[test]
fn catches_model_not_loaded_with_a_backend_run() {
    let trace = TraceBuilder::new()
        .session_serving(0, 1, &[])
        .job(10, "j", 1, 1_000)
        .error(12, "j", 1, "model_not_loaded")
        .backend(13, Some(50), "j", b"x", "completed");
    assert!(detail(trace).contains("backend b1 ran it"));
}

/// A backend code for a model the session did not advertise is caught: it must be model_not_loaded.
#[test]
fn catches_a_backend_code_for_an_unrouted_model() {
    let trace = TraceBuilder::new()
        .session_serving(0, 1, &["m"])
        .job_for_model(10, "j", 1, 1_000, "other")
        .error(12, "j", 1, "backend_unreachable");
    assert!(detail(trace).contains("it must be model_not_loaded"));
}

/// invalid_job for a well-formed frame is caught.
#[test]
fn catches_invalid_job_for_a_well_formed_frame() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 1_000)
        .error(12, "j", 1, "invalid_job");
    assert!(detail(trace).contains("well-formed"));
}

/// An invalid frame answered with a backend code is caught.
#[test]
fn catches_an_invalid_frame_called_unreachable() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job_of_kind(10, "j", 1, 1_000, JobKind::Invalid)
        .error(12, "j", 1, "backend_unreachable");
    assert!(detail(trace).contains("it must be invalid_job"));
}

/// duplicate_job for a re-send written after the original had ended is caught.
#[test]
fn catches_duplicate_job_with_nothing_in_flight() {
    let trace = served_then_resent(40).error(42, "j", 1, "duplicate_job");
    assert!(detail(trace).contains("no other submission of the id was in flight"));
}

/// A code outside the protocol's vocabulary is caught.
#[test]
fn catches_an_unknown_code() {
    let trace = ran(500, 13, "fault:status").error(14, "j", 1, "oops");
    assert!(detail(trace).contains("not a protocol error code"));
}

// ---- true codes and legitimate races ----

/// Every backend outcome answered with its own code passes.
#[test]
fn passes_each_true_backend_code() {
    let cases = [
        (401, "fault:status", "auth_rejected_by_backend"),
        (403, "fault:status", "auth_rejected_by_backend"),
        (404, "fault:status", "internal"),
        (503, "rejected:503", "internal"),
        (200, "fault:cut", "internal"),
        (200, "fault:backend_stopped", "internal"),
        (0, "client_gone", "backend_unreachable"),
    ];
    for (status, end, code) in cases {
        passes(RULE, &ran(status, 100, end).error(101, "j", 1, code).build());
    }
    let refused = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 1_000)
        .error(14, "j", 1, "backend_unreachable");
    passes(RULE, &refused.build());
}

/// The deadline beating a fault that came just before it passes: the cut reached the agent after its deadline.
#[test]
fn passes_a_deadline_that_beats_a_fault() {
    passes(
        RULE,
        &ran(200, 1_008, "fault:cut")
            .error(1_011, "j", 1, "backend_timeout")
            .build(),
    );
}

/// A fault landing just after the deadline the coordinator counts, answered with its own code, passes: the agent's deadline runs from its later arrival.
#[test]
fn passes_a_fault_that_beats_the_agents_later_deadline() {
    passes(
        RULE,
        &ran(200, 1_011, "fault:cut").error(1_012, "j", 1, "internal").build(),
    );
}

/// backend_timeout after a response the backend completed long before passes: an agent blocked on outbound budget reads it too late.
#[test]
fn passes_a_timeout_after_a_completed_response() {
    let trace = ran(200, 100, "completed")
        .chunk(60, "j", 1, b"data: ")
        .error(1_011, "j", 1, "backend_timeout");
    passes(RULE, &trace.build());
}

/// A cancel that beats a backend fault leaves no code to judge, and a code crossing a cancel is judged as sent.
#[test]
fn passes_a_cancel_that_races_a_fault() {
    let beaten = ran(200, 52, "client_gone").cancel(50, "j", 1);
    passes(RULE, &beaten.build());
    let crossing = ran(200, 60, "fault:cut")
        .cancel(61, "j", 1)
        .error(62, "j", 1, "internal");
    passes(RULE, &crossing.build());
}

/// A session end that cuts a stream leaves no code to judge.
#[test]
fn passes_a_session_end_that_cuts_a_stream() {
    let trace = ran(200, 52, "client_gone").session_closed(50, 1);
    passes(RULE, &trace.build());
}

/// A stream open past the deadline while the agent–backend link was partitioned passes: the backend could not see the agent close it.
#[test]
fn passes_a_stream_a_partition_kept_open() {
    let link = || vec!["agent".to_owned(), "b1".to_owned()];
    let trace = ran(200, 2_100, "client_gone")
        .at(
            20,
            EventKind::Fault {
                action: FaultAction::Partition,
                hosts: link(),
            },
        )
        .error(500, "j", 1, "internal")
        .at(
            2_000,
            EventKind::Fault {
                action: FaultAction::Repair,
                hosts: link(),
            },
        )
        .phase(2_200, Phase::Healed);
    passes(RULE, &trace.build());
}

/// duplicate_job for a re-send written while the original was in flight passes.
#[test]
fn passes_duplicate_job_while_the_original_runs() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .job_of_kind(20, "j", 1, 60_000, JobKind::Duplicate)
        .error(22, "j", 1, "duplicate_job")
        .backend(12, Some(30), "j", b"x", "completed")
        .chunk(31, "j", 1, b"x")
        .done(32, "j", 1);
    passes(RULE, &trace.build());
}

/// invalid_job for an invalid frame and for a deadline outside the agent's policy passes.
#[test]
fn passes_invalid_job_for_invalid_frames() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job_of_kind(10, "a", 1, 1_000, JobKind::Invalid)
        .error(12, "a", 1, "invalid_job")
        .job(20, "b", 1, 0)
        .error(22, "b", 1, "invalid_job")
        .job(30, "c", 1, 3_600_001)
        .error(32, "c", 1, "invalid_job");
    passes(RULE, &trace.build());
}

/// model_not_loaded for a model the session did not advertise passes.
#[test]
fn passes_model_not_loaded_for_an_unserved_model() {
    let trace = TraceBuilder::new()
        .session_serving(0, 1, &["m"])
        .job_for_model(10, "j", 1, 1_000, "M")
        .error(12, "j", 1, "model_not_loaded");
    passes(RULE, &trace.build());
}

/// Job `j` served to job_done by 32 ms, then re-sent at `resend_ms`.
fn served_then_resent(resend_ms: u64) -> TraceBuilder {
    TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(30), "j", b"x", "completed")
        .chunk(31, "j", 1, b"x")
        .done(32, "j", 1)
        .job_of_kind(resend_ms, "j", 1, 60_000, JobKind::Duplicate)
}
