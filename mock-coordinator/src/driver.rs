//! The job driver: one task per coordinator instance that carries out the
//! script in simulated time.
//!
//! It walks the precomputed timeline (open-loop jobs, malformed frames,
//! unknown types, `at` cancels, disconnects), keeps closed loops topped up,
//! and runs the actions that are relative to a job's send time (duplicates,
//! fraction cancels). Its position in the timeline lives in the [`Log`], so a
//! restarted coordinator continues rather than repeats the schedule;
//! relative actions pending at a crash are lost with it.
//!
//! [`Log`]: crate::Log

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use tokio::sync::Notify;

use crate::clock::{Clock, ms_to_us, sleep_until_us};
use crate::coordinator::Coordinator;
use crate::plan::Action;
use crate::script::ArrivalKind;

/// An action relative to a job's send time, waiting in the driver.
/// (Re-sends wait in the log instead: see `crate::resend`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relative {
    /// Cancel `jobs[record]` if it is still in flight.
    Cancel { record: usize },
}

/// Relative actions by `(due_us, sequence)`; the sequence keeps insertion
/// order among actions due at the same time.
#[derive(Default)]
pub(crate) struct Pending {
    queue: BTreeMap<(u64, u64), Relative>,
    next_seq: u64,
}

impl Pending {
    pub(crate) fn push(&mut self, due_us: u64, action: Relative) {
        self.queue.insert((due_us, self.next_seq), action);
        self.next_seq += 1;
    }

    fn pop_due(&mut self, now_us: u64) -> Option<Relative> {
        let (&key, _) = self.queue.first_key_value()?;
        (key.0 <= now_us).then(|| self.queue.remove(&key)).flatten()
    }

    fn next_due_us(&self) -> Option<u64> {
        self.queue.first_key_value().map(|((due, _), _)| *due)
    }
}

/// The jobs each closed loop has in flight, by `arrivals` index. Kept in
/// the driver so topping up costs O(outstanding), not O(all jobs); rebuilt
/// from the log when a (restarted) driver starts.
struct ClosedLoops {
    open: BTreeMap<usize, Vec<usize>>,
}

impl ClosedLoops {
    fn from_log(coord: &Coordinator) -> ClosedLoops {
        let open = coord.log().with(|s| {
            let mut open: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for job in s.jobs.iter().filter(|j| j.is_open() && !j.cancel_queued) {
                let closed = job.rule.and_then(|r| coord.script().arrivals.get(r));
                if let (Some(rule), Some(a)) = (job.rule, closed)
                    && a.kind == ArrivalKind::ClosedLoop
                {
                    open.entry(rule).or_default().push(job.index);
                }
            }
            open
        });
        ClosedLoops { open }
    }

    /// Drops jobs that left the loop and returns how many are still in it.
    fn in_flight(&mut self, coord: &Coordinator, rule: usize) -> u64 {
        let list = self.open.entry(rule).or_default();
        coord
            .log()
            .with(|s| list.retain(|&i| s.jobs.get(i).is_some_and(|j| j.is_open() && !j.cancel_queued)));
        list.len() as u64
    }
}

/// Runs the script to its end, then reports through `driver_done`. Holds
/// the coordinator only while acting, so the task ends with it.
pub(crate) async fn run(coord: Weak<Coordinator>, wake: Arc<Notify>) {
    let mut pending = Pending::default();
    let Some(first) = coord.upgrade() else { return };
    let mut loops = ClosedLoops::from_log(&first);
    let clock = first.clock().clone();
    drop(first);
    loop {
        let Some(coord) = coord.upgrade() else { return };
        let now_us = coord.now_us();
        run_timeline(&coord, now_us, &mut pending);
        while let Some(action) = pending.pop_due(now_us) {
            match action {
                Relative::Cancel { record } => coord.cancel_if_open(record),
            }
        }
        // One at a time: sending one may schedule another (a held re-send
        // comes back with a later due time, so this ends).
        while let Some(due) = coord.log().with(|s| s.resends.pop_due(now_us)) {
            coord.send_duplicate(due, now_us);
        }
        let closed_wake_us = top_up_closed_loops(&coord, now_us, &mut pending, &mut loops);
        let timeline_wake_us = next_timeline_us(&coord);
        let resend_wake_us = coord.log().with(|s| s.resends.next_due_us());
        let wake_us = [timeline_wake_us, pending.next_due_us(), closed_wake_us, resend_wake_us]
            .into_iter()
            .flatten()
            .min();
        if timeline_wake_us.is_none()
            && pending.next_due_us().is_none()
            && resend_wake_us.is_none()
            && closed_loops_done(&coord, now_us)
            && !coord.resends_may_fire(now_us)
        {
            coord.mark_driver_done();
            return;
        }
        drop(coord);
        tokio::select! {
            biased;
            () = wake.notified() => {}
            () = sleep_until_opt(&clock, wake_us) => {}
        }
    }
}

