//! Token usage: the counts a `job_done` reports are the usage the backend
//! sent in its stream.
//!
//! protocol.md: usage is read from the SSE `data:` events carrying a
//! `usage` object (`prompt_tokens` / `completion_tokens`, or `input_tokens`
//! / `output_tokens`), and `job_done.tokens` is `{input, output}`, 0 when
//! unknown. The agent (`backend/usage.rs`) keeps, field by field, the value
//! of the latest event that carried it, prefers the `prompt_`/`completion_`
//! spelling within one event, and ignores as a whole an event whose counts
//! are not non-negative integers; a stream without any usage gives 0 and 0.
//! The expected counts are read here the same way from the exact bytes the
//! backend recorded writing, so the check needs nothing from the agent.
//!
//! Only a `job_done` whose one paired execution ended `completed` is judged:
//! there the backend sent its whole stream, usage event included when it
//! sends one. (Lines longer than the agent's 1 MiB line bound, which it
//! skips, do not occur in the mock backends' streams.)

use super::sse;
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{BackendCall, Terminal, TraceView};

/// `job_done` reports the backend's usage.
pub const MATCHES_BACKEND: Rule = Rule {
    name: "usage_matches_backend",
    summary: "the tokens a job_done reports equal the usage in the backend's completed stream (0 where it sent none)",
    check: matches_backend,
};

/// Token counts: `(input, output)`.
type Tokens = (u64, u64);

fn matches_backend(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let mut found = Vec::new();
    for (job, send) in view.sends() {
        let Some(first) = send.first_terminal() else { continue };
        let Terminal::Done {
            tokens_in, tokens_out, ..
        } = first.what
        else {
            continue;
        };
        let calls: Vec<&BackendCall> = view.executions_of_send(send).collect();
        let [call] = calls.as_slice() else {
            tally.excuse("not exactly one execution");
            continue;
        };
        if call.end.as_deref() != Some("completed") {
            tally.excuse("backend stream not completed");
            continue;
        }
        tally.judge();
        // Not the body's cached summary: that parses every content event,
        // which nothing else needs of most bodies since the heartbeat rule
        // counts relayed tokens only when a figure disagrees; this skips
        // every line that cannot carry a usage key.
        let expected = stream_usage(&call.body.bytes());
        if (tokens_in, tokens_out) != expected {
            let detail = format!(
                "{}: job_done reports {tokens_in} input / {tokens_out} output tokens, the backend's stream on {} \
                 said {} / {}",
                send.label(),
                call.backend,
                expected.0,
                expected.1
            );
            found.push(Violation::new(
                MATCHES_BACKEND.name,
                Some(&*job.job),
                first.at_us,
                detail,
            ));
        }
    }
    found
}

/// The usage an SSE body reports, each count taken from the latest event
/// carrying it, 0 where none did.
pub fn stream_usage(body: &[u8]) -> Tokens {
    let (mut input, mut output) = (None, None);
    for line in usage_candidates(body) {
        let Some((event_input, event_output)) = line_usage(line) else {
            continue;
        };
        input = event_input.or(input);
        output = event_output.or(output);
    }
    (input.unwrap_or(0), output.unwrap_or(0))
}

/// The lines of `body` that can carry a `usage` key, in order: those where
/// the word is spelled out or a backslash (an escape) appears. Found by
/// searching the whole body, not line by line: most bodies have one such
/// line among hundreds (a test compares the result with a line-by-line
/// reading over crafted bodies and all their prefixes, in `body.rs`).
fn usage_candidates(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut hits: Vec<usize> = memchr::memmem::find_iter(body, b"usage").collect();
    hits.extend(memchr::memchr_iter(b'\\', body));
    hits.sort_unstable();
    let mut next_line_from = 0;
    hits.into_iter().filter_map(move |at| {
        if at < next_line_from {
            return None;
        }
        let start = memchr::memrchr(b'\n', &body[..at]).map_or(0, |nl| nl + 1);
        let end = memchr::memchr(b'\n', &body[at..]).map_or(body.len(), |nl| at + nl);
        next_line_from = end + 1;
        Some(&body[start..end])
    })
}

/// The counts of one `data:` line carrying a well-formed `usage` object.
fn line_usage(line: &[u8]) -> Option<(Option<u64>, Option<u64>)> {
    event_usage(&sse::parse(payload_of(line)?)?)
}

/// The counts of an event carrying a well-formed `usage` object.
pub(super) fn event_usage(event: &sse::Event) -> Option<(Option<u64>, Option<u64>)> {
    let sse::Field::Is(counts) = event.usage else {
        return None;
    };
    // A count present but not a non-negative integer spoils the event.
    let input = counts.prompt_tokens.get()?.or(counts.input_tokens.get()?);
    let output = counts.completion_tokens.get()?.or(counts.output_tokens.get()?);
    Some((input, output))
}

/// The pieces of `body` between newlines, as `body.split(|&b| b == b'\n')`
/// gives them (the piece after the last newline last, empty or not).
pub fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(body);
    std::iter::from_fn(move || {
        let piece = rest?;
        match memchr::memchr(b'\n', piece) {
            Some(at) => {
                rest = Some(&piece[at + 1..]);
                Some(&piece[..at])
            }
            None => {
                rest = None;
                Some(piece)
            }
        }
    })
}

