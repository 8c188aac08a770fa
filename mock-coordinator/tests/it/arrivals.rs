//! Arrival processes in paused time: counts and exact timing, the model
//! mix and request bodies, undeliverable jobs and restarts.

use std::time::Duration;

use futures_util::StreamExt as _;
use mock_coordinator::{CloseReason, JobKind, JobOutcome, Log, ScriptError, tokio_clock};
use serde_json::Value;

use crate::client::*;

/// Reads `n` job frames.
async fn jobs<S>(ws: &mut Ws<S>, n: usize) -> Vec<Value>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut out = Vec::new();
    while out.len() < n {
        let frame = next_json(ws).await;
        assert_eq!(frame["type"], "job", "{frame}");
        out.push(frame);
    }
    out
}

fn sent_ms(log: &Log) -> Vec<u64> {
    log.jobs().iter().map(|j| ms(j.sent_us.expect("sent"))).collect()
}

/// A fixed rate sends `count` jobs exactly `1000 / rate` ms apart.
#[tokio::test(start_paused = true)]
async fn fixed_rate_count_and_timing() {
    let (coord, log) =
        coordinator("[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 10.0\nstart_ms = 100\ncount = 5\n");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let frames = jobs(&mut ws, 5).await;
    coord.wait_finished().await;
    assert_eq!(sent_ms(&log), vec![100, 200, 300, 400, 500]);
    let arrivals: Vec<Option<u64>> = log.jobs().iter().map(|j| j.arrival).collect();
    assert_eq!(arrivals, (0..5).map(Some).collect::<Vec<_>>());
    let ids: Vec<&str> = frames.iter().map(|f| f["job_id"].as_str().unwrap()).collect();
    let recorded: Vec<String> = log.jobs().into_iter().map(|j| j.job_id.to_string()).collect();
    assert_eq!(ids, recorded);
    assert!(ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok()));
    assert!(
        tokio::time::timeout(Duration::from_secs(5), next_text(&mut ws))
            .await
            .is_err(),
        "no sixth job"
    );
}

/// Poisson arrivals: the right count, increasing times, and the same schedule and ids for the same seed.
#[tokio::test(start_paused = true)]
async fn poisson_is_reproducible() {
    let script = "[[coordinator.arrivals]]\nkind = \"poisson\"\nrate_per_sec = 20.0\nstart_ms = 10\ncount = 30\n";
    let mut runs = Vec::new();
    for seed in [5, 5, 6] {
        let (coord, log) = coordinator_seeded(script, seed);
        let mut ws = connect_duplex(&coord, 1 << 16).await;
        authed(&mut ws).await;
        jobs(&mut ws, 30).await;
        coord.wait_finished().await;
        let jobs = log.jobs();
        assert_eq!(jobs.len(), 30);
        assert!(jobs.windows(2).all(|w| w[0].sent_us <= w[1].sent_us));
        // tokio's timer has millisecond resolution: a job goes out in the
        // millisecond its arrival falls in.
        assert!(
            jobs.iter()
                .all(|j| (j.scheduled_us..j.scheduled_us + 1000).contains(&j.sent_us.unwrap()))
        );
        runs.push(jobs.into_iter().map(|j| (j.job_id, j.sent_us)).collect::<Vec<_>>());
    }
    assert_eq!(runs[0], runs[1]);
    assert_ne!(runs[0], runs[2]);
    let span_ms = ms(runs[0][29].1.unwrap() - runs[0][0].1.unwrap());
    assert!((500..3000).contains(&span_ms), "30 arrivals at 20/s span {span_ms} ms");
}

