//! Streamed and whole completions over loopback TCP, read by hyper's client.

use mock_backends::RequestEnd;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Client, Event, body_bytes, chat, content_of, model, sse_events, tcp_server};

const PROFILE_KEYS: &str = "ttft_ms = 5\ninter_token_ms = 1\noutput_tokens = 7";

/// A stream parses event by event as OpenAI SSE: role, contents, finish, usage, [DONE].
#[tokio::test]
async fn stream_is_openai_sse() {
    let server = tcp_server(&model(PROFILE_KEYS), 1).await;
    let mut client = Client::tcp(server.addr).await;
    let response = client.post("/v1/chat/completions", &chat("m", true, json!({}))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream; charset=utf-8");
    let body = body_bytes(response).await;
    let events = sse_events(&body);
    assert_eq!(events.len(), 1 + 7 + 1 + 1 + 1, "{events:?}");
    let Event::Chunk(role) = &events[0] else {
        panic!("first event must be JSON")
    };
    assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
    for event in &events[..events.len() - 1] {
        let Event::Chunk(chunk) = event else {
            panic!("{event:?}")
        };
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "m");
        assert_eq!(chunk["id"], role["id"]);
        assert!(chunk["id"].as_str().unwrap().starts_with("chatcmpl-"));
    }
    let Event::Chunk(finish) = &events[8] else { panic!() };
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let Event::Chunk(usage) = &events[9] else { panic!() };
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 7);
    let prompt = usage["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(usage["usage"]["total_tokens"], prompt + 7);
    assert_eq!(events[10], Event::Done);
    assert_eq!(content_of(&events).split_whitespace().count(), 7);
}

/// The record holds exactly the body bytes the client received, and the request's facts.
#[tokio::test]
async fn record_matches_received_bytes() {
    let server = tcp_server(&model(PROFILE_KEYS), 2).await;
    let mut client = Client::tcp(server.addr).await;
    let body = body_bytes(client.post("/v1/chat/completions", &chat("m", true, json!({}))).await).await;
    let records = server.recorder.records();
    let record = &records[0];
    assert_eq!(record.body, body.to_vec());
    assert_eq!(record.backend, "b1");
    assert_eq!(
        (record.method.as_str(), record.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(record.model.as_deref(), Some("m"));
    assert_eq!(record.job_id.as_deref(), Some("job-1"));
    assert_eq!((record.status, record.stream, record.tokens_written), (200, true, 7));
    assert_eq!(record.end, Some(RequestEnd::Completed));
    let (arrival, admitted) = (record.arrival_us, record.admitted_us.unwrap());
    let (first, end) = (record.first_byte_us.unwrap(), record.end_us.unwrap());
    assert!(arrival <= admitted && admitted <= first && first <= end, "{record:?}");
    assert!(record.faults.is_empty());
}

/// Without `include_usage` no usage event is sent.
#[tokio::test]
async fn no_usage_unless_asked() {
    let server = tcp_server(&model(PROFILE_KEYS), 3).await;
    let mut client = Client::tcp(server.addr).await;
    let request = chat("m", true, json!({"stream_options": null}));
    let events = sse_events(&body_bytes(client.post("/v1/chat/completions", &request).await).await);
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, Event::Chunk(v) if v.get("usage").is_some()))
    );
    assert_eq!(events.last(), Some(&Event::Done));
}

/// `stream: false` answers one `chat.completion` JSON body with usage.
#[tokio::test]
async fn whole_completion_is_one_json_body() {
    let server = tcp_server(&model(PROFILE_KEYS), 4).await;
    let mut client = Client::tcp(server.addr).await;
    let response = client.post("/v1/chat/completions", &chat("m", false, json!({}))).await;
    assert_eq!(response.status(), 200);
    let body = body_bytes(response).await;
    let value: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["object"], "chat.completion");
    assert_eq!(value["choices"][0]["message"]["role"], "assistant");
    let text = value["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(text.split_whitespace().count(), 7);
    assert_eq!(value["usage"]["completion_tokens"], 7);
    let record = &server.recorder.records()[0];
    assert_eq!(record.body, body.to_vec());
    assert!(!record.stream);
    assert_eq!(record.tokens_written, 7);
}

/// `max_tokens` caps the completion and the finish reason becomes `length`.
#[tokio::test]
async fn max_tokens_caps_with_length() {
    let server = tcp_server(&model(PROFILE_KEYS), 5).await;
    let mut client = Client::tcp(server.addr).await;
    let request = chat("m", true, json!({"max_tokens": 3}));
    let events = sse_events(&body_bytes(client.post("/v1/chat/completions", &request).await).await);
    assert_eq!(content_of(&events).split_whitespace().count(), 3);
    let finish = events.iter().find_map(|e| match e {
        Event::Chunk(v) => v["choices"][0]["finish_reason"].as_str().map(str::to_owned),
        _ => None,
    });
    assert_eq!(finish.as_deref(), Some("length"));
}

/// Keep-alive: several requests on one connection share its connection id.
#[tokio::test]
async fn keep_alive_reuses_the_connection() {
    let server = tcp_server(&model(PROFILE_KEYS), 6).await;
    let mut client = Client::tcp(server.addr).await;
    for _ in 0..3 {
        body_bytes(client.post("/v1/chat/completions", &chat("m", true, json!({}))).await).await;
    }
    let records = server.recorder.records();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.connection_id == records[0].connection_id));
    assert_eq!(records.iter().map(|r| r.request_id).collect::<Vec<_>>(), vec![0, 1, 2]);
}

/// The same seed gives the same bytes; another seed gives other text.
#[tokio::test]
async fn output_is_seeded() {
    let mut bodies = Vec::new();
    for seed in [9, 9, 10] {
        let server = tcp_server(&model(PROFILE_KEYS), seed).await;
        let mut client = Client::tcp(server.addr).await;
        bodies.push(body_bytes(client.post("/v1/chat/completions", &chat("m", true, json!({}))).await).await);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_ne!(bodies[0], bodies[2]);
}

/// On the wire each write is one HTTP chunk holding `events_per_write` events.
#[tokio::test]
async fn each_write_is_one_chunk_on_the_wire() {
    let keys = "ttft_ms = 1\ninter_token_ms = 1\noutput_tokens = 5\ntokens_per_event = 2\nevents_per_write = 3";
    let server = tcp_server(&model(keys), 7).await;
    let body = chat("m", true, json!({})).to_string();
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: b1\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let chunks = dechunk(&raw);
    // Events: role, [t1 t2], [t3 t4], [t5], finish, usage, done → 3 + 3 + 1.
    let per_chunk: Vec<usize> = chunks.iter().map(|c| sse_events(c).len()).collect();
    assert_eq!(per_chunk, vec![3, 3, 1]);
    assert_eq!(chunks.concat(), server.recorder.records()[0].body);
}

/// Splits a raw HTTP/1.1 chunked response into its chunks' data.
fn dechunk(raw: &[u8]) -> Vec<Vec<u8>> {
    let text = raw.to_vec();
    let start = text.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&text[..start]).to_lowercase();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let mut rest = &text[start..];
    let mut chunks = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").expect("size line");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
        rest = &rest[line_end + 2..];
        if size == 0 {
            return chunks;
        }
        chunks.push(rest[..size].to_vec());
        assert_eq!(&rest[size..size + 2], b"\r\n");
        rest = &rest[size + 2..];
    }
}
