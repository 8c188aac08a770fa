//! Error codes: the `error_code` of every `job_error` names what the trace
//! shows happened to its submission (protocol.md, "`error_code`
//! vocabulary", as the agent maps it in `backend/mod.rs`,
//! `backend/openai.rs` and `executor/`).
//!
//! What each code demands, checked on each submission's first terminal
//! frame:
//! - `invalid_job`: the coordinator sent the frame invalid (answerable but
//!   ill-formed), or its `deadline_ms` lies outside the agent's policy
//!   (agent/README.md: 0, or above 3 600 000); such a frame gets
//!   `invalid_job`, or `duplicate_job` when its id is in flight (the agent
//!   keeps the live job then).
//! - `duplicate_job`: an earlier submission of the id on the connection may
//!   still have been in flight at the agent: admitted, and neither answered
//!   nor cancelled before this one was written.
//! - `model_not_loaded`: the session's `capabilities` in force when the
//!   submission was written (the latest read by then, or the handshake's)
//!   did not list the model, and no backend ran it. Every code judged below
//!   needs the model listed, since the agent answers an unrouted model
//!   `model_not_loaded` at admission.
//! - `backend_timeout`: the terminal frame came at or after the deadline
//!   (from the submission's writing), give or take one simulation step.
//! - `auth_rejected_by_backend`, `internal`, `backend_unreachable`: what the
//!   paired backend execution recorded — 401 or 403 → `auth_rejected_by_backend`;
//!   another non-2xx status → `internal`; a 2xx response that did not complete
//!   (cut, or the backend went away) → `internal`; no answer head (status 0)
//!   or no execution at all → `backend_unreachable`; a completed response →
//!   none of them; a stream still open `deadline_slack_ms` after the latest
//!   possible deadline (its request's arrival plus `deadline_ms`) →
//!   `backend_timeout`.
//!
//! Exclusions, each a race or a blind spot in which the trace cannot tell:
//! - `out_of_capacity` is judged by `out_of_capacity_truthful`.
//! - `backend_timeout` is judged by the clock alone, whatever the backend
//!   recorded: a completion or fault landing at the deadline races it
//!   (deadline.toml: completions a few ms before the deadline still time
//!   out), an agent blocked on outbound budget may not have read a response
//!   the backend finished long before (backpressure.toml), and a backend
//!   that lost power tells the agent nothing until its deadline
//!   (reconnect.toml).
//! - A fault recorded after the deadline counted from the submission's
//!   writing still earns its own code: the agent's deadline runs from its
//!   later arrival, so only a stream still open `deadline_slack_ms` past
//!   the latest possible deadline demands `backend_timeout`.
//! - That demand is dropped while a partition, hold or crash between the
//!   agent and a backend may hide the agent's close from the backend.
//! - A submission with two executions is left to `never_run_twice`: which
//!   one its code answers is ambiguous (its `backend_timeout` is still
//!   judged by the clock).
//! - Submissions without a terminal frame are not judged: a cancel or a
//!   session end that beats a backend fault leaves no code. A terminal frame
//!   that crosses a cancel (swarm.toml, overload.toml) was decided before
//!   the agent read the cancel, so it is judged like any other.
//! - A session whose `capabilities` were not read gives no routes: routing
//!   is then not judged.
//! - Nor is it when a `capabilities` re-sent after a rediscovery, read after
//!   the submission was written and before its terminal frame, changed
//!   whether the model is listed: the agent switched its routes before
//!   queueing that frame, at an instant the trace cannot place against the
//!   job's arrival. (A switch before the arrival puts the new `capabilities`
//!   ahead of the terminal frame in the agent's one outbound queue, so a
//!   change read after the terminal frame cannot have applied.)
//! - `model_not_loaded` with a backend run counts only executions paired
//!   with no submission; one paired with an earlier submission of the id is
//!   a second run there, which `never_run_twice` flags.

use super::windows::backend_disruptions;
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{BackendCall, JobKind, JobSend, JobView, TraceView};

/// Every `job_error` code tells the truth.
pub const TRUTHFUL: Rule = Rule {
    name: "error_code_truthful",
    summary: "every job_error's error_code matches what happened: the backend's status, a cut, a refused connection, the deadline, an unrouted model, an invalid frame or a live duplicate id",
    check: truthful,
};

/// The `deadline_ms` values the agent accepts (agent/README.md, "`deadline_ms`
/// policy"); any other is answered `invalid_job`.
const DEADLINE_MS_ACCEPTED: std::ops::RangeInclusive<u64> = 1..=3_600_000;

