//! The scenario file's schema: one struct per table, unknown keys rejected
//! everywhere. `scenarios/README.md` documents every key with its unit,
//! default and an example. The `[[backends]]` and `[coordinator]` tables are
//! the mock crates' own schemas, embedded as they are.

use std::collections::BTreeMap;
use std::sync::Arc;

use mock_backends::BackendSpec;
use mock_coordinator::Script;
use provider_agent::config::{PricingConfig, SessionConfig};
use serde::{Deserialize, Serialize};

use super::live::LiveSection;
use super::swarm::{SwarmSection, SwarmSource};
use crate::trace::FaultAction;

/// Default `seed` when the file names none.
pub const SEED_DEFAULT: u64 = 1;
/// Default `settle_ms_max`: long enough for a full reconnect backoff cycle.
pub const SETTLE_MS_MAX_DEFAULT: u64 = 180_000;
/// Default `[agent] max_concurrent` (the agent's own default).
pub const MAX_CONCURRENT_DEFAULT: u32 = provider_agent::config::MAX_CONCURRENT_DEFAULT;
/// Default one-way latency bounds of every link, in ms.
pub const LATENCY_MIN_MS_DEFAULT: u64 = 1;
pub const LATENCY_MAX_MS_DEFAULT: u64 = 5;
/// Default unread writes a TCP direction holds (turmoil's own default).
pub const TCP_CAPACITY_DEFAULT: u64 = 64;
/// Ephemeral ports per host: turmoil's default range, 49152..=65535.
pub const EPHEMERAL_PORTS_DEFAULT: u16 = 16_384;
/// Default price per million tokens advertised for every model.
pub const PRICE_PER_1M_DEFAULT: f64 = 1.0;

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown in reports.
    pub name: String,
    /// One paragraph on what the scenario exercises.
    #[serde(default)]
    pub description: String,
    /// Seed used when the command line gives none.
    #[serde(default = "seed_default")]
    pub seed: u64,
    /// Length of the scripted phase, in simulated ms.
    pub duration_ms: u64,
    /// Longest quiet phase after the scripted one, in simulated ms.
    #[serde(default = "settle_ms_max_default")]
    pub settle_ms_max: u64,
    /// The agent's limits and session timeouts.
    #[serde(default)]
    pub agent: AgentSection,
    /// The fake inference servers (mock-backends' schema).
    #[serde(default)]
    pub backends: Vec<BackendSpec>,
    /// The job script (mock-coordinator's schema).
    #[serde(default)]
    pub coordinator: Script,
    /// The simulated network.
    #[serde(default)]
    pub network: NetworkSection,
    /// Faults the harness applies at given times.
    #[serde(default)]
    pub faults: Vec<WorldFault>,
    /// What a passing run must show.
    #[serde(default)]
    pub expect: ExpectSection,
    /// `[live]`: settings of live runs against an agent process.
    #[serde(default)]
    pub live: LiveSection,
    /// `[swarm]`: target key → the range or set each run seed draws it from.
    #[serde(default)]
    pub swarm: SwarmSection,
    /// The checked text behind `swarm`, set by `load::parse`; `None` without
    /// a `[swarm]` table (and in a scenario that is itself a draw).
    #[serde(skip)]
    pub swarm_source: Option<Arc<SwarmSource>>,
}

fn seed_default() -> u64 {
    SEED_DEFAULT
}

fn settle_ms_max_default() -> u64 {
    SETTLE_MS_MAX_DEFAULT
}

/// `[agent]`: what goes into the agent's `agent.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// `limits.max_concurrent`.
    #[serde(default = "max_concurrent_default")]
    pub max_concurrent: u32,
    /// `limits.max_tokens_per_minute`.
    #[serde(default)]
    pub max_tokens_per_minute: Option<u64>,
    /// `[agent.session]`: the agent's `[session]` table, every key optional.
    #[serde(default)]
    pub session: SessionConfig,
    /// `[agent.pricing]`: the agent's `[pricing]` table.
    #[serde(default)]
    pub pricing: Option<PricingConfig>,
    /// `[agent.allow_models]`: backend host → the agent's allow-list for it.
    #[serde(default)]
    pub allow_models: BTreeMap<String, Vec<String>>,
    /// `coordinator.enrollment_code`: sent until the agent has a provider id.
    #[serde(default)]
    pub enrollment_code: Option<String>,
}

