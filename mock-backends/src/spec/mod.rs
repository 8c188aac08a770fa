//! The behaviour profile of one backend host: the schema of a scenario file's
//! `[[backends]]` table, and of the binary's `--profile` file.
//!
//! Every key has a default except `host`, `kind`, `models`, and each model's
//! `id` and `context_window`. `README.md` documents every key with its unit.

mod error;
mod fault;
mod model;
mod validate;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use error::SpecError;
pub use fault::{FaultClass, FaultKind, FaultSpec};
pub use model::{INTER_TOKEN_MS_DEFAULT, ModelProfile, OUTPUT_TOKENS_DEFAULT, OutputTokens, TTFT_MS_DEFAULT};
pub use validate::{
    DURATION_MS_MAX, FAULTS_MAX, GROUPING_MAX, HOST_LEN_MAX, MAX_NUM_SEQS_LIMIT, MODELS_MAX, OUTPUT_TOKENS_MAX,
    QUEUE_DEPTH_LIMIT,
};

/// Port a backend listens on when the table does not say.
pub const PORT_DEFAULT: u16 = 8000;
/// vLLM's default `--max-num-seqs`.
pub const MAX_NUM_SEQS_DEFAULT: u32 = 256;
/// How many requests may wait for a slot when `overflow = "queue"`.
pub const QUEUE_DEPTH_MAX_DEFAULT: u32 = 1024;
/// `host` given to a `--profile` file that does not name one.
pub const PROFILE_HOST_DEFAULT: &str = "mock-backend";

/// One `[[backends]]` table of a scenario file: one fake inference server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSpec {
    /// The turmoil host name; also the `backend` field of every record.
    pub host: String,
    /// Which server it imitates: decides the health and model-list paths.
    pub kind: Kind,
    /// TCP port it listens on.
    #[serde(default = "port_default")]
    pub port: u16,
    /// The models it serves, each with its own timing.
    pub models: Vec<ModelProfile>,
    /// Streams generated at once (vLLM's `--max-num-seqs`), over all models.
    #[serde(default = "max_num_seqs_default")]
    pub max_num_seqs: u32,
    /// What happens to a request that finds every slot busy.
    #[serde(default)]
    pub overflow: Overflow,
    /// Requests that may wait for a slot when `overflow = "queue"`; the next
    /// one is answered 503.
    #[serde(default = "queue_depth_max_default")]
    pub queue_depth_max: u32,
    /// Health endpoint behaviour without faults.
    #[serde(default)]
    pub health: HealthSpec,
    /// Scripted faults, checked in order for every request.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
}

/// The server a backend imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// vLLM's OpenAI server: `GET /health`, `/v1/models` with `max_model_len`.
    Vllm,
    /// llama.cpp's `llama-server`: `GET /health`, `/v1/models` with `meta.n_ctx_train`.
    Llamacpp,
    /// LM Studio: health is `GET /v1/models`; `/api/v0/models` has `max_context_length`.
    Lmstudio,
    /// Ollama: health is `GET /api/tags`; `POST /api/show` has the context length.
    Ollama,
}

/// Capacity policy for a request that finds all `max_num_seqs` slots busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Overflow {
    /// Wait (FIFO) for a slot, up to `queue_depth_max` waiting requests.
    #[default]
    #[serde(rename = "queue")]
    Queue,
    /// Answer 429 at once.
    #[serde(rename = "reject_429")]
    Reject429,
    /// Answer 503 at once.
    #[serde(rename = "reject_503")]
    Reject503,
}

/// The `[backends.health]` table: the health endpoint without faults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// Every health answer is delayed by this many milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
    /// Until this many milliseconds of clock time, health answers 503
    /// ("loading model"), like llama.cpp while it loads the weights.
    #[serde(default)]
    pub ready_after_ms: u64,
}

fn port_default() -> u16 {
    PORT_DEFAULT
}

fn max_num_seqs_default() -> u32 {
    MAX_NUM_SEQS_DEFAULT
}

fn queue_depth_max_default() -> u32 {
    QUEUE_DEPTH_MAX_DEFAULT
}

impl Kind {
    /// Every kind, in routing preference order.
    pub const ALL: [Kind; 4] = [Kind::Vllm, Kind::Llamacpp, Kind::Lmstudio, Kind::Ollama];

