//! Draws from the coordinator's one seeded RNG: job ids, nonces, model
//! choices, exponential gaps and selection draws. Keeping them here makes the
//! order of draws easy to audit.

use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use crate::script::ModelWeight;

/// A random (version 4 layout) UUID built from RNG bytes.
pub(crate) fn job_id(rng: &mut ChaCha8Rng) -> Uuid {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// `len` random nonce bytes.
pub(crate) fn nonce(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// A model id from the weighted mix. Validation guarantees a positive total;
/// should rounding walk past the end, the last model with weight is used.
pub(crate) fn model(rng: &mut ChaCha8Rng, models: &[ModelWeight]) -> String {
    let total: f64 = models.iter().map(|m| m.weight).sum();
    let mut point = rng.random::<f64>() * total;
    for m in models {
        if point < m.weight {
            return m.id.clone();
        }
        point -= m.weight;
    }
    models
        .iter()
        .rev()
        .find(|m| m.weight > 0.0)
        .or(models.last())
        .map(|m| m.id.clone())
        .unwrap_or_default()
}

/// An exponentially distributed gap with mean `1 / rate_per_sec` seconds,
/// in microseconds (inverse transform sampling).
pub(crate) fn exp_gap_us(rng: &mut ChaCha8Rng, rate_per_sec: f64) -> u64 {
    let u: f64 = rng.random::<f64>();
    let gap_sec = -(1.0 - u).ln() / rate_per_sec;
    (gap_sec * 1e6).round() as u64
}

/// A uniform draw in `[0, 1)` for fraction selection.
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    rng.random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The same seed gives the same ids, and ids are version-4 UUIDs.
    #[test]
    fn job_ids_are_seeded() {
        let a = job_id(&mut ChaCha8Rng::seed_from_u64(7));
        let b = job_id(&mut ChaCha8Rng::seed_from_u64(7));
        assert_eq!(a, b);
        assert_eq!(a.get_version_num(), 4);
    }

    /// The model mix follows the weights.
    #[test]
    fn model_mix_follows_weights() {
        let models = vec![
            ModelWeight {
                id: "a".into(),
                weight: 3.0,
            },
            ModelWeight {
                id: "b".into(),
                weight: 1.0,
            },
            ModelWeight {
                id: "never".into(),
                weight: 0.0,
            },
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let picks: Vec<String> = (0..4000).map(|_| model(&mut rng, &models)).collect();
        let a = picks.iter().filter(|m| *m == "a").count();
        assert!((2800..3200).contains(&a), "{a}");
        assert!(!picks.iter().any(|m| m == "never"));
    }

    /// Exponential gaps have roughly the requested mean.
    #[test]
    fn exp_gap_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 20_000u64;
        let sum: u64 = (0..n).map(|_| exp_gap_us(&mut rng, 10.0)).sum();
        let mean_us = sum / n;
        assert!((95_000..105_000).contains(&mean_us), "{mean_us}");
    }
}
