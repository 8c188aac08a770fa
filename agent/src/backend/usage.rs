//! An incremental scanner over a streamed SSE response body: it learns the
//! token usage, a running estimate of output tokens relayed, and whether the
//! stream finished with `data: [DONE]`, without ever holding the body.
//!
//! The adapter relays each body chunk unchanged and shows the same bytes to
//! [`SseUsageScanner::feed`], which only inspects them. Chunk boundaries are
//! arbitrary: an event, a line, even a UTF-8 sequence may be split. Complete
//! lines inside one chunk are parsed in place; only a line's unfinished tail
//! is copied into a small carry-over buffer, bounded by
//! [`SSE_LINE_BYTES_MAX_DEFAULT`] (a longer line is skipped, not buffered).
//!
//! Simplifications, all harmless for OpenAI-compatible servers:
//! - each `data:` line is taken as one complete event payload (servers put one
//!   JSON document on one line; multi-line `data:` events are not joined);
//! - lines end with `\n` or `\r\n`; a bare `\r` is not a line end;
//! - a `data:` payload that is not valid JSON of the expected shape (or has a
//!   non-integer token count) is ignored as a whole.

use std::borrow::Cow;

use serde::Deserialize;

/// Default bound on one SSE line. A usage event is a few hundred bytes and a
/// content delta rarely more than a few KiB; a line longer than this is not
/// something the scanner needs, so it is skipped rather than buffered.
pub const SSE_LINE_BYTES_MAX_DEFAULT: usize = 1 << 20;

/// Token usage as reported by the backend's usage object. Each field keeps
/// the value from the latest event that carried it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct SseUsageScanner {
    /// The unfinished tail of the current line (never a complete line).
    partial: Vec<u8>,
    /// Bound on one line; `partial.len()` never exceeds it.
    sse_line_bytes_max: usize,
    /// The current line exceeded the bound: discard until the next `\n`.
    skipping: bool,
    lines_skipped: u64,
    usage: Usage,
    /// `data:` events whose `choices[0].delta.content` was a non-empty string.
    content_events: u64,
    /// Monotone running count of output tokens relayed (see
    /// [`SseUsageScanner::output_tokens_relayed`]).
    output_tokens_relayed: u64,
    done_seen: bool,
}

impl Default for SseUsageScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl SseUsageScanner {
    /// A scanner with the default line bound.
    pub fn new() -> Self {
        Self::with_line_bytes_max(SSE_LINE_BYTES_MAX_DEFAULT)
    }

    /// A scanner that skips lines longer than `sse_line_bytes_max` bytes
    /// (excluding the line terminator).
    pub fn with_line_bytes_max(sse_line_bytes_max: usize) -> Self {
        Self {
            partial: Vec::new(),
            sse_line_bytes_max,
            skipping: false,
            lines_skipped: 0,
            usage: Usage::default(),
            content_events: 0,
            output_tokens_relayed: 0,
            done_seen: false,
        }
    }

