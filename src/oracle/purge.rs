//! Purging on cancel: frames of a cancelled job that are still queued in the
//! agent when the cancel reaches it are never sent.
//!
//! `cancel_closes_stream` cannot see a missing purge: it stretches its frame
//! bound by every read pause, and the queued frames of a job cancelled
//! during a pause arrive right after the pause, well inside that bound. This
//! rule bounds instead *how many bytes* of the job may still arrive once the
//! coordinator has read everything in flight.
//!
//! # The bound
//!
//! Once the agent has taken the cancel (at `P`), the job's bytes outside its
//! outbound queue can only be
//!
//! - in socket writes already made: each is one turmoil segment, delivered
//!   within the one-way latency (no partition or hold assumed), and
//! - in the WebSocket sink, not yet written: tungstenite's write buffer,
//!   which holds at most `WRITE_BUFFER_BYTES` plus the one frame that pushed
//!   it past that size (it writes as soon as it is over, and the writer
//!   hands it no frame while a write is blocked), and the one frame the
//!   writer's `SplitSink` holds until the buffer takes it.
//!
//! Take a time `T` at least `cancel_close_ms` after the cancel was written:
//! the rules' allowance for the cancel to cross the network and for frames
//! in flight to land (1 s plus two round trips by default), so every write
//! made before `P` has been delivered by `T`. Let `R` be the first instant at
//! or after `T` at which the coordinator reads the connection while not
//! holding back (outside every read pause and slow-read window). At `R` it
//! reads every byte delivered, in one step of the simulation, and anything
//! written later lands after `R`. So the job's frames read after `R` all
//! came from the sink: all but the two largest of them fit in
//! `WRITE_BUFFER_BYTES`. Frames still queued at `P` exceed that as soon as
//! the queue held more than one write buffer of the job, whatever the TCP
//! capacity; that needs a read pause long enough for the queue to fill and
//! to outlast the cancel by `cancel_close_ms`.
//!
//! Frames are measured by the base64 text of their data (4 bytes per 3,
//! rounded up), which every `job_chunk` frame contains, so the measure never
//! exceeds a frame's real size and the bound stays valid.
//!
//! Only submissions cancelled before any terminal frame and never lost with
//! their session are judged: a cancel that found the job already finished
//! (its `job_done` queued behind its chunks) purges nothing, and its frames
//! then rightly flow; that race always shows as a terminal frame.

use std::collections::BTreeMap;

use provider_agent::session::handshake::WRITE_BUFFER_BYTES;

use super::windows::{Windows, link_disruptions};
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{JobSend, TraceView};

/// A cancel leaves nothing queued of its job.
pub const PURGES_QUEUED: Rule = Rule {
    name: "cancel_purges_queued_frames",
    summary: "after a cancel, once the coordinator has read freely past cancel_close_ms, at most one socket write \
              of the job's frames arrives: frames still queued in the agent are purged, not sent",
    check: purges_queued,
};

fn purges_queued(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let margin_us = config.bounds.cancel_close_ms * 1_000;
    let links = link_disruptions(view);
    let held_back = Windows(view.read_pauses.clone());
    let reads = ReadTimes::of(view);
    let mut found = Vec::new();
    for (job, send) in view.sends() {
        let Some(cancel_us) = send.cancel_us else { continue };
        if !send.terminals.is_empty() {
            tally.excuse("answered before the cancel took effect");
            continue;
        }
        if send.session_lost_us.is_some() {
            tally.excuse("lost with its session");
            continue;
        }
        let Some(resume_us) = free_read_after(&held_back, &reads, send.conn, cancel_us + margin_us) else {
            tally.excuse("no free read after the cancel bound");
            continue;
        };
        // A partition, hold or crash may have kept earlier writes in flight
        // past `resume_us`, or cut the connection: nothing to judge.
        if links.overlaps(send.at_us, resume_us) {
            tally.excuse("coordinator link disrupted");
            continue;
        }
        tally.judge();
        if let Some(detail) = late_excess(send, resume_us) {
            found.push(Violation::new(PURGES_QUEUED.name, Some(&*job.job), resume_us, detail));
        }
    }
    found
}

