//! `[live]`: how a scenario runs against an external agent process
//! (`simctl run --agent`). The simulation ignores this table.

use serde::Deserialize;

/// Default `[live] slack_ms`: real time added to every timing bound of the
/// oracle in a live run. Loopback adds well under a millisecond, but a real
/// agent process shares the machine with simctl (and, in CI, with other
/// builds): a scheduler delay of a few hundred milliseconds is not a defect.
pub const LIVE_SLACK_MS_DEFAULT: u64 = 500;
/// Most `[live] slack_ms` accepted: past a minute, timing rules judge nothing.
pub const LIVE_SLACK_MS_MAX: u64 = 60_000;

/// `[live]`: live-mode settings of a scenario; every key has a default.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LiveSection {
    /// Real-time slack, in ms, added to the oracle's timing bounds
    /// (`cancel_close_ms`, `deadline_slack_ms`, `heartbeat_tolerance_ms`,
    /// `reconnect_within_ms`, `inbound_decision_ms`).
    pub slack_ms: u64,
}

impl Default for LiveSection {
    fn default() -> Self {
        Self {
            slack_ms: LIVE_SLACK_MS_DEFAULT,
        }
    }
}
