//! Discovery, the reconnect loop with backoff, and graceful shutdown.
//!
//! Each turn of the loop discovers backends afresh (so capabilities follow
//! what is actually running), runs one session to its end, then sleeps per
//! [`Backoff`]. A session that reached steady state resets the backoff;
//! failures before `auth_ok`, `auth_failed` included, escalate it.

use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::config::{AgentConfig, ConfigError};
use crate::deps::shutdown_requested;
pub use crate::deps::{AgentDeps, EnvLookup};
use crate::discovery::{BackendSetupError, build_backends, discover};
use crate::identity::Identity;
use crate::net::tls;
use crate::provider_id::ProviderIdError;
use crate::session::{self, SessionCtx, SessionEnd};
use crate::stats::Stats;

/// Why [`run`] returned an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Backend(#[from] BackendSetupError),
    #[error(transparent)]
    ProviderId(#[from] ProviderIdError),
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
    // A provider id from an earlier run: with it the agent logs in as that
    // provider and does not send its enrollment code again.
    let mut provider_id = deps.provider_ids.load()?;
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
            backends: &backends,
            stats: &stats,
            clock: &deps.clock,
            observer: &deps.observer,
            provider_ids: &deps.provider_ids,
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
