//! `job_chunk`, `job_done` and `job_error`: attribution to a submission,
//! reassembly, terminal frames and the cancel triggers they fire.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};

use super::Reaction;
use super::attribution::{Ctx, resolve};
use super::fields::{str_field, u64_field};
use super::marker::completion_seen;
use crate::record::{CancelTrigger, ChunkRecord, JobKind, JobRecord, Name, Terminal, TerminalRecord, ViolationKind};
use crate::script::ResendAfter;
use crate::state::LogState;

/// A cancel the session must send for submission `record`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CancelOrder {
    pub record: usize,
    pub job_id: Name,
}

fn bad_field(state: &mut LogState, ctx: Ctx, job_id: Option<&str>, what: String) {
    state.violation(ctx.at_us, ctx.conn, ViolationKind::BadField, job_id, what);
}

/// Handles `job_chunk`; returns the decoded length when `data` decoded.
pub(crate) fn on_chunk(
    state: &mut LogState,
    ctx: Ctx,
    obj: &Map<String, Value>,
    reaction: &mut Reaction,
) -> Option<usize> {
    let Some(job_id) = str_field(obj, "job_id") else {
        bad_field(state, ctx, None, "job_chunk without a string `job_id`".into());
        return None;
    };
    let Some(data) = str_field(obj, "data") else {
        bad_field(state, ctx, Some(job_id), "job_chunk without a string `data`".into());
        return None;
    };
    let bytes = match B64.decode(data) {
        Ok(bytes) => bytes,
        Err(e) => {
            let what = format!("job_chunk `data` is not standard base64: {e}");
            state.violation(ctx.at_us, ctx.conn, ViolationKind::BadBase64, Some(job_id), what);
            return None;
        }
    };
    let len = bytes.len();
    if let Some((index, true)) = resolve(state, ctx, "job_chunk", job_id, false) {
        let job = &mut state.jobs[index];
        let old_len = job.bytes.len();
        job.chunks.push(ChunkRecord { at_us: ctx.at_us, len });
        job.bytes.extend_from_slice(&bytes);
        let fired = trigger_fires(job, old_len).map(|t| matches!(t, CancelTrigger::RaceCompletion { .. }));
        if let Some(is_race) = fired {
            if is_race {
                job.race_fired_us = Some(ctx.at_us);
            }
            job.cancel_queued = true;
            // The session queues it right after this frame; it resets the
            // flag if the queue refuses it.
            job.cancel_in_queue = true;
            reaction.cancels.push(CancelOrder {
                record: index,
                job_id: job.job_id.clone(),
            });
        }
    }
    Some(len)
}

/// The first of the job's chunk-driven cancel triggers that fires now.
fn trigger_fires(job: &JobRecord, old_len: usize) -> Option<&CancelTrigger> {
    if job.cancel_queued || !job.terminals.is_empty() {
        return None;
    }
    job.cancel_plan.iter().find(|t| match t {
        CancelTrigger::AfterChunks { after_chunks, .. } => job.chunks.len() >= *after_chunks as usize,
        CancelTrigger::RaceCompletion { .. } => completion_seen(&job.bytes.bytes(), old_len),
        _ => false,
    })
}

/// Decodes `job_done` / `job_error`; ill-typed fields become violations and
/// default to zero / empty.
fn terminal_of(state: &mut LogState, ctx: Ctx, kind: &str, obj: &Map<String, Value>, job_id: &str) -> Terminal {
    let mut missing = Vec::new();
    let mut num = |o: Option<&Map<String, Value>>, key: &'static str| {
        o.and_then(|o| u64_field(o, key)).unwrap_or_else(|| {
            missing.push(key);
            0
        })
    };
    let terminal = if kind == "job_done" {
        let tokens = obj.get("tokens").and_then(Value::as_object);
        Terminal::Done {
            input_tokens: num(tokens, "input"),
            output_tokens: num(tokens, "output"),
            duration_ms: num(Some(obj), "duration_ms"),
        }
    } else {
        let tokens_emitted = num(Some(obj), "tokens_emitted");
        let text = |key: &'static str, missing: &mut Vec<&'static str>| {
            str_field(obj, key).map(str::to_owned).unwrap_or_else(|| {
                missing.push(key);
                String::new()
            })
        };
        let code = text("error_code", &mut missing);
        let message = text("message", &mut missing);
        let bytes_emitted = match obj.get("bytes_emitted") {
            None | Some(Value::Null) => None,
            Some(v) => v.as_u64().or_else(|| {
                missing.push("bytes_emitted");
                None
            }),
        };
        Terminal::Error {
            code,
            message,
            tokens_emitted,
            bytes_emitted,
        }
    };
    if !missing.is_empty() {
        let what = format!("{kind} has missing or ill-typed fields: {}", missing.join(", "));
        bad_field(state, ctx, Some(job_id), what);
    }
    terminal
}

