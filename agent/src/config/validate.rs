//! The rules a parsed configuration must satisfy (protocol.md §agent.toml,
//! plus consistency of the `[session]` timeouts), and per-kind default URLs.
//!
//! Rules beyond protocol.md's wording, each to turn a silent misbehaviour
//! into a clear error at start-up:
//! - `api_key_env` is rejected on local kinds: it would never be used.
//! - A remote backend over plain `http://` needs `--allow-insecure`, because
//!   its Bearer key would cross the network in clear text (local kinds are
//!   plain HTTP on the operator's machine by design).
//! - `models = []` is rejected: it would serve nothing; omit the key to serve
//!   every model the backend lists.
//! - A remote (BYOK) backend must list its `models`: without a list it would
//!   advertise every upstream model at the default price, billed to the
//!   operator's key. The operator opts in to each priced model.
//! - `session.idle_timeout_ms` must exceed `session.ping_interval_ms`, or a
//!   healthy but quiet coordinator would be disconnected between pings.

use std::collections::BTreeSet;

use super::load::{ORIGIN_UNNAMED, quote_key};
use super::{AgentConfig, BackendConfig, ConfigError, MAX_CONCURRENT_RANGE, SessionConfig};
use crate::backend::BackendKind;
use crate::net::endpoint::{Endpoint, Scheme};

/// The base URL a backend of `kind` uses when `url` is omitted.
pub fn default_backend_url(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Vllm => "http://127.0.0.1:8000",
        BackendKind::Llamacpp => "http://127.0.0.1:8080",
        BackendKind::Lmstudio => "http://127.0.0.1:1234",
        BackendKind::Ollama => "http://127.0.0.1:11434",
        BackendKind::Openrouter => "https://openrouter.ai/api",
        BackendKind::Venice => "https://api.venice.ai/api",
    }
}

impl BackendConfig {
    /// The configured base URL, or the kind's default when omitted.
    pub fn base_url(&self) -> &str {
        self.url.as_deref().unwrap_or(default_backend_url(self.kind))
    }
}

impl AgentConfig {
    /// Checks every rule; the first violation is returned, naming its key.
    /// `allow_insecure` permits `ws://` for the coordinator and `http://` for
    /// remote backends. Errors name the origin `config`; callers that know
    /// the file use [`ConfigError::with_origin`].
    pub fn validate(&self, allow_insecure: bool) -> Result<(), ConfigError> {
        self.validate_coordinator(allow_insecure)?;
        if self.identity.key_path.as_os_str().is_empty() {
            return Err(invalid("identity.key_path", "must not be empty"));
        }
        for (index, backend) in self.backends.iter().enumerate() {
            validate_backend(index, backend, allow_insecure)?;
        }
        self.validate_pricing()?;
        self.validate_limits()?;
        validate_session(&self.session)
    }

    fn validate_coordinator(&self, allow_insecure: bool) -> Result<(), ConfigError> {
        let key = "coordinator.url";
        let (scheme, _) =
            Endpoint::parse_with_scheme(&self.coordinator.url).map_err(|e| invalid(key, e.to_string()))?;
        match scheme {
            Scheme::Wss => {}
            Scheme::Ws if allow_insecure => {}
            Scheme::Ws => {
                return Err(invalid(key, "plain ws:// requires --allow-insecure; use wss://"));
            }
            Scheme::Http | Scheme::Https => {
                return Err(invalid(key, "must be a wss:// (or ws://) url"));
            }
        }
        if self
            .coordinator
            .enrollment_code
            .as_deref()
            .is_some_and(|code| code.trim().is_empty())
        {
            return Err(invalid("coordinator.enrollment_code", "must not be empty when present"));
        }
        Ok(())
    }

