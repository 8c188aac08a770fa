//! The host's one seeded random number generator and the draws made from it.

use std::sync::{Mutex, PoisonError};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The single RNG of a backend host, shared by all its connections. Draws
/// happen in task order, which the simulation makes deterministic.
pub(crate) struct HostRng {
    /// Locked for one batch of draws at a time, never across an `.await`.
    rng: Mutex<ChaCha8Rng>,
}

impl HostRng {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    /// Runs `draw` with the RNG locked; keep it short and await-free.
    pub fn with<R>(&self, draw: impl FnOnce(&mut ChaCha8Rng) -> R) -> R {
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        draw(&mut rng)
    }
}

/// `base_ms` ± a uniform draw of up to `jitter_ms`, in microseconds.
/// Validation keeps `jitter_ms <= base_ms`, so the result is never negative.
pub(crate) fn jittered_us(rng: &mut ChaCha8Rng, base_ms: u64, jitter_ms: u64) -> u64 {
    let base_us = base_ms.saturating_mul(1000);
    if jitter_ms == 0 {
        return base_us;
    }
    let jitter_us = jitter_ms.saturating_mul(1000);
    let offset = rng.random_range(0..=jitter_us.saturating_mul(2));
    (base_us + offset).saturating_sub(jitter_us)
}

/// Whether a draw against `probability` hits.
pub(crate) fn hits(rng: &mut ChaCha8Rng, probability: f64) -> bool {
    rng.random::<f64>() < probability
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jitter stays inside ± its bound and zero jitter draws nothing.
    #[test]
    fn jitter_bounds() {
        let host = HostRng::new(7);
        host.with(|rng| {
            for _ in 0..1000 {
                let us = jittered_us(rng, 10, 3);
                assert!((7_000..=13_000).contains(&us), "{us}");
            }
        });
        let a = HostRng::new(1);
        let b = HostRng::new(1);
        a.with(|rng| assert_eq!(jittered_us(rng, 5, 0), 5_000));
        let (x, y) = (a.with(|r| r.random::<u64>()), b.with(|r| r.random::<u64>()));
        assert_eq!(x, y, "a zero-jitter draw must not consume randomness");
    }

    /// The same seed gives the same draws.
    #[test]
    fn seeded_draws_repeat() {
        let draw = |seed| HostRng::new(seed).with(|rng| jittered_us(rng, 100, 50));
        assert_eq!(draw(3), draw(3));
    }

    /// Probability 0 never hits and 1 always does.
    #[test]
    fn probability_edges() {
        HostRng::new(0).with(|rng| {
            assert!((0..100).all(|_| !hits(rng, 0.0)));
            assert!((0..100).all(|_| hits(rng, 1.0)));
        });
    }
}
