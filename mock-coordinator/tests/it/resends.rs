//! Re-sent job ids (`[[coordinator.duplicates]]`): which submission each of
//! the agent's frames belongs to (README, "Attribution"), the `after`
//! triggers, and the guard that holds back a re-send of a cancelled job.
//! The test client plays the agent, correct or not, frame by frame.

use std::time::Duration;

use mock_coordinator::{JobKind, JobOutcome, JobRecord, ViolationKind};
use serde_json::Value;

use crate::client::*;

/// One job, sent at 100 ms.
const ONE_JOB: &str = "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 100\ncount = 1\n";

fn id(frame: &Value) -> String {
    frame["job_id"].as_str().expect("job_id").to_owned()
}

fn kinds(log: &mock_coordinator::Log) -> Vec<ViolationKind> {
    log.violations().iter().map(|v| v.kind).collect()
}

/// The submissions that re-send arrival `of`, in order.
fn resends(jobs: &[JobRecord], of: u64) -> Vec<&JobRecord> {
    jobs.iter().filter(|j| j.kind == JobKind::Duplicate { of }).collect()
}

/// Several re-sends while the original streams: each `duplicate_job` goes to its own re-send, every chunk and the `job_done` to the original.
#[tokio::test(start_paused = true)]
async fn duplicates_in_a_row_while_streaming() {
    let (coord, log) = coordinator(&format!(
        "{ONE_JOB}[[coordinator.duplicates]]\njob = 0\ndelay_ms = 10\n\
         [[coordinator.duplicates]]\njob = 0\ndelay_ms = 20\n\
         [[coordinator.duplicates]]\njob = 0\ndelay_ms = 30\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let original = next_text(&mut ws).await.unwrap();
    let job = id(&serde_json::from_str(&original).unwrap());
    send(&mut ws, chunk(&job, b"a")).await;
    for _ in 0..3 {
        assert_eq!(
            next_text(&mut ws).await.unwrap(),
            original,
            "a re-send is the exact frame"
        );
    }
    send(&mut ws, error(&job, "duplicate_job", 0)).await;
    send(&mut ws, chunk(&job, b"b")).await;
    send(&mut ws, error(&job, "duplicate_job", 0)).await;
    send(&mut ws, error(&job, "duplicate_job", 0)).await;
    send(&mut ws, chunk(&job, b"c")).await;
    send(&mut ws, done(&job, 1, 3, 40)).await;
    settle().await;
    let jobs = log.jobs();
    assert_eq!(jobs[0].outcome(), JobOutcome::Done);
    assert_eq!(jobs[0].bytes, b"abc");
    let copies = resends(&jobs, 0);
    assert_eq!(copies.len(), 3);
    for copy in copies {
        assert_eq!(copy.outcome(), JobOutcome::Error("duplicate_job".into()));
        assert_eq!(copy.terminals.len(), 1);
        assert!(copy.chunks.is_empty());
        assert_eq!(copy.id_was_free, Some(false));
    }
    assert_eq!(log.resends_pending(), 0);
    assert!(log.violations().is_empty(), "{:?}", log.violations());
}

/// A re-send timed from the original's terminal frame goes out the moment it is read and runs as a new job: its chunks and terminal are its own.
#[tokio::test(start_paused = true)]
async fn resend_after_terminal_is_a_new_job() {
    let (coord, log) = coordinator(&format!(
        "{ONE_JOB}[[coordinator.duplicates]]\njob = 0\nafter = \"terminal\"\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job = id(&next_json(&mut ws).await);
    tokio::time::sleep(Duration::from_millis(30)).await;
    send(&mut ws, chunk(&job, b"first")).await;
    send(&mut ws, done(&job, 1, 1, 30)).await;
    assert_eq!(id(&next_json(&mut ws).await), job);
    send(&mut ws, chunk(&job, b"second")).await;
    send(&mut ws, done(&job, 1, 1, 10)).await;
    settle().await;
    let jobs = log.jobs();
    let copy = resends(&jobs, 0)[0];
    assert_eq!(
        copy.sent_us.map(ms),
        jobs[0].terminals.first().map(|t| ms(t.at_us)),
        "sent as the terminal frame was read"
    );
    assert_eq!(
        (jobs[0].outcome(), jobs[0].bytes.to_vec()),
        (JobOutcome::Done, b"first".to_vec())
    );
    assert_eq!(
        (copy.outcome(), copy.bytes.to_vec()),
        (JobOutcome::Done, b"second".to_vec())
    );
    assert_eq!(copy.id_was_free, Some(true));
    assert_eq!(jobs[0].terminals.len(), 1);
    assert!(log.violations().is_empty(), "{:?}", log.violations());
}

/// `duplicate_job` for a re-send written after the original's terminal frame was read is a violation: the id was free.
#[tokio::test(start_paused = true)]
async fn duplicate_job_for_a_free_id_is_flagged() {
    let (coord, log) = coordinator(&format!(
        "{ONE_JOB}[[coordinator.duplicates]]\njob = 0\nafter = \"terminal\"\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job = id(&next_json(&mut ws).await);
    send(&mut ws, done(&job, 1, 1, 30)).await;
    next_json(&mut ws).await;
    send(&mut ws, error(&job, "duplicate_job", 0)).await;
    settle().await;
    let jobs = log.jobs();
    assert_eq!(jobs[0].outcome(), JobOutcome::Done);
    assert_eq!(
        resends(&jobs, 0)[0].outcome(),
        JobOutcome::Error("duplicate_job".into())
    );
    assert_eq!(kinds(&log), vec![ViolationKind::UnexpectedDuplicateJob]);
}

/// After a cancel, a late chunk belongs to the cancelled original and everything after the re-send is written belongs to the re-send.
#[tokio::test(start_paused = true)]
async fn resend_after_cancel_is_a_new_job() {
    let (coord, log) = coordinator(&format!(
        "{ONE_JOB}[[coordinator.cancels]]\nkind = \"at\"\njob = 0\nat_ms = 150\n\
         [[coordinator.duplicates]]\njob = 0\nafter = \"cancel\"\ndelay_ms = 2000\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job = id(&next_json(&mut ws).await);
    send(&mut ws, chunk(&job, b"a")).await;
    let cancel = next_json(&mut ws).await;
    assert_eq!(
        (cancel["type"].as_str(), id(&cancel)),
        (Some("job_cancel"), job.clone())
    );
    // Handed to the socket before the agent processed the cancel.
    tokio::time::sleep(Duration::from_millis(5)).await;
    send(&mut ws, chunk(&job, b"b")).await;
    assert_eq!(id(&next_json(&mut ws).await), job);
    send(&mut ws, chunk(&job, b"x")).await;
    send(&mut ws, error(&job, "internal", 1)).await;
    settle().await;
    let jobs = log.jobs();
    let copy = resends(&jobs, 0)[0];
    assert_eq!(ms(copy.sent_us.unwrap()), 2150, "2000 ms after the cancel was written");
    assert_eq!(jobs[0].outcome(), JobOutcome::Cancelled);
    assert_eq!(jobs[0].bytes, b"ab");
    assert_eq!(jobs[0].superseded_us, copy.sent_us);
    assert_eq!(copy.outcome(), JobOutcome::Error("internal".into()));
    assert_eq!(copy.bytes, b"x", "bytes_emitted 1 matches the re-send's own bytes");
    assert_eq!(copy.id_was_free, Some(true));
    assert!(log.violations().is_empty(), "{:?}", log.violations());
}

/// `duplicate_job` for a re-send written after the original was cancelled is a violation: the cancel freed the id.
#[tokio::test(start_paused = true)]
async fn duplicate_job_after_cancel_is_flagged() {
    let (coord, log) = coordinator(&format!(
        "{ONE_JOB}[[coordinator.cancels]]\nkind = \"at\"\njob = 0\nat_ms = 150\n\
         [[coordinator.duplicates]]\njob = 0\nafter = \"cancel\"\ndelay_ms = 2000\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job = id(&next_json(&mut ws).await);
    next_json(&mut ws).await;
    next_json(&mut ws).await;
    send(&mut ws, error(&job, "duplicate_job", 0)).await;
    settle().await;
    assert_eq!(kinds(&log), vec![ViolationKind::UnexpectedDuplicateJob]);
    assert_eq!(log.jobs()[0].outcome(), JobOutcome::Cancelled);
}

/// A re-send due within `resend_guard_ms` of a cancel is held back until the guard has passed, read pauses not counting, and counts as pending meanwhile.
#[tokio::test(start_paused = true)]
async fn resend_held_back_by_guard() {
    let (coord, log) = coordinator(&format!(
        "resend_guard_ms = 1000\n{ONE_JOB}[[coordinator.cancels]]\nkind = \"at\"\njob = 0\nat_ms = 200\n\
         [[coordinator.duplicates]]\njob = 0\ndelay_ms = 200\n\
         [[coordinator.read_pauses]]\nstart_ms = 500\nend_ms = 800\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job = id(&next_json(&mut ws).await);
    next_json(&mut ws).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log.resends_pending(), 1, "held, not forgotten");
    assert_eq!(id(&next_json(&mut ws).await), job);
    send(&mut ws, done(&job, 1, 1, 5)).await;
    settle().await;
    let jobs = log.jobs();
    let copy = resends(&jobs, 0)[0];
    assert_eq!(ms(copy.scheduled_us), 300);
    assert_eq!(
        ms(copy.sent_us.unwrap()),
        1500,
        "1000 ms of reading after the cancel at 200 ms, the 300 ms pause excluded"
    );
    assert_eq!(copy.outcome(), JobOutcome::Done);
    assert_eq!(log.resends_pending(), 0);
    let notes = log.notes();
    assert!(
        notes.iter().any(|n| n.what.contains("held back until 1500000 us")),
        "{notes:?}"
    );
}

/// A re-send crossing the original's terminal frame may be run or rejected; either way its answer is its own.
#[tokio::test(start_paused = true)]
async fn resend_crossing_the_terminal_either_answer() {
    let (coord, log) = coordinator(
        "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 10.0\nstart_ms = 100\ncount = 2\n\
         [[coordinator.duplicates]]\njob = 0\ndelay_ms = 50\n\
         [[coordinator.duplicates]]\njob = 1\ndelay_ms = 50\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job0 = id(&next_json(&mut ws).await);
    assert_eq!(id(&next_json(&mut ws).await), job0);
    // Job 0 ended just before its copy arrived, so the agent runs the copy.
    send(&mut ws, chunk(&job0, b"old")).await;
    send(&mut ws, done(&job0, 1, 1, 50)).await;
    send(&mut ws, chunk(&job0, b"new")).await;
    send(&mut ws, done(&job0, 1, 1, 20)).await;
    let job1 = id(&next_json(&mut ws).await);
    assert_eq!(id(&next_json(&mut ws).await), job1);
    // Job 1 was still running when its copy arrived.
    send(&mut ws, error(&job1, "duplicate_job", 0)).await;
    send(&mut ws, chunk(&job1, b"one")).await;
    send(&mut ws, done(&job1, 1, 1, 60)).await;
    settle().await;
    let jobs = log.jobs();
    let by_arrival = |a: u64| jobs.iter().find(|j| j.arrival == Some(a)).unwrap();
    let (copy0, copy1) = (resends(&jobs, 0)[0], resends(&jobs, 1)[0]);
    assert_eq!(by_arrival(0).bytes, b"old");
    assert_eq!(
        (copy0.outcome(), copy0.bytes.to_vec()),
        (JobOutcome::Done, b"new".to_vec())
    );
    assert_eq!(copy0.id_was_free, Some(false), "either answer was legitimate");
    assert_eq!(
        (by_arrival(1).outcome(), by_arrival(1).bytes.to_vec()),
        (JobOutcome::Done, b"one".to_vec())
    );
    assert_eq!(copy1.outcome(), JobOutcome::Error("duplicate_job".into()));
    assert!(log.violations().is_empty(), "{:?}", log.violations());
}

/// A second re-send arriving while the first one runs is a duplicate of the re-run: its `duplicate_job` is not taken by the re-run.
#[tokio::test(start_paused = true)]
async fn duplicate_of_a_rerun() {
    let (coord, log) = coordinator(&format!(
        "{ONE_JOB}[[coordinator.duplicates]]\njob = 0\nafter = \"terminal\"\n\
         [[coordinator.duplicates]]\njob = 0\nafter = \"terminal\"\ndelay_ms = 50\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job = id(&next_json(&mut ws).await);
    send(&mut ws, done(&job, 1, 1, 30)).await;
    next_json(&mut ws).await;
    next_json(&mut ws).await;
    // The re-run has sent nothing yet when the second copy is rejected.
    send(&mut ws, error(&job, "duplicate_job", 0)).await;
    send(&mut ws, chunk(&job, b"rerun")).await;
    send(&mut ws, done(&job, 1, 1, 80)).await;
    settle().await;
    let jobs = log.jobs();
    let copies = resends(&jobs, 0);
    assert_eq!(
        (copies[0].outcome(), copies[0].bytes.to_vec()),
        (JobOutcome::Done, b"rerun".to_vec())
    );
    assert_eq!(copies[1].outcome(), JobOutcome::Error("duplicate_job".into()));
    assert_eq!(
        (copies[0].id_was_free, copies[1].id_was_free),
        (Some(true), Some(false))
    );
    assert!(log.violations().is_empty(), "{:?}", log.violations());
}

/// A stale cancel of a finished original reaches the re-run now holding its id, which then owes no terminal frame.
#[tokio::test(start_paused = true)]
async fn stale_cancel_reaches_the_rerun() {
    let (coord, log) = coordinator(&format!(
        "{ONE_JOB}[[coordinator.duplicates]]\njob = 0\nafter = \"terminal\"\n\
         [[coordinator.cancels]]\nkind = \"at\"\njob = 0\nat_ms = 500\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job = id(&next_json(&mut ws).await);
    send(&mut ws, done(&job, 1, 1, 30)).await;
    next_json(&mut ws).await;
    send(&mut ws, chunk(&job, b"r")).await;
    let cancel = next_json(&mut ws).await;
    assert_eq!(cancel["type"], "job_cancel");
    coord.wait_finished().await;
    let jobs = log.jobs();
    let copy = resends(&jobs, 0)[0];
    assert_eq!(jobs[0].outcome(), JobOutcome::Done);
    assert_eq!(copy.outcome(), JobOutcome::Cancelled);
    assert_eq!(copy.cancel_sent_us.map(ms), Some(500));
    assert_eq!(copy.bytes, b"r");
    assert!(log.violations().is_empty(), "{:?}", log.violations());
}

/// A re-send timed from the terminal frame is not sent for a job cancelled first, and the driver still finishes.
#[tokio::test(start_paused = true)]
async fn no_resend_after_terminal_of_a_cancelled_job() {
    let (coord, log) = coordinator(&format!(
        "{ONE_JOB}[[coordinator.cancels]]\nkind = \"at\"\njob = 0\nat_ms = 150\n\
         [[coordinator.duplicates]]\njob = 0\nafter = \"terminal\"\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job = id(&next_json(&mut ws).await);
    next_json(&mut ws).await;
    // The terminal frame raced the cancel.
    send(&mut ws, done(&job, 1, 1, 50)).await;
    coord.wait_finished().await;
    settle().await;
    assert_eq!(log.jobs().len(), 1, "no re-send");
    assert_eq!(log.resends_pending(), 0);
    let notes = log.notes();
    assert!(notes.iter().any(|n| n.what.contains("not re-sent")), "{notes:?}");
    assert!(log.violations().is_empty(), "{:?}", log.violations());
}
