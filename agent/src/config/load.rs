//! Reading `agent.toml`: TOML syntax and types, with errors that name the
//! file, the key path and (when TOML gives a span) the line and column.

use std::fmt::Write as _;
use std::path::Path;

use serde_path_to_error::Segment;

use super::AgentConfig;

/// Largest config file accepted. A real `agent.toml` is a few KiB; refusing a
/// huge file keeps a wrong `--config` path (a log, a disk image) from being
/// read into memory whole.
pub const CONFIG_FILE_BYTES_MAX: u64 = 1 << 20;

/// Why a configuration could not be used. Every variant names where the
/// problem is; none ever contains an API key (keys live in the environment,
/// never in the file, and values are not echoed).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`CONFIG_FILE_BYTES_MAX`].
    #[error("{path}: config file is {bytes_len} bytes, more than the {bytes_max}-byte limit")]
    TooLarge {
        path: String,
        bytes_len: u64,
        bytes_max: u64,
    },
    /// TOML syntax error, unknown key, missing key or wrong type.
    #[error("{origin}{}: {}{message}", location(*line, *column), key_prefix(key.as_deref()))]
    Parse {
        origin: String,
        key: Option<String>,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    /// A value that parses but breaks a rule of protocol.md or of `[session]`.
    #[error("{origin}: `{key}`: {reason}")]
    Invalid {
        origin: String,
        key: String,
        reason: String,
    },
}

/// The origin [`AgentConfig::validate`] reports before a caller names the file.
pub(super) const ORIGIN_UNNAMED: &str = "config";

impl ConfigError {
    /// The dotted key path the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Parse { key, .. } => key.as_deref(),
            ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::TooLarge { .. } => None,
        }
    }

    /// Sets the file name shown in the message (for errors from
    /// [`AgentConfig::validate`], which does not know it).
    pub fn with_origin(mut self, new_origin: &str) -> Self {
        match &mut self {
            ConfigError::Parse { origin, .. } | ConfigError::Invalid { origin, .. } => *origin = new_origin.to_owned(),
            ConfigError::Read { path, .. } | ConfigError::TooLarge { path, .. } => *path = new_origin.to_owned(),
        }
        self
    }
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        (Some(line), None) => format!(":{line}"),
        _ => String::new(),
    }
}

fn key_prefix(key: Option<&str>) -> String {
    key.map(|key| format!("`{key}`: ")).unwrap_or_default()
}

