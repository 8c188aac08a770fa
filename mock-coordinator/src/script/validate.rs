//! Checks serde cannot express: ranges, kind-specific keys and references to
//! jobs that can never exist. Each error names the key path and the reason.

use super::{
    Arrival, ArrivalKind, CancelKind, CancelRule, Handshake, ModelWeight, RequestTemplate, ResendAfter, Script,
};

/// Most jobs one script may issue. The open-loop schedule is computed up
/// front, so this bounds its memory.
pub const JOBS_PER_SCRIPT_MAX: u64 = 1_000_000;
/// Largest `rate_per_sec` / `frames_per_sec` accepted.
const RATE_PER_SEC_MAX: f64 = 1_000_000.0;
/// Largest `burst_size`.
const BURST_SIZE_MAX: u32 = 100_000;
/// Largest closed-loop `outstanding`; kept well below the per-connection
/// outbound queue so a closed loop can never overflow it.
const OUTSTANDING_MAX: u32 = 1024;
/// Largest nonce.
const NONCE_BYTES_MAX: u32 = 1024;
/// Largest user message.
const PROMPT_CHARS_MAX: u32 = 10_000_000;
/// Largest `resend_guard_ms` (ten minutes): far above any cancel bound, and
/// a bound on how long a re-send can be held back.
const RESEND_GUARD_MS_MAX: u64 = 600_000;

/// A script that cannot be used, with the key at fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ScriptError {
    /// The TOML did not deserialize (syntax, unknown key, wrong type).
    #[error("{}: {reason}", if key.is_empty() { "scenario" } else { key.as_str() })]
    Parse { key: String, reason: String },
    /// The script deserialized but a value is out of range or inconsistent.
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    /// The [`crate::Log`] passed to a new coordinator was filled by one
    /// running a different script; continuing its schedule would mix two.
    #[error("log: already carries the schedule of a different script")]
    LogScriptMismatch,
}

impl ScriptError {
    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ScriptError {
        ScriptError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the key path with `prefix` (e.g. `coordinator`).
    pub fn under(self, prefix: &str) -> ScriptError {
        let join = |key: String| {
            if key.is_empty() || key == "." {
                prefix.to_owned()
            } else {
                format!("{prefix}.{key}")
            }
        };
        match self {
            ScriptError::Parse { key, reason } => ScriptError::Parse { key: join(key), reason },
            ScriptError::Invalid { key, reason } => ScriptError::Invalid { key: join(key), reason },
            other => other,
        }
    }
}

type Check = Result<(), ScriptError>;

impl Script {
    /// Checks ranges and cross references; the first problem is returned.
    pub fn validate(&self) -> Result<(), ScriptError> {
        if self.provider_id.is_empty() {
            return Err(ScriptError::invalid("provider_id", "must not be empty"));
        }
        check_handshake(&self.handshake)?;
        check_models(&self.models)?;
        check_request(&self.request)?;
        for (i, arrival) in self.arrivals.iter().enumerate() {
            check_arrival(&format!("arrivals[{i}]"), arrival)?;
        }
        let jobs_max = self.jobs_max();
        if let Some(n) = jobs_max.filter(|n| *n > JOBS_PER_SCRIPT_MAX) {
            return Err(ScriptError::invalid(
                "arrivals",
                format!("may issue {n} jobs, more than the limit {JOBS_PER_SCRIPT_MAX}"),
            ));
        }
        for (i, rule) in self.cancels.iter().enumerate() {
            check_cancel(&format!("cancels[{i}]"), rule, jobs_max)?;
        }
        if self.resend_guard_ms > RESEND_GUARD_MS_MAX {
            return Err(ScriptError::invalid(
                "resend_guard_ms",
                format!("must be at most {RESEND_GUARD_MS_MAX}, got {}", self.resend_guard_ms),
            ));
        }
        for (i, rule) in self.duplicates.iter().enumerate() {
            check_job_ref(&format!("duplicates[{i}].job"), rule.job, jobs_max)?;
            // A re-send timed from a cancel would always be held back by the
            // guard; refusing the script says so instead of silently moving it.
            if rule.after == ResendAfter::Cancel && rule.delay_ms < self.resend_guard_ms {
                return Err(ScriptError::invalid(
                    format!("duplicates[{i}].delay_ms"),
                    format!(
                        "must be >= resend_guard_ms ({}) for after = \"cancel\", got {}: \
                         frames of the cancelled job may still arrive until then",
                        self.resend_guard_ms, rule.delay_ms
                    ),
                ));
            }
        }
        for (i, rule) in self.unknown_types.iter().enumerate() {
            let key = format!("unknown_types[{i}]");
            if rule.type_name.is_empty() {
                return Err(ScriptError::invalid(key + ".type", "must not be empty"));
            }
            if rule.fields.contains_key("type") {
                return Err(ScriptError::invalid(
                    key + ".fields.type",
                    "`type` is set by the `type` key",
                ));
            }
        }
        for (i, w) in self.read_pauses.iter().enumerate() {
            check_window(&format!("read_pauses[{i}]"), w.start_ms, w.end_ms)?;
        }
        for (i, w) in self.slow_reads.iter().enumerate() {
            let key = format!("slow_reads[{i}]");
            check_window(&key, w.start_ms, w.end_ms)?;
            check_rate(&format!("{key}.frames_per_sec"), w.frames_per_sec)?;
        }
        Ok(())
    }

