//! Byte equality: what the coordinator reassembled for a job is exactly what
//! the backend wrote for it (all of it for `job_done`, a prefix otherwise),
//! and `job_error.bytes_emitted` tells the truth.

use super::{OracleConfig, Rule, Violation};
use crate::trace::{BackendCall, JobKind, JobView, Terminal, TraceView};

/// Relayed bytes equal the backend's bytes.
pub const MATCH_BACKEND: Rule = Rule {
    name: "bytes_match_backend",
    summary: "the bytes reassembled at the coordinator equal the bytes the backend wrote for the job",
    check: match_backend,
};

fn match_backend(view: &TraceView, _config: &OracleConfig) -> Vec<Violation> {
    let mut found = Vec::new();
    for job in view.jobs.values() {
        // A re-sent id may have been served more than once; its chunks cannot
        // be attributed to one backend request, so only single sends count.
        let single = job.sends.len() == 1 && job.sends[0].kind == JobKind::Normal;
        if !single || (job.chunks.is_empty() && job.terminals.is_empty()) {
            continue;
        }
        let calls: Vec<&BackendCall> = view.executions_of(&job.job).collect();
        check_job(job, &calls, &mut found);
    }
    found
}

fn check_job(job: &JobView, calls: &[&BackendCall], found: &mut Vec<Violation>) {
    let relayed = job.bytes.as_bytes();
    let at_us = job
        .first_terminal_us()
        .or(job.chunks.last().map(|c| c.at_us))
        .unwrap_or(0);
    let done = job.own_terminals().any(|t| matches!(t.what, Terminal::Done { .. }));
    let mut flag = |detail: String| found.push(Violation::new(MATCH_BACKEND.name, Some(&job.job), at_us, detail));
    if calls.len() > 1 {
        flag(format!(
            "served by {} backend requests; one job must be one request",
            calls.len()
        ));
        return;
    }
    let Some(call) = calls.first() else {
        if done || !relayed.is_empty() {
            flag(format!(
                "{} bytes relayed but no backend request carried this job",
                relayed.len()
            ));
        }
        return;
    };
    if call.end_us.is_none() {
        // Still streaming at the end of the run: another rule reports it.
        return;
    }
    let written = call.body.as_bytes();
    if done && relayed != written {
        flag(format!(
            "job_done, but relayed {} bytes != backend wrote {} bytes{}",
            relayed.len(),
            written.len(),
            first_difference(relayed, written)
        ));
    } else if !done && !written.starts_with(relayed) {
        flag(format!(
            "relayed {} bytes are not a prefix of the {} bytes the backend wrote{}",
            relayed.len(),
            written.len(),
            first_difference(relayed, written)
        ));
    }
    for terminal in job.own_terminals() {
        if let Terminal::Error {
            bytes_emitted: Some(claimed),
            code,
            ..
        } = &terminal.what
            && *claimed != relayed.len() as u64
        {
            flag(format!(
                "job_error {code} claims bytes_emitted {claimed}, but {} bytes were relayed",
                relayed.len()
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
