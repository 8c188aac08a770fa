//! What a run measured, from its trace: jobs by outcome and `error_code`,
//! latency percentiles in simulated milliseconds, and throughput in
//! simulated time.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::trace::{JobKind, JobSend, Terminal, TraceView};

/// Every outcome key, in report order (`[expect.outcomes]` accepts these).
pub const OUTCOME_KEYS: &[&str] = &[
    "jobs",
    "done",
    "error",
    "cancelled",
    "session_lost",
    "undeliverable",
    "in_flight",
    "duplicate",
    "duplicate_done",
    "malformed",
];

/// The protocol's `error_code` vocabulary (`[expect.error_codes]` keys).
pub const ERROR_CODES: &[&str] = &[
    "out_of_capacity",
    "model_not_loaded",
    "backend_unreachable",
    "backend_timeout",
    "auth_rejected_by_backend",
    "internal",
    "invalid_job",
    "duplicate_job",
];

/// Percentiles of one latency, in simulated ms (nearest rank).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of `samples_us` (microseconds), reported in ms.
    ///
    /// Each rank is an order statistic found by selection, not by sorting
    /// every sample: the values are exactly a sort's, at linear cost (the
    /// inter-chunk gaps are one sample per chunk, 400 k at 1000 jobs/s).
    pub fn of(mut samples_us: Vec<u64>) -> Self {
        let n = samples_us.len();
        if n == 0 {
            return Self::default();
        }
        let index = |q: f64| ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        let wanted = [index(0.50), index(0.90), index(0.99), index(1.0)];
        // Ranks ascend, so each selection runs on what lies above the last.
        let mut values = [0_u64; 4];
        let mut from = 0;
        for (value, &at) in values.iter_mut().zip(&wanted) {
            let rest = &mut samples_us[from..];
            let (_, nth, _) = rest.select_nth_unstable(at - from);
            *value = *nth;
            from = at;
        }
        debug_assert!(values.windows(2).all(|w| w[0] <= w[1]), "ranks ascend");
        let ms = |us: u64| us as f64 / 1e3;
        Self {
            count: n as u64,
            p50: ms(values[0]),
            p90: ms(values[1]),
            p99: ms(values[2]),
            max: ms(values[3]),
        }
    }
}

/// Everything measured about one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Jobs per outcome; every key of [`OUTCOME_KEYS`] is present.
    pub outcomes: BTreeMap<String, u64>,
    /// Terminal `job_error`s per `error_code`.
    pub error_codes: BTreeMap<String, u64>,
    /// Submission sent → its first chunk.
    pub ttfc_ms: Percentiles,
    /// Gap between consecutive chunks of one submission.
    pub inter_chunk_ms: Percentiles,
    /// Submission sent → its `job_done`.
    pub e2e_ms: Percentiles,
    /// What became of the coordinator's cancels.
    pub cancels: CancelCounts,
    pub chunks: u64,
    pub bytes: u64,
    /// Simulated time the run lasted, in ms.
    pub sim_ms: f64,
    /// Submissions completed (`job_done`, re-runs included), chunks and
    /// bytes per simulated second of the run.
    pub done_per_sec: f64,
    pub chunks_per_sec: f64,
    pub bytes_per_sec: f64,
}

/// What became of the coordinator's `job_cancel`s, per submission one
/// counted for: `sent = won + lost_to_completion`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CancelCounts {
    /// Submissions a `job_cancel` was written for.
    pub sent: u64,
    /// Of those, the ones for which no terminal frame was ever read: the
    /// cancel ended the job.
    pub won: u64,
    /// Of those, the ones whose terminal frame was read (before the cancel
    /// was written, or crossing it): the job ended first, the cancel lost.
    pub lost_to_completion: u64,
}

impl CancelCounts {
    fn count(&mut self, send: &JobSend) {
        if send.cancel_us.is_none() {
            return;
        }
        self.sent += 1;
        if send.first_terminal().is_some() {
            self.lost_to_completion += 1;
        } else {
            self.won += 1;
        }
    }
}