/// How early a `backend_timeout` may arrive: one simulation step.
const TIMEOUT_TOLERANCE_US: u64 = 1_000;

/// What a backend execution shows happened, as the agent could see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Happened {
    /// No execution, or no answer head: refused or dropped before answering.
    NoAnswer,
    /// A non-2xx status.
    Status(u16),
    /// A 2xx response that did not complete.
    Cut,
    /// A 2xx response handed over whole.
    Completed,
    /// Still streaming well after the deadline.
    StreamingPastDeadline,
}

impl Happened {
    /// The code it demands (`None`: no error code but `backend_timeout`).
    fn code(self) -> Option<&'static str> {
        match self {
            Self::NoAnswer => Some("backend_unreachable"),
            Self::Status(401 | 403) => Some("auth_rejected_by_backend"),
            Self::Status(_) | Self::Cut => Some("internal"),
            Self::Completed => None,
            Self::StreamingPastDeadline => Some("backend_timeout"),
        }
    }

    /// What happened and the code it demands, as a violation says it.
    fn demand(self) -> String {
        let what = match self {
            Self::NoAnswer => "no backend answered its request".to_owned(),
            Self::Status(status) => format!("the backend answered {status}"),
            Self::Cut => "the backend's 2xx response stopped mid-way".to_owned(),
            Self::Completed => "the backend completed its response".to_owned(),
            Self::StreamingPastDeadline => "the backend was still streaming past the deadline".to_owned(),
        };
        let must = self.code().unwrap_or("job_done (or backend_timeout)");
        format!("{what}: it must be {must}")
    }
}

/// What the judgement of one submission needs besides the submission.
struct Ctx<'a> {
    view: &'a TraceView,
    slack_us: u64,
    /// `(from_us, until_us)` of every agent–backend link fault and backend
    /// crash.
    backend_disrupted: Vec<(u64, u64)>,
}

/// Judges the first terminal frame of every submission answered `job_error`.
fn truthful(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let ctx = Ctx {
        view,
        slack_us: config.bounds.deadline_slack_ms * 1_000,
        backend_disrupted: backend_disruptions(view).into_iter().map(|(a, b, _)| (a, b)).collect(),
    };
    let mut found = Vec::new();
    for (job, send) in view.sends() {
        let Some(first) = send.first_terminal() else {
            tally.excuse("no terminal frame");
            continue;
        };
        let Some(code) = first.what.error_code() else { continue };
        if code == "out_of_capacity" {
            tally.excuse("out_of_capacity: judged by out_of_capacity_truthful");
            continue;
        }
        tally.judge();
        if let Some(why) = untruth(&ctx, job, send, code, first.at_us) {
            let detail = format!("{}: job_error {code}, but {why}", send.label());
            found.push(Violation::new(TRUTHFUL.name, Some(&*job.job), first.at_us, detail));
        }
    }
    found
}

/// Why `code` misstates what happened to `send`, if it does. The order is
/// the agent's: frame decoding, then the id, then the route, then the run.
fn untruth(ctx: &Ctx<'_>, job: &JobView, send: &JobSend, code: &str, at_us: u64) -> Option<String> {
    match code {
        "out_of_capacity" => None,
        "invalid_job" => (!invalid(send)).then(|| "the job frame was well-formed".to_owned()),
        "duplicate_job" => {
            (!id_may_be_live(job, send)).then(|| "no other submission of the id was in flight at the agent".to_owned())
        }
        _ if invalid(send) => Some("the job frame was invalid: it must be invalid_job".to_owned()),
        "model_not_loaded" => not_loaded_untruth(ctx.view, job, send, at_us),
        "backend_timeout" | "auth_rejected_by_backend" | "internal" | "backend_unreachable" => {
            unrouted(ctx.view, send, at_us).or_else(|| run_untruth(ctx, send, code, at_us))
        }
        _ => Some("that is not a protocol error code".to_owned()),
    }
}

/// Whether the agent must find the job frame invalid: the coordinator broke
/// a field on purpose, or its deadline is outside the agent's policy.
fn invalid(send: &JobSend) -> bool {
    send.kind == JobKind::Invalid || !DEADLINE_MS_ACCEPTED.contains(&send.deadline_ms)
}

