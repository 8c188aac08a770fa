//! Heartbeats: one every `heartbeat_interval_ms` on every steady-state
//! session, and a `queue_depth` that matches what the coordinator can see of
//! the jobs executing at that moment.

use std::collections::BTreeMap;

use super::windows::{Windows, all_disruptions, link_disruptions};
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{JobKind, JobSend, Seen, SessionView, TraceView};

/// Heartbeats arrive on schedule.
pub const SCHEDULE: Rule = Rule {
    name: "heartbeat_schedule",
    summary: "heartbeats arrive every heartbeat_interval_ms (± heartbeat_tolerance_ms, stretched by read pauses)",
    check: schedule,
};

/// `queue_depth` is truthful.
pub const QUEUE_DEPTH: Rule = Rule {
    name: "heartbeat_queue_depth",
    summary: "heartbeat queue_depth lies between the jobs surely executing and the jobs possibly executing",
    check: queue_depth,
};

fn schedule(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let links = link_disruptions(view);
    let all = all_disruptions(view);
    let mut found = Vec::new();
    for session in view.sessions.values() {
        let Some(ready_us) = session.ready_us else {
            tally.excuse("session never reached steady state");
            continue;
        };
        tally.judge();
        check_session(view, session, ready_us, (&links, &all), config, &mut found);
    }
    found
}

fn check_session(
    view: &TraceView,
    session: &SessionView,
    ready_us: u64,
    (links, all): (&Windows, &Windows),
    config: &OracleConfig,
    found: &mut Vec<Violation>,
) {
    let interval_us = config.heartbeat_interval_ms * 1_000;
    let tolerance_us = config.bounds.heartbeat_tolerance_ms * 1_000;
    // After a cut link a connection stays wedged until it is closed: only
    // the time before the first cut is judged.
    let end_us = session.closed_us.unwrap_or(view.end_us);
    let judged_until = links
        .0
        .iter()
        .map(|&(from, _)| from)
        .filter(|&f| f >= ready_us && f <= end_us)
        .min()
        .unwrap_or(end_us);
    let rule = SCHEDULE.name;
    let mut previous_us = ready_us;
    for (index, beat) in session.heartbeats.iter().enumerate() {
        if beat.at_us > judged_until {
            return;
        }
        let gap_us = beat.at_us - previous_us;
        if gap_us > interval_us + tolerance_us + all.covered_us(previous_us, beat.at_us) {
            found.push(Violation::new(
                rule,
                None,
                beat.at_us,
                format!(
                    "no heartbeat for {:.1} ms on conn {} (allowed {:.1} ms: interval + tolerance)",
                    gap_us as f64 / 1e3,
                    session.conn,
                    (interval_us + tolerance_us) as f64 / 1e3
                ),
            ));
        }
        let quiet = !all.overlaps(previous_us.saturating_sub(interval_us), beat.at_us);
        if index > 0 && quiet && gap_us + tolerance_us < interval_us {
            found.push(Violation::new(
                rule,
                None,
                beat.at_us,
                format!(
                    "heartbeat only {:.1} ms after the previous one on conn {} (at least {:.1} ms: interval - tolerance)",
                    gap_us as f64 / 1e3,
                    session.conn,
                    interval_us.saturating_sub(tolerance_us) as f64 / 1e3
                ),
            ));
        }
        previous_us = beat.at_us;
    }
    let open_to_the_end = session.closed_us.is_none() && judged_until == end_us;
    if open_to_the_end && end_us - previous_us > interval_us + tolerance_us + all.covered_us(previous_us, end_us) {
        let detail = format!(
            "no heartbeat for the last {:.1} ms of conn {} (allowed {:.1} ms: interval + tolerance)",
            (end_us - previous_us) as f64 / 1e3,
            session.conn,
            (interval_us + tolerance_us) as f64 / 1e3
        );
        found.push(Violation::new(rule, None, end_us, detail));
    }
}

fn queue_depth(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    // One pass groups the submissions by connection (a scan of every send
    // per session made this sessions × sends).
    let mut sends_by_conn: BTreeMap<u64, Vec<&JobSend>> = BTreeMap::new();
    for (_, send) in view.sends() {
        if send.kind != JobKind::Malformed {
            sends_by_conn.entry(send.conn).or_default().push(send);
        }
    }
    let mut found = Vec::new();
    for session in view.sessions.values() {
        let beats = &session.heartbeats;
        tally.judge_n(beats.len() as u64);
        let sends = sends_by_conn.get(&session.conn).map_or(&[][..], Vec::as_slice);
        for (beat, (surely, possibly)) in beats.iter().zip(executing_counts(sends, beats)) {
            let possibly = possibly.min(config.max_concurrent);
            if beat.what < surely || beat.what > possibly {
                let detail = format!(
                    "queue_depth {} but between {surely} and {possibly} jobs were executing",
                    beat.what
                );
                found.push(Violation::new(QUEUE_DEPTH.name, None, beat.at_us, detail));
            }
        }
    }
    found
}

