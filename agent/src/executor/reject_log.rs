//! Quiet logs under overload: an agent at `max_concurrent` may turn away
//! hundreds of jobs a second with `out_of_capacity`, and one info line each
//! would bury everything else. Each rejection is logged at debug; at info
//! the first one after a quiet spell is logged at once, and later ones are
//! summed into one line per [`OUT_OF_CAPACITY_SUMMARY_EVERY_S`] seconds
//! (written at the first rejection after the period has passed). A burst
//! that ends inside a period would leave its last rejections unsummed until
//! the next one, however late; so the session also sums what is pending at
//! each heartbeat and when it ends ([`RejectTally::flush`]). Only the log
//! changes: nothing here touches frames or the observer.

use tokio::time::{Duration, Instant};

/// Seconds between two info summaries of `out_of_capacity` rejections.
pub const OUT_OF_CAPACITY_SUMMARY_EVERY_S: u64 = 10;

/// What to log at info for one rejection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Summary {
    /// The first rejection after a quiet spell.
    First,
    /// `count` rejections (this one included) over `over`.
    Since { count: u64, over: Duration },
}

/// Counts `out_of_capacity` rejections between info summaries.
#[derive(Debug, Default)]
pub struct RejectTally {
    /// When the current summary period began (its first rejection).
    since: Option<Instant>,
    /// Rejections counted in it after its first.
    count: u64,
}

impl RejectTally {
    /// Counts one rejection at `now`; `Some` when an info line is due.
    pub fn count(&mut self, now: Instant) -> Option<Summary> {
        let period = Duration::from_secs(OUT_OF_CAPACITY_SUMMARY_EVERY_S);
        match self.since {
            None => {
                self.since = Some(now);
                Some(Summary::First)
            }
            Some(since) if now.duration_since(since) >= period => {
                let summary = Summary::Since {
                    count: self.count + 1,
                    over: now.duration_since(since),
                };
                // A spell longer than two periods without rejections starts afresh.
                self.since = (now.duration_since(since) < 2 * period).then_some(now);
                self.count = 0;
                Some(summary)
            }
            Some(_) => {
                self.count += 1;
                None
            }
        }
    }

    /// Sums the rejections counted since the last info line, if any, at
    /// `now` (a heartbeat, or the session's end); a new period starts then.
    pub fn flush(&mut self, now: Instant) -> Option<Summary> {
        let since = self.since?;
        if self.count == 0 {
            return None;
        }
        let summary = Summary::Since {
            count: self.count,
            over: now.duration_since(since),
        };
        self.since = Some(now);
        self.count = 0;
        Some(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first rejection is logged, the next ones only as one summary per period.
    #[test]
    fn rejections_are_summarised_per_period() {
        let mut tally = RejectTally::default();
        let start = Instant::now();
        assert_eq!(tally.count(start), Some(Summary::First));
        for ms in 1..100 {
            assert_eq!(tally.count(start + Duration::from_millis(ms)), None);
        }
        let due = start + Duration::from_secs(OUT_OF_CAPACITY_SUMMARY_EVERY_S);
        assert_eq!(
            tally.count(due),
            Some(Summary::Since {
                count: 100,
                over: Duration::from_secs(OUT_OF_CAPACITY_SUMMARY_EVERY_S)
            })
        );
        assert_eq!(tally.count(due + Duration::from_millis(1)), None);
    }

    /// The end of a burst is summed at the next flush (a heartbeat), not
    /// left until the next rejection; a flush with nothing pending is
    /// silent, and the tally goes on counting from the flush.
    #[test]
    fn a_burst_is_summed_when_flushed() {
        let mut tally = RejectTally::default();
        let start = Instant::now();
        assert_eq!(tally.flush(start), None, "nothing counted yet");
        assert_eq!(tally.count(start), Some(Summary::First));
        assert_eq!(
            tally.flush(start + Duration::from_millis(1)),
            None,
            "the first was logged"
        );
        for ms in 1..50 {
            assert_eq!(tally.count(start + Duration::from_millis(ms)), None);
        }
        let heartbeat = start + Duration::from_secs(3);
        assert_eq!(
            tally.flush(heartbeat),
            Some(Summary::Since {
                count: 49,
                over: Duration::from_secs(3)
            })
        );
        assert_eq!(tally.flush(heartbeat + Duration::from_secs(3)), None, "summed once");
        assert_eq!(
            tally.count(heartbeat + Duration::from_secs(4)),
            None,
            "counted in the new period"
        );
        let due = heartbeat + Duration::from_secs(OUT_OF_CAPACITY_SUMMARY_EVERY_S);
        assert_eq!(
            tally.count(due),
            Some(Summary::Since {
                count: 2,
                over: Duration::from_secs(OUT_OF_CAPACITY_SUMMARY_EVERY_S)
            })
        );
    }
}
