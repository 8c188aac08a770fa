//! Agent adapter files (`agents/*.toml`): how to start one agent binary in
//! a live run — its command line, environment, and a config template whose
//! `${placeholders}` are filled in per run (see `agents/README.md` for the
//! list). Loading checks every template against the full set of names, so a
//! typo is reported before any agent starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use provider_agent::config::SessionConfig;
use serde::Deserialize;

use super::template::{TemplateError, Vars, expand};

/// Default `ready_within_ms`: how long an agent may take from its start to
/// its first authenticated session before the run fails.
pub const READY_WITHIN_MS_DEFAULT: u64 = 30_000;
/// Largest adapter file accepted, in bytes.
pub const ADAPTER_BYTES_MAX: u64 = 256 * 1024;

/// One agent adapter file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Adapter {
    /// Short name of the agent, shown in reports.
    pub name: String,
    /// What the agent is, in a sentence.
    #[serde(default)]
    pub description: String,
    /// The program and its arguments; each element is expanded.
    pub command: Vec<String>,
    /// Extra environment variables for the agent; values are expanded.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// From start to first authenticated session, at most this long (ms).
    #[serde(default = "ready_within_ms_default")]
    pub ready_within_ms: u64,
    /// The agent's configuration file.
    pub config: ConfigTemplate,
    /// The agent's own session settings, where its config cannot set the
    /// scenario's (`[agent.session]` keys, e.g. a fixed heartbeat interval):
    /// the oracle judges the agent by these instead.
    #[serde(default)]
    pub session: BTreeMap<String, u64>,
    /// Mock backend kind (`vllm`, `llamacpp`, `lmstudio`, `ollama`) → the
    /// name this agent uses for it; kinds not listed keep their name.
    #[serde(default)]
    pub kinds: BTreeMap<String, String>,
    /// Where the file was read from (set by [`Adapter::load`]).
    #[serde(skip)]
    pub path: PathBuf,
}

fn ready_within_ms_default() -> u64 {
    READY_WITHIN_MS_DEFAULT
}

/// `[config]`: the file the agent reads its configuration from.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigTemplate {
    /// File name inside the run directory (`${config_path}`).
    pub file: String,
    /// The file's text, expanded.
    pub template: String,
    /// Expanded once per `[[backends]]` entry of the scenario, with the
    /// backend's own placeholders; the results, joined, are `${backends}`.
    #[serde(default)]
    pub backend_template: String,
}

/// Why an adapter file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("{file}: cannot read agent adapter: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: agent adapter is {bytes_len} bytes, more than {ADAPTER_BYTES_MAX}")]
    TooLarge { file: String, bytes_len: u64 },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: `{key}`: {reason}")]
    Invalid { file: String, key: String, reason: String },
    #[error("{file}: `{key}`: {source}")]
    Template {
        file: String,
        key: String,
        #[source]
        source: TemplateError,
    },
}

impl Adapter {
    /// Reads and checks the adapter at `path`.
    pub fn load(path: &Path) -> Result<Adapter, AdapterError> {
        let file = path.display().to_string();
        let read_error = |source| AdapterError::Read {
            file: file.clone(),
            source,
        };
        let bytes_len = std::fs::metadata(path).map_err(read_error)?.len();
        if bytes_len > ADAPTER_BYTES_MAX {
            return Err(AdapterError::TooLarge { file, bytes_len });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        let mut adapter = Adapter::parse(&file, &text)?;
        adapter.path = path.to_path_buf();
        Ok(adapter)
    }

    /// Parses and checks adapter `text`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Adapter, AdapterError> {
        let adapter: Adapter = toml::from_str(text).map_err(|err| AdapterError::Parse {
            file: file.to_owned(),
            message: err.to_string().trim_end().to_owned(),
        })?;
        adapter.check(file)?;
        Ok(adapter)
    }

