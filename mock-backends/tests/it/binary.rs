//! The `mock-backend` binary: clear start-up errors, and a working server.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::Client;

const BINARY: &str = env!("CARGO_BIN_EXE_mock-backend");

/// Writes `text` to a fresh profile file for this test.
fn profile_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mock-backend-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn run(args: &[&str]) -> (i32, String) {
    let output = Command::new(BINARY).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A profile with a bad key exits 2 naming the file and the key path.
#[test]
fn bad_profile_exits_2_naming_the_key() {
    let path = profile_file(
        "bad.toml",
        "[[models]]\nid = \"m\"\ncontext_window = 10\nttft_ms = 5\nttft_jitter_ms = 9\n",
    );
    let path_text = path.to_str().unwrap();
    let (code, stderr) = run(&["--listen", "127.0.0.1:0", "--kind", "vllm", "--profile", path_text]);
    assert_eq!(code, 2);
    assert!(stderr.contains(path_text), "{stderr}");
    assert!(stderr.contains("models[0].ttft_jitter_ms"), "{stderr}");
}

/// A missing profile file exits 2 saying it cannot be read.
#[test]
fn missing_profile_exits_2() {
    let (code, stderr) = run(&[
        "--listen",
        "127.0.0.1:0",
        "--kind",
        "vllm",
        "--profile",
        "/nonexistent/p.toml",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read profile /nonexistent/p.toml"), "{stderr}");
}

/// A port already in use exits 2 saying so.
#[test]
fn port_in_use_exits_2() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let path = profile_file("ok.toml", "[[models]]\nid = \"m\"\ncontext_window = 10\n");
    let (code, stderr) = run(&[
        "--listen",
        &addr,
        "--kind",
        "ollama",
        "--profile",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("already in use"), "{stderr}");
}

/// An unknown kind is refused by the argument parser with exit 2.
#[test]
fn unknown_kind_exits_2() {
    let (code, stderr) = run(&["--listen", "127.0.0.1:0", "--kind", "tgi", "--profile", "x"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown kind `tgi`"), "{stderr}");
}

/// The binary serves the kind's paths to an HTTP client.
#[tokio::test]
async fn binary_serves_requests() {
    let path = profile_file("serve.toml", "[[models]]\nid = \"served\"\ncontext_window = 10\n");
    let mut child = Command::new(BINARY)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--kind",
            "llamacpp",
            "--profile",
            path.to_str().unwrap(),
        ])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("the binary logs its address").unwrap();
        if let Some((_, rest)) = line.split_once("listening on ") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    let mut client = Client::tcp(addr).await;
    let (status, body) = client.get("/health").await;
    let (models_status, models) = client.get("/v1/models").await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!((status, &body[..]), (200, &br#"{"status":"ok"}"#[..]));
    assert_eq!(models_status, 200);
    assert!(String::from_utf8_lossy(&models).contains("\"served\""));
}
