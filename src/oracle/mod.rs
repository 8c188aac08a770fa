//! The oracle: named rules that judge one run from its trace.
//!
//! Every rule is a plain function from the indexed trace ([`TraceView`]) and
//! the run's limits ([`OracleConfig`]) to a list of [`Violation`]s. Rules
//! read the coordinator's log and the backends' records; the agent's own
//! observer events are used only where nothing outside can see a property
//! (slot accounting, queued outbound bytes). Every rule runs on every run
//! unless the scenario opts out of it by name, with a reason.
//!
//! Rules judge each *submission* — each `job` frame the coordinator wrote,
//! with the chunks, bytes, terminal frames, cancel and supersession or
//! session loss the coordinator attributed to it
//! ([`JobSend`](crate::trace::JobSend)) — not each job id, so a re-sent id
//! is judged like any job: the original and every re-run against their own
//! bytes, cancel bound and deadline. Backend executions are paired with
//! submissions by [`TraceView::executions_of_send`].
//!
//! Files, one per rule family: [`terminal`] (terminal frames), [`bytes`]
//! (byte equality), [`usage`] (token counts in `job_done`; [`sse`] reads the
//! SSE events they count, [`body`] keeps what the rules read of a body),
//! [`model`] (the backend is asked for the routed `model_id`), [`outcome`]
//! (`job_done` needs a completed stream; `tokens_emitted`), [`capacity`]
//! (slots and streams), [`cancel`], [`purge`] (nothing queued of a
//! cancelled job is sent), [`deadline`], [`codes`] (every `job_error`'s
//! code tells the truth), [`heartbeat`] (schedule, `queue_depth`),
//! [`figures`] (the other heartbeat figures; `duration_ms`),
//! [`quiescence`] (settling, in-flight, memory), [`inbound`] (reading while
//! writing is blocked), [`liveness`] (reconnecting, within the bound
//! [`backoff`] derives), [`pacing`] (connections spaced by the backoff),
//! [`stall`] (a blocked write ends the session), [`unusable`] (a broken
//! frame never ends the session), [`session_end`] (a dead session's jobs end with
//! it; no submission runs twice), [`hosts`] (crashes, the coordinator's own
//! flags, complete records); [`windows`] computes the disruption windows
//! several rules exempt.
//!
//! Every rule counts what it judged and what it excused, by reason
//! ([`Tally`]); the reports print them per rule.
//!
//! ## Outside observation and agent events
//!
//! To judge an agent binary with no observer (live mode), every rule must
//! stand on what the coordinator logged and the backends recorded. Where a
//! rule also reads the agent's observer events, it has an external
//! formulation beside it, and `records_complete` fails a run whose observer
//! emitted none of the events a rule needs:
//!
//! | rule | external (coordinator log, backend records) | agent events |
//! |---|---|---|
//! | `exactly_one_terminal`, `never_two_terminals`, `no_chunk_after_terminal`, `bytes_match_backend`, `usage_matches_backend`, `backend_model_is_routed`, `done_requires_completed_stream`, `tokens_emitted_matches_backend`, `backend_streams_within_limit`¹, `cancel_closes_stream`, `cancel_purges_queued_frames`, `deadline_enforced`, `error_code_truthful`, `heartbeat_schedule`, `heartbeat_queue_depth`, `heartbeat_figures_truthful`, `done_duration_truthful`, `settles_within_bound`, `reconnects_after_disruption`, `reconnects_paced_by_backoff`, `blocked_write_ends_session`, `unusable_frame_keeps_session`, `never_run_twice`, `hosts_stay_up`, `coordinator_protocol` | all | — |
//! | `out_of_capacity_truthful` | `out_of_capacity` frames against the submissions that may hold a slot | slot accounting (`JobAdmitted`, `SlotFreed`, `JobRejected`) |
//! | `session_end_closes_streams` | streams of submissions lost with their session, from the moment the agent can have noticed | `SessionEnded`: every job admitted on the session |
//! | `in_flight_zero_at_quiescence` | no backend stream open once settled | the last slot count |
//! | `inbound_while_outbound_blocked` | — (a decision while the coordinator is not reading shows only in the agent) | `JobAdmitted`/`JobRejected` |
//! | `outbound_queue_bounded` | — (the agent's queue is inside it) | `OutboundQueued` |
//! | `records_complete` | records dropped at a bound | the observer emitted the events the rules above need |
//!
//! ¹ reads `SlotFreed` only to credit a backend that notices a released
//! stream late; without it the bound is the backend's own close.
//!
//! In live mode the agent-only rules and `records_complete` are reported as
//! not judged (`live::NOT_JUDGED_LIVE`), `out_of_capacity_truthful` runs
//! its external half alone ([`capacity::OUT_OF_CAPACITY_TRUTHFUL_EXTERNAL`],
//! through [`judge_view_with`]), and `agent_memory_bounded` samples the
//! agent process's resident set in place of `outbound_queue_bounded`.

