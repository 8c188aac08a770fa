//! The `mock-coordinator` binary: argument and scenario errors, a port in
//! use, and a short real-time run against the test client over real TCP.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tokio::net::TcpStream;

use crate::client::*;

const BIN: &str = env!("CARGO_BIN_EXE_mock-coordinator");

/// Writes a scenario file unique to this test.
fn scenario(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("mock-coordinator-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write scenario");
    path
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("binary runs")
}

/// A scenario with a bad value exits 2 naming the file and the key.
#[test]
fn bad_scenario_exits_2() {
    let path = scenario(
        "bad",
        "[agent]\nx = 1\n[coordinator]\n[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = -1.0\ncount = 2\n",
    );
    let out = run(&["--listen", "127.0.0.1:0", "--scenario", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("coordinator.arrivals[0].rate_per_sec"), "{stderr}");
    assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
}

/// A listen address already in use exits 2.
#[test]
fn port_in_use_exits_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().unwrap().to_string();
    let path = scenario("port", "[coordinator]\n");
    let out = run(&["--listen", &addr, "--scenario", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("address already in use"));
}

/// A short scenario served to a real client over TCP in real time ends with the summary and the JSON record.
#[tokio::test]
async fn serves_scenario_and_prints_summary() {
    let path = scenario(
        "run",
        "[coordinator]\ndrain_ms = 200\nprovider_id = \"bin-test\"\n\
         [[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 300\ncount = 1\n",
    );
    let record = std::env::temp_dir().join(format!("mock-coordinator-{}-record.json", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(BIN)
        .args(["--listen", &addr, "--scenario", path.to_str().unwrap(), "--seed", "3"])
        .args(["--record-json", record.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stream = loop {
        match TcpStream::connect(&addr).await {
            Ok(stream) => break stream,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), stream)
        .await
        .expect("upgrade");
    let (_, reply) = login(&mut ws, false).await;
    assert_eq!(reply["provider_id"], "bin-test");
    let job = next_json(&mut ws).await;
    let id = job["job_id"].as_str().unwrap();
    send(&mut ws, chunk(id, b"data: [DONE]\n\n")).await;
    send(&mut ws, done(id, 1, 1, 5)).await;
    let out = child.wait_with_output().expect("binary exits");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("seed 3"), "{stdout}");
    assert!(stdout.contains("jobs: 1 (done 1)"), "{stdout}");
    assert!(stdout.contains("time to first chunk"), "{stdout}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(json["jobs"][0]["job_id"], job["job_id"]);
}
