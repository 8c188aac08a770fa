//! Capacity: `out_of_capacity` only when every slot is taken, and never more
//! backend streams open at once than `max_concurrent`.

use super::windows::AGENT_HOST;
use super::{OracleConfig, Rule, Tally, Violation};
use std::collections::BTreeMap;

use crate::trace::{BackendCall, EventKind, FaultAction, JobSend, TraceView};

/// `out_of_capacity` tells the truth.
pub const OUT_OF_CAPACITY_TRUTHFUL: Rule = Rule {
    name: "out_of_capacity_truthful",
    summary: "no out_of_capacity while fewer than max_concurrent jobs were executing, and the agent's slot count adds up",
    check: out_of_capacity_truthful,
};

/// `out_of_capacity_truthful` judged from outside alone: each
/// `out_of_capacity` answer against the submissions the coordinator had in
/// flight when it wrote the job (see `rejections_seen_from_outside`). Live
/// mode runs it, under the same name, in place of the whole rule, whose
/// other halves count the agent's own admission events (an external agent
/// has none, so they would call every `out_of_capacity` frame unfounded).
pub const OUT_OF_CAPACITY_TRUTHFUL_EXTERNAL: Rule = Rule {
    name: OUT_OF_CAPACITY_TRUTHFUL.name,
    summary: "no out_of_capacity unless the coordinator had max_concurrent other jobs in flight on the session when it wrote the job (judged from the coordinator's log alone)",
    check: rejections_seen_from_outside,
};

/// Backend streams stay within `max_concurrent`.
pub const STREAMS_WITHIN_LIMIT: Rule = Rule {
    name: "backend_streams_within_limit",
    summary: "concurrent backend streams never exceed max_concurrent",
    check: streams_within_limit,
};

/// Times the agent's software was crashed (its slots all vanish then).
fn agent_crashes(view: &TraceView) -> Vec<u64> {
    view.faults
        .iter()
        .filter(|(_, action, hosts)| *action == FaultAction::Crash && hosts.iter().any(|h| h == AGENT_HOST))
        .map(|(at, _, _)| *at)
        .collect()
}

fn out_of_capacity_truthful(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let rule = OUT_OF_CAPACITY_TRUTHFUL.name;
    let crashes = agent_crashes(view);
    let mut found = Vec::new();
    let (mut taken, mut last_us) = (0_u64, 0_u64);
    for event in &view.agent_events {
        if crashes.iter().any(|&c| c > last_us && c <= event.at_us) {
            taken = 0;
        }
        last_us = event.at_us;
        let (job, reported) = match &event.kind {
            EventKind::AgentJobAdmitted { job, in_flight, .. } => {
                taken += 1;
                (job, *in_flight)
            }
            EventKind::AgentSlotFreed { job, in_flight, .. } => {
                taken = taken.saturating_sub(1);
                (job, *in_flight)
            }
            EventKind::AgentJobRejected {
                job, code, in_flight, ..
            } => {
                if &**code == "out_of_capacity" {
                    tally.judge();
                }
                if &**code == "out_of_capacity" && taken < config.max_concurrent {
                    let detail = format!(
                        "rejected out_of_capacity while only {taken} of {} slots were taken",
                        config.max_concurrent
                    );
                    found.push(Violation::new(rule, Some(job), event.at_us, detail));
                }
                (job, *in_flight)
            }
            _ => continue,
        };
        if reported != taken {
            let detail = format!("agent reports in_flight {reported}, but admissions minus releases is {taken}");
            found.push(Violation::new(rule, Some(job), event.at_us, detail));
        }
    }
    found.extend(unexplained_rejections(view));
    found.extend(rejections_seen_from_outside(view, config, tally));
    found
}