pub mod backoff;
pub mod body;
pub mod bytes;
pub mod cancel;
pub mod capacity;
pub mod codes;
pub mod deadline;
pub mod figures;
pub mod heartbeat;
pub mod hosts;
pub mod inbound;
pub mod liveness;
pub mod model;
pub mod outcome;
pub mod pacing;
pub mod purge;
pub mod quiescence;
pub mod session_end;
pub mod sse;
pub mod stall;
pub mod terminal;
pub mod unusable;
pub mod usage;
pub mod windows;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::trace::{Trace, TraceView};

/// Bounds the rules allow, in simulated milliseconds (or bytes).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bounds {
    /// After a `job_cancel` is sent: the backend stream is closed, and no
    /// frame of the job arrives, within this long.
    pub cancel_close_ms: u64,
    /// A job ends within its `deadline_ms` plus this long.
    pub deadline_slack_ms: u64,
    /// Heartbeats arrive every `heartbeat_interval_ms`, give or take this.
    pub heartbeat_tolerance_ms: u64,
    /// After a disruption heals, a session reaches steady state within this.
    pub reconnect_within_ms: u64,
    /// A job frame the agent received is admitted or rejected within this,
    /// even while the coordinator is not reading.
    pub inbound_decision_ms: u64,
    /// Queued outbound bytes may exceed `outbound_queue_bytes_max` by at
    /// most this (one frame being handed over).
    pub outbound_slack_bytes: u64,
}

/// What the rules need to know about the run besides its trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OracleConfig {
    /// The agent's `limits.max_concurrent`.
    pub max_concurrent: u64,
    /// The agent's `session.heartbeat_interval_ms`.
    pub heartbeat_interval_ms: u64,
    /// The agent's `session.outbound_queue_bytes_max`.
    pub outbound_queue_bytes_max: u64,
    /// The network's worst one-way latency.
    pub latency_max_ms: u64,
    /// The agent's `session.idle_timeout_ms`: a session cut off is noticed
    /// by then.
    pub idle_timeout_ms: u64,
    /// The agent's reconnect schedule, from which the reconnection bound of
    /// each disruption is derived; `None` when the scenario sets a flat
    /// `reconnect_within_ms`.
    pub reconnect: Option<backoff::ReconnectSchedule>,
    /// The agent's write timeout and when a stopped reader surely blocks
    /// its writes; `None` where unknown (nothing to judge).
    pub write_stall: Option<stall::WriteStall>,
    /// The allowed slack of each bound.
    pub bounds: Bounds,
}

impl OracleConfig {
    /// Small, round limits for hand-made traces (the oracle's own tests):
    /// 2 slots, heartbeats every second, 100 ms bounds.
    pub fn for_handmade_traces() -> OracleConfig {
        OracleConfig {
            max_concurrent: 2,
            heartbeat_interval_ms: 1_000,
            outbound_queue_bytes_max: 1_000,
            latency_max_ms: 5,
            idle_timeout_ms: 2_000,
            reconnect: None,
            write_stall: Some(stall::WriteStall {
                write_timeout_ms: 1_000,
                blocked_within_ms: 1_000,
            }),
            bounds: Bounds {
                cancel_close_ms: 100,
                deadline_slack_ms: 100,
                heartbeat_tolerance_ms: 100,
                reconnect_within_ms: 5_000,
                inbound_decision_ms: 100,
                outbound_slack_bytes: 10,
            },
        }
    }
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The rule's name (see [`RULES`]).
    pub rule: &'static str,
    /// The job concerned, when there is one.
    pub job: Option<String>,
    /// Simulated time of the offending event (or of the missed bound).
    pub at_us: u64,
    /// What happened, in one sentence.
    pub detail: String,
}

impl Violation {
    /// A violation of `rule` at `at_us`.
    pub fn new(rule: &'static str, job: Option<&str>, at_us: u64, detail: impl Into<String>) -> Self {
        Self {
            rule,
            job: job.map(str::to_owned),
            at_us,
            detail: detail.into(),
        }
    }
}

/// What one rule judged on one run: the items (submissions, heartbeats,
/// sessions, disruptions…) it held to its demand, and the items it looked
/// at but excused, counted by the reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Items judged.
    pub judged: u64,
    /// Items excused, by reason (a short phrase).
    pub excused: BTreeMap<&'static str, u64>,
}

impl Tally {
    /// One more item judged.
    pub fn judge(&mut self) {
        self.judged += 1;
    }

    /// `count` more items judged.
    pub fn judge_n(&mut self, count: u64) {
        self.judged += count;
    }

    /// One more item excused, for `why`.
    pub fn excuse(&mut self, why: &'static str) {
        *self.excused.entry(why).or_default() += 1;
    }

    /// Items excused, all reasons together.
    pub fn excused_total(&self) -> u64 {
        self.excused.values().sum()
    }
}

