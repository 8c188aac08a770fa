//! The production path end to end over real loopback TCP: `TcpConnector`,
//! the hyper adapter, the session and the run loop, against the mock
//! coordinator and a mock vLLM serving on real sockets in real time.

use std::sync::Arc;

use mock_backends::{MockBackend, Recorder, parse_profile_toml};
use mock_coordinator::{Coordinator, JobOutcome, Log, Script, tokio_clock};
use provider_agent::backend::BackendKind;
use provider_agent::clock::AnchoredClock;
use provider_agent::config::BackendConfig;
use provider_agent::identity::Identity;
use provider_agent::net::TcpConnector;
use provider_agent::observer::NoopObserver;
use provider_agent::run::{AgentDeps, run};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::{Duration, sleep, timeout};

use crate::fixtures::config;

const JOBS: usize = 5;

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
count = 5
"#;

/// Five scripted jobs are served over real TCP, each relayed byte-exact from
/// the backend to the coordinator, and shutdown is clean.
#[tokio::test]
async fn agent_serves_jobs_over_real_tcp() {
    let clock = tokio_clock();
    let recorder = Recorder::new();
    let backend = MockBackend::new(
        parse_profile_toml(BACKEND_PROFILE).unwrap(),
        1,
        clock.clone(),
        recorder.clone(),
    )
    .expect("valid profile");
    let backend_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_port = backend_listener.local_addr().unwrap().port();
    tokio::spawn(backend.serve_tcp(backend_listener));

    let log = Log::default();
    let coordinator = Coordinator::new(Script::from_scenario_toml(SCRIPT).unwrap(), 7, clock, log.clone()).unwrap();
    coordinator.start();
    let coordinator_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let coordinator_port = coordinator_listener.local_addr().unwrap().port();
    tokio::spawn(coordinator.clone().serve_tcp(coordinator_listener));

    let mut cfg = config(2);
    cfg.coordinator.url = format!("ws://127.0.0.1:{coordinator_port}/");
    cfg.backends = vec![BackendConfig {
        kind: BackendKind::Vllm,
        url: Some(format!("http://127.0.0.1:{backend_port}")),
        api_key_env: None,
        models: None,
    }];
    let (shutdown_tx, shutdown) = watch::channel(false);
    let deps = AgentDeps {
        connector: Arc::new(TcpConnector),
        clock: Arc::new(AnchoredClock::new(0)),
        rng_seed: 5,
        shutdown,
        observer: Arc::new(NoopObserver),
        env: Arc::new(|_| None),
        allow_insecure: true,
    };
    let agent = tokio::spawn(run(cfg, Identity::from_secret_bytes([4; 32]), deps));

    let all_done = async {
        while log.jobs().iter().filter(|j| j.outcome() == JobOutcome::Done).count() < JOBS {
            sleep(Duration::from_millis(20)).await;
        }
    };
    timeout(Duration::from_secs(20), all_done)
        .await
        .expect("five jobs done within 20 s");
    let records = recorder.records();
    for job in log.jobs() {
        let served = records
            .iter()
            .find(|r| r.job_id.as_deref() == Some(job.job_id.as_str()))
            .expect("backend saw the job");
        assert_eq!(job.bytes, served.body, "job {} relayed byte-exact", job.job_id);
        assert!(!job.bytes.is_empty());
    }
    shutdown_tx.send(true).unwrap();
    timeout(Duration::from_secs(10), agent)
        .await
        .expect("agent stops")
        .unwrap()
        .expect("clean shutdown");
}
