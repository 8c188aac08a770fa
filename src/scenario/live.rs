//! `[live]`: how a scenario runs against an external agent process
//! (`simctl run --agent`). The simulation ignores this table.
//!
//! Besides the real-time slack of timing bounds it may declare that the
//! scenario cannot run live (`skip`, with the reason), bound the agent's
//! resident memory (`rss_bytes_max`), and replace `[expect]` count bounds
//! that hold only on simulated timing (`[live.expect]`, with the reason).
//! None of it changes a rule's verdict: rules judge live runs exactly as
//! they judge simulated ones, with only `slack_ms` added to their bounds.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::model::{CountBound, LatencyExpect};

/// Default `[live] slack_ms`: real time added to every timing bound of the
/// oracle in a live run. Loopback adds well under a millisecond, but a real
/// agent process shares the machine with simctl (and, in CI, with other
/// builds): a scheduler delay of a few hundred milliseconds is not a defect.
pub const LIVE_SLACK_MS_DEFAULT: u64 = 500;
/// Most `[live] slack_ms` accepted: past a minute, timing rules judge nothing.
pub const LIVE_SLACK_MS_MAX: u64 = 60_000;

/// `[live]`: live-mode settings of a scenario; every key has a default.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LiveSection {
    /// Real-time slack, in ms, added to the oracle's timing bounds
    /// (`cancel_close_ms`, `deadline_slack_ms`, `heartbeat_tolerance_ms`,
    /// `reconnect_within_ms`, `inbound_decision_ms`).
    pub slack_ms: u64,
    /// Why this scenario cannot run live, if it cannot: a live sweep lists
    /// it as skipped with this reason instead of refusing the whole sweep.
    pub skip: Option<String>,
    /// Most resident memory the agent process may hold at any sample
    /// (`agent_memory_bounded`); default `outbound_queue_bytes_max` plus
    /// `live::memory::RSS_BASE_ALLOWANCE_BYTES`.
    pub rss_bytes_max: Option<u64>,
    /// `[live.expect]`: count bounds that replace `[expect]`'s in live runs.
    pub expect: LiveExpect,
}

impl Default for LiveSection {
    fn default() -> Self {
        Self {
            slack_ms: LIVE_SLACK_MS_DEFAULT,
            skip: None,
            rss_bytes_max: None,
            expect: LiveExpect::default(),
        }
    }
}

/// `[live.expect]`: per key, the bound a live run is held to instead of the
/// `[expect]` one (or in addition, for a key `[expect]` leaves open). For
/// counts and latency tails that follow from simulated timing (how many jobs a simulated
/// backpressure turns away, say), which real sockets and a real scheduler
/// do not reproduce. Every replacement is printed in the live report with
/// `why`; rules are not touched.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LiveExpect {
    /// Why the simulated bounds do not hold live (required with any key).
    #[serde(default)]
    pub why: String,
    #[serde(default)]
    pub outcomes: BTreeMap<String, CountBound>,
    #[serde(default)]
    pub error_codes: BTreeMap<String, CountBound>,
    /// Per latency (`ttfc_ms`, `inter_chunk_ms`, `e2e_ms`), the whole
    /// percentile bound that replaces `[expect.latency]`'s.
    #[serde(default)]
    pub latency: LatencyExpect,
}

impl LiveExpect {
    /// Whether any bound is replaced.
    pub fn is_empty(&self) -> bool {
        let latency = &self.latency;
        self.outcomes.is_empty()
            && self.error_codes.is_empty()
            && latency.ttfc_ms.is_none()
            && latency.inter_chunk_ms.is_none()
            && latency.e2e_ms.is_none()
    }
}
