//! The submissions of one `job_id` on one connection — the original and its
//! re-sends, in submission order: a *chain*. The agent's frames and the
//! coordinator's `job_cancel`s name only the id, so which submission each
//! one concerns follows from the order of events on the connection. The
//! rules (README, "Attribution") rest on two facts about a correct agent:
//!
//! - it reads the coordinator's frames in the order they were written, and
//!   an id is *live* there from admission until its terminal frame is
//!   queued or a cancel for it is processed;
//! - its frames for one id leave in order, so everything the job live
//!   before a re-send sends precedes everything the re-send causes, except
//!   a `duplicate_job` answer, which leaves as soon as the re-send is read.
//!
//! This module keeps the bookkeeping done when frames are *written*;
//! `inbound::attribution` applies it to frames read.

use crate::record::JobKind;
use crate::script::ResendAfter;
use crate::state::LogState;

impl LogState {
    /// Indexes of the submissions of `job_id` on `conn`, in submission order.
    pub(crate) fn chain(&self, conn: u64, job_id: &str) -> Vec<usize> {
        let Some(ids) = self.jobs_by_id.get(job_id) else {
            return Vec::new();
        };
        ids.iter()
            .copied()
            .filter(|&i| self.jobs.get(i).is_some_and(|j| j.conn == Some(conn)))
            .collect()
    }

    /// The earlier submissions of `jobs[index]`'s id on its connection.
    fn earlier_in_chain(&self, index: usize) -> Vec<usize> {
        let Some(job) = self.jobs.get(index) else {
            return Vec::new();
        };
        let Some(conn) = job.conn else {
            return Vec::new();
        };
        let mut chain = self.chain(conn, &job.job_id);
        chain.retain(|&i| i < index);
        chain
    }

    /// `jobs[index]` was completely written at `at_us`. For a re-send this
    /// settles what the agent must make of it (`id_was_free`), and it
    /// supersedes every earlier cancelled submission of its id that still
    /// lacks a terminal frame: the agent processed that cancel before it
    /// read this frame, and `resend_guard_ms` gave the cancelled job's last
    /// frames time to arrive, so nothing read from now on is theirs.
    pub(crate) fn job_written(&mut self, index: usize, at_us: u64) {
        let earlier = self.earlier_in_chain(index);
        let Some(job) = self.jobs.get_mut(index) else {
            return;
        };
        if job.sent_us.is_some() {
            return;
        }
        job.sent_us = Some(at_us);
        let resend = matches!(job.kind, JobKind::Duplicate { .. });
        let mut free = true;
        for &i in &earlier {
            let e = &mut self.jobs[i];
            // Never written (undeliverable, or lost with the queue): the
            // agent never saw it, so it cannot hold the id.
            let ended = !e.terminals.is_empty() || e.cancel_sent_us.is_some() || e.sent_us.is_none();
            free &= ended;
            if e.cancel_sent_us.is_some() && e.terminals.is_empty() && e.superseded_us.is_none() {
                e.superseded_us = Some(at_us);
                // Frames of the id now go to the later submission.
                e.bytes.seal();
            }
        }
        if resend {
            self.jobs[index].id_was_free = Some(free);
        }
    }

