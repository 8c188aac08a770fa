//! End-of-run checks the coordinator can make on its own, from its record
//! alone: the protocol-level subset of simctl's oracle, for a person who
//! runs the binary against an agent without simctl.
//!
//! Each check says what it judged and what it excused, and lists its
//! violations. They judge what the coordinator saw on the wire, never the
//! agent's word about itself, and none needs the backends' records.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::record::{Dir, JobKind, JobRecord, Terminal};
use crate::state::{LogState, Submissions};

/// Most violations one check lists; the rest are counted.
pub const CHECK_VIOLATIONS_MAX: usize = 1000;

/// One finding of a check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckViolation {
    pub at_us: u64,
    pub conn: Option<u64>,
    pub job_id: Option<String>,
    /// A sentence saying what was wrong.
    pub what: String,
}

/// What one check judged, excused and found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Stable name, e.g. `malformed_unanswered`.
    pub name: &'static str,
    /// The rule in one line.
    pub rule: &'static str,
    /// Items (jobs, heartbeats, terminal frames) the rule was applied to.
    pub judged: u64,
    /// Items it could not judge, and why, e.g. `2 (connection ended first)`.
    pub excused: Vec<(String, u64)>,
    /// At most [`CHECK_VIOLATIONS_MAX`] of them.
    pub violations: Vec<CheckViolation>,
    /// Violations beyond the bound.
    pub violations_dropped: u64,
}

impl CheckReport {
    fn new(name: &'static str, rule: &'static str) -> CheckReport {
        CheckReport {
            name,
            rule,
            judged: 0,
            excused: Vec::new(),
            violations: Vec::new(),
            violations_dropped: 0,
        }
    }

    fn excuse(&mut self, why: &str, n: u64) {
        if n > 0 {
            self.excused.push((why.to_owned(), n));
        }
    }

    fn flag(&mut self, at_us: u64, conn: Option<u64>, job_id: Option<&str>, what: String) {
        if self.violations.len() >= CHECK_VIOLATIONS_MAX {
            self.violations_dropped += 1;
            return;
        }
        let job_id = job_id.filter(|id| !id.is_empty()).map(str::to_owned);
        self.violations.push(CheckViolation {
            at_us,
            conn,
            job_id,
            what,
        });
    }

    /// Every violation, listed or counted.
    pub fn violation_count(&self) -> u64 {
        self.violations.len() as u64 + self.violations_dropped
    }
}

/// Runs every check over the record as it stands at `end_us`.
pub(crate) fn run(state: &LogState, end_us: u64) -> Vec<CheckReport> {
    vec![
        malformed_unanswered(state, end_us),
        two_terminals(state),
        two_completions(state),
        queue_depth(state),
        tokens_emitted(state),
    ]
}

/// An answerable malformed job gets a terminal frame by the end.
fn malformed_unanswered(state: &LogState, end_us: u64) -> CheckReport {
    let mut r = CheckReport::new(
        "malformed_unanswered",
        "an answerable malformed job gets a terminal frame (job_error invalid_job) by the end",
    );
    let (mut unwritten, mut lost) = (0, 0);
    for job in &state.jobs {
        let JobKind::Malformed(kind) = job.kind else { continue };
        let Some(code) = kind.expected_error_code() else {
            continue;
        };
        if job.sent_us.is_none() {
            unwritten += 1;
            continue;
        }
        if !job.terminals.is_empty() {
            r.judged += 1;
            continue;
        }
        if job.session_lost_us.is_some() {
            lost += 1;
            continue;
        }
        r.judged += 1;
        let sent_ms = job.sent_us.unwrap_or(0) as f64 / 1e3;
        let what = format!(
            "malformed job ({}) written at {sent_ms:.3} ms got no terminal frame by the end (expected job_error {code})",
            kind_name(&job.kind)
        );
        r.flag(end_us, job.conn, Some(&job.job_id), what);
    }
    r.excuse("never written", unwritten);
    r.excuse("connection ended before an answer", lost);
    r
}

