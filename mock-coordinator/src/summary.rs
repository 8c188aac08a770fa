//! Metrics over the record, in simulated time: latency percentiles from
//! HdrHistogram, throughput, and counts by outcome and `error_code`.

use std::collections::BTreeMap;
use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::record::{JobOutcome, JobRecord, Terminal};
use crate::state::LogState;

/// Significant decimal digits kept by the histograms.
const HISTOGRAM_SIGFIG: u8 = 3;
/// Largest latency the histograms resolve (one day); longer ones are
/// recorded as this value.
const LATENCY_MAX_US: u64 = 86_400_000_000;

/// Percentiles of one latency distribution, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LatencyStats {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// Everything the binary prints, and what simctl reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// All job submissions, including duplicates and malformed frames.
    pub jobs_total: u64,
    /// Submissions by [`JobOutcome::label`].
    pub outcomes: BTreeMap<String, u64>,
    /// `job_error` outcomes by `error_code`.
    pub error_codes: BTreeMap<String, u64>,
    /// Job written → its first chunk.
    pub time_to_first_chunk: LatencyStats,
    /// Gap between consecutive chunks of one job.
    pub inter_chunk_gap: LatencyStats,
    /// Job written → its `job_done`, for jobs whose first terminal frame is
    /// `job_done` (the same definition as simctl's `end-to-end`).
    pub end_to_end: LatencyStats,
    pub chunks_total: u64,
    pub bytes_total: u64,
    /// From the first job written to the last chunk or terminal received.
    pub span_us: u64,
    pub chunks_per_sec: f64,
    pub bytes_per_sec: f64,
    pub sessions: u64,
    pub heartbeats: u64,
    pub violations: u64,
}

/// An HdrHistogram that never fails: values are clamped into
/// `1..=LATENCY_MAX_US`.
struct Latencies(Option<Histogram<u64>>);

impl Latencies {
    fn new() -> Latencies {
        Latencies(Histogram::new_with_bounds(1, LATENCY_MAX_US, HISTOGRAM_SIGFIG).ok())
    }

    fn record(&mut self, us: u64) {
        if let Some(h) = &mut self.0 {
            h.saturating_record(us.max(1));
        }
    }

    fn stats(&self) -> LatencyStats {
        match &self.0 {
            Some(h) if !h.is_empty() => LatencyStats {
                count: h.len(),
                p50_us: h.value_at_quantile(0.50),
                p90_us: h.value_at_quantile(0.90),
                p99_us: h.value_at_quantile(0.99),
                max_us: h.max(),
            },
            _ => LatencyStats::default(),
        }
    }
}

fn per_sec(n: u64, span_us: u64) -> f64 {
    if span_us == 0 {
        0.0
    } else {
        n as f64 * 1e6 / span_us as f64
    }
}

impl Summary {
    pub(crate) fn of(state: &LogState) -> Summary {
        let mut s = Summary {
            jobs_total: state.jobs.len() as u64,
            sessions: state.sessions.len() as u64,
            heartbeats: state.heartbeats.len() as u64,
            violations: state.violations.len() as u64 + state.violations_dropped,
            ..Summary::default()
        };
        let (mut ttfc, mut gap, mut e2e) = (Latencies::new(), Latencies::new(), Latencies::new());
        let (mut first_us, mut last_us) = (u64::MAX, 0u64);
        for job in &state.jobs {
            s.count_outcome(job);
            s.chunks_total += job.chunks.len() as u64;
            s.bytes_total += job.bytes.len() as u64;
            for w in job.chunks.windows(2) {
                gap.record(w[1].at_us.saturating_sub(w[0].at_us));
            }
            let last_seen = job.chunks.iter().map(|c| c.at_us);
            let last_seen = last_seen.chain(job.terminals.iter().map(|t| t.at_us)).max();
            last_us = last_us.max(last_seen.unwrap_or(0));
            let Some(sent_us) = job.sent_us else { continue };
            first_us = first_us.min(sent_us);
            if let Some(c) = job.chunks.first() {
                ttfc.record(c.at_us.saturating_sub(sent_us));
            }
            // End to end as simctl measures it: only a job whose first
            // terminal frame is `job_done` (an early `job_error` would pull
            // the latency of completed work down).
            if let Some(t) = job
                .terminals
                .first()
                .filter(|t| matches!(t.frame, Terminal::Done { .. }))
            {
                e2e.record(t.at_us.saturating_sub(sent_us));
            }
        }
        s.span_us = last_us.saturating_sub(first_us.min(last_us));
        s.chunks_per_sec = per_sec(s.chunks_total, s.span_us);
        s.bytes_per_sec = per_sec(s.bytes_total, s.span_us);
        s.time_to_first_chunk = ttfc.stats();
        s.inter_chunk_gap = gap.stats();
        s.end_to_end = e2e.stats();
        s
    }

