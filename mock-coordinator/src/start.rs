//! When the script's clock starts: [`StartOn`], and the [`TimeZero`] that
//! turns the caller's clock into script time.
//!
//! By default script time zero is the caller's clock zero (the simulation's
//! start, or the binary's start-up). A real agent takes a second or two to
//! start, hash its key and log in, so a script timed from process start
//! finds no session for its first jobs and records them as
//! `undeliverable`. With [`StartOn::FirstSession`] time zero is the moment
//! the first connection reaches the steady state (`auth_ok` written and
//! the session registered): the job driver does not run before it, and
//! every `*_us` of the record counts from it. simctl's live mode, which
//! runs real agent binaries, needs the same.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use crate::clock::Clock;

/// When script time zero is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartOn {
    /// The caller's clock zero: the simulation's start, or the binary's
    /// start-up. What [`crate::Coordinator::new`] uses.
    #[default]
    ClockZero,
    /// The moment the first connection reaches the steady state. Readings
    /// before it (the first handshake's frames and session record) are 0.
    FirstSession,
}

/// Sentinel of [`TimeZero::zero_us`] while zero is not set.
const UNSET: u64 = u64::MAX;

/// Script time zero on the caller's (base) clock.
///
/// Concurrency: shared by the coordinator (which sets it when a session
/// registers), its script clock (which reads it on every call) and the job
/// driver task (which waits for it). Set at most once, by a compare-and-swap,
/// so two sessions registering at once cannot both set it.
pub(crate) struct TimeZero {
    base: Clock,
    /// Base-clock microseconds that are script time zero; `UNSET` before.
    zero_us: AtomicU64,
    /// Becomes true once zero is set; the driver waits on it.
    set: watch::Sender<bool>,
}

impl TimeZero {
    /// Zero at `restored` (a restarted coordinator continues its
    /// predecessor's zero), else at the base clock's zero for
    /// [`StartOn::ClockZero`], else unset.
    pub(crate) fn new(base: Clock, start: StartOn, restored: Option<u64>) -> Arc<TimeZero> {
        let zero = match (restored, start) {
            (Some(zero), _) => zero,
            (None, StartOn::ClockZero) => 0,
            (None, StartOn::FirstSession) => UNSET,
        };
        Arc::new(TimeZero {
            base,
            zero_us: AtomicU64::new(zero),
            set: watch::Sender::new(zero != UNSET),
        })
    }

    /// Base-clock microseconds of script time zero, once set.
    pub(crate) fn zero_us(&self) -> Option<u64> {
        let zero = self.zero_us.load(Ordering::SeqCst);
        (zero != UNSET).then_some(zero)
    }

    /// Sets zero to now unless it is set; returns it when this call set it.
    pub(crate) fn arm(&self) -> Option<u64> {
        let now = (self.base)();
        let swapped = self
            .zero_us
            .compare_exchange(UNSET, now, Ordering::SeqCst, Ordering::SeqCst);
        swapped.ok().map(|_| {
            self.set.send_replace(true);
            now
        })
    }

    /// Resolves once zero is set (at once if it is).
    pub(crate) async fn wait(&self) {
        let mut set = self.set.subscribe();
        // The sender lives in `self`, so the wait cannot fail while it runs.
        let _ = set.wait_for(|s| *s).await;
    }

    /// The script clock: microseconds since zero, 0 before zero is set.
    /// For [`StartOn::ClockZero`] this is the base clock itself.
    pub(crate) fn script_clock(self: &Arc<Self>) -> Clock {
        if self.zero_us() == Some(0) {
            return self.base.clone();
        }
        let zero = self.clone();
        Arc::new(move || {
            let at = zero.zero_us.load(Ordering::SeqCst);
            if at == UNSET {
                0
            } else {
                (zero.base)().saturating_sub(at)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manual_clock() -> (Clock, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(0));
        let read = now.clone();
        (Arc::new(move || read.load(Ordering::SeqCst)), now)
    }

    /// The default start is the base clock, unchanged.
    #[test]
    fn clock_zero_is_the_base_clock() {
        let (base, now) = manual_clock();
        let zero = TimeZero::new(base, StartOn::ClockZero, None);
        now.store(1234, Ordering::SeqCst);
        assert_eq!((zero.script_clock())(), 1234);
        assert_eq!(zero.zero_us(), Some(0));
        assert_eq!(zero.arm(), None, "already set");
    }

    /// On first session the script clock reads 0 until armed, then counts
    /// from the arming; a second arm changes nothing.
    #[test]
    fn first_session_counts_from_the_arm() {
        let (base, now) = manual_clock();
        let zero = TimeZero::new(base, StartOn::FirstSession, None);
        let clock = zero.script_clock();
        now.store(1_500_000, Ordering::SeqCst);
        assert_eq!(clock(), 0);
        assert_eq!(zero.zero_us(), None);
        assert_eq!(zero.arm(), Some(1_500_000));
        now.store(1_700_000, Ordering::SeqCst);
        assert_eq!(clock(), 200_000);
        assert_eq!(zero.arm(), None);
        assert_eq!(zero.zero_us(), Some(1_500_000));
    }

    /// A restarted coordinator keeps its predecessor's zero.
    #[test]
    fn restored_zero_wins() {
        let (base, now) = manual_clock();
        let zero = TimeZero::new(base, StartOn::FirstSession, Some(300));
        now.store(1300, Ordering::SeqCst);
        assert_eq!((zero.script_clock())(), 1000);
    }
}
