//! `agent.toml`: the typed configuration and its validation (protocol.md
//! §agent.toml, plus the `[session]` table of timeouts and bounds, an
//! extension with defaults for every key).
//!
//! Parsing ([`AgentConfig::from_toml_str`], [`AgentConfig::load`]) lives in
//! `config/load.rs`; the rules ([`AgentConfig::validate`]) and the per-kind
//! default URLs in `config/validate.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::backend::BackendKind;

mod load;
mod validate;

pub use load::{CONFIG_FILE_BYTES_MAX, ConfigError};
pub use validate::default_backend_url;

/// The whole agent configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub coordinator: CoordinatorConfig,
    pub identity: IdentityConfig,
    #[serde(default)]
    pub backends: Vec<BackendConfig>,
    pub pricing: PricingConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub session: SessionConfig,
}

impl AgentConfig {
    /// A configuration with the coordinator's URL, the key path, the
    /// backends and the pricing given, and `[limits]` and `[session]` at
    /// their defaults, as loading an `agent.toml` with only those keys gives
    /// (loading also fills in a local backend's default URL; this does not).
    /// For embedders (the simulation) and tests, which then adjust what they
    /// need.
    pub fn with_defaults(
        coordinator_url: &str,
        key_path: PathBuf,
        backends: Vec<BackendConfig>,
        pricing: PricingConfig,
    ) -> AgentConfig {
        AgentConfig {
            coordinator: CoordinatorConfig {
                url: coordinator_url.to_owned(),
                enrollment_code: None,
            },
            identity: IdentityConfig { key_path },
            backends,
            pricing,
            limits: LimitsConfig::default(),
            session: SessionConfig::default(),
        }
    }
}

/// `[coordinator]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// `wss://host[:port]/path`, or `ws://` with `--allow-insecure`.
    pub url: String,
    pub enrollment_code: Option<String>,
}

/// `[identity]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    pub key_path: PathBuf,
}

/// One `[[backends]]` entry.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub kind: BackendKind,
    /// Base URL without `/v1`. Defaults per kind for local kinds and to the
    /// public endpoint for remote ones.
    pub url: Option<String>,
    /// Environment variable holding the Bearer key (remote kinds only).
    pub api_key_env: Option<String>,
    /// Allow-list: when present, only these model ids are served.
    pub models: Option<Vec<String>>,
}

impl BackendConfig {
    /// A backend of `kind` at its kind's default URL, with no key and no
    /// allow-list.
    pub fn of_kind(kind: BackendKind) -> BackendConfig {
        BackendConfig {
            kind,
            url: None,
            api_key_env: None,
            models: None,
        }
    }
}

/// `[pricing]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    pub default_input_per_1m: f64,
    pub default_output_per_1m: f64,
    #[serde(default)]
    pub models: BTreeMap<String, ModelPrice>,
}

impl PricingConfig {
    /// The same price for every model, per million input and output tokens.
    pub fn flat(default_input_per_1m: f64, default_output_per_1m: f64) -> PricingConfig {
        PricingConfig {
            default_input_per_1m,
            default_output_per_1m,
            models: BTreeMap::new(),
        }
    }
}

/// `[pricing.models."id"]`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub input_per_1m: f64,
    pub output_per_1m: f64,
}

/// Default `limits.max_concurrent`.
pub const MAX_CONCURRENT_DEFAULT: u32 = 8;
/// Valid range of `limits.max_concurrent`.
pub const MAX_CONCURRENT_RANGE: std::ops::RangeInclusive<u32> = 1..=256;

/// `[limits]`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: u32,
    pub max_tokens_per_minute: Option<u64>,
}

fn default_max_concurrent() -> u32 {
    MAX_CONCURRENT_DEFAULT
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_concurrent: MAX_CONCURRENT_DEFAULT,
            max_tokens_per_minute: None,
        }
    }
}

/// `[session]`: timeouts and bounds of one coordinator session and of the
/// reconnect loop. Every key has a default; all durations in milliseconds.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// TCP (+TLS) connect plus the WebSocket upgrade.
    pub connect_timeout_ms: u64,
    /// Each handshake step: waiting for `auth_challenge`, for `auth_ok`.
    pub handshake_step_timeout_ms: u64,
    /// One outbound write or flush may block at most this long before the
    /// session is declared stalled and ended.
    pub write_timeout_ms: u64,
    /// No inbound frame (of any kind, pongs included) for this long ends the
    /// session.
    pub idle_timeout_ms: u64,
    /// The agent pings the coordinator this often so that a healthy but quiet
    /// coordinator still produces inbound traffic (pongs).
    pub ping_interval_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// Bound on `job_chunk` bytes queued for the socket, all jobs together.
    /// Producers wait (inside their deadline) when it is reached.
    pub outbound_queue_bytes_max: usize,
    /// Bound on queued control frames (terminal frames, rejections,
    /// heartbeats). Reaching it means the coordinator stopped reading for
    /// good: the session ends rather than grow without limit.
    pub outbound_control_frames_max: usize,
    /// Bound on the bytes of those control frames together, for the same
    /// reason: a count alone does not bound memory.
    pub outbound_control_bytes_max: usize,
    /// Reconnect backoff: first sleep, and the cap (protocol.md: 1 s → 60 s).
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// Per-request timeout of discovery probes (health, model list).
    pub discovery_timeout_ms: u64,
    /// In steady state, backends are probed again this often; a change in
    /// the served models re-sends `capabilities` (protocol.md **(ext)**).
    pub discovery_interval_ms: u64,
    /// On graceful shutdown, how long to wait for final frames to flush.
    pub shutdown_flush_timeout_ms: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 10_000,
            handshake_step_timeout_ms: 10_000,
            write_timeout_ms: 10_000,
            idle_timeout_ms: 45_000,
            ping_interval_ms: 10_000,
            heartbeat_interval_ms: 15_000,
            outbound_queue_bytes_max: 1 << 20,
            outbound_control_frames_max: 4096,
            outbound_control_bytes_max: 1 << 20,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 60_000,
            discovery_timeout_ms: 5_000,
            discovery_interval_ms: 30_000,
            shutdown_flush_timeout_ms: 5_000,
        }
    }
}
