//! Pairing backend executions with the submissions that ran them.

use super::job::{JobSend, JobView};
use super::records::BackendCall;
use super::view::TraceView;

impl TraceView {
    /// The backend executions paired with `send`.
    ///
    /// Pairing rule: each execution (a chat-completion request carrying
    /// the id in `user`) goes to the *latest* submission of its id that may
    /// have run ([`JobSend::may_have_run`]) and was written no later than
    /// the request reached the backend. Executions of one id are thus
    /// paired in time order with the submissions that ran. This is exact
    /// when the agent (1) sends a backend request for a submission only
    /// after reading it, (2) runs at most one submission of an id at a time
    /// and admits them in the order it reads them, so an admitted
    /// submission's request reaches the backend before the next admitted
    /// one of its id is written — for a cancelled one that holds because
    /// the coordinator writes no re-send of it within `resend_guard_ms` of
    /// the cancel — and (3) never runs a submission it answered at
    /// admission. An agent breaking (2) or (3) shows up as two executions
    /// paired with one submission, or as an execution paired with none
    /// ([`TraceView::unpaired_executions`]).
    ///
    /// Limits: a re-send written while its id was live that never shows a
    /// frame of its own (its session ended first) is taken as not run; had
    /// the agent run it, its request would count as the earlier
    /// submission's second. So would a request that a held or partitioned
    /// agent–backend link delays past the next admitted submission's write.
    pub fn executions_of_send<'a>(&'a self, send: &JobSend) -> impl Iterator<Item = &'a BackendCall> + 'a {
        self.executions
            .get(&send.sub)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|&index| self.backend_calls.get(index))
    }

    /// Pairs every execution, finding a job's view by `job_of` (the
    /// builder's hash index: the view's own map is not made yet).
    pub(super) fn pair_executions<'j>(&mut self, job_of: impl Fn(&str) -> Option<&'j JobView>) {
        for (index, call) in self.backend_calls.iter().enumerate() {
            // A request whose body never arrived (the agent went away while
            // sending it) names no job and cannot be paired.
            let Some(job) = call.job.as_deref().filter(|_| call.is_execution()) else {
                continue;
            };
            let owner = job_of(job).and_then(|job| {
                job.sends
                    .iter()
                    .rev()
                    .find(|send| send.may_have_run() && send.at_us <= call.start_us)
            });
            match owner {
                Some(send) => self.executions.entry(send.sub).or_default().push(index),
                None => self.unpaired_executions.push(index),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::trace::handmade::TraceBuilder;
    use crate::trace::{JobKind, TraceView};

    fn executions(view: &TraceView, job: &str) -> Vec<(u64, Vec<u64>)> {
        view.jobs[job]
            .sends
            .iter()
            .map(|send| {
                let starts = view.executions_of_send(send).map(|c| c.start_us / 1_000).collect();
                (send.sub, starts)
            })
            .collect()
    }

    /// A re-send answered duplicate_job before the original's request reached the backend is not paired; a re-run after the terminal is.
    #[test]
    fn executions_pair_with_the_submission_that_ran() {
        let trace = TraceBuilder::new()
            .session(0, 1)
            .job(10, "j", 1, 60_000)
            .job_of_kind(10, "j", 1, 60_000, JobKind::Duplicate)
            .error(12, "j", 1, "duplicate_job")
            .backend(13, Some(20), "j", b"x", "completed")
            .chunk(15, "j", 1, b"x")
            .done(21, "j", 1)
            .job_of_kind(30, "j", 1, 60_000, JobKind::Duplicate)
            .backend(32, Some(40), "j", b"y", "completed")
            .chunk(35, "j", 1, b"y")
            .done(41, "j", 1)
            .build();
        let view = TraceView::build(&trace.events);
        assert_eq!(executions(&view, "j"), vec![(0, vec![13]), (1, vec![]), (2, vec![32])]);
        assert!(view.unpaired_executions.is_empty());
    }

    /// A re-send written while the id was live that shows no frame of its own is taken as not run.
    #[test]
    fn a_silent_resend_of_a_live_id_is_not_paired() {
        let trace = TraceBuilder::new()
            .session(0, 1)
            .job(10, "j", 1, 60_000)
            .job_of_kind(11, "j", 1, 60_000, JobKind::Duplicate)
            .backend(13, Some(20), "j", b"x", "completed")
            .session_closed(14, 1)
            .build();
        let view = TraceView::build(&trace.events);
        assert_eq!(executions(&view, "j"), vec![(0, vec![13]), (1, vec![])]);
    }

    /// An execution before any submission of its id that may run is paired with none.
    #[test]
    fn an_execution_of_a_rejected_job_is_unpaired() {
        let trace = TraceBuilder::new()
            .session(0, 1)
            .job(10, "j", 1, 60_000)
            .error(12, "j", 1, "out_of_capacity")
            .backend(13, Some(20), "j", b"x", "completed")
            .build();
        let view = TraceView::build(&trace.events);
        assert_eq!(view.unpaired_executions, vec![0]);
    }
}
