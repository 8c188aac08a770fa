//! Time inside the simulation: the injected record clock and the fixed epoch.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The simulation's epoch: 2026-01-01T00:00:00Z, in Unix milliseconds.
pub const EPOCH_UNIX_MS: u64 = 1_767_225_600_000;

/// The epoch as a `SystemTime` (for turmoil's builder).
pub fn epoch() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(EPOCH_UNIX_MS)
}

/// Microseconds since the simulation started, on turmoil's one global clock.
/// Outside a simulated host it reads 0.
pub fn sim_now_us() -> u64 {
    turmoil::sim_elapsed().map_or(0, |elapsed| u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
}

/// [`sim_now_us`] as the mock crates' `Clock`.
pub fn record_clock() -> Arc<dyn Fn() -> u64 + Send + Sync> {
    Arc::new(sim_now_us)
}
