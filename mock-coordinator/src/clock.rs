//! The injected clock (docs/ARCHITECTURE.md).

use std::sync::Arc;
use std::time::Duration;

/// Microseconds since the simulation started. In the simulation simctl
/// passes turmoil's global clock; the binary and the tests pass
/// [`tokio_clock`].
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// A clock counting from now on the runtime's `tokio::time` (real time in
/// the binary, paused and auto-advanced time in tests).
pub fn tokio_clock() -> Clock {
    let start = tokio::time::Instant::now();
    Arc::new(move || u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// Sleeps until `clock` reads `at_us` (at once if it already has).
pub(crate) async fn sleep_until_us(clock: &Clock, at_us: u64) {
    let now_us = clock();
    if at_us > now_us {
        tokio::time::sleep(Duration::from_micros(at_us - now_us)).await;
    }
}

/// Converts script milliseconds to clock microseconds.
pub(crate) fn ms_to_us(ms: u64) -> u64 {
    ms.saturating_mul(1000)
}
