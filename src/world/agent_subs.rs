//! Which submission each of the agent's job events concerns, and why each
//! slot was freed. The agent names only a job id, but the coordinator may
//! write several submissions of one id (`#N`, its record index), and
//! violations, `simctl trace --job N` and the scenario's `job =` keys all
//! speak of submissions. So, after the trace is merged:
//!
//! - an admission decision (admitted or rejected) goes to the oldest
//!   submission of its id written at or before it that has no decision yet
//!   and whose connection was not lost before it (the agent decides once
//!   per `job` frame it reads, in the order they arrive; a frame that died
//!   with its connection was never read). This is how the oracle's
//!   `inbound` rule matches decisions too.
//! - a freed slot goes to the submission whose admission took it (the agent
//!   holds at most one slot per id), and its `why` is read from what the
//!   coordinator saw of that submission: its terminal frame (`completed`,
//!   `deadline`, `error:<code>`), or, for a job the agent says it stopped,
//!   a `job_cancel` written for it before the release (`cancelled`) or none
//!   (`session_end`).

use std::collections::{BTreeMap, VecDeque};

use crate::trace::{Event, EventKind, Interner, JobId, Terminal};

/// The code a deadline cut must carry.
const DEADLINE_CODE: &str = "backend_timeout";

/// What the coordinator saw of one submission.
#[derive(Debug, Default)]
struct SubFacts {
    sent_us: u64,
    deadline_ms: u64,
    lost_us: Option<u64>,
    first_cancel_us: Option<u64>,
    first_terminal: Option<Terminal>,
}

/// Fills `sub` on every agent job event and `why` on every freed slot.
pub fn attribute(events: &mut [Event]) {
    let facts = facts_of(events);
    // Per job id: submissions written and not yet decided, in write order.
    let mut waiting: BTreeMap<JobId, VecDeque<u64>> = BTreeMap::new();
    // Per job id: the submission holding the agent's slot.
    let mut holding: BTreeMap<JobId, u64> = BTreeMap::new();
    // The few distinct `why`s, one allocation each.
    let mut whys = Interner::default();
    for event in events.iter_mut() {
        let at_us = event.at_us;
        match &mut event.kind {
            EventKind::JobSent { job, sub, .. } => waiting.entry(job.clone()).or_default().push_back(*sub),
            EventKind::AgentJobAdmitted { job, sub, .. } => {
                *sub = decide(&mut waiting, &facts, job, at_us);
                if let Some(sub) = *sub {
                    holding.insert(job.clone(), sub);
                }
            }
            EventKind::AgentJobRejected { job, sub, .. } => *sub = decide(&mut waiting, &facts, job, at_us),
            EventKind::AgentSlotFreed {
                job,
                sub,
                cancelled,
                why,
                ..
            } => {
                *sub = holding.remove(&**job);
                *why = whys.intern(&freed_why(sub.and_then(|s| facts.get(&s)), *cancelled, at_us));
            }
            _ => {}
        }
    }
}

fn facts_of(events: &[Event]) -> BTreeMap<u64, SubFacts> {
    let mut facts: BTreeMap<u64, SubFacts> = BTreeMap::new();
    for event in events {
        match &event.kind {
            EventKind::JobSent { sub, deadline_ms, .. } => {
                let entry = facts.entry(*sub).or_default();
                entry.sent_us = event.at_us;
                entry.deadline_ms = *deadline_ms;
            }
            EventKind::JobSessionLost { sub, .. } => {
                facts.entry(*sub).or_default().lost_us.get_or_insert(event.at_us);
            }
            EventKind::CancelSent { subs, .. } => {
                for sub in subs {
                    facts
                        .entry(*sub)
                        .or_default()
                        .first_cancel_us
                        .get_or_insert(event.at_us);
                }
            }
            EventKind::TerminalReceived {
                sub: Some(sub),
                terminal,
                ..
            } => {
                let entry = facts.entry(*sub).or_default();
                if entry.first_terminal.is_none() {
                    entry.first_terminal = Some(terminal.clone());
                }
            }
            _ => {}
        }
    }
    facts
}

