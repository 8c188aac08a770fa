//! The backend inside a turmoil simulation, served the way simctl serves it:
//! its own accept loop over `turmoil::net` calling `serve_connection`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::handshake;
use hyper_util::rt::TokioIo;
use mock_backends::{Clock, MockBackend, Recorder, RequestEnd};
use serde_json::json;
use turmoil::net::{TcpListener, TcpStream};

use crate::support::{chat, model, spec};

type SimResult = Result<(), Box<dyn std::error::Error>>;

fn sim_clock() -> Clock {
    Arc::new(|| turmoil::sim_elapsed().map_or(0, |d| d.as_micros() as u64))
}

fn sim_micros() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| d.as_micros() as u64)
}

/// Adds host `b1` serving `profile` on port 8000 into `recorder`.
fn add_backend(sim: &mut turmoil::Sim<'_>, profile: &str, recorder: &Recorder) {
    let spec = spec(profile);
    let recorder = recorder.clone();
    sim.host("b1", move || {
        let (spec, recorder) = (spec.clone(), recorder.clone());
        async move {
            let backend = MockBackend::new(spec, 1, sim_clock(), recorder)?;
            let listener = TcpListener::bind(("0.0.0.0", 8000)).await?;
            loop {
                let (stream, _) = listener.accept().await?;
                if backend.accepts_connections() {
                    tokio::spawn(backend.clone().serve_connection(stream));
                }
            }
        }
    });
}

fn chat_request(stream: bool) -> Request<Full<Bytes>> {
    Request::post("/v1/chat/completions")
        .header("host", "b1")
        .body(Full::new(Bytes::from(chat("m", stream, json!({})).to_string())))
        .unwrap()
}

/// A stream over turmoil completes, on the profile's schedule, with the recorded bytes.
#[test]
fn stream_completes_in_simulation() {
    let mut sim = turmoil::Builder::new().build();
    let recorder = Recorder::new();
    add_backend(
        &mut sim,
        &model("ttft_ms = 300\ninter_token_ms = 40\noutput_tokens = 5"),
        &recorder,
    );
    let records = recorder.clone();
    sim.client("agent", async move {
        let io = TcpStream::connect(("b1", 8000)).await?;
        let (mut sender, conn) = handshake(TokioIo::new(io)).await?;
        tokio::spawn(conn);
        let response = sender.send_request(chat_request(true)).await?;
        let body = response.into_body().collect().await?.to_bytes();
        let record = &records.records()[0];
        assert_eq!(record.body, body.to_vec());
        assert_eq!(record.end, Some(RequestEnd::Completed));
        let admitted = record.admitted_us.unwrap();
        assert_eq!(record.first_byte_us.unwrap() - admitted, 300_000);
        assert_eq!(record.end_us.unwrap() - admitted, 300_000 + 4 * 40_000);
        Ok(()) as SimResult
    });
    sim.run().unwrap();
}

/// A client that drops its connection during a long gap is noticed within network latency.
#[test]
fn client_gone_is_noticed_in_simulation() {
    let mut sim = turmoil::Builder::new().build();
    let recorder = Recorder::new();
    add_backend(
        &mut sim,
        &model("ttft_ms = 10\ninter_token_ms = 10000\noutput_tokens = 9"),
        &recorder,
    );
    let records = recorder.clone();
    sim.client("agent", async move {
        let io = TcpStream::connect(("b1", 8000)).await?;
        let (mut sender, conn) = handshake(TokioIo::new(io)).await?;
        let conn = tokio::spawn(conn);
        let response = sender.send_request(chat_request(true)).await?;
        let mut body = response.into_body();
        body.frame().await.unwrap()?;
        let left_at = sim_micros();
        drop((body, sender));
        conn.abort();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let record = &records.records()[0];
        assert_eq!(record.end, Some(RequestEnd::ClientGone));
        let noticed_after = record.end_us.unwrap() - left_at;
        // The next token was 10 s away: noticing within a second means the
        // close was seen while idle, not on a failed write.
        assert!(noticed_after < 1_000_000, "noticed {noticed_after} µs after leaving");
        Ok(()) as SimResult
    });
    sim.run().unwrap();
}

/// A cut over turmoil fails the client's body after exactly the recorded bytes.
#[test]
fn cut_in_simulation() {
    let mut sim = turmoil::Builder::new().build();
    let recorder = Recorder::new();
    let profile = format!(
        "{}[[faults]]\nkind = \"cut\"\nafter_tokens = 3\n",
        model("ttft_ms = 10")
    );
    add_backend(&mut sim, &profile, &recorder);
    let records = recorder.clone();
    sim.client("agent", async move {
        let io = TcpStream::connect(("b1", 8000)).await?;
        let (mut sender, conn) = handshake(TokioIo::new(io)).await?;
        tokio::spawn(conn);
        let response = sender.send_request(chat_request(true)).await?;
        let mut body = response.into_body();
        let mut received = Vec::new();
        let failed = loop {
            match body.frame().await {
                Some(Ok(frame)) => received.extend_from_slice(&frame.into_data().unwrap()),
                Some(Err(_)) => break true,
                None => break false,
            }
        };
        assert!(failed, "a cut body must fail");
        let record = &records.records()[0];
        assert_eq!(record.body, received);
        assert_eq!(record.end, Some(RequestEnd::Fault("cut".into())));
        Ok(()) as SimResult
    });
    sim.run().unwrap();
}

/// Crashing the host mid-stream ends its open records as `backend_stopped`; they survive the crash.
#[test]
fn crash_ends_open_records() {
    let mut sim = turmoil::Builder::new().build();
    let recorder = Recorder::new();
    add_backend(
        &mut sim,
        &model("ttft_ms = 10\ninter_token_ms = 1000\noutput_tokens = 50"),
        &recorder,
    );
    sim.client("agent", async move {
        let io = TcpStream::connect(("b1", 8000)).await?;
        let (mut sender, conn) = handshake(TokioIo::new(io)).await?;
        tokio::spawn(conn);
        let response = sender.send_request(chat_request(true)).await?;
        let mut body = response.into_body();
        while let Some(Ok(_)) = body.frame().await {}
        Ok(()) as SimResult
    });
    while recorder.records().first().is_none_or(|r| r.tokens_written < 3) {
        sim.step().unwrap();
    }
    sim.crash("b1");
    let record = &recorder.records()[0];
    assert_eq!(record.end, Some(RequestEnd::Fault("backend_stopped".into())));
    assert!(record.tokens_written >= 3);
    assert!(
        record.end_us > record.first_byte_us,
        "ended at the crash, on the sim clock"
    );
}