async fn sleep_until_opt(clock: &Clock, at_us: Option<u64>) {
    match at_us {
        Some(at_us) => sleep_until_us(clock, at_us).await,
        None => std::future::pending().await,
    }
}

/// Carries out every timeline entry due by `now_us`, advancing the cursor
/// in the log one entry at a time.
fn run_timeline(coord: &Coordinator, now_us: u64, pending: &mut Pending) {
    loop {
        let due = coord.log().with(|s| {
            let entry = coord.plan().timeline.get(s.progress.timeline_cursor).copied();
            let entry = entry.filter(|(at_us, _)| *at_us <= now_us);
            if entry.is_some() {
                s.progress.timeline_cursor += 1;
            }
            entry
        });
        let Some((at_us, action)) = due else { return };
        match action {
            Action::Job(i) => coord.issue_planned(i, at_us, pending),
            Action::Malformed(i) => coord.send_malformed(i, at_us),
            Action::UnknownType(i) => coord.send_unknown_type(i, at_us),
            Action::CancelAt(i) => coord.cancel_at(i, now_us),
            Action::Disconnect(i) => coord.disconnect(i, now_us),
        }
    }
}

fn next_timeline_us(coord: &Coordinator) -> Option<u64> {
    let cursor = coord.log().with(|s| s.progress.timeline_cursor);
    coord.plan().timeline.get(cursor).map(|(at_us, _)| *at_us)
}

/// Issues closed-loop jobs until each loop has `outstanding` in flight.
/// Returns when the driver must look again without being woken (a loop's
/// start or end time).
fn top_up_closed_loops(
    coord: &Coordinator,
    now_us: u64,
    pending: &mut Pending,
    loops: &mut ClosedLoops,
) -> Option<u64> {
    let mut wake_us: Option<u64> = None;
    for (rule, arrival) in coord.script().arrivals.iter().enumerate() {
        if arrival.kind != ArrivalKind::ClosedLoop {
            continue;
        }
        let start_us = ms_to_us(arrival.start_ms);
        let end_us = arrival.end_ms.map(ms_to_us);
        if now_us < start_us {
            wake_us = Some(wake_us.map_or(start_us, |w| w.min(start_us)));
            continue;
        }
        if end_us.is_some_and(|end| now_us >= end) || coord.newest_session().is_none() {
            continue;
        }
        if let Some(end) = end_us {
            wake_us = Some(wake_us.map_or(end, |w| w.min(end)));
        }
        let outstanding = u64::from(arrival.outstanding.unwrap_or(1));
        let count = arrival.count.unwrap_or(u64::MAX);
        loop {
            let issued = coord
                .log()
                .with(|s| s.progress.closed_issued.get(&rule).copied().unwrap_or(0));
            if issued >= count || loops.in_flight(coord, rule) >= outstanding {
                break;
            }
            let Some(record) = coord.issue_closed(rule, now_us, pending) else {
                // Not delivered (no room in the queue): issuing more now
                // would only burn through `count`; retry on the next wake.
                break;
            };
            loops.open.entry(rule).or_default().push(record);
        }
    }
    wake_us
}

/// True when every closed loop has issued its `count` or passed `end_ms`.
fn closed_loops_done(coord: &Coordinator, now_us: u64) -> bool {
    coord.script().arrivals.iter().enumerate().all(|(rule, a)| {
        if a.kind != ArrivalKind::ClosedLoop {
            return true;
        }
        let ended = a.end_ms.is_some_and(|end| now_us >= ms_to_us(end));
        let issued = coord
            .log()
            .with(|s| s.progress.closed_issued.get(&rule).copied().unwrap_or(0));
        ended || a.count.is_some_and(|c| issued >= c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative actions come out in due order, insertion order on ties.
    #[test]
    fn pending_order() {
        let mut p = Pending::default();
        p.push(20, Relative::Cancel { record: 1 });
        p.push(10, Relative::Cancel { record: 2 });
        p.push(10, Relative::Cancel { record: 3 });
        assert_eq!(p.next_due_us(), Some(10));
        assert_eq!(p.pop_due(5), None);
        assert_eq!(p.pop_due(15), Some(Relative::Cancel { record: 2 }));
        assert_eq!(p.pop_due(15), Some(Relative::Cancel { record: 3 }));
        assert_eq!(p.pop_due(15), None);
        assert_eq!(p.pop_due(25), Some(Relative::Cancel { record: 1 }));
    }
}
