//! Unit tests of the configuration rules, one per rule.

use super::*;
use crate::config::{BackendConfig, ModelPrice, PricingConfig};

fn base() -> AgentConfig {
    AgentConfig::with_defaults(
        "wss://coord.example.com/agent",
        "key.json".into(),
        vec![BackendConfig::of_kind(BackendKind::Vllm)],
        PricingConfig::flat(0.1, 0.2),
    )
}

fn remote(kind: BackendKind, url: Option<&str>, env: Option<&str>) -> BackendConfig {
    BackendConfig {
        kind,
        url: url.map(str::to_owned),
        api_key_env: env.map(str::to_owned),
        models: None,
    }
}

/// The key of the first violation, with `allow_insecure = false`.
fn violation(config: &AgentConfig) -> String {
    config
        .validate(false)
        .expect_err("must be rejected")
        .key()
        .expect("names a key")
        .to_owned()
}

/// Proves the fixture every rule test starts from is itself valid.
#[test]
fn base_config_is_valid() {
    base().validate(false).expect("valid");
}

/// Proves the coordinator needs wss://, or ws:// with allow_insecure, and never http(s).
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

/// Proves the ws:// rejection tells the operator about --allow-insecure.
#[test]
fn insecure_error_says_how_to_fix() {
    let mut config = base();
    config.coordinator.url = "ws://c/".into();
    let message = config.validate(false).expect_err("rejected").to_string();
    assert!(message.contains("--allow-insecure"), "{message}");
}

/// Proves a blank enrollment code is rejected.
#[test]
fn empty_enrollment_code_rejected() {
    let mut config = base();
    config.coordinator.enrollment_code = Some(" ".into());
    assert_eq!(violation(&config), "coordinator.enrollment_code");
}

/// Proves zero, negative, NaN and infinite prices are rejected, per-model ones included.
#[test]
fn prices_must_be_positive_and_finite() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let mut config = base();
        config.pricing.default_output_per_1m = bad;
        assert_eq!(violation(&config), "pricing.default_output_per_1m", "{bad}");
    }
    let mut config = base();
    config.pricing.models.insert(
        "m/1".into(),
        ModelPrice {
            input_per_1m: 1.0,
            output_per_1m: 0.0,
        },
    );
    assert_eq!(violation(&config), "pricing.models.\"m/1\".output_per_1m");
}

/// Proves max_concurrent accepts exactly 1-256 and max_tokens_per_minute rejects 0.
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

/// Proves remote kinds need an api_key_env that is a valid variable name.
#[test]
fn remote_kinds_need_api_key_env() {
    let mut config = base();
    config.backends = vec![remote(BackendKind::Openrouter, None, None)];
    assert_eq!(violation(&config), "backends[0].api_key_env");
    let mut venice = remote(BackendKind::Venice, None, Some("VENICE_API_KEY"));
    venice.models = Some(vec!["m".into()]);
    config.backends = vec![venice];
    config.validate(false).expect("valid");
    config.backends = vec![remote(BackendKind::Venice, None, Some("1BAD"))];
    assert_eq!(violation(&config), "backends[0].api_key_env");
}

/// Proves a local kind with api_key_env is rejected (it would be ignored).
#[test]
fn local_kinds_reject_api_key_env() {
    let mut config = base();
    config.backends = vec![remote(BackendKind::Ollama, None, Some("KEY"))];
    assert_eq!(violation(&config), "backends[0].api_key_env");
}

/// Proves every kind's default base url, and that an explicit url wins.
#[test]
fn default_urls_per_kind() {
    assert_eq!(default_backend_url(BackendKind::Vllm), "http://127.0.0.1:8000");
    assert_eq!(default_backend_url(BackendKind::Llamacpp), "http://127.0.0.1:8080");
    assert_eq!(default_backend_url(BackendKind::Lmstudio), "http://127.0.0.1:1234");
    assert_eq!(default_backend_url(BackendKind::Ollama), "http://127.0.0.1:11434");
    assert_eq!(
        default_backend_url(BackendKind::Openrouter),
        "https://openrouter.ai/api"
    );
    assert_eq!(default_backend_url(BackendKind::Venice), "https://api.venice.ai/api");
    assert_eq!(
        remote(BackendKind::Vllm, None, None).base_url(),
        "http://127.0.0.1:8000"
    );
    assert_eq!(
        remote(BackendKind::Vllm, Some("http://x:1"), None).base_url(),
        "http://x:1"
    );
}

