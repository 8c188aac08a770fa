//! The `provider-agent` binary: `validate` and `keygen` end to end.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::TempDir;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/agent.example.toml");

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provider-agent"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run provider-agent")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_config(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write config");
    path.display().to_string()
}

/// Proves the shipped example config passes `validate`.
#[test]
fn validate_accepts_the_example() {
    let out = agent(&["--config", EXAMPLE, "validate"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("OK: "), "stdout: {}", text(&out.stdout));
}

/// Proves a broken config exits 2 with an error naming the file and the key.
#[test]
fn validate_rejects_bad_config_naming_the_key() {
    let dir = TempDir::new("cli-bad");
    let example = std::fs::read_to_string(EXAMPLE).expect("example");
    let cases = [
        (
            "zero.toml",
            example.replace("max_concurrent = 8", "max_concurrent = 0"),
            "`limits.max_concurrent`",
        ),
        (
            "typo.toml",
            example.replace("max_concurrent = 8", "max_concurent = 8"),
            "`limits.max_concurent`",
        ),
        (
            "price.toml",
            example.replace("default_input_per_1m = 0.10", "default_input_per_1m = -1"),
            "`pricing.default_input_per_1m`",
        ),
    ];
    for (name, body, key) in cases {
        assert_ne!(body, example, "{name}: the edit did not apply");
        let path = write_config(&dir.0, name, &body);
        let out = agent(&["--config", &path, "validate"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(&path) && stderr.contains(key), "{name}: {stderr}");
    }
}

/// Proves ws:// is rejected without --allow-insecure and accepted with it.
#[test]
fn insecure_coordinator_needs_the_flag() {
    let dir = TempDir::new("cli-insecure");
    let example = std::fs::read_to_string(EXAMPLE).expect("example");
    let path = write_config(
        &dir.0,
        "ws.toml",
        &example.replace("wss://coordinator.example.com/agent", "ws://coordinator:9000/"),
    );
    let out = agent(&["--config", &path, "validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--allow-insecure"), "{}", text(&out.stderr));
    let out = agent(&["--config", &path, "--allow-insecure", "validate"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
}

/// Proves a missing config file exits 2 naming the path.
#[test]
fn missing_config_file_exits_2() {
    let out = agent(&["--config", "/nonexistent/provider-agent.toml", "validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/provider-agent.toml"));
}

/// Proves `keygen` creates a 0600 key once, prints its public key, and reuses it on the next run.
#[test]
fn keygen_creates_then_reuses_the_key() {
    let dir = TempDir::new("cli-keygen");
    let key_path = dir.0.join("keys/identity.json");
    let example = std::fs::read_to_string(EXAMPLE).expect("example");
    let body = example.replace("/var/lib/provider-agent/identity.json", &key_path.display().to_string());
    let config = write_config(&dir.0, "agent.toml", &body);
    let first = agent(&["--config", &config, "keygen"]);
    assert!(first.status.success(), "stderr: {}", text(&first.stderr));
    let second = agent(&["--config", &config, "keygen"]);
    assert!(second.status.success(), "stderr: {}", text(&second.stderr));
    let public_key = |out: &Output| {
        text(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("public key: ").map(str::to_owned))
    };
    let key = public_key(&first).expect("public key printed");
    assert_eq!(key.len(), 44, "base64 of 32 bytes: {key}");
    assert_eq!(public_key(&second), Some(key));
    assert!(text(&first.stdout).contains("created") && text(&second.stdout).contains("existing key"));
    let stored = std::fs::read_to_string(&key_path).expect("key file");
    assert!(
        !text(&first.stdout).contains(stored.split('"').nth(7).unwrap_or("?")),
        "the secret must not be printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&key_path).expect("stat").permissions().mode() & 0o777,
            0o600
        );
    }
}
