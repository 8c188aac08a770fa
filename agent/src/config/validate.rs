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
        let (scheme, _) = Endpoint::parse_with_scheme(&self.coordinator.url).map_err(|e| invalid(key, e.to_string()))?;
        match scheme {
            Scheme::Wss => {}
            Scheme::Ws if allow_insecure => {}
            Scheme::Ws => return Err(invalid(key, "plain ws:// requires --allow-insecure; use wss://")),
            Scheme::Http | Scheme::Https => return Err(invalid(key, "must be a wss:// (or ws://) url")),
        }
        if self.coordinator.enrollment_code.as_deref().is_some_and(|code| code.trim().is_empty()) {
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
            return Err(invalid("limits.max_concurrent", format!("is {max_concurrent}, must be {low}-{high}")));
        }
        if self.limits.max_tokens_per_minute == Some(0) {
            return Err(invalid("limits.max_tokens_per_minute", "must be > 0 when present (omit it for no limit)"));
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
        return Err(invalid(format!("{prefix}.url"), "must not contain a query: it is a base url for /v1/... paths"));
    }
    let remote = !backend.kind.is_local();
    if remote && scheme == Scheme::Http && !allow_insecure {
        return Err(invalid(format!("{prefix}.url"), "a remote backend over http:// sends its API key in clear text; use https:// (or --allow-insecure)"));
    }
    validate_api_key_env(&prefix, backend)?;
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
        (Some(_), true) => Err(invalid(key, format!("is only used by remote kinds (venice, openrouter), not {kind}"))),
        (None, false) => Err(invalid(key, format!("is required for kind {kind}: name the environment variable holding the API key"))),
        (Some(name), false) if is_env_var_name(name) => Ok(()),
        (Some(_), false) => Err(invalid(key, "must be an environment variable name (letters, digits, `_`; not starting with a digit)")),
    }
}

fn validate_allow_list(prefix: &str, models: &[String]) -> Result<(), ConfigError> {
    let key = format!("{prefix}.models");
    if models.is_empty() {
        return Err(invalid(key, "an empty allow-list serves nothing; omit the key to serve every model"));
    }
    let mut seen = BTreeSet::new();
    for (index, model_id) in models.iter().enumerate() {
        if model_id.trim().is_empty() {
            return Err(invalid(format!("{key}[{index}]"), "model id must not be empty"));
        }
        if !seen.insert(model_id.as_str()) {
            return Err(invalid(format!("{key}[{index}]"), format!("duplicate model id {model_id:?}")));
        }
    }
    Ok(())
}

