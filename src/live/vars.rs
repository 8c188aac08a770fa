//! The values an adapter's placeholders expand to in one live run: where
//! the coordinator and every backend listen (their proxies, in fact), the
//! run's files, and the scenario's `[agent]` limits. `agents/README.md`
//! lists them all.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mock_backends::{BackendSpec, Kind};
use provider_agent::config::SessionConfig;

use super::template::{Vars, quoted, string_array};
use crate::scenario::Scenario;
use crate::scenario::model::PRICE_PER_1M_DEFAULT;

/// The files of one live run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPaths {
    /// Everything of the run lives here.
    pub run_dir: PathBuf,
    /// The agent's state directory; kept across a crash and restart.
    pub state_dir: PathBuf,
    /// The expanded config file.
    pub config_path: PathBuf,
    /// Where the agent keeps its identity key (inside `state_dir`).
    pub key_path: PathBuf,
}

impl RunPaths {
    /// The layout under `run_dir`, with the config file named `config_file`.
    pub fn under(run_dir: &Path, config_file: &str) -> RunPaths {
        let state_dir = run_dir.join("state");
        RunPaths {
            run_dir: run_dir.to_path_buf(),
            key_path: state_dir.join("identity.key"),
            state_dir,
            config_path: run_dir.join(config_file),
        }
    }
}

/// Where the agent must connect: the proxies in front of each mock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub coordinator: SocketAddr,
    /// `(host, address)` in `[[backends]]` order.
    pub backends: Vec<(String, SocketAddr)>,
}

/// The mock's name for a backend kind.
pub fn kind_str(kind: Kind) -> &'static str {
    match kind {
        Kind::Vllm => "vllm",
        Kind::Llamacpp => "llamacpp",
        Kind::Lmstudio => "lmstudio",
        Kind::Ollama => "ollama",
    }
}

fn put(vars: &mut Vars, key: &str, value: impl ToString) {
    vars.insert(key.to_owned(), value.to_string());
}

/// The run-wide values.
pub fn run_vars(scenario: &Scenario, seed: u64, endpoints: &Endpoints, paths: &RunPaths, dirs: &Dirs) -> Vars {
    let mut vars = Vars::new();
    let coordinator = endpoints.coordinator;
    put(&mut vars, "coordinator_url", format!("ws://{coordinator}/"));
    put(&mut vars, "coordinator_host", coordinator.ip());
    put(&mut vars, "coordinator_port", coordinator.port());
    for (host, addr) in &endpoints.backends {
        put(&mut vars, &format!("backend_url:{host}"), format!("http://{addr}"));
    }
    for (key, path) in [
        ("run_dir", &paths.run_dir),
        ("state_dir", &paths.state_dir),
        ("config_path", &paths.config_path),
        ("key_path", &paths.key_path),
        ("exe_dir", &dirs.exe_dir),
        ("adapter_dir", &dirs.adapter_dir),
    ] {
        put(&mut vars, key, path.display());
    }
    put(&mut vars, "seed", seed);
    put(&mut vars, "scenario", &scenario.name);
    limits_vars(&mut vars, scenario);
    vars
}

/// Directories the adapter's command may be relative to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirs {
    /// The directory of the running simctl executable (where cargo also
    /// puts `provider-agent`).
    pub exe_dir: PathBuf,
    /// The directory of the adapter file.
    pub adapter_dir: PathBuf,
}

/// `[agent]`: limits, session timeouts and prices.
fn limits_vars(vars: &mut Vars, scenario: &Scenario) {
    let agent = &scenario.agent;
    put(vars, "max_concurrent", agent.max_concurrent);
    put(
        vars,
        "max_tokens_per_minute",
        agent.max_tokens_per_minute.map(|n| n.to_string()).unwrap_or_default(),
    );
    put(
        vars,
        "max_tokens_per_minute_line",
        agent
            .max_tokens_per_minute
            .map(|n| format!("max_tokens_per_minute = {n}"))
            .unwrap_or_default(),
    );
    let (input, output) = agent
        .pricing
        .as_ref()
        .map_or((PRICE_PER_1M_DEFAULT, PRICE_PER_1M_DEFAULT), |p| {
            (p.default_input_per_1m, p.default_output_per_1m)
        });
    put(vars, "price_input_per_1m", format!("{input:?}"));
    put(vars, "price_output_per_1m", format!("{output:?}"));
    // For agents whose config takes whole numbers: rounded up, at least 1.
    put(vars, "price_input_per_1m_int", (input.ceil() as u64).max(1));
    put(vars, "price_output_per_1m_int", (output.ceil() as u64).max(1));
    let lines: Vec<String> = session_pairs(&agent.session)
        .into_iter()
        .map(|(key, value)| {
            put(vars, &format!("session.{key}"), value);
            format!("{key} = {value}")
        })
        .collect();
    put(vars, "session_toml", lines.join("\n"));
}