    /// Upper bound on all jobs the arrivals can issue, when every process
    /// has one that does not depend on the RNG.
    pub fn jobs_max(&self) -> Option<u64> {
        self.arrivals
            .iter()
            .try_fold(0u64, |sum, a| Some(sum.saturating_add(a.jobs_max()?)))
    }
}

fn check_handshake(h: &Handshake) -> Check {
    if h.timeout_ms == 0 {
        return Err(ScriptError::invalid("handshake.timeout_ms", "must be > 0"));
    }
    if !(1..=NONCE_BYTES_MAX).contains(&h.nonce_bytes) {
        return Err(ScriptError::invalid(
            "handshake.nonce_bytes",
            format!("must be in 1..={NONCE_BYTES_MAX}, got {}", h.nonce_bytes),
        ));
    }
    if let Some(i) = h.sessions.iter().flatten().position(|&c| c == 0) {
        return Err(ScriptError::invalid(
            format!("handshake.sessions[{i}]"),
            "connection numbers start at 1",
        ));
    }
    Ok(())
}

fn check_models(models: &[ModelWeight]) -> Check {
    if models.is_empty() {
        return Err(ScriptError::invalid("models", "must list at least one model"));
    }
    for (i, m) in models.iter().enumerate() {
        if m.id.is_empty() {
            return Err(ScriptError::invalid(format!("models[{i}].id"), "must not be empty"));
        }
        if !m.weight.is_finite() || m.weight < 0.0 {
            return Err(ScriptError::invalid(
                format!("models[{i}].weight"),
                format!("must be a finite number >= 0, got {}", m.weight),
            ));
        }
    }
    if models.iter().map(|m| m.weight).sum::<f64>() <= 0.0 {
        return Err(ScriptError::invalid("models", "weights must not all be 0"));
    }
    Ok(())
}

fn check_request(r: &RequestTemplate) -> Check {
    if r.prompt_chars > PROMPT_CHARS_MAX {
        return Err(ScriptError::invalid(
            "request.prompt_chars",
            format!("must be at most {PROMPT_CHARS_MAX}, got {}", r.prompt_chars),
        ));
    }
    Ok(())
}

/// Fails when `value` is set on a kind that does not use it.
fn forbid<T>(key: &str, name: &str, value: &Option<T>, kind: &str) -> Check {
    match value {
        Some(_) => Err(ScriptError::invalid(
            format!("{key}.{name}"),
            format!("not used by kind \"{kind}\""),
        )),
        None => Ok(()),
    }
}

/// Returns the value of a key that `kind` requires.
fn require<T: Copy>(key: &str, name: &str, value: &Option<T>, kind: &str) -> Result<T, ScriptError> {
    value.ok_or_else(|| ScriptError::invalid(format!("{key}.{name}"), format!("required for kind \"{kind}\"")))
}

fn check_arrival(key: &str, a: &Arrival) -> Check {
    let kind = a.kind.as_str();
    match a.kind {
        ArrivalKind::Fixed | ArrivalKind::Poisson => {
            check_rate(
                &format!("{key}.rate_per_sec"),
                require(key, "rate_per_sec", &a.rate_per_sec, kind)?,
            )?;
            forbid(key, "period_ms", &a.period_ms, kind)?;
            forbid(key, "burst_size", &a.burst_size, kind)?;
            forbid(key, "outstanding", &a.outstanding, kind)?;
        }
        ArrivalKind::Burst => {
            if require(key, "period_ms", &a.period_ms, kind)? == 0 {
                return Err(ScriptError::invalid(format!("{key}.period_ms"), "must be > 0"));
            }
            let size = require(key, "burst_size", &a.burst_size, kind)?;
            if !(1..=BURST_SIZE_MAX).contains(&size) {
                return Err(ScriptError::invalid(
                    format!("{key}.burst_size"),
                    format!("must be in 1..={BURST_SIZE_MAX}, got {size}"),
                ));
            }
            forbid(key, "rate_per_sec", &a.rate_per_sec, kind)?;
            forbid(key, "outstanding", &a.outstanding, kind)?;
        }
        ArrivalKind::ClosedLoop => {
            let n = require(key, "outstanding", &a.outstanding, kind)?;
            if !(1..=OUTSTANDING_MAX).contains(&n) {
                return Err(ScriptError::invalid(
                    format!("{key}.outstanding"),
                    format!("must be in 1..={OUTSTANDING_MAX}, got {n}"),
                ));
            }
            forbid(key, "rate_per_sec", &a.rate_per_sec, kind)?;
            forbid(key, "period_ms", &a.period_ms, kind)?;
            forbid(key, "burst_size", &a.burst_size, kind)?;
        }
    }
    check_arrival_bounds(key, a)
}

fn check_arrival_bounds(key: &str, a: &Arrival) -> Check {
    if let Some(end_ms) = a.end_ms {
        check_window(key, a.start_ms, end_ms)?;
    }
    match (a.end_ms, a.count) {
        (None, None) => Err(ScriptError::invalid(
            key,
            "needs `end_ms` or `count`, or it would never end",
        )),
        (_, Some(0)) => Err(ScriptError::invalid(format!("{key}.count"), "must be >= 1")),
        _ if a.model.as_deref() == Some("") => Err(ScriptError::invalid(format!("{key}.model"), "must not be empty")),
        _ => Ok(()),
    }
}

fn check_rate(key: &str, rate: f64) -> Check {
    if !rate.is_finite() || rate <= 0.0 || rate > RATE_PER_SEC_MAX {
        return Err(ScriptError::invalid(
            key,
            format!("must be > 0 and <= {RATE_PER_SEC_MAX}, got {rate}"),
        ));
    }
    Ok(())
}

fn check_window(key: &str, start_ms: u64, end_ms: u64) -> Check {
    if end_ms <= start_ms {
        return Err(ScriptError::invalid(
            format!("{key}.end_ms"),
            format!("must be after start_ms ({start_ms}), got {end_ms}"),
        ));
    }
    Ok(())
}

fn check_job_ref(key: &str, job: u64, jobs_max: Option<u64>) -> Check {
    match jobs_max {
        Some(n) if job >= n => Err(ScriptError::invalid(
            key,
            format!("job {job} can never exist: the arrivals issue at most {n} jobs (indexes from 0)"),
        )),
        _ => Ok(()),
    }
}

fn check_cancel(key: &str, rule: &CancelRule, jobs_max: Option<u64>) -> Check {
    if let Some(job) = rule.job {
        check_job_ref(&format!("{key}.job"), job, jobs_max)?;
    }
    if let Some(f) = rule.fraction
        && !(0.0..=1.0).contains(&f)
    {
        return Err(ScriptError::invalid(
            format!("{key}.fraction"),
            format!("must be in 0..=1, got {f}"),
        ));
    }
    if rule.job.is_some() && rule.fraction.is_some() {
        return Err(ScriptError::invalid(
            format!("{key}.fraction"),
            "give either `job` or `fraction`, not both",
        ));
    }
    match rule.kind {
        CancelKind::At => {
            require(key, "job", &rule.job, "at")?;
            require(key, "at_ms", &rule.at_ms, "at")?;
            forbid(key, "after_chunks", &rule.after_chunks, "at")?;
            forbid(key, "delay_ms", &rule.delay_ms, "at")
        }
        CancelKind::AfterChunks => {
            if require(key, "after_chunks", &rule.after_chunks, "after_chunks")? == 0 {
                return Err(ScriptError::invalid(format!("{key}.after_chunks"), "must be >= 1"));
            }
            forbid(key, "at_ms", &rule.at_ms, "after_chunks")?;
            forbid(key, "delay_ms", &rule.delay_ms, "after_chunks")
        }
        CancelKind::Fraction => {
            require(key, "fraction", &rule.fraction, "fraction")?;
            forbid(key, "at_ms", &rule.at_ms, "fraction")?;
            forbid(key, "after_chunks", &rule.after_chunks, "fraction")
        }
        CancelKind::RaceCompletion => {
            forbid(key, "at_ms", &rule.at_ms, "race_completion")?;
            forbid(key, "after_chunks", &rule.after_chunks, "race_completion")?;
            forbid(key, "delay_ms", &rule.delay_ms, "race_completion")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Script, ScriptError> {
        Script::from_scenario_toml(&format!("[coordinator]\n{body}"))
    }

    fn err(body: &str) -> String {
        parse(body).unwrap_err().to_string()
    }

    /// A negative rate is rejected with the rate's key path.
    #[test]
    fn negative_rate() {
        let e = err("[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = -2.0\ncount = 3\n");
        assert!(e.starts_with("coordinator.arrivals[0].rate_per_sec:"), "{e}");
    }

    /// A process without `end_ms` or `count` would never end.
    #[test]
    fn endless_arrival() {
        let e = err("[[coordinator.arrivals]]\nkind = \"poisson\"\nrate_per_sec = 2.0\n");
        assert!(e.contains("coordinator.arrivals[0]: needs `end_ms` or `count`"), "{e}");
    }

    /// A cancel aimed past the last possible job is rejected.
    #[test]
    fn cancel_job_never_exists() {
        let e = err(
            "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\ncount = 3\n\
             [[coordinator.cancels]]\nkind = \"at\"\njob = 3\nat_ms = 10\n",
        );
        assert!(e.starts_with("coordinator.cancels[0].job:"), "{e}");
        assert!(e.contains("can never exist"), "{e}");
    }

    /// A window that ends before it starts is rejected.
    #[test]
    fn window_end_before_start() {
        let e = err("[[coordinator.read_pauses]]\nstart_ms = 500\nend_ms = 100\n");
        assert!(e.starts_with("coordinator.read_pauses[0].end_ms:"), "{e}");
    }

    /// A fraction outside 0..=1 is rejected.
    #[test]
    fn fraction_out_of_range() {
        let e = err("[[coordinator.cancels]]\nkind = \"fraction\"\nfraction = 1.5\n");
        assert!(e.starts_with("coordinator.cancels[0].fraction:"), "{e}");
    }

    /// A key that belongs to another kind is rejected by name.
    #[test]
    fn key_of_other_kind() {
        let e = err("[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\ncount = 1\noutstanding = 3\n");
        assert!(e.starts_with("coordinator.arrivals[0].outstanding:"), "{e}");
    }

    /// A required kind-specific key is reported missing.
    #[test]
    fn missing_kind_key() {
        let e = err(
            "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\ncount = 1\n[[coordinator.cancels]]\nkind = \"at\"\njob = 0\n",
        );
        assert!(e.starts_with("coordinator.cancels[0].at_ms: required"), "{e}");
    }

    /// Too many jobs are refused before any schedule is built.
    #[test]
    fn too_many_jobs() {
        let e = err("[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1000.0\nend_ms = 100000000\n");
        assert!(e.starts_with("coordinator.arrivals:"), "{e}");
    }

    /// A re-send timed from a cancel must wait out the resend guard.
    #[test]
    fn resend_after_cancel_within_guard() {
        let body = "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\ncount = 1\n\
                    [[coordinator.duplicates]]\njob = 0\nafter = \"cancel\"\ndelay_ms = 1999\n";
        let e = err(body);
        assert!(
            e.starts_with("coordinator.duplicates[0].delay_ms: must be >= resend_guard_ms (2000)"),
            "{e}"
        );
        parse(&body.replace("1999", "2000")).unwrap();
        parse(&format!("resend_guard_ms = 0\n{body}")).unwrap();
        let e = err("resend_guard_ms = 600001\n");
        assert!(e.starts_with("coordinator.resend_guard_ms:"), "{e}");
    }

    /// A full, valid script passes.
    #[test]
    fn full_script_is_valid() {
        parse(
            "provider_id = \"p\"\ndeadline_ms = 5000\n\
             [coordinator.handshake]\nmode = \"reject\"\nsessions = [1]\n\
             [[coordinator.models]]\nid = \"a\"\nweight = 3.0\n\
             [[coordinator.arrivals]]\nkind = \"burst\"\nperiod_ms = 100\nburst_size = 2\nend_ms = 1000\n\
             [[coordinator.arrivals]]\nkind = \"closed_loop\"\noutstanding = 2\ncount = 5\n\
             [[coordinator.cancels]]\nkind = \"race_completion\"\nfraction = 0.5\n\
             [[coordinator.duplicates]]\njob = 0\ndelay_ms = 5\n\
             [[coordinator.duplicates]]\njob = 1\nafter = \"terminal\"\n\
             [[coordinator.slow_reads]]\nstart_ms = 0\nend_ms = 10\nframes_per_sec = 2.0\n",
        )
        .unwrap();
    }
}
