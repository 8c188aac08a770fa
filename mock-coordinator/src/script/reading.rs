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

    /// The slowest overlapping window wins.
    #[test]
    fn slow_reads() {
        let s = script();
        assert_eq!(s.slow_read_at_us(10_000), Some((5.0, 100_000)));
        assert_eq!(s.slow_read_at_us(55_000), Some((1.0, 60_000)));
        assert_eq!(s.slow_read_at_us(100_000), None);
    }
}