/// The JSON of a `data:` line (one optional space after the colon, a
/// trailing `\r` dropped), or `None` for any other line.
pub(super) fn payload_of(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let payload = line.strip_prefix(b"data:")?;
    Some(payload.strip_prefix(b" ").unwrap_or(payload))
}

/// Output tokens an agent has relayed after relaying `body`, counted as
/// protocol.md's `tokens_emitted` ("output tokens relayed before the
/// failure") and as the agent counts them (`backend/usage.rs`): the usage's
/// output count once an event reported one, otherwise one per event whose
/// `choices[0].delta.content` is a non-empty string; never decreasing. An
/// event whose `usage` or `choices` is ill-typed is ignored as a whole.
/// Only newline-terminated lines count unless `with_tail` (a completed
/// stream's last, unterminated line is read at its end; a failed one's is not).
pub fn relayed_tokens(body: &[u8], with_tail: bool) -> u64 {
    let mut lines: Vec<&[u8]> = lines(body).collect();
    // The piece after the last newline is the unterminated tail.
    let tail = lines.pop().unwrap_or_default();
    if with_tail {
        lines.push(tail);
    }
    let (mut usage_output, mut content_events, mut relayed) = (None, 0_u64, 0_u64);
    for line in lines {
        let Some((output, content)) = line_event(line) else {
            continue;
        };
        usage_output = output.or(usage_output);
        content_events += u64::from(content);
        relayed = relayed.max(usage_output.unwrap_or(content_events));
    }
    relayed
}

/// One `data:` line's usage output count and whether it carried content,
/// or `None` when it is no well-formed event.
fn line_event(line: &[u8]) -> Option<(Option<u64>, bool)> {
    event_tokens(&sse::parse(payload_of(line)?)?)
}

/// An event's usage output count and whether it carried content, or
/// `None` when its `usage` or `choices` is ill-typed.
pub(super) fn event_tokens(event: &sse::Event) -> Option<(Option<u64>, bool)> {
    let output = match event.usage {
        sse::Field::Absent => None,
        sse::Field::Is(counts) => {
            let (completion, output) = (counts.completion_tokens.get()?, counts.output_tokens.get()?);
            counts.prompt_tokens.get()?;
            counts.input_tokens.get()?;
            completion.or(output)
        }
        sse::Field::Spoiled => return None,
    };
    let content = match event.choices {
        sse::Field::Absent => false,
        sse::Field::Is(content) => content,
        sse::Field::Spoiled => return None,
    };
    Some((output, content))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vLLM-style stream reports its usage event's counts.
    /// `lines` splits exactly as `split` at newlines does.
    #[test]
    fn lines_split_like_split() {
        for body in ["", "\n", "a", "a\n", "a\nb", "\n\na\n\nb\n", "data: x\r\n\r\n"] {
            let want: Vec<&[u8]> = body.as_bytes().split(|&b| b == b'\n').collect();
            assert_eq!(lines(body.as_bytes()).collect::<Vec<_>>(), want, "{body:?}");
        }
    }

    #[test]
    fn reads_the_usage_event() {
        let body = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\" a\"}}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"total_tokens\":46,\"completion_tokens\":34}}\n\n",
            "data: [DONE]\n\n",
        );
        assert_eq!(stream_usage(body.as_bytes()), (12, 34));
    }

    /// No usage event gives 0 and 0; a null usage is no usage.
    #[test]
    fn no_usage_is_zero() {
        let body = "data: {\"choices\":[],\"usage\":null}\r\n\r\ndata: [DONE]\r\n\r\n";
        assert_eq!(stream_usage(body.as_bytes()), (0, 0));
    }

    /// Later events win field by field; the input/output spelling is read.
    #[test]
    fn later_fields_win_and_both_spellings_count() {
        let body = concat!(
            "data:{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}\n",
            "data: {\"usage\":{\"completion_tokens\":9}}\n",
        );
        assert_eq!(stream_usage(body.as_bytes()), (3, 9));
    }

    /// Relayed tokens follow the usage once reported, content events before, never decreasing; a tail counts only when asked.
    #[test]
    fn relayed_tokens_count_like_the_agent() {
        let body = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"\"}}]}\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"c\"}}]}\n",
        );
        assert_eq!(relayed_tokens(body.as_bytes(), false), 3);
        let with_usage = format!("{body}data: {{\"choices\":[],\"usage\":{{\"completion_tokens\":2}}}}\n");
        assert_eq!(relayed_tokens(with_usage.as_bytes(), false), 3, "never decreases");
        let with_tail = format!("{body}data: {{\"usage\":{{\"completion_tokens\":9}}}}");
        assert_eq!(relayed_tokens(with_tail.as_bytes(), false), 3);
        assert_eq!(relayed_tokens(with_tail.as_bytes(), true), 9);
    }

    /// An event with an ill-typed count is ignored as a whole, as the agent ignores it.
    #[test]
    fn an_ill_typed_count_spoils_its_event() {
        let body = concat!(
            "data: {\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":6}}\n",
            "data: {\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":-1}}\n",
            "data: {not json\n",
        );
        assert_eq!(stream_usage(body.as_bytes()), (4, 6));
    }
}
