//! Heartbeat figures against the terminal frames the coordinator read, and
//! `job_done.duration_ms` against the time the coordinator saw.

use super::{caught, passes};
use simctl::trace::handmade::TraceBuilder;
use simctl::trace::{HeartbeatFigures, Terminal};

fn done_after(b: TraceBuilder, sent_ms: u64, job: &str, duration_ms: u64) -> TraceBuilder {
    let body = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n";
    let terminal = Terminal::Done {
        tokens_in: 0,
        tokens_out: 1,
        duration_ms,
    };
    b.job(sent_ms, job, 1, 60_000)
        .backend(sent_ms + 1, Some(sent_ms + duration_ms), job, body, "completed")
        .chunk(sent_ms + 2, job, 1, body)
        .terminal(sent_ms + duration_ms + 1, job, 1, terminal)
}

/// Three jobs of 100, 200 and 300 ms, one internal error, all read by 2 s.
fn history() -> TraceBuilder {
    let mut b = TraceBuilder::new().session(0, 1);
    for (index, duration_ms) in [100, 200, 300].into_iter().enumerate() {
        b = done_after(b, 10 + 400 * index as u64, &format!("j{index}"), duration_ms);
    }
    b.job(1_500, "e", 1, 60_000)
        .backend_answer(1_501, Some(1_502), "e", 500, b"{}", "completed")
        .error(1_503, "e", 1, "internal")
}

/// The truthful figures, for a heartbeat read at 3 s.
fn truthful() -> HeartbeatFigures {
    HeartbeatFigures {
        tokens_per_sec_p50: Some(5.0),
        p50_latency_ms: Some(200.0),
        p95_latency_ms: Some(300.0),
        error_rate_60s: Some(0.25),
        last_error_code: Some("internal".into()),
    }
}

/// Figures that match what the coordinator read pass.
#[test]
fn heartbeat_figures_pass_when_truthful() {
    passes(
        "heartbeat_figures_truthful",
        &history().heartbeat_figures(3_000, 1, 0, truthful()).build(),
    );
}

/// The seed's zeros (latency, tokens/s and error rate all 0) are caught.
#[test]
fn heartbeat_figures_catch_the_zeros() {
    let zeros = HeartbeatFigures {
        tokens_per_sec_p50: Some(0.0),
        p50_latency_ms: Some(0.0),
        p95_latency_ms: Some(0.0),
        error_rate_60s: Some(0.0),
        last_error_code: None,
    };
    let trace = history().heartbeat_figures(3_000, 1, 0, zeros).build();
    let found = super::check("heartbeat_figures_truthful", &trace);
    assert_eq!(found.len(), 5, "{found:?}");
}

/// A wrong last error code, and an error rate that leaves out failures, are caught.
#[test]
fn heartbeat_figures_catch_a_wrong_code_and_rate() {
    let wrong = HeartbeatFigures {
        last_error_code: Some("backend_timeout".into()),
        ..truthful()
    };
    let v = caught(
        "heartbeat_figures_truthful",
        &history().heartbeat_figures(3_000, 1, 0, wrong).build(),
    );
    assert!(v.detail.contains("last_error_code backend_timeout"), "{}", v.detail);
    let rate = HeartbeatFigures {
        error_rate_60s: Some(0.5),
        ..truthful()
    };
    caught(
        "heartbeat_figures_truthful",
        &history().heartbeat_figures(3_000, 1, 0, rate).build(),
    );
}

/// Admission rejections are errors the coordinator observed: an error rate
/// and last error code that leave them out are caught, the truth passes.
#[test]
fn heartbeat_figures_count_rejections() {
    let with_rejection = || {
        history()
            .job(1_600, "r", 1, 60_000)
            .error(1_602, "r", 1, "out_of_capacity")
    };
    let truth = HeartbeatFigures {
        error_rate_60s: Some(0.4),
        last_error_code: Some("out_of_capacity".into()),
        ..truthful()
    };
    passes(
        "heartbeat_figures_truthful",
        &with_rejection().heartbeat_figures(3_000, 1, 0, truth).build(),
    );
    let found = super::check(
        "heartbeat_figures_truthful",
        &with_rejection().heartbeat_figures(3_000, 1, 0, truthful()).build(),
    );
    assert_eq!(found.len(), 2, "error rate and last error code: {found:?}");
}