/// One submission, at most one terminal frame.
fn two_terminals(state: &LogState) -> CheckReport {
    let mut r = CheckReport::new(
        "two_terminals",
        "a submission gets at most one terminal frame (job_done or job_error)",
    );
    for job in state.jobs.iter().filter(|j| !j.terminals.is_empty()) {
        r.judged += 1;
        if let [first, second, ..] = job.terminals.as_slice() {
            let what = format!(
                "{} terminal frames for one submission: {} at {:.3} ms, then {} at {:.3} ms",
                job.terminals.len(),
                terminal_name(&first.frame),
                first.at_us as f64 / 1e3,
                terminal_name(&second.frame),
                second.at_us as f64 / 1e3
            );
            r.flag(second.at_us, Some(second.conn), Some(&job.job_id), what);
        }
    }
    r
}

/// One job's bytes are one completion: a live duplicate that the agent ran
/// instead of answering `duplicate_job` mixes a second completion in.
fn two_completions(state: &LogState) -> CheckReport {
    let mut r = CheckReport::new(
        "two_completions",
        "one job's relayed bytes hold one completion (one completion id, at most one [DONE])",
    );
    let mut unmarked = 0;
    for job in state.jobs.iter().filter(|j| !j.bytes.is_empty()) {
        let seen = completions_in(&job.bytes.bytes());
        if seen.ids.is_empty() && seen.done_lines == 0 {
            unmarked += 1;
            continue;
        }
        r.judged += 1;
        if seen.ids.len() < 2 && seen.done_lines < 2 {
            continue;
        }
        let ids: Vec<&str> = seen.ids.iter().map(String::as_str).take(3).collect();
        let live_resend = live_resend_of(state, job);
        let what = format!(
            "its bytes hold {} completion ids ({}) and {} [DONE] lines{}",
            seen.ids.len(),
            ids.join(", "),
            seen.done_lines,
            if live_resend {
                ": a re-send of its id was written while it was live, and was run"
            } else {
                ""
            }
        );
        let at_us = job.chunks.last().map_or(0, |c| c.at_us);
        r.flag(at_us, job.conn, Some(&job.job_id), what);
    }
    r.excuse("bytes without a completion id or [DONE]", unmarked);
    r
}

/// Whether a re-send of `job`'s id was written on its connection while it
/// still awaited frames.
fn live_resend_of(state: &LogState, job: &JobRecord) -> bool {
    let ids = state
        .jobs_by_id
        .get(job.job_id.as_str())
        .map_or(&[][..], Submissions::as_slice);
    let ended_us = job.terminals.first().map(|t| t.at_us).or(job.cancel_sent_us);
    ids.iter().filter_map(|&i| state.jobs.get(i)).any(|other| {
        matches!(other.kind, JobKind::Duplicate { .. })
            && other.index > job.index
            && other.conn == job.conn
            && other.sent_us.is_some_and(|s| ended_us.is_none_or(|e| s < e))
    })
}

/// Completion ids and `[DONE]` lines in an SSE body.
#[derive(Debug, Default)]
struct Completions {
    ids: BTreeSet<String>,
    done_lines: u64,
}

fn completions_in(bytes: &[u8]) -> Completions {
    let mut seen = Completions::default();
    for payload in data_lines(bytes) {
        if payload == b"[DONE]" {
            seen.done_lines += 1;
            continue;
        }
        let Ok(event) = serde_json::from_slice::<Value>(payload) else {
            continue;
        };
        // OpenAI chunks carry `id`; Anthropic's `message_start` `message.id`.
        let id = event
            .get("id")
            .or_else(|| event.get("message").and_then(|m| m.get("id")));
        if let Some(Value::String(id)) = id {
            seen.ids.insert(id.clone());
        }
    }
    seen
}

/// The payloads of the complete `data:` lines of an SSE body.
fn data_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(&[][..], |end| &bytes[..end]);
    complete.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let payload = line.strip_prefix(b"data:")?;
        Some(payload.strip_prefix(b" ").unwrap_or(payload))
    })
}