/// Proves backend urls must be http(s) without query, and remote http:// needs allow_insecure.
#[test]
fn backend_url_rules() {
    let mut config = base();
    for bad in ["ws://h:1", "http://h:1/?x=1", "nope", "http://h:0"] {
        config.backends = vec![remote(BackendKind::Vllm, Some(bad), None)];
        assert_eq!(violation(&config), "backends[0].url", "{bad}");
    }
    let mut proxied = remote(BackendKind::Openrouter, Some("http://proxy:8080/api"), Some("K"));
    proxied.models = Some(vec!["m".into()]);
    config.backends = vec![proxied];
    assert_eq!(violation(&config), "backends[0].url");
    config
        .validate(true)
        .expect("http remote allowed with --allow-insecure");
}

/// Proves empty allow-lists, empty ids and duplicate ids are rejected with the index.
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

/// Proves zero session timeouts and bounds are rejected.
#[test]
fn session_timeouts_must_be_positive() {
    let mut config = base();
    config.session.write_timeout_ms = 0;
    assert_eq!(violation(&config), "session.write_timeout_ms");
    let mut config = base();
    config.session.outbound_queue_bytes_max = 0;
    assert_eq!(violation(&config), "session.outbound_queue_bytes_max");
}

/// Proves a rediscovery period under the minimum is rejected and the
/// minimum itself is accepted.
#[test]
fn discovery_interval_has_a_minimum() {
    let mut config = base();
    config.session.discovery_interval_ms = 1;
    assert_eq!(violation(&config), "session.discovery_interval_ms");
    config.session.discovery_interval_ms = super::DISCOVERY_INTERVAL_MS_MIN;
    config.validate(false).expect("the minimum is fine");
}

/// Proves backoff_initial_ms above backoff_max_ms is rejected and equal is accepted.
#[test]
fn backoff_initial_must_not_exceed_max() {
    let mut config = base();
    config.session.backoff_initial_ms = 2_000;
    config.session.backoff_max_ms = 1_000;
    assert_eq!(violation(&config), "session.backoff_initial_ms");
    config.session.backoff_max_ms = 2_000;
    config.validate(false).expect("equal is fine");
}

/// Proves an idle timeout not above the ping interval is rejected.
#[test]
fn idle_timeout_must_exceed_ping_interval() {
    let mut config = base();
    config.session.idle_timeout_ms = config.session.ping_interval_ms;
    assert_eq!(violation(&config), "session.idle_timeout_ms");
}

/// Proves validate's errors say `config` until a caller names the file.
#[test]
fn validate_errors_can_be_given_a_file_name() {
    let mut config = base();
    config.limits.max_concurrent = 0;
    let err = config.validate(false).expect_err("rejected");
    assert!(err.to_string().starts_with("config: "), "{err}");
    assert!(
        err.with_origin("agent.toml")
            .to_string()
            .starts_with("agent.toml: `limits.max_concurrent`")
    );
}

/// Proves a BYOK backend must name the models it serves: without a list it would
/// advertise every upstream model at the default price (issue 13 item 1).
#[test]
fn remote_kinds_need_an_explicit_models_list() {
    let mut config = base();
    for kind in [BackendKind::Openrouter, BackendKind::Venice] {
        config.backends = vec![remote(kind, None, Some("API_KEY"))];
        assert_eq!(violation(&config), "backends[0].models");
        let message = config.validate(false).expect_err("rejected").to_string();
        assert!(message.contains("opt in"), "{message}");
    }
}
