//! The content event of vLLM's OpenAI server (the shape the mock backends
//! write), recognised by its bytes without a JSON parser:
//!
//! `{"id":"…","object":"chat.completion.chunk","created":N,"model":"…",
//! "choices":[{"index":0,"delta":{"content":"…"},"logprobs":null,"finish_reason":null}]}`
//!
//! Why: nearly every line of every body a run relays is such an event, and
//! reading each through serde was most of the token rules' time. The shape
//! is matched strictly and anything else goes to the JSON reader: a string
//! with an escape, a control character or bytes that are not UTF-8, a
//! number other than a plain integer of at most 19 digits, whitespace,
//! other keys, another order, anything after the end. What is accepted is
//! thus valid JSON with exactly these keys, each once: it carries no
//! `usage`, and its first choice's `delta.content` is the string matched,
//! whose text is its bytes. That is what the JSON reading gives; a test
//! compares the two on every one-byte mutation of the shape.

use super::{Event, Field};

/// From the start of the event to its `id` string.
const ID: &[u8] = br#"{"id":"#;
/// From the `id` string to the `created` number.
const OBJECT: &[u8] = br#","object":"chat.completion.chunk","created":"#;
/// From the `created` number to the `model` string.
const MODEL: &[u8] = br#","model":"#;
/// From the `model` string to the `content` string.
const CONTENT: &[u8] = br#","choices":[{"index":0,"delta":{"content":"#;
/// From the `content` string to the end.
const CLOSE: &[u8] = br#"},"logprobs":null,"finish_reason":null}]}"#;
/// The most digits of `created` accepted: every such integer fits a `u64`.
const CREATED_DIGITS_MAX: usize = 19;

/// The event in `payload` when it has exactly the content event's shape,
/// else `None` (which says nothing about the payload: parse it).
pub(super) fn content_event(payload: &[u8]) -> Option<Event> {
    let rest = payload.strip_prefix(ID)?;
    let (_, rest) = plain_string(rest)?;
    let rest = plain_integer(rest.strip_prefix(OBJECT)?)?;
    let (_, rest) = plain_string(rest.strip_prefix(MODEL)?)?;
    let (text, rest) = plain_string(rest.strip_prefix(CONTENT)?)?;
    (rest == CLOSE).then_some(Event {
        usage: Field::Absent,
        choices: Field::Is(!text.is_empty()),
    })
}

/// A JSON string without escapes at the start of `bytes`: its text, and
/// the bytes after its closing quote.
fn plain_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = bytes.strip_prefix(b"\"")?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    let text = &rest[..end];
    let plain = rest[end] == b'"' && !text.iter().any(|&b| b < 0x20) && std::str::from_utf8(text).is_ok();
    plain.then(|| (text, &rest[end + 1..]))
}

/// The bytes after a JSON integer without sign, fraction or exponent at
/// the start of `bytes` (no leading zero, at most [`CREATED_DIGITS_MAX`]
/// digits).
fn plain_integer(bytes: &[u8]) -> Option<&[u8]> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let plain = (1..=CREATED_DIGITS_MAX).contains(&digits) && (digits == 1 || bytes[0] != b'0');
    plain.then(|| &bytes[digits..])
}

#[cfg(test)]
mod tests {
    use super::super::tests::by_value;
    use super::*;

    /// Content events as the mock backends write them (`mock-backends/src/sse.rs`).
    fn shaped() -> Vec<String> {
        let mut out = Vec::new();
        for (id, created, model, text) in [
            ("chatcmpl-7f3a", "1700000000", "\"llama-3-8b\"", " hello"),
            ("chatcmpl-0", "0", "\"m\"", ""),
            ("", "9", "\"\"", "é日本"),
            ("x", "1234567890123456789", "\"a/b:c\"", "a}b,:c]{"),
        ] {
            out.push(format!(
                "{{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{model},\
                 \"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}"
            ));
        }
        out
    }

    /// Every one-byte deletion, replacement and insertion of `payload`,
    /// with bytes that matter to JSON.
    fn mutations(payload: &[u8]) -> Vec<Vec<u8>> {
        const BYTES: &[u8] = b"\"\\\x01\x1f\x7f\xff\xc3}],:0 9-.eAa";
        let mut out = Vec::new();
        for at in 0..=payload.len() {
            if at < payload.len() {
                let mut cut = payload.to_vec();
                cut.remove(at);
                out.push(cut);
            }
            for &byte in BYTES {
                let mut with = payload.to_vec();
                with.insert(at, byte);
                out.push(with);
                if at < payload.len() {
                    let mut swapped = payload.to_vec();
                    swapped[at] = byte;
                    out.push(swapped);
                }
            }
        }
        out
    }

    /// The shapes the backends write are recognised, and read as JSON reads them.
    #[test]
    fn recognises_the_content_event() {
        for payload in shaped() {
            let event = content_event(payload.as_bytes());
            assert!(event.is_some(), "{payload}");
            assert_eq!(event, by_value(payload.as_bytes()), "{payload}");
        }
    }

    /// Whatever is recognised, of every one-byte mutation of the shapes,
    /// reads as JSON reads it (and much is left to the parser).
    #[test]
    fn what_is_recognised_reads_as_json() {
        let (mut recognised, mut left) = (0, 0);
        for payload in shaped() {
            for mutated in mutations(payload.as_bytes()) {
                match content_event(&mutated) {
                    Some(event) => {
                        recognised += 1;
                        assert_eq!(
                            Some(event),
                            by_value(&mutated),
                            "{:?}",
                            String::from_utf8_lossy(&mutated)
                        );
                    }
                    None => left += 1,
                }
            }
        }
        assert!(recognised > 100 && left > 1000, "{recognised} recognised, {left} left");
    }

    /// Strings and integers are plain or not recognised.
    #[test]
    fn strings_and_integers_are_plain() {
        assert_eq!(plain_string(b"\"ab\"c"), Some((&b"ab"[..], &b"c"[..])));
        assert_eq!(plain_string(b"\"a\\\"b\""), None);
        assert_eq!(plain_string(b"\"a\nb\""), None);
        assert_eq!(plain_string(b"\"\xff\""), None);
        assert_eq!(plain_string(b"\"ab"), None);
        assert_eq!(plain_integer(b"0,"), Some(&b","[..]));
        assert_eq!(plain_integer(b"01,"), None);
        assert_eq!(plain_integer(b"-1,"), None);
        assert_eq!(plain_integer(b"12345678901234567890,"), None);
    }
}
