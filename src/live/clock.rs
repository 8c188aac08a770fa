//! The script's clock in a live run. It reads 0 until the agent first
//! reaches steady state (its first authenticated session), then counts real
//! time from that instant, so the agent's start-up (process launch, backend
//! discovery, connect, handshake) never turns a scripted job into
//! `undeliverable`. Every record of the run — coordinator, backends, faults
//! — is stamped by this one clock, as the simulation stamps them all with
//! turmoil's.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// Real time since the agent first reached steady state, in µs.
/// Concurrency: set once by the live driver; read from every task.
#[derive(Clone, Debug, Default)]
pub struct ScriptClock {
    anchor: Arc<OnceLock<Instant>>,
}

impl ScriptClock {
    pub fn new() -> ScriptClock {
        ScriptClock::default()
    }

    /// Starts the script's time now; later calls change nothing.
    pub fn start(&self) {
        let _ = self.anchor.set(Instant::now());
    }

    /// Whether the script's time has started.
    pub fn started(&self) -> bool {
        self.anchor.get().is_some()
    }

    /// Microseconds of script time (0 before the start).
    pub fn now_us(&self) -> u64 {
        self.anchor.get().map_or(0, |anchor| {
            u64::try_from(anchor.elapsed().as_micros()).unwrap_or(u64::MAX)
        })
    }

    /// The clock as the mock crates take it.
    pub fn as_clock(&self) -> Arc<dyn Fn() -> u64 + Send + Sync> {
        let clock = self.clone();
        Arc::new(move || clock.now_us())
    }

    /// Sleeps until script time `at_us` (at once if it has passed; the
    /// clock must have started).
    pub async fn sleep_until_us(&self, at_us: u64) {
        let now_us = self.now_us();
        if at_us > now_us {
            tokio::time::sleep(Duration::from_micros(at_us - now_us)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clock reads 0 until started, then counts up; a second start does not move it back.
    #[tokio::test]
    async fn reads_zero_until_started() {
        let clock = ScriptClock::new();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!((clock.now_us(), clock.started()), (0, false));
        clock.start();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let first = clock.now_us();
        clock.start();
        assert!(first >= 5_000, "{first}");
        assert!((clock.as_clock())() >= first);
    }
}
