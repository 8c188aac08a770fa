//! The parts of an OpenAI chat-completions request body the mock acts on,
//! and the deterministic prompt-token estimate reported in `usage`.

use serde::Deserialize;
use serde_json::Value;

/// Fixed prompt overhead in tokens (the assistant reply header).
pub const PROMPT_TOKENS_BASE: u64 = 3;
/// Per-message overhead in tokens (role and separators).
pub const PROMPT_TOKENS_PER_MESSAGE: u64 = 4;
/// Bytes of message text per prompt token, rounded up per message.
pub const PROMPT_BYTES_PER_TOKEN: u64 = 4;

/// A parsed chat-completions request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChatRequest {
    /// `model`; absent means the backend's first model, as vLLM does.
    pub model: Option<String>,
    /// `stream`, default false.
    pub stream: bool,
    /// `stream_options.include_usage`, default false.
    pub include_usage: bool,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_tokens: Option<u64>,
    /// `user`: the coordinator's job id.
    pub user: Option<String>,
    /// Estimated prompt length, see `prompt_tokens`.
    pub prompt_tokens: u64,
}

#[derive(Deserialize)]
struct RawRequest {
    model: Option<String>,
    messages: Option<Vec<RawMessage>>,
    stream: Option<bool>,
    stream_options: Option<RawStreamOptions>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    user: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    content: Option<Value>,
}

#[derive(Deserialize)]
struct RawStreamOptions {
    include_usage: Option<bool>,
}

impl ChatRequest {
    /// Parses a request body; the error names the offending field.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let mut json = serde_json::Deserializer::from_slice(body);
        let raw: RawRequest = serde_path_to_error::deserialize(&mut json).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                format!("invalid request body: {}", e.inner())
            } else {
                format!("{path}: {}", e.inner())
            }
        })?;
        let messages = raw.messages.ok_or_else(|| "messages: field required".to_owned())?;
        Ok(ChatRequest {
            model: raw.model,
            stream: raw.stream.unwrap_or(false),
            include_usage: raw.stream_options.and_then(|o| o.include_usage).unwrap_or(false),
            max_tokens: raw.max_completion_tokens.or(raw.max_tokens),
            user: raw.user,
            prompt_tokens: prompt_tokens(&messages),
        })
    }
}

/// `3 + Σ (4 + ⌈text bytes / 4⌉)` over the messages, where the text of a
/// message is its string `content`, or the `text` of each part when
/// `content` is an array of parts.
fn prompt_tokens(messages: &[RawMessage]) -> u64 {
    let per_message = messages.iter().map(|m| {
        let bytes = m.content.as_ref().map_or(0, content_bytes);
        PROMPT_TOKENS_PER_MESSAGE + bytes.div_ceil(PROMPT_BYTES_PER_TOKEN)
    });
    PROMPT_TOKENS_BASE + per_message.sum::<u64>()
}

fn content_bytes(content: &Value) -> u64 {
    match content {
        Value::String(text) => text.len() as u64,
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(|text| text.len() as u64)
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field the mock uses is read, with OpenAI's defaults.
    #[test]
    fn parses_fields() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"12345"}],
            "stream":true,"stream_options":{"include_usage":true},"max_tokens":9,
            "user":"job-1","temperature":0.2}"#;
        let req = ChatRequest::parse(body).unwrap();
        assert_eq!(req.model.as_deref(), Some("m"));
        assert!(req.stream && req.include_usage);
        assert_eq!(req.max_tokens, Some(9));
        assert_eq!(req.user.as_deref(), Some("job-1"));
        assert_eq!(req.prompt_tokens, 3 + 4 + 2);
        let bare = ChatRequest::parse(br#"{"messages":[]}"#).unwrap();
        assert!(!bare.stream && !bare.include_usage && bare.model.is_none());
        assert_eq!(bare.prompt_tokens, PROMPT_TOKENS_BASE);
    }

    /// `max_completion_tokens` wins over `max_tokens`; array content counts its text parts.
    #[test]
    fn completion_limit_and_parts() {
        let body = br#"{"messages":[{"role":"user","content":[{"type":"text","text":"abcdefgh"},
            {"type":"image_url","image_url":{"url":"x"}}]}],"max_tokens":5,"max_completion_tokens":7}"#;
        let req = ChatRequest::parse(body).unwrap();
        assert_eq!(req.max_tokens, Some(7));
        assert_eq!(req.prompt_tokens, 3 + 4 + 2);
    }

    /// Bad bodies are refused with the field that is wrong.
    #[test]
    fn bad_bodies_name_the_field() {
        assert_eq!(
            ChatRequest::parse(br#"{"model":"m"}"#).unwrap_err(),
            "messages: field required"
        );
        let err = ChatRequest::parse(br#"{"messages":[],"stream":"yes"}"#).unwrap_err();
        assert!(err.starts_with("stream:"), "{err}");
        let err = ChatRequest::parse(b"not json").unwrap_err();
        assert!(err.starts_with("invalid request body"), "{err}");
    }
}
