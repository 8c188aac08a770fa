//! Terminal frames against the backend stream behind them: `job_done`
//! needs a completed stream, `tokens_emitted` counts what was relayed.

use super::{caught, passes, served};
use simctl::trace::Terminal;
use simctl::trace::handmade::TraceBuilder;

const TWO_TOKENS: &[u8] = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\
data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n";

fn error_emitting(b: TraceBuilder, at_ms: u64, job: &str, tokens_emitted: u64) -> TraceBuilder {
    let terminal = Terminal::Error {
        code: "internal".into(),
        tokens_emitted,
        bytes_emitted: None,
    };
    b.terminal(at_ms, job, 1, terminal)
}

/// A job_done after the backend cut its stream mid-way is caught, bytes matching or not.
#[test]
fn done_requires_completed_stream_catches_a_cut_reported_as_done() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(11, Some(20), "j", b"data: {}\n", "cut")
        .chunk(15, "j", 1, b"data: {}\n")
        .done(21, "j", 1)
        .build();
    let v = caught("done_requires_completed_stream", &trace);
    assert!(v.detail.contains("ended cut"), "{}", v.detail);
}

/// A job_done with no backend request behind it is caught.
#[test]
fn done_requires_completed_stream_catches_a_done_without_a_request() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .done(21, "j", 1)
        .build();
    let v = caught("done_requires_completed_stream", &trace);
    assert!(v.detail.contains("no backend request"), "{}", v.detail);
}

/// A completed stream, or one cut after its [DONE] line, backs a job_done.
#[test]
fn done_requires_completed_stream_passes_a_completed_stream() {
    passes(
        "done_requires_completed_stream",
        &served(TraceBuilder::new().session(0, 1), "a", 10, b"x").build(),
    );
    let body = b"data: {}\n\ndata: [DONE]\n\n";
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(11, Some(20), "j", body, "client_gone")
        .chunk(15, "j", 1, body)
        .done(21, "j", 1)
        .build();
    passes("done_requires_completed_stream", &trace);
}

/// tokens_emitted reporting the bytes relayed, as the upstream agent does, is caught.
#[test]
fn tokens_emitted_catches_bytes_reported_as_tokens() {
    let b = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(11, Some(20), "j", TWO_TOKENS, "cut")
        .chunk(15, "j", 1, TWO_TOKENS);
    let trace = error_emitting(b, 21, "j", TWO_TOKENS.len() as u64).build();
    let v = caught("tokens_emitted_matches_backend", &trace);
    assert!(v.detail.contains("2 tokens were relayed"), "{}", v.detail);
}

/// tokens_emitted of 0 after two tokens were relayed is caught.
#[test]
fn tokens_emitted_catches_zero_after_streaming() {
    let b = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(11, Some(20), "j", TWO_TOKENS, "cut")
        .chunk(15, "j", 1, TWO_TOKENS);
    caught("tokens_emitted_matches_backend", &error_emitting(b, 21, "j", 0).build());
}

/// The count of relayed tokens passes; so does one the backend wrote but the coordinator never got whole.
#[test]
fn tokens_emitted_passes_the_relayed_count() {
    let b = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(11, Some(20), "j", TWO_TOKENS, "cut")
        .chunk(15, "j", 1, TWO_TOKENS);
    passes("tokens_emitted_matches_backend", &error_emitting(b, 21, "j", 2).build());
    let first_line = &TWO_TOKENS[..TWO_TOKENS.len() / 2 + 3];
    let b = TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(11, Some(20), "j", TWO_TOKENS, "client_gone")
        .chunk(15, "j", 1, first_line);
    for emitted in [1, 2] {
        passes(
            "tokens_emitted_matches_backend",
            &error_emitting(b.clone(), 21, "j", emitted).build(),
        );
    }
    caught("tokens_emitted_matches_backend", &error_emitting(b, 21, "j", 3).build());
}
