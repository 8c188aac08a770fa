//! Detecting the end of a streamed completion in reassembled SSE bytes,
//! for the `race_completion` cancel: the cancel must leave the moment the
//! final event arrives, before the agent's terminal frame.

/// How far back into already received bytes the search looks, so a marker
/// split across two chunks is still found.
const MARKER_LOOKBACK_BYTES: usize = 32;

/// True when the bytes from shortly before `old_len` on contain `[DONE]` or
/// a `finish_reason` whose value is a string (not `null`).
pub(crate) fn completion_seen(bytes: &[u8], old_len: usize) -> bool {
    let tail = &bytes[old_len.saturating_sub(MARKER_LOOKBACK_BYTES).min(bytes.len())..];
    if contains(tail, b"[DONE]") {
        return true;
    }
    let key = b"\"finish_reason\"";
    let mut rest = tail;
    while let Some(pos) = find_bytes(rest, key) {
        rest = &rest[pos + key.len()..];
        let value = rest.iter().skip_while(|b| b.is_ascii_whitespace() || **b == b':');
        if value.clone().next() == Some(&b'"') {
            return true;
        }
    }
    false
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find_bytes(haystack, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[DONE]` and a string finish_reason count; a null one does not.
    #[test]
    fn markers() {
        assert!(completion_seen(b"data: [DONE]\n\n", 0));
        assert!(completion_seen(b"{\"finish_reason\": \"length\"}", 0));
        assert!(!completion_seen(b"data: {\"finish_reason\": null}", 0));
    }

    /// A marker split across chunks is found from the new chunk on.
    #[test]
    fn split_marker() {
        let bytes = b"data: {\"finish_reason\":\"stop\"}";
        assert!(completion_seen(bytes, 20));
    }

    /// A marker well before the new bytes is not found again.
    #[test]
    fn old_marker_not_rescanned() {
        let mut bytes = b"[DONE]".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 100));
        assert!(!completion_seen(&bytes, 90));
    }
}