/// For each heartbeat, how many of `sends` were surely and possibly
/// executing. Each submission is surely (or possibly) executing over one
/// unbroken run of heartbeats, since both tests bound the heartbeat's
/// trace position and time from below and above; so each adds one to a
/// range of a difference array, and judging is linear in sends plus
/// heartbeats instead of their product. Heartbeats out of time order (never
/// seen: they are read in trace order) fall back to testing every pair.
fn executing_counts(sends: &[&JobSend], beats: &[Seen<u64>]) -> Vec<(u64, u64)> {
    let ordered = beats
        .windows(2)
        .all(|w| w[0].seq < w[1].seq && w[0].at_us <= w[1].at_us);
    if !ordered {
        return (beats.iter())
            .map(|beat| {
                let count = |test: fn(&JobSend, &Seen<u64>) -> bool| {
                    sends.iter().filter(|send| test(send, beat)).count() as u64
                };
                (count(surely_executing), count(possibly_executing))
            })
            .collect();
    }
    let after_seq = |seq: usize| beats.partition_point(|b| b.seq <= seq);
    let before_seq = |seq: usize| beats.partition_point(|b| b.seq < seq);
    let (mut surely, mut possibly) = (vec![0_i64; beats.len() + 1], vec![0_i64; beats.len() + 1]);
    let add = |counts: &mut [i64], from: usize, to: usize| {
        if from < to {
            counts[from] += 1;
            counts[to] -= 1;
        }
    };
    for send in sends {
        // possibly_executing: written before, not answered before (no
        // terminal earlier in the trace), not superseded before it was read.
        let answered = send.terminals.iter().map(|t| t.seq).min();
        let mut to = answered.map_or(beats.len(), after_seq);
        if let Some(superseded_us) = send.superseded_us {
            to = to.min(beats.partition_point(|b| b.at_us <= superseded_us));
        }
        add(&mut possibly, after_seq(send.seq), to);
        // surely_executing: a chunk before, the first terminal after, and
        // no cancel read by then.
        if let (Some(chunk), Some(terminal)) = (send.chunks.iter().map(|c| c.seq).min(), send.terminals.first()) {
            let mut to = before_seq(terminal.seq);
            if let Some(cancel_us) = send.cancel_us {
                to = to.min(beats.partition_point(|b| b.at_us < cancel_us));
            }
            add(&mut surely, after_seq(chunk), to);
        }
    }
    let running = |counts: Vec<i64>| {
        counts
            .into_iter()
            .take(beats.len())
            .scan(0_i64, |sum, d| {
                *sum += d;
                Some(u64::try_from(*sum).expect("a running count of ranges is never negative"))
            })
            .collect::<Vec<u64>>()
    };
    running(surely).into_iter().zip(running(possibly)).collect()
}

/// Written before the heartbeat, and neither answered nor superseded
/// before it was read. (A cancelled submission may still hold its slot
/// until the agent reads the cancel, so a cancel alone does not rule it out.)
fn possibly_executing(send: &JobSend, beat: &Seen<u64>) -> bool {
    let answered = send.terminals.iter().any(|t| t.seq < beat.seq);
    let superseded = send.superseded_us.is_some_and(|s| s < beat.at_us);
    send.seq < beat.seq && !answered && !superseded
}

/// A chunk of the submission came before the heartbeat and its terminal
/// after it (frames of one connection arrive in the order they were
/// written), and no cancel could have released the slot in between.
fn surely_executing(send: &JobSend, beat: &Seen<u64>) -> bool {
    let chunk_before = send.chunks.iter().any(|c| c.seq < beat.seq);
    let terminal_after = send.terminals.first().is_some_and(|t| t.seq > beat.seq);
    let cancelled = send.cancel_us.is_some_and(|c| c <= beat.at_us);
    chunk_before && terminal_after && !cancelled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Terminal;

    fn seen<T>(seq: usize, what: T) -> Seen<T> {
        Seen {
            at_us: seq as u64 * 10,
            seq,
            conn: 1,
            what,
        }
    }

    /// Submissions at scattered positions: some answered, cancelled,
    /// superseded, some with several terminals, chunks or none.
    fn sends() -> Vec<JobSend> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound) as usize
        };
        (0..300)
            .map(|_| {
                let seq = next(2_000) * 2 + 1;
                let chunks = (0..next(3)).map(|_| seen(seq + 1 + next(200) * 2, 0)).collect();
                let done = || Terminal::Done {
                    tokens_in: 0,
                    tokens_out: 0,
                    duration_ms: 0,
                };
                let terminals = (0..next(3)).map(|_| seen(seq + 1 + next(300) * 2, done())).collect();
                // A time on a beat's own microsecond or just after it.
                let mut at = |chance: u64| {
                    let (hit, n, off) = (next(chance) == 0, next(400), [0, 5][next(2)]);
                    hit.then_some((seq + n) as u64 * 10 + off)
                };
                let (cancel_us, superseded_us) = (at(4), at(5));
                JobSend {
                    seq,
                    at_us: seq as u64 * 10,
                    conn: 1,
                    chunks,
                    terminals,
                    cancel_us,
                    superseded_us,
                    ..JobSend::default()
                }
            })
            .collect()
    }

    #[test]
    fn range_counts_equal_testing_every_pair() {
        let sends = sends();
        let refs: Vec<&JobSend> = sends.iter().collect();
        let beats: Vec<Seen<u64>> = (0..700).map(|i| seen(i * 6, 0)).collect();
        let counts = executing_counts(&refs, &beats);
        for (beat, (surely, possibly)) in beats.iter().zip(counts) {
            let count = |test: fn(&JobSend, &Seen<u64>) -> bool| refs.iter().filter(|s| test(s, beat)).count() as u64;
            assert_eq!(
                (surely, possibly),
                (count(surely_executing), count(possibly_executing)),
                "at seq {}",
                beat.seq
            );
        }
    }
}