    /// Inspects the next body chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(newline_at) = rest.iter().position(|&b| b == b'\n') {
            self.end_line(&rest[..newline_at]);
            rest = &rest[newline_at + 1..];
        }
        self.carry(rest);
        debug_assert!(
            self.partial.len() <= self.sse_line_bytes_max,
            "carry-over buffer exceeded its bound"
        );
    }

    /// Processes a final line that had no terminator (call at end of body).
    pub fn finish(&mut self) {
        if !self.skipping && !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.process_line(&line);
        }
        self.partial.clear();
        self.skipping = false;
    }

    /// Usage from the latest event(s) carrying a `usage` object.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Output tokens relayed so far: the usage's output tokens when a usage
    /// object has reported them, otherwise an estimate counting one token per
    /// `data:` event whose `choices[0].delta.content` is a non-empty string
    /// (servers stream about one token per event; the estimate only feeds
    /// `tokens_emitted` of a failed job). Never decreases.
    pub fn output_tokens_relayed(&self) -> u64 {
        self.output_tokens_relayed
    }

    /// Whether a `data: [DONE]` line was seen.
    pub fn done_seen(&self) -> bool {
        self.done_seen
    }

    /// Lines skipped for exceeding the line bound.
    pub fn lines_skipped(&self) -> u64 {
        self.lines_skipped
    }

    /// Handles the end of a line whose last piece is `tail` (terminator
    /// excluded); earlier pieces may sit in `partial`.
    fn end_line(&mut self, tail: &[u8]) {
        if self.skipping {
            self.skipping = false;
        } else if self.partial.is_empty() {
            self.check_bound_then_process(tail);
        } else if self.partial.len() + tail.len() > self.sse_line_bytes_max {
            self.lines_skipped += 1;
        } else {
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(tail);
            self.process_line(&line);
            // Hand the allocation back so later split lines reuse it.
            line.clear();
            self.partial = line;
        }
        self.partial.clear();
    }

    fn check_bound_then_process(&mut self, line: &[u8]) {
        if line.len() > self.sse_line_bytes_max {
            self.lines_skipped += 1;
        } else {
            self.process_line(line);
        }
    }

    /// Keeps an unterminated tail for the next chunk, or starts skipping
    /// when it would exceed the bound.
    fn carry(&mut self, tail: &[u8]) {
        if self.skipping || tail.is_empty() {
            return;
        }
        if self.partial.len() + tail.len() > self.sse_line_bytes_max {
            self.partial.clear();
            self.skipping = true;
            self.lines_skipped += 1;
        } else {
            self.partial.extend_from_slice(tail);
        }
    }

    fn process_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(payload) = line.strip_prefix(b"data:") else {
            return;
        };
        let payload = payload.strip_prefix(b" ").unwrap_or(payload);
        if payload == b"[DONE]" {
            self.done_seen = true;
            return;
        }
        let Ok(event) = serde_json::from_slice::<EventWire<'_>>(payload) else {
            return;
        };
        if let Some(usage) = &event.usage {
            let input = usage.prompt_tokens.or(usage.input_tokens);
            let output = usage.completion_tokens.or(usage.output_tokens);
            self.usage.input_tokens = input.or(self.usage.input_tokens);
            self.usage.output_tokens = output.or(self.usage.output_tokens);
        }
        if event.has_content() {
            self.content_events += 1;
        }
        let current = self.usage.output_tokens.unwrap_or(self.content_events);
        self.output_tokens_relayed = self.output_tokens_relayed.max(current);
    }
}

/// The parts of a streamed chat-completions event the scanner reads. Unknown
/// fields are ignored; strings are borrowed from the line where possible.
#[derive(Deserialize)]
struct EventWire<'a> {
    #[serde(default)]
    usage: Option<UsageWire>,
    #[serde(default, borrow)]
    choices: Option<Vec<ChoiceWire<'a>>>,
}

impl EventWire<'_> {
    fn has_content(&self) -> bool {
        let first = self.choices.as_ref().and_then(|choices| choices.first());
        first
            .and_then(|c| c.delta.as_ref())
            .and_then(|d| d.content.as_ref())
            .is_some_and(|text| !text.is_empty())
    }
}

#[derive(Deserialize)]
struct UsageWire {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct ChoiceWire<'a> {
    #[serde(default, borrow)]
    delta: Option<DeltaWire<'a>>,
}

#[derive(Deserialize)]
struct DeltaWire<'a> {
    #[serde(default, borrow, deserialize_with = "string_or_none")]
    content: Option<Cow<'a, str>>,
}

