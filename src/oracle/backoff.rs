//! The reconnection bound of one disruption, derived from the agent's
//! reconnect schedule (protocol.md: exponential backoff from
//! `backoff_initial_ms`, doubling to `backoff_max_ms`, each sleep jittered
//! by a factor in [0.8, 1.2)) and from how long the disruption lasted.
//!
//! After a disruption that began at `since` heals at `healed`, the agent is
//! in one of three states, and the bound covers the worst:
//! - it has not noticed yet (a partition shorter than its idle timeout): it
//!   notices by `since + idle_timeout_ms + RTT`, then sleeps once;
//! - it is sleeping: at most the sleep in progress, `1.2 × base(k − 1)`,
//!   where `k` is the most sleeps that can have begun since `since`, each
//!   taking at least `0.8 × base(j)`;
//! - an attempt is wedged (its connect or handshake lost in the partition):
//!   at most `attempt_wedged_ms`, then the sleep after it, again at most
//!   `1.2 × base(k − 1)` (that attempt followed sleep `k − 2`).
//!
//! Then one attempt on the healed network: discovery, connect and handshake
//! take `attempt_ms` (a few round trips, plus the backends' health delays),
//! and up to `discovery_stall_ms` more while a backend is itself cut off.

use serde::Serialize;

/// Lower bound of the backoff jitter factor.
const JITTER_MIN: f64 = 0.8;
/// Upper bound of the backoff jitter factor.
const JITTER_MAX: f64 = 1.2;
/// Most backoff steps considered (the schedule is capped long before).
const STEPS_MAX: u32 = 64;

/// The agent's reconnect schedule, in simulated milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ReconnectSchedule {
    /// `session.idle_timeout_ms`: the latest a dead session is noticed.
    pub idle_timeout_ms: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// The longest an attempt started during the disruption can hang: its
    /// connect, or the one handshake step that hangs and fails it
    /// (`max(connect_timeout_ms, handshake_step_timeout_ms)`).
    pub attempt_wedged_ms: u64,
    /// One attempt on a healthy network: discovery, connect, handshake.
    pub attempt_ms: u64,
    /// Extra discovery time while a backend is cut off (its probes time out).
    pub discovery_stall_ms: u64,
    /// One network round trip at the scenario's worst latency.
    pub round_trip_ms: u64,
}

impl ReconnectSchedule {
    /// The shortest sleep of backoff step `step` (0-based): the agent
    /// truncates its jittered sleep to whole milliseconds, so one less.
    pub fn sleep_min_ms(&self, step: u32) -> u64 {
        ((JITTER_MIN * self.base_ms(step) as f64).floor() as u64).saturating_sub(1)
    }

    /// The longest sleep of backoff step `step` (0-based).
    pub fn sleep_max_ms(&self, step: u32) -> u64 {
        (JITTER_MAX * self.base_ms(step) as f64).ceil() as u64
    }

    /// Base (unjittered) sleep of backoff step `step` (0-based).
    fn base_ms(&self, step: u32) -> u64 {
        let doubled = self.backoff_initial_ms.saturating_mul(1_u64 << step.min(STEPS_MAX - 1));
        doubled.min(self.backoff_max_ms)
    }

    /// How many sleeps can have begun within `elapsed_ms`: sleeps 0..k-1
    /// together last at least `0.8 × Σ base(j)`.
    fn sleeps_begun(&self, elapsed_ms: u64) -> u32 {
        let mut used_ms = 0.0;
        for step in 0..STEPS_MAX {
            if used_ms > elapsed_ms as f64 {
                return step;
            }
            used_ms += JITTER_MIN * self.base_ms(step) as f64;
        }
        STEPS_MAX
    }

    /// Milliseconds after `healed_ms` by which the agent is in steady state
    /// again, for a disruption that began at `since_ms`; `backend_cut` adds
    /// the discovery stall.
    pub fn bound_ms(&self, since_ms: u64, healed_ms: u64, backend_cut: bool) -> u64 {
        let elapsed_ms = healed_ms.saturating_sub(since_ms);
        // The sleep in progress, or the one after an attempt in progress,
        // is the last that can have begun.
        let step = self.sleeps_begun(elapsed_ms).saturating_sub(1);
        let sleep_ms = (JITTER_MAX * self.base_ms(step) as f64).ceil() as u64;
        let noticed_by_ms = since_ms + self.idle_timeout_ms + self.round_trip_ms;
        let not_noticed_ms = noticed_by_ms.saturating_sub(healed_ms);
        let stall_ms = if backend_cut { self.discovery_stall_ms } else { 0 };
        not_noticed_ms.max(self.attempt_wedged_ms) + sleep_ms + self.attempt_ms + stall_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> ReconnectSchedule {
        ReconnectSchedule {
            idle_timeout_ms: 6_000,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 4_000,
            attempt_wedged_ms: 10_000,
            attempt_ms: 100,
            discovery_stall_ms: 10_000,
            round_trip_ms: 10,
        }
    }

    /// A disruption healing at once allows one wedged attempt, one sleep of step 0 and one attempt.
    #[test]
    fn an_instant_disruption_allows_one_step() {
        assert_eq!(schedule().bound_ms(5_000, 5_000, false), 10_000 + 1_200 + 100);
    }

    /// A long disruption reaches the capped sleep, never beyond.
    #[test]
    fn a_long_disruption_reaches_the_cap() {
        let s = schedule();
        assert_eq!(s.bound_ms(0, 600_000, false), 10_000 + 4_800 + 100);
        assert_eq!(s.bound_ms(0, 600_000, true), 10_000 + 4_800 + 100 + 10_000);
    }

    /// Steps begin no faster than the shortest jittered sleeps allow.
    #[test]
    fn steps_follow_the_shortest_sleeps() {
        let s = schedule();
        assert_eq!(s.sleeps_begun(0), 1);
        // 0.8 s, then 1.6 s: the third sleep cannot begin before 2.4 s.
        assert_eq!(s.sleeps_begun(2_399), 2);
        assert_eq!(s.sleeps_begun(2_401), 3);
    }

    /// An agent that cannot have noticed yet may take its idle timeout first.
    #[test]
    fn an_unnoticed_disruption_waits_for_the_idle_timeout() {
        let s = ReconnectSchedule {
            attempt_wedged_ms: 0,
            ..schedule()
        };
        assert_eq!(s.bound_ms(0, 1_000, false), 5_010 + 2_400 + 100);
    }
}
