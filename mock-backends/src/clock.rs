//! The injected clock every record timestamp comes from.

use std::sync::Arc;

/// Microseconds since the simulation (or the binary) started. In the
/// simulation simctl passes turmoil's global elapsed time, so records of
/// different hosts are comparable; the binary passes a clock built on
/// `tokio::time::Instant` taken at start-up. Never read inside a lock.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Milliseconds as microseconds, saturating instead of overflowing.
pub(crate) fn ms_to_us(ms: u64) -> u64 {
    ms.saturating_mul(1000)
}
