//! Arrival processes, the model mix and the request template.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How an [`Arrival`] spaces its jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalKind {
    /// Open loop: one job every `1000 / rate_per_sec` ms from `start_ms`.
    Fixed,
    /// Open loop: exponentially distributed gaps with mean
    /// `1000 / rate_per_sec` ms, drawn from the seeded RNG.
    Poisson,
    /// Open loop: `burst_size` jobs at once every `period_ms`.
    Burst,
    /// Closed loop: keeps `outstanding` jobs in flight; a job leaves the loop
    /// when its terminal frame arrives, its cancel is written, or its session
    /// is lost. Issues only while a session is authenticated.
    ClosedLoop,
}

impl ArrivalKind {
    /// The kind's name as written in the script.
    pub fn as_str(self) -> &'static str {
        match self {
            ArrivalKind::Fixed => "fixed",
            ArrivalKind::Poisson => "poisson",
            ArrivalKind::Burst => "burst",
            ArrivalKind::ClosedLoop => "closed_loop",
        }
    }
}

/// One arrival process. Kind-specific keys are rejected on other kinds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    pub kind: ArrivalKind,
    /// `fixed`, `poisson`: jobs per second (> 0).
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// `burst`: time between the starts of two bursts.
    #[serde(default)]
    pub period_ms: Option<u64>,
    /// `burst`: jobs per burst (≥ 1).
    #[serde(default)]
    pub burst_size: Option<u32>,
    /// `closed_loop`: jobs kept in flight (1..=1024).
    #[serde(default)]
    pub outstanding: Option<u32>,
    /// First possible arrival time.
    #[serde(default)]
    pub start_ms: u64,
    /// No arrival at or after this time. At least one of `end_ms` and
    /// `count` is required so that every process ends.
    #[serde(default)]
    pub end_ms: Option<u64>,
    /// Most jobs this process issues.
    #[serde(default)]
    pub count: Option<u64>,
    /// Pins every job of this process to one model instead of the mix.
    #[serde(default)]
    pub model: Option<String>,
    /// Overrides the script's `deadline_ms` for this process's jobs.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
}

/// One entry of the model mix: `id` is chosen with probability
/// `weight / sum(weights)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelWeight {
    pub id: String,
    #[serde(default = "weight_default")]
    pub weight: f64,
}

fn weight_default() -> f64 {
    1.0
}

/// Value of a job frame's `format` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobFormat {
    Openai,
    Anthropic,
}

/// Default `max_tokens` of a request body.
pub const MAX_TOKENS_DEFAULT: u32 = 64;
/// Default length of the user message, in characters.
pub const PROMPT_CHARS_DEFAULT: u32 = 64;

/// Shape of every job's OpenAI chat-completions body:
/// `{"model", "messages": [{"role": "user", "content": <prompt_chars>}],
/// "max_tokens", "stream": true, "user": <job_id>, ...extra}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestTemplate {
    /// `max_tokens` of the body.
    pub max_tokens: u32,
    /// Length of the single user message, in characters.
    pub prompt_chars: u32,
    /// `format` field of the job frame; absent means the field is omitted.
    pub format: Option<JobFormat>,
    /// Extra keys merged into the body last (they win over the keys above,
    /// except `user`, which always carries the job id).
    pub extra: Map<String, Value>,
}

impl Default for RequestTemplate {
    fn default() -> Self {
        RequestTemplate {
            max_tokens: MAX_TOKENS_DEFAULT,
            prompt_chars: PROMPT_CHARS_DEFAULT,
            format: None,
            extra: Map::new(),
        }
    }
}

impl Arrival {
    /// Upper bound on the jobs this process can issue, when it is finite
    /// and computable without the RNG (`poisson` and `closed_loop` without
    /// `count` are bounded only by time).
    pub fn jobs_max(&self) -> Option<u64> {
        let by_time = self.end_ms.and_then(|end_ms| {
            let span_ms = end_ms.saturating_sub(self.start_ms);
            match self.kind {
                ArrivalKind::Fixed => self
                    .rate_per_sec
                    .map(|rate| ((span_ms as f64) * rate / 1000.0).ceil() as u64),
                ArrivalKind::Burst => {
                    let period_ms = self.period_ms?.max(1);
                    let bursts = span_ms.div_ceil(period_ms);
                    Some(bursts.saturating_mul(u64::from(self.burst_size?)))
                }
                ArrivalKind::Poisson | ArrivalKind::ClosedLoop => None,
            }
        });
        match (by_time, self.count) {
            (Some(t), Some(c)) => Some(t.min(c)),
            (t, c) => t.or(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(kind: ArrivalKind) -> Arrival {
        Arrival {
            kind,
            rate_per_sec: None,
            period_ms: None,
            burst_size: None,
            outstanding: None,
            start_ms: 0,
            end_ms: None,
            count: None,
            model: None,
            deadline_ms: None,
        }
    }

    /// The job bound of a fixed process is rate times span, capped by count.
    #[test]
    fn fixed_jobs_max() {
        let mut a = arrival(ArrivalKind::Fixed);
        a.rate_per_sec = Some(10.0);
        a.start_ms = 1000;
        a.end_ms = Some(2000);
        assert_eq!(a.jobs_max(), Some(10));
        a.count = Some(3);
        assert_eq!(a.jobs_max(), Some(3));
    }

    /// A burst process issues whole bursts per started period.
    #[test]
    fn burst_jobs_max() {
        let mut a = arrival(ArrivalKind::Burst);
        a.period_ms = Some(300);
        a.burst_size = Some(4);
        a.end_ms = Some(1000);
        assert_eq!(a.jobs_max(), Some(16));
    }

    /// Poisson without a count has no RNG-free bound.
    #[test]
    fn poisson_unbounded_without_count() {
        let mut a = arrival(ArrivalKind::Poisson);
        a.rate_per_sec = Some(5.0);
        a.end_ms = Some(1000);
        assert_eq!(a.jobs_max(), None);
    }
}
