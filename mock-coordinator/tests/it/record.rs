//! The record against exactly what the test client sent: frames, per-job
//! reassembly, terminals, heartbeats, and the summary's metrics.

use std::time::Duration;

use mock_coordinator::{ChunkRecord, Dir, JobOutcome, Terminal};

use crate::client::*;

fn sleep_ms(ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(ms))
}

/// Every inbound frame, reassembled bytes and terminals match what the client sent; metrics follow.
#[tokio::test(start_paused = true)]
async fn record_matches_client() {
    let (coord, log) = coordinator(
        "[[coordinator.arrivals]]\nkind = \"burst\"\nperiod_ms = 1000\nburst_size = 2\nstart_ms = 100\ncount = 2\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let a = next_json(&mut ws).await["job_id"].as_str().unwrap().to_owned();
    let b = next_json(&mut ws).await["job_id"].as_str().unwrap().to_owned();
    let mut sent = vec![capabilities(&["m-a", "m-b"])];
    let script: Vec<(u64, String)> = vec![
        (30, chunk(&a, b"data: {\"x\":1}\n\n")),
        (0, chunk(&b, b"data: {\"y\"")),
        (20, chunk(&a, b"data: [DONE]\n\n")),
        (0, heartbeat(2)),
        (50, done(&a, 11, 7, 100)),
        (0, chunk(&b, b":2}\n\n")),
        (0, error(&b, "internal", 15)),
    ];
    for (delay_ms, text) in script {
        sleep_ms(delay_ms).await;
        send(&mut ws, text.clone()).await;
        sent.push(text);
    }
    settle().await;

    let frames = log.frames();
    let inbound: Vec<_> = frames
        .iter()
        .filter(|f| f.dir == Dir::In && f.kind != "auth_response")
        .collect();
    assert_eq!(inbound.len(), sent.len());
    for (record, text) in inbound.iter().zip(&sent) {
        assert_eq!(record.text_len as usize, text.len());
        if record.kind == "job_chunk" {
            assert_eq!(record.text, None);
            assert!(record.data_len.is_some());
        } else {
            assert_eq!(record.text.as_deref(), Some(text.as_str()));
        }
    }
    let outbound: Vec<&str> = frames
        .iter()
        .filter(|f| f.dir == Dir::Out)
        .map(|f| f.kind.as_str())
        .collect();
    assert_eq!(outbound, vec!["auth_challenge", "auth_ok", "job", "job"]);
    // A well-formed job frame keeps its length and id, not its text; the
    // handshake's frames keep theirs.
    for f in frames.iter().filter(|f| f.dir == Dir::Out) {
        assert_eq!(f.text.is_none(), f.kind == "job", "{f:?}");
        assert!(f.text_len > 0);
    }
    let ids: Vec<_> = frames
        .iter()
        .filter(|f| f.kind == "job")
        .filter_map(|f| f.job_id.clone())
        .collect();
    assert_eq!(ids, vec![a.as_str(), b.as_str()]);
    let chunk_of_a = frames.iter().find(|f| f.kind == "job_chunk").unwrap();
    assert_eq!(chunk_of_a.job_id.as_ref(), Some(&ids[0]));

    let jobs = log.jobs();
    assert_eq!(jobs[0].bytes, b"data: {\"x\":1}\n\ndata: [DONE]\n\n");
    assert_eq!(jobs[1].bytes, b"data: {\"y\":2}\n\n");
    assert_eq!(
        jobs[0].chunks,
        vec![
            ChunkRecord {
                at_us: 130_000,
                len: 15
            },
            ChunkRecord {
                at_us: 150_000,
                len: 14
            }
        ]
    );
    assert_eq!(
        jobs[0].terminals[0].frame,
        Terminal::Done {
            input_tokens: 11,
            output_tokens: 7,
            duration_ms: 100
        }
    );
    assert_eq!(ms(jobs[0].terminals[0].at_us), 200);
    let expected_error = Terminal::Error {
        code: "internal".into(),
        message: "test".into(),
        tokens_emitted: 0,
        bytes_emitted: Some(15),
    };
    assert_eq!(jobs[1].terminals[0].frame, expected_error);
    assert_eq!(jobs[1].outcome(), JobOutcome::Error("internal".into()));
    assert!(log.violations().is_empty(), "{:?}", log.violations());

    let hb = &log.heartbeats()[0];
    assert_eq!(
        (hb.queue_depth, hb.tokens_per_sec_p50, hb.last_error_code.clone()),
        (Some(2), Some(12.5), None)
    );
    assert_eq!(ms(hb.at_us), 150);

    let summary = log.summary();
    assert_eq!(summary.jobs_total, 2);
    assert_eq!(summary.outcomes.get("done"), Some(&1));
    assert_eq!(summary.error_codes.get("internal"), Some(&1));
    assert_eq!(summary.time_to_first_chunk.count, 2);
    assert_eq!(summary.time_to_first_chunk.p50_us / 1000, 30);
    assert_eq!(summary.time_to_first_chunk.max_us / 1000, 30);
    assert_eq!(summary.end_to_end.max_us / 1000, 100);
    assert_eq!(summary.inter_chunk_gap.count, 2);
    assert_eq!((summary.chunks_total, summary.bytes_total), (4, 44));
    assert_eq!(summary.span_us, 100_000);
    assert!((summary.chunks_per_sec - 40.0).abs() < 1e-9);
    let text = summary.to_string();
    assert!(text.contains("jobs: 2 (done 1, error 1)"), "{text}");
    assert!(text.contains("error codes: internal 1"), "{text}");

    let json = serde_json::to_value(log.snapshot()).unwrap();
    assert_eq!(json["jobs"][1]["bytes"], "ZGF0YTogeyJ5IjoyfQoK");
    assert_eq!(json["sessions"][0]["conn"], 1);

    assert!(log.all_jobs(|job| job.index < 2));
    assert!(!log.all_jobs(|job| job.index == 0));

    // Taking the snapshot moves the same lists out and leaves them empty.
    let taken = serde_json::to_value(log.take_snapshot()).unwrap();
    assert_eq!(taken, json);
    let after = log.snapshot();
    assert!(after.jobs.is_empty() && after.frames.is_empty() && after.sessions.is_empty());
}
