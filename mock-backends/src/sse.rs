//! The Server-Sent Events of a streamed completion, shaped like vLLM's
//! OpenAI server output. The per-request JSON head is built once, so a
//! content event costs three slice copies and the token text.

use bytes::{BufMut, BytesMut};

/// Why generation stopped, as `finish_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FinishReason {
    /// The model finished by itself.
    Stop,
    /// `max_tokens` or the context window cut it short.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

const CONTENT_OPEN: &[u8] = br#"[{"index":0,"delta":{"content":""#;
const CONTENT_CLOSE: &[u8] = b"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
const ROLE_CHOICES: &[u8] = b"[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\
\"logprobs\":null,\"finish_reason\":null}]}\n\n";
const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// The formats of one streamed response.
pub(crate) struct ChunkFormat {
    /// `data: {"id":"chatcmpl-…","object":"chat.completion.chunk",
    /// "created":…,"model":"…","choices":` — shared by every event.
    head: Vec<u8>,
}

impl ChunkFormat {
    /// `model_json` is the model id already encoded as a JSON string.
    pub fn new(completion_id: &str, created_s: u64, model_json: &str) -> Self {
        let head = format!(
            "data: {{\"id\":\"{completion_id}\",\"object\":\"chat.completion.chunk\",\
             \"created\":{created_s},\"model\":{model_json},\"choices\":"
        );
        Self {
            head: head.into_bytes(),
        }
    }

    /// The first event: the assistant role with empty content.
    pub fn push_role(&self, out: &mut BytesMut) {
        out.put_slice(&self.head);
        out.put_slice(ROLE_CHOICES);
    }

    /// Opens a content event; the token text follows, then `close_content`.
    pub fn open_content(&self, out: &mut BytesMut) {
        out.put_slice(&self.head);
        out.put_slice(CONTENT_OPEN);
    }

    /// Closes a content event opened by `open_content`.
    pub fn close_content(&self, out: &mut BytesMut) {
        out.put_slice(CONTENT_CLOSE);
    }

    /// The event carrying `finish_reason` with an empty delta.
    pub fn push_finish(&self, out: &mut BytesMut, reason: FinishReason) {
        out.put_slice(&self.head);
        out.put_slice(br#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":""#);
        out.put_slice(reason.as_str().as_bytes());
        out.put_slice(b"\"}]}\n\n");
    }

    /// The usage event (`"choices":[]`), sent when the request asked for it.
    pub fn push_usage(&self, out: &mut BytesMut, prompt_tokens: u64, completion_tokens: u64) {
        out.put_slice(&self.head);
        let usage = format!(
            "[],\"usage\":{{\"prompt_tokens\":{prompt_tokens},\"total_tokens\":{},\
             \"completion_tokens\":{completion_tokens}}}}}\n\n",
            prompt_tokens + completion_tokens
        );
        out.put_slice(usage.as_bytes());
    }

    /// The terminating `data: [DONE]` event.
    pub fn push_done(&self, out: &mut BytesMut) {
        out.put_slice(DONE_EVENT);
    }

    /// A well-framed event whose JSON stops in the middle of a string key.
    pub fn push_malformed(&self, out: &mut BytesMut) {
        out.put_slice(&self.head);
        out.put_slice(b"[{\"index\":0,\"del\n\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json_of(event: &[u8]) -> Value {
        let text = std::str::from_utf8(event).unwrap();
        let data = text.strip_prefix("data: ").unwrap().strip_suffix("\n\n").unwrap();
        serde_json::from_str(data).unwrap()
    }

    fn format() -> ChunkFormat {
        ChunkFormat::new("chatcmpl-1", 1_700_000_000, "\"m\\\"x\"")
    }

    /// Every event is valid JSON of the vLLM chunk shape.
    #[test]
    fn events_are_openai_chunks() {
        let f = format();
        let mut out = BytesMut::new();
        f.push_role(&mut out);
        let role = json_of(&out.split());
        assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(role["model"], "m\"x");
        assert_eq!(role["object"], "chat.completion.chunk");
        f.open_content(&mut out);
        out.put_slice(b" hello world");
        f.close_content(&mut out);
        let content = json_of(&out.split());
        assert_eq!(content["choices"][0]["delta"]["content"], " hello world");
        assert_eq!(content["choices"][0]["finish_reason"], Value::Null);
        f.push_finish(&mut out, FinishReason::Length);
        assert_eq!(json_of(&out.split())["choices"][0]["finish_reason"], "length");
        f.push_usage(&mut out, 10, 5);
        let usage = json_of(&out.split());
        assert_eq!(usage["choices"], serde_json::json!([]));
        assert_eq!(usage["usage"]["total_tokens"], 15);
        f.push_done(&mut out);
        assert_eq!(&out.split()[..], b"data: [DONE]\n\n");
    }

    /// The malformed event is framed like an event but is not JSON.
    #[test]
    fn malformed_event_is_not_json() {
        let mut out = BytesMut::new();
        format().push_malformed(&mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("data: {") && text.ends_with("\n\n"));
        let data = text.strip_prefix("data: ").unwrap().trim_end();
        assert!(serde_json::from_str::<Value>(data).is_err());
    }
}