/// From the coordinator's log alone: an `out_of_capacity` answer to a
/// submission needs `max_concurrent` others on its connection that may
/// have held a slot when the agent read it — written before it, run (not
/// answered at admission), and neither answered, cancelled nor superseded
/// before it was written (frames of one connection arrive in order, so the
/// agent had read those before reading it).
fn rejections_seen_from_outside(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let is_rejection = |send: &JobSend| {
        send.first_terminal()
            .is_some_and(|t| t.what.error_code() == Some("out_of_capacity"))
    };
    let mut by_conn: BTreeMap<u64, Vec<&JobSend>> = BTreeMap::new();
    for (_, send) in view.sends() {
        by_conn.entry(send.conn).or_default().push(send);
    }
    let mut holders_at: BTreeMap<(u64, usize), u64> = BTreeMap::new();
    for (conn, mut sends) in by_conn {
        sends.sort_by_key(|send| send.seq);
        let rejections: Vec<&JobSend> = sends.iter().copied().filter(|s| is_rejection(s)).collect();
        for (rejection, holders) in rejections.iter().zip(holders_of(&sends, &rejections)) {
            holders_at.insert((conn, rejection.seq), holders);
        }
    }
    let mut found = Vec::new();
    for (job, send) in view.sends() {
        let Some(first) = send.first_terminal().filter(|_| is_rejection(send)) else {
            continue;
        };
        tally.judge();
        let holders = holders_at.get(&(send.conn, send.seq)).copied().unwrap_or_default();
        if holders < config.max_concurrent {
            let detail = format!(
                "{}: out_of_capacity, but at most {holders} of {} slots can have been held when it arrived",
                send.label(),
                config.max_concurrent
            );
            found.push(Violation::new(
                OUT_OF_CAPACITY_TRUTHFUL.name,
                Some(&*job.job),
                first.at_us,
                detail,
            ));
        }
    }
    found
}

/// Whether `other` may still have held a slot when the agent read
/// `send` (both on one connection).
fn may_hold_at(other: &JobSend, send: &JobSend) -> bool {
    let answered = other.first_terminal().is_some_and(|t| t.seq < send.seq);
    let cancelled = other.cancel_us.is_some_and(|c| c < send.at_us);
    let superseded = other.superseded_us.is_some_and(|s| s < send.at_us);
    other.seq < send.seq && other.may_have_run() && !answered && !cancelled && !superseded
}

/// For each of `rejections` (sorted by `seq`), how many of `sends` (one
/// connection's submissions, sorted by `seq`) may have held a slot when it
/// was read. Each submission holds from its write until its answer, cancel
/// or supersession, so it counts for a run of consecutive rejections: one
/// pass with a difference array, O(n log n), rather than every rejection
/// scanning every submission. That needs the rejections' times to grow with
/// their trace order, as in every merged trace; a hand-made trace that is
/// out of order gets the direct count.
fn holders_of(sends: &[&JobSend], rejections: &[&JobSend]) -> Vec<u64> {
    if rejections.windows(2).any(|w| w[1].at_us < w[0].at_us) {
        let count = |r: &JobSend| sends.iter().filter(|o| may_hold_at(o, r)).count() as u64;
        return rejections.iter().map(|r| count(r)).collect();
    }
    // The first rejection read after `seq` / after `at_us`.
    let after_seq = |seq: usize| rejections.partition_point(|r| r.seq <= seq);
    let after_us = |us: u64| rejections.partition_point(|r| r.at_us <= us);
    let mut delta = vec![0_i64; rejections.len() + 1];
    for other in sends.iter().filter(|o| o.may_have_run()) {
        let from = after_seq(other.seq);
        let until = [
            other.first_terminal().map(|t| after_seq(t.seq)),
            other.cancel_us.map(after_us),
            other.superseded_us.map(after_us),
        ]
        .into_iter()
        .flatten()
        .fold(rejections.len(), usize::min);
        if from < until {
            delta[from] += 1;
            delta[until] -= 1;
        }
    }
    let mut open = 0_i64;
    delta[..rejections.len()]
        .iter()
        .map(|d| {
            open += d;
            u64::try_from(open).unwrap_or(0)
        })
        .collect()
}

/// `out_of_capacity` frames the coordinator read without the agent having
/// decided so at admission (the decision must go through slot accounting):
/// per id, no more such frames than such decisions.
fn unexplained_rejections(view: &TraceView) -> Vec<Violation> {
    let mut found = Vec::new();
    for job in view.jobs.values() {
        let decided = usize::try_from(job.agent_out_of_capacity).unwrap_or(usize::MAX);
        // Counted in one pass without collecting them (most jobs of a run
        // over capacity have one): the first frame beyond the decisions is
        // where the claim stops being explained.
        let (mut claimed, mut unexplained_us) = (0, None);
        let frames = job
            .sends
            .iter()
            .flat_map(|send| &send.terminals)
            .chain(&job.stray_terminals);
        for t in frames.filter(|t| t.what.error_code() == Some("out_of_capacity")) {
            if claimed == decided {
                unexplained_us = Some(t.at_us);
            }
            claimed += 1;
        }
        if let Some(at_us) = unexplained_us {
            let detail =
                format!("{claimed} out_of_capacity frame(s) but {decided} out_of_capacity admission decision(s)");
            found.push(Violation::new(
                OUT_OF_CAPACITY_TRUTHFUL.name,
                Some(&*job.job),
                at_us,
                detail,
            ));
        }
    }
    found
}

