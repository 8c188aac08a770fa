//! Terminal frames tell the truth about the backend stream behind them:
//! a `job_done` needs a backend stream that completed, and a `job_error`'s
//! `tokens_emitted` counts the output tokens relayed before the failure.
//!
//! Both are judged from outside: the backend's record of what it wrote and
//! how its response ended, and the bytes the coordinator reassembled.
//!
//! `done_requires_completed_stream`: a submission answered `job_done` has a
//! paired execution that answered 2xx and either ended `completed` (the
//! whole response handed to the transport) or wrote the `data: [DONE]`
//! line (a fault or a close after the end marker does not undo the
//! answer). A stream cut mid-way, refused, or never served cannot back a
//! `job_done`, however many bytes match.
//!
//! `tokens_emitted_matches_backend`: for a submission answered `job_error`
//! with at most one execution, `tokens_emitted` lies between the tokens in
//! the newline-terminated lines the coordinator received (the least an
//! agent that counts as it relays can report: every line it relayed whole)
//! and the tokens in everything the backend wrote, tail included (the most
//! it can have read). Tokens are counted as `usage::relayed_tokens`
//! explains: the usage's output count once reported, else one per content
//! event. An agent reporting bytes, or 0 after streaming, fails.

use super::body;
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{BackendCall, Blob, Terminal, TraceView};

/// A `job_done` stands on a completed backend stream.
pub const DONE_REQUIRES_COMPLETED: Rule = Rule {
    name: "done_requires_completed_stream",
    summary: "a job_done is backed by a 2xx backend stream that completed (or wrote data: [DONE]); a cut or refused stream must end in job_error",
    check: done_requires_completed,
};

/// `tokens_emitted` counts what was relayed.
pub const TOKENS_EMITTED: Rule = Rule {
    name: "tokens_emitted_matches_backend",
    summary: "a job_error's tokens_emitted lies between the tokens in the whole lines the coordinator received and the tokens the backend wrote",
    check: tokens_emitted,
};

/// Whether `call` streamed a whole answer.
fn completed(call: &BackendCall) -> bool {
    let ok = call.status.is_some_and(|s| (200..300).contains(&s));
    // The body is read only when the end alone does not settle it.
    let done_line = || body::of(&call.body).done_line;
    ok && (call.end.as_deref() == Some("completed") || done_line())
}

fn done_requires_completed(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let mut found = Vec::new();
    for (job, send) in view.sends() {
        let Some(first) = send.first_terminal().filter(|_| send.is_done()) else {
            continue;
        };
        tally.judge();
        let calls: Vec<&BackendCall> = view.executions_of_send(send).collect();
        if calls.iter().any(|call| completed(call)) {
            continue;
        }
        let what = match calls.last() {
            None => "no backend request carried it".to_owned(),
            Some(call) => format!(
                "its backend stream on {} answered {} and ended {}",
                call.backend,
                call.status.map_or("nothing".to_owned(), |s| s.to_string()),
                call.end.as_deref().unwrap_or("never")
            ),
        };
        let detail = format!("{}: job_done, but {what}", send.label());
        found.push(Violation::new(
            DONE_REQUIRES_COMPLETED.name,
            Some(&*job.job),
            first.at_us,
            detail,
        ));
    }
    found
}

fn tokens_emitted(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let mut found = Vec::new();
    for (job, send) in view.sends() {
        let Some(first) = send.first_terminal() else { continue };
        let Terminal::Error {
            code, tokens_emitted, ..
        } = &first.what
        else {
            continue;
        };
        let calls: Vec<&BackendCall> = view.executions_of_send(send).collect();
        if calls.len() > 1 {
            tally.excuse("two executions: never_run_twice judges it");
            continue;
        }
        tally.judge();
        let relayed = &send.bytes;
        // Nothing relayed and nothing written (an admission rejection, most
        // job_errors): no token either, without reading anything.
        let tokens = |blob: &Blob, of: fn(body::Summary) -> u64| if blob.is_empty() { 0 } else { of(body::of(blob)) };
        let least = tokens(relayed, |s| s.tokens_whole_lines);
        let written = calls.first().map_or(relayed, |call| &call.body);
        let most = tokens(written, |s| s.tokens_with_tail).max(least);
        if (least..=most).contains(tokens_emitted) {
            continue;
        }
        let detail = format!(
            "{}: job_error {code} reports tokens_emitted {tokens_emitted}, but {least} tokens were relayed in whole \
             lines ({} bytes) and the backend wrote {most}",
            send.label(),
            relayed.len()
        );
        found.push(Violation::new(
            TOKENS_EMITTED.name,
            Some(&*job.job),
            first.at_us,
            detail,
        ));
    }
    found
}