    fn check(&self, file: &str) -> Result<(), AdapterError> {
        let invalid = |key: &str, reason: &str| AdapterError::Invalid {
            file: file.to_owned(),
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        if self.command.first().is_none_or(|program| program.trim().is_empty()) {
            return Err(invalid("command", "must name a program"));
        }
        if let Err(err) = session_with(&SessionConfig::default(), &self.session) {
            return Err(invalid("session", &err));
        }
        if self.ready_within_ms == 0 {
            return Err(invalid("ready_within_ms", "must be at least 1"));
        }
        let name = Path::new(&self.config.file);
        if self.config.file.is_empty() || name.components().count() != 1 || name.is_absolute() {
            return Err(invalid("config.file", "must be a plain file name"));
        }
        // Every template must expand with the names a run provides.
        // Backends are named by the scenario, so any `backend_url:HOST` is
        // accepted here; a run checks the host against its scenario.
        let mut run = super::vars::example_run_vars();
        let texts = [&self.config.template, &self.config.backend_template];
        let all = texts.into_iter().chain(&self.command).chain(self.env.values());
        for name in all.flat_map(|text| super::template::names(text)) {
            if name.starts_with("backend_url:") {
                run.entry(name).or_insert_with(|| "http://127.0.0.1:1".to_owned());
            }
        }
        let backend = super::vars::example_backend_vars();
        self.expand_all(file, &run, &backend).map(|_| ())
    }

    /// Expands the config file, the command and the environment.
    pub fn expand_all(&self, file: &str, run: &Vars, backends: &[Vars]) -> Result<Expanded, AdapterError> {
        let at = |key: String| {
            move |source| AdapterError::Template {
                file: file.to_owned(),
                key,
                source,
            }
        };
        let mut blocks = Vec::new();
        for backend in backends {
            let mut vars = run.clone();
            vars.extend(backend.iter().map(|(k, v)| (k.clone(), v.clone())));
            blocks.push(expand(&self.config.backend_template, &vars).map_err(at("config.backend_template".into()))?);
        }
        let mut vars = run.clone();
        vars.insert("backends".to_owned(), blocks.join("\n"));
        let config = expand(&self.config.template, &vars).map_err(at("config.template".into()))?;
        let command = (self.command.iter().enumerate())
            .map(|(i, arg)| expand(arg, &vars).map_err(at(format!("command[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        let env = (self.env.iter())
            .map(|(k, v)| Ok((k.clone(), expand(v, &vars).map_err(at(format!("env.{k}")))?)))
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        Ok(Expanded { config, command, env })
    }

    /// The name this agent uses for mock backend kind `kind`.
    pub fn kind_name(&self, kind: &str) -> String {
        self.kinds.get(kind).cloned().unwrap_or_else(|| kind.to_owned())
    }
}

/// `base` with the keys of `overrides` set; an unknown key is an error.
pub fn session_with(base: &SessionConfig, overrides: &BTreeMap<String, u64>) -> Result<SessionConfig, String> {
    if overrides.is_empty() {
        return Ok(base.clone());
    }
    let mut table = toml::Table::new();
    for (key, value) in super::vars::session_pairs(base) {
        table.insert(
            key.to_owned(),
            toml::Value::Integer(i64::try_from(value).unwrap_or(i64::MAX)),
        );
    }
    for (key, value) in overrides {
        table.insert(
            key.clone(),
            toml::Value::Integer(i64::try_from(*value).unwrap_or(i64::MAX)),
        );
    }
    toml::Value::Table(table)
        .try_into::<SessionConfig>()
        .map_err(|err| err.to_string().trim_end().to_owned())
}

/// An adapter filled in for one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expanded {
    /// The config file's text.
    pub config: String,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "toy"
command = ["${exe_dir}/toy", "--config", "${config_path}"]
[env]
TOY_STATE = "${state_dir}"
[config]
file = "toy.toml"
template = """
coordinator = "${coordinator_url}"
slots = ${max_concurrent}
${backends}"""
backend_template = """
[[upstream]]
name = "${host}"
url = "${url}"
"#;

    /// A good adapter loads; a template typo is refused, naming the key and the placeholder.
    #[test]
    fn templates_are_checked_at_load() {
        let text = format!("{GOOD}\"\"\"\n");
        let adapter = Adapter::parse("toy.toml", &text).unwrap();
        assert_eq!(adapter.ready_within_ms, READY_WITHIN_MS_DEFAULT);
        let typo = text.replace("${max_concurrent}", "${max_concurent}");
        let err = Adapter::parse("toy.toml", &typo).unwrap_err().to_string();
        assert!(
            err.starts_with("toy.toml: `config.template`: unknown placeholder `${max_concurent}`"),
            "{err}"
        );
    }

    /// A config file name that is a path, or an empty command, is refused.
    #[test]
    fn bad_shapes_are_refused() {
        let text = format!("{GOOD}\"\"\"\n");
        let bad = text.replace("file = \"toy.toml\"", "file = \"../toy.toml\"");
        let err = Adapter::parse("a.toml", &bad).unwrap_err().to_string();
        assert_eq!(err, "a.toml: `config.file`: must be a plain file name");
        let bad = text.replace(
            "command = [\"${exe_dir}/toy\", \"--config\", \"${config_path}\"]",
            "command = []",
        );
        let err = Adapter::parse("a.toml", &bad).unwrap_err().to_string();
        assert_eq!(err, "a.toml: `command`: must name a program");
    }

    /// The adapter's session settings override the scenario's; an unknown key is refused.
    #[test]
    fn session_overrides_apply_and_unknown_keys_are_refused() {
        let over: BTreeMap<String, u64> = [("heartbeat_interval_ms".to_owned(), 15_000)].into();
        let base = SessionConfig {
            idle_timeout_ms: 7_000,
            heartbeat_interval_ms: 1_000,
            ..SessionConfig::default()
        };
        let merged = session_with(&base, &over).unwrap();
        assert_eq!((merged.heartbeat_interval_ms, merged.idle_timeout_ms), (15_000, 7_000));
        let bad: BTreeMap<String, u64> = [("heartbeat_ms".to_owned(), 1)].into();
        assert!(session_with(&base, &bad).unwrap_err().contains("heartbeat_ms"));
    }

    /// Backends expand one block each, joined into `${backends}`.
    #[test]
    fn backend_blocks_join_into_the_config() {
        let adapter = Adapter::parse("toy.toml", &format!("{GOOD}\"\"\"\n")).unwrap();
        let run = super::super::vars::example_run_vars();
        let mut one = super::super::vars::example_backend_vars();
        one.extend(super::super::vars::example_backend_vars().into_iter().map(|mut b| {
            b.insert("host".into(), "second".into());
            b
        }));
        let expanded = adapter.expand_all("toy.toml", &run, &one).unwrap();
        assert_eq!(expanded.config.matches("[[upstream]]").count(), 2);
        assert!(expanded.config.contains("name = \"second\""), "{}", expanded.config);
        assert_eq!(expanded.command[1], "--config");
        assert!(expanded.env["TOY_STATE"].ends_with("state"));
    }
}
