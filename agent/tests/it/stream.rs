//! The adapter against hand-written one-connection TCP servers, for what
//! wiremock cannot do: send a body in chosen pieces, cut a stream, stall
//! before the first byte, and observe the connection being closed.

use std::future::Future;
use std::time::Duration;

use provider_agent::backend::{Backend as _, BackendError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::{CollectSink, SSE_BODY, chat_job, vllm};

/// Liveness bound for a server to observe what the client did. Generous:
/// it only turns a hang into a failure, it is not a timing assertion.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between body pieces, so the client takes each piece as its own
/// read (correctness does not depend on it: frames may still merge).
const PIECE_GAP: Duration = Duration::from_millis(20);
/// The job deadline the executor would enforce, here applied by the test.
const DEADLINE: Duration = Duration::from_millis(300);
/// Bound on a request head read by the test servers.
const REQUEST_HEAD_BYTES_MAX: usize = 64 * 1024;

const CHUNKED_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";

/// Accepts one connection on a fresh loopback port and runs `script` on it.
async fn serve_once<T, F, Fut>(script: F) -> (String, JoinHandle<T>)
where
    T: Send + 'static,
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        script(stream).await
    });
    (url, task)
}

/// Reads one request (head and `content-length` body); returns the head.
async fn read_request(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        assert!(buf.len() < REQUEST_HEAD_BYTES_MAX, "request head too large");
        let mut piece = [0u8; 4096];
        let n = stream.read(&mut piece).await.expect("read request");
        assert!(n > 0, "client closed before sending a request");
        buf.extend_from_slice(&piece[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().expect("length"))
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut piece = [0u8; 4096];
        let n = stream.read(&mut piece).await.expect("read body");
        assert!(n > 0, "client closed mid-body");
        body.extend_from_slice(&piece[..n]);
    }
    head
}

/// Writes `data` as one HTTP chunk and flushes it.
async fn write_chunk(stream: &mut TcpStream, data: &[u8]) {
    stream
        .write_all(format!("{:x}\r\n", data.len()).as_bytes())
        .await
        .expect("chunk size");
    stream.write_all(data).await.expect("chunk data");
    stream.write_all(b"\r\n").await.expect("chunk end");
    stream.flush().await.expect("flush");
}

/// Waits until the client closes the connection (EOF or reset). Returns
/// `false` if it is still open after [`OBSERVE_TIMEOUT`].
async fn client_closed(stream: &mut TcpStream) -> bool {
    let wait = async {
        let mut sink = [0u8; 1024];
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(OBSERVE_TIMEOUT, wait).await.is_ok()
}

/// Proves usage is read correctly when the usage event (and a UTF-8 character) is split across body frames, and that the frames are relayed unchanged.
#[tokio::test]
async fn usage_split_across_chunks() {
    let body = SSE_BODY.as_bytes();
    let usage_at = SSE_BODY.find("\"completion_tokens\":3").expect("usage event") + 15;
    let utf8_at = SSE_BODY.find('ö').expect("multi-byte char") + 1;
    let cuts = [0, 10, utf8_at, usage_at, usage_at + 3, body.len()];
    let (url, server) = serve_once(move |mut stream| async move {
        read_request(&mut stream).await;
        stream.write_all(CHUNKED_HEAD).await.expect("head");
        for piece in cuts.windows(2) {
            write_chunk(&mut stream, &body[piece[0]..piece[1]]).await;
            // Let the client take each piece before the next is written.
            tokio::time::sleep(PIECE_GAP).await;
        }
        stream.write_all(b"0\r\n\r\n").await.expect("last chunk");
        client_closed(&mut stream).await
    })
    .await;
    let mut sink = CollectSink::default();
    let result = vllm(&url)
        .execute(&chat_job(), &mut sink)
        .await
        .expect("stream completes");
    assert_eq!(sink.bytes(), body, "relayed bytes differ from the body");
    assert!(
        sink.chunks.len() >= 2,
        "expected several frames, got {}",
        sink.chunks.len()
    );
    assert_eq!((result.input_tokens, result.output_tokens), (Some(11), Some(3)));
    assert_eq!(sink.output_tokens, 3);
    assert!(
        tokio::time::timeout(OBSERVE_TIMEOUT, server)
            .await
            .expect("server done")
            .expect("server task")
    );
}

/// Proves a stream cut mid-way is `internal` (StreamCut), after every byte received before the cut was relayed.
#[tokio::test]
async fn stream_cut_mid_way_is_internal_with_prefix_relayed() {
    let half = SSE_BODY.find(" wörld").expect("second content event");
    let (url, server) = serve_once(move |mut stream| async move {
        read_request(&mut stream).await;
        stream.write_all(CHUNKED_HEAD).await.expect("head");
        write_chunk(&mut stream, &SSE_BODY.as_bytes()[..half]).await;
        // Close without the terminating chunk.
    })
    .await;
    let mut sink = CollectSink::default();
    let err = vllm(&url).execute(&chat_job(), &mut sink).await.expect_err("cut");
    assert!(matches!(err, BackendError::StreamCut(_)), "{err:?}");
    assert_eq!(err.code().as_str(), "internal");
    assert_eq!(sink.bytes(), &SSE_BODY.as_bytes()[..half]);
    assert_eq!(sink.output_tokens, 1, "one content event was relayed before the cut");
    server.await.expect("server task");
}

/// Proves a refused connection is `backend_unreachable`.
#[tokio::test]
async fn connection_refused_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let mut sink = CollectSink::default();
    let err = vllm(&url).execute(&chat_job(), &mut sink).await.expect_err("refused");
    assert!(matches!(err, BackendError::Unreachable(_)), "{err:?}");
    assert_eq!(err.code().as_str(), "backend_unreachable");
    assert!(sink.chunks.is_empty());
}

