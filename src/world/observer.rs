//! Records the agent's observer events with their simulated time.

use std::sync::{Arc, Mutex, MutexGuard};

use provider_agent::observer::{AgentEvent, Observer};

use super::clock::sim_now_us;

/// Most agent events kept per run; later ones are counted, and the trace
/// says how many were dropped (the oracle then fails the run).
pub const AGENT_EVENTS_MAX: usize = 4_000_000;

/// The recorded events and the count of those dropped past the bound.
#[derive(Default)]
struct Recorded {
    events: Vec<(u64, AgentEvent)>,
    dropped: u64,
}

/// Collects `(at_us, event)` from every incarnation of the agent.
///
/// Concurrency: the agent calls `on_event` from its tasks (with its own
/// executor lock held); the `Mutex` is taken only to push one event and by
/// the harness to copy the list out after the run, never across an
/// `.await`.
#[derive(Clone, Default)]
pub struct AgentRecorder {
    recorded: Arc<Mutex<Recorded>>,
}

impl AgentRecorder {
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        // A panic while pushing cannot leave a half-written event behind.
        self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every event kept, in the order the agent reported them.
    pub fn events(&self) -> Vec<(u64, AgentEvent)> {
        self.lock().events.clone()
    }

    /// Events dropped because [`AGENT_EVENTS_MAX`] was reached.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

impl Observer for AgentRecorder {
    fn on_event(&self, event: AgentEvent) {
        let at_us = sim_now_us();
        let mut recorded = self.lock();
        if recorded.events.len() < AGENT_EVENTS_MAX {
            recorded.events.push((at_us, event));
        } else {
            recorded.dropped += 1;
        }
    }
}