/// A rule's check function: it returns the violations it found and counts
/// in `tally` what it judged and what it excused.
pub type Check = fn(&TraceView, &OracleConfig, &mut Tally) -> Vec<Violation>;

/// A named rule.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// Stable name used in reports and in `[expect] skip_rules`.
    pub name: &'static str,
    /// What the rule demands, in one sentence.
    pub summary: &'static str,
    /// The check.
    pub check: Check,
}

/// Every rule, in report order.
pub const RULES: &[Rule] = &[
    terminal::EXACTLY_ONE,
    terminal::NEVER_TWO,
    terminal::NO_FRAME_AFTER,
    bytes::MATCH_BACKEND,
    usage::MATCHES_BACKEND,
    model::ROUTED_MODEL,
    outcome::DONE_REQUIRES_COMPLETED,
    outcome::TOKENS_EMITTED,
    capacity::OUT_OF_CAPACITY_TRUTHFUL,
    capacity::STREAMS_WITHIN_LIMIT,
    cancel::CLOSES_STREAM,
    purge::PURGES_QUEUED,
    deadline::ENFORCED,
    codes::TRUTHFUL,
    heartbeat::SCHEDULE,
    heartbeat::QUEUE_DEPTH,
    figures::FIGURES,
    figures::DURATION,
    quiescence::IN_FLIGHT_ZERO,
    quiescence::SETTLES,
    quiescence::OUTBOUND_BOUNDED,
    inbound::WHILE_OUTBOUND_BLOCKED,
    liveness::RECONNECTS,
    pacing::PACED,
    stall::ENDS_SESSION,
    unusable::KEEPS_SESSION,
    session_end::CLOSES_STREAMS,
    session_end::NEVER_RUN_TWICE,
    hosts::STAY_UP,
    hosts::COORDINATOR_PROTOCOL,
    hosts::RECORDS_COMPLETE,
];

/// The rule named `name`, if there is one.
pub fn rule_named(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.name == name)
}

/// What one rule that ran judged, excused and found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleTally {
    pub rule: &'static str,
    pub judged: u64,
    /// Items excused, by reason.
    pub excused: BTreeMap<&'static str, u64>,
    pub violations: u64,
}

impl RuleTally {
    /// Whether the rule had nothing to judge on this run.
    pub fn nothing_to_judge(&self) -> bool {
        self.judged == 0
    }
}

/// The oracle's verdict on one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Verdict {
    /// Rules that ran.
    pub checked: Vec<&'static str>,
    /// Rules the scenario opted out of.
    pub skipped: Vec<&'static str>,
    /// Live runs: rules that read the agent's own events, so cannot judge
    /// an external agent; neither passed nor failed (`live::NOT_JUDGED_LIVE`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_judged: Vec<&'static str>,
    /// Every violation, by rule order then time.
    pub violations: Vec<Violation>,
    /// Per rule that ran, in rule order: what it judged and excused.
    pub tallies: Vec<RuleTally>,
}

/// Runs every rule not named in `skip` over `trace`.
pub fn judge(trace: &Trace, config: &OracleConfig, skip: &BTreeSet<String>) -> Verdict {
    judge_view(&TraceView::build(&trace.events), config, skip)
}

/// [`judge`] on an already indexed trace.
pub fn judge_view(view: &TraceView, config: &OracleConfig, skip: &BTreeSet<String>) -> Verdict {
    judge_view_with(RULES, view, config, skip)
}

/// [`judge_view`] with another rule list (live mode swaps in the external
/// formulation of some rules and leaves out the ones it cannot judge).
pub fn judge_view_with(rules: &[Rule], view: &TraceView, config: &OracleConfig, skip: &BTreeSet<String>) -> Verdict {
    let mut verdict = Verdict::default();
    for rule in rules {
        if skip.contains(rule.name) {
            verdict.skipped.push(rule.name);
            continue;
        }
        verdict.checked.push(rule.name);
        let mut tally = Tally::default();
        let mut found = (rule.check)(view, config, &mut tally);
        found.sort_by_key(|v| v.at_us);
        verdict.tallies.push(RuleTally {
            rule: rule.name,
            judged: tally.judged,
            excused: tally.excused,
            violations: found.len() as u64,
        });
        verdict.violations.extend(found);
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No two oracle rules share a name.
    #[test]
    fn rule_names_are_unique() {
        let names: BTreeSet<_> = RULES.iter().map(|r| r.name).collect();
        assert_eq!(names.len(), RULES.len());
    }

    /// A skipped rule is listed as skipped and does not run.
    #[test]
    fn skipped_rules_do_not_run() {
        let skip: BTreeSet<String> = ["hosts_stay_up".to_owned()].into();
        let verdict = judge(&Trace::default(), &OracleConfig::for_handmade_traces(), &skip);
        assert_eq!(verdict.skipped, vec!["hosts_stay_up"]);
        assert!(!verdict.checked.contains(&"hosts_stay_up"));
    }
}
