//! The mock coordinator and a mock vLLM serving on real loopback sockets in
//! real time, shared by the end-to-end tests of the library (`e2e`) and of
//! the binary (`process`).

use mock_backends::{MockBackend, Recorder, parse_profile_toml};
use mock_coordinator::{Coordinator, JobOutcome, Log, Script, tokio_clock};
use tokio::net::TcpListener;

/// Jobs the script sends.
pub const JOBS: usize = 5;

/// One model answering 12 tokens quickly.
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

/// [`JOBS`] jobs for model `m`, 50 ms apart from 300 ms on.
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
count = 5
"#;

/// Both mocks, serving in background tasks of the current runtime.
pub struct Mocks {
    pub backend_port: u16,
    pub coordinator_port: u16,
    /// The coordinator's record of sessions and jobs.
    pub log: Log,
    /// The backend's record of every request it served.
    pub recorder: Recorder,
}

impl Mocks {
    /// Starts both mocks on ephemeral loopback ports.
    pub async fn start() -> Mocks {
        let clock = tokio_clock();
        let recorder = Recorder::new();
        let profile = parse_profile_toml(BACKEND_PROFILE).expect("valid profile");
        let backend = MockBackend::new(profile, 1, clock.clone(), recorder.clone()).expect("valid profile");
        let backend_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend_port = backend_listener.local_addr().unwrap().port();
        tokio::spawn(backend.serve_tcp(backend_listener));
        let log = Log::default();
        let script = Script::from_scenario_toml(SCRIPT).expect("valid script");
        let coordinator = Coordinator::new(script, 7, clock, log.clone()).unwrap();
        coordinator.start();
        let coordinator_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let coordinator_port = coordinator_listener.local_addr().unwrap().port();
        tokio::spawn(coordinator.serve_tcp(coordinator_listener));
        Mocks {
            backend_port,
            coordinator_port,
            log,
            recorder,
        }
    }

    /// Jobs answered with `job_done` so far.
    pub fn jobs_done(&self) -> usize {
        self.log
            .jobs()
            .iter()
            .filter(|j| j.outcome() == JobOutcome::Done)
            .count()
    }
}