/// Every `[agent.session]` key with its value (defaults filled in). The
/// destructuring makes a new key a compile error here, not a silent gap.
pub fn session_pairs(session: &SessionConfig) -> Vec<(&'static str, u64)> {
    let SessionConfig {
        connect_timeout_ms,
        handshake_step_timeout_ms,
        write_timeout_ms,
        idle_timeout_ms,
        ping_interval_ms,
        heartbeat_interval_ms,
        outbound_queue_bytes_max,
        outbound_control_frames_max,
        outbound_control_bytes_max,
        backoff_initial_ms,
        backoff_max_ms,
        discovery_timeout_ms,
        discovery_interval_ms,
        shutdown_flush_timeout_ms,
    } = session.clone();
    vec![
        ("connect_timeout_ms", connect_timeout_ms),
        ("handshake_step_timeout_ms", handshake_step_timeout_ms),
        ("write_timeout_ms", write_timeout_ms),
        ("idle_timeout_ms", idle_timeout_ms),
        ("ping_interval_ms", ping_interval_ms),
        ("heartbeat_interval_ms", heartbeat_interval_ms),
        ("outbound_queue_bytes_max", outbound_queue_bytes_max as u64),
        ("outbound_control_frames_max", outbound_control_frames_max as u64),
        ("outbound_control_bytes_max", outbound_control_bytes_max as u64),
        ("backoff_initial_ms", backoff_initial_ms),
        ("backoff_max_ms", backoff_max_ms),
        ("discovery_timeout_ms", discovery_timeout_ms),
        ("discovery_interval_ms", discovery_interval_ms),
        ("shutdown_flush_timeout_ms", shutdown_flush_timeout_ms),
    ]
}

/// One backend's values, for the adapter's `backend_template`.
pub fn backend_vars(spec: &BackendSpec, addr: SocketAddr, scenario: &Scenario, kind_name: &str) -> Vars {
    let mut vars = Vars::new();
    put(&mut vars, "host", &spec.host);
    put(&mut vars, "kind", kind_name);
    put(&mut vars, "url", format!("http://{addr}"));
    put(&mut vars, "url_v1", format!("http://{addr}/v1"));
    put(&mut vars, "port", addr.port());
    // Without an allow-list the agent serves every model the backend lists,
    // which is the same as an allow-list of all of them.
    let models = (scenario.agent.allow_models.get(&spec.host).cloned())
        .unwrap_or_else(|| spec.models.iter().map(|m| m.id.clone()).collect());
    put(&mut vars, "models", string_array(&models));
    put(
        &mut vars,
        "first_model",
        quoted(models.first().map_or("", String::as_str)),
    );
    vars
}

/// Run values of a made-up run, to check an adapter's templates at load.
pub fn example_run_vars() -> Vars {
    let scenario = crate::scenario::parse("example", "name = \"example\"\nduration_ms = 1\n")
        .unwrap_or_else(|err| unreachable!("the example scenario is valid: {err}"));
    let endpoints = Endpoints {
        coordinator: SocketAddr::from(([127, 0, 0, 1], 1)),
        backends: Vec::new(),
    };
    let dirs = Dirs {
        exe_dir: PathBuf::from("/exe"),
        adapter_dir: PathBuf::from("/agents"),
    };
    let paths = RunPaths::under(Path::new("/run"), "agent.toml");
    run_vars(&scenario, 0, &endpoints, &paths, &dirs)
}

/// Backend values of a made-up backend, to check templates at load.
pub fn example_backend_vars() -> Vec<Vars> {
    let keys = ["host", "kind", "url", "url_v1", "port", "models", "first_model"];
    let vars: Vars = keys
        .iter()
        .map(|k| ((*k).to_owned(), String::from("1")))
        .chain([("url".to_owned(), "http://127.0.0.1:1".to_owned())])
        .collect();
    vec![vars]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scenario's `[agent]` limits and session keys reach the placeholders.
    #[test]
    fn agent_limits_become_placeholders() {
        let text = "name = \"x\"\nduration_ms = 1\n[agent]\nmax_concurrent = 3\nmax_tokens_per_minute = 900\n\
                    [agent.session]\nidle_timeout_ms = 70000\n";
        let scenario = crate::scenario::parse("x.toml", text).unwrap();
        let endpoints = Endpoints {
            coordinator: "127.0.0.1:4100".parse().unwrap(),
            backends: vec![("vllm-1".into(), "127.0.0.1:4200".parse().unwrap())],
        };
        let dirs = Dirs {
            exe_dir: "/e".into(),
            adapter_dir: "/a".into(),
        };
        let vars = run_vars(
            &scenario,
            9,
            &endpoints,
            &RunPaths::under(Path::new("/r"), "a.toml"),
            &dirs,
        );
        assert_eq!(vars["coordinator_url"], "ws://127.0.0.1:4100/");
        assert_eq!(vars["backend_url:vllm-1"], "http://127.0.0.1:4200");
        assert_eq!(vars["max_concurrent"], "3");
        assert_eq!(vars["max_tokens_per_minute_line"], "max_tokens_per_minute = 900");
        assert_eq!(vars["session.idle_timeout_ms"], "70000");
        assert!(vars["session_toml"].contains("idle_timeout_ms = 70000\n"));
        assert_eq!(vars["key_path"], "/r/state/identity.key");
        assert_eq!(vars["price_input_per_1m"], "1.0");
    }
}
