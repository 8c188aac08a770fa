//! Deterministic token text: every token is one word of a fixed vocabulary,
//! picked by the host RNG. The words need no JSON escaping, so they are
//! copied into SSE events as they are.

use bytes::BufMut;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The vocabulary. Each token is a space followed by one of these words.
const WORDS: [&str; 64] = [
    "the", "model", "token", "stream", "answer", "simple", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
    "river", "stone", "light", "green", "field", "north", "south", "signal", "engine", "paper", "window", "garden",
    "silver", "orange", "winter", "summer", "market", "bridge", "castle", "forest", "island", "planet", "rocket",
    "violet", "yellow", "thunder", "whisper", "lantern", "harbor", "meadow", "canyon", "glacier", "desert", "compass",
    "anchor", "feather", "marble", "velvet", "copper", "pepper", "saddle", "ticket", "button", "candle", "pocket",
    "ladder", "mirror", "basket", "hammer", "kettle", "tunnel",
];

/// Appends the text of one token, e.g. `" river"`.
pub(crate) fn push_token(rng: &mut ChaCha8Rng, out: &mut impl BufMut) {
    let word = WORDS[rng.random_range(0..WORDS.len())];
    out.put_u8(b' ');
    out.put_slice(word.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Tokens are seeded, start with a space, and need no JSON escaping.
    #[test]
    fn tokens_are_plain_and_seeded() {
        let text = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut out = Vec::new();
            for _ in 0..50 {
                push_token(&mut rng, &mut out);
            }
            out
        };
        let a = text(1);
        assert_eq!(a, text(1));
        assert!(a.starts_with(b" "));
        assert!(a.iter().all(|b| b.is_ascii_lowercase() || *b == b' '));
    }
}
