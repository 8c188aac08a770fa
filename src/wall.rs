//! The one place simctl reads the wall clock: to report how fast the
//! simulation ran (simulated time per wall-clock time). It never feeds
//! anything inside the simulated world.

use std::time::{Duration, Instant};

/// A wall-clock stopwatch.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts measuring now.
    #[allow(clippy::disallowed_methods)] // Wall time only for the sim-to-wall speed figure, outside the simulation.
    pub fn start() -> Self {
        Self(Instant::now())
    }

    /// Wall time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}