    /// The lowercase name used in TOML and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Vllm => "vllm",
            Kind::Llamacpp => "llamacpp",
            Kind::Lmstudio => "lmstudio",
            Kind::Ollama => "ollama",
        }
    }

    /// The path the agent polls to decide whether this backend is up.
    pub fn health_path(self) -> &'static str {
        match self {
            Kind::Vllm | Kind::Llamacpp => "/health",
            Kind::Lmstudio => "/v1/models",
            Kind::Ollama => "/api/tags",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text).ok_or_else(|| {
            SpecError::invalid(
                "kind",
                format!("unknown kind `{text}`, expected vllm, llamacpp, lmstudio or ollama"),
            )
        })
    }
}

/// Parses a `--profile` file: the keys of one `[[backends]]` table at the top
/// level. `host` may be omitted (it becomes `mock-backend`) and so may `kind`
/// (it becomes `vllm`); the binary then overrides `kind` and `port` from its
/// command line. The result is validated.
pub fn parse_profile_toml(text: &str) -> Result<BackendSpec, SpecError> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SpecError::Syntax(e.to_string()))?;
    table
        .entry("host")
        .or_insert_with(|| toml::Value::String(PROFILE_HOST_DEFAULT.to_owned()));
    table
        .entry("kind")
        .or_insert_with(|| toml::Value::String(Kind::Vllm.as_str().to_owned()));
    let spec: BackendSpec =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(SpecError::from_path_error)?;
    spec.validate()?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal profile takes every documented default.
    #[test]
    fn minimal_profile_gets_defaults() {
        let spec = parse_profile_toml("[[models]]\nid = \"m\"\ncontext_window = 4096\n").unwrap();
        assert_eq!(spec.host, PROFILE_HOST_DEFAULT);
        assert_eq!(spec.kind, Kind::Vllm);
        assert_eq!(spec.port, PORT_DEFAULT);
        assert_eq!(spec.max_num_seqs, MAX_NUM_SEQS_DEFAULT);
        assert_eq!(spec.overflow, Overflow::Queue);
        assert_eq!(spec.queue_depth_max, QUEUE_DEPTH_MAX_DEFAULT);
        assert_eq!(spec.health, HealthSpec::default());
        assert!(spec.faults.is_empty());
        assert_eq!(spec.models[0].ttft_ms, TTFT_MS_DEFAULT);
    }

    /// A wrongly typed key is reported with its full key path.
    #[test]
    fn type_error_names_the_key_path() {
        let text = "[[models]]\nid = \"a\"\ncontext_window = 1\n\
                    [[models]]\nid = \"b\"\ncontext_window = 1\ninter_token_ms = \"fast\"\n";
        let err = parse_profile_toml(text).unwrap_err().to_string();
        assert!(err.starts_with("models[1].inter_token_ms:"), "{err}");
    }

    /// An unknown key is rejected, naming it.
    #[test]
    fn unknown_key_is_rejected() {
        let text = "max_num_seq = 3\n[[models]]\nid = \"a\"\ncontext_window = 1\n";
        let err = parse_profile_toml(text).unwrap_err().to_string();
        assert!(err.contains("max_num_seq"), "{err}");
    }

    /// Broken TOML syntax is a syntax error, not a panic.
    #[test]
    fn syntax_error_is_reported() {
        let err = parse_profile_toml("models = [").unwrap_err();
        assert!(matches!(err, SpecError::Syntax(_)), "{err}");
    }

    /// Overflow policies use the documented spellings.
    #[test]
    fn overflow_spellings() {
        for (text, want) in [
            ("queue", Overflow::Queue),
            ("reject_429", Overflow::Reject429),
            ("reject_503", Overflow::Reject503),
        ] {
            let toml = format!("overflow = \"{text}\"\n[[models]]\nid = \"a\"\ncontext_window = 1\n");
            assert_eq!(parse_profile_toml(&toml).unwrap().overflow, want);
        }
    }

    /// A spec serializes back to TOML that parses to the same spec.
    #[test]
    fn spec_round_trips_through_toml() {
        let text = "host = \"h\"\nkind = \"ollama\"\noverflow = \"reject_429\"\n\
                    [health]\ndelay_ms = 3\n\
                    [[models]]\nid = \"a\"\ncontext_window = 9\noutput_tokens = [1, 4]\n\
                    [[faults]]\nkind = \"cut\"\nafter_tokens = 2\nnth = [1, 3]\n";
        let spec = parse_profile_toml(text).unwrap();
        let again = toml::to_string(&spec).unwrap();
        assert_eq!(parse_profile_toml(&again).unwrap(), spec, "{again}");
    }

    /// Kind names round-trip through `FromStr` and `Display`.
    #[test]
    fn kind_names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(kind.to_string().parse::<Kind>().unwrap(), kind);
        }
        assert!("vLLM".parse::<Kind>().is_err());
    }
}
