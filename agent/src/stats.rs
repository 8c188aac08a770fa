//! The sliding-window figures a heartbeat carries.
//!
//! Every terminal frame the executor queues is recorded here: completions
//! with their duration and output tokens, failures and rejections with their
//! code. A heartbeat reads percentiles and the error rate over the last
//! [`WINDOW_MS`]. The window is bounded in time and in entries
//! ([`ENTRIES_MAX`]), so a flood of rejections cannot grow it without limit.

use std::collections::VecDeque;

use tokio::time::{Duration, Instant};

use crate::protocol::ErrorCode;

/// Width of the window the heartbeat figures cover.
pub const WINDOW_MS: u64 = 60_000;
/// Most entries kept; the oldest are dropped first.
pub const ENTRIES_MAX: usize = 4096;

/// One terminal outcome.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Done { duration_ms: u64, output_tokens: u64 },
    Failed,
}

/// The heartbeat figures at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub tokens_per_sec_p50: f64,
    pub p50_latency_ms: u64,
    pub p95_latency_ms: u64,
    pub error_rate_60s: f64,
    /// Wall time of the last error, as Unix ms.
    pub last_error_unix_ms: Option<u64>,
    pub last_error_code: Option<ErrorCode>,
}

/// Recent outcomes. Owned behind a `Mutex` by the run loop; job tasks and
/// the session's read loop record, the heartbeat timer reads.
#[derive(Debug, Default)]
pub struct Stats {
    entries: VecDeque<(Instant, Outcome)>,
    last_error: Option<(u64, ErrorCode)>,
}

impl Stats {
    /// Records a completed job.
    pub fn record_done(&mut self, at: Instant, duration_ms: u64, output_tokens: u64) {
        self.push(
            at,
            Outcome::Done {
                duration_ms,
                output_tokens,
            },
        );
    }

    /// Records a job that ended in `job_error` (rejections included).
    pub fn record_error(&mut self, at: Instant, unix_ms: u64, code: ErrorCode) {
        self.push(at, Outcome::Failed);
        self.last_error = Some((unix_ms, code));
    }

    fn push(&mut self, at: Instant, outcome: Outcome) {
        if self.entries.len() == ENTRIES_MAX {
            self.entries.pop_front();
        }
        self.entries.push_back((at, outcome));
    }

    /// The figures over the window ending at `now`.
    pub fn snapshot(&mut self, now: Instant) -> Snapshot {
        let window = Duration::from_millis(WINDOW_MS);
        while self
            .entries
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > window)
        {
            self.entries.pop_front();
        }
        let mut latencies_ms = Vec::with_capacity(self.entries.len());
        let mut rates = Vec::with_capacity(self.entries.len());
        let mut failed = 0usize;
        for (_, outcome) in &self.entries {
            match *outcome {
                Outcome::Done {
                    duration_ms,
                    output_tokens,
                } => {
                    latencies_ms.push(duration_ms);
                    if duration_ms > 0 {
                        rates.push(output_tokens as f64 * 1000.0 / duration_ms as f64);
                    }
                }
                Outcome::Failed => failed += 1,
            }
        }
        latencies_ms.sort_unstable();
        rates.sort_unstable_by(f64::total_cmp);
        let total = self.entries.len();
        Snapshot {
            tokens_per_sec_p50: percentile(&rates, 50).unwrap_or(0.0),
            p50_latency_ms: percentile(&latencies_ms, 50).unwrap_or(0),
            p95_latency_ms: percentile(&latencies_ms, 95).unwrap_or(0),
            error_rate_60s: if total == 0 { 0.0 } else { failed as f64 / total as f64 },
            last_error_unix_ms: self.last_error.map(|(ms, _)| ms),
            last_error_code: self.last_error.map(|(_, code)| code),
        }
    }
}

/// Nearest-rank percentile of a sorted slice.
fn percentile<T: Copy>(sorted: &[T], pct: usize) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 95), Some(95));
        assert_eq!(percentile(&[7u64], 95), Some(7));
        assert_eq!(percentile::<u64>(&[], 50), None);
    }

    #[tokio::test(start_paused = true)]
    async fn window_drops_old_entries_and_counts_errors() {
        let mut stats = Stats::default();
        let t0 = Instant::now();
        stats.record_done(t0, 100, 10);
        stats.record_error(t0, 5, ErrorCode::Internal);
        let snap = stats.snapshot(t0);
        assert_eq!(snap.error_rate_60s, 0.5);
        assert_eq!(snap.p50_latency_ms, 100);
        assert_eq!(snap.tokens_per_sec_p50, 100.0);
        assert_eq!(snap.last_error_code, Some(ErrorCode::Internal));
        let later = t0 + Duration::from_millis(WINDOW_MS + 1);
        stats.record_done(later, 300, 3);
        let snap = stats.snapshot(later);
        assert_eq!(snap.error_rate_60s, 0.0, "the error left the window");
        assert_eq!(snap.p95_latency_ms, 300);
        assert_eq!(
            snap.last_error_unix_ms,
            Some(5),
            "last error is remembered beyond the window"
        );
    }

    #[test]
    fn entries_are_bounded() {
        let mut stats = Stats::default();
        let t0 = Instant::now();
        for _ in 0..ENTRIES_MAX + 10 {
            stats.record_error(t0, 1, ErrorCode::OutOfCapacity);
        }
        assert_eq!(stats.entries.len(), ENTRIES_MAX);
    }
}