/// Proves a connection closed after the request but before a response head is `backend_unreachable`.
#[tokio::test]
async fn closed_before_answering_is_unreachable() {
    let (url, server) = serve_once(|mut stream| async move {
        read_request(&mut stream).await;
    })
    .await;
    let err = vllm(&url)
        .execute(&chat_job(), &mut CollectSink::default())
        .await
        .expect_err("closed");
    assert_eq!(err.code().as_str(), "backend_unreachable", "{err:?}");
    server.await.expect("server task");
}

/// Proves that dropping `execute` at a deadline (before the first byte) closes the backend connection.
#[tokio::test]
async fn dropping_execute_at_deadline_closes_the_connection() {
    let (url, server) = serve_once(|mut stream| async move {
        read_request(&mut stream).await;
        // Never answer: only the client closing ends this.
        client_closed(&mut stream).await
    })
    .await;
    let backend = vllm(&url);
    let mut sink = CollectSink::default();
    let outcome = tokio::time::timeout(DEADLINE, backend.execute(&chat_job(), &mut sink)).await;
    assert!(outcome.is_err(), "the stalled backend cannot have answered");
    let closed = tokio::time::timeout(OBSERVE_TIMEOUT, server)
        .await
        .expect("server done")
        .expect("server task");
    assert!(
        closed,
        "the backend connection stayed open after the execute future was dropped"
    );
}

/// Proves a sink reporting `Gone` (job cancelled) ends execute with `Sink` at once and closes the connection.
#[tokio::test]
async fn cancelled_sink_stops_relay_and_closes_the_connection() {
    let (url, server) = serve_once(|mut stream| async move {
        read_request(&mut stream).await;
        stream.write_all(CHUNKED_HEAD).await.expect("head");
        write_chunk(
            &mut stream,
            b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
        )
        .await;
        tokio::time::sleep(PIECE_GAP).await;
        write_chunk(
            &mut stream,
            b"data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n",
        )
        .await;
        // Keep the stream open: only the client closing ends this.
        client_closed(&mut stream).await
    })
    .await;
    let mut sink = CollectSink {
        accept_chunks: Some(1),
        ..CollectSink::default()
    };
    let err = vllm(&url).execute(&chat_job(), &mut sink).await.expect_err("cancelled");
    assert!(matches!(err, BackendError::Sink(_)), "{err:?}");
    assert_eq!(sink.chunks.len(), 1);
    let closed = tokio::time::timeout(OBSERVE_TIMEOUT, server)
        .await
        .expect("server done")
        .expect("server task");
    assert!(closed, "the backend connection stayed open after the job was cancelled");
}

/// Proves a malformed response head is `internal`, not `backend_unreachable`.
#[tokio::test]
async fn garbage_response_is_internal() {
    let (url, server) = serve_once(|mut stream| async move {
        read_request(&mut stream).await;
        stream.write_all(b"SMTP READY\r\n\r\n").await.expect("write");
        client_closed(&mut stream).await
    })
    .await;
    let err = vllm(&url)
        .execute(&chat_job(), &mut CollectSink::default())
        .await
        .expect_err("garbage");
    assert_eq!(err.code().as_str(), "internal", "{err:?}");
    assert!(
        tokio::time::timeout(OBSERVE_TIMEOUT, server)
            .await
            .expect("server done")
            .expect("server task")
    );
}