    fn validate_pricing(&self) -> Result<(), ConfigError> {
        check_price("pricing.default_input_per_1m", self.pricing.default_input_per_1m)?;
        check_price("pricing.default_output_per_1m", self.pricing.default_output_per_1m)?;
        for (model_id, price) in &self.pricing.models {
            let table = format!("pricing.models.{}", quote_key(model_id));
            if model_id.trim().is_empty() {
                return Err(invalid(table, "model id must not be empty"));
            }
            check_price(&format!("{table}.input_per_1m"), price.input_per_1m)?;
            check_price(&format!("{table}.output_per_1m"), price.output_per_1m)?;
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let max_concurrent = self.limits.max_concurrent;
        if !MAX_CONCURRENT_RANGE.contains(&max_concurrent) {
            let (low, high) = (MAX_CONCURRENT_RANGE.start(), MAX_CONCURRENT_RANGE.end());
            return Err(invalid(
                "limits.max_concurrent",
                format!("is {max_concurrent}, must be {low}-{high}"),
            ));
        }
        if self.limits.max_tokens_per_minute == Some(0) {
            return Err(invalid(
                "limits.max_tokens_per_minute",
                "must be > 0 when present (omit it for no limit)",
            ));
        }
        Ok(())
    }
}

fn validate_backend(index: usize, backend: &BackendConfig, allow_insecure: bool) -> Result<(), ConfigError> {
    let prefix = format!("backends[{index}]");
    let (scheme, endpoint) =
        Endpoint::parse_with_scheme(backend.base_url()).map_err(|e| invalid(format!("{prefix}.url"), e.to_string()))?;
    if scheme.is_websocket() {
        return Err(invalid(format!("{prefix}.url"), "must be an http:// or https:// url"));
    }
    if endpoint.path.contains('?') {
        return Err(invalid(
            format!("{prefix}.url"),
            "must not contain a query: it is a base url for /v1/... paths",
        ));
    }
    let remote = !backend.kind.is_local();
    if remote && scheme == Scheme::Http && !allow_insecure {
        return Err(invalid(
            format!("{prefix}.url"),
            "a remote backend over http:// sends its API key in clear text; use https:// (or --allow-insecure)",
        ));
    }
    validate_api_key_env(&prefix, backend)?;
    if remote && backend.models.is_none() {
        return Err(invalid(
            format!("{prefix}.models"),
            format!(
                "is required for kind {}: list the upstream models to serve, the operator must opt in \
                 to each model billed to this API key",
                backend.kind.as_str()
            ),
        ));
    }
    if let Some(models) = &backend.models {
        validate_allow_list(&prefix, models)?;
    }
    debug_assert!(remote || backend.api_key_env.is_none());
    Ok(())
}

fn validate_api_key_env(prefix: &str, backend: &BackendConfig) -> Result<(), ConfigError> {
    let key = format!("{prefix}.api_key_env");
    let kind = backend.kind.as_str();
    match (&backend.api_key_env, backend.kind.is_local()) {
        (None, true) => Ok(()),
        (Some(_), true) => Err(invalid(
            key,
            format!("is only used by remote kinds (venice, openrouter), not {kind}"),
        )),
        (None, false) => Err(invalid(
            key,
            format!("is required for kind {kind}: name the environment variable holding the API key"),
        )),
        (Some(name), false) if is_env_var_name(name) => Ok(()),
        (Some(_), false) => Err(invalid(
            key,
            "must be an environment variable name (letters, digits, `_`; not starting with a digit)",
        )),
    }
}

fn validate_allow_list(prefix: &str, models: &[String]) -> Result<(), ConfigError> {
    let key = format!("{prefix}.models");
    if models.is_empty() {
        return Err(invalid(
            key,
            "an empty allow-list serves nothing; omit the key to serve every model",
        ));
    }
    let mut seen = BTreeSet::new();
    for (index, model_id) in models.iter().enumerate() {
        if model_id.trim().is_empty() {
            return Err(invalid(format!("{key}[{index}]"), "model id must not be empty"));
        }
        if !seen.insert(model_id.as_str()) {
            return Err(invalid(
                format!("{key}[{index}]"),
                format!("duplicate model id {model_id:?}"),
            ));
        }
    }
    Ok(())
}

/// Shortest `session.discovery_interval_ms`. Every rediscovery probes each
/// backend (a model list, and a health check for some kinds); a period of a
/// few milliseconds would turn the agent into a load generator against the
/// operator's own inference servers.
pub const DISCOVERY_INTERVAL_MS_MIN: u64 = 1_000;

fn validate_session(session: &SessionConfig) -> Result<(), ConfigError> {
    let positive = [
        ("connect_timeout_ms", session.connect_timeout_ms),
        ("handshake_step_timeout_ms", session.handshake_step_timeout_ms),
        ("write_timeout_ms", session.write_timeout_ms),
        ("idle_timeout_ms", session.idle_timeout_ms),
        ("ping_interval_ms", session.ping_interval_ms),
        ("heartbeat_interval_ms", session.heartbeat_interval_ms),
        ("outbound_queue_bytes_max", to_u64(session.outbound_queue_bytes_max)),
        (
            "outbound_control_frames_max",
            to_u64(session.outbound_control_frames_max),
        ),
        ("outbound_control_bytes_max", to_u64(session.outbound_control_bytes_max)),
        ("backoff_initial_ms", session.backoff_initial_ms),
        ("backoff_max_ms", session.backoff_max_ms),
        ("discovery_timeout_ms", session.discovery_timeout_ms),
        ("discovery_interval_ms", session.discovery_interval_ms),
        ("shutdown_flush_timeout_ms", session.shutdown_flush_timeout_ms),
    ];
    for (name, value) in positive {
        if value == 0 {
            return Err(invalid(format!("session.{name}"), "must be > 0"));
        }
    }
    if session.discovery_interval_ms < DISCOVERY_INTERVAL_MS_MIN {
        let reason = format!(
            "({}) must be at least {DISCOVERY_INTERVAL_MS_MIN}: each rediscovery probes every backend",
            session.discovery_interval_ms
        );
        return Err(invalid("session.discovery_interval_ms", reason));
    }
    if session.backoff_initial_ms > session.backoff_max_ms {
        let reason = format!(
            "({}) must be <= session.backoff_max_ms ({})",
            session.backoff_initial_ms, session.backoff_max_ms
        );
        return Err(invalid("session.backoff_initial_ms", reason));
    }
    if session.idle_timeout_ms <= session.ping_interval_ms {
        let reason = format!(
            "({}) must be greater than session.ping_interval_ms ({}): pongs are what keep a quiet session alive",
            session.idle_timeout_ms, session.ping_interval_ms
        );
        return Err(invalid("session.idle_timeout_ms", reason));
    }
    Ok(())
}

fn to_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

fn check_price(key: &str, price: f64) -> Result<(), ConfigError> {
    if price.is_finite() && price > 0.0 {
        Ok(())
    } else {
        Err(invalid(key, format!("is {price}, must be a finite number > 0")))
    }
}

fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin: ORIGIN_UNNAMED.to_owned(),
        key: key.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests;
