//! The coordinator's own end-of-run checks (`Digest::checks`): each one
//! flags the agent misbehaviour it names, and a correct exchange passes all.

use mock_coordinator::{CheckReport, Coordinator, Digest};
use serde_json::{Value, json};

use crate::client::*;

const ONE_JOB: &str = "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 100\ncount = 1\n";

/// A vLLM-style chunk of completion `id` carrying `content`.
fn sse(id: &str, content: &str, finish: Option<&str>) -> Vec<u8> {
    let event = json!({"id": id, "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]});
    format!("data: {event}\n\n").into_bytes()
}

fn check<'a>(digest: &'a Digest, name: &str) -> &'a CheckReport {
    digest.checks.iter().find(|c| c.name == name).expect("check exists")
}

fn digest(coord: &std::sync::Arc<Coordinator>) -> Digest {
    coord.digest()
}

fn id(frame: &Value) -> String {
    frame["job_id"].as_str().expect("job_id").to_owned()
}

/// A well-behaved exchange (chunks, heartbeat with the job counted, job_done) passes every check.
#[tokio::test(start_paused = true)]
async fn clean_run_passes_every_check() {
    let (coord, _log) = coordinator(ONE_JOB);
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job = id(&next_json(&mut ws).await);
    send(&mut ws, chunk(&job, &sse("c-1", "hi", None))).await;
    send(&mut ws, heartbeat(1)).await;
    send(&mut ws, chunk(&job, &sse("c-1", "", Some("stop")))).await;
    send(&mut ws, chunk(&job, b"data: [DONE]\n\n")).await;
    send(&mut ws, done(&job, 3, 1, 20)).await;
    settle().await;
    let d = digest(&coord);
    assert_eq!(d.check_violations(), 0, "{d}");
    assert_eq!(d.checks.len(), 5);
    assert_eq!(check(&d, "heartbeat_queue_depth").judged, 1);
    assert_eq!(check(&d, "two_completions").judged, 1);
    assert_eq!(check(&d, "two_terminals").judged, 1);
}

/// An answerable malformed job without a terminal by the end is a violation; one answered is not.
#[tokio::test(start_paused = true)]
async fn unanswered_malformed_job_is_flagged() {
    let (coord, log) = coordinator(
        "[[coordinator.malformed]]\nat_ms = 100\nkind = \"missing_model\"\n\
         [[coordinator.malformed]]\nat_ms = 110\nkind = \"bad_deadline\"\n\
         [[coordinator.malformed]]\nat_ms = 120\nkind = \"not_json\"\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    for _ in 0..3 {
        next_text(&mut ws).await.unwrap();
    }
    let answered = log.jobs()[0].job_id.clone();
    send(&mut ws, error(&answered, "invalid_job", 0)).await;
    settle().await;
    let d = digest(&coord);
    let c = check(&d, "malformed_unanswered");
    assert_eq!(c.judged, 2, "not_json is not answerable: {c:?}");
    assert_eq!(c.violations.len(), 1, "{c:?}");
    assert_eq!(c.violations[0].job_id.as_deref(), Some(log.jobs()[1].job_id.as_str()));
    assert!(c.violations[0].what.contains("malformed bad_deadline"), "{c:?}");
}

/// Two terminal frames for one submission are flagged.
#[tokio::test(start_paused = true)]
async fn two_terminals_are_flagged() {
    let (coord, _log) = coordinator(ONE_JOB);
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job = id(&next_json(&mut ws).await);
    send(&mut ws, done(&job, 1, 1, 5)).await;
    send(&mut ws, error(&job, "internal", 0)).await;
    settle().await;
    let d = digest(&coord);
    let c = check(&d, "two_terminals");
    assert_eq!(c.violations.len(), 1, "{c:?}");
    assert!(c.violations[0].what.contains("job_done") && c.violations[0].what.contains("job_error internal"));
}

