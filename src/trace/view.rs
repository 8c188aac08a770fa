//! An index over a [`Trace`](super::Trace): per-job, per-session and
//! per-backend-request views that the oracle rules and the metrics read.
//! The records it holds are in [`super::job`] (submissions) and
//! [`super::records`] (sessions, backend requests); executions are paired
//! with submissions in [`super::pairing`]; it is built from the events in
//! [`super::build`].

use std::collections::BTreeMap;

use super::event::{Event, FaultAction, Phase};
use super::job::{JobSend, JobView};
use super::records::{BackendCall, SessionView};
use super::shared::{JobId, Name};

/// The indexed trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceView {
    pub jobs: BTreeMap<JobId, JobView>,
    pub sessions: BTreeMap<u64, SessionView>,
    pub backend_calls: Vec<BackendCall>,
    /// `(from_us, until_us)` of every window in which the coordinator held
    /// back reading (paused or slowed).
    pub read_pauses: Vec<(u64, u64)>,
    /// `(conn, from_us, until_us)` of every window in which the coordinator
    /// did not read `conn` at all (paused, not slowed).
    pub read_stops: Vec<(u64, u64, u64)>,
    /// `(at_us, action, hosts)` of every fault, in order.
    pub faults: Vec<(u64, FaultAction, Vec<String>)>,
    pub phases: Vec<(u64, Phase)>,
    /// `(at_us, host, error)` of hosts whose software stopped by itself.
    pub host_stops: Vec<(u64, String, Option<String>)>,
    /// `(at_us, job, "kind: what")` flagged by the coordinator.
    pub coordinator_flags: Vec<(u64, Option<String>, String)>,
    /// `(source, count)` of records dropped for hitting a bound.
    pub records_dropped: Vec<(String, u64)>,
    /// The agent observer's events, in order.
    pub agent_events: Vec<Event>,
    /// Time of the last event.
    pub end_us: u64,
    /// Submission → indexes into `backend_calls` of the executions paired
    /// with it (see [`TraceView::executions_of_send`]).
    pub executions: BTreeMap<u64, Vec<usize>>,
    /// Indexes into `backend_calls` of executions naming a job id but
    /// paired with no submission: none of that id that may have run was
    /// written before they started.
    pub unpaired_executions: Vec<usize>,
    /// Job id → indexes into `backend_calls` of the executions naming it,
    /// in start order (so a rule looks a job's executions up, never scans).
    pub executions_by_job: BTreeMap<JobId, Vec<usize>>,
    /// Job id → when the agent freed a slot held by that id, in order
    /// (kept apart from `jobs`: a release names an id the coordinator may
    /// never have sent).
    pub agent_freed_by_job: BTreeMap<JobId, Vec<u64>>,
    /// `(backend, request)` → index into `backend_calls` of the latest
    /// request so numbered: where its end event lands.
    pub calls_by_request: BTreeMap<(Name, u64), usize>,
}

impl TraceView {
    /// Indexes `events` (in trace order): see [`super::build`].
    pub fn build(events: &[Event]) -> Self {
        super::build::index(events)
    }

    /// Every submission written, with its job id, by job id then write order.
    pub fn sends(&self) -> impl Iterator<Item = (&JobView, &JobSend)> {
        self.jobs
            .values()
            .flat_map(|job| job.sends.iter().map(move |send| (job, send)))
    }

    /// Time the given phase began, if it did.
    pub fn phase_us(&self, wanted: Phase) -> Option<u64> {
        self.phases
            .iter()
            .find(|(_, phase)| *phase == wanted)
            .map(|(at, _)| *at)
    }

    /// Microseconds of `[from_us, to_us)` during which the coordinator was
    /// not reading: frames cannot arrive then, so bounds stretch by it.
    pub fn paused_us_within(&self, from_us: u64, to_us: u64) -> u64 {
        self.read_pauses
            .iter()
            .map(|&(start, end)| end.min(to_us).saturating_sub(start.max(from_us)))
            .sum()
    }

    /// The execution requests backends recorded for `job`, in start order.
    pub fn executions_of<'a>(&'a self, job: &'a str) -> impl Iterator<Item = &'a BackendCall> + 'a {
        self.executions_by_job
            .get(job)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|&index| self.backend_calls.get(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::JobKind;
    use crate::trace::handmade::TraceBuilder;
    use crate::trace::{Blob, EventKind};

    /// Read pauses count only where they overlap the asked span.
    #[test]
    fn pauses_stretch_only_over_the_overlap() {
        let view = TraceView {
            read_pauses: vec![(100, 200), (500, 600)],
            ..TraceView::default()
        };
        assert_eq!(view.paused_us_within(150, 550), 50 + 50);
        assert_eq!(view.paused_us_within(0, 50), 0);
    }

    /// Frames land on the submission the trace names, strays on the job.
    #[test]
    fn frames_land_on_their_submission() {
        let trace = TraceBuilder::new()
            .session(0, 1)
            .job(10, "j", 1, 60_000)
            .chunk(12, "j", 1, b"ab")
            .cancel(13, "j", 1)
            .job_of_kind(2_000, "j", 1, 60_000, JobKind::Duplicate)
            .chunk(2_010, "j", 1, b"cde")
            .done(2_020, "j", 1)
            .chunk(2_030, "j", 1, b"f")
            .build();
        let view = TraceView::build(&trace.events);
        let job = &view.jobs["j"];
        let (original, rerun) = (&job.sends[0], &job.sends[1]);
        assert_eq!(
            (&*original.bytes.bytes(), original.cancel_us, original.superseded_us),
            (&b"ab"[..], Some(13_000), Some(2_000_000))
        );
        assert_eq!((&*rerun.bytes.bytes(), rerun.is_done()), (&b"cde"[..], true));
        assert_eq!(job.stray_chunks.len(), 1);
    }

    /// A backend end event completes the request it names.
    #[test]
    fn backend_end_completes_its_request() {
        let events = vec![
            Event::new(
                1,
                EventKind::BackendRequest {
                    backend: "b".into(),
                    request: 7,
                    job: Some("j".into()),
                    method: "POST".into(),
                    path: "/v1/chat/completions".into(),
                    model: None,
                    stream: true,
                },
            ),
            Event::new(
                9,
                EventKind::BackendEnd {
                    backend: "b".into(),
                    request: 7,
                    job: Some("j".into()),
                    status: 200,
                    tokens_written: 3,
                    end: "completed".into(),
                    body: Blob::new(b"xyz"),
                },
            ),
        ];
        let view = TraceView::build(&events);
        let call = view.executions_of("j").next().unwrap();
        assert_eq!(
            (call.start_us, call.end_us, &*call.body.bytes()),
            (1, Some(9), &b"xyz"[..])
        );
    }
}