impl AgentConfig {
    /// Parses `text` (TOML), fills per-kind default backend URLs, and checks
    /// every rule that does not depend on `--allow-insecure` (as
    /// [`AgentConfig::validate`] with `allow_insecure = true`). Callers then
    /// call `validate(allow_insecure)` with their real flag. `origin` names the
    /// text in errors (a file path, `"<inline>"`).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<AgentConfig, ConfigError> {
        let deserializer = toml::de::Deserializer::parse(text).map_err(|e| parse_error(origin, text, None, &e))?;
        let mut config: AgentConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = key_path(e.path());
            parse_error(origin, text, key, e.inner())
        })?;
        config.apply_defaults();
        config.validate(true).map_err(|e| e.with_origin(origin))?;
        Ok(config)
    }

    /// Reads and parses the file at `path` (see [`AgentConfig::from_toml_str`]).
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let shown = path.display().to_string();
        let read_error = |source| ConfigError::Read {
            path: shown.clone(),
            source,
        };
        let bytes_len = std::fs::metadata(path).map_err(read_error)?.len();
        if bytes_len > CONFIG_FILE_BYTES_MAX {
            return Err(ConfigError::TooLarge {
                path: shown,
                bytes_len,
                bytes_max: CONFIG_FILE_BYTES_MAX,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        Self::from_toml_str(&text, &shown)
    }

    /// Fills `url` of backends that omit it with their kind's default.
    fn apply_defaults(&mut self) {
        for backend in &mut self.backends {
            if backend.url.is_none() {
                backend.url = Some(super::default_backend_url(backend.kind).to_owned());
            }
        }
    }
}

fn parse_error(origin: &str, text: &str, key: Option<String>, error: &toml::de::Error) -> ConfigError {
    let (line, column) = match error.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    ConfigError::Parse {
        origin: origin.to_owned(),
        key,
        line,
        column,
        message: error.message().trim_end().to_owned(),
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Renders a serde path as a TOML-style key path: `backends[1].kind`,
/// `pricing.models."llama-3.1-8b".input_per_1m`. `None` for the root.
fn key_path(path: &serde_path_to_error::Path) -> Option<String> {
    let mut rendered = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => {
                let _ = write!(rendered, "[{index}]");
            }
            Segment::Map { key } => {
                if !rendered.is_empty() {
                    rendered.push('.');
                }
                rendered.push_str(&quote_key(key));
            }
            Segment::Enum { variant } => {
                let _ = write!(rendered, "::{variant}");
            }
            Segment::Unknown => rendered.push_str(".?"),
        }
    }
    (!rendered.is_empty()).then_some(rendered)
}

/// A TOML bare key stays bare; anything else is quoted.
pub(super) fn quote_key(key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { key.to_owned() } else { format!("{key:?}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[coordinator]
url = "wss://coord.example.com/agent"

[identity]
key_path = "/var/lib/agent/key.json"

[pricing]
default_input_per_1m = 0.1
default_output_per_1m = 0.2
"#;

    fn parse_err(text: &str) -> ConfigError {
        AgentConfig::from_toml_str(text, "agent.toml").expect_err("must be rejected")
    }

    /// Proves a config with only the required tables parses and gets every default.
    #[test]
    fn minimal_config_parses_with_defaults() {
        let config = AgentConfig::from_toml_str(MINIMAL, "agent.toml").expect("valid");
        assert_eq!(config.limits.max_concurrent, 8);
        assert!(config.backends.is_empty());
        assert_eq!(config.session, super::super::SessionConfig::default());
    }

    /// Proves `with_defaults` gives what loading a file with only those keys gives.
    #[test]
    fn with_defaults_matches_a_minimal_file() {
        let loaded = AgentConfig::from_toml_str(MINIMAL, "agent.toml").expect("valid");
        let built = AgentConfig::with_defaults(
            "wss://coord.example.com/agent",
            "/var/lib/agent/key.json".into(),
            Vec::new(),
            super::super::PricingConfig::flat(0.1, 0.2),
        );
        assert_eq!(built, loaded);
    }

    /// Proves an omitted backend url is filled with the kind's default and an explicit one is kept.
    #[test]
    fn local_backends_get_default_urls() {
        let text = format!(
            "{MINIMAL}\n[[backends]]\nkind = \"ollama\"\n[[backends]]\nkind = \"vllm\"\nurl = \"http://gpu:9000\"\n"
        );
        let config = AgentConfig::from_toml_str(&text, "agent.toml").expect("valid");
        assert_eq!(config.backends[0].url.as_deref(), Some("http://127.0.0.1:11434"));
        assert_eq!(config.backends[1].url.as_deref(), Some("http://gpu:9000"));
    }

    /// Proves an unknown key is rejected with its dotted path, line and column.
    #[test]
    fn unknown_key_is_rejected_with_its_path_and_position() {
        let text = MINIMAL.replace("[identity]", "[identity]\nkey_paht = \"x\"");
        let err = parse_err(&text);
        assert_eq!(err.key(), Some("identity.key_paht"), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with("agent.toml:6:1: `identity.key_paht`: unknown field `key_paht`"),
            "{message}"
        );
    }

    /// Proves an unknown key inside `[[backends]]` names the entry's index.
    #[test]
    fn unknown_backend_key_names_the_array_index() {
        let text =
            format!("{MINIMAL}\n[[backends]]\nkind = \"vllm\"\n[[backends]]\nkind = \"vllm\"\napi_key = \"x\"\n");
        assert_eq!(parse_err(&text).key(), Some("backends[1].api_key"));
    }

    /// Proves a wrongly typed value names its key and position.
    #[test]
    fn wrong_type_names_the_key() {
        let text = format!("{MINIMAL}\n[limits]\nmax_concurrent = \"eight\"\n");
        let err = parse_err(&text);
        assert_eq!(err.key(), Some("limits.max_concurrent"));
        assert!(
            err.to_string()
                .starts_with("agent.toml:13:18: `limits.max_concurrent`: invalid type"),
            "{err}"
        );
    }

    /// Proves an unknown backend kind names `backends[i].kind` and quotes the bad kind.
    #[test]
    fn unknown_backend_kind_names_the_key() {
        let text = format!("{MINIMAL}\n[[backends]]\nkind = \"tgi\"\n");
        let err = parse_err(&text);
        assert_eq!(err.key(), Some("backends[0].kind"), "{err}");
        assert!(err.to_string().contains("tgi"), "{err}");
    }

    /// Proves a missing required key names its table and the missing field.
    #[test]
    fn missing_required_key_names_the_table() {
        let text = MINIMAL.replace("url = \"wss://coord.example.com/agent\"", "");
        let err = parse_err(&text);
        assert_eq!(err.key(), Some("coordinator"), "{err}");
        assert!(err.to_string().contains("missing field `url`"), "{err}");
    }

    /// Proves a TOML syntax error carries line and column but no key.
    #[test]
    fn syntax_error_has_line_and_column() {
        let err = parse_err("[coordinator]\nurl = \n");
        let ConfigError::Parse { line, column, key, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!((*line, *column, key.as_deref()), (Some(2), Some(7), None), "{err}");
    }

    /// Proves model ids that are not bare TOML keys are quoted in key paths.
    #[test]
    fn pricing_model_keys_are_quoted_in_paths() {
        let text = format!("{MINIMAL}\n[pricing.models.\"llama-3.1:8b\"]\ninput_per_1m = 1\n");
        let err = parse_err(&text);
        assert_eq!(err.key(), Some("pricing.models.\"llama-3.1:8b\""), "{err}");
    }

    /// Proves a rule violation found while parsing names the file and the key.
    #[test]
    fn rule_violations_name_the_file_and_key() {
        let text = format!("{MINIMAL}\n[limits]\nmax_concurrent = 0\n");
        let message = parse_err(&text).to_string();
        assert!(
            message.starts_with("agent.toml: `limits.max_concurrent`: "),
            "{message}"
        );
    }

    /// Proves an unreadable config file is reported by its path.
    #[test]
    fn load_reports_missing_file_by_path() {
        let err = AgentConfig::load(Path::new("/nonexistent/dir/agent.toml")).expect_err("missing");
        assert!(
            err.to_string()
                .starts_with("/nonexistent/dir/agent.toml: cannot read config"),
            "{err}"
        );
    }

    /// Proves the shipped example is valid and its `[session]` values match the defaults.
    #[test]
    fn example_config_is_valid_and_documents_the_session_defaults() {
        let text = include_str!("../../agent.example.toml");
        let config = AgentConfig::from_toml_str(text, "agent.example.toml").expect("example parses");
        config
            .validate(false)
            .expect("example is valid without --allow-insecure");
        assert_eq!(
            config.session,
            super::super::SessionConfig::default(),
            "example [session] drifted from the defaults"
        );
        assert_eq!(config.limits.max_concurrent, super::super::MAX_CONCURRENT_DEFAULT);
    }

    /// Proves line/column are 1-based, count characters, and survive out-of-range offsets.
    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("x", 99), (1, 2));
    }
}
