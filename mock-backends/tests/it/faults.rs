//! Each scripted fault does what the README says the client sees.

use std::time::Duration;

use http_body_util::BodyExt;

use mock_backends::RequestEnd;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{
    Client, Event, backend, body_bytes, chat, concat, content_of, ended, model, read_pieces, settle, sse_events,
    tcp_server, tokio_clock,
};

const FAST: &str = "ttft_ms = 10\ninter_token_ms = 5\noutput_tokens = 10";

fn with_faults(faults: &str) -> String {
    format!("{}{faults}", model(FAST))
}

/// Status faults answer 401/403/404/429/500/503 with an error body before any streaming.
#[tokio::test]
async fn status_faults_answer_before_streaming() {
    let statuses = [401, 403, 404, 429, 500, 503];
    let faults: String = statuses
        .iter()
        .enumerate()
        .map(|(i, s)| format!("[[faults]]\nkind = \"status\"\nstatus = {s}\nnth = {}\n", i + 1))
        .collect();
    let server = tcp_server(&with_faults(&faults), 0).await;
    let mut client = Client::tcp(server.addr).await;
    for status in statuses {
        let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()["content-type"], "application/json");
        let error: Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
        assert_eq!(error["error"]["code"], status);
    }
    let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
    assert_eq!(response.status(), 200, "the 7th request is not faulted");
    body_bytes(response).await;
    let records = server.recorder.records();
    assert_eq!(records[0].end, Some(RequestEnd::Fault("status".into())));
    assert_eq!(records[0].faults, vec!["status".to_owned()]);
    assert_eq!(records[5].status, 503);
    assert_eq!(records[6].end, Some(RequestEnd::Completed));
}

/// A stall sends N tokens then nothing, keeping the connection open until the client leaves.
#[tokio::test(start_paused = true)]
async fn stall_goes_silent_until_the_client_leaves() {
    let (backend, recorder) = backend(&with_faults("[[faults]]\nkind = \"stall\"\nafter_tokens = 3\n"), 0);
    let clock = tokio_clock();
    let mut client = Client::pipe(&backend).await;
    let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
    let mut body = response.into_body();
    let mut received = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(600), body.frame()).await {
            Ok(Some(Ok(frame))) => received.extend_from_slice(&frame.into_data().unwrap()),
            Ok(other) => panic!("a stalled stream neither ends nor fails: {other:?}"),
            Err(_) => break,
        }
    }
    let record = recorder.records()[0].clone();
    assert_eq!(record.end, None, "still open after ten silent minutes");
    assert_eq!(record.body, received);
    assert_eq!(content_of(&sse_events(&received)).split_whitespace().count(), 3);
    assert_eq!(record.tokens_written, 3);
    let left_at = clock();
    drop(body);
    client.disconnect().await;
    settle().await;
    let record = recorder.records()[0].clone();
    assert_eq!(record.end, Some(RequestEnd::ClientGone));
    assert_eq!(record.end_us, Some(left_at), "noticed when the client left, not later");
    assert_eq!(record.faults, vec!["stall".to_owned()]);
}

/// A cut closes the stream after N tokens: the client gets an error after exactly the recorded bytes.
#[tokio::test(start_paused = true)]
async fn cut_ends_the_body_with_an_error() {
    let (backend, recorder) = backend(&with_faults("[[faults]]\nkind = \"cut\"\nafter_tokens = 4\n"), 0);
    let clock = tokio_clock();
    let mut client = Client::pipe(&backend).await;
    let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
    let (pieces, error) = read_pieces(response, &clock).await;
    assert!(error.is_some(), "the body must fail, not end cleanly");
    let record = ended(&recorder, 0).await;
    assert_eq!(concat(&pieces), record.body);
    assert_eq!(record.tokens_written, 4);
    assert_eq!(
        content_of(&sse_events(&record.body.bytes())).split_whitespace().count(),
        4
    );
    assert_eq!(record.end, Some(RequestEnd::Fault("cut".into())));
}

