//! Scripted cancels: at a time, after the Nth chunk, a seeded fraction, and
//! timed to race a job's completion.

use std::time::Duration;

use mock_coordinator::{CancelTrigger, JobOutcome};
use serde_json::Value;

use crate::client::*;

const TWO_JOBS: &str = "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 10.0\nstart_ms = 100\ncount = 2\n";

/// Asserts that nothing arrives for a second of simulated time.
async fn quiet<S>(ws: &mut Ws<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let next = tokio::time::timeout(Duration::from_secs(1), next_text(ws)).await;
    assert!(next.is_err(), "unexpected frame {next:?}");
}

fn id(frame: &Value) -> String {
    frame["job_id"].as_str().expect("job_id").to_owned()
}

/// `at` cancels its job at `at_ms`, between the two jobs' arrivals.
#[tokio::test(start_paused = true)]
async fn cancel_at_time() {
    let (coord, log) = coordinator(&format!(
        "{TWO_JOBS}[[coordinator.cancels]]\nkind = \"at\"\njob = 0\nat_ms = 150\n\
         [[coordinator.cancels]]\nkind = \"at\"\njob = 1\nat_ms = 120\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job0 = next_json(&mut ws).await;
    let cancel = next_json(&mut ws).await;
    let job1 = next_json(&mut ws).await;
    assert_eq!(
        (job0["type"].as_str(), cancel["type"].as_str(), job1["type"].as_str()),
        (Some("job"), Some("job_cancel"), Some("job"))
    );
    assert_eq!(cancel["job_id"], job0["job_id"]);
    coord.wait_finished().await;
    let jobs = log.jobs();
    assert_eq!(ms(jobs[0].cancel_sent_us.unwrap()), 150);
    assert_eq!(jobs[0].outcome(), JobOutcome::Cancelled);
    assert_eq!(jobs[0].cancel_plan, vec![CancelTrigger::At { rule: 0, at_ms: 150 }]);
    assert_eq!(jobs[1].cancel_sent_us, None);
    let notes = log.notes();
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].what.contains("cancels[1]") && notes[0].what.contains("not been issued"),
        "{notes:?}"
    );
}

/// `after_chunks` cancels right after the Nth chunk, once, and only its job.
#[tokio::test(start_paused = true)]
async fn cancel_after_chunks() {
    let (coord, log) = coordinator(&format!(
        "{TWO_JOBS}[[coordinator.cancels]]\nkind = \"after_chunks\"\njob = 0\nafter_chunks = 2\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let (job0, job1) = (id(&next_json(&mut ws).await), id(&next_json(&mut ws).await));
    send(&mut ws, chunk(&job0, b"one")).await;
    send(&mut ws, chunk(&job1, b"x")).await;
    send(&mut ws, chunk(&job1, b"y")).await;
    quiet(&mut ws).await;
    send(&mut ws, chunk(&job0, b"two")).await;
    let cancel = next_json(&mut ws).await;
    assert_eq!(
        (cancel["type"].as_str(), id(&cancel)),
        (Some("job_cancel"), job0.clone())
    );
    send(&mut ws, chunk(&job0, b"three")).await;
    quiet(&mut ws).await;
    let jobs = log.jobs();
    assert_eq!(jobs[0].chunks.len(), 3);
    assert!(jobs[0].cancel_sent_us.unwrap() >= jobs[0].chunks[1].at_us);
    assert!(
        jobs[0].cancel_sent_us.unwrap() <= jobs[0].chunks[2].at_us,
        "no simulated time passes in between"
    );
    assert_eq!(jobs[1].cancel_sent_us, None);
}

/// `fraction` cancels the RNG-selected jobs exactly `delay_ms` after each was sent.
#[tokio::test(start_paused = true)]
async fn cancel_fraction() {
    let (coord, log) = coordinator(
        "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 10.0\nstart_ms = 100\ncount = 20\n\
         [[coordinator.cancels]]\nkind = \"fraction\"\nfraction = 0.5\ndelay_ms = 50\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let mut cancelled = Vec::new();
    let mut jobs_seen = 0;
    // Read until a simulated second passes without a frame.
    while let Ok(Some(text)) = tokio::time::timeout(Duration::from_secs(1), next_text(&mut ws)).await {
        let frame: Value = serde_json::from_str(&text).unwrap();
        match frame["type"].as_str() {
            Some("job") => jobs_seen += 1,
            Some("job_cancel") => cancelled.push(id(&frame)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(jobs_seen, 20);
    let jobs = log.jobs();
    let selected: Vec<String> = jobs
        .iter()
        .filter(|j| {
            j.cancel_plan
                .iter()
                .any(|t| matches!(t, CancelTrigger::AfterSend { delay_ms: 50, .. }))
        })
        .map(|j| j.job_id.to_string())
        .collect();
    assert_eq!(cancelled, selected);
    assert!(
        (3..=17).contains(&selected.len()),
        "fraction 0.5 of 20 selected {}",
        selected.len()
    );
    for j in jobs.iter().filter(|j| j.cancel_sent_us.is_some()) {
        assert_eq!(ms(j.cancel_sent_us.unwrap() - j.sent_us.unwrap()), 50);
    }
}

/// `race_completion` cancels the moment a chunk carries a finish_reason, before the terminal frame.
#[tokio::test(start_paused = true)]
async fn cancel_races_completion() {
    let (coord, log) = coordinator(&format!(
        "{TWO_JOBS}[[coordinator.cancels]]\nkind = \"race_completion\"\njob = 0\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job0 = id(&next_json(&mut ws).await);
    next_json(&mut ws).await;
    send(
        &mut ws,
        chunk(
            &job0,
            b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n",
        ),
    )
    .await;
    quiet(&mut ws).await;
    send(
        &mut ws,
        chunk(
            &job0,
            b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        ),
    )
    .await;
    let cancel = next_json(&mut ws).await;
    assert_eq!(
        (cancel["type"].as_str(), id(&cancel)),
        (Some("job_cancel"), job0.clone())
    );
    send(&mut ws, chunk(&job0, b"data: [DONE]\n\n")).await;
    send(&mut ws, done(&job0, 5, 2, 30)).await;
    settle().await;
    let job = &log.jobs()[0];
    assert_eq!(job.outcome(), JobOutcome::Done, "the agent won the race");
    assert!(job.cancel_sent_us.unwrap() <= job.terminals[0].at_us);
    assert_eq!(job.chunks.len(), 3);
    assert!(log.violations().is_empty());
}

/// Without `job`, after_chunks applies to every job (fraction defaults to 1).
#[tokio::test(start_paused = true)]
async fn after_chunks_for_every_job() {
    let (coord, log) = coordinator(&format!(
        "{TWO_JOBS}[[coordinator.cancels]]\nkind = \"after_chunks\"\nafter_chunks = 1\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    for _ in 0..2 {
        let job = id(&next_json(&mut ws).await);
        send(&mut ws, chunk(&job, b"a")).await;
        assert_eq!(id(&next_json(&mut ws).await), job);
    }
    assert!(log.jobs().iter().all(|j| j.cancel_sent_us.is_some()));
}
