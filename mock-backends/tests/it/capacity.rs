//! `max_num_seqs`, the queue and the reject policies, checked from the records.

use mock_backends::{RequestEnd, RequestRecord};
use serde_json::json;

use crate::support::{Client, backend, body_bytes, chat, model};

/// Streams generating at once over time, from `admitted_us..end_us`.
fn concurrency_max(records: &[RequestRecord]) -> usize {
    let mut edges: Vec<(u64, i32)> = Vec::new();
    for record in records {
        if let (Some(start), Some(end)) = (record.admitted_us, record.end_us) {
            edges.push((start, 1));
            edges.push((end, -1));
        }
    }
    // At equal times a slot is freed before it is taken again.
    edges.sort();
    let mut now = 0i32;
    let mut max = 0i32;
    for (_, delta) in edges {
        now += delta;
        max = max.max(now);
    }
    max as usize
}

/// Runs `count` streams at once, each on its own connection, to the end.
async fn run_streams(backend: &std::sync::Arc<mock_backends::MockBackend>, count: usize) -> Vec<u16> {
    let mut tasks = Vec::new();
    for _ in 0..count {
        let backend = backend.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::pipe(&backend).await;
            let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
            let status = response.status().as_u16();
            body_bytes(response).await;
            status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

/// At most `max_num_seqs` streams generate at once; the rest wait in FIFO order.
#[tokio::test(start_paused = true)]
async fn max_num_seqs_bounds_concurrency() {
    let profile = format!(
        "max_num_seqs = 3\n{}",
        model("ttft_ms = 50\ninter_token_ms = 10\noutput_tokens = 5")
    );
    let (backend, recorder) = backend(&profile, 0);
    let statuses = run_streams(&backend, 8).await;
    assert!(statuses.iter().all(|&s| s == 200));
    let records = recorder.records();
    assert_eq!(concurrency_max(&records), 3);
    let admitted: Vec<u64> = records.iter().map(|r| r.admitted_us.unwrap()).collect();
    assert!(admitted.windows(2).all(|w| w[0] <= w[1]), "FIFO: {admitted:?}");
    let ends: Vec<u64> = records.iter().map(|r| r.end_us.unwrap()).collect();
    for record in &records[3..] {
        assert!(
            ends.contains(&record.admitted_us.unwrap()),
            "a queued stream starts when a slot frees"
        );
    }
    assert!(records.iter().all(|r| r.end == Some(RequestEnd::Completed)));
}

/// `reject_429` and `reject_503` answer at once when every slot is busy.
#[tokio::test(start_paused = true)]
async fn reject_policies() {
    for (policy, status) in [("reject_429", 429), ("reject_503", 503)] {
        let profile = format!("max_num_seqs = 1\noverflow = \"{policy}\"\n{}", model("ttft_ms = 1000"));
        let (backend, recorder) = backend(&profile, 0);
        let mut first = Client::pipe(&backend).await;
        let _busy = first.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
        let mut second = Client::pipe(&backend).await;
        let response = second.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
        assert_eq!(response.status(), status);
        let error: serde_json::Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
        assert_eq!(error["error"]["code"], status);
        assert_eq!(recorder.records()[1].end, Some(RequestEnd::Rejected(status)));
    }
}

/// With `overflow = "queue"`, a request beyond `queue_depth_max` is answered 503.
#[tokio::test(start_paused = true)]
async fn full_queue_answers_503() {
    let profile = format!("max_num_seqs = 1\nqueue_depth_max = 1\n{}", model("ttft_ms = 1000"));
    let (backend, recorder) = backend(&profile, 0);
    let mut clients = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let mut client = Client::pipe(&backend).await;
        let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
        statuses.push(response.status().as_u16());
        clients.push((client, response));
    }
    assert_eq!(statuses, vec![200, 200, 503]);
    assert_eq!(recorder.records()[2].end, Some(RequestEnd::Rejected(503)));
}

/// Hundreds of concurrent streams through one backend all complete within the slot bound.
#[tokio::test(start_paused = true)]
async fn hundreds_of_streams_complete() {
    let profile = model("ttft_ms = 100\ninter_token_ms = 10\noutput_tokens = 50");
    let (backend, recorder) = backend(&profile, 0);
    let statuses = run_streams(&backend, 400).await;
    assert!(statuses.iter().all(|&s| s == 200));
    let records = recorder.records();
    assert!(
        records
            .iter()
            .all(|r| r.end == Some(RequestEnd::Completed) && r.tokens_written == 50)
    );
    assert_eq!(concurrency_max(&records), 256, "vLLM's default max_num_seqs");
}
