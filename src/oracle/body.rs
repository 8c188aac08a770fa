//! What the rules read of one SSE body, read in one pass and kept with the
//! body.
//!
//! Three rules read response bodies: `heartbeat_figures_truthful` and
//! `tokens_emitted_matches_backend` count relayed tokens
//! ([`usage::relayed_tokens`], with and without the unterminated tail),
//! `usage_matches_backend` reads the stream's usage
//! ([`usage::stream_usage`]), and `done_requires_completed_stream` looks
//! for the `data: [DONE]` line. A done job's reassembled bytes are its
//! backend body's own blob (`Blob::share_prefix`), so the same body would
//! be parsed line by line by two or three rules. [`Summary`] holds all four
//! answers, computed by [`summarise`] in one pass (one [`sse::parse`] per
//! `data:` line), and [`of`] keeps it in the blob ([`Blob::derived`]): once
//! per body, whichever rule asks first.
//!
//! Why in the blob: the rules are plain functions of the trace view, with
//! no per-run state of their own to hold a cache, and the blob is what the
//! readers share; its slot is type-erased, so the trace does not depend on
//! the oracle (see `trace/blob.rs`). A prefix view of a body is other
//! bytes and gets its own summary.
//!
//! Each field equals what its function computes on the same bytes; a test
//! compares them over crafted bodies.

use super::sse;
use super::usage::{event_tokens, event_usage, lines, payload_of};
use crate::trace::Blob;

#[cfg(doc)]
use super::usage;

/// What the rules read of one SSE body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Output tokens in the newline-terminated lines:
    /// [`usage::relayed_tokens`]`(body, false)`.
    pub tokens_whole_lines: u64,
    /// Output tokens in every line, the unterminated tail included:
    /// [`usage::relayed_tokens`]`(body, true)`.
    pub tokens_with_tail: u64,
    /// The usage the stream reports, `(input, output)`:
    /// [`usage::stream_usage`]`(body)`.
    pub usage: (u64, u64),
    /// Whether a line (the tail included) is `data: [DONE]`, a trailing
    /// `\r` dropped.
    pub done_line: bool,
}

/// The summary of `blob`, computed once per body and kept with it.
pub fn of(blob: &Blob) -> Summary {
    blob.derived(summarise)
}

/// The summary of `body`, in one pass over its lines.
pub fn summarise(body: &[u8]) -> Summary {
    let mut summary = Summary::default();
    let mut tokens = Relayed::default();
    let (mut input, mut output) = (None, None);
    let mut pieces = lines(body).peekable();
    while let Some(line) = pieces.next() {
        if pieces.peek().is_none() {
            // The piece after the last newline: the unterminated tail.
            summary.tokens_whole_lines = tokens.most;
        }
        if line.strip_suffix(b"\r").unwrap_or(line) == b"data: [DONE]" {
            summary.done_line = true;
        }
        let Some(event) = payload_of(line).and_then(sse::parse) else {
            continue;
        };
        if let Some((event_input, event_output)) = event_usage(&event) {
            input = event_input.or(input);
            output = event_output.or(output);
        }
        if let Some((usage_output, content)) = event_tokens(&event) {
            tokens.add(usage_output, content);
        }
    }
    summary.tokens_with_tail = tokens.most;
    summary.usage = (input.unwrap_or(0), output.unwrap_or(0));
    summary
}

/// The running count of [`usage::relayed_tokens`].
#[derive(Default)]
struct Relayed {
    /// The output count of the latest event that reported one.
    usage_output: Option<u64>,
    /// Events whose first choice carried content.
    content_events: u64,
    /// The most relayed so far (the count never decreases).
    most: u64,
}

impl Relayed {
    fn add(&mut self, usage_output: Option<u64>, content: bool) {
        self.usage_output = usage_output.or(self.usage_output);
        self.content_events += u64::from(content);
        self.most = self.most.max(self.usage_output.unwrap_or(self.content_events));
    }
}

#[cfg(test)]
mod tests {
    use super::super::sse::CRAFTED_PAYLOADS;
    use super::super::usage::{relayed_tokens, stream_usage};
    use super::*;

    /// The separate readings the summary replaces.
    fn separately(body: &[u8]) -> Summary {
        Summary {
            tokens_whole_lines: relayed_tokens(body, false),
            tokens_with_tail: relayed_tokens(body, true),
            usage: stream_usage(body),
            done_line: lines(body).any(|line| line.strip_suffix(b"\r").unwrap_or(line) == b"data: [DONE]"),
        }
    }