/// A heartbeat's `queue_depth` is at least the number of jobs surely
/// streaming on its connection when it was written.
fn queue_depth(state: &LogState) -> CheckReport {
    let mut r = CheckReport::new(
        "heartbeat_queue_depth",
        "heartbeat queue_depth is at least the jobs surely streaming (a chunk before it, the terminal after it, \
         no cancel written before it)",
    );
    // Per connection, job ids with a chunk read and no terminal read yet.
    let mut streaming: BTreeSet<(u64, &str)> = BTreeSet::new();
    // Ids cancelled since they were last written: their late chunks do not
    // make them stream again (the agent freed the slot on the cancel).
    let mut cancelled: BTreeSet<(u64, &str)> = BTreeSet::new();
    // Heartbeats with a depth: (at_us, conn, depth, candidate ids, surely
    // count), and per candidate the heartbeats waiting for its terminal.
    let mut beats: Vec<(u64, u64, u64, Vec<&str>, u64)> = Vec::new();
    let mut waiting: BTreeMap<(u64, &str), Vec<usize>> = BTreeMap::new();
    let mut cancelled_streaming = 0;
    for f in state.frames.iter() {
        let Some(id) = f.job_id else {
            if f.dir == Dir::In
                && f.kind == "heartbeat"
                && let Some(depth) = f.text.and_then(depth_of)
            {
                let ids: Vec<&str> = streaming
                    .iter()
                    .filter(|(c, _)| *c == f.conn)
                    .map(|(_, id)| *id)
                    .collect();
                for id in &ids {
                    waiting.entry((f.conn, *id)).or_default().push(beats.len());
                }
                beats.push((f.at_us, f.conn, depth, ids, 0));
            }
            continue;
        };
        let key = (f.conn, id);
        match (f.dir, f.kind) {
            (Dir::Out, "job") => {
                cancelled.remove(&key);
            }
            (Dir::In, "job_chunk") if !cancelled.contains(&key) => {
                streaming.insert(key);
            }
            (Dir::Out, "job_cancel") => {
                cancelled.insert(key);
                cancelled_streaming += u64::from(streaming.remove(&key));
                // Heartbeats read before the cancel still count the job if
                // its terminal follows; none read after it do.
            }
            (Dir::In, "job_done" | "job_error") if !is_duplicate_answer(f.text) => {
                streaming.remove(&key);
                for b in waiting.remove(&key).unwrap_or_default() {
                    beats[b].4 += 1;
                }
            }
            _ => {}
        }
    }
    for (at_us, conn, depth, ids, surely) in beats {
        r.judged += 1;
        if depth < surely {
            let few: Vec<&str> = ids.iter().copied().take(3).collect();
            let what = format!(
                "queue_depth {depth} while {surely} job(s) were surely streaming on connection {conn} (e.g. {})",
                few.join(", ")
            );
            r.flag(at_us, Some(conn), None, what);
        }
    }
    r.excuse(
        "jobs cancelled while streaming: not counted from the cancel on",
        cancelled_streaming,
    );
    r.excuse("frames past the frame-record bound (not seen)", state.frames_dropped);
    r
}

fn depth_of(text: &str) -> Option<u64> {
    serde_json::from_str::<Value>(text).ok()?.get("queue_depth")?.as_u64()
}

/// A `job_error` `duplicate_job` answers a re-send, not the job streaming.
fn is_duplicate_answer(text: Option<&str>) -> bool {
    let Some(v) = text.and_then(|t| serde_json::from_str::<Value>(t).ok()) else {
        return false;
    };
    v.get("error_code").and_then(Value::as_str) == Some("duplicate_job")
}

