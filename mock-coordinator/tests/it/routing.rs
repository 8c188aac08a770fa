//! Routing by capabilities (`route_by_capabilities`): a job is written only
//! to a session whose *latest* `capabilities` lists its model; a re-sent
//! `capabilities` (protocol.md (ext)) replaces the earlier one.

use std::time::Duration;

use crate::client::*;

/// One job each for `m-c` at 100 ms, `m-c` at 500 ms and `m-a` at 700 ms;
/// the client advertises `m-a`, `m-b`, then at 300 ms only `m-c`.
const SCRIPT: &str = "route_by_capabilities = true\n\
    [[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 100\ncount = 1\nmodel = \"m-c\"\n\
    [[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 500\ncount = 1\nmodel = \"m-c\"\n\
    [[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 700\ncount = 1\nmodel = \"m-a\"\n";

/// The first `m-c` job is refused (not advertised); after the re-sent
/// `capabilities` the second `m-c` job is written, and the `m-a` job, no
/// longer in the latest list, is refused.
#[tokio::test(start_paused = true)]
async fn a_re_sent_capabilities_replaces_the_earlier_one() {
    let (coord, log) = coordinator(SCRIPT);
    let mut ws = connect_duplex(&coord, 1 << 16).await;
    authed(&mut ws).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&mut ws, capabilities(&["m-c"])).await;
    let frame = next_json(&mut ws).await;
    assert_eq!(
        (frame["type"].as_str(), frame["model_id"].as_str()),
        (Some("job"), Some("m-c"))
    );
    coord.wait_finished().await;
    let jobs = log.jobs();
    let routed: Vec<(&str, bool, Option<&str>)> = jobs
        .iter()
        .map(|j| (j.model.as_str(), j.sent_us.is_some(), j.undeliverable.as_deref()))
        .collect();
    let refused = Some("model not advertised by the session's latest capabilities");
    assert_eq!(
        routed,
        vec![("m-c", false, refused), ("m-c", true, None), ("m-a", false, refused)]
    );
    assert_eq!(log.capabilities().len(), 2);
    assert!(log.violations().is_empty(), "{:?}", log.violations());
}
