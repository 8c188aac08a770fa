//! Test helpers: backends over loopback TCP or in-memory pipes, hyper's own
//! client as the independent HTTP client, and an SSE parser written here
//! rather than borrowed from the crate under test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{SendRequest, handshake};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use mock_backends::{Clock, MockBackend, Recorder, RequestRecord, parse_profile_toml};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Buffer of each in-memory pipe: far more than any test response.
const PIPE_BYTES: usize = 1 << 20;
/// How many scheduler turns `settle` gives the server to notice something.
const SETTLE_TURNS: usize = 200;

/// The profile's keys with `host = "b1"` added.
pub fn spec(profile: &str) -> mock_backends::BackendSpec {
    let mut spec = parse_profile_toml(profile).expect("test profile must be valid");
    spec.host = "b1".to_owned();
    spec
}

/// A clock on tokio's (possibly paused) time, as the binary builds it.
pub fn tokio_clock() -> Clock {
    let start = tokio::time::Instant::now();
    Arc::new(move || start.elapsed().as_micros() as u64)
}

/// A backend for `profile`, seeded with `seed`, and its recorder.
pub fn backend(profile: &str, seed: u64) -> (Arc<MockBackend>, Recorder) {
    let recorder = Recorder::new();
    let backend = MockBackend::new(spec(profile), seed, tokio_clock(), recorder.clone()).expect("valid spec");
    (backend, recorder)
}

/// A backend listening on a loopback port.
pub struct TcpServer {
    pub addr: SocketAddr,
    pub backend: Arc<MockBackend>,
    pub recorder: Recorder,
}

pub async fn tcp_server(profile: &str, seed: u64) -> TcpServer {
    let (backend, recorder) = backend(profile, seed);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(backend.clone().serve_tcp(listener));
    TcpServer {
        addr,
        backend,
        recorder,
    }
}

/// One HTTP/1.1 client connection.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    /// The client side of the connection; aborting it drops the socket.
    conn: JoinHandle<()>,
}

impl Client {
    pub async fn tcp(addr: SocketAddr) -> Client {
        Client::over(TcpStream::connect(addr).await.unwrap()).await
    }

    /// A client whose connection is served by `backend.serve_connection`
    /// over an in-memory pipe: no kernel in between, so paused time only
    /// advances when both ends are idle.
    pub async fn pipe(backend: &Arc<MockBackend>) -> Client {
        let (client, server) = tokio::io::duplex(PIPE_BYTES);
        tokio::spawn(backend.clone().serve_connection(server));
        Client::over(client).await
    }

    async fn over<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: S) -> Client {
        let (sender, conn) = handshake(TokioIo::new(io)).await.unwrap();
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        Client { sender, conn }
    }

    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> hyper::Result<Response<Incoming>> {
        self.sender.ready().await?;
        self.sender.send_request(request).await
    }

    pub async fn get(&mut self, path: &str) -> (u16, Bytes) {
        let request = Request::get(path)
            .header("host", "b1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = self.send(request).await.unwrap();
        let status = response.status().as_u16();
        (status, body_bytes(response).await)
    }

    pub async fn post(&mut self, path: &str, body: &Value) -> Response<Incoming> {
        self.send(post_request(path, body)).await.unwrap()
    }

    /// Closes the connection from the client side, like a cancelled job.
    pub async fn disconnect(self) {
        drop(self.sender);
        self.conn.abort();
        let _ = self.conn.await;
    }
}

pub fn post_request(path: &str, body: &Value) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "b1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// A chat request as the agent sends it, with `extra` keys merged in.
pub fn chat(model: &str, stream: bool, extra: Value) -> Value {
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say something."}],
        "stream": stream,
        "stream_options": {"include_usage": true},
        "user": "job-1",
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            body.insert(key.clone(), value.clone());
        }
    }
    body
}

pub async fn body_bytes(response: Response<Incoming>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

/// Body data as the client received it, with the clock time of each piece.
#[derive(Debug, Clone)]
pub struct Piece {
    pub at_us: u64,
    pub bytes: Bytes,
}

/// Reads a body to its end or its error; returns the pieces and the error.
pub async fn read_pieces(response: Response<Incoming>, clock: &Clock) -> (Vec<Piece>, Option<String>) {
    let mut body = response.into_body();
    let mut pieces = Vec::new();
    loop {
        match body.frame().await {
            None => return (pieces, None),
            Some(Err(err)) => return (pieces, Some(err.to_string())),
            Some(Ok(frame)) => {
                if let Ok(bytes) = frame.into_data() {
                    pieces.push(Piece { at_us: clock(), bytes });
                }
            }
        }
    }
}

/// Pieces that arrived at the same instant, merged: one write each.
pub fn writes(pieces: &[Piece]) -> Vec<Piece> {
    let mut merged: Vec<Piece> = Vec::new();
    for piece in pieces {
        match merged.last_mut() {
            Some(last) if last.at_us == piece.at_us => {
                let mut joined = last.bytes.to_vec();
                joined.extend_from_slice(&piece.bytes);
                last.bytes = Bytes::from(joined);
            }
            _ => merged.push(piece.clone()),
        }
    }
    merged
}

pub fn concat(pieces: &[Piece]) -> Vec<u8> {
    pieces.iter().flat_map(|p| p.bytes.iter().copied()).collect()
}

/// One Server-Sent Event as an OpenAI client would see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Chunk(Value),
    Done,
    /// A `data:` event whose payload is not JSON.
    Unparsable(String),
}

/// Splits an SSE body into events; panics on anything that is not
/// `data: …` followed by a blank line.
pub fn sse_events(body: &[u8]) -> Vec<Event> {
    let text = std::str::from_utf8(body).expect("SSE is UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "body must end with a blank line"
    );
    text.split_terminator("\n\n")
        .map(|event| {
            let data = event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("event without `data: `: {event:?}"));
            assert!(!data.contains('\n'), "one data line per event: {event:?}");
            if data == "[DONE]" {
                Event::Done
            } else {
                serde_json::from_str(data).map_or_else(|_| Event::Unparsable(data.to_owned()), Event::Chunk)
            }
        })
        .collect()
}

/// The text of every content delta, concatenated.
pub fn content_of(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Chunk(v) => v["choices"][0]["delta"]["content"].as_str().map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// Gives the server turns to run without letting paused time advance.
pub async fn settle() {
    for _ in 0..SETTLE_TURNS {
        tokio::task::yield_now().await;
    }
}

/// Waits (in small steps of tokio time) until record `index` has ended.
pub async fn ended(recorder: &Recorder, index: usize) -> RequestRecord {
    for _ in 0..1000 {
        if let Some(record) = recorder.records().get(index)
            && record.end.is_some()
        {
            return record.clone();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("record {index} never ended: {:?}", recorder.records().get(index));
}

/// The minimal model table most tests use, with `keys` appended.
pub fn model(keys: &str) -> String {
    format!("[[models]]\nid = \"m\"\ncontext_window = 4096\n{keys}\n")
}
