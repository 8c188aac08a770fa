//! One coordinator session: connect, handshake, then steady state until the
//! connection fails, stalls, goes idle, or the agent shuts down.
//!
//! - [`handshake`]: connect and authenticate, each step under a timeout.
//! - [`writer`]: the task that drains the board into the socket.
//! - [`steady`]: the read loop, heartbeats, pings and the idle timeout.
//! - `rediscovery`: periodic rediscovery and `capabilities` re-sends.
//!
//! Tasks of a session: the session task itself (reads, dispatches, ticks),
//! one writer task (owned through its `JoinHandle`, aborted at teardown) and
//! one task per job (owned by a `JoinSet`, aborted at teardown). When this
//! module's [`run`] returns, every job of the session has lost its slot and
//! every job task has been joined, so the next session starts clean.

pub mod handshake;
mod rediscovery;
mod steady;
pub mod writer;

use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::time::Duration;
use tokio_tungstenite::WebSocketStream;
use tracing::{info, warn};

use crate::clock::SharedClock;
use crate::config::AgentConfig;
use crate::discovery::{ConfiguredBackend, Routes};
use crate::identity::Identity;
use crate::net::{BoxStream, SharedConnector};
use crate::observer::{AgentEvent, SharedObserver};
use crate::protocol::{Limits, Metadata, Outbound};
use crate::provider_id::SharedProviderIdStore;
use crate::stats::Stats;

/// The coordinator WebSocket over whatever stream the connector gave.
pub type WsStream = WebSocketStream<BoxStream>;

/// Why a session could not start or had to end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("connect failed: {0}")]
    Connect(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("handshake failed: {0}")]
    PreAuth(String),
    #[error("coordinator rejected authentication: {0}")]
    AuthFailed(String),
    #[error("connection error: {0}")]
    Io(String),
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The session never reached steady state.
    Failed(SessionError),
    /// The session reached steady state and later ended for `reason`.
    Ended { reason: String },
    /// Graceful shutdown completed.
    Shutdown,
}

/// What a session needs from the run loop. Borrowed for the session's life.
pub struct SessionCtx<'a> {
    pub config: &'a AgentConfig,
    pub identity: &'a Identity,
    pub connector: &'a SharedConnector,
    pub tls: &'a Arc<rustls::ClientConfig>,
    pub routes: Arc<Routes>,
    /// The backends, probed again every `session.discovery_interval_ms`.
    pub backends: &'a [ConfiguredBackend],
    pub stats: &'a Arc<Mutex<Stats>>,
    pub clock: &'a SharedClock,
    pub observer: &'a SharedObserver,
    /// Where a new `provider_id` from `auth_ok` is persisted.
    pub provider_ids: &'a SharedProviderIdStore,
    /// Numbers sessions for events and logs.
    pub session: u64,
}

/// Runs one session to its end.
pub async fn run(
    ctx: SessionCtx<'_>,
    provider_id: &mut Option<String>,
    shutdown: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let session_cfg = &ctx.config.session;
    let step = Duration::from_millis(session_cfg.handshake_step_timeout_ms);
    let connect_timeout = Duration::from_millis(session_cfg.connect_timeout_ms);
    let start = async {
        let mut ws = handshake::connect(
            &ctx.config.coordinator.url,
            ctx.connector.as_ref(),
            ctx.tls,
            connect_timeout,
        )
        .await?;
        let known = provider_id.clone();
        let creds = handshake::Credentials {
            identity: ctx.identity,
            enrollment_code: ctx.config.coordinator.enrollment_code.as_deref(),
            provider_id,
        };
        handshake::authenticate(&mut ws, creds, step).await?;
        persist_provider_id(&ctx, known.as_deref(), provider_id.as_deref());
        handshake::send(&mut ws, capabilities(ctx.config, &ctx.routes).to_text(), step).await?;
        Ok::<_, SessionError>(ws)
    };
    let ws = tokio::select! {
        biased;
        _ = crate::deps::shutdown_requested(shutdown) => return SessionEnd::Shutdown,
        started = start => match started {
            Ok(ws) => ws,
            Err(err) => {
                warn!(session = ctx.session, %err, "session failed before steady state");
                return SessionEnd::Failed(err);
            }
        },
    };
    info!(session = ctx.session, "session in steady state");
    ctx.observer
        .on_event(AgentEvent::SessionStarted { session: ctx.session });
    let end = steady::run(ws, &ctx, shutdown).await;
    let reason = match &end {
        SessionEnd::Ended { reason } => reason.clone(),
        SessionEnd::Shutdown => "shutdown".into(),
        SessionEnd::Failed(err) => err.to_string(),
    };
    info!(session = ctx.session, %reason, "session ended");
    ctx.observer.on_event(AgentEvent::SessionEnded {
        session: ctx.session,
        reason,
    });
    end
}

/// Persists a provider id that `auth_ok` granted or changed, at once: a
/// crash a moment later must not make the next incarnation enroll again. A
/// failure is logged, not fatal: this process still knows the id.
fn persist_provider_id(ctx: &SessionCtx<'_>, known: Option<&str>, granted: Option<&str>) {
    let Some(granted) = granted.filter(|id| Some(*id) != known) else {
        return;
    };
    match ctx.provider_ids.store(granted) {
        Ok(()) => info!(provider_id = granted, "provider id persisted"),
        Err(err) => warn!(%err, "cannot persist the provider id; a restart will enroll again"),
    }
}

/// The `capabilities` frame: routes in model order, one priority order for
/// routing and advertising alike (both come from the same [`Routes`]).
fn capabilities(config: &AgentConfig, routes: &Routes) -> Outbound {
    let limits = &config.limits;
    Outbound::Capabilities {
        models: routes.capabilities(limits.max_concurrent),
        limits: Limits {
            max_concurrent_total: limits.max_concurrent,
            max_tokens_per_minute: limits.max_tokens_per_minute,
        },
        metadata: Metadata {
            agent_version: crate::AGENT_VERSION.to_string(),
        },
    }
}
