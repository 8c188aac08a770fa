//! `race_completion` cancels on real loopback sockets: the coordinator
//! reacts per frame, so the cancel leaves before it decodes the terminal
//! frame that already sits in its read buffer, and the digest counts the
//! races actually run.

use std::sync::Arc;

use futures_util::SinkExt as _;
use mock_coordinator::{Coordinator, JobOutcome, Log, Script, tokio_clock};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::client::*;

/// Jobs raced in the loopback test.
const RACES: u64 = 20;

const FINAL_EVENT: &[u8] =
    b"data: {\"id\":\"c\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

async fn coordinator_on_loopback(body: &str) -> (Arc<Coordinator>, Log, String) {
    let script = Script::from_scenario_toml(&format!("[coordinator]\n{body}")).unwrap();
    let log = Log::new();
    let coord = Coordinator::new(script, SEED, tokio_clock(), log.clone()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(coord.clone().serve_tcp(listener));
    (coord, log, addr)
}

/// With the completing chunk and the terminal frame written in one TCP
/// segment, every cancel is still written before the terminal is read.
#[tokio::test]
async fn cancel_beats_terminal_already_in_the_read_buffer() {
    let (coord, log, addr) = coordinator_on_loopback(&format!(
        "[[coordinator.arrivals]]\nkind = \"closed_loop\"\noutstanding = 1\ncount = {RACES}\n\
         [[coordinator.cancels]]\nkind = \"race_completion\"\n"
    ))
    .await;
    let stream = TcpStream::connect(&addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), stream)
        .await
        .unwrap();
    authed(&mut ws).await;
    for _ in 0..RACES {
        let job: Value = next_json(&mut ws).await;
        assert_eq!(job["type"], "job");
        let id = job["job_id"].as_str().unwrap().to_owned();
        // Both frames leave in one write: the coordinator reads them in one batch.
        ws.feed(Message::text(chunk(&id, FINAL_EVENT))).await.unwrap();
        ws.feed(Message::text(done(&id, 3, 1, 10))).await.unwrap();
        ws.flush().await.unwrap();
        let cancel = next_json(&mut ws).await;
        assert_eq!(
            (cancel["type"].as_str(), cancel["job_id"].as_str()),
            (Some("job_cancel"), Some(id.as_str()))
        );
    }
    let jobs = log.jobs();
    assert_eq!(jobs.len() as u64, RACES);
    for job in &jobs {
        assert!(job.race_fired_us.is_some(), "{job:?}");
        assert_eq!(job.cancel_before_terminal, Some(true), "the race was run: {job:?}");
        assert_eq!(job.outcome(), JobOutcome::Done, "the agent's terminal still counts");
    }
    let races = coord.digest().races;
    assert_eq!(
        (races.selected, races.fired, races.run, races.stale),
        (RACES, RACES, RACES, 0)
    );
    assert!(log.violations().is_empty(), "{:?}", log.violations());
}

/// A job whose terminal frame comes before any completing chunk is
/// selected but never raced: no cancel fires, and none is counted run.
#[tokio::test(start_paused = true)]
async fn terminal_first_fires_no_race() {
    let (coord, log) = coordinator(
        "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 100\ncount = 1\n\
         [[coordinator.cancels]]\nkind = \"race_completion\"\n",
    );
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    let id = next_json(&mut ws).await["job_id"].as_str().unwrap().to_owned();
    send(&mut ws, done(&id, 3, 1, 10)).await;
    send(&mut ws, chunk(&id, FINAL_EVENT)).await;
    settle().await;
    let job = &log.jobs()[0];
    assert_eq!(job.race_fired_us, None, "no cancel fires after the terminal");
    assert_eq!(job.cancel_before_terminal, Some(false));
    let races = coord.digest().races;
    assert_eq!((races.selected, races.fired, races.run, races.stale), (1, 0, 0, 0));
}
