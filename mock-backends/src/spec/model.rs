//! One served model: its id, context window, timing and output shape.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Default time to first token.
pub const TTFT_MS_DEFAULT: u64 = 50;
/// Default time between two tokens.
pub const INTER_TOKEN_MS_DEFAULT: u64 = 20;
/// Default completion length when the profile does not say.
pub const OUTPUT_TOKENS_DEFAULT: u64 = 16;

/// A `[[backends.models]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelProfile {
    /// The model id, as listed by `/v1/models` and matched against `model`.
    pub id: String,
    /// Context window in tokens (`max_model_len` for vLLM).
    pub context_window: u32,
    /// Time from getting a slot to the first token, milliseconds.
    #[serde(default = "ttft_ms_default")]
    pub ttft_ms: u64,
    /// Uniform jitter on `ttft_ms`, ± milliseconds, drawn per request.
    #[serde(default)]
    pub ttft_jitter_ms: u64,
    /// Time between consecutive tokens, milliseconds.
    #[serde(default = "inter_token_ms_default")]
    pub inter_token_ms: u64,
    /// Uniform jitter on every gap, ± milliseconds, drawn per gap.
    #[serde(default)]
    pub inter_token_jitter_ms: u64,
    /// How many completion tokens a request gets.
    #[serde(default)]
    pub output_tokens: OutputTokens,
    /// Content tokens carried by one SSE event.
    #[serde(default = "one")]
    pub tokens_per_event: u32,
    /// SSE events grouped into one body frame (one socket write / HTTP chunk).
    #[serde(default = "one")]
    pub events_per_write: u32,
}

/// The completion length. In TOML: an integer (fixed), a two-element array
/// `[min, max]` (uniform, inclusive, drawn per request), or the string
/// `"max_tokens"` (the request's `max_tokens`, else what the context window
/// leaves after the prompt). Whatever the choice, the length is capped by
/// the request's `max_tokens` and by the context window, and a capped
/// completion ends with `finish_reason: "length"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputTokens {
    /// Always this many tokens.
    Fixed(u64),
    /// Uniform in `min..=max`.
    Range {
        /// Fewest tokens.
        min: u64,
        /// Most tokens.
        max: u64,
    },
    /// As many as the request's `max_tokens` allows.
    FromMaxTokens,
}

impl Default for OutputTokens {
    fn default() -> Self {
        OutputTokens::Fixed(OUTPUT_TOKENS_DEFAULT)
    }
}

fn ttft_ms_default() -> u64 {
    TTFT_MS_DEFAULT
}

fn inter_token_ms_default() -> u64 {
    INTER_TOKEN_MS_DEFAULT
}

fn one() -> u32 {
    1
}

const OUTPUT_TOKENS_EXPECTED: &str = "a token count, an array [min, max], or the string \"max_tokens\"";

impl Serialize for OutputTokens {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            OutputTokens::Fixed(count) => serializer.serialize_u64(count),
            OutputTokens::Range { min, max } => [min, max].serialize(serializer),
            OutputTokens::FromMaxTokens => serializer.serialize_str("max_tokens"),
        }
    }
}

impl<'de> Deserialize<'de> for OutputTokens {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OutputTokensVisitor)
    }
}

struct OutputTokensVisitor;

impl<'de> Visitor<'de> for OutputTokensVisitor {
    type Value = OutputTokens;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(OUTPUT_TOKENS_EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, count: u64) -> Result<Self::Value, E> {
        Ok(OutputTokens::Fixed(count))
    }

    fn visit_i64<E: de::Error>(self, count: i64) -> Result<Self::Value, E> {
        u64::try_from(count)
            .map(OutputTokens::Fixed)
            .map_err(|_| E::custom("a token count cannot be negative"))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        if text == "max_tokens" {
            Ok(OutputTokens::FromMaxTokens)
        } else {
            Err(E::custom(format!(
                "unknown string `{text}`, expected {OUTPUT_TOKENS_EXPECTED}"
            )))
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let length_error = || de::Error::custom("a range is exactly two counts: [min, max]");
        let min: u64 = seq.next_element()?.ok_or_else(length_error)?;
        let max: u64 = seq.next_element()?.ok_or_else(length_error)?;
        if seq.next_element::<u64>()?.is_some() {
            return Err(length_error());
        }
        Ok(OutputTokens::Range { min, max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Serialize)]
    struct Holder {
        output_tokens: OutputTokens,
    }

    fn parse(value: &str) -> Result<OutputTokens, String> {
        toml::from_str::<Holder>(&format!("output_tokens = {value}"))
            .map(|h| h.output_tokens)
            .map_err(|e| e.to_string())
    }

    /// All three TOML spellings of `output_tokens` parse.
    #[test]
    fn output_tokens_spellings() {
        assert_eq!(parse("7"), Ok(OutputTokens::Fixed(7)));
        assert_eq!(parse("[2, 9]"), Ok(OutputTokens::Range { min: 2, max: 9 }));
        assert_eq!(parse("\"max_tokens\""), Ok(OutputTokens::FromMaxTokens));
    }

    /// Malformed `output_tokens` values are refused with a reason.
    #[test]
    fn output_tokens_rejects_bad_values() {
        assert!(parse("-1").unwrap_err().contains("negative"));
        assert!(parse("[1, 2, 3]").unwrap_err().contains("exactly two"));
        assert!(parse("\"lots\"").unwrap_err().contains("unknown string"));
    }

    /// Serializing gives back the TOML spelling.
    #[test]
    fn output_tokens_serializes_back() {
        for text in ["7", "[2, 9]", "\"max_tokens\""] {
            let holder = Holder {
                output_tokens: parse(text).unwrap(),
            };
            let again = toml::to_string(&holder).unwrap();
            assert_eq!(
                toml::from_str::<Holder>(&again).unwrap().output_tokens,
                holder.output_tokens
            );
        }
    }
}