/// Bursts send `burst_size` jobs at once every `period_ms`, up to `count`.
#[tokio::test(start_paused = true)]
async fn bursts() {
    let (coord, log) = coordinator(
        "[[coordinator.arrivals]]\nkind = \"burst\"\nperiod_ms = 500\nburst_size = 3\nstart_ms = 100\ncount = 7\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    jobs(&mut ws, 7).await;
    coord.wait_finished().await;
    assert_eq!(sent_ms(&log), vec![100, 100, 100, 600, 600, 600, 1100]);
}

/// A closed loop keeps exactly `outstanding` jobs in flight until `count`.
#[tokio::test(start_paused = true)]
async fn closed_loop_keeps_outstanding() {
    let (coord, log) = coordinator("[[coordinator.arrivals]]\nkind = \"closed_loop\"\noutstanding = 2\ncount = 5\n");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let mut open: Vec<String> = jobs(&mut ws, 2)
        .await
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_owned())
        .collect();
    let mut finished = 0;
    while finished < 5 {
        assert!(
            tokio::time::timeout(Duration::from_secs(1), next_text(&mut ws))
                .await
                .is_err(),
            "more than 2 in flight"
        );
        let id = open.remove(0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(&mut ws, done(&id, 1, 1, 100)).await;
        finished += 1;
        if finished <= 3 {
            let next = jobs(&mut ws, 1).await;
            open.push(next[0]["job_id"].as_str().unwrap().to_owned());
        }
    }
    coord.wait_finished().await;
    settle().await;
    let jobs = log.jobs();
    assert_eq!(jobs.len(), 5);
    assert!(jobs.iter().all(|j| j.outcome() == JobOutcome::Done));
    assert_eq!(jobs[2].rule, Some(0));
}

/// A closed loop waits for a session instead of producing undeliverable jobs.
#[tokio::test(start_paused = true)]
async fn closed_loop_waits_for_session() {
    let (coord, log) = coordinator("[[coordinator.arrivals]]\nkind = \"closed_loop\"\noutstanding = 1\ncount = 2\n");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(log.jobs().is_empty());
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job = jobs(&mut ws, 1).await;
    assert_eq!(ms(log.jobs()[0].sent_us.unwrap()), 3000);
    send(&mut ws, done(job[0]["job_id"].as_str().unwrap(), 0, 0, 0)).await;
    jobs(&mut ws, 1).await;
    coord.wait_finished().await;
}

/// The model mix, pinned models, deadlines and the request template shape every job frame.
#[tokio::test(start_paused = true)]
async fn models_deadlines_and_bodies() {
    let (coord, log) = coordinator(
        "deadline_ms = 1234\n\
         [[coordinator.models]]\nid = \"m-a\"\nweight = 1.0\n\
         [[coordinator.models]]\nid = \"m-b\"\nweight = 1.0\n\
         [coordinator.request]\nmax_tokens = 17\nprompt_chars = 40\nformat = \"anthropic\"\nextra = { temperature = 0.25 }\n\
         [[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 100.0\nstart_ms = 10\ncount = 40\n\
         [[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 5\ncount = 1\nmodel = \"pinned\"\ndeadline_ms = 99\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let frames = jobs(&mut ws, 41).await;
    assert_eq!(frames[0]["model_id"], "pinned");
    assert_eq!(frames[0]["deadline_ms"], 99);
    let rest = &frames[1..];
    let a = rest.iter().filter(|f| f["model_id"] == "m-a").count();
    assert!((10..=30).contains(&a), "mix 1:1 gave {a} of 40 to m-a");
    assert!(rest.iter().all(|f| f["model_id"] == "m-a" || f["model_id"] == "m-b"));
    for f in &frames {
        let body = &f["request"];
        assert_eq!(body["user"], f["job_id"]);
        assert_eq!(body["model"], f["model_id"]);
        assert_eq!(body["max_tokens"], 17);
        assert_eq!(body["temperature"], 0.25);
        assert_eq!(body["messages"][0]["content"].as_str().unwrap().len(), 40);
        assert_eq!(f["format"], "anthropic");
    }
    assert!(rest.iter().all(|f| f["deadline_ms"] == 1234));
    let jobs = log.jobs();
    assert_eq!(jobs[0].deadline_ms, Some(99));
    assert_eq!(jobs[0].model, "pinned");
}

/// `deadline_ms_omit` sends jobs without a deadline field.
#[tokio::test(start_paused = true)]
async fn deadline_omitted() {
    let (coord, log) = coordinator(
        "deadline_ms_omit = true\n[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 10\ncount = 1\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let frames = jobs(&mut ws, 1).await;
    assert!(frames[0].get("deadline_ms").is_none(), "{}", frames[0]);
    assert_eq!(log.jobs()[0].deadline_ms, None);
}

/// Jobs due while no session exists are recorded as undeliverable; later ones go out.
#[tokio::test(start_paused = true)]
async fn undeliverable_without_session() {
    let (coord, log) = coordinator("[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 10.0\ncount = 3\n");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let frames = jobs(&mut ws, 1).await;
    let jobs = log.jobs();
    let outcomes: Vec<JobOutcome> = jobs.iter().map(|j| j.outcome()).collect();
    assert_eq!(
        outcomes,
        vec![
            JobOutcome::Undeliverable,
            JobOutcome::Undeliverable,
            JobOutcome::InFlight
        ]
    );
    assert_eq!(jobs[0].undeliverable.as_deref(), Some("no authenticated session"));
    assert_eq!(jobs[0].conn, None);
    assert_eq!(jobs[2].arrival, Some(2));
    assert_eq!(frames[0]["job_id"].as_str(), Some(jobs[2].job_id.as_str()));
}

/// A new coordinator on the same log continues the schedule: next arrival index, fresh ids, same plan.
#[tokio::test(start_paused = true)]
async fn restart_continues_schedule() {
    let script = "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 10.0\nstart_ms = 100\ncount = 4\n\
                  [[coordinator.disconnects]]\nat_ms = 250\n";
    let clock = tokio_clock();
    let log = Log::new();
    let first = coordinator_on(script, 11, clock.clone(), &log).unwrap();
    let mut ws = connect_duplex(&first, 1 << 16).await;
    authed(&mut ws).await;
    jobs(&mut ws, 2).await;
    assert_eq!(next_text(&mut ws).await, None, "scripted disconnect at 250 ms");
    drop(first);
    // The seed of a restarted instance is not used: the schedule continues.
    let second = coordinator_on(script, 999, clock.clone(), &log).unwrap();
    let mut ws = connect_duplex(&second, 1 << 16).await;
    authed(&mut ws).await;
    jobs(&mut ws, 2).await;
    second.wait_finished().await;
    let jobs = log.jobs();
    let arrivals: Vec<Option<u64>> = jobs.iter().map(|j| j.arrival).collect();
    assert_eq!(arrivals, vec![Some(0), Some(1), Some(2), Some(3)]);
    assert_eq!(jobs[0].outcome(), JobOutcome::SessionLost);
    assert_eq!(jobs[2].conn, Some(2));
    assert_eq!(sent_ms(&log), vec![100, 200, 300, 400]);
    // The same plan as an uninterrupted run with the first seed.
    let (reference, reference_log) = coordinator_seeded(script, 11);
    let mut ws = connect_duplex(&reference, 1 << 16).await;
    authed(&mut ws).await;
    reference.wait_finished().await;
    let ids = |jobs: &[mock_coordinator::JobRecord]| jobs.iter().map(|j| j.job_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&jobs), ids(&reference_log.jobs()));
    assert!(jobs.iter().all(|j| j.kind == JobKind::Normal));
}

/// A log that carries another script's schedule is refused.
#[tokio::test(start_paused = true)]
async fn log_with_other_script_is_refused() {
    let log = Log::new();
    coordinator_on("provider_id = \"a\"\n", 1, tokio_clock(), &log).unwrap();
    let err = coordinator_on("provider_id = \"b\"\n", 1, tokio_clock(), &log).err();
    assert_eq!(err, Some(ScriptError::LogScriptMismatch));
}

/// A second login supersedes the first: the older connection is closed (its job lost) and new jobs go to the newer one.
#[tokio::test(start_paused = true)]
async fn newer_login_supersedes_older_connection() {
    let (coord, log) =
        coordinator("[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 10.0\nstart_ms = 100\ncount = 2\n");
    let mut first = connect_duplex(&coord, 1 << 16).await;
    authed(&mut first).await;
    jobs(&mut first, 1).await;
    let mut second = connect_duplex(&coord, 1 << 16).await;
    authed(&mut second).await;
    jobs(&mut second, 1).await;
    settle().await;
    let conns: Vec<Option<u64>> = log.jobs().iter().map(|j| j.conn).collect();
    assert_eq!(conns, vec![Some(1), Some(2)]);
    let sessions = log.sessions();
    assert_eq!(sessions[0].close_reason, Some(CloseReason::Superseded));
    assert!(sessions[1].closed_us.is_none());
    assert_eq!(log.jobs()[0].outcome(), JobOutcome::SessionLost);
    // The older socket is dropped: its reader sees the end of the stream.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = first.next().await {}
    })
    .await;
    assert!(end.is_ok(), "the superseded connection was not closed");
}

/// A coordinator built on a log with connections still open (its predecessor crashed) closes them and loses their jobs.
#[tokio::test(start_paused = true)]
async fn restart_closes_orphaned_sessions() {
    let script = "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 10.0\nstart_ms = 100\ncount = 1\n";
    let clock = tokio_clock();
    let log = Log::new();
    let crashed = coordinator_on(script, 1, clock.clone(), &log).unwrap();
    let mut ws = connect_duplex(&crashed, 1 << 16).await;
    authed(&mut ws).await;
    jobs(&mut ws, 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let _restarted = coordinator_on(script, 2, clock, &log).unwrap();
    let session = &log.sessions()[0];
    assert_eq!(
        session.close_reason,
        Some(mock_coordinator::CloseReason::CoordinatorRestarted)
    );
    assert_eq!(ms(session.closed_us.unwrap()), 500);
    assert_eq!(log.jobs()[0].outcome(), JobOutcome::SessionLost);
}
