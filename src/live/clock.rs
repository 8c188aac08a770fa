//! The script's clock in a live run. The mock coordinator runs with
//! [`StartOn::FirstSession`]: its script time zero is the moment the
//! agent's first connection reaches the steady state (`auth_ok` written and
//! the session registered), so the agent's start-up (process launch,
//! backend discovery, connect, handshake) never turns a scripted job into
//! `undeliverable`. This clock is the coordinator's own script clock,
//! shared by every other recorder of the run — mock backends, the fault
//! schedule — as the simulation stamps them all with turmoil's. The driver
//! waits for time zero with [`Coordinator::wait_time_zero`]; nothing polls.

use std::sync::Arc;
use std::time::Duration;

use mock_coordinator::{Coordinator, StartOn};

/// Microseconds of script time: 0 until the agent's first steady state,
/// real time since then. Concurrency: a plain function of the coordinator's
/// shared time zero (set once, atomically), read from every task.
#[derive(Clone)]
pub struct ScriptClock {
    read: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for ScriptClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptClock").field("now_us", &self.now_us()).finish()
    }
}

impl ScriptClock {
    /// The script clock of `coordinator` (built with
    /// [`StartOn::FirstSession`] in a live run).
    pub fn of(coordinator: &Coordinator) -> ScriptClock {
        ScriptClock {
            read: coordinator.script_clock(),
        }
    }

    /// Microseconds of script time (0 before the start).
    pub fn now_us(&self) -> u64 {
        (self.read)()
    }

    /// The clock as the mock crates take it.
    pub fn as_clock(&self) -> Arc<dyn Fn() -> u64 + Send + Sync> {
        self.read.clone()
    }

    /// Sleeps until script time `at_us` (at once if it has passed; script
    /// time must have started).
    pub async fn sleep_until_us(&self, at_us: u64) {
        let now_us = self.now_us();
        if at_us > now_us {
            tokio::time::sleep(Duration::from_micros(at_us - now_us)).await;
        }
    }
}

/// The start a live run's coordinator uses.
pub const LIVE_START: StartOn = StartOn::FirstSession;
