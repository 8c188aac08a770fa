//! The binary as a person runs it by hand: `--listen 127.0.0.1:0` names the
//! port it bound, `--start-on-auth` waits for a late agent, the record file
//! carries the bound address and the digest, and logs are plain text when
//! redirected.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::net::TcpStream;

use crate::client::*;

const BIN: &str = env!("CARGO_BIN_EXE_mock-coordinator");

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mock-coordinator-{}-{name}", std::process::id()))
}

/// Starts the binary on port 0 and reads the address from its first line.
fn spawn(scenario: &str, extra: &[&str]) -> (Child, String) {
    let path = temp(&format!("{}.toml", extra.len()));
    std::fs::write(&path, scenario).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--scenario",
            path.to_str().unwrap(),
            "--seed",
            "5",
        ])
        .args(extra)
        .env("RUST_LOG", "debug")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .split("ws://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    assert!(!addr.ends_with(":0"), "{first}");
    (child, addr)
}

/// Port 0, a late agent and `--start-on-auth`: the job due at 0 ms is
/// delivered, the record names the bound address, and stderr has no colour.
#[tokio::test]
async fn late_agent_on_an_ephemeral_port() {
    let record = temp("by-hand.json");
    let (child, addr) = spawn(
        "[coordinator]\ndrain_ms = 100\n[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\ncount = 1\n",
        &["--start-on-auth", "--record-json", record.to_str().unwrap()],
    );
    // The agent "starts slowly".
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stream = TcpStream::connect(&addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), stream)
        .await
        .unwrap();
    authed(&mut ws).await;
    let job = next_json(&mut ws).await;
    let id = job["job_id"].as_str().unwrap().to_owned();
    send(&mut ws, chunk(&id, b"data: [DONE]\n\n")).await;
    send(&mut ws, done(&id, 1, 1, 5)).await;
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("jobs: 1 (done 1)"), "{stdout}");
    assert!(stdout.contains("script time zero: 0."), "{stdout}");
    assert!(stdout.contains("coordinator checks: 5 rules, 0 violations"), "{stdout}");
    assert!(stdout.contains("last frame read"), "{stdout}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escapes in redirected logs: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(json["listen"], addr.as_str());
    assert_eq!(json["start_on_auth"], true);
    assert!(
        json["time_zero_us"].as_u64().unwrap() >= 400_000,
        "{}",
        json["time_zero_us"]
    );
    assert_eq!(json["jobs"][0]["job_id"], id.as_str());
    assert_eq!(json["digest"]["checks"].as_array().unwrap().len(), 5);
}