/// The outcome of one submission: its first terminal frame wins, then a
/// cancel that reached it, then a lost session (the coordinator's
/// `JobRecord::outcome`). A submission never written is `undeliverable`
/// and has no [`JobSend`].
pub fn outcome_of(send: &JobSend) -> &'static str {
    if let Some(first) = send.first_terminal() {
        return match first.what {
            Terminal::Done { .. } => "done",
            Terminal::Error { .. } => "error",
        };
    }
    if send.cancel_us.is_some() {
        "cancelled"
    } else if send.session_lost_us.is_some() {
        "session_lost"
    } else {
        "in_flight"
    }
}

impl Metrics {
    /// Measures the run in `view`, per submission: each original job by
    /// its own outcome (a cancelled original stays cancelled even when a
    /// re-send of its id runs to job_done), each re-send counted under
    /// `duplicate` (and `duplicate_done` when it ran to job_done), and every
    /// latency measured from the submission's own sending.
    pub fn of(view: &TraceView) -> Self {
        let mut metrics = Self {
            sim_ms: view.end_us as f64 / 1e3,
            ..Self::default()
        };
        for key in OUTCOME_KEYS {
            metrics.outcomes.insert((*key).to_owned(), 0);
        }
        let (mut ttfc, mut gaps, mut e2e) = (Vec::new(), Vec::new(), Vec::new());
        let mut done_total = 0_u64;
        for job in view.jobs.values() {
            for &(_, kind) in &job.undeliverable {
                metrics.bump(match kind {
                    JobKind::Normal => "undeliverable",
                    JobKind::Duplicate => "duplicate",
                    JobKind::Invalid | JobKind::Malformed => "malformed",
                });
                if kind == JobKind::Normal {
                    metrics.bump("jobs");
                }
            }
            let stray = &job.stray_chunks;
            metrics.chunks += stray.len() as u64;
            metrics.bytes += stray.iter().map(|c| c.what).sum::<u64>();
            for send in &job.sends {
                metrics.count(send);
                metrics.cancels.count(send);
                done_total += u64::from(send.is_done());
                metrics.chunks += send.chunks.len() as u64;
                metrics.bytes += send.chunks.iter().map(|c| c.what).sum::<u64>();
                gaps.extend(send.chunks.windows(2).map(|w| w[1].at_us.saturating_sub(w[0].at_us)));
                if let Some(chunk) = send.chunks.first() {
                    ttfc.push(chunk.at_us.saturating_sub(send.at_us));
                }
                if let Some(done) = send.first_terminal().filter(|_| send.is_done()) {
                    e2e.push(done.at_us.saturating_sub(send.at_us));
                }
            }
        }
        metrics.ttfc_ms = Percentiles::of(ttfc);
        metrics.inter_chunk_ms = Percentiles::of(gaps);
        metrics.e2e_ms = Percentiles::of(e2e);
        let seconds = (view.end_us as f64 / 1e6).max(1e-6);
        metrics.done_per_sec = done_total as f64 / seconds;
        metrics.chunks_per_sec = metrics.chunks as f64 / seconds;
        metrics.bytes_per_sec = metrics.bytes as f64 / seconds;
        metrics
    }

    fn bump(&mut self, key: &str) {
        // Every outcome key is already present (see `of`): count without
        // allocating an owned key per submission.
        match self.outcomes.get_mut(key) {
            Some(count) => *count += 1,
            None => {
                self.outcomes.insert(key.to_owned(), 1);
            }
        }
    }