/// Handles `job_done` / `job_error`; returns true when it finished a job.
pub(crate) fn on_terminal(state: &mut LogState, ctx: Ctx, kind: &str, obj: &Map<String, Value>) -> bool {
    let Some(job_id) = str_field(obj, "job_id") else {
        bad_field(state, ctx, None, format!("{kind} without a string `job_id`"));
        return false;
    };
    let terminal = terminal_of(state, ctx, kind, obj, job_id);
    let duplicate_error = matches!(&terminal, Terminal::Error { code, .. } if code == "duplicate_job");
    let Some((index, open)) = resolve(state, ctx, kind, job_id, duplicate_error) else {
        return false;
    };
    check_terminal(state, ctx, index, &terminal, job_id);
    let job = &mut state.jobs[index];
    let first = job.terminals.is_empty();
    // A job the coordinator had already cancelled ended by the cancel, not
    // by this (racing) frame: re-sends timed from its terminal stay unsent.
    let uncancelled = !job.cancel_queued && job.cancel_sent_us.is_none();
    if first {
        job.cancel_before_terminal = Some(job.cancel_sent_us.is_some());
        // A job has one terminal frame (more are violations) and takes no
        // chunk after it: its lists are final, so they hold no spare room
        // for the rest of the run (a `Vec`'s first push reserves four).
        job.terminals.reserve_exact(1);
        job.chunks.shrink_to_fit();
    }
    job.terminals.push(TerminalRecord {
        at_us: ctx.at_us,
        conn: ctx.conn,
        frame: terminal,
    });
    // No chunk is expected after a terminal frame: keep the bytes packed.
    job.bytes.seal();
    if first && uncancelled {
        state.resends.fire(index, ResendAfter::Terminal, ctx.at_us);
    }
    open
}

