//! Seeds: every host's RNG, the agent's identity and turmoil's own RNG are
//! derived from the scenario seed, so one seed fixes the whole run.

use sha2::{Digest, Sha256};

/// The seed of `host`'s RNG in its `incarnation`-th start (0 = first start;
/// a restarted host draws a fresh but reproducible sequence).
pub fn host_seed(seed: u64, host: &str, incarnation: u64) -> u64 {
    let digest = Sha256::new()
        .chain_update(b"simctl/host/")
        .chain_update(seed.to_le_bytes())
        .chain_update(incarnation.to_le_bytes())
        .chain_update(host.as_bytes())
        .finalize();
    let mut first = [0_u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// The agent's Ed25519 secret: fixed per seed, the same across restarts
/// (a restarted agent is the same provider).
pub fn identity_secret(seed: u64) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"simctl/identity/")
        .chain_update(seed.to_le_bytes())
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Host seeds are stable and differ by host, restart and scenario seed.
    #[test]
    fn seeds_differ_by_host_incarnation_and_seed() {
        let base = host_seed(7, "agent", 0);
        assert_eq!(base, host_seed(7, "agent", 0));
        assert_ne!(base, host_seed(7, "agent", 1));
        assert_ne!(base, host_seed(7, "coordinator", 0));
        assert_ne!(base, host_seed(8, "agent", 0));
    }
}
