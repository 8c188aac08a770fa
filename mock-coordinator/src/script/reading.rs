//! Read-side backpressure windows: pauses and slow reads.

use serde::{Deserialize, Serialize};

use super::Script;
use crate::clock::ms_to_us;

/// In `[start_ms, end_ms)` the coordinator does not poll the socket at all,
/// so the agent's writes fill the TCP buffers and block. Writing continues.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadPause {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// In `[start_ms, end_ms)` the coordinator reads at most `frames_per_sec`
/// WebSocket frames per second (it sleeps `1 / frames_per_sec` after each).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowRead {
    pub start_ms: u64,
    pub end_ms: u64,
    pub frames_per_sec: f64,
}

impl Script {
    /// If `now_us` lies in a read pause, when reading may resume (the
    /// latest end among the pauses containing `now_us`).
    pub fn read_pause_end_us(&self, now_us: u64) -> Option<u64> {
        self.read_pauses
            .iter()
            .map(|p| (ms_to_us(p.start_ms), ms_to_us(p.end_ms)))
            .filter(|(start, end)| *start <= now_us && now_us < *end)
            .map(|(_, end)| end)
            .max()
    }

    /// Start of the next read pause after `now_us`.
    pub fn next_read_pause_us(&self, now_us: u64) -> Option<u64> {
        self.read_pauses
            .iter()
            .map(|p| ms_to_us(p.start_ms))
            .filter(|start| *start > now_us)
            .min()
    }

    /// The earliest time `t >= from_us` such that `[from_us, t)` holds
    /// `reading_us` of time outside every read pause and slow read: the
    /// windows in which frames the agent sends are held up by the reader
    /// do not count.
    pub(crate) fn after_reading_us(&self, from_us: u64, reading_us: u64) -> u64 {
        let mut windows: Vec<(u64, u64)> = self
            .read_pauses
            .iter()
            .map(|p| (p.start_ms, p.end_ms))
            .chain(self.slow_reads.iter().map(|w| (w.start_ms, w.end_ms)))
            .map(|(start, end)| (ms_to_us(start), ms_to_us(end)))
            .filter(|&(_, end)| end > from_us)
            .collect();
        windows.sort_unstable();
        let (mut at_us, mut left_us) = (from_us, reading_us);
        for (start, end) in windows {
            if start > at_us {
                let free_us = start - at_us;
                if left_us <= free_us {
                    return at_us + left_us;
                }
                left_us -= free_us;
            }
            at_us = at_us.max(end);
        }
        at_us.saturating_add(left_us)
    }

    /// If `now_us` lies in a slow-read window: the lowest `frames_per_sec`
    /// among those containing it, and that window's end.
    pub fn slow_read_at_us(&self, now_us: u64) -> Option<(f64, u64)> {
        self.slow_reads
            .iter()
            .filter(|w| ms_to_us(w.start_ms) <= now_us && now_us < ms_to_us(w.end_ms))
            .map(|w| (w.frames_per_sec, ms_to_us(w.end_ms)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script() -> Script {
        Script {
            read_pauses: vec![
                ReadPause {
                    start_ms: 10,
                    end_ms: 20,
                },
                ReadPause {
                    start_ms: 15,
                    end_ms: 30,
                },
            ],
            slow_reads: vec![
                SlowRead {
                    start_ms: 0,
                    end_ms: 100,
                    frames_per_sec: 5.0,
                },
                SlowRead {
                    start_ms: 50,
                    end_ms: 60,
                    frames_per_sec: 1.0,
                },
            ],
            ..Script::default()
        }
    }

    /// Overlapping pauses resume at the latest end; the next pause is found.
    #[test]
    fn pauses() {
        let s = script();
        assert_eq!(s.read_pause_end_us(9_999), None);
        assert_eq!(s.read_pause_end_us(16_000), Some(30_000));
        assert_eq!(s.read_pause_end_us(30_000), None);
        assert_eq!(s.next_read_pause_us(0), Some(10_000));
        assert_eq!(s.next_read_pause_us(10_000), Some(15_000));
    }

    /// Reading time skips pauses and slow reads, overlapping ones once.
    #[test]
    fn reading_time_skips_windows() {
        let s = Script {
            read_pauses: vec![
                ReadPause {
                    start_ms: 10,
                    end_ms: 20,
                },
                ReadPause {
                    start_ms: 15,
                    end_ms: 30,
                },
            ],
            slow_reads: vec![SlowRead {
                start_ms: 40,
                end_ms: 50,
                frames_per_sec: 1.0,
            }],
            ..Script::default()
        };
        assert_eq!(s.after_reading_us(0, 5_000), 5_000);
        assert_eq!(s.after_reading_us(0, 10_000), 10_000);
        assert_eq!(s.after_reading_us(0, 15_000), 35_000);
        assert_eq!(s.after_reading_us(12_000, 10_000), 40_000);
        assert_eq!(s.after_reading_us(12_000, 11_000), 51_000);
        assert_eq!(s.after_reading_us(60_000, 0), 60_000);
    }

    /// The slowest overlapping window wins.
    #[test]
    fn slow_reads() {
        let s = script();
        assert_eq!(s.slow_read_at_us(10_000), Some((5.0, 100_000)));
        assert_eq!(s.slow_read_at_us(55_000), Some((1.0, 60_000)));
        assert_eq!(s.slow_read_at_us(100_000), None);
    }
}
