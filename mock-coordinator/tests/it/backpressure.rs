//! Read pauses and slow reads: the coordinator stops (or slows) reading so
//! the agent's writes block in the pipe, while its own writes go on.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use mock_coordinator::{ReadBlock, ReadWindow};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::client::*;

/// Pipe buffer per direction: small, so a few frames fill it.
const PIPE_BYTES: usize = 4096;

fn padded_heartbeat(pad_bytes: usize) -> String {
    let mut hb: serde_json::Value = serde_json::from_str(&heartbeat(1)).unwrap();
    hb["pad"] = serde_json::Value::String("x".repeat(pad_bytes));
    hb.to_string()
}

/// During a read pause the agent's writes block until the pause ends, while jobs still arrive on time.
#[tokio::test(start_paused = true)]
async fn read_pause_blocks_agent_writes() {
    let (coord, log) = coordinator(
        "[[coordinator.read_pauses]]\nstart_ms = 1000\nend_ms = 3000\n\
         [[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 2000\ncount = 1\n",
    );
    let start = Instant::now();
    let mut ws = connect_duplex(&coord, PIPE_BYTES).await;
    authed(&mut ws).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (mut sink, mut stream) = ws.split();
    // The client's reader runs beside its blocked writer, as the agent's does.
    let reader = tokio::spawn(async move {
        let Some(Ok(Message::Text(text))) = stream.next().await else {
            panic!("no job")
        };
        (start.elapsed(), text.as_str().to_owned())
    });
    for _ in 0..50 {
        sink.send(Message::text(padded_heartbeat(1000))).await.unwrap();
    }
    let writes_done = start.elapsed();
    let (job_at, job) = reader.await.unwrap();
    assert!(job.contains("\"type\":\"job\""), "{job}");
    assert_eq!(
        job_at,
        Duration::from_millis(2000),
        "the writer kept writing during the pause"
    );
    assert!(
        writes_done >= Duration::from_millis(3000),
        "writes finished at {writes_done:?}, inside the pause"
    );
    settle().await;
    let heartbeats = log.heartbeats();
    assert_eq!(heartbeats.len(), 50);
    assert!(heartbeats.iter().all(|h| ms(h.at_us) >= 3000));
    let windows = log.read_blocked_windows();
    let expected = ReadWindow {
        conn: 1,
        block: ReadBlock::Pause,
        start_us: 1_000_000,
        end_us: Some(3_000_000),
        frames_read: 0,
    };
    assert_eq!(windows, vec![expected]);
}

/// A slow-read window reads at most `frames_per_sec`: frames are taken exactly 1/rate apart.
#[tokio::test(start_paused = true)]
async fn slow_reads_pace_frames() {
    let (coord, log) = coordinator("[[coordinator.slow_reads]]\nstart_ms = 0\nend_ms = 10000\nframes_per_sec = 10.0\n");
    let mut ws = connect_duplex(&coord, PIPE_BYTES).await;
    authed(&mut ws).await;
    for q in 0..20 {
        send(&mut ws, heartbeat(q)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let times: Vec<u64> = log.heartbeats().iter().map(|h| h.at_us).collect();
    assert_eq!(times.len(), 20);
    assert!(times.windows(2).all(|w| w[1] - w[0] == 100_000), "{times:?}");
    let windows = log.read_blocked_windows();
    assert_eq!(windows.len(), 1);
    assert_eq!(windows[0].block, ReadBlock::Slow { frames_per_sec: 10.0 });
    assert_eq!(windows[0].frames_read, 21, "capabilities and 20 heartbeats");
}

/// After a slow window ends, reading is immediate again and the window's end is recorded.
#[tokio::test(start_paused = true)]
async fn slow_window_ends() {
    let (coord, log) = coordinator("[[coordinator.slow_reads]]\nstart_ms = 0\nend_ms = 500\nframes_per_sec = 2.0\n");
    let mut ws = connect_duplex(&coord, PIPE_BYTES).await;
    authed(&mut ws).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for q in 0..3 {
        send(&mut ws, heartbeat(q)).await;
    }
    settle().await;
    let times: Vec<u64> = log.heartbeats().iter().map(|h| ms(h.at_us)).collect();
    assert_eq!(times, vec![1000, 1000, 1000]);
    assert_eq!(log.read_blocked_windows()[0].end_us, Some(500_000));
}
