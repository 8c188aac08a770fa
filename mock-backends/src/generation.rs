//! How long a completion is, why it stops, and when each token is ready.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::request::ChatRequest;
use crate::rng::jittered_us;
use crate::spec::{ModelProfile, OutputTokens};
use crate::sse::FinishReason;

/// The shape of one completion, decided when the request is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Generation {
    /// Completion tokens to generate.
    pub output_tokens: u64,
    /// `finish_reason` of the last event.
    pub finish: FinishReason,
}

/// Decides the completion length, or refuses a request that does not fit
/// the context window with vLLM's 400 message.
pub(crate) fn plan_output(
    profile: &ModelProfile,
    request: &ChatRequest,
    rng: &mut ChaCha8Rng,
) -> Result<Generation, String> {
    let window = u64::from(profile.context_window);
    let prompt = request.prompt_tokens;
    if prompt >= window {
        return Err(format!(
            "This model's maximum context length is {window} tokens. However, your request has \
             {prompt} input tokens. Please reduce the length of the input messages."
        ));
    }
    if let Some(max) = request.max_tokens
        && prompt.saturating_add(max) > window
    {
        return Err(format!(
            "This model's maximum context length is {window} tokens. However, you requested {} \
             tokens ({prompt} in the messages, {max} in the completion). Please reduce the \
             length of the messages or completion.",
            prompt.saturating_add(max)
        ));
    }
    let room = window - prompt;
    let cap = request.max_tokens.map_or(room, |max| max.min(room));
    let wanted = match profile.output_tokens {
        OutputTokens::Fixed(count) => count,
        OutputTokens::Range { min, max } => rng.random_range(min..=max),
        OutputTokens::FromMaxTokens => {
            return Ok(Generation {
                output_tokens: cap,
                finish: FinishReason::Length,
            });
        }
    };
    Ok(if wanted > cap {
        Generation {
            output_tokens: cap,
            finish: FinishReason::Length,
        }
    } else {
        Generation {
            output_tokens: wanted,
            finish: FinishReason::Stop,
        }
    })
}

/// Time from getting a slot to the first token, microseconds.
pub(crate) fn ttft_us(profile: &ModelProfile, rng: &mut ChaCha8Rng) -> u64 {
    jittered_us(rng, profile.ttft_ms, profile.ttft_jitter_ms)
}

/// Time from one token to the next, microseconds.
pub(crate) fn gap_us(profile: &ModelProfile, rng: &mut ChaCha8Rng) -> u64 {
    jittered_us(rng, profile.inter_token_ms, profile.inter_token_jitter_ms)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn profile(output_tokens: OutputTokens) -> ModelProfile {
        let text = "[[models]]\nid = \"m\"\ncontext_window = 100\n";
        let mut spec = crate::spec::parse_profile_toml(text).unwrap();
        spec.models[0].output_tokens = output_tokens;
        spec.models.remove(0)
    }

    fn request(prompt_tokens: u64, max_tokens: Option<u64>) -> ChatRequest {
        ChatRequest {
            model: None,
            stream: true,
            include_usage: true,
            max_tokens,
            user: None,
            prompt_tokens,
        }
    }

    fn plan(out: OutputTokens, prompt: u64, max: Option<u64>) -> Result<Generation, String> {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        plan_output(&profile(out), &request(prompt, max), &mut rng)
    }

    /// A fixed length stops by itself unless `max_tokens` caps it.
    #[test]
    fn fixed_length_and_cap() {
        let g = plan(OutputTokens::Fixed(10), 5, None).unwrap();
        assert_eq!((g.output_tokens, g.finish), (10, FinishReason::Stop));
        let g = plan(OutputTokens::Fixed(10), 5, Some(4)).unwrap();
        assert_eq!((g.output_tokens, g.finish), (4, FinishReason::Length));
        let g = plan(OutputTokens::Fixed(500), 5, None).unwrap();
        assert_eq!((g.output_tokens, g.finish), (95, FinishReason::Length));
    }

    /// `"max_tokens"` takes the request's limit, else the room left.
    #[test]
    fn from_max_tokens() {
        let g = plan(OutputTokens::FromMaxTokens, 5, Some(7)).unwrap();
        assert_eq!((g.output_tokens, g.finish), (7, FinishReason::Length));
        let g = plan(OutputTokens::FromMaxTokens, 40, None).unwrap();
        assert_eq!(g.output_tokens, 60);
    }

    /// A range draws inside its bounds.
    #[test]
    fn range_draws_inside() {
        let g = plan(OutputTokens::Range { min: 3, max: 6 }, 5, None).unwrap();
        assert!((3..=6).contains(&g.output_tokens));
    }

    /// Prompts that overflow the context window are refused like vLLM does.
    #[test]
    fn context_overflow_is_refused() {
        let err = plan(OutputTokens::Fixed(1), 100, None).unwrap_err();
        assert!(err.contains("maximum context length is 100"), "{err}");
        let err = plan(OutputTokens::Fixed(1), 50, Some(51)).unwrap_err();
        assert!(err.contains("you requested 101 tokens"), "{err}");
    }
}