/// Over TCP a cut is a reset: the raw socket read fails with ECONNRESET after the data.
#[tokio::test]
async fn cut_resets_a_tcp_connection() {
    let server = tcp_server(&with_faults("[[faults]]\nkind = \"cut\"\nafter_tokens = 2\n"), 0).await;
    let body = chat("m", true, json!({})).to_string();
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: b1\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let result = stream.read_to_end(&mut raw).await;
    let err = result.expect_err("a reset, not an orderly end");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    let record = ended(&server.recorder, 0).await;
    assert_eq!(record.end, Some(RequestEnd::Fault("cut".into())));
    assert_eq!(record.tokens_written, 2);
}

/// A malformed event is framed like SSE but is not JSON; the stream goes on.
#[tokio::test]
async fn malformed_sse_breaks_one_event() {
    let server = tcp_server(
        &with_faults("[[faults]]\nkind = \"malformed_sse\"\nafter_tokens = 2\n"),
        0,
    )
    .await;
    let mut client = Client::tcp(server.addr).await;
    let body = body_bytes(client.post("/v1/chat/completions", &chat("m", true, json!({}))).await).await;
    let events = sse_events(&body);
    let broken: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Event::Unparsable(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(broken, vec![3], "after the role event and two content events");
    assert_eq!(events.last(), Some(&Event::Done));
    assert_eq!(content_of(&events).split_whitespace().count(), 10);
    assert_eq!(server.recorder.records()[0].faults, vec!["malformed_sse".to_owned()]);
}

/// `missing_usage` leaves out the usage event although the request asked for it.
#[tokio::test]
async fn missing_usage_drops_the_usage_event() {
    let server = tcp_server(&with_faults("[[faults]]\nkind = \"missing_usage\"\nnth = 1\n"), 0).await;
    let mut client = Client::tcp(server.addr).await;
    let has_usage = |events: &[Event]| {
        events
            .iter()
            .any(|e| matches!(e, Event::Chunk(v) if v.get("usage").is_some()))
    };
    for want_usage in [false, true] {
        let body = body_bytes(client.post("/v1/chat/completions", &chat("m", true, json!({}))).await).await;
        let events = sse_events(&body);
        assert_eq!(has_usage(&events), want_usage);
        assert_eq!(events.last(), Some(&Event::Done));
    }
}

/// Slow and failing health checks, each on its scripted ordinal.
#[tokio::test(start_paused = true)]
async fn health_faults() {
    let faults = "[[faults]]\nkind = \"health_slow\"\ndelay_ms = 500\nnth = 1\n\
                  [[faults]]\nkind = \"health_fail\"\nstatus = 500\nnth = 2\n";
    let (backend, recorder) = backend(&with_faults(faults), 0);
    let clock = tokio_clock();
    let mut client = Client::pipe(&backend).await;
    assert_eq!(client.get("/health").await.0, 200);
    assert_eq!(clock(), 500_000);
    assert_eq!(client.get("/health").await.0, 500);
    assert_eq!(client.get("/health").await.0, 200);
    let records = recorder.records();
    assert_eq!(records[0].faults, vec!["health_slow".to_owned()]);
    assert_eq!(records[1].end, Some(RequestEnd::Fault("health_fail".into())));
    assert!(records[2].faults.is_empty());
}

/// `host_down` refuses the scripted connections; the next one is served.
#[tokio::test]
async fn host_down_refuses_connections() {
    let server = tcp_server(&with_faults("[[faults]]\nkind = \"host_down\"\nnth = [1, 2]\n"), 0).await;
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let _ = stream.write_all(b"GET /health HTTP/1.1\r\nhost: b1\r\n\r\n").await;
        let mut raw = Vec::new();
        let read = stream.read_to_end(&mut raw).await;
        assert!(read.is_err() || raw.is_empty(), "refused connection must not answer");
    }
    let mut client = Client::tcp(server.addr).await;
    assert_eq!(client.get("/health").await.0, 200);
    assert_eq!(server.recorder.connections_refused(), 2);
    assert_eq!(server.recorder.records().len(), 1);
}