fn validate_session(session: &SessionConfig) -> Result<(), ConfigError> {
    let positive = [
        ("connect_timeout_ms", session.connect_timeout_ms),
        ("handshake_step_timeout_ms", session.handshake_step_timeout_ms),
        ("write_timeout_ms", session.write_timeout_ms),
        ("idle_timeout_ms", session.idle_timeout_ms),
        ("ping_interval_ms", session.ping_interval_ms),
        ("heartbeat_interval_ms", session.heartbeat_interval_ms),
        ("outbound_queue_bytes_max", to_u64(session.outbound_queue_bytes_max)),
        ("outbound_control_frames_max", to_u64(session.outbound_control_frames_max)),
        ("backoff_initial_ms", session.backoff_initial_ms),
        ("backoff_max_ms", session.backoff_max_ms),
        ("discovery_timeout_ms", session.discovery_timeout_ms),
        ("shutdown_flush_timeout_ms", session.shutdown_flush_timeout_ms),
    ];
    for (name, value) in positive {
        if value == 0 {
            return Err(invalid(format!("session.{name}"), "must be > 0"));
        }
    }
    if session.backoff_initial_ms > session.backoff_max_ms {
        let reason = format!("({}) must be <= session.backoff_max_ms ({})", session.backoff_initial_ms, session.backoff_max_ms);
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
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { origin: ORIGIN_UNNAMED.to_owned(), key: key.into(), reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        BackendConfig, CoordinatorConfig, IdentityConfig, LimitsConfig, ModelPrice, PricingConfig,
    };

    fn base() -> AgentConfig {
        AgentConfig {
            coordinator: CoordinatorConfig { url: "wss://coord.example.com/agent".into(), enrollment_code: None },
            identity: IdentityConfig { key_path: "key.json".into() },
            backends: vec![BackendConfig { kind: BackendKind::Vllm, url: None, api_key_env: None, models: None }],
            pricing: PricingConfig { default_input_per_1m: 0.1, default_output_per_1m: 0.2, models: Default::default() },
            limits: LimitsConfig::default(),
            session: SessionConfig::default(),
        }
    }

    fn remote(kind: BackendKind, url: Option<&str>, env: Option<&str>) -> BackendConfig {
        BackendConfig { kind, url: url.map(str::to_owned), api_key_env: env.map(str::to_owned), models: None }
    }

    /// The key of the first violation, with `allow_insecure = false`.
    fn violation(config: &AgentConfig) -> String {
        config.validate(false).expect_err("must be rejected").key().expect("names a key").to_owned()
    }

    #[test]
    fn base_config_is_valid() {
        base().validate(false).expect("valid");
    }

    #[test]
    fn coordinator_scheme_rules() {
        let mut config = base();
        config.coordinator.url = "ws://coordinator:9000/".into();
        assert_eq!(violation(&config), "coordinator.url");
        config.validate(true).expect("ws:// allowed with --allow-insecure");
        config.coordinator.url = "https://coord.example.com".into();
        assert!(config.validate(true).is_err(), "http(s) is not a WebSocket url");
        config.coordinator.url = "coord.example.com".into();
        assert_eq!(violation(&config), "coordinator.url");
    }

    #[test]
    fn insecure_error_says_how_to_fix() {
        let mut config = base();
        config.coordinator.url = "ws://c/".into();
        let message = config.validate(false).expect_err("rejected").to_string();
        assert!(message.contains("--allow-insecure"), "{message}");
    }

    #[test]
    fn empty_enrollment_code_rejected() {
        let mut config = base();
        config.coordinator.enrollment_code = Some(" ".into());
        assert_eq!(violation(&config), "coordinator.enrollment_code");
    }

    #[test]
    fn prices_must_be_positive_and_finite() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut config = base();
            config.pricing.default_output_per_1m = bad;
            assert_eq!(violation(&config), "pricing.default_output_per_1m", "{bad}");
        }
        let mut config = base();
        config.pricing.models.insert("m/1".into(), ModelPrice { input_per_1m: 1.0, output_per_1m: 0.0 });
        assert_eq!(violation(&config), "pricing.models.\"m/1\".output_per_1m");
    }

    #[test]
    fn max_concurrent_range() {
        for (value, ok) in [(0, false), (1, true), (256, true), (257, false)] {
            let mut config = base();
            config.limits.max_concurrent = value;
            assert_eq!(config.validate(false).is_ok(), ok, "{value}");
        }
        let mut config = base();
        config.limits.max_tokens_per_minute = Some(0);
        assert_eq!(violation(&config), "limits.max_tokens_per_minute");
    }

    #[test]
    fn remote_kinds_need_api_key_env() {
        let mut config = base();
        config.backends = vec![remote(BackendKind::Openrouter, None, None)];
        assert_eq!(violation(&config), "backends[0].api_key_env");
        config.backends = vec![remote(BackendKind::Venice, None, Some("VENICE_API_KEY"))];
        config.validate(false).expect("valid");
        config.backends = vec![remote(BackendKind::Venice, None, Some("1BAD"))];
        assert_eq!(violation(&config), "backends[0].api_key_env");
    }

    #[test]
    fn local_kinds_reject_api_key_env() {
        let mut config = base();
        config.backends = vec![remote(BackendKind::Ollama, None, Some("KEY"))];
        assert_eq!(violation(&config), "backends[0].api_key_env");
    }

    #[test]
    fn default_urls_per_kind() {
        assert_eq!(default_backend_url(BackendKind::Vllm), "http://127.0.0.1:8000");
        assert_eq!(default_backend_url(BackendKind::Llamacpp), "http://127.0.0.1:8080");
        assert_eq!(default_backend_url(BackendKind::Lmstudio), "http://127.0.0.1:1234");
        assert_eq!(default_backend_url(BackendKind::Ollama), "http://127.0.0.1:11434");
        assert_eq!(default_backend_url(BackendKind::Openrouter), "https://openrouter.ai/api");
        assert_eq!(default_backend_url(BackendKind::Venice), "https://api.venice.ai/api");
        assert_eq!(remote(BackendKind::Vllm, None, None).base_url(), "http://127.0.0.1:8000");
        assert_eq!(remote(BackendKind::Vllm, Some("http://x:1"), None).base_url(), "http://x:1");
    }

    #[test]
    fn backend_url_rules() {
        let mut config = base();
        for bad in ["ws://h:1", "http://h:1/?x=1", "nope", "http://h:0"] {
            config.backends = vec![remote(BackendKind::Vllm, Some(bad), None)];
            assert_eq!(violation(&config), "backends[0].url", "{bad}");
        }
        config.backends = vec![remote(BackendKind::Openrouter, Some("http://proxy:8080/api"), Some("K"))];
        assert_eq!(violation(&config), "backends[0].url");
        config.validate(true).expect("http remote allowed with --allow-insecure");
    }

    #[test]
    fn allow_list_rules() {
        let mut config = base();
        config.backends[0].models = Some(vec![]);
        assert_eq!(violation(&config), "backends[0].models");
        config.backends[0].models = Some(vec!["a".into(), String::new()]);
        assert_eq!(violation(&config), "backends[0].models[1]");
        config.backends[0].models = Some(vec!["a".into(), "a".into()]);
        assert_eq!(violation(&config), "backends[0].models[1]");
    }

    #[test]
    fn session_timeouts_must_be_positive() {
        let mut config = base();
        config.session.write_timeout_ms = 0;
        assert_eq!(violation(&config), "session.write_timeout_ms");
        let mut config = base();
        config.session.outbound_queue_bytes_max = 0;
        assert_eq!(violation(&config), "session.outbound_queue_bytes_max");
    }

    #[test]
    fn backoff_initial_must_not_exceed_max() {
        let mut config = base();
        config.session.backoff_initial_ms = 2_000;
        config.session.backoff_max_ms = 1_000;
        assert_eq!(violation(&config), "session.backoff_initial_ms");
        config.session.backoff_max_ms = 2_000;
        config.validate(false).expect("equal is fine");
    }

    #[test]
    fn idle_timeout_must_exceed_ping_interval() {
        let mut config = base();
        config.session.idle_timeout_ms = config.session.ping_interval_ms;
        assert_eq!(violation(&config), "session.idle_timeout_ms");
    }

    #[test]
    fn validate_errors_can_be_given_a_file_name() {
        let mut config = base();
        config.limits.max_concurrent = 0;
        let err = config.validate(false).expect_err("rejected");
        assert!(err.to_string().starts_with("config: "), "{err}");
        assert!(err.with_origin("agent.toml").to_string().starts_with("agent.toml: `limits.max_concurrent`"));
    }
}
