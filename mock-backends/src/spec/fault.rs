//! One scripted fault: what goes wrong, and on which requests.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// A `[[backends.faults]]` table. Which of the optional keys a fault takes
/// depends on its `kind`; `validate` refuses the ones it does not use.
///
/// A fault fires on a request when the request is inside the
/// `from_ms..until_ms` window (if given), is for one of `models` (if given),
/// and either its ordinal is listed in `nth` or a draw against `probability`
/// hits. With neither `nth` nor `probability` it fires on every such request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// What goes wrong.
    pub kind: FaultKind,
    /// Chance in `0..=1` that it fires on a request, drawn from the host RNG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// 1-based ordinals of the requests it fires on, counted per kind class
    /// (chat completions, health checks, or connections). An integer or a list.
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub nth: Vec<u64>,
    /// Active from this clock time on, milliseconds since the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<u64>,
    /// Active before this clock time, milliseconds since the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// Chat faults only: fire only on requests for these model ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// `status` and `health_fail`: the HTTP status answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `stall`, `cut`, `malformed_sse`: completion tokens written first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_tokens: Option<u64>,
    /// `health_slow`: extra delay of the health answer, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

/// The faults a backend can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer `status` with an OpenAI-style error body instead of streaming.
    Status,
    /// After `after_tokens` tokens keep the connection open and send nothing.
    Stall,
    /// After `after_tokens` tokens close the connection (TCP reset where possible).
    Cut,
    /// After `after_tokens` tokens write one SSE event whose JSON is broken.
    MalformedSse,
    /// Leave out the `usage` event even when the request asked for it.
    MissingUsage,
    /// Delay the health answer by `delay_ms`.
    HealthSlow,
    /// Answer the health check with `status` (default 503).
    HealthFail,
    /// Refuse connections: `accepts_connections` is false.
    HostDown,
}

/// Which requests a fault's `nth` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultClass {
    /// `POST /v1/chat/completions`.
    Chat,
    /// Requests to the kind's health path.
    Health,
    /// Accepted connections (calls to `accepts_connections`).
    Connection,
}

impl FaultKind {
    /// The snake_case name, as in TOML and in `RequestRecord::faults`.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Status => "status",
            FaultKind::Stall => "stall",
            FaultKind::Cut => "cut",
            FaultKind::MalformedSse => "malformed_sse",
            FaultKind::MissingUsage => "missing_usage",
            FaultKind::HealthSlow => "health_slow",
            FaultKind::HealthFail => "health_fail",
            FaultKind::HostDown => "host_down",
        }
    }

    /// What `nth` counts for this kind.
    pub fn class(self) -> FaultClass {
        match self {
            FaultKind::Status
            | FaultKind::Stall
            | FaultKind::Cut
            | FaultKind::MalformedSse
            | FaultKind::MissingUsage => FaultClass::Chat,
            FaultKind::HealthSlow | FaultKind::HealthFail => FaultClass::Health,
            FaultKind::HostDown => FaultClass::Connection,
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Accepts `nth = 3` as well as `nth = [3, 7]`.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
    deserializer.deserialize_any(OneOrMany)
}

struct OneOrMany;

impl<'de> Visitor<'de> for OneOrMany {
    type Value = Vec<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a request ordinal or an array of them")
    }

    fn visit_u64<E: de::Error>(self, ordinal: u64) -> Result<Self::Value, E> {
        Ok(vec![ordinal])
    }

    fn visit_i64<E: de::Error>(self, ordinal: i64) -> Result<Self::Value, E> {
        u64::try_from(ordinal)
            .map(|ordinal| vec![ordinal])
            .map_err(|_| E::custom("a request ordinal cannot be negative"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut ordinals = Vec::new();
        while let Some(ordinal) = seq.next_element::<u64>()? {
            ordinals.push(ordinal);
        }
        Ok(ordinals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nth` takes one ordinal or a list, and fault kinds use snake_case.
    #[test]
    fn nth_one_or_many() {
        let one: FaultSpec = toml::from_str("kind = \"cut\"\nnth = 3\nafter_tokens = 1").unwrap();
        assert_eq!(one.nth, vec![3]);
        assert_eq!(one.kind, FaultKind::Cut);
        let many: FaultSpec = toml::from_str("kind = \"malformed_sse\"\nnth = [1, 4]").unwrap();
        assert_eq!(many.nth, vec![1, 4]);
        assert!(toml::from_str::<FaultSpec>("kind = \"cut\"\nnth = -1").is_err());
    }
}