/// A live re-send that the agent ran puts a second completion in the original's bytes.
#[tokio::test(start_paused = true)]
async fn live_duplicate_run_is_flagged() {
    let (coord, _log) = coordinator(&format!(
        "{ONE_JOB}[[coordinator.duplicates]]\njob = 0\ndelay_ms = 10\n"
    ));
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let job = id(&next_json(&mut ws).await);
    send(&mut ws, chunk(&job, &sse("c-first", "a", None))).await;
    assert_eq!(id(&next_json(&mut ws).await), job, "the re-send arrives");
    // A broken agent runs the re-send instead of answering duplicate_job.
    send(&mut ws, chunk(&job, &sse("c-second", "b", None))).await;
    send(&mut ws, chunk(&job, &sse("c-first", "", Some("stop")))).await;
    settle().await;
    let d = digest(&coord);
    let c = check(&d, "two_completions");
    assert_eq!(c.violations.len(), 1, "{c:?}");
    let what = &c.violations[0].what;
    assert!(what.contains("c-first") && what.contains("c-second"), "{what}");
    assert!(
        what.contains("re-send of its id was written while it was live"),
        "{what}"
    );
}

/// queue_depth 0 while a job surely streams is flagged; after a cancel it is excused.
#[tokio::test(start_paused = true)]
async fn zero_queue_depth_while_streaming_is_flagged() {
    let (coord, _log) = coordinator(
        "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 10.0\nstart_ms = 100\ncount = 2\n\
         [[coordinator.cancels]]\nkind = \"at\"\njob = 1\nat_ms = 300\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let (a, b) = (id(&next_json(&mut ws).await), id(&next_json(&mut ws).await));
    send(&mut ws, chunk(&a, &sse("c-a", "x", None))).await;
    send(&mut ws, chunk(&b, &sse("c-b", "y", None))).await;
    send(&mut ws, heartbeat(0)).await; // both surely stream: a lie
    assert_eq!(next_json(&mut ws).await["type"], "job_cancel");
    send(&mut ws, heartbeat(1)).await; // b was cancelled: only a counts
    send(&mut ws, done(&a, 1, 1, 5)).await;
    send(&mut ws, error(&b, "cancelled", 0)).await;
    settle().await;
    let d = digest(&coord);
    let c = check(&d, "heartbeat_queue_depth");
    assert_eq!(c.judged, 2);
    assert_eq!(c.violations.len(), 1, "{c:?}");
    assert!(c.violations[0].what.contains("queue_depth 0 while 2 job(s)"), "{c:?}");
    assert_eq!(
        c.excused,
        vec![(
            "jobs cancelled while streaming: not counted from the cancel on".to_owned(),
            1
        )]
    );
}

/// tokens_emitted beyond what the relayed bytes could hold is flagged; within it is not.
#[tokio::test(start_paused = true)]
async fn tokens_emitted_beyond_the_bytes_is_flagged() {
    let (coord, _log) =
        coordinator("[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 10.0\nstart_ms = 100\ncount = 2\n");
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let (a, b) = (id(&next_json(&mut ws).await), id(&next_json(&mut ws).await));
    let bytes = sse("c-a", "abc", None);
    send(&mut ws, chunk(&a, &bytes)).await;
    let fail = |job: &str, tokens: u64, relayed: usize| {
        json!({"type": "job_error", "job_id": job, "error_code": "backend_error", "message": "cut",
               "tokens_emitted": tokens, "bytes_emitted": relayed})
        .to_string()
    };
    send(&mut ws, fail(&a, 3, bytes.len())).await; // three characters: fine
    send(&mut ws, fail(&b, 7, 0)).await; // nothing relayed: a lie
    settle().await;
    let d = digest(&coord);
    let c = check(&d, "tokens_emitted");
    assert_eq!(c.judged, 2);
    assert_eq!(c.violations.len(), 1, "{c:?}");
    assert_eq!(c.violations[0].job_id.as_deref(), Some(b.as_str()));
    assert!(c.violations[0].what.contains("tokens_emitted 7"), "{c:?}");
}