/// A terminal read just before the heartbeat may or may not be in its window: both figures pass.
#[test]
fn heartbeat_figures_allow_an_edge_terminal_either_way() {
    let b = TraceBuilder::new().session(0, 1);
    let b = done_after(b, 10, "a", 100);
    let b = done_after(b, 500, "b", 200);
    // With b: latencies [100, 200], rates [10, 5]; without: [100], [10].
    for (p95, rate) in [(200.0, 5.0), (100.0, 10.0)] {
        let figures = HeartbeatFigures {
            tokens_per_sec_p50: Some(rate),
            p50_latency_ms: Some(100.0),
            p95_latency_ms: Some(p95),
            error_rate_60s: Some(0.0),
            last_error_code: None,
        };
        passes(
            "heartbeat_figures_truthful",
            &b.clone().heartbeat_figures(750, 1, 0, figures).build(),
        );
    }
}

/// Entries older than 60 s leave the window: figures computed over them are caught.
#[test]
fn heartbeat_figures_forget_after_the_window() {
    let stale = HeartbeatFigures {
        error_rate_60s: Some(0.25),
        ..truthful()
    };
    let trace = history().heartbeat_figures(70_000, 1, 0, stale).build();
    let found = super::check("heartbeat_figures_truthful", &trace);
    assert_eq!(found.len(), 4, "latencies, rate and error rate: {found:?}");
    let fresh = HeartbeatFigures {
        tokens_per_sec_p50: Some(0.0),
        p50_latency_ms: Some(0.0),
        p95_latency_ms: Some(0.0),
        error_rate_60s: Some(0.0),
        last_error_code: Some("internal".into()),
    };
    passes(
        "heartbeat_figures_truthful",
        &history().heartbeat_figures(70_000, 1, 0, fresh).build(),
    );
}

/// A duration_ms of 0, or longer than the coordinator saw, is caught; the truth passes.
#[test]
fn done_duration_catches_an_untrue_duration() {
    let job = |duration_ms| {
        let terminal = Terminal::Done {
            tokens_in: 0,
            tokens_out: 0,
            duration_ms,
        };
        TraceBuilder::new()
            .session(0, 1)
            .job(10, "j", 1, 60_000)
            .backend(11, Some(310), "j", b"x", "completed")
            .chunk(300, "j", 1, b"x")
            .terminal(311, "j", 1, terminal)
            .build()
    };
    let v = caught("done_duration_truthful", &job(0));
    assert!(v.detail.contains("duration_ms 0"), "{}", v.detail);
    caught("done_duration_truthful", &job(400));
    passes("done_duration_truthful", &job(300));
}

/// One job of 100 ms whose `job_done` says 1 output token while 3 content
/// events were relayed: its rate may be 10/s or 30/s.
fn relayed_more_than_reported(tokens_per_sec_p50: f64) -> simctl::trace::Trace {
    let body = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n".repeat(3);
    let terminal = Terminal::Done {
        tokens_in: 0,
        tokens_out: 1,
        duration_ms: 100,
    };
    let figures = HeartbeatFigures {
        tokens_per_sec_p50: Some(tokens_per_sec_p50),
        p50_latency_ms: Some(100.0),
        p95_latency_ms: Some(100.0),
        error_rate_60s: Some(0.0),
        last_error_code: None,
    };
    TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(11, Some(110), "j", &body, "completed")
        .chunk(12, "j", 1, &body)
        .terminal(111, "j", 1, terminal)
        .heartbeat_figures(1_000, 1, 0, figures)
        .build()
}

/// A tokens/s figure built from the relayed tokens passes: the rule's
/// first pass (the job_done's own count only) disagrees, and its second,
/// counting the relayed events, decides.
#[test]
fn heartbeat_rate_from_relayed_tokens_passes() {
    passes("heartbeat_figures_truthful", &relayed_more_than_reported(30.0));
    passes("heartbeat_figures_truthful", &relayed_more_than_reported(10.0));
}

/// A tokens/s figure outside both counts is caught once, with the range
/// the relayed tokens allow.
#[test]
fn heartbeat_rate_beyond_relayed_tokens_is_caught_with_their_range() {
    let found = super::check("heartbeat_figures_truthful", &relayed_more_than_reported(50.0));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].detail.contains("allow 10..=30"), "{found:?}");
}