/// A `host_down` window is measured on the injected clock.
#[tokio::test(start_paused = true)]
async fn host_down_window_follows_the_clock() {
    let faults = "[[faults]]\nkind = \"host_down\"\nfrom_ms = 1000\nuntil_ms = 2000\n";
    let (backend, _) = backend(&with_faults(faults), 0);
    assert!(backend.accepts_connections());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!backend.accepts_connections());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(backend.accepts_connections());
}

/// Probabilistic faults are drawn from the seeded RNG: same seed, same requests fail.
#[tokio::test]
async fn probability_faults_are_seeded() {
    let faults = "[[faults]]\nkind = \"status\"\nstatus = 500\nprobability = 0.5\n";
    let mut patterns = Vec::new();
    for _ in 0..2 {
        let server = tcp_server(&with_faults(faults), 77).await;
        let mut client = Client::tcp(server.addr).await;
        let mut statuses = Vec::new();
        for _ in 0..20 {
            let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
            statuses.push(response.status().as_u16());
            body_bytes(response).await;
        }
        patterns.push(statuses);
    }
    assert_eq!(patterns[0], patterns[1]);
    assert!(
        patterns[0].contains(&500) && patterns[0].contains(&200),
        "{:?}",
        patterns[0]
    );
}

/// A fault limited to some models leaves the others alone.
#[tokio::test]
async fn model_filter_limits_a_fault() {
    let profile = format!(
        "{}[[models]]\nid = \"other\"\ncontext_window = 4096\n\
         [[faults]]\nkind = \"status\"\nstatus = 503\nmodels = [\"m\"]\n",
        model(FAST)
    );
    let server = tcp_server(&profile, 0).await;
    let mut client = Client::tcp(server.addr).await;
    let faulted = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
    assert_eq!(faulted.status(), 503);
    body_bytes(faulted).await;
    let spared = client
        .post("/v1/chat/completions", &chat("other", true, json!({})))
        .await;
    assert_eq!(spared.status(), 200);
}

/// Without streaming, a cut closes the connection without an answer.
#[tokio::test(start_paused = true)]
async fn whole_completion_cut_closes_without_answer() {
    let (backend, recorder) = backend(&with_faults("[[faults]]\nkind = \"cut\"\nafter_tokens = 2\n"), 0);
    let mut client = Client::pipe(&backend).await;
    let request = crate::support::post_request("/v1/chat/completions", &chat("m", false, json!({})));
    assert!(client.send(request).await.is_err());
    let record = ended(&recorder, 0).await;
    assert_eq!(record.end, Some(RequestEnd::Fault("cut".into())));
    assert!(record.body.is_empty());
}

/// Without streaming, a stall never answers and ends when the client gives up.
#[tokio::test(start_paused = true)]
async fn whole_completion_stall_waits_for_the_client() {
    let (backend, recorder) = backend(&with_faults("[[faults]]\nkind = \"stall\"\nafter_tokens = 0\n"), 0);
    let clock = tokio_clock();
    let mut client = Client::pipe(&backend).await;
    let request = crate::support::post_request("/v1/chat/completions", &chat("m", false, json!({})));
    // Detached so the test can give up on it, as a client with a deadline does.
    let waiting = tokio::spawn(async move { client.send(request).await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(!waiting.is_finished(), "no answer within ten minutes");
    assert_eq!(recorder.records()[0].end, None);
    let left_at = clock();
    waiting.abort();
    settle().await;
    let record = recorder.records()[0].clone();
    assert_eq!(record.end, Some(RequestEnd::ClientGone));
    assert_eq!(record.end_us, Some(left_at));
}
