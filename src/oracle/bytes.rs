//! Byte equality: what the coordinator reassembled for a submission is
//! exactly what the backend wrote for the execution paired with it (all of
//! it for `job_done`, a prefix otherwise), and `job_error.bytes_emitted`
//! tells the truth. Judged per submission, so a re-sent id's re-runs are
//! checked like any job.

use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{BackendCall, JobSend, Terminal, TraceView};

/// Relayed bytes equal the backend's bytes.
pub const MATCH_BACKEND: Rule = Rule {
    name: "bytes_match_backend",
    summary: "the bytes reassembled at the coordinator equal the bytes the backend wrote for the job",
    check: match_backend,
};

fn match_backend(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let mut found = Vec::new();
    // Per submission: a re-sent id's submissions each relay their own
    // bytes, from the backend execution paired with them.
    for (job, send) in view.sends() {
        if send.chunks.is_empty() && send.terminals.is_empty() {
            tally.excuse("no frame arrived");
            continue;
        }
        let calls: Vec<&BackendCall> = view.executions_of_send(send).collect();
        check_send(&job.job, send, &calls, tally, &mut found);
    }
    found
}

fn check_send(job: &str, send: &JobSend, calls: &[&BackendCall], tally: &mut Tally, found: &mut Vec<Violation>) {
    let relayed = send.bytes.len();
    let at_us = send
        .first_terminal_us()
        .or(send.chunks.last().map(|c| c.at_us))
        .unwrap_or(0);
    let done = send.is_done();
    // The label is written only for a violation (most submissions have none).
    let mut flag = |detail: String| {
        found.push(Violation::new(
            MATCH_BACKEND.name,
            Some(job),
            at_us,
            format!("{}: {detail}", send.label()),
        ))
    };
    if calls.len() > 1 {
        tally.judge();
        flag(format!(
            "served by {} backend requests; one submission must be one request",
            calls.len()
        ));
        return;
    }
    let Some(call) = calls.first() else {
        tally.judge();
        if done || relayed > 0 {
            flag(format!(
                "{relayed} bytes relayed but no backend request carried this submission"
            ));
        }
        return;
    };
    if call.end_us.is_none() {
        // Still streaming at the end of the run: another rule reports it.
        tally.excuse("backend still streaming at the end");
        return;
    }
    tally.judge();
    // Compared as blobs: a reassembled stream that is the body's own blob,
    // or a view of its bytes, is equal (or a prefix) without reading them
    // again, and two sealed streams compare by length and digest. The
    // bytes are unpacked only to say where a mismatch begins.
    let written = call.body.len();
    let difference = || first_difference(&send.bytes.bytes(), &call.body.bytes());
    if done && send.bytes != call.body {
        flag(format!(
            "job_done, but relayed {relayed} bytes != backend wrote {written} bytes{}",
            difference()
        ));
    } else if !done && !call.body.starts_with(&send.bytes) {
        flag(format!(
            "relayed {relayed} bytes are not a prefix of the {written} bytes the backend wrote{}",
            difference()
        ));
    }
    for terminal in &send.terminals {
        if let Terminal::Error {
            bytes_emitted: Some(claimed),
            code,
            ..
        } = &terminal.what
            && *claimed != relayed as u64
        {
            flag(format!(
                "job_error {code} claims bytes_emitted {claimed}, but {relayed} bytes were relayed"
            ));
        }
    }
}

/// ", first difference at byte N" (or empty when one is a prefix of the other).
fn first_difference(a: &[u8], b: &[u8]) -> String {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .map(|i| format!(", first difference at byte {i}"))
        .unwrap_or_default()
}
