//! Wall-clock time, as the caller defines it.
//!
//! The agent needs wall time only for `heartbeat.last_error_at`. Production
//! reads the system clock once at start-up and advances it with
//! `tokio::time`; the simulation passes its own epoch. Either way the agent
//! code itself never reads the system clock.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio::time::Instant;

/// Milliseconds since the Unix epoch.
pub trait WallClock: Send + Sync + 'static {
    fn unix_ms(&self) -> u64;
}

/// Shared clock handle.
pub type SharedClock = Arc<dyn WallClock>;

/// A wall clock anchored at a given Unix time and advanced by `tokio::time`
/// (so it pauses and jumps with tokio's test clock and turmoil's).
#[derive(Clone, Copy, Debug)]
pub struct AnchoredClock {
    unix_ms_at_anchor: u64,
    anchor: Instant,
}

impl AnchoredClock {
    /// Anchors `unix_ms` at the current `tokio::time::Instant`.
    pub fn new(unix_ms: u64) -> Self {
        Self {
            unix_ms_at_anchor: unix_ms,
            anchor: Instant::now(),
        }
    }
}

impl WallClock for AnchoredClock {
    fn unix_ms(&self) -> u64 {
        let elapsed_ms = u64::try_from(self.anchor.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.unix_ms_at_anchor.saturating_add(elapsed_ms)
    }
}

/// Formats Unix milliseconds as RFC 3339 with millisecond precision, UTC.
pub fn rfc3339_ms(unix_ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(unix_ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc_millis() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
    }

    #[tokio::test(start_paused = true)]
    async fn anchored_clock_follows_tokio_time() {
        let clock = AnchoredClock::new(1_000);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(clock.unix_ms(), 1_250);
    }
}