fn max_concurrent_default() -> u32 {
    MAX_CONCURRENT_DEFAULT
}

impl Default for AgentSection {
    fn default() -> Self {
        Self {
            max_concurrent: MAX_CONCURRENT_DEFAULT,
            max_tokens_per_minute: None,
            session: SessionConfig::default(),
            pricing: None,
            allow_models: BTreeMap::new(),
            enrollment_code: None,
        }
    }
}

/// `[network]`: every link of the simulated network.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// Least one-way latency of a message, in ms.
    pub latency_min_ms: u64,
    /// Most one-way latency of a message, in ms.
    pub latency_max_ms: u64,
    /// Unread write calls one TCP direction holds before writes block.
    pub tcp_capacity: u64,
    /// Probability (0..=1) that a message breaks its TCP connection.
    pub fail_rate: f64,
    /// Ephemeral ports of each host (from 49152 up): how many outbound
    /// connections one host can hold open at once. turmoil panics on the
    /// next one instead of failing `connect`, so reaching it is a harness
    /// error, never a verdict.
    pub ephemeral_ports: u16,
}

impl Default for NetworkSection {
    fn default() -> Self {
        Self {
            latency_min_ms: LATENCY_MIN_MS_DEFAULT,
            latency_max_ms: LATENCY_MAX_MS_DEFAULT,
            tcp_capacity: TCP_CAPACITY_DEFAULT,
            fail_rate: 0.0,
            ephemeral_ports: EPHEMERAL_PORTS_DEFAULT,
        }
    }
}

/// One `[[faults]]` entry: an action the harness takes at `at_ms`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorldFault {
    /// When, in simulated ms (within the scripted phase).
    pub at_ms: u64,
    /// `partition`, `repair`, `hold`, `release` (need `between`), `crash`,
    /// `restart` (need `host`).
    pub action: FaultAction,
    /// The host crashed or restarted.
    #[serde(default)]
    pub host: Option<String>,
    /// The two ends of the link acted on.
    #[serde(default)]
    pub between: Option<Vec<String>>,
}

impl WorldFault {
    /// The hosts this fault names (one or two).
    pub fn hosts(&self) -> Vec<String> {
        match (&self.host, &self.between) {
            (Some(host), _) => vec![host.clone()],
            (None, Some(between)) => between.clone(),
            (None, None) => Vec::new(),
        }
    }
}

/// A count that must lie in a range.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CountBound {
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub eq: Option<u64>,
}

impl CountBound {
    /// The bound in words, as reports print it: `= 8`, `>= 3 and <= 6`.
    pub fn describe(&self) -> String {
        let eq = self.eq.map(|v| format!("= {v}"));
        let min = self.min.map(|v| format!(">= {v}"));
        let max = self.max.map(|v| format!("<= {v}"));
        [eq, min, max].into_iter().flatten().collect::<Vec<_>>().join(" and ")
    }
}

/// Most allowed percentiles of one latency, in simulated ms.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PercentileBound {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

/// `[expect.latency]`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LatencyExpect {
    /// Job sent → first chunk.
    pub ttfc_ms: Option<PercentileBound>,
    /// Gap between consecutive chunks of a job.
    pub inter_chunk_ms: Option<PercentileBound>,
    /// Job sent → its terminal frame, for completed jobs.
    pub e2e_ms: Option<PercentileBound>,
}

/// One rule the scenario opts out of, and why.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SkipRule {
    pub rule: String,
    pub why: String,
}

/// `[expect]`: counts, latency thresholds, rule opt-outs and oracle bounds.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectSection {
    /// Jobs per outcome (`jobs`, `done`, `error`, `cancelled`, …).
    #[serde(default)]
    pub outcomes: BTreeMap<String, CountBound>,
    /// `job_error` outcomes per `error_code`.
    #[serde(default)]
    pub error_codes: BTreeMap<String, CountBound>,
    #[serde(default)]
    pub latency: LatencyExpect,
    #[serde(default)]
    pub skip_rules: Vec<SkipRule>,
    /// Overrides of the oracle's bounds (defaults in `expect::bounds_for`).
    pub cancel_close_ms: Option<u64>,
    pub deadline_slack_ms: Option<u64>,
    pub heartbeat_tolerance_ms: Option<u64>,
    pub reconnect_within_ms: Option<u64>,
    pub inbound_decision_ms: Option<u64>,
    pub outbound_slack_bytes: Option<u64>,
}