/// `job_error.tokens_emitted` is no more than the bytes relayed could hold.
fn tokens_emitted(state: &LogState) -> CheckReport {
    let mut r = CheckReport::new(
        "tokens_emitted",
        "job_error tokens_emitted is no more than the relayed bytes could hold (their usage count, or one token \
         per content character)",
    );
    for job in &state.jobs {
        for t in &job.terminals {
            let Terminal::Error { tokens_emitted, .. } = t.frame else {
                continue;
            };
            r.judged += 1;
            let bound = token_bound(&job.bytes.bytes());
            if tokens_emitted > bound {
                let what = format!(
                    "job_error reports tokens_emitted {tokens_emitted}, but the {} bytes relayed hold at most {bound}",
                    job.bytes.len()
                );
                r.flag(t.at_us, Some(t.conn), Some(&job.job_id), what);
            }
        }
    }
    r
}

/// The most output tokens an SSE body can account for: the largest output
/// count of any `usage` object in it, or one token per character of
/// streamed content (text the check cannot parse counts a token per byte).
pub(crate) fn token_bound(bytes: &[u8]) -> u64 {
    let tail_start = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut content = (bytes.len() - tail_start) as u64;
    let mut usage = 0;
    for payload in data_lines(bytes) {
        if payload == b"[DONE]" {
            continue;
        }
        let Ok(event) = serde_json::from_slice::<Value>(payload) else {
            content += payload.len() as u64;
            continue;
        };
        if let Some(u) = event.get("usage").and_then(Value::as_object) {
            let counts = ["completion_tokens", "output_tokens"].map(|k| u.get(k).and_then(Value::as_u64));
            usage = counts.into_iter().flatten().fold(usage, u64::max);
        }
        content += content_chars(&event);
    }
    usage.max(content)
}

/// Characters of content in one event: OpenAI `choices[].delta.content` or
/// `choices[].text`, Anthropic `delta.text`.
fn content_chars(event: &Value) -> u64 {
    let chars = |v: Option<&Value>| v.and_then(Value::as_str).map_or(0, |s| s.chars().count() as u64);
    let choices = event
        .get("choices")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let openai: u64 = choices
        .iter()
        .map(|c| chars(c.get("delta").and_then(|d| d.get("content"))) + chars(c.get("text")))
        .sum();
    openai + chars(event.get("delta").and_then(|d| d.get("text")))
}

/// `normal`, `duplicate`, or `malformed <kind>`.
pub(crate) fn kind_name(kind: &JobKind) -> String {
    match kind {
        JobKind::Normal => "normal".into(),
        JobKind::Duplicate { .. } => "duplicate".into(),
        JobKind::Malformed(k) => {
            let name = serde_json::to_value(k).ok();
            format!("malformed {}", name.as_ref().and_then(Value::as_str).unwrap_or("?"))
        }
    }
}

fn terminal_name(t: &Terminal) -> String {
    match t {
        Terminal::Done { .. } => "job_done".into(),
        Terminal::Error { code, .. } => format!("job_error {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token bound is the usage count or the content characters, whichever is larger.
    #[test]
    fn token_bound_counts_usage_or_content() {
        let content = b"data: {\"choices\":[{\"delta\":{\"content\":\"abcd\"}}]}\n\n";
        assert_eq!(token_bound(content), 4);
        let usage = b"data: {\"choices\":[],\"usage\":{\"completion_tokens\":9}}\n\ndata: [DONE]\n\n";
        assert_eq!(token_bound(usage), 9);
        assert_eq!(token_bound(b""), 0);
        // A cut line and an unparseable event count a token per byte.
        assert_eq!(token_bound(b"data: {broken\n\ndata: {\"cho"), 7 + 11);
    }

    /// Completion ids and [DONE] lines are found only in complete data lines.
    #[test]
    fn completions_are_counted() {
        let body = b"data: {\"id\":\"a\"}\n\ndata: {\"id\":\"b\"}\n\ndata: [DONE]\n\ndata: {\"id\":\"c\"";
        let seen = completions_in(body);
        assert_eq!(seen.ids.into_iter().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(seen.done_lines, 1);
    }
}