    fn count(&mut self, send: &JobSend) {
        match send.kind {
            JobKind::Normal => {
                self.bump("jobs");
                self.bump(outcome_of(send));
            }
            JobKind::Duplicate => {
                self.bump("duplicate");
                if send.is_done() {
                    self.bump("duplicate_done");
                }
            }
            JobKind::Invalid | JobKind::Malformed => self.bump("malformed"),
        }
        if let Some(code) = send.first_terminal().and_then(|t| t.what.error_code()) {
            match self.error_codes.get_mut(code) {
                Some(count) => *count += 1,
                None => {
                    self.error_codes.insert(code.to_owned(), 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::handmade::TraceBuilder;

    /// Percentiles use the nearest rank.
    #[test]
    fn nearest_rank_percentiles() {
        let p = Percentiles::of((1..=100).map(|ms| ms * 1_000).collect());
        assert_eq!((p.count, p.p50, p.p90, p.p99, p.max), (100, 50.0, 90.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(vec![]).count, 0);
    }

    /// Selection gives exactly the ranks a full sort gives, duplicates and
    /// every length from 1 to 300 included.
    #[test]
    fn selected_ranks_equal_sorted_ranks() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for n in 1..=300_usize {
            let samples: Vec<u64> = (0..n)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state % 50
                })
                .collect();
            let mut sorted = samples.clone();
            sorted.sort_unstable();
            let rank = |q: f64| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1e3;
            let p = Percentiles::of(samples);
            assert_eq!(
                (p.p50, p.p90, p.p99, p.max),
                (rank(0.5), rank(0.9), rank(0.99), rank(1.0)),
                "n = {n}"
            );
        }
    }

    /// A cancelled original stays cancelled when its re-send completes; the
    /// re-run counts as a duplicate that ran to job_done, and latencies run
    /// from each submission's own sending.
    #[test]
    fn outcomes_and_latencies_are_per_submission() {
        let trace = TraceBuilder::new()
            .session(0, 1)
            .job(10, "j", 1, 60_000)
            .chunk(40, "j", 1, b"ab")
            .cancel(50, "j", 1)
            .job_of_kind(2_050, "j", 1, 60_000, JobKind::Duplicate)
            .chunk(2_080, "j", 1, b"abc")
            .done(2_150, "j", 1)
            .job_of_kind(2_060, "j", 1, 60_000, JobKind::Duplicate)
            .error(2_062, "j", 1, "duplicate_job")
            .build();
        let metrics = Metrics::of(&TraceView::build(&trace.events));
        let count = |key: &str| metrics.outcomes[key];
        assert_eq!(
            (
                count("jobs"),
                count("cancelled"),
                count("done"),
                count("duplicate"),
                count("duplicate_done")
            ),
            (1, 1, 0, 2, 1)
        );
        assert_eq!(metrics.error_codes.get("duplicate_job"), Some(&1));
        assert_eq!((metrics.ttfc_ms.count, metrics.ttfc_ms.max), (2, 30.0));
        assert_eq!((metrics.e2e_ms.count, metrics.e2e_ms.max), (1, 100.0));
        assert_eq!((metrics.chunks, metrics.bytes), (2, 5));
        let cancels = metrics.cancels;
        assert_eq!((cancels.sent, cancels.won, cancels.lost_to_completion), (1, 1, 0));
    }

    /// Outcomes, error codes, latencies and bytes are counted from the trace.
    #[test]
    fn outcomes_and_codes_are_counted() {
        let trace = TraceBuilder::new()
            .session(0, 1)
            .job(10, "a", 1, 1_000)
            .chunk(20, "a", 1, b"xy")
            .done(30, "a", 1)
            .job(10, "b", 1, 1_000)
            .error(15, "b", 1, "out_of_capacity")
            .job(10, "c", 1, 1_000)
            .cancel(12, "c", 1)
            .build();
        let metrics = Metrics::of(&TraceView::build(&trace.events));
        assert_eq!(metrics.outcomes["jobs"], 3);
        assert_eq!(
            (
                metrics.outcomes["done"],
                metrics.outcomes["error"],
                metrics.outcomes["cancelled"]
            ),
            (1, 1, 1)
        );
        assert_eq!(metrics.error_codes["out_of_capacity"], 1);
        assert_eq!((metrics.ttfc_ms.p50, metrics.e2e_ms.p50), (10.0, 20.0));
        assert_eq!(metrics.bytes, 2);
    }
}