/// `content` may be a string, `null`, or (in some servers) an array of
/// parts; only a string counts as content for the estimate.
fn string_or_none<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Content<'a> {
        Text(#[serde(borrow)] Cow<'a, str>),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<Content<'de>>::deserialize(de)? {
        Some(Content::Text(text)) => Some(text),
        Some(Content::Other(_)) | None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAI_BODY: &str = concat!(
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hé\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"llo ✓\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,\"total_tokens\":46}}\n\n",
        "data: [DONE]\n\n",
    );

    fn scan(chunks: &[&[u8]]) -> SseUsageScanner {
        let mut scanner = SseUsageScanner::new();
        for chunk in chunks {
            scanner.feed(chunk);
        }
        scanner.finish();
        scanner
    }

    /// Proves the scanner's result does not depend on where chunks split,
    /// including inside multi-byte UTF-8 sequences, for every split point.
    #[test]
    fn usage_split_at_every_byte_boundary() {
        let body = OPENAI_BODY.as_bytes();
        let whole = scan(&[body]);
        assert_eq!(
            whole.usage(),
            Usage {
                input_tokens: Some(12),
                output_tokens: Some(34)
            }
        );
        assert!(whole.done_seen());
        for split in 0..=body.len() {
            let (a, b) = body.split_at(split);
            let scanner = scan(&[a, b]);
            assert_eq!(scanner.usage(), whole.usage(), "split at {split}");
            assert_eq!(scanner.output_tokens_relayed(), 34, "split at {split}");
            assert!(scanner.done_seen(), "split at {split}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(scan(&bytes).usage(), whole.usage(), "one byte per chunk");
    }

    /// Proves the Anthropic-style spelling (`input_tokens`/`output_tokens`) is read.
    #[test]
    fn input_output_spelling_is_read() {
        let body = b"data: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":5,\"output_tokens\":7}}\n\n";
        assert_eq!(
            scan(&[body]).usage(),
            Usage {
                input_tokens: Some(5),
                output_tokens: Some(7)
            }
        );
    }

    /// Proves the last usage wins, field by field.
    #[test]
    fn later_usage_replaces_earlier_fields() {
        let body = concat!(
            "data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n",
            "data: {\"usage\":{\"completion_tokens\":9}}\n",
        );
        assert_eq!(
            scan(&[body.as_bytes()]).usage(),
            Usage {
                input_tokens: Some(3),
                output_tokens: Some(9)
            }
        );
    }

    /// Proves the content-event estimate counts only non-empty string deltas.
    #[test]
    fn estimate_counts_non_empty_content_events() {
        let body = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":null}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":[{\"type\":\"text\"}]}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"b\\nc\"}}]}\n\n",
            ": a comment line\n",
            "event: ping\n",
        );
        let scanner = scan(&[body.as_bytes()]);
        assert_eq!(scanner.output_tokens_relayed(), 2);
        assert_eq!(scanner.usage(), Usage::default());
        assert!(!scanner.done_seen());
    }

    /// Proves the running count never decreases when usage reports fewer tokens than the estimate.
    #[test]
    fn running_count_is_monotone() {
        let mut scanner = SseUsageScanner::new();
        scanner.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n");
        scanner.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n");
        assert_eq!(scanner.output_tokens_relayed(), 2);
        scanner.feed(b"data: {\"choices\":[],\"usage\":{\"completion_tokens\":1}}\n");
        assert_eq!(scanner.output_tokens_relayed(), 2);
        assert_eq!(scanner.usage().output_tokens, Some(1));
    }

    /// Proves `[DONE]` is recognised with CRLF line endings, without a space, and unterminated at EOF.
    #[test]
    fn done_variants() {
        assert!(scan(&[b"data: [DONE]\r\n\r\n"]).done_seen());
        assert!(scan(&[b"data:[DONE]\n"]).done_seen());
        assert!(scan(&[b"data: [DONE]"]).done_seen());
        assert!(!scan(&[b"data: [DONE] \n"]).done_seen());
        assert!(!scan(&[b"data: {\"x\":\"[DONE]\"}\n"]).done_seen());
    }

    /// Proves CRLF line endings work when the CR and LF arrive in different chunks.
    #[test]
    fn crlf_line_endings_split_between_cr_and_lf() {
        let body = OPENAI_BODY.replace('\n', "\r\n");
        let bytes = body.as_bytes();
        for split in 0..=bytes.len() {
            let (a, b) = bytes.split_at(split);
            let scanner = scan(&[a, b]);
            assert_eq!(
                scanner.usage(),
                Usage {
                    input_tokens: Some(12),
                    output_tokens: Some(34)
                },
                "split at {split}"
            );
            assert!(scanner.done_seen(), "split at {split}");
        }
    }

    /// Proves a line over the bound is skipped (whole or split) and never buffered past the bound.
    #[test]
    fn overlong_line_is_skipped_and_bounded() {
        let max = 64;
        let long = format!(
            "data: {{\"usage\":{{\"completion_tokens\":999}},\"pad\":\"{}\"}}\n",
            "x".repeat(200)
        );
        let tail = "data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\ndata: [DONE]\n";
        let body = format!("{long}{tail}");
        for piece in [1, 7, 63, 64, 65, body.len()] {
            let mut scanner = SseUsageScanner::with_line_bytes_max(max);
            for chunk in body.as_bytes().chunks(piece) {
                scanner.feed(chunk);
                assert!(scanner.partial.len() <= max, "buffered past the bound");
            }
            scanner.finish();
            assert_eq!(scanner.lines_skipped(), 1, "piece {piece}");
            assert_eq!(
                scanner.usage(),
                Usage {
                    input_tokens: Some(1),
                    output_tokens: Some(2)
                },
                "piece {piece}"
            );
            assert!(scanner.done_seen(), "piece {piece}");
        }
    }

    /// Proves malformed JSON and ill-typed counts are ignored without disturbing later events.
    #[test]
    fn malformed_events_are_ignored() {
        let body = concat!(
            "data: {not json\n",
            "data: {\"usage\":{\"completion_tokens\":-1}}\n",
            "data: {\"usage\":{\"completion_tokens\":1.5}}\n",
            "data: \"just a string\"\n",
            "data: {\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":6}}\n",
        );
        assert_eq!(
            scan(&[body.as_bytes()]).usage(),
            Usage {
                input_tokens: Some(4),
                output_tokens: Some(6)
            }
        );
    }
}