    /// Hand-written streams: `[DONE]` lines, usage, tails, `\r\n`.
    fn hand_written() -> Vec<String> {
        [
            "",
            "\n",
            "data: [DONE]",
            "data: [DONE]\r",
            "data: [DONE]\r\n\r\n",
            "data:[DONE]\n",
            "data: [DONE] \n",
            " data: [DONE]\n",
            "data: [DONE]\r\r\n",
            "event: x\ndata: [DONE]\n\n",
            concat!(
                "data: {\"choices\":[{\"delta\":{\"content\":\" a\"}}]}\n\n",
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"total_tokens\":46,\"completion_tokens\":34}}\n\n",
                "data: [DONE]\n\n",
            ),
            "data: {\"choices\":[],\"usage\":null}\r\n\r\ndata: [DONE]\r\n\r\n",
            concat!(
                "data:{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}\n",
                "data: {\"usage\":{\"completion_tokens\":9}}\n",
            ),
            concat!(
                "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n",
                "data: {\"choices\":[{\"delta\":{\"content\":\"\"}}]}\n",
                "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n",
                "data: {\"choices\":[{\"delta\":{\"content\":\"c\"}}]}\n",
                "data: {\"choices\":[],\"usage\":{\"completion_tokens\":2}}\n",
                "data: {\"usage\":{\"completion_tokens\":9}}",
            ),
            concat!(
                "data: {\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":6}}\n",
                "data: {\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":-1}}\n",
                "data: {not json\n",
            ),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Every payload as a stream of its own, all in one stream, neighbours.
    fn crafted_bodies() -> Vec<String> {
        let mut bodies = hand_written();
        let framings = [
            "data: {}\n",
            "data:{}\n\n",
            "data: {}\r\n\r\n",
            "data: {}",
            "data: {}\r",
        ];
        for framing in framings {
            for payload in CRAFTED_PAYLOADS {
                bodies.push(framing.replace("{}", payload));
            }
            // All payloads in one stream, ends and tails included.
            let all: String = CRAFTED_PAYLOADS
                .iter()
                .map(|p| framing.replace("{}", p) + "\n")
                .collect();
            bodies.push(all.clone());
            bodies.push(format!("{all}data: [DONE]"));
            bodies.push(format!("{all}data: [DONE]\r\n"));
        }
        // Neighbouring payloads: later events over earlier ones.
        for pair in CRAFTED_PAYLOADS.windows(3) {
            bodies.push(format!("data: {}\ndata: {}\r\ndata: {}", pair[0], pair[1], pair[2]));
            bodies.push(format!("data: {}\ndata: {}\ndata: {}\n", pair[2], pair[0], pair[1]));
        }
        bodies
    }

    /// The one-pass summary equals the separate readings on every crafted
    /// body, and on every prefix of the hand-written streams and of the
    /// stream of all payloads.
    #[test]
    fn summary_equals_the_separate_readings() {
        for body in &crafted_bodies() {
            assert_eq!(summarise(body.as_bytes()), separately(body.as_bytes()), "{body:?}");
        }
        let all: String = CRAFTED_PAYLOADS.iter().map(|p| format!("data: {p}\r\n\r\n")).collect();
        for body in hand_written().iter().chain([&all]) {
            for cut in 0..=body.len() {
                let prefix = &body.as_bytes()[..cut];
                assert_eq!(summarise(prefix), separately(prefix), "{prefix:?}");
            }
        }
    }

    /// The crafted bodies exercise every field: usage, tails, `[DONE]`.
    #[test]
    fn crafted_bodies_cover_every_field() {
        let summaries: Vec<Summary> = crafted_bodies().iter().map(|b| summarise(b.as_bytes())).collect();
        assert!(summaries.iter().any(|s| s.usage.0 > 0 && s.usage.1 > 0));
        assert!(summaries.iter().any(|s| s.tokens_with_tail > s.tokens_whole_lines));
        assert!(summaries.iter().any(|s| s.tokens_whole_lines > 0));
        assert!(summaries.iter().any(|s| s.done_line) && summaries.iter().any(|s| !s.done_line));
    }

    /// A body and its equal share one summary; a prefix view has its own.
    #[test]
    fn a_prefix_view_has_its_own_summary() {
        let body = Blob::from(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\ndata: [DONE]\n".to_vec());
        let whole = Blob::share_prefix(body.bytes().to_vec(), [&body]);
        let cut = Blob::share_prefix(body.bytes()[..20].to_vec(), [&body]);
        assert_eq!(of(&whole), summarise(&body.bytes()));
        assert!(of(&body).done_line && of(&body).tokens_whole_lines == 1);
        assert_eq!(of(&cut), summarise(&body.bytes()[..20]));
        assert!(!of(&cut).done_line && of(&cut).tokens_with_tail == 0);
    }
}
