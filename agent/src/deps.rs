//! What the agent takes from its caller: network, wall clock, RNG seed,
//! shutdown signal, environment and where to persist its provider id. The
//! agent owns no source of nondeterminism of its own.

use std::sync::Arc;

use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::net::SharedConnector;
use crate::observer::SharedObserver;
use crate::provider_id::SharedProviderIdStore;

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
    /// Where the `provider_id` from `auth_ok` is kept across restarts: a
    /// file beside the key in production
    /// ([`crate::provider_id::FileStore`]).
    pub provider_ids: SharedProviderIdStore,
}

/// Resolves when shutdown is requested; never, if the sender is gone.
pub(crate) async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|down| *down).await.is_err() {
        std::future::pending::<()>().await;
    }
}