/// When a stream stopped counting against the limit. A backend notices a
/// client that went away only at its next write, so when the agent released
/// the slot (or crashed) and the backend confirmed the close within the
/// cancel bound, the stream counts as closed at the release.
fn closed_at(call: &BackendCall, view: &TraceView, crashes: &[u64], config: &OracleConfig) -> u64 {
    let Some(end_us) = call.end_us else { return u64::MAX };
    let grace_us = config.bounds.cancel_close_ms * 1_000;
    // The releases of its id, in time order: the first at or after its
    // start is the earliest candidate (a lookup, not a scan of the trace).
    let freed = call
        .job
        .as_deref()
        .and_then(|job| view.agent_freed_by_job.get(job))
        .map(Vec::as_slice)
        .unwrap_or_default();
    let first_freed = freed.get(freed.partition_point(|&t| t < call.start_us)).copied();
    let released = first_freed
        .into_iter()
        .chain(crashes.iter().copied())
        .filter(|&t| t >= call.start_us && t <= end_us)
        .min();
    match released {
        Some(release_us) if call.end.as_deref() == Some("client_gone") && end_us <= release_us + grace_us => release_us,
        _ => end_us,
    }
}

fn streams_within_limit(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let crashes = agent_crashes(view);
    tally.judge_n(view.backend_calls.iter().filter(|c| c.is_execution()).count() as u64);
    // (time, +1 start / -1 end, job); ends sort before starts at one instant.
    let mut edges: Vec<(u64, i8, Option<&str>)> = Vec::new();
    for call in view.backend_calls.iter().filter(|c| c.is_execution()) {
        edges.push((call.start_us, 1, call.job.as_deref()));
        edges.push((closed_at(call, view, &crashes, config), -1, call.job.as_deref()));
    }
    edges.sort_by_key(|&(at, delta, _)| (at, delta));
    let mut found = Vec::new();
    let mut open = 0_i64;
    for (at, delta, job) in edges {
        open += i64::from(delta);
        if delta > 0 && open > config.max_concurrent as i64 {
            let detail = format!(
                "{open} backend streams open at once, max_concurrent is {}",
                config.max_concurrent
            );
            found.push(Violation::new(STREAMS_WITHIN_LIMIT.name, job, at, detail));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Seen, Terminal};

    fn send(seq: usize, at_us: u64, answered_seq: Option<usize>, cancel_us: Option<u64>) -> JobSend {
        let terminals = answered_seq
            .map(|seq| Seen {
                at_us: seq as u64,
                seq,
                conn: 1,
                what: Terminal::Done {
                    tokens_in: 0,
                    tokens_out: 0,
                    duration_ms: 0,
                },
            })
            .into_iter()
            .collect();
        JobSend {
            seq,
            at_us,
            conn: 1,
            terminals,
            cancel_us,
            ..JobSend::default()
        }
    }

    /// The one-pass count of slot holders equals the direct count, submission by submission.
    #[test]
    fn holders_sweep_equals_the_direct_count() {
        let sends = [
            send(0, 0, Some(9), None),
            send(1, 1, None, Some(3)),
            send(2, 2, Some(4), None),
            send(3, 3, None, None),
            send(5, 5, Some(6), None),
            send(7, 7, None, None),
            send(8, 7, None, Some(7)),
            send(10, 10, None, None),
        ];
        let all: Vec<&JobSend> = sends.iter().collect();
        let rejections: Vec<&JobSend> = [3, 5, 6, 7].iter().map(|&i| &sends[i]).collect();
        let direct: Vec<u64> = rejections
            .iter()
            .map(|r| all.iter().filter(|o| may_hold_at(o, r)).count() as u64)
            .collect();
        assert_eq!(holders_of(&all, &rejections), direct);
        assert_eq!(direct, vec![3, 2, 3, 2]);
    }
}
