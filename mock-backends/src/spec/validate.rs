//! Range and consistency checks that serde cannot express. Each check names
//! the key path it refuses, so a scenario author can find it.

use std::collections::BTreeSet;

use super::fault::{FaultClass, FaultKind, FaultSpec};
use super::model::{ModelProfile, OutputTokens};
use super::{BackendSpec, SpecError};

/// Longest duration any `*_ms` key may ask for: one hour.
pub const DURATION_MS_MAX: u64 = 3_600_000;
/// Largest completion a profile may ask for.
pub const OUTPUT_TOKENS_MAX: u64 = 1_000_000;
/// Largest `tokens_per_event` and `events_per_write`.
pub const GROUPING_MAX: u32 = 4096;
/// Largest `max_num_seqs`.
pub const MAX_NUM_SEQS_LIMIT: u32 = 65_536;
/// Largest `queue_depth_max`.
pub const QUEUE_DEPTH_LIMIT: u32 = 1_000_000;
/// Most models one backend may serve.
pub const MODELS_MAX: usize = 256;
/// Most faults one backend may script.
pub const FAULTS_MAX: usize = 256;
/// Longest `host` name (a DNS name's limit).
pub const HOST_LEN_MAX: usize = 253;

type Checked = Result<(), SpecError>;

fn ensure(ok: bool, key: impl FnOnce() -> String, reason: impl FnOnce() -> String) -> Checked {
    if ok {
        Ok(())
    } else {
        Err(SpecError::invalid(key(), reason()))
    }
}

fn ensure_duration(value: u64, key: impl FnOnce() -> String) -> Checked {
    ensure(value <= DURATION_MS_MAX, key, || {
        format!("{value} ms is more than the {DURATION_MS_MAX} ms allowed")
    })
}

impl BackendSpec {
    /// Checks every value against its documented range; the error names the
    /// first offending key path, e.g. `models[1].inter_token_ms`.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.validate_identity()?;
        self.validate_capacity()?;
        ensure_duration(self.health.delay_ms, || "health.delay_ms".into())?;
        ensure_duration(self.health.ready_after_ms, || "health.ready_after_ms".into())?;
        self.validate_models()?;
        let ids: BTreeSet<&str> = self.models.iter().map(|m| m.id.as_str()).collect();
        ensure(
            self.faults.len() <= FAULTS_MAX,
            || "faults".into(),
            || format!("at most {FAULTS_MAX} faults"),
        )?;
        for (index, fault) in self.faults.iter().enumerate() {
            fault.validate(&format!("faults[{index}]"), &ids)?;
        }
        Ok(())
    }

    fn validate_identity(&self) -> Checked {
        let host_ok =
            !self.host.is_empty() && self.host.len() <= HOST_LEN_MAX && !self.host.chars().any(char::is_whitespace);
        ensure(
            host_ok,
            || "host".into(),
            || format!("must be 1 to {HOST_LEN_MAX} characters without spaces"),
        )?;
        ensure(self.port != 0, || "port".into(), || "must not be 0".into())
    }

    fn validate_capacity(&self) -> Checked {
        ensure(
            (1..=MAX_NUM_SEQS_LIMIT).contains(&self.max_num_seqs),
            || "max_num_seqs".into(),
            || format!("must be 1 to {MAX_NUM_SEQS_LIMIT}"),
        )?;
        ensure(
            self.queue_depth_max <= QUEUE_DEPTH_LIMIT,
            || "queue_depth_max".into(),
            || format!("must be at most {QUEUE_DEPTH_LIMIT}"),
        )
    }

    fn validate_models(&self) -> Checked {
        ensure(
            (1..=MODELS_MAX).contains(&self.models.len()),
            || "models".into(),
            || format!("a backend serves 1 to {MODELS_MAX} models"),
        )?;
        let mut seen = BTreeSet::new();
        for (index, model) in self.models.iter().enumerate() {
            let path = format!("models[{index}]");
            model.validate(&path)?;
            ensure(
                seen.insert(model.id.as_str()),
                || format!("{path}.id"),
                || format!("`{}` is listed twice", model.id),
            )?;
        }
        Ok(())
    }
}

impl ModelProfile {
    fn validate(&self, path: &str) -> Checked {
        let key = |name: &str| format!("{path}.{name}");
        ensure(!self.id.is_empty(), || key("id"), || "must not be empty".into())?;
        ensure(
            self.context_window >= 1,
            || key("context_window"),
            || "must be at least 1 token".into(),
        )?;
        ensure_duration(self.ttft_ms, || key("ttft_ms"))?;
        ensure_duration(self.inter_token_ms, || key("inter_token_ms"))?;
        ensure(
            self.ttft_jitter_ms <= self.ttft_ms,
            || key("ttft_jitter_ms"),
            || format!("must not exceed ttft_ms ({})", self.ttft_ms),
        )?;
        ensure(
            self.inter_token_jitter_ms <= self.inter_token_ms,
            || key("inter_token_jitter_ms"),
            || format!("must not exceed inter_token_ms ({})", self.inter_token_ms),
        )?;
        self.validate_output(path)
    }

