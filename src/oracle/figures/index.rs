//! The outcomes the agent may have recorded, indexed by the earliest time it
//! can have recorded each, so that a heartbeat looks only at the outcomes
//! near it. Scanning every outcome for every heartbeat made
//! `heartbeat_figures_truthful` cost heartbeats × jobs: a one-hour soak spent
//! a fifth of its run judging, most of it here.
//!
//! Every query returns exactly what a scan of all entries would, in the
//! entries' own order (the order of the job sends), because an entry's
//! recording interval is at most [`Index::spread_us`] long: an entry whose
//! earliest time lies further back than that cannot reach the window.

use std::ops::Range;

use super::{Entry, Outcome, WINDOW_MS};

/// Positions into the entries, each list sorted by earliest recording time.
pub(super) struct Index<'a> {
    entries: &'a [Entry],
    all: Vec<usize>,
    /// The `job_error` outcomes only.
    errors: Vec<usize>,
    /// The outcomes recorded unseen (cancelled or lost), only.
    unknown: Vec<usize>,
    /// The longest recording interval of any entry.
    spread_us: u64,
}

impl<'a> Index<'a> {
    pub(super) fn new(entries: &'a [Entry]) -> Self {
        let by_earliest = |keep: &dyn Fn(&Outcome) -> bool| {
            let mut list: Vec<usize> = (0..entries.len()).filter(|&i| keep(&entries[i].outcome)).collect();
            list.sort_by_key(|&i| (entries[i].recorded_us.0, i));
            list
        };
        let spread_us = entries
            .iter()
            .map(|e| e.recorded_us.1.saturating_sub(e.recorded_us.0))
            .max()
            .unwrap_or(0);
        Self {
            entries,
            all: by_earliest(&|_| true),
            errors: by_earliest(&|o| matches!(o, Outcome::Error { .. })),
            unknown: by_earliest(&|o| matches!(o, Outcome::Unknown)),
            spread_us,
        }
    }

    fn earliest(&self, i: usize) -> u64 {
        self.entries[i].recorded_us.0
    }

    fn latest(&self, i: usize) -> u64 {
        self.entries[i].recorded_us.1
    }

    /// The part of `list` whose earliest times lie in `from_us..=to_us`.
    fn span(&self, list: &[usize], from_us: u64, to_us: u64) -> Range<usize> {
        let lo = list.partition_point(|&i| self.earliest(i) < from_us);
        let hi = list.partition_point(|&i| self.earliest(i) <= to_us);
        lo..hi.max(lo)
    }