/// Whether an earlier submission of `send`'s id on its connection may still
/// have been held by the agent when `send` arrived: one the agent may have
/// admitted, whose terminal frame was not read and whose cancel was not
/// written before `send` was (a cancel written in the same instant counts
/// as possibly later).
fn id_may_be_live(job: &JobView, send: &JobSend) -> bool {
    job.sends
        .iter()
        .filter(|other| other.conn == send.conn && other.seq < send.seq)
        .any(|other| {
            let admitted = matches!(other.kind, JobKind::Normal | JobKind::Duplicate) && !other.rejected_at_admission();
            let unanswered = other.first_terminal().is_none_or(|t| t.seq > send.seq);
            let uncancelled = other.cancel_us.is_none_or(|c| c >= send.at_us);
            admitted && unanswered && uncancelled
        })
}

/// Whether the session of `send` advertised its model when it was written,
/// if that can be told: its capabilities were read, and none read between
/// the writing and the terminal frame at `terminal_us` changed the answer.
fn listed(view: &TraceView, send: &JobSend, terminal_us: u64) -> Option<bool> {
    let capabilities = &view.sessions.get(&send.conn)?.capabilities;
    let in_force = capabilities.iter().rposition(|(at, _)| *at <= send.at_us).unwrap_or(0);
    let listed = capabilities.get(in_force)?.1.iter().any(|m| **m == *send.model);
    let changed = capabilities[in_force + 1..]
        .iter()
        .take_while(|(at, _)| *at < terminal_us)
        .any(|(_, models)| models.iter().any(|m| **m == *send.model) != listed);
    (!changed).then_some(listed)
}

/// Why `model_not_loaded` is false: the session served the model, or a
/// backend ran the submission anyway.
fn not_loaded_untruth(view: &TraceView, job: &JobView, send: &JobSend, terminal_us: u64) -> Option<String> {
    if listed(view, send, terminal_us) == Some(true) {
        return Some(format!("the session's capabilities list model {}", send.model));
    }
    let next_us = job.sends.iter().filter(|o| o.seq > send.seq).map(|o| o.at_us).min();
    let run = view
        .unpaired_executions
        .iter()
        .filter_map(|&index| view.backend_calls.get(index))
        .find(|call| {
            call.job.as_deref() == Some(&*job.job)
                && call.start_us >= send.at_us
                && next_us.is_none_or(|next| call.start_us < next)
        });
    run.map(|call| format!("backend {} ran it at {} µs", call.backend, call.start_us))
}

/// Why a code other than `model_not_loaded` is impossible for an unrouted model.
fn unrouted(view: &TraceView, send: &JobSend, terminal_us: u64) -> Option<String> {
    (!listed(view, send, terminal_us)?).then(|| {
        format!(
            "the session's capabilities do not list model {}: it must be model_not_loaded",
            send.model
        )
    })
}

/// Why a code about the run misstates it: `backend_timeout` by the clock,
/// the others by the backend's record.
fn run_untruth(ctx: &Ctx<'_>, send: &JobSend, code: &str, at_us: u64) -> Option<String> {
    let calls: Vec<&BackendCall> = ctx.view.executions_of_send(send).collect();
    let happened = match calls.as_slice() {
        [] => Some(Happened::NoAnswer),
        [call] => happened(ctx, send, call),
        _ => None,
    };
    if code == "backend_timeout" {
        let deadline_us = send.at_us + send.deadline_ms * 1_000;
        if at_us + TIMEOUT_TOLERANCE_US >= deadline_us {
            return None;
        }
        let early_ms = (deadline_us - at_us) as f64 / 1e3;
        let what = happened
            .filter(|h| h.code() != Some(code))
            .map(|h| format!("; {}", h.demand()))
            .unwrap_or_default();
        return Some(format!("it arrived {early_ms:.1} ms before the deadline{what}"));
    }
    happened.filter(|h| h.code() != Some(code)).map(Happened::demand)
}

/// What one execution's record shows, or `None` while it is still open
/// (within the deadline's bound, or past it behind a backend link fault).
fn happened(ctx: &Ctx<'_>, send: &JobSend, call: &BackendCall) -> Option<Happened> {
    let limit_us = call.start_us + send.deadline_ms * 1_000 + ctx.slack_us;
    let hidden = ctx
        .backend_disrupted
        .iter()
        .any(|&(from, until)| from <= limit_us && until >= call.start_us);
    let end_us = call.end_us.unwrap_or(ctx.view.end_us);
    if end_us > limit_us && !hidden {
        return Some(Happened::StreamingPastDeadline);
    }
    let (Some(status), Some(end)) = (call.status, call.end.as_deref()) else {
        return None;
    };
    Some(match status {
        0 => Happened::NoAnswer,
        200..=299 if end == "completed" => Happened::Completed,
        200..=299 => Happened::Cut,
        other => Happened::Status(other),
    })
}