/// Cross-checks a terminal against the submission it belongs to.
fn check_terminal(state: &mut LogState, ctx: Ctx, index: usize, terminal: &Terminal, job_id: &str) {
    let Terminal::Error {
        code, bytes_emitted, ..
    } = terminal
    else {
        return;
    };
    let job = &state.jobs[index];
    let relayed = job.bytes.len() as u64;
    let is_duplicate = matches!(job.kind, JobKind::Duplicate { .. });
    let unexpected = if code != "duplicate_job" {
        None
    } else if !is_duplicate {
        Some("duplicate_job for a job that was not resubmitted while in flight")
    } else if job.id_was_free == Some(true) {
        Some(
            "duplicate_job for a re-send written after every earlier submission of the id had ended \
             (terminal frame read or job_cancel written): the agent must run it as a new job",
        )
    } else if !job.chunks.is_empty() {
        Some("duplicate_job for a re-send that had already streamed chunks")
    } else {
        None
    };
    if let Some(what) = unexpected {
        state.violation(
            ctx.at_us,
            ctx.conn,
            ViolationKind::UnexpectedDuplicateJob,
            Some(job_id),
            what.to_owned(),
        );
    }
    if let Some(b) = bytes_emitted
        && *b != relayed
    {
        let what = format!("job_error.bytes_emitted is {b} but {relayed} bytes were relayed");
        state.violation(
            ctx.at_us,
            ctx.conn,
            ViolationKind::BytesEmittedMismatch,
            Some(job_id),
            what,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::{InFrame, ingest};
    use crate::record::{JobOutcome, Violation};

    const ID: &str = "11111111-2222-4333-8444-555555555555";

    fn state_with_job(plan: Vec<CancelTrigger>) -> LogState {
        let mut s = LogState::default();
        s.open_session(0, "normal");
        let mut job = JobRecord::new(0, JobKind::Normal, ID.into(), "m".into());
        job.conn = Some(1);
        job.sent_us = Some(1);
        job.cancel_plan = plan;
        s.push_job(job);
        s
    }

    fn chunk(s: &mut LogState, at_us: u64, data: &[u8]) -> Reaction {
        let text = format!(
            "{{\"type\":\"job_chunk\",\"job_id\":\"{ID}\",\"data\":\"{}\"}}",
            B64.encode(data)
        );
        ingest(s, 1, at_us, InFrame::Text(&text))
    }

    fn violations(s: &LogState) -> Vec<ViolationKind> {
        s.violations.iter().map(|v: &Violation| v.kind).collect()
    }

    /// Chunks are reassembled in order and done finishes the job.
    #[test]
    fn chunks_reassemble_and_done() {
        let mut s = state_with_job(vec![]);
        chunk(&mut s, 10, b"hello ");
        chunk(&mut s, 20, b"world");
        let done = format!(
            "{{\"type\":\"job_done\",\"job_id\":\"{ID}\",\"tokens\":{{\"input\":3,\"output\":2}},\"duration_ms\":7}}"
        );
        let r = ingest(&mut s, 1, 30, InFrame::Text(&done));
        assert!(r.job_finished);
        let job = &s.jobs[0];
        assert_eq!(job.bytes, b"hello world");
        assert!(job.bytes.is_sealed(), "the terminal frame seals the bytes");
        assert_eq!(
            job.chunks,
            vec![ChunkRecord { at_us: 10, len: 6 }, ChunkRecord { at_us: 20, len: 5 }]
        );
        assert_eq!(job.outcome(), JobOutcome::Done);
        assert!(s.violations.is_empty());
        assert_eq!(s.frames.get(0).unwrap().data_len, Some(6));
        assert_eq!(s.frames.get(0).unwrap().text, None);
    }

    /// A chunk after the terminal, an unknown job and bad base64 are violations.
    #[test]
    fn stray_frames_are_violations() {
        let mut s = state_with_job(vec![]);
        let err = format!(
            "{{\"type\":\"job_error\",\"job_id\":\"{ID}\",\"error_code\":\"internal\",\"message\":\"x\",\"tokens_emitted\":0,\"bytes_emitted\":0}}"
        );
        ingest(&mut s, 1, 5, InFrame::Text(&err));
        chunk(&mut s, 6, b"late");
        ingest(
            &mut s,
            1,
            7,
            InFrame::Text("{\"type\":\"job_chunk\",\"job_id\":\"nope\",\"data\":\"aGk=\"}"),
        );
        let bad = format!("{{\"type\":\"job_chunk\",\"job_id\":\"{ID}\",\"data\":\"***\"}}");
        ingest(&mut s, 1, 8, InFrame::Text(&bad));
        assert_eq!(
            violations(&s),
            vec![
                ViolationKind::AfterTerminal,
                ViolationKind::UnknownJob,
                ViolationKind::BadBase64
            ]
        );
        assert!(s.jobs[0].bytes.is_empty());
    }

    /// after_chunks fires exactly once, at the Nth chunk.
    #[test]
    fn after_chunks_trigger() {
        let mut s = state_with_job(vec![CancelTrigger::AfterChunks {
            rule: 0,
            after_chunks: 2,
        }]);
        assert!(chunk(&mut s, 1, b"a").cancels.is_empty());
        assert_eq!(chunk(&mut s, 2, b"b").cancels.len(), 1);
        assert!(chunk(&mut s, 3, b"c").cancels.is_empty());
    }

    /// The race trigger fires on a finish_reason split across chunks.
    #[test]
    fn race_trigger_split_marker() {
        let mut s = state_with_job(vec![CancelTrigger::RaceCompletion { rule: 0 }]);
        assert!(
            chunk(&mut s, 1, b"data: {\"finish_reason\":null}\n\n")
                .cancels
                .is_empty()
        );
        assert!(chunk(&mut s, 2, b"data: {\"finish_re").cancels.is_empty());
        assert_eq!(chunk(&mut s, 3, b"ason\": \"stop\"}").cancels.len(), 1);
    }

    /// A duplicate_job error goes to the duplicate, not the original.
    #[test]
    fn duplicate_error_goes_to_duplicate() {
        let mut s = state_with_job(vec![]);
        let mut dup = JobRecord::new(0, JobKind::Duplicate { of: 0 }, ID.into(), "m".into());
        dup.conn = Some(1);
        dup.sent_us = Some(2);
        s.push_job(dup);
        let err = format!(
            "{{\"type\":\"job_error\",\"job_id\":\"{ID}\",\"error_code\":\"duplicate_job\",\"message\":\"\",\"tokens_emitted\":0,\"bytes_emitted\":0}}"
        );
        ingest(&mut s, 1, 5, InFrame::Text(&err));
        chunk(&mut s, 6, b"x");
        assert_eq!(s.jobs[1].outcome(), JobOutcome::Error("duplicate_job".into()));
        assert_eq!(s.jobs[0].bytes, b"x");
        assert!(s.violations.is_empty());
    }

    /// bytes_emitted must equal the bytes relayed.
    #[test]
    fn bytes_emitted_mismatch() {
        let mut s = state_with_job(vec![]);
        chunk(&mut s, 1, b"abc");
        let err = format!(
            "{{\"type\":\"job_error\",\"job_id\":\"{ID}\",\"error_code\":\"internal\",\"message\":\"\",\"tokens_emitted\":1,\"bytes_emitted\":2}}"
        );
        ingest(&mut s, 1, 5, InFrame::Text(&err));
        assert_eq!(violations(&s), vec![ViolationKind::BytesEmittedMismatch]);
    }

    /// A frame for a job of a lost session is a violation on the new connection.
    #[test]
    fn lost_session_frame() {
        let mut s = state_with_job(vec![]);
        s.close_session(1, 3, crate::record::CloseReason::AgentClosed);
        s.open_session(4, "normal");
        let text = format!(
            "{{\"type\":\"job_done\",\"job_id\":\"{ID}\",\"tokens\":{{\"input\":0,\"output\":0}},\"duration_ms\":0}}"
        );
        ingest(&mut s, 2, 5, InFrame::Text(&text));
        assert_eq!(violations(&s), vec![ViolationKind::LostSessionJob]);
        assert!(s.jobs[0].terminals.is_empty());
    }
}