    /// In their own order, every entry that can be surely or possibly in
    /// the window of a snapshot taken at `snapshot_us` at the earliest and
    /// read at `read_us` (a superset: the caller applies the exact tests).
    pub(super) fn near(&self, snapshot_us: u64, read_us: u64) -> Vec<&'a Entry> {
        // Possibly in needs `latest + window >= snapshot`, surely in needs
        // `earliest >= read - window`; both imply the bound below.
        let from_us = snapshot_us.saturating_sub(WINDOW_MS * 1_000 + self.spread_us);
        let mut found = self.all[self.span(&self.all, from_us, read_us)].to_vec();
        found.sort_unstable();
        found.into_iter().map(|i| &self.entries[i]).collect()
    }

    /// The earliest time of the latest `job_error` of this process (recorded
    /// at or after `born_us`) surely recorded by `snapshot_us`: every error
    /// or unknown outcome surely recorded before it is superseded.
    pub(super) fn last_sure_error_us(&self, born_us: u64, snapshot_us: u64) -> Option<u64> {
        let end = self.errors.partition_point(|&i| self.earliest(i) <= snapshot_us);
        for &i in self.errors[..end].iter().rev() {
            if self.earliest(i).saturating_add(self.spread_us) < born_us {
                break;
            }
            if (born_us..=snapshot_us).contains(&self.latest(i)) {
                return Some(self.earliest(i));
            }
        }
        None
    }

    /// The outcomes possibly recorded by `read_us` and not before
    /// `threshold_us` (the process's birth, or the latest error surely
    /// recorded, whichever is later): the codes of the `job_error`s among
    /// them, in their own order, and whether any was recorded unseen.
    pub(super) fn not_superseded(&self, threshold_us: u64, read_us: u64) -> (Vec<&'a str>, bool) {
        let from_us = threshold_us.saturating_sub(self.spread_us);
        let mut errors: Vec<usize> = self.errors[self.span(&self.errors, from_us, read_us)]
            .iter()
            .copied()
            .filter(|&i| self.latest(i) >= threshold_us)
            .collect();
        errors.sort_unstable();
        let codes = errors
            .into_iter()
            .filter_map(|i| match &self.entries[i].outcome {
                Outcome::Error { code } => Some(&**code),
                _ => None,
            })
            .collect();
        let end = self.unknown.partition_point(|&i| self.earliest(i) <= read_us);
        let unknown = self.unknown[..end]
            .iter()
            .rev()
            .take_while(|&&i| self.earliest(i).saturating_add(self.spread_us) >= threshold_us)
            .any(|&i| self.latest(i) >= threshold_us);
        (codes, unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries with scattered recording intervals, some long, of every kind.
    fn entries() -> Vec<Entry> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        (0..400)
            .map(|_| {
                let earliest = next(400_000_000);
                let spread = if next(10) == 0 {
                    next(90_000_000)
                } else {
                    next(2_000_000)
                };
                let outcome = match next(3) {
                    0 => Outcome::Error {
                        code: format!("code{}", next(4)).into(),
                    },
                    1 => Outcome::Unknown,
                    _ => Outcome::Done {
                        latency_ms: (1.0, 1.0),
                        rate: (1.0, 1.0),
                    },
                };
                Entry {
                    recorded_us: (earliest, earliest + spread),
                    outcome,
                }
            })
            .collect()
    }

    /// The scan the index replaces: superseded outcomes by pairwise test.
    fn last_error_by_scan(entries: &[Entry], born: u64, snapshot: u64, read: u64) -> (bool, Vec<&str>, bool) {
        let errors: Vec<&Entry> = (entries.iter())
            .filter(|e| e.recorded_us.1 >= born && e.recorded_us.0 <= read)
            .filter(|e| !matches!(e.outcome, Outcome::Done { .. }))
            .collect();
        let sure_error = |e: &Entry| matches!(e.outcome, Outcome::Error { .. }) && e.recorded_us.1 <= snapshot;
        let (mut allowed, mut any) = (Vec::new(), false);
        for e in &errors {
            if errors
                .iter()
                .any(|l| sure_error(l) && l.recorded_us.0 > e.recorded_us.1)
            {
                continue;
            }
            match &e.outcome {
                Outcome::Error { code } => allowed.push(&**code),
                _ => any = true,
            }
        }
        (!errors.iter().any(|e| sure_error(e)), allowed, any)
    }

    #[test]
    fn queries_return_what_a_scan_of_every_entry_returns() {
        let entries = entries();
        let index = Index::new(&entries);
        for step in 0..200_u64 {
            let read = step * 2_000_000;
            let snapshot = read.saturating_sub(300_000);
            for born in [0, read / 2, snapshot] {
                let window = WINDOW_MS * 1_000;
                let near: Vec<*const Entry> = index
                    .near(snapshot, read)
                    .into_iter()
                    .map(|e| e as *const Entry)
                    .collect();
                for e in &entries {
                    let (earliest, latest) = e.recorded_us;
                    let may =
                        earliest <= read && (earliest >= read.saturating_sub(window) || latest + window >= snapshot);
                    assert!(
                        !may || near.contains(&(e as *const Entry)),
                        "an entry that can be in the window was left out"
                    );
                }
                let last = index.last_sure_error_us(born, snapshot);
                let (allowed, any) = index.not_superseded(born.max(last.unwrap_or(0)), read);
                assert_eq!(
                    (last.is_none(), allowed, any),
                    last_error_by_scan(&entries, born, snapshot, read)
                );
            }
        }
    }
}
