//! The provider agent: keeps one WebSocket to a marketplace coordinator,
//! runs the jobs it receives against local OpenAI-compatible servers (or BYOK
//! upstreams) and streams the response bytes back.
//!
//! Module map, in the order a job flows through them:
//!
//! - [`config`]: `agent.toml`, typed and validated.
//! - [`identity`]: the Ed25519 key that signs the handshake nonce.
//! - [`net`]: the caller-supplied [`net::Connector`], plus TLS on top of it.
//! - [`backend`]: the [`backend::Backend`] trait and the OpenAI-compatible
//!   adapter (vLLM, llama.cpp, LM Studio, Ollama, OpenRouter, Venice).
//! - [`discovery`]: health → model list → allow-list → pricing → routes.
//! - [`protocol`]: typed wire frames and the hot-path `job_chunk` encoder.
//! - [`executor`]: admission, capacity, cancel, deadlines, exactly one
//!   terminal frame per job; the outbound queue it shares with the session.
//! - [`session`]: one WebSocket session: handshake, read loop, writer,
//!   heartbeats, pings, write and idle timeouts.
//! - [`stats`]: the sliding-window figures a heartbeat carries.
//! - [`run`]: discovery, reconnect with backoff ([`backoff`]), graceful
//!   shutdown.
//! - [`deps`]: what the caller supplies ([`deps::AgentDeps`]).
//! - [`provider_id`]: the persisted `provider_id` (beside the key file).
//! - `private_file`: atomic, owner-only file replacement.
//! - [`observer`]: optional hooks for a test harness.
//! - [`clock`]: wall-clock time as the caller defines it.
//!
//! The agent owns no source of nondeterminism: network, wall clock, RNG seed
//! and shutdown signal all come from its caller (see [`deps::AgentDeps`]).

pub mod backend;
pub mod backoff;
pub mod clock;
pub mod config;
pub mod deps;
pub mod discovery;
pub mod executor;
pub mod identity;
pub mod net;
pub mod observer;
mod private_file;
pub mod protocol;
pub mod provider_id;
pub mod run;
pub mod session;
pub mod stats;

/// The agent's version, sent in `auth_response` and `capabilities`.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");