    fn validate_output(&self, path: &str) -> Checked {
        let key = |name: &str| format!("{path}.{name}");
        let (min, max) = match self.output_tokens {
            OutputTokens::Fixed(count) => (count, count),
            OutputTokens::Range { min, max } => (min, max),
            OutputTokens::FromMaxTokens => (0, 0),
        };
        ensure(
            min <= max,
            || key("output_tokens"),
            || format!("range [{min}, {max}] has min above max"),
        )?;
        ensure(
            max <= OUTPUT_TOKENS_MAX,
            || key("output_tokens"),
            || format!("at most {OUTPUT_TOKENS_MAX} tokens"),
        )?;
        for (name, value) in [
            ("tokens_per_event", self.tokens_per_event),
            ("events_per_write", self.events_per_write),
        ] {
            ensure(
                (1..=GROUPING_MAX).contains(&value),
                || key(name),
                || format!("must be 1 to {GROUPING_MAX}"),
            )?;
        }
        Ok(())
    }
}

impl FaultSpec {
    fn validate(&self, path: &str, model_ids: &BTreeSet<&str>) -> Checked {
        let key = |name: &str| format!("{path}.{name}");
        if let Some(p) = self.probability {
            ensure(
                (0.0..=1.0).contains(&p),
                || key("probability"),
                || format!("{p} is not between 0 and 1"),
            )?;
        }
        ensure(
            self.nth.iter().all(|&n| n >= 1),
            || key("nth"),
            || "request ordinals start at 1".into(),
        )?;
        self.validate_window(path)?;
        self.validate_used_keys(path)?;
        self.validate_values(path)?;
        for id in self.models.iter().flatten() {
            ensure(
                model_ids.contains(id.as_str()),
                || key("models"),
                || format!("`{id}` is not one of this backend's models"),
            )?;
        }
        Ok(())
    }

    fn validate_window(&self, path: &str) -> Checked {
        for (name, value) in [("from_ms", self.from_ms), ("until_ms", self.until_ms)] {
            if let Some(value) = value {
                ensure(
                    value <= u64::MAX / 1000,
                    || format!("{path}.{name}"),
                    || "is too large".into(),
                )?;
            }
        }
        if let (Some(from), Some(until)) = (self.from_ms, self.until_ms) {
            ensure(
                from < until,
                || format!("{path}.until_ms"),
                || format!("must be after from_ms ({from})"),
            )?;
        }
        Ok(())
    }

    /// Refuses keys this kind does not use and requires the ones it needs.
    fn validate_used_keys(&self, path: &str) -> Checked {
        let kind = self.kind;
        let uses_status = matches!(kind, FaultKind::Status | FaultKind::HealthFail);
        let uses_after = matches!(kind, FaultKind::Stall | FaultKind::Cut | FaultKind::MalformedSse);
        let uses_delay = kind == FaultKind::HealthSlow;
        let uses_models = kind.class() == FaultClass::Chat;
        for (name, present, used) in [
            ("status", self.status.is_some(), uses_status),
            ("after_tokens", self.after_tokens.is_some(), uses_after),
            ("delay_ms", self.delay_ms.is_some(), uses_delay),
            ("models", self.models.is_some(), uses_models),
        ] {
            ensure(
                !present || used,
                || format!("{path}.{name}"),
                || format!("not used by kind `{kind}`"),
            )?;
        }
        for (name, present, needed) in [
            ("status", self.status.is_some(), kind == FaultKind::Status),
            (
                "after_tokens",
                self.after_tokens.is_some(),
                matches!(kind, FaultKind::Stall | FaultKind::Cut),
            ),
            ("delay_ms", self.delay_ms.is_some(), uses_delay),
        ] {
            ensure(
                present || !needed,
                || format!("{path}.{name}"),
                || format!("required by kind `{kind}`"),
            )?;
        }
        Ok(())
    }