/// The violation's detail when the frames read after `resume_us` exceed
/// one socket write, or `None`.
fn late_excess(send: &JobSend, resume_us: u64) -> Option<String> {
    let mut late: Vec<u64> = send
        .chunks
        .iter()
        .filter(|c| c.at_us > resume_us)
        .map(|c| base64_len(c.what))
        .collect();
    late.sort_unstable_by(|a, b| b.cmp(a));
    let beyond_two_largest: u64 = late.iter().skip(2).sum();
    (beyond_two_largest > WRITE_BUFFER_BYTES as u64).then(|| {
        format!(
            "{}: {} frames ({} bytes of base64) arrived after the coordinator had read everything in flight at \
             {:.3} s; all but the two largest ({beyond_two_largest} bytes) exceed one {WRITE_BUFFER_BYTES}-byte \
             socket write: frames still queued at the cancel were sent",
            send.label(),
            late.len(),
            late.iter().sum::<u64>(),
            resume_us as f64 / 1e6,
        )
    })
}

/// Length of the standard base64 text of `len` bytes.
fn base64_len(len: u64) -> u64 {
    len.div_ceil(3) * 4
}

/// The first instant at or after `from_us` at which the coordinator read a
/// frame on `conn` outside every window in which it held back reading (of
/// any connection, which only moves the instant later).
fn free_read_after(held_back: &Windows, reads: &ReadTimes, conn: u64, from_us: u64) -> Option<u64> {
    let mut from_us = from_us;
    loop {
        from_us = held_back.heal_after(from_us);
        let read_us = reads.first_at_or_after(conn, from_us)?;
        // A window that began by the read may have throttled it: start
        // again after that window.
        let throttled_until = held_back
            .0
            .iter()
            .filter(|&&(start, _)| start > from_us && start <= read_us)
            .map(|&(_, end)| end)
            .max();
        match throttled_until {
            Some(end) => from_us = end.max(from_us + 1),
            None => return Some(read_us),
        }
    }
}

/// When the coordinator read frames from each connection: chunks, terminal
/// frames (attributed or not), heartbeats and `capabilities`. Per
/// connection, the read times sorted and deduplicated once, then searched
/// by bisection (a chunk is one push here, not one tree insertion: at 1000
/// jobs/s there are 400 k of them).
#[derive(Debug, Default)]
struct ReadTimes(BTreeMap<u64, Vec<u64>>);

impl ReadTimes {
    fn of(view: &TraceView) -> Self {
        let mut reads = Self::default();
        for job in view.jobs.values() {
            for send in &job.sends {
                send.chunks.iter().for_each(|c| reads.add(c.conn, c.at_us));
                send.terminals.iter().for_each(|t| reads.add(t.conn, t.at_us));
            }
            job.stray_chunks.iter().for_each(|c| reads.add(c.conn, c.at_us));
            job.stray_terminals.iter().for_each(|t| reads.add(t.conn, t.at_us));
        }
        for session in view.sessions.values() {
            session.heartbeats.iter().for_each(|h| reads.add(h.conn, h.at_us));
            if let Some(ready_us) = session.ready_us {
                reads.add(session.conn, ready_us);
            }
        }
        for times in reads.0.values_mut() {
            times.sort_unstable();
            times.dedup();
        }
        reads
    }

    fn add(&mut self, conn: u64, at_us: u64) {
        self.0.entry(conn).or_default().push(at_us);
    }

    fn first_at_or_after(&self, conn: u64, from_us: u64) -> Option<u64> {
        let times = self.0.get(&conn)?;
        times.get(times.partition_point(|&t| t < from_us)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Base64 text is 4 bytes per 3 of data, rounded up.
    #[test]
    fn base64_length_rounds_up() {
        assert_eq!(
            (base64_len(0), base64_len(1), base64_len(3), base64_len(4)),
            (0, 4, 4, 8)
        );
    }

    /// The free read skips a pause holding the start and a slow window that began before the read.
    #[test]
    fn free_read_skips_every_window_in_the_way() {
        let mut reads = ReadTimes::default();
        for at in [5, 12, 25, 31] {
            reads.add(1, at);
        }
        let held_back = Windows(vec![(0, 10), (11, 30)]);
        assert_eq!(free_read_after(&held_back, &reads, 1, 3), Some(31));
        assert_eq!(free_read_after(&Windows::default(), &reads, 1, 3), Some(5));
        assert_eq!(free_read_after(&held_back, &reads, 2, 3), None);
    }
}
