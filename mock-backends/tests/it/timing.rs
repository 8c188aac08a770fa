//! Timing under paused tokio time, over in-memory pipes so that time only
//! advances when client and server are both idle (see README, "Testing").

use std::time::Duration;

use serde_json::json;

use crate::support::{Client, Piece, backend, chat, model, read_pieces, sse_events, tokio_clock, writes};

/// Write times relative to `start`, in milliseconds, with the events in each.
fn shape(pieces: &[Piece], start: u64) -> Vec<(u64, usize)> {
    writes(pieces)
        .iter()
        .map(|w| ((w.at_us - start) / 1000, sse_events(&w.bytes).len()))
        .collect()
}

/// First token after `ttft_ms`, then one token every `inter_token_ms`.
#[tokio::test(start_paused = true)]
async fn ttft_and_inter_token_follow_the_profile() {
    let (backend, recorder) = backend(&model("ttft_ms = 200\ninter_token_ms = 50\noutput_tokens = 4"), 0);
    let clock = tokio_clock();
    let mut client = Client::pipe(&backend).await;
    let start = clock();
    let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
    assert_eq!(clock(), start, "the 200 head is sent at once");
    let (pieces, error) = read_pieces(response, &clock).await;
    assert!(error.is_none());
    // role + t1 at 200 ms; t2, t3; t4 + finish + usage + [DONE] at 350 ms.
    assert_eq!(shape(&pieces, start), vec![(200, 2), (250, 1), (300, 1), (350, 4)]);
    let record = &recorder.records()[0];
    let admitted = record.admitted_us.unwrap();
    assert_eq!(record.first_byte_us.unwrap() - admitted, 200_000);
    assert_eq!(record.end_us.unwrap() - admitted, 350_000);
}

/// Grouped events are written when the last token of the group is ready.
#[tokio::test(start_paused = true)]
async fn grouped_writes_wait_for_their_last_token() {
    let keys = "ttft_ms = 100\ninter_token_ms = 10\noutput_tokens = 5\ntokens_per_event = 2\nevents_per_write = 3";
    let (backend, _) = backend(&model(keys), 0);
    let clock = tokio_clock();
    let mut client = Client::pipe(&backend).await;
    let start = clock();
    let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
    let (pieces, _) = read_pieces(response, &clock).await;
    // [role, t1t2, t3t4] when t4 is ready (130 ms); [t5, finish, usage] and [DONE] at 140 ms.
    assert_eq!(shape(&pieces, start), vec![(130, 3), (140, 4)]);
}

/// Jitter stays within its bounds, and the same seed repeats the same timing.
#[tokio::test(start_paused = true)]
async fn jitter_is_bounded_and_seeded() {
    let keys = "ttft_ms = 100\nttft_jitter_ms = 20\ninter_token_ms = 10\ninter_token_jitter_ms = 5\noutput_tokens = 30";
    let mut runs = Vec::new();
    for seed in [4, 4, 5] {
        let (backend, _) = backend(&model(keys), seed);
        let clock = tokio_clock();
        let mut client = Client::pipe(&backend).await;
        let start = clock();
        let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
        let (pieces, _) = read_pieces(response, &clock).await;
        let times: Vec<u64> = writes(&pieces).iter().map(|w| w.at_us - start).collect();
        assert!((80_000..=120_000).contains(&times[0]), "ttft {}", times[0]);
        for pair in times.windows(2) {
            assert!((5_000..=15_000).contains(&(pair[1] - pair[0])), "gap {pair:?}");
        }
        runs.push(times);
    }
    assert_eq!(runs[0], runs[1]);
    assert_ne!(runs[0], runs[2]);
}

/// A whole completion is answered after ttft plus every gap.
#[tokio::test(start_paused = true)]
async fn whole_completion_waits_for_all_tokens() {
    let (backend, _) = backend(&model("ttft_ms = 100\ninter_token_ms = 20\noutput_tokens = 6"), 0);
    let clock = tokio_clock();
    let mut client = Client::pipe(&backend).await;
    let start = clock();
    let response = client.post("/v1/chat/completions", &chat("m", false, json!({}))).await;
    assert_eq!(clock() - start, 200_000);
    assert_eq!(response.status(), 200);
}

/// Health waits `health.delay_ms` and says "loading" until `ready_after_ms`.
#[tokio::test(start_paused = true)]
async fn health_delay_and_loading() {
    let profile = format!("[health]\ndelay_ms = 30\nready_after_ms = 100\n{}", model(""));
    let (backend, recorder) = backend(&profile, 0);
    let clock = tokio_clock();
    let mut client = Client::pipe(&backend).await;
    let (status, body) = client.get("/health").await;
    assert_eq!((status, clock()), (503, 30_000));
    assert!(String::from_utf8_lossy(&body).contains("Loading model"));
    tokio::time::sleep(Duration::from_millis(70)).await;
    assert_eq!(client.get("/health").await.0, 200);
    assert_eq!(clock(), 130_000);
    assert_eq!(recorder.records()[1].end_us, Some(130_000));
}
