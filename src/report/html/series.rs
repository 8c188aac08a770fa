//! Time series downsampled on the server side, so that a page of a run of
//! tens of thousands of events stays small and draws at once.
//!
//! A level (jobs in flight, queued bytes) is a step function: it is kept
//! exactly while it has few changes, and otherwise folded into fixed
//! buckets that each keep the least, the greatest and the last value — so
//! no peak is lost however far the page is zoomed out. A rate (bytes per
//! second) is summed per bucket.

use serde::Serialize;

/// Changes a level may have before it is folded into buckets.
pub const LEVEL_POINTS_EXACT_MAX: usize = 4_000;
/// Buckets a folded level spans the run with.
pub const LEVEL_BUCKETS: u64 = 3_000;
/// Buckets a rate spans the run with.
pub const RATE_BUCKETS: u64 = 600;
/// The narrowest rate bucket, in µs: narrower ones make noise, not detail.
pub const RATE_BUCKET_US_MIN: u64 = 10_000;

/// One point of a drawn series: from `t_ms` on, the value ranged over
/// `min..=max` and ended at `last` (all three equal for an exact change).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Point(pub f64, pub f64, pub f64, pub f64);

/// A level that changes at given times.
#[derive(Clone, Debug, Default)]
pub struct Level {
    /// `(at_us, value)` changes, in time order.
    changes: Vec<(u64, f64)>,
    current: f64,
}

impl Level {
    /// Sets the level to `value` at `at_us` (ignored when it does not change).
    pub fn set(&mut self, at_us: u64, value: f64) {
        if value != self.current || self.changes.is_empty() {
            debug_assert!(
                self.changes.last().is_none_or(|&(t, _)| t <= at_us),
                "level set out of order"
            );
            self.changes.push((at_us, value));
            self.current = value;
        }
    }

    /// Moves the level by `delta` at `at_us`.
    pub fn add(&mut self, at_us: u64, delta: f64) {
        self.set(at_us, self.current + delta);
    }

    /// The current value.
    pub fn value(&self) -> f64 {
        self.current
    }

    /// The greatest value it took.
    pub fn peak(&self) -> f64 {
        self.changes.iter().map(|&(_, v)| v).fold(0.0, f64::max)
    }

    /// The drawn points over a run lasting `end_us`.
    pub fn points(&self, end_us: u64) -> Vec<Point> {
        let ms = |us: u64| us as f64 / 1e3;
        if self.changes.len() <= LEVEL_POINTS_EXACT_MAX {
            return self.changes.iter().map(|&(t, v)| Point(ms(t), v, v, v)).collect();
        }
        let width_us = end_us.div_ceil(LEVEL_BUCKETS).max(1);
        let mut out: Vec<Point> = Vec::new();
        let mut last = 0.0;
        let mut bucket_at: Option<u64> = None;
        for &(t, v) in &self.changes {
            let bucket = t / width_us;
            match (bucket_at, out.last_mut()) {
                (Some(b), Some(point)) if b == bucket => {
                    point.1 = point.1.min(v);
                    point.2 = point.2.max(v);
                    point.3 = v;
                }
                _ => {
                    // The bucket opens at the level the previous one left.
                    let start = if out.is_empty() { v } else { last };
                    out.push(Point(ms(bucket * width_us), start.min(v), start.max(v), v));
                    bucket_at = Some(bucket);
                }
            }
            last = v;
        }
        out
    }
}

/// Amounts summed per bucket, drawn as a rate per second.
#[derive(Clone, Debug)]
pub struct Rate {
    width_us: u64,
    sums: Vec<f64>,
}

impl Rate {
    /// A rate over a run lasting `end_us`.
    pub fn new(end_us: u64) -> Self {
        let width_us = end_us.div_ceil(RATE_BUCKETS).max(RATE_BUCKET_US_MIN);
        let count = end_us / width_us + 1;
        Self {
            width_us,
            sums: vec![0.0; count as usize],
        }
    }

    /// Adds `amount` at `at_us` (clamped into the last bucket).
    pub fn add(&mut self, at_us: u64, amount: f64) {
        let index = ((at_us / self.width_us) as usize).min(self.sums.len() - 1);
        self.sums[index] += amount;
    }

    /// One point per bucket, in units per second.
    pub fn points(&self) -> Vec<Point> {
        let per_second = 1e6 / self.width_us as f64;
        let mut out: Vec<Point> = Vec::new();
        for (i, sum) in self.sums.iter().enumerate() {
            let v = sum * per_second;
            // Runs of one value collapse into their first bucket.
            if out.last().is_some_and(|p| p.3 == v) {
                continue;
            }
            out.push(Point((i as u64 * self.width_us) as f64 / 1e3, v, v, v));
        }
        out.push(Point(
            (self.sums.len() as u64 * self.width_us) as f64 / 1e3,
            0.0,
            0.0,
            0.0,
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A level with few changes is kept exactly, without repeated values.
    #[test]
    fn few_changes_are_exact() {
        let mut level = Level::default();
        level.set(0, 0.0);
        level.add(1_000, 1.0);
        level.add(2_000, 0.0);
        level.add(3_000, 1.0);
        level.add(4_000, -1.0);
        assert_eq!(
            level.points(5_000),
            vec![
                Point(0.0, 0.0, 0.0, 0.0),
                Point(1.0, 1.0, 1.0, 1.0),
                Point(3.0, 2.0, 2.0, 2.0),
                Point(4.0, 1.0, 1.0, 1.0)
            ]
        );
        assert_eq!(level.peak(), 2.0);
    }

    /// A busy level folds into buckets that keep every peak.
    #[test]
    fn many_changes_fold_and_keep_peaks() {
        let mut level = Level::default();
        let changes = LEVEL_POINTS_EXACT_MAX as u64 * 4;
        for i in 0..changes {
            level.set(i * 10, if i == 777 { 50.0 } else { (i % 3) as f64 });
        }
        let points = level.points(changes * 10);
        assert!(points.len() <= LEVEL_BUCKETS as usize + 1);
        assert_eq!(points.iter().map(|p| p.2).fold(0.0, f64::max), 50.0);
        assert!(points.iter().all(|p| p.1 <= p.3 && p.3 <= p.2));
    }

    /// A rate turns bucket sums into units per second.
    #[test]
    fn rate_is_per_second() {
        let mut rate = Rate::new(1_000_000);
        rate.add(0, 100.0);
        rate.add(5_000, 100.0);
        let points = rate.points();
        assert_eq!(points[0], Point(0.0, 20_000.0, 20_000.0, 20_000.0));
        assert_eq!(points[1].3, 0.0);
    }
}
