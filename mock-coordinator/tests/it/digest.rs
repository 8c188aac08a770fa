//! The digest printed after the summary: how each connection ended and when
//! it was last heard from, heartbeat figures, what came back per malformed
//! and duplicate kind, and the jobs left waiting — so a wedged agent does
//! not look like one that finished.

use std::time::Duration;

use serde_json::json;

use crate::client::*;

/// A wedged agent: the digest shows the idle-timeout close, the last frame
/// read, the heartbeat range, the answers by kind and the job left waiting.
#[tokio::test(start_paused = true)]
async fn wedged_agent_is_visible() {
    let (coord, log) = coordinator(
        "idle_timeout_ms = 2000\n\
         [[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 10.0\nstart_ms = 100\ncount = 2\n\
         [[coordinator.malformed]]\nat_ms = 300\nkind = \"missing_model\"\n\
         [[coordinator.duplicates]]\njob = 0\ndelay_ms = 10\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let a = next_json(&mut ws).await["job_id"].as_str().unwrap().to_owned();
    assert_eq!(
        next_json(&mut ws).await["job_id"].as_str(),
        Some(a.as_str()),
        "the re-send"
    );
    let b = next_json(&mut ws).await["job_id"].as_str().unwrap().to_owned();
    let malformed = next_text(&mut ws).await.unwrap();
    let malformed_id = log.jobs()[3].job_id.clone();
    assert!(malformed.contains(malformed_id.as_str()));
    send(&mut ws, heartbeat(2)).await;
    send(&mut ws, error(&a, "duplicate_job", 0)).await;
    send(&mut ws, error(&malformed_id, "invalid_job", 0)).await;
    let hb = json!({"type": "heartbeat", "queue_depth": 5, "tokens_per_sec_p50": 30.0, "p50_latency_ms": 10.0,
                    "p95_latency_ms": 20.0, "error_rate_60s": 0.5, "last_error_at": null, "last_error_code": "timeout"});
    send(&mut ws, hb.to_string()).await;
    send(&mut ws, done(&a, 1, 1, 5)).await;
    // Then silence: job b never ends, and the idle timeout closes the connection.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let d = coord.digest();
    let text = d.to_string();
    let conn = &d.connections[0];
    assert_eq!(conn.close_reason, "idle_timeout", "{text}");
    let last_read_ms = conn.last_read_us.unwrap() / 1000;
    assert!((300..400).contains(&last_read_ms), "{text}");
    let depth = d.heartbeats.ranges["queue_depth"];
    assert_eq!((depth.min, depth.max, depth.count), (2.0, 5.0, 2));
    assert_eq!(d.heartbeats.last_error_codes, vec!["timeout".to_owned()]);
    let kinds: Vec<(&str, u64)> = d.answers.iter().map(|a| (a.kind.as_str(), a.sent)).collect();
    assert_eq!(kinds, vec![("duplicate", 1), ("malformed missing_model", 1)]);
    assert_eq!(d.answers[0].answers["job_error duplicate_job"], 1);
    assert_eq!(d.answers[1].expected.as_deref(), Some("job_error invalid_job"));
    // The lost session settles b as session_lost, not waiting; before the
    // close it was in flight, which the digest of that moment showed.
    assert!(d.waiting.is_empty(), "{text}");
    assert!(text.contains("closed") && text.contains("idle_timeout"), "{text}");
    assert!(text.contains("queue_depth 2..5"), "{text}");
    let _ = b;
}

/// Jobs still in flight at the end are listed by kind with their ids.
#[tokio::test(start_paused = true)]
async fn waiting_jobs_are_listed() {
    let (coord, _log) = coordinator(
        "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 10.0\nstart_ms = 100\ncount = 5\n\
         [[coordinator.cancels]]\nkind = \"at\"\njob = 4\nat_ms = 600\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(next_json(&mut ws).await["job_id"].as_str().unwrap().to_owned());
    }
    send(&mut ws, done(&ids[0], 1, 1, 5)).await;
    coord.wait_finished().await;
    settle().await;
    let d = coord.digest();
    let groups: Vec<(&str, &str, u64)> = d.waiting.iter().map(|w| (w.kind.as_str(), w.state, w.count)).collect();
    assert_eq!(groups, vec![("normal", "cancelled", 1), ("normal", "in_flight", 3)]);
    assert_eq!(d.waiting[1].job_ids, ids[1..4].to_vec());
    let text = d.to_string();
    assert!(text.contains("3 still in flight"), "{text}");
    assert_eq!(d.connections[0].close_reason, "open");
}
