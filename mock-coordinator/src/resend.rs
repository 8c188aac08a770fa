//! Re-sends (`[[coordinator.duplicates]]`) waiting to go out.
//!
//! A rule timed from the original's sending is due at once; one timed from
//! its terminal frame or its cancel is *armed* until that happens and then
//! becomes due. Both lists live in the [`crate::Log`] because the moments
//! that fire an armed re-send are seen by connection tasks (a terminal read,
//! a cancel written), while the driver sends them; and because the harness
//! must know that a re-send is still to come before it calls the world
//! settled ([`crate::Log::resends_pending`]).

use std::collections::BTreeMap;

use crate::script::ResendAfter;

/// A re-send waiting for its original's terminal frame or cancel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Armed {
    /// Index of the original in the log's jobs.
    pub record: usize,
    /// Index into `script.duplicates`.
    pub rule: usize,
    pub after: ResendAfter,
    pub delay_ms: u64,
}

/// A re-send whose time is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Due {
    pub record: usize,
    pub rule: usize,
    /// When the rule wanted it sent (it may be held back past this).
    pub scheduled_us: u64,
}

/// Armed and due re-sends. Each rule names one arrival index, so both lists
/// hold at most `script.duplicates.len()` entries.
#[derive(Default)]
pub(crate) struct Resends {
    armed: Vec<Armed>,
    /// By `(due_us, sequence)`: due order, insertion order on ties.
    due: BTreeMap<(u64, u64), Due>,
    next_seq: u64,
}

impl Resends {
    pub fn arm(&mut self, armed: Armed) {
        self.armed.push(armed);
    }

    pub fn schedule(&mut self, due_us: u64, due: Due) {
        self.due.insert((due_us, self.next_seq), due);
        self.next_seq += 1;
    }

    /// Makes the re-sends of `record` armed on `trigger` due, `delay_ms`
    /// after `at_us`.
    pub fn fire(&mut self, record: usize, trigger: ResendAfter, at_us: u64) {
        let (fired, kept): (Vec<Armed>, Vec<Armed>) = self
            .armed
            .drain(..)
            .partition(|a| a.record == record && a.after == trigger);
        self.armed = kept;
        for a in fired {
            let scheduled_us = at_us.saturating_add(a.delay_ms.saturating_mul(1000));
            let due = Due {
                record: a.record,
                rule: a.rule,
                scheduled_us,
            };
            self.schedule(scheduled_us, due);
        }
    }

    /// Drops the armed re-sends `dead` says can never fire; returns them.
    pub fn disarm(&mut self, mut dead: impl FnMut(&Armed) -> bool) -> Vec<Armed> {
        let (gone, kept): (Vec<Armed>, Vec<Armed>) = self.armed.drain(..).partition(|a| dead(a));
        self.armed = kept;
        gone
    }

    pub fn pop_due(&mut self, now_us: u64) -> Option<Due> {
        let (&key, _) = self.due.first_key_value()?;
        (key.0 <= now_us).then(|| self.due.remove(&key)).flatten()
    }

    pub fn next_due_us(&self) -> Option<u64> {
        self.due.first_key_value().map(|((due, _), _)| *due)
    }

    pub fn armed(&self) -> &[Armed] {
        &self.armed
    }

    /// Re-sends whose time is known but that have not gone out.
    pub fn due_count(&self) -> usize {
        self.due.len()
    }

    /// Forgets everything (a restarted coordinator: relative actions die
    /// with the instance that scheduled them). Returns how many were lost.
    pub fn clear(&mut self) -> usize {
        let lost = self.armed.len() + self.due.len();
        self.armed.clear();
        self.due.clear();
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Firing makes exactly the matching armed re-sends due, in due order.
    #[test]
    fn fire_moves_matching_armed() {
        let mut r = Resends::default();
        let armed = |record, rule, after, delay_ms| Armed {
            record,
            rule,
            after,
            delay_ms,
        };
        r.arm(armed(3, 0, ResendAfter::Terminal, 5));
        r.arm(armed(3, 1, ResendAfter::Cancel, 2));
        r.arm(armed(4, 2, ResendAfter::Terminal, 1));
        r.fire(3, ResendAfter::Terminal, 1_000);
        assert_eq!(r.armed().len(), 2);
        assert_eq!(r.next_due_us(), Some(6_000));
        assert_eq!(r.pop_due(5_999), None);
        let due = r.pop_due(6_000).unwrap();
        assert_eq!((due.record, due.rule, due.scheduled_us), (3, 0, 6_000));
        assert_eq!(r.due_count(), 0);
        let gone = r.disarm(|a| a.record == 4);
        assert_eq!(gone.len(), 1);
        assert_eq!(r.clear(), 1);
    }
}
