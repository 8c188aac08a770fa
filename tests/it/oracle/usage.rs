//! `usage_matches_backend` on hand-made traces: job_done's token counts
//! against the usage event of the backend's stream.

use super::{caught, passes};
use simctl::trace::handmade::TraceBuilder;

const WITH_USAGE: &[u8] = b"data: {\"choices\":[{\"delta\":{\"content\":\" a\"}}]}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"total_tokens\":46,\"completion_tokens\":34}}\n\n\
data: [DONE]\n\n";

const WITHOUT_USAGE: &[u8] = b"data: {\"choices\":[{\"delta\":{\"content\":\" a\"}}]}\n\ndata: [DONE]\n\n";

/// A job served from `body`, ending `end` at the backend, answered with
/// job_done reporting `tokens`.
fn served(body: &[u8], end: &str, tokens: (u64, u64)) -> TraceBuilder {
    TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(40), "j", body, end)
        .chunk(30, "j", 1, body)
        .done_with_tokens(42, "j", 1, tokens.0, tokens.1)
}

/// One output token too many is caught, naming both counts.
#[test]
fn catches_a_wrong_output_count() {
    let v = caught(
        "usage_matches_backend",
        &served(WITH_USAGE, "completed", (12, 35)).build(),
    );
    assert!(v.detail.contains("12 input / 35 output"), "{}", v.detail);
    assert!(v.detail.contains("said 12 / 34"), "{}", v.detail);
}

/// Tokens reported for a stream that sent no usage are caught: the agent must report 0.
#[test]
fn catches_tokens_invented_without_usage() {
    caught(
        "usage_matches_backend",
        &served(WITHOUT_USAGE, "completed", (0, 1)).build(),
    );
}

/// The backend's counts, and 0 / 0 for a stream without usage, pass.
#[test]
fn passes_the_backends_counts() {
    passes(
        "usage_matches_backend",
        &served(WITH_USAGE, "completed", (12, 34)).build(),
    );
    passes(
        "usage_matches_backend",
        &served(WITHOUT_USAGE, "completed", (0, 0)).build(),
    );
}

/// A stream that did not complete at the backend is not judged.
#[test]
fn passes_an_incomplete_stream() {
    passes(
        "usage_matches_backend",
        &served(WITH_USAGE, "client_gone", (0, 0)).build(),
    );
}