    fn count_outcome(&mut self, job: &JobRecord) {
        let outcome = job.outcome();
        *self.outcomes.entry(outcome.label().to_owned()).or_default() += 1;
        if let JobOutcome::Error(code) = outcome {
            *self.error_codes.entry(code).or_default() += 1;
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k} {v}")).collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn latency_line(f: &mut fmt::Formatter<'_>, name: &str, l: &LatencyStats) -> fmt::Result {
    writeln!(
        f,
        "{name:<20} n={:<7} p50={:.3} ms  p90={:.3} ms  p99={:.3} ms  max={:.3} ms",
        l.count,
        ms(l.p50_us),
        ms(l.p90_us),
        ms(l.p99_us),
        ms(l.max_us)
    )
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "jobs: {} ({})", self.jobs_total, counts(&self.outcomes))?;
        writeln!(f, "error codes: {}", counts(&self.error_codes))?;
        latency_line(f, "time to first chunk", &self.time_to_first_chunk)?;
        latency_line(f, "inter-chunk gap", &self.inter_chunk_gap)?;
        latency_line(f, "end to end (done)", &self.end_to_end)?;
        writeln!(
            f,
            "throughput: {} chunks ({:.1}/s), {} bytes ({:.1}/s) over {:.3} s",
            self.chunks_total,
            self.chunks_per_sec,
            self.bytes_total,
            self.bytes_per_sec,
            ms(self.span_us) / 1000.0
        )?;
        write!(
            f,
            "sessions: {}, heartbeats: {}, violations: {}",
            self.sessions, self.heartbeats, self.violations
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ChunkRecord, JobKind, Terminal, TerminalRecord};

    fn job(sent_us: u64, chunks: &[(u64, usize)], done_us: Option<u64>) -> JobRecord {
        let mut j = JobRecord::new(0, JobKind::Normal, "id".into(), "m".into());
        j.sent_us = Some(sent_us);
        j.conn = Some(1);
        for &(at_us, len) in chunks {
            j.chunks.push(ChunkRecord { at_us, len });
            j.bytes.extend_from_slice(&vec![b'x'; len]);
        }
        if let Some(at_us) = done_us {
            j.terminals.push(TerminalRecord {
                at_us,
                conn: 1,
                frame: Terminal::Done {
                    input_tokens: 1,
                    output_tokens: 1,
                    duration_ms: 1,
                },
            });
        }
        j
    }

    /// Latencies, throughput and counts come out of the jobs' records.
    #[test]
    fn summary_metrics() {
        let mut s = LogState::default();
        s.push_job(job(0, &[(10_000, 5), (30_000, 5)], Some(40_000)));
        s.push_job(job(1_000_000, &[], None));
        let sum = Summary::of(&s);
        assert_eq!(sum.jobs_total, 2);
        assert_eq!(sum.outcomes.get("done"), Some(&1));
        assert_eq!(sum.outcomes.get("in_flight"), Some(&1));
        assert_eq!(sum.time_to_first_chunk.count, 1);
        assert!((9_990..=10_010).contains(&sum.time_to_first_chunk.p50_us), "{sum:?}");
        assert!((19_980..=20_020).contains(&sum.inter_chunk_gap.max_us));
        assert!((39_960..=40_040).contains(&sum.end_to_end.p99_us));
        assert_eq!(sum.chunks_total, 2);
        assert_eq!(sum.span_us, 40_000);
        assert!((sum.chunks_per_sec - 50.0).abs() < 1e-9);
        let text = sum.to_string();
        assert!(text.contains("time to first chunk"), "{text}");
    }

    /// End to end counts `job_done` jobs only: a `job_error` job that ends
    /// after a done one adds no sample and does not move the figure, and the
    /// printed line says so.
    #[test]
    fn end_to_end_counts_done_jobs_only() {
        let mut s = LogState::default();
        s.push_job(job(0, &[(10_000, 5)], Some(40_000)));
        let mut failed = job(0, &[(10_000, 5)], None);
        failed.terminals.push(TerminalRecord {
            at_us: 900_000,
            conn: 1,
            frame: Terminal::Error {
                code: "backend_timeout".into(),
                message: "slow".into(),
                tokens_emitted: 1,
                bytes_emitted: Some(5),
            },
        });
        s.push_job(failed);
        let sum = Summary::of(&s);
        assert_eq!(sum.end_to_end.count, 1, "{sum:?}");
        assert!((39_960..=40_040).contains(&sum.end_to_end.max_us), "{sum:?}");
        let text = sum.to_string();
        assert!(text.contains("end to end (done)    n=1 "), "{text}");
    }
}
