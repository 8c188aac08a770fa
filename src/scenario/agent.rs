//! The agent's configuration for a scenario: `[agent]` plus one agent
//! backend per `[[backends]]` entry, pointed at the simulated hosts.

use std::path::PathBuf;

use mock_backends::{BackendSpec, Kind};
use provider_agent::backend::BackendKind;
use provider_agent::config::{AgentConfig, BackendConfig, LimitsConfig, PricingConfig};

use super::locate::KeyPath;
use super::model::{PRICE_PER_1M_DEFAULT, Scenario};

/// The coordinator's URL inside the simulation.
pub const COORDINATOR_URL: &str = "ws://coordinator:9000/";
/// The coordinator's port inside the simulation.
pub const COORDINATOR_PORT: u16 = 9000;

/// The agent backend kind that talks to a mock of `kind`.
pub fn agent_kind(kind: Kind) -> BackendKind {
    match kind {
        Kind::Vllm => BackendKind::Vllm,
        Kind::Llamacpp => BackendKind::Llamacpp,
        Kind::Lmstudio => BackendKind::Lmstudio,
        Kind::Ollama => BackendKind::Ollama,
    }
}

fn backend_config(spec: &BackendSpec, scenario: &Scenario) -> BackendConfig {
    BackendConfig {
        kind: agent_kind(spec.kind),
        url: Some(format!("http://{}:{}", spec.host, spec.port)),
        api_key_env: None,
        models: scenario.agent.allow_models.get(&spec.host).cloned(),
    }
}

/// The `AgentConfig` the simulated agent runs with.
pub fn agent_config(scenario: &Scenario) -> AgentConfig {
    let agent = &scenario.agent;
    let backends = scenario
        .backends
        .iter()
        .map(|spec| backend_config(spec, scenario))
        .collect();
    let pricing = (agent.pricing.clone()).unwrap_or(PricingConfig::flat(PRICE_PER_1M_DEFAULT, PRICE_PER_1M_DEFAULT));
    // The simulation hands the agent its key directly; no file is read.
    let mut config = AgentConfig::with_defaults(
        COORDINATOR_URL,
        PathBuf::from("simulated-identity.key"),
        backends,
        pricing,
    );
    config.limits = LimitsConfig {
        max_concurrent: agent.max_concurrent,
        max_tokens_per_minute: agent.max_tokens_per_minute,
    };
    config.session = agent.session.clone();
    config.coordinator.enrollment_code = agent.enrollment_code.clone();
    config
}

/// Where an `agent.toml` key of [`agent_config`] came from in the scenario.
pub fn scenario_path_of_agent_key(scenario: &Scenario, key: &str) -> KeyPath {
    let path = KeyPath::parse(key);
    let agent = KeyPath::root().key("agent");
    match path.0.first() {
        Some(super::locate::Seg::Key(first)) if first == "limits" => agent.join(&KeyPath(path.0[1..].to_vec())),
        Some(super::locate::Seg::Key(first)) if first == "backends" => backend_path(scenario, &path),
        _ => agent.join(&path),
    }
}

/// `backends[i].models[j]` of the agent is `agent.allow_models.<host>[j]`;
/// anything else about backend `i` is `backends[i]` of the scenario.
fn backend_path(scenario: &Scenario, path: &KeyPath) -> KeyPath {
    use super::locate::Seg;
    let Some(Seg::Index(i)) = path.0.get(1) else {
        return KeyPath::root().key("backends");
    };
    let host = scenario.backends.get(*i).map(|b| b.host.as_str()).unwrap_or_default();
    match path.0.get(2) {
        Some(Seg::Key(key)) if key == "models" => {
            let allow = KeyPath::root().key("agent").key("allow_models").key(host);
            allow.join(&KeyPath(path.0[3..].to_vec()))
        }
        _ => KeyPath::root().key("backends").index(*i),
    }
}
