//! Discovery, the reconnect loop with backoff, and graceful shutdown.
//!
//! Each turn of the loop discovers backends afresh (so capabilities follow
//! what is actually running), runs one session to its end, then sleeps per
//! [`Backoff`]. A session that reached steady state resets the backoff;
//! failures before `auth_ok`, `auth_failed` included, escalate it.

use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::clock::SharedClock;
use crate::config::{AgentConfig, ConfigError};
use crate::discovery::{BackendSetupError, build_backends, discover};
use crate::identity::Identity;
use crate::net::{SharedConnector, tls};
use crate::observer::SharedObserver;
use crate::session::{self, SessionCtx, SessionEnd};
use crate::stats::Stats;

/// Looks up an environment variable (API keys of BYOK backends). Injected so
/// tests and the simulation decide what the agent sees.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Everything the agent takes from its caller.
#[derive(Clone)]
pub struct AgentDeps {
    /// Opens byte streams to the coordinator and to backends.
    pub connector: SharedConnector,
    /// Wall clock for `heartbeat.last_error_at`.
    pub clock: SharedClock,
    /// Seeds the agent's one RNG (reconnect jitter).
    pub rng_seed: u64,
    /// Becomes `true` when the agent must shut down gracefully. If the
    /// sender is dropped, the agent runs until its task is dropped.
    pub shutdown: watch::Receiver<bool>,
    /// Receives internal events (a harness); production passes a no-op.
    pub observer: SharedObserver,
    /// Environment lookup for `api_key_env`.
    pub env: EnvLookup,
    /// Permits `ws://` and `http://` (tests, the simulation, `--allow-insecure`).
    pub allow_insecure: bool,
}

/// Why [`run`] returned an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Backend(#[from] BackendSetupError),
}

/// Resolves when shutdown is requested; never, if the sender is gone.
pub(crate) async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|down| *down).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs the agent until `deps.shutdown` turns `true`.
pub async fn run(config: AgentConfig, identity: Identity, deps: AgentDeps) -> Result<(), AgentError> {
    config.validate(deps.allow_insecure)?;
    let tls_config = tls::client_config_webpki();
    let backends = build_backends(&config, deps.connector.clone(), tls_config.clone(), &deps.env)?;
    let stats = Arc::new(Mutex::new(Stats::default()));
    let mut rng = ChaCha8Rng::seed_from_u64(deps.rng_seed);
    let mut backoff = Backoff::new(config.session.backoff_initial_ms, config.session.backoff_max_ms);
    let mut shutdown = deps.shutdown.clone();
    let mut provider_id: Option<String> = None;
    for session in 1u64.. {
        let routes = tokio::select! {
            biased;
            _ = shutdown_requested(&mut shutdown) => return Ok(()),
            routes = discover(&backends, &config) => Arc::new(routes),
        };
        info!(session, models = routes.len(), "discovery done");
        let ctx = SessionCtx {
            config: &config,
            identity: &identity,
            connector: &deps.connector,
            tls: &tls_config,
            routes,
            stats: &stats,
            clock: &deps.clock,
            observer: &deps.observer,
            session,
        };
        match session::run(ctx, &mut provider_id, &mut shutdown).await {
            SessionEnd::Shutdown => return Ok(()),
            SessionEnd::Ended { .. } => backoff.reset(),
            SessionEnd::Failed(err) => warn!(%err, "escalating reconnect backoff"),
        }
        let sleep = backoff.next_sleep(&mut rng);
        info!(sleep_ms = sleep.as_millis() as u64, "reconnecting after backoff");
        tokio::select! {
            biased;
            _ = shutdown_requested(&mut shutdown) => return Ok(()),
            _ = tokio::time::sleep(sleep) => {}
        }
    }
    Ok(())
}