    /// A `job_cancel` for `jobs[index]`'s id was written at `at_us`. The
    /// agent applies it to whichever submission of the id it holds, which
    /// the coordinator cannot always tell (an earlier one may have ended
    /// while a re-send was on its way), so it is recorded on `jobs[index]`
    /// and on every submission of the chain still awaiting frames. Re-sends
    /// timed from a cancel of any of them become due.
    pub(crate) fn cancel_written(&mut self, index: usize, at_us: u64) {
        let mut targets = self.earlier_in_chain(index);
        targets.retain(|&i| self.jobs[i].awaits_frames());
        targets.push(index);
        // Later submissions awaiting frames were written before this cancel
        // too (one connection writes in order), so the agent may hold them.
        if let Some(job) = self.jobs.get(index)
            && let Some(conn) = job.conn
        {
            let later = self.chain(conn, &job.job_id);
            targets.extend(later.into_iter().filter(|&i| i > index && self.jobs[i].awaits_frames()));
        }
        for i in targets {
            let Some(job) = self.jobs.get_mut(i) else { continue };
            if i == index {
                job.cancel_in_queue = false;
            }
            if job.cancel_sent_us.is_none() {
                job.cancel_sent_us = Some(at_us);
                self.resends.fire(i, ResendAfter::Cancel, at_us);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::record::{JobKind, JobRecord, Terminal, TerminalRecord};
    use crate::state::LogState;

    const ID: &str = "11111111-2222-4333-8444-555555555555";

    fn push(s: &mut LogState, kind: JobKind) -> usize {
        let mut job = JobRecord::new(0, kind, ID.into(), "m".into());
        job.conn = Some(1);
        s.push_job(job)
    }

    fn done(s: &mut LogState, i: usize, at_us: u64) {
        s.jobs[i].terminals.push(TerminalRecord {
            at_us,
            conn: 1,
            frame: Terminal::Done {
                input_tokens: 0,
                output_tokens: 0,
                duration_ms: 0,
            },
        });
    }

    fn state() -> LogState {
        let mut s = LogState::default();
        s.open_session(0, "normal");
        s
    }

    /// A re-send written while the original awaits frames may be a duplicate.
    #[test]
    fn resend_while_original_open_is_not_free() {
        let mut s = state();
        let original = push(&mut s, JobKind::Normal);
        s.job_written(original, 10);
        let resend = push(&mut s, JobKind::Duplicate { of: 0 });
        s.job_written(resend, 20);
        assert_eq!(s.jobs[resend].id_was_free, Some(false));
        assert_eq!(s.jobs[original].superseded_us, None);
        assert_eq!(s.jobs[original].id_was_free, None);
    }

    /// After the original's terminal frame was read, a re-send is a new job.
    #[test]
    fn resend_after_terminal_is_free() {
        let mut s = state();
        let original = push(&mut s, JobKind::Normal);
        s.job_written(original, 10);
        done(&mut s, original, 15);
        let resend = push(&mut s, JobKind::Duplicate { of: 0 });
        s.job_written(resend, 20);
        assert_eq!(s.jobs[resend].id_was_free, Some(true));
        assert_eq!(s.jobs[original].superseded_us, None);
    }

    /// A re-send written after a cancel is a new job and supersedes the cancelled one.
    #[test]
    fn resend_after_cancel_supersedes() {
        let mut s = state();
        let original = push(&mut s, JobKind::Normal);
        s.job_written(original, 10);
        s.cancel_written(original, 12);
        let resend = push(&mut s, JobKind::Duplicate { of: 0 });
        s.job_written(resend, 20);
        assert_eq!(s.jobs[resend].id_was_free, Some(true));
        assert_eq!(s.jobs[original].superseded_us, Some(20));
        assert_eq!(s.jobs[resend].cancel_sent_us, None);
    }

    /// A cancel counts for every submission of the id still awaiting frames, not for answered ones.
    #[test]
    fn cancel_covers_open_chain() {
        let mut s = state();
        let original = push(&mut s, JobKind::Normal);
        s.job_written(original, 10);
        let answered = push(&mut s, JobKind::Duplicate { of: 0 });
        s.job_written(answered, 11);
        done(&mut s, answered, 12);
        let open = push(&mut s, JobKind::Duplicate { of: 0 });
        s.job_written(open, 13);
        s.cancel_written(original, 14);
        assert_eq!(s.jobs[original].cancel_sent_us, Some(14));
        assert_eq!(s.jobs[answered].cancel_sent_us, None);
        assert_eq!(s.jobs[open].cancel_sent_us, Some(14));
    }

    /// A stale cancel of a finished original reaches the re-send that now runs under its id.
    #[test]
    fn stale_cancel_reaches_rerun() {
        let mut s = state();
        let original = push(&mut s, JobKind::Normal);
        s.job_written(original, 10);
        done(&mut s, original, 11);
        let rerun = push(&mut s, JobKind::Duplicate { of: 0 });
        s.job_written(rerun, 12);
        s.cancel_written(original, 13);
        assert_eq!(s.jobs[original].cancel_sent_us, Some(13));
        assert_eq!(s.jobs[rerun].cancel_sent_us, Some(13));
    }
}