/// Takes the oldest waiting submission of `job` that the agent can have
/// read by `at_us`.
fn decide(
    waiting: &mut BTreeMap<JobId, VecDeque<u64>>,
    facts: &BTreeMap<u64, SubFacts>,
    job: &str,
    at_us: u64,
) -> Option<u64> {
    let queue = waiting.get_mut(job)?;
    let readable = |sub: &u64| {
        facts
            .get(sub)
            .is_none_or(|f| f.lost_us.is_none_or(|lost| lost >= at_us))
    };
    let position = queue.iter().position(readable)?;
    queue.remove(position)
}

fn freed_why(facts: Option<&SubFacts>, cancelled: bool, at_us: u64) -> String {
    let Some(facts) = facts else {
        return "unknown".to_owned();
    };
    if cancelled {
        let by_cancel = facts.first_cancel_us.is_some_and(|c| c <= at_us);
        return if by_cancel { "cancelled" } else { "session_end" }.to_owned();
    }
    match &facts.first_terminal {
        Some(Terminal::Done { .. }) => "completed".to_owned(),
        Some(Terminal::Error { code, .. }) => {
            let deadline_us = facts.sent_us + facts.deadline_ms * 1_000;
            if &**code == DEADLINE_CODE && at_us >= deadline_us {
                "deadline".to_owned()
            } else {
                format!("error:{code}")
            }
        }
        None => "finished_unread".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::handmade::TraceBuilder;

    fn freed(at_ms: u64, job: &str, cancelled: bool) -> Event {
        Event::new(
            at_ms * 1_000,
            EventKind::AgentSlotFreed {
                job: job.into(),
                sub: None,
                in_flight: 0,
                cancelled,
                why: "".into(),
            },
        )
    }

    fn subs_and_whys(events: &[Event]) -> Vec<(Option<u64>, Option<String>)> {
        events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::AgentJobAdmitted { sub, .. } | EventKind::AgentJobRejected { sub, .. } => Some((*sub, None)),
                EventKind::AgentSlotFreed { sub, why, .. } => Some((*sub, Some(why.to_string()))),
                _ => None,
            })
            .collect()
    }

    /// A re-sent id: the first submission is admitted and completes, the
    /// re-send is rejected; each agent event names its own submission.
    #[test]
    fn decisions_and_releases_name_their_submission() {
        let mut events = TraceBuilder::new()
            .session(0, 1)
            .job(10, "j", 1, 60_000)
            .admitted(12, "j", 1)
            .job(20, "j", 1, 60_000)
            .rejected(22, "j", "duplicate_job", 1)
            .done(30, "j", 1)
            .build()
            .events;
        events.push(freed(30, "j", false));
        attribute(&mut events);
        assert_eq!(
            subs_and_whys(&events),
            vec![(Some(0), None), (Some(1), None), (Some(0), Some("completed".into()))]
        );
    }

    /// A stopped job is `cancelled` when a cancel was written for it first,
    /// `session_end` otherwise; a `backend_timeout` at the deadline is
    /// `deadline`.
    #[test]
    fn why_a_slot_was_freed() {
        let mut events = TraceBuilder::new()
            .session(0, 1)
            .job(10, "a", 1, 60_000)
            .admitted(11, "a", 1)
            .cancel(20, "a", 1)
            .job(10, "b", 1, 60_000)
            .admitted(11, "b", 2)
            .job(10, "c", 1, 100)
            .admitted(11, "c", 3)
            .error(111, "c", 1, "backend_timeout")
            .build()
            .events;
        events.extend([freed(21, "a", true), freed(40, "b", true), freed(110, "c", false)]);
        events.sort_by_key(|e| e.at_us);
        attribute(&mut events);
        let whys: Vec<String> = subs_and_whys(&events).into_iter().filter_map(|(_, why)| why).collect();
        assert_eq!(whys, vec!["cancelled", "session_end", "deadline"]);
    }
}
