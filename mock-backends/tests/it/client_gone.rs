//! A client that leaves is noticed promptly, whatever the server was doing,
//! and `end_us` is the time it left.

use std::time::Duration;

use http_body_util::BodyExt;
use mock_backends::RequestEnd;
use serde_json::json;

use crate::support::{Client, backend, chat, ended, model, settle, tcp_server, tokio_clock};

/// Leaving between two tokens ends the record at once, with the bytes sent so far.
#[tokio::test(start_paused = true)]
async fn gone_mid_stream_is_recorded_when_it_happens() {
    let (backend, recorder) = backend(&model("ttft_ms = 10\ninter_token_ms = 100\noutput_tokens = 50"), 0);
    let clock = tokio_clock();
    let mut client = Client::pipe(&backend).await;
    let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
    let mut body = response.into_body();
    let mut received = Vec::new();
    for _ in 0..3 {
        let frame = body.frame().await.unwrap().unwrap();
        received.extend_from_slice(&frame.into_data().unwrap());
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let left_at = clock();
    drop(body);
    client.disconnect().await;
    settle().await;
    let record = recorder.records()[0].clone();
    assert_eq!(record.end, Some(RequestEnd::ClientGone));
    assert_eq!(record.end_us, Some(left_at));
    assert_eq!(record.body, received);
    assert_eq!(record.tokens_written, 2, "role + t1 at ttft, then t2");
    assert_eq!(backend.active_streams(), 0, "the slot is free again");
}

/// Leaving while waiting for the first token is noticed at once.
#[tokio::test(start_paused = true)]
async fn gone_during_ttft() {
    let (backend, recorder) = backend(&model("ttft_ms = 10000"), 0);
    let clock = tokio_clock();
    let mut client = Client::pipe(&backend).await;
    let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(response);
    client.disconnect().await;
    settle().await;
    let record = recorder.records()[0].clone();
    assert_eq!(record.end, Some(RequestEnd::ClientGone));
    assert_eq!(record.end_us, Some(1_000_000));
    assert_eq!(record.first_byte_us, None);
    assert_eq!(clock(), 1_000_000);
}

/// Leaving while queued frees the queue place and never takes a slot.
#[tokio::test(start_paused = true)]
async fn gone_while_queued_frees_its_place() {
    let profile = format!("max_num_seqs = 1\nqueue_depth_max = 1\n{}", model("ttft_ms = 60000"));
    let (backend, recorder) = backend(&profile, 0);
    let mut running = Client::pipe(&backend).await;
    let _first = running.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
    let mut queued = Client::pipe(&backend).await;
    let second = queued.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
    assert_eq!(second.status(), 200, "a queued stream already has its head");
    assert_eq!(backend.queued_requests(), 1);
    drop(second);
    queued.disconnect().await;
    settle().await;
    let record = recorder.records()[1].clone();
    assert_eq!(record.end, Some(RequestEnd::ClientGone));
    assert_eq!(record.admitted_us, None);
    assert_eq!(backend.queued_requests(), 0);
    let mut third = Client::pipe(&backend).await;
    let response = third.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
    assert_eq!(response.status(), 200, "the freed place takes a new request");
}

/// Leaving while a whole completion is generating ends the record at once.
#[tokio::test(start_paused = true)]
async fn gone_during_whole_completion() {
    let (backend, recorder) = backend(&model("ttft_ms = 5000"), 0);
    let mut client = Client::pipe(&backend).await;
    let request = crate::support::post_request("/v1/chat/completions", &chat("m", false, json!({})));
    let waiting = tokio::spawn(async move { client.send(request).await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_secs(1)).await;
    waiting.abort();
    settle().await;
    let record = recorder.records()[0].clone();
    assert_eq!(record.end, Some(RequestEnd::ClientGone));
    assert_eq!(record.end_us, Some(1_000_000));
}

/// Over real TCP a dropped connection mid-stream is recorded as `ClientGone`.
#[tokio::test]
async fn gone_over_tcp_is_noticed() {
    let server = tcp_server(&model("ttft_ms = 1\ninter_token_ms = 20\noutput_tokens = 1000"), 0).await;
    let mut client = Client::tcp(server.addr).await;
    let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
    let mut body = response.into_body();
    for _ in 0..3 {
        body.frame().await.unwrap().unwrap();
    }
    drop(body);
    client.disconnect().await;
    let record = ended(&server.recorder, 0).await;
    assert_eq!(record.end, Some(RequestEnd::ClientGone));
    assert!(record.tokens_written < 1000);
    assert_eq!(server.backend.active_streams(), 0, "the slot is free again");
}
