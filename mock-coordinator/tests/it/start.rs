//! `StartOn::FirstSession`: script time zero is the moment the first
//! session reaches the steady state, so a slow-starting agent gets every job.

use std::time::Duration;

use mock_coordinator::{Coordinator, JobOutcome, Log, Script, StartOn, tokio_clock};

use crate::client::*;

const EARLY_JOBS: &str = "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 10.0\nstart_ms = 0\ncount = 3\n";

fn started(start: StartOn) -> (std::sync::Arc<Coordinator>, Log) {
    let script = Script::from_scenario_toml(&format!("[coordinator]\n{EARLY_JOBS}")).unwrap();
    let log = Log::new();
    let coord = Coordinator::with_start(script, SEED, tokio_clock(), log.clone(), start).unwrap();
    coord.start();
    (coord, log)
}

/// An agent that logs in 1.5 s late gets every early job, timed from its login.
#[tokio::test(start_paused = true)]
async fn late_agent_gets_every_job() {
    let (coord, log) = started(StartOn::FirstSession);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(coord.time_zero_us(), None);
    assert!(log.jobs().is_empty(), "the driver waits for time zero");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    for _ in 0..3 {
        assert_eq!(next_json(&mut ws).await["type"], "job");
    }
    coord.wait_finished().await;
    let zero_ms = coord.time_zero_us().expect("zero set") / 1000;
    assert_eq!(zero_ms, 1500);
    let jobs = log.jobs();
    let sent: Vec<u64> = jobs.iter().map(|j| ms(j.sent_us.unwrap())).collect();
    assert_eq!(sent, vec![0, 100, 200], "timed from the login, not from start-up");
    assert!(jobs.iter().all(|j| j.outcome() == JobOutcome::InFlight));
    let sessions = log.sessions();
    assert_eq!((sessions[0].connected_us, sessions[0].auth_ok_us), (0, Some(0)));
    assert!(log.notes()[0].what.contains("script time zero"), "{:?}", log.notes());
}

/// Without it, the same late agent finds the early jobs already undeliverable.
#[tokio::test(start_paused = true)]
async fn clock_zero_loses_early_jobs_to_a_late_agent() {
    let (coord, log) = started(StartOn::ClockZero);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    coord.wait_finished().await;
    assert_eq!(coord.time_zero_us(), Some(0));
    assert!(log.jobs().iter().all(|j| j.outcome() == JobOutcome::Undeliverable));
}

/// A second session neither moves time zero nor restarts the script.
#[tokio::test(start_paused = true)]
async fn zero_is_set_once() {
    let (coord, log) = started(StartOn::FirstSession);
    let mut first = connect_duplex(&coord, 1 << 16).await;
    authed(&mut first).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut second = connect_duplex(&coord, 1 << 16).await;
    authed(&mut second).await;
    settle().await;
    assert_eq!(coord.time_zero_us(), Some(0));
    assert_eq!(log.jobs().len(), 3);
}

/// `stamp_writes_when_begun` (live mode): a job frame whose write blocks while the agent is not reading is stamped when its write began; by default, when it completed.
#[tokio::test(start_paused = true)]
async fn writes_can_be_stamped_when_begun() {
    for (when_begun, sent_ms) in [(true, 0), (false, 700)] {
        let (coord, log) = started(StartOn::FirstSession);
        if when_begun {
            coord.stamp_writes_when_begun();
        }
        // 64 bytes of pipe: a job frame cannot be written until the agent reads.
        let mut ws = connect_duplex(&coord, 64).await;
        authed(&mut ws).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(next_json(&mut ws).await["type"], "job");
        settle().await;
        let first = log.jobs()[0].sent_us.expect("written");
        assert_eq!(ms(first), sent_ms, "stamped when begun: {when_begun}");
    }
}
