//! The sliding-window figures a heartbeat carries.
//!
//! Every terminal frame the executor queues is recorded here: completions
//! with their duration and output tokens, failures and rejections with their
//! code. A heartbeat reads percentiles and the error rate over the last
//! [`WINDOW_MS`].
//!
//! Completions and failures are kept apart. Latency and tokens/s come from
//! the most recent completions only ([`ENTRIES_MAX`] samples), and the error
//! rate from per-second counts of both outcomes ([`Buckets`]), which are
//! bounded by time rather than by count. A flood of rejections therefore
//! cannot push the completions out of the window (issue 13: with one shared
//! count-bounded window, 4 096 rejections made latency and tokens/s read 0
//! while accepted jobs succeeded), and the error rate stays exact however
//! many outcomes the window holds.

use std::collections::VecDeque;

use tokio::time::{Duration, Instant};

use crate::protocol::ErrorCode;

/// Width of the window the heartbeat figures cover.
pub const WINDOW_MS: u64 = 60_000;
/// Most completion samples kept for the percentiles; the oldest go first.
pub const ENTRIES_MAX: usize = 4096;
/// Width of one counting bucket of the error rate. The window's edge is
/// exact to within one bucket.
pub const BUCKET_MS: u64 = 1_000;

/// One completed job's figures.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Done {
    at: Instant,
    duration_ms: u64,
    output_tokens: u64,
}

/// Outcome counts per [`BUCKET_MS`], over at most [`WINDOW_MS`] plus one
/// bucket: bounded by time, so any number of outcomes costs the same memory.
#[derive(Debug, Default)]
struct Buckets {
    /// `(bucket start, count)`, oldest first; at most
    /// `WINDOW_MS / BUCKET_MS + 1` entries.
    counts: VecDeque<(Instant, u64)>,
}

impl Buckets {
    fn add(&mut self, at: Instant) {
        match self.counts.back_mut() {
            Some((start, count)) if at.saturating_duration_since(*start) < Duration::from_millis(BUCKET_MS) => {
                *count += 1;
            }
            _ => self.counts.push_back((at, 1)),
        }
        self.expire(at);
    }

    /// Drops buckets that started more than the window before `now`.
    fn expire(&mut self, now: Instant) {
        let window = Duration::from_millis(WINDOW_MS);
        while self
            .counts
            .front()
            .is_some_and(|(start, _)| now.saturating_duration_since(*start) > window)
        {
            self.counts.pop_front();
        }
        debug_assert!(self.counts.len() as u64 <= WINDOW_MS / BUCKET_MS + 1);
    }

    fn total(&self) -> u64 {
        self.counts.iter().map(|(_, count)| count).sum()
    }
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
    /// The most recent completions, for the percentiles.
    done: VecDeque<Done>,
    done_counts: Buckets,
    failed_counts: Buckets,
    last_error: Option<(u64, ErrorCode)>,
}

impl Stats {
    /// Records a completed job.
    pub fn record_done(&mut self, at: Instant, duration_ms: u64, output_tokens: u64) {
        if self.done.len() == ENTRIES_MAX {
            self.done.pop_front();
        }
        self.done.push_back(Done {
            at,
            duration_ms,
            output_tokens,
        });
        self.done_counts.add(at);
    }

    /// Records a job that ended in `job_error` (rejections included).
    pub fn record_error(&mut self, at: Instant, unix_ms: u64, code: ErrorCode) {
        self.failed_counts.add(at);
        self.last_error = Some((unix_ms, code));
    }

    /// The figures over the window ending at `now`.
    pub fn snapshot(&mut self, now: Instant) -> Snapshot {
        let window = Duration::from_millis(WINDOW_MS);
        while self
            .done
            .front()
            .is_some_and(|done| now.saturating_duration_since(done.at) > window)
        {
            self.done.pop_front();
        }
        self.done_counts.expire(now);
        self.failed_counts.expire(now);
        let mut latencies_ms = Vec::with_capacity(self.done.len());
        let mut rates = Vec::with_capacity(self.done.len());
        for done in &self.done {
            latencies_ms.push(done.duration_ms);
            if done.duration_ms > 0 {
                rates.push(done.output_tokens as f64 * 1000.0 / done.duration_ms as f64);
            }
        }
        latencies_ms.sort_unstable();
        rates.sort_unstable_by(f64::total_cmp);
        let failed = self.failed_counts.total();
        let total = failed + self.done_counts.total();
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

    /// Proves completion samples and outcome buckets stay bounded under a flood.
    #[tokio::test(start_paused = true)]
    async fn entries_are_bounded() {
        let mut stats = Stats::default();
        for _ in 0..3 * ENTRIES_MAX {
            stats.record_error(Instant::now(), 1, ErrorCode::OutOfCapacity);
            stats.record_done(Instant::now(), 1, 1);
            tokio::time::advance(Duration::from_millis(50)).await;
        }
        assert_eq!(stats.done.len(), ENTRIES_MAX);
        assert!(stats.failed_counts.counts.len() as u64 <= WINDOW_MS / BUCKET_MS + 1);
        assert!(stats.done_counts.counts.len() as u64 <= WINDOW_MS / BUCKET_MS + 1);
    }
}
