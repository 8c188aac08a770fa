//! The `provider-agent run` binary as an operator runs it: a real process
//! with a config file and an identity on disk, serving jobs from the mock
//! coordinator and a mock vLLM on loopback, and stopping cleanly on SIGTERM.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use mock_backends::{MockBackend, Recorder, parse_profile_toml};
use mock_coordinator::{CloseReason, Coordinator, JobOutcome, Log, Script, tokio_clock};
use tokio::net::TcpListener;
use tokio::time::{Instant, sleep, timeout};

use crate::support::TempDir;

const JOBS: usize = 4;

const BACKEND_PROFILE: &str = r#"
host = "vllm"
kind = "vllm"
[[models]]
id = "m"
context_window = 4096
ttft_ms = 5
inter_token_ms = 1
output_tokens = 12
"#;

const SCRIPT: &str = r#"
[coordinator]
deadline_ms = 10000
[[coordinator.models]]
id = "m"
weight = 1.0
[[coordinator.arrivals]]
kind = "fixed"
rate_per_sec = 20.0
start_ms = 300
count = 4
"#;

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

/// Starts the mock vLLM and the mock coordinator on loopback; returns their
/// ports and the coordinator's log.
async fn start_mocks() -> (u16, u16, Log) {
    let clock = tokio_clock();
    let profile = parse_profile_toml(BACKEND_PROFILE).unwrap();
    let backend = MockBackend::new(profile, 1, clock.clone(), Recorder::new()).expect("valid profile");
    let backend_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_port = backend_listener.local_addr().unwrap().port();
    tokio::spawn(backend.serve_tcp(backend_listener));
    let log = Log::default();
    let script = Script::from_scenario_toml(SCRIPT).unwrap();
    let coordinator = Coordinator::new(script, 7, clock, log.clone()).unwrap();
    coordinator.start();
    let coordinator_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let coordinator_port = coordinator_listener.local_addr().unwrap().port();
    tokio::spawn(coordinator.serve_tcp(coordinator_listener));
    (backend_port, coordinator_port, log)
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

/// Proves `provider-agent run` serves jobs as a process, creates its identity on first start, and exits 0 on SIGTERM, closing its session.
#[tokio::test]
async fn run_serves_jobs_and_stops_on_sigterm() {
    let dir = TempDir::new("process-run");
    let (backend_port, coordinator_port, log) = start_mocks().await;
    let config = write_config(&dir.0, backend_port, coordinator_port);
    let log_path = dir.0.join("agent.log");
    let mut agent = Agent::spawn(&config, &log_path);
    let agent_log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let all_done = async {
        while log.jobs().iter().filter(|j| j.outcome() == JobOutcome::Done).count() < JOBS {
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
    let closed = async {
        while log.sessions().first().is_none_or(|s| s.closed_us.is_none()) {
            sleep(Duration::from_millis(20)).await;
        }
    };
    timeout(Duration::from_secs(5), closed).await.expect("session closed");
    assert_eq!(log.sessions()[0].close_reason, Some(CloseReason::AgentClosed));
}
