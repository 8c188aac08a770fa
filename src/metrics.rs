//! What a run measured, from its trace: jobs by outcome and `error_code`,
//! latency percentiles in simulated milliseconds, and throughput in
//! simulated time.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::trace::{JobKind, JobView, Terminal, TraceView};

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
    pub fn of(mut samples_us: Vec<u64>) -> Self {
        if samples_us.is_empty() {
            return Self::default();
        }
        samples_us.sort_unstable();
        let rank = |q: f64| {
            let index = ((q * samples_us.len() as f64).ceil() as usize).clamp(1, samples_us.len()) - 1;
            samples_us[index] as f64 / 1e3
        };
        Self {
            count: samples_us.len() as u64,
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: rank(1.0),
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
    /// Job sent → first chunk.
    pub ttfc_ms: Percentiles,
    /// Gap between consecutive chunks of one job.
    pub inter_chunk_ms: Percentiles,
    /// Job sent → `job_done`.
    pub e2e_ms: Percentiles,
    pub chunks: u64,
    pub bytes: u64,
    /// Simulated time the run lasted, in ms.
    pub sim_ms: f64,
    /// Completed jobs, chunks and bytes per simulated second of the run.
    pub done_per_sec: f64,
    pub chunks_per_sec: f64,
    pub bytes_per_sec: f64,
}

/// The outcome of one job id: its first own terminal frame wins, then a
/// cancel, then never being delivered, then a lost session.
pub fn outcome_of(job: &JobView) -> &'static str {
    match job.first_send().map(|s| s.kind) {
        Some(JobKind::Duplicate) => return "duplicate",
        Some(JobKind::Malformed | JobKind::Invalid) => return "malformed",
        _ => {}
    }
    if let Some(first) = job.own_terminals().next() {
        return match first.what {
            Terminal::Done { .. } => "done",
            Terminal::Error { .. } => "error",
        };
    }
    if job.cancel_us.is_some() {
        "cancelled"
    } else if job.sends.is_empty() && job.undeliverable_us.is_some() {
        "undeliverable"
    } else if job.session_lost_us.is_some() {
        "session_lost"
    } else {
        "in_flight"
    }
}

impl Metrics {
    /// Measures the run in `view`.
    pub fn of(view: &TraceView) -> Self {
        let mut metrics = Self {
            sim_ms: view.end_us as f64 / 1e3,
            ..Self::default()
        };
        for key in OUTCOME_KEYS {
            metrics.outcomes.insert((*key).to_owned(), 0);
        }
        let (mut ttfc, mut gaps, mut e2e) = (Vec::new(), Vec::new(), Vec::new());
        for job in view.jobs.values() {
            metrics.count(job);
            metrics.chunks += job.chunks.len() as u64;
            metrics.bytes += job.chunks.iter().map(|c| c.what).sum::<u64>();
            gaps.extend(job.chunks.windows(2).map(|w| w[1].at_us.saturating_sub(w[0].at_us)));
            let Some(sent) = job.first_send() else { continue };
            if let Some(chunk) = job.chunks.first() {
                ttfc.push(chunk.at_us.saturating_sub(sent.at_us));
            }
            if let Some(done) = job
                .own_terminals()
                .next()
                .filter(|t| matches!(t.what, Terminal::Done { .. }))
            {
                e2e.push(done.at_us.saturating_sub(sent.at_us));
            }
        }
        metrics.ttfc_ms = Percentiles::of(ttfc);
        metrics.inter_chunk_ms = Percentiles::of(gaps);
        metrics.e2e_ms = Percentiles::of(e2e);
        let seconds = (view.end_us as f64 / 1e6).max(1e-6);
        metrics.done_per_sec = metrics.outcomes["done"] as f64 / seconds;
        metrics.chunks_per_sec = metrics.chunks as f64 / seconds;
        metrics.bytes_per_sec = metrics.bytes as f64 / seconds;
        metrics
    }

    fn count(&mut self, job: &JobView) {
        let outcome = outcome_of(job);
        if !matches!(outcome, "duplicate" | "malformed") {
            *self.outcomes.entry("jobs".into()).or_default() += 1;
        }
        *self.outcomes.entry(outcome.into()).or_default() += 1;
        // Re-sends of an id are counted as duplicates on top of the original.
        let resends = job
            .sends
            .iter()
            .skip(1)
            .filter(|s| s.kind == JobKind::Duplicate)
            .count() as u64;
        *self.outcomes.entry("duplicate".into()).or_default() += resends;
        let codes = job.terminals.iter().filter_map(|t| t.what.error_code());
        let first_own = job.own_terminals().next().and_then(|t| t.what.error_code());
        for code in codes.filter(|c| *c == "duplicate_job").chain(first_own) {
            *self.error_codes.entry(code.to_owned()).or_default() += 1;
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
