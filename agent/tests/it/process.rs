//! The `provider-agent run` binary as an operator runs it: a real process
//! with a config file and an identity on disk, serving jobs from the mock
//! coordinator and a mock vLLM on loopback, and stopping cleanly on SIGTERM.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use mock_coordinator::CloseReason;
use tokio::time::{Instant, sleep, timeout};

use crate::loopback::{JOBS, Mocks};
use crate::support::TempDir;

/// Kills the agent process if a test fails before it exits by itself.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Agent {
    /// Starts `provider-agent run`, its log going to `log_path`.
    fn spawn(config: &Path, log_path: &Path) -> Agent {
        let log = std::fs::File::create(log_path).expect("create agent log");
        let child = Command::new(env!("CARGO_BIN_EXE_provider-agent"))
            .arg("--config")
            .arg(config)
            .arg("--allow-insecure")
            .arg("run")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn provider-agent");
        Agent(child)
    }

    /// Sends SIGTERM through the shell's `kill` builtin (std has no signal
    /// API, and the builtin exists wherever `sh` does).
    fn terminate(&self) {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -TERM {}", self.0.id()))
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, at most `limit`.
    async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().expect("wait for provider-agent") {
                return status;
            }
            assert!(start.elapsed() < limit, "provider-agent still running after {limit:?}");
            sleep(Duration::from_millis(20)).await;
        }
    }
}

fn write_config(dir: &Path, backend_port: u16, coordinator_port: u16) -> std::path::PathBuf {
    let body = format!(
        "[coordinator]\nurl = \"ws://127.0.0.1:{coordinator_port}/\"\n\
         [identity]\nkey_path = \"{}\"\n\
         [[backends]]\nkind = \"vllm\"\nurl = \"http://127.0.0.1:{backend_port}\"\n\
         [pricing]\ndefault_input_per_1m = 0.1\ndefault_output_per_1m = 0.2\n\
         [limits]\nmax_concurrent = 2\n",
        dir.join("identity.json").display()
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, body).expect("write config");
    path
}

/// Proves `provider-agent run` serves jobs as a process, creates its identity on first start, and exits 0 on SIGTERM, closing its session; its log, redirected to a file, holds no ANSI colour codes.
#[tokio::test]
async fn run_serves_jobs_and_stops_on_sigterm() {
    let dir = TempDir::new("process-run");
    let mocks = Mocks::start().await;
    let log = &mocks.log;
    let config = write_config(&dir.0, mocks.backend_port, mocks.coordinator_port);
    let log_path = dir.0.join("agent.log");
    let mut agent = Agent::spawn(&config, &log_path);
    let agent_log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let all_done = async {
        while mocks.jobs_done() < JOBS {
            if let Some(status) = agent.0.try_wait().expect("poll provider-agent") {
                panic!("provider-agent exited early ({status}); log:\n{}", agent_log());
            }
            sleep(Duration::from_millis(20)).await;
        }
    };
    timeout(Duration::from_secs(30), all_done)
        .await
        .unwrap_or_else(|_| panic!("every job done within 30 s; agent log:\n{}", agent_log()));
    assert!(dir.0.join("identity.json").exists(), "identity created on first start");

    agent.terminate();
    let status = agent.exit_within(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status:?}; agent log:\n{}", agent_log());
    // Colour only on a terminal: this log is a file.
    let text = agent_log();
    assert!(text.contains("INFO"), "the agent logged at info:\n{text}");
    assert!(
        !text.contains("\x1b["),
        "ANSI escape codes in a log redirected to a file:\n{text}"
    );
    let closed = async {
        while log.sessions().first().is_none_or(|s| s.closed_us.is_none()) {
            sleep(Duration::from_millis(20)).await;
        }
    };
    timeout(Duration::from_secs(5), closed).await.expect("session closed");
    assert_eq!(log.sessions()[0].close_reason, Some(CloseReason::AgentClosed));
}