    fn validate_values(&self, path: &str) -> Checked {
        if let Some(status) = self.status {
            ensure(
                (400..=599).contains(&status),
                || format!("{path}.status"),
                || format!("{status} is not an HTTP error status (400 to 599)"),
            )?;
        }
        if let Some(after) = self.after_tokens {
            ensure(
                after <= OUTPUT_TOKENS_MAX,
                || format!("{path}.after_tokens"),
                || format!("at most {OUTPUT_TOKENS_MAX}"),
            )?;
        }
        if let Some(delay) = self.delay_ms {
            ensure_duration(delay, || format!("{path}.delay_ms"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::parse_profile_toml;

    const MODELS: &str = "[[models]]\nid = \"a\"\ncontext_window = 8\n";

    fn error_of(extra: &str) -> String {
        let text = format!("{extra}\n{MODELS}");
        parse_profile_toml(&text).unwrap_err().to_string()
    }

    fn fault_error(fault: &str) -> String {
        parse_profile_toml(&format!("{MODELS}[[faults]]\n{fault}\n"))
            .unwrap_err()
            .to_string()
    }

    /// Capacity keys are range-checked and named.
    #[test]
    fn capacity_ranges() {
        assert!(error_of("max_num_seqs = 0").starts_with("max_num_seqs:"));
        assert!(error_of("queue_depth_max = 2000000").starts_with("queue_depth_max:"));
        assert!(error_of("port = 0").starts_with("port:"));
        assert!(error_of("host = \"\"").starts_with("host:"));
    }

    /// Model keys are checked with their index in the path.
    #[test]
    fn model_ranges() {
        let text = format!("{MODELS}[[models]]\nid = \"b\"\ncontext_window = 8\nttft_ms = 5\nttft_jitter_ms = 6\n");
        let err = parse_profile_toml(&text).unwrap_err().to_string();
        assert!(err.starts_with("models[1].ttft_jitter_ms:"), "{err}");
        let dup = format!("{MODELS}{MODELS}");
        let err = parse_profile_toml(&dup).unwrap_err().to_string();
        assert!(err.starts_with("models[1].id:"), "{err}");
        let text = "[[models]]\nid = \"a\"\ncontext_window = 8\noutput_tokens = [9, 2]\n";
        let err = parse_profile_toml(text).unwrap_err().to_string();
        assert!(err.starts_with("models[0].output_tokens:"), "{err}");
        let text = "[[models]]\nid = \"a\"\ncontext_window = 8\nevents_per_write = 0\n";
        let err = parse_profile_toml(text).unwrap_err().to_string();
        assert!(err.starts_with("models[0].events_per_write:"), "{err}");
        assert!(
            parse_profile_toml("models = []")
                .unwrap_err()
                .to_string()
                .starts_with("models:")
        );
    }

    /// Fault keys are checked per kind: required, unused, and out of range.
    #[test]
    fn fault_keys_per_kind() {
        let err = fault_error("kind = \"stall\"");
        assert_eq!(err, "faults[0].after_tokens: required by kind `stall`");
        let err = fault_error("kind = \"missing_usage\"\nstatus = 500");
        assert_eq!(err, "faults[0].status: not used by kind `missing_usage`");
        let err = fault_error("kind = \"status\"\nstatus = 200");
        assert!(err.starts_with("faults[0].status:"), "{err}");
        let err = fault_error("kind = \"host_down\"\nprobability = 1.5");
        assert!(err.starts_with("faults[0].probability:"), "{err}");
        let err = fault_error("kind = \"cut\"\nafter_tokens = 1\nnth = [0]");
        assert!(err.starts_with("faults[0].nth:"), "{err}");
        let err = fault_error("kind = \"host_down\"\nfrom_ms = 5\nuntil_ms = 5");
        assert!(err.starts_with("faults[0].until_ms:"), "{err}");
        let err = fault_error("kind = \"cut\"\nafter_tokens = 1\nmodels = [\"zz\"]");
        assert!(err.starts_with("faults[0].models:"), "{err}");
        let err = fault_error("kind = \"health_slow\"");
        assert_eq!(err, "faults[0].delay_ms: required by kind `health_slow`");
        let err = fault_error("kind = \"crash\"");
        assert!(err.starts_with("faults[0].kind:"), "{err}");
    }

    /// A full profile with every key passes.
    #[test]
    fn full_profile_is_valid() {
        let text = r#"
            host = "gpu-1"
            kind = "llamacpp"
            port = 8080
            max_num_seqs = 4
            overflow = "reject_429"
            queue_depth_max = 0
            [health]
            delay_ms = 5
            ready_after_ms = 1000
            [[models]]
            id = "a"
            context_window = 4096
            ttft_ms = 100
            ttft_jitter_ms = 10
            inter_token_ms = 20
            inter_token_jitter_ms = 5
            output_tokens = [4, 8]
            tokens_per_event = 2
            events_per_write = 3
            [[faults]]
            kind = "status"
            status = 503
            probability = 0.1
            nth = [2, 3]
            models = ["a"]
            [[faults]]
            kind = "health_fail"
            from_ms = 100
            until_ms = 200
        "#;
        parse_profile_toml(text).unwrap();
    }
}
