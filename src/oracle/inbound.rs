//! Reading while writing is blocked: while the coordinator is not reading
//! (so the agent's outbound side backs up), the agent still reads and acts on
//! the frames the coordinator sends. Outside observation cannot see an
//! admission decision whose reply is stuck behind the blocked socket, so this
//! rule reads the agent's admission events.

use super::windows::link_disruptions;
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{JobKind, JobView, TraceView};

/// Inbound frames are processed while outbound is blocked.
pub const WHILE_OUTBOUND_BLOCKED: Rule = Rule {
    name: "inbound_while_outbound_blocked",
    summary: "a job sent while the coordinator is not reading is still admitted or rejected within inbound_decision_ms",
    check: while_outbound_blocked,
};

fn while_outbound_blocked(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let bound_us = config.bounds.inbound_decision_ms * 1_000;
    let links = link_disruptions(view);
    let mut found = Vec::new();
    for job in view.jobs.values() {
        let decided = decisions_by_send(job, bound_us);
        for (send, decided_us) in job.sends.iter().zip(decided) {
            if !matches!(send.kind, JobKind::Normal | JobKind::Duplicate) {
                continue;
            }
            let due_us = send.at_us + bound_us;
            let paused = view
                .read_pauses
                .iter()
                .any(|&(from, until)| send.at_us >= from && send.at_us < until);
            let alive = view
                .sessions
                .get(&send.conn)
                .is_none_or(|s| s.closed_us.is_none_or(|c| c > due_us));
            if !paused {
                continue;
            }
            if !alive || due_us > view.end_us || links.overlaps(send.at_us, due_us) {
                tally.excuse("session ended, run ended or link cut before the bound");
                continue;
            }
            tally.judge();
            if decided_us.is_none_or(|decided| decided > due_us) {
                let took = decided_us.map_or_else(
                    || "none came".to_owned(),
                    |decided| format!("it took {:.1} ms", decided.saturating_sub(send.at_us) as f64 / 1e3),
                );
                let detail = format!(
                    "{} sent while the coordinator was not reading; no admission decision within {} ms: {took}",
                    send.label(),
                    config.bounds.inbound_decision_ms
                );
                found.push(Violation::new(
                    WHILE_OUTBOUND_BLOCKED.name,
                    Some(&*job.job),
                    due_us,
                    detail,
                ));
            }
        }
    }
    found
}

/// The agent's admission decision for each submission of `job` (in the
/// order of `job.sends`). The agent decides once per `job` frame it reads
/// and names only the id, so decisions are matched to submissions: each
/// decision, in time order, goes to the oldest submission written before it
/// that has none yet and whose bound has not run out by then — earliest
/// deadline first, which matches as many submissions in time as any
/// matching can. A submission the agent never read (its connection died
/// first) is thus not given a later submission's decision. Then each
/// submission still without one takes the earliest decision left over at
/// or after its writing: a late decision, which breaks the bound as none
/// does, but lets the violation say how long it took.
fn decisions_by_send(job: &JobView, bound_us: u64) -> Vec<Option<u64>> {
    let mut decided: Vec<Option<u64>> = vec![None; job.sends.len()];
    let mut used = vec![false; job.agent_decisions_us.len()];
    for (decision, &at_us) in job.agent_decisions_us.iter().enumerate() {
        let next =
            job.sends.iter().enumerate().find(|(index, send)| {
                decided[*index].is_none() && send.at_us <= at_us && at_us <= send.at_us + bound_us
            });
        if let Some((index, _)) = next {
            decided[index] = Some(at_us);
            used[decision] = true;
        }
    }
    for (index, send) in job.sends.iter().enumerate() {
        if decided[index].is_some() {
            continue;
        }
        let late = (0..used.len()).find(|&d| !used[d] && job.agent_decisions_us[d] >= send.at_us);
        if let Some(d) = late {
            used[d] = true;
            decided[index] = Some(job.agent_decisions_us[d]);
        }
    }
    decided
}
