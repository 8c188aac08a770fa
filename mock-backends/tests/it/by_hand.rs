//! The binary as a person runs it by hand: no profile needed, a scenario's
//! backend picked by `--host`, records written on SIGINT or SIGTERM, log
//! lines carrying the job id, and no colour when logs are redirected.

use std::io::{BufRead as _, BufReader, Lines};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Client, body_bytes, chat};

const BINARY: &str = env!("CARGO_BIN_EXE_mock-backend");

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mock-backend-by-hand-{}-{name}", std::process::id()))
}

/// Starts the binary with `args` on port 0; returns it, its address and the
/// rest of its log.
fn spawn(args: &[&str]) -> (Child, SocketAddr, Lines<BufReader<ChildStderr>>) {
    let mut child = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the binary logs its address").unwrap();
        assert!(!line.contains('\u{1b}'), "ANSI escapes in a redirected log: {line:?}");
        if let Some((_, rest)) = line.split_once("listening on ") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    (child, addr, lines)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Without `--profile` it serves `sim-model` as vLLM; SIGINT writes every
/// record, with the job id, and the log line of the request names the job.
#[tokio::test]
async fn default_profile_and_record_on_sigint() {
    let record = temp("sigint.json");
    let (mut child, addr, lines) = spawn(&["--record-json", record.to_str().unwrap()]);
    let mut client = Client::tcp(addr).await;
    let (status, _) = client.get("/health").await;
    assert_eq!(status, 200, "vllm's health path");
    let (_, models) = client.get("/v1/models").await;
    assert!(String::from_utf8_lossy(&models).contains("\"sim-model\""));
    let response = client
        .post(
            "/v1/chat/completions",
            &chat("sim-model", true, json!({"user": "job-42"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body = body_bytes(response).await;
    assert!(body.ends_with(b"data: [DONE]\n\n"));
    signal(&child, "-INT");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let log: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        log.iter()
            .any(|l| l.contains("job_id=job-42") && l.contains("request ended")),
        "{log:?}"
    );
    assert!(log.iter().all(|l| !l.contains('\u{1b}')), "{log:?}");
    let json: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(json["listen"], addr.to_string());
    assert_eq!(json["requests_total"], 3);
    let chat_record = &json["records"][2];
    assert_eq!(chat_record["job_id"], "job-42");
    assert_eq!(chat_record["end"], "Completed");
    assert_eq!(chat_record["body"].as_str().unwrap().as_bytes(), &body[..]);
}

/// `--profile SCENARIO --host NAME` serves that backend of the scenario;
/// SIGTERM also writes the record.
#[tokio::test]
async fn scenario_backend_by_host_and_record_on_sigterm() {
    let scenario = temp("scenario.toml");
    std::fs::write(
        &scenario,
        "[coordinator]\n\
         [[backends]]\nhost = \"gpu-a\"\nkind = \"vllm\"\n[[backends.models]]\nid = \"a\"\ncontext_window = 64\n\
         [[backends]]\nhost = \"gpu-b\"\nkind = \"ollama\"\n[[backends.models]]\nid = \"b\"\ncontext_window = 64\n",
    )
    .unwrap();
    let record = temp("sigterm.json");
    let (mut child, addr, _lines) = spawn(&[
        "--profile",
        scenario.to_str().unwrap(),
        "--host",
        "gpu-b",
        "--record-json",
        record.to_str().unwrap(),
    ]);
    let mut client = Client::tcp(addr).await;
    let (status, tags) = client.get("/api/tags").await;
    assert_eq!(status, 200, "ollama's health path");
    assert!(String::from_utf8_lossy(&tags).contains("\"b\""));
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let json: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(
        (json["backend"].as_str(), json["kind"].as_str()),
        (Some("gpu-b"), Some("ollama"))
    );
}

/// A scenario with several backends and no `--host` exits 2 naming them.
#[test]
fn scenario_without_host_names_the_choices() {
    let scenario = temp("two.toml");
    std::fs::write(
        &scenario,
        "[[backends]]\nhost = \"x\"\nkind = \"vllm\"\n[[backends.models]]\nid = \"a\"\ncontext_window = 64\n\
         [[backends]]\nhost = \"y\"\nkind = \"vllm\"\n[[backends.models]]\nid = \"a\"\ncontext_window = 64\n",
    )
    .unwrap();
    let out = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--profile", scenario.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("x, y") && stderr.contains("--host"), "{stderr}");
}
