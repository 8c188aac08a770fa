//! Byte equality on hand-made traces.

use super::{caught, passes, served};
use simctl::trace::Terminal;
use simctl::trace::handmade::TraceBuilder;

// ---- bytes_match_backend ----

/// Relayed bytes that differ from the backend's are caught.
#[test]
fn bytes_match_backend_catches_altered_bytes() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(20), "j", b"hello", "completed")
        .chunk(15, "j", 1, b"hellO")
        .done(21, "j", 1)
        .build();
    assert!(
        caught("bytes_match_backend", &trace)
            .detail
            .contains("first difference at byte 4")
    );
}

/// A done job that relayed only part of the body is caught.
#[test]
fn bytes_match_backend_catches_a_truncated_done() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(20), "j", b"hello", "completed")
        .chunk(15, "j", 1, b"hell")
        .done(21, "j", 1)
        .build();
    caught("bytes_match_backend", &trace);
}

/// A false bytes_emitted in job_error is caught.
#[test]
fn bytes_match_backend_catches_a_false_bytes_emitted() {
    let terminal = Terminal::Error {
        code: "internal".into(),
        tokens_emitted: 0,
        bytes_emitted: Some(9),
    };
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(20), "j", b"hello", "fault:cut")
        .chunk(15, "j", 1, b"hel")
        .terminal(21, "j", 1, terminal)
        .build();
    assert!(caught("bytes_match_backend", &trace).detail.contains("bytes_emitted"));
}

/// Equal bytes for done, and a prefix for an error, pass.
#[test]
fn bytes_match_backend_passes_equal_and_prefix() {
    let terminal = Terminal::Error {
        code: "internal".into(),
        tokens_emitted: 0,
        bytes_emitted: Some(3),
    };
    let trace = served(TraceBuilder::new().session(0, 1), "a", 10, b"hello")
        .job(10, "b", 1, 60_000)
        .backend(12, Some(20), "b", b"hello", "fault:cut")
        .chunk(15, "b", 1, b"hel")
        .terminal(21, "b", 1, terminal)
        .build();
    passes("bytes_match_backend", &trace);
}
