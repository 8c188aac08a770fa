//! Periodic rediscovery in steady state (protocol.md **(ext)**).
//!
//! A session can last days. A backend still loading its weights when the
//! session began, or one started later, must be advertised once it serves;
//! one that went away must stop being advertised. Every
//! `session.discovery_interval_ms` the backends are probed again, off the
//! read loop; when the set of served models (with their prices, backends and
//! context windows) changed, the executor routes by the new table and a new
//! `capabilities` frame goes out.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::time::{Duration, Instant, Interval, MissedTickBehavior, interval_at};

use crate::config::AgentConfig;
use crate::discovery::{ConfiguredBackend, Routes, discover};
use crate::protocol::ModelCapability;

/// One rediscovery in progress.
type Probe<'a> = Pin<Box<dyn Future<Output = Routes> + Send + 'a>>;

/// Runs rediscoveries on a fixed period, one at a time.
pub(super) struct Rediscovery<'a> {
    backends: &'a [ConfiguredBackend],
    config: &'a AgentConfig,
    tick: Interval,
    /// The probe in progress. Kept here, not in the future [`Self::next`]
    /// returns, so that the read loop's `select!` can drop that future at
    /// any time without abandoning a probe halfway.
    running: Option<Probe<'a>>,
    /// What the coordinator was last told.
    advertised: Vec<ModelCapability>,
}

impl<'a> Rediscovery<'a> {
    pub(super) fn new(backends: &'a [ConfiguredBackend], config: &'a AgentConfig, routes: &Routes) -> Self {
        let period = Duration::from_millis(config.session.discovery_interval_ms);
        let mut tick = interval_at(Instant::now() + period, period);
        // A probe slower than the period delays the next one instead of
        // starting a burst of catch-up probes.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            backends,
            config,
            tick,
            running: None,
            advertised: routes.capabilities(config.limits.max_concurrent),
        }
    }

    /// Resolves with the routing table of the next rediscovery whose served
    /// set differs from what was last advertised (and records it as
    /// advertised). Cancel-safe.
    pub(super) async fn next(&mut self) -> Arc<Routes> {
        loop {
            if let Some(probe) = self.running.as_mut() {
                let routes = probe.await;
                self.running = None;
                let capabilities = routes.capabilities(self.config.limits.max_concurrent);
                if capabilities != self.advertised {
                    tracing::info!(
                        before = self.advertised.len(),
                        after = capabilities.len(),
                        "served models changed; re-sending capabilities"
                    );
                    self.advertised = capabilities;
                    return Arc::new(routes);
                }
                tracing::debug!(models = capabilities.len(), "rediscovery: served models unchanged");
            }
            self.tick.tick().await;
            self.running = Some(Box::pin(discover(self.backends, self.config)));
        }
    }
}
