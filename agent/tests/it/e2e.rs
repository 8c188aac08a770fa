//! The production path end to end over real loopback TCP: `TcpConnector`,
//! the hyper adapter, the session and the run loop, against the mock
//! coordinator and a mock vLLM serving on real sockets in real time.

use std::sync::Arc;

use provider_agent::backend::BackendKind;
use provider_agent::clock::AnchoredClock;
use provider_agent::config::BackendConfig;
use provider_agent::identity::Identity;
use provider_agent::net::TcpConnector;
use provider_agent::observer::NoopObserver;
use provider_agent::run::{AgentDeps, run};
use tokio::sync::watch;
use tokio::time::{Duration, sleep, timeout};

use crate::fixtures::config;
use crate::loopback::{JOBS, Mocks};

/// Five scripted jobs are served over real TCP, each relayed byte-exact from
/// the backend to the coordinator, and shutdown is clean.
#[tokio::test]
async fn agent_serves_jobs_over_real_tcp() {
    let mocks = Mocks::start().await;

    let mut cfg = config(2);
    cfg.coordinator.url = format!("ws://127.0.0.1:{}/", mocks.coordinator_port);
    cfg.backends = vec![BackendConfig {
        kind: BackendKind::Vllm,
        url: Some(format!("http://127.0.0.1:{}", mocks.backend_port)),
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
        provider_ids: Arc::new(provider_agent::provider_id::MemoryStore::default()),
    };
    let agent = tokio::spawn(run(cfg, Identity::from_secret_bytes([4; 32]), deps));

    let all_done = async {
        while mocks.jobs_done() < JOBS {
            sleep(Duration::from_millis(20)).await;
        }
    };
    timeout(Duration::from_secs(20), all_done)
        .await
        .expect("five jobs done within 20 s");
    let records = mocks.recorder.records();
    for job in mocks.log.jobs() {
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
