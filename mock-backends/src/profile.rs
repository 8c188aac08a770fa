//! Where the binary's profile comes from: a built-in default, a profile
//! file (the keys of one `[[backends]]` table), or one `[[backends]]` table
//! of a scenario file picked by its `host`.

use crate::spec::{BackendSpec, SpecError, parse_profile_toml};

/// The model the default profile serves. It is the mock coordinator's
/// default model mix (`[coordinator] models` absent), so a coordinator, an
/// agent and this backend run by hand agree without a scenario file.
pub const DEFAULT_MODEL_ID: &str = "sim-model";

/// The profile served when none is given: one model, every timing and
/// capacity key at its default ([`crate::TTFT_MS_DEFAULT`] ms to the first
/// token, then one every [`crate::INTER_TOKEN_MS_DEFAULT`] ms;
/// [`crate::OUTPUT_TOKENS_DEFAULT`] output tokens unless `max_tokens` says
/// fewer).
pub const DEFAULT_PROFILE_TOML: &str = "[[models]]\nid = \"sim-model\"\ncontext_window = 8192\n";

/// The built-in default profile ([`DEFAULT_PROFILE_TOML`]).
pub fn default_profile() -> BackendSpec {
    // The constant is tested to parse; a failure here is a bug in it.
    parse_profile_toml(DEFAULT_PROFILE_TOML).expect("the built-in default profile is valid")
}

/// Reads a `--profile` file: a scenario file when it has `[[backends]]`
/// tables (then `host` picks one, and may be left out when there is only
/// one), else a profile file (`host` must then be absent). Errors name
/// the key, e.g. `backends[1].models[0].ttft_ms: …`.
pub fn profile_from_file_text(text: &str, host: Option<&str>) -> Result<BackendSpec, SpecError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SpecError::Syntax(e.to_string()))?;
    let Some(backends) = table.get("backends") else {
        if let Some(host) = host {
            let reason = format!("--host {host} names a scenario's backend, but this file has no [[backends]]");
            return Err(SpecError::invalid("backends", reason));
        }
        return parse_profile_toml(text);
    };
    let Some(backends) = backends.as_array() else {
        return Err(SpecError::invalid(
            "backends",
            "must be an array of tables ([[backends]])",
        ));
    };
    let hosts: Vec<&str> = backends
        .iter()
        .map(|b| b.get("host").and_then(toml::Value::as_str).unwrap_or("?"))
        .collect();
    let index = match host {
        Some(host) => hosts.iter().position(|h| *h == host).ok_or_else(|| {
            let reason = format!("no backend with host `{host}`; the scenario has: {}", hosts.join(", "));
            SpecError::invalid("backends", reason)
        })?,
        None if hosts.len() == 1 => 0,
        None => {
            let reason = format!(
                "the scenario has {} backends ({}); pick one with --host",
                hosts.len(),
                hosts.join(", ")
            );
            return Err(SpecError::invalid("backends", reason));
        }
    };
    let chosen = backends[index].clone();
    let spec: BackendSpec = serde_path_to_error::deserialize(chosen).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            format!("backends[{index}]")
        } else {
            format!("backends[{index}].{path}")
        };
        SpecError::invalid(key, e.inner().to_string())
    })?;
    spec.validate().map_err(|e| match e {
        SpecError::Invalid { key, reason } => SpecError::invalid(format!("backends[{index}].{key}"), reason),
        other => other,
    })?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = "[coordinator]\n\
        [[backends]]\nhost = \"gpu-a\"\nkind = \"vllm\"\n[[backends.models]]\nid = \"a\"\ncontext_window = 4096\n\
        [[backends]]\nhost = \"gpu-b\"\nkind = \"ollama\"\nmax_num_seqs = 2\n\
        [[backends.models]]\nid = \"b\"\ncontext_window = 2048\n";

    /// The default profile parses and serves the coordinator's default model.
    #[test]
    fn default_profile_serves_sim_model() {
        let spec = default_profile();
        assert_eq!(spec.models.len(), 1);
        assert_eq!(spec.models[0].id, DEFAULT_MODEL_ID);
    }

    /// `--host` picks one backend of a scenario file.
    #[test]
    fn host_picks_a_scenario_backend() {
        let spec = profile_from_file_text(SCENARIO, Some("gpu-b")).unwrap();
        assert_eq!((spec.host.as_str(), spec.max_num_seqs), ("gpu-b", 2));
        assert_eq!(spec.models[0].id, "b");
    }

    /// Several backends without `--host`, or an unknown host, is an error naming the hosts.
    #[test]
    fn ambiguous_or_unknown_host_is_refused() {
        let err = profile_from_file_text(SCENARIO, None).unwrap_err().to_string();
        assert!(err.contains("gpu-a, gpu-b") && err.contains("--host"), "{err}");
        let err = profile_from_file_text(SCENARIO, Some("gpu-z")).unwrap_err().to_string();
        assert!(err.contains("no backend with host `gpu-z`"), "{err}");
    }

    /// A bad key inside a scenario's backend names the backend's index and the key.
    #[test]
    fn scenario_errors_name_the_key() {
        let text = SCENARIO.replace("max_num_seqs = 2", "max_num_seqs = \"two\"");
        let err = profile_from_file_text(&text, Some("gpu-b")).unwrap_err().to_string();
        assert!(err.starts_with("backends[1].max_num_seqs:"), "{err}");
        let text = SCENARIO.replace("max_num_seqs = 2", "max_num_seqs = 0");
        let err = profile_from_file_text(&text, Some("gpu-b")).unwrap_err().to_string();
        assert!(err.starts_with("backends[1].max_num_seqs"), "{err}");
    }

    /// A plain profile file still works, and refuses `--host`.
    #[test]
    fn plain_profile_file() {
        let spec = profile_from_file_text(DEFAULT_PROFILE_TOML, None).unwrap();
        assert_eq!(spec.models[0].id, DEFAULT_MODEL_ID);
        assert!(profile_from_file_text(DEFAULT_PROFILE_TOML, Some("x")).is_err());
    }
}
