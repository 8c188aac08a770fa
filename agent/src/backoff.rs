//! Reconnect backoff of protocol.md: exponential from `backoff_initial_ms`,
//! doubling to `backoff_max_ms`, each sleep multiplied by a random factor in
//! [0.8, 1.2) drawn from the agent's seeded RNG.

use rand::Rng;
use tokio::time::Duration;

/// Lower bound of the jitter factor (inclusive).
pub const JITTER_MIN: f64 = 0.8;
/// Upper bound of the jitter factor (exclusive).
pub const JITTER_MAX: f64 = 1.2;

/// Backoff state of the run loop.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    next_ms: u64,
}

impl Backoff {
    pub fn new(initial_ms: u64, max_ms: u64) -> Self {
        debug_assert!(initial_ms > 0 && initial_ms <= max_ms);
        Self {
            initial_ms,
            max_ms,
            next_ms: initial_ms,
        }
    }

    /// A session reached steady state: start again from the first step.
    pub fn reset(&mut self) {
        self.next_ms = self.initial_ms;
    }

    /// The next sleep, jittered; escalates the following one.
    pub fn next_sleep(&mut self, rng: &mut impl Rng) -> Duration {
        let base_ms = self.next_ms;
        self.next_ms = base_ms.saturating_mul(2).min(self.max_ms);
        let factor = rng.random_range(JITTER_MIN..JITTER_MAX);
        Duration::from_millis((base_ms as f64 * factor) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn doubles_to_the_cap_with_jitter_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut backoff = Backoff::new(1_000, 60_000);
        let bases = [1_000u64, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000];
        for base in bases {
            let ms = backoff.next_sleep(&mut rng).as_millis() as f64;
            assert!(
                ms >= base as f64 * JITTER_MIN - 1.0 && ms < base as f64 * JITTER_MAX,
                "{ms} vs base {base}"
            );
        }
    }

    #[test]
    fn reset_returns_to_the_first_step() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut backoff = Backoff::new(1_000, 60_000);
        for _ in 0..5 {
            backoff.next_sleep(&mut rng);
        }
        backoff.reset();
        assert!(backoff.next_sleep(&mut rng) < Duration::from_millis(1_200));
    }

    #[test]
    fn same_seed_same_sleeps() {
        let sleeps = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut backoff = Backoff::new(1_000, 60_000);
            (0..6).map(|_| backoff.next_sleep(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(sleeps(3), sleeps(3));
        assert_ne!(sleeps(3), sleeps(4));
    }
}
