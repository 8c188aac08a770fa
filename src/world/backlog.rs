//! The listen backlog, kept within turmoil's limit. turmoil 0.7.2 gives every
//! listener a backlog of `tcp_capacity` SYNs — the same number as each
//! connection's buffer, with no way to set it apart — and panics when one
//! more arrives in a step ("server socket buffer full") instead of dropping
//! it as a kernel would. The mocks accept continuously, so the backlog is
//! empty at the start of every step (a host's tick runs until its tasks are
//! idle); what can still overflow it is a burst: more SYNs landing on one
//! listener in one step than it holds, as when a held link is released.
//!
//! A kernel whose backlog is full drops the SYN, and the client's kernel
//! sends it again after a back-off. [`SynLedger`] does that on the client's
//! side, in the agent's [`super::connector::TurmoilConnector`]: it counts
//! the SYNs in flight to each listener (from turmoil's in-flight messages,
//! refreshed before every step, plus those sent during the step), and a
//! connection attempt that would make them more than the backlog is dropped
//! and retried like a SYN the server dropped. With at most `tcp_capacity`
//! SYNs in flight to a listener, no step can deliver more than it holds.
//! Every dropped SYN is a `syn_dropped` event in the trace.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use turmoil::{Protocol, Segment, Sim};

/// SYNs in flight per listener, shared by the harness (which refreshes it
/// before each step) and the agent's connector (which reserves a place
/// before sending a SYN). The lock is held only for a lookup or an update.
#[derive(Clone, Debug)]
pub struct SynLedger {
    inner: Arc<Mutex<Ledger>>,
}

#[derive(Debug)]
struct Ledger {
    /// Most SYNs one listener holds: the scenario's `tcp_capacity`.
    backlog: usize,
    /// SYNs in flight per listener address: counted at the last refresh,
    /// plus those reserved since.
    in_flight: BTreeMap<SocketAddr, usize>,
}

impl SynLedger {
    /// A ledger for listeners with a backlog of `backlog` SYNs.
    pub fn new(backlog: usize) -> Self {
        debug_assert!(backlog > 0, "validation keeps tcp_capacity ≥ 1");
        Self {
            inner: Arc::new(Mutex::new(Ledger {
                backlog,
                in_flight: BTreeMap::new(),
            })),
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a place for one SYN to `dst`; false when the listener's backlog
    /// would overflow, and the SYN is to be treated as dropped.
    pub fn try_reserve(&self, dst: SocketAddr) -> bool {
        let mut ledger = self.ledger();
        let backlog = ledger.backlog;
        let count = ledger.in_flight.entry(dst).or_default();
        if *count >= backlog {
            return false;
        }
        *count += 1;
        true
    }

    /// Recounts the SYNs in flight from turmoil's network (held ones
    /// included). Skipped while none can be in flight, so a quiet network
    /// costs nothing.
    pub fn refresh(&self, sim: &Sim<'_>) {
        if self.ledger().in_flight.is_empty() {
            return;
        }
        let mut counted: BTreeMap<SocketAddr, usize> = BTreeMap::new();
        sim.links(|links| {
            for link in links {
                for sent in link {
                    if matches!(sent.protocol(), Protocol::Tcp(Segment::Syn(_))) {
                        *counted.entry(sent.pair().1).or_default() += 1;
                    }
                }
            }
        });
        self.ledger().in_flight = counted;
    }

    /// SYNs counted in flight to `ip:port` (for tests).
    pub fn in_flight(&self, ip: IpAddr, port: u16) -> usize {
        self.ledger()
            .in_flight
            .get(&SocketAddr::new(ip, port))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reservations stop at the backlog, per listener.
    #[test]
    fn reservations_stop_at_the_backlog() {
        let ledger = SynLedger::new(2);
        let a: SocketAddr = "10.0.0.1:9000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:8000".parse().unwrap();
        assert!(ledger.try_reserve(a));
        assert!(ledger.try_reserve(a));
        assert!(!ledger.try_reserve(a), "a third SYN would overflow a backlog of 2");
        assert!(ledger.try_reserve(b), "another listener has its own backlog");
        assert_eq!(ledger.in_flight(a.ip(), a.port()), 2);
    }
}
