//! `heartbeat` and `capabilities`: recorded as sent, with their required
//! fields checked.

use serde_json::{Map, Value};

use super::fields::{f64_field, nullable_str_field, str_field, u64_field};
use crate::record::{HeartbeatRecord, ViolationKind};
use crate::state::LogState;

/// Records a heartbeat; every missing or ill-typed field is named in one
/// violation.
pub(crate) fn on_heartbeat(state: &mut LogState, conn: u64, at_us: u64, obj: &Map<String, Value>) {
    let mut missing: Vec<&str> = Vec::new();
    let mut float = |key: &'static str| {
        let v = f64_field(obj, key);
        if v.is_none() {
            missing.push(key);
        }
        v
    };
    let tokens_per_sec_p50 = float("tokens_per_sec_p50");
    let p50_latency_ms = float("p50_latency_ms");
    let p95_latency_ms = float("p95_latency_ms");
    let error_rate_60s = float("error_rate_60s");
    let queue_depth = u64_field(obj, "queue_depth");
    if queue_depth.is_none() {
        missing.push("queue_depth");
    }
    let mut nullable = |key: &'static str| {
        nullable_str_field(obj, key).unwrap_or_else(|()| {
            missing.push(key);
            None
        })
    };
    let last_error_at = nullable("last_error_at");
    let last_error_code = nullable("last_error_code");
    if !missing.is_empty() {
        let what = format!("heartbeat has missing or ill-typed fields: {}", missing.join(", "));
        state.violation(at_us, conn, ViolationKind::BadField, None, what);
    }
    state.heartbeats.push(HeartbeatRecord {
        at_us,
        conn,
        queue_depth,
        tokens_per_sec_p50,
        p50_latency_ms,
        p95_latency_ms,
        error_rate_60s,
        last_error_at,
        last_error_code,
    });
}

/// Records `capabilities` and checks its shape and the model order.
pub(crate) fn on_capabilities(state: &mut LogState, conn: u64, at_us: u64, obj: Map<String, Value>) {
    let mut problems: Vec<String> = Vec::new();
    match obj.get("models").and_then(Value::as_array) {
        None => problems.push("`models` is not an array".into()),
        Some(models) => {
            let ids: Vec<Option<&str>> = models
                .iter()
                .map(|m| m.as_object().and_then(|m| str_field(m, "model_id")))
                .collect();
            if ids.iter().any(Option::is_none) {
                problems.push("a model has no string `model_id`".into());
            } else if !ids.windows(2).all(|w| w[0] <= w[1]) {
                let order: Vec<&str> = ids.iter().flatten().copied().collect();
                let what = format!("capabilities.models not sorted by model_id: {order:?}");
                state.violation(at_us, conn, ViolationKind::CapabilitiesUnsorted, None, what);
            }
        }
    }
    let limits = obj.get("limits").and_then(Value::as_object);
    if limits.and_then(|l| u64_field(l, "max_concurrent_total")).is_none() {
        problems.push("`limits.max_concurrent_total` is missing".into());
    }
    let metadata = obj.get("metadata").and_then(Value::as_object);
    if metadata.and_then(|m| str_field(m, "agent_version")).is_none() {
        problems.push("`metadata.agent_version` is missing".into());
    }
    if !problems.is_empty() {
        let what = format!("capabilities: {}", problems.join("; "));
        state.violation(at_us, conn, ViolationKind::BadField, None, what);
    }
    state.capabilities.push((conn, Value::Object(obj)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    /// A complete heartbeat records every field and no violation.
    #[test]
    fn full_heartbeat() {
        let mut s = LogState::default();
        let hb = json!({"type":"heartbeat","queue_depth":2,"tokens_per_sec_p50":10.5,"p50_latency_ms":3.0,
            "p95_latency_ms":9.0,"error_rate_60s":0.0,"last_error_at":null,"last_error_code":"internal"});
        on_heartbeat(&mut s, 1, 7, &obj(hb));
        assert!(s.violations.is_empty());
        assert_eq!(s.heartbeats[0].queue_depth, Some(2));
        assert_eq!(s.heartbeats[0].last_error_code.as_deref(), Some("internal"));
    }

    /// A heartbeat missing fields names them.
    #[test]
    fn partial_heartbeat() {
        let mut s = LogState::default();
        on_heartbeat(&mut s, 1, 7, &obj(json!({"type":"heartbeat","queue_depth":"x"})));
        assert!(s.violations[0].what.contains("queue_depth"));
        assert!(s.violations[0].what.contains("last_error_at"));
        assert_eq!(s.heartbeats.len(), 1);
    }

    /// Unsorted models are a violation; the frame is still recorded.
    #[test]
    fn unsorted_capabilities() {
        let mut s = LogState::default();
        let caps = json!({"type":"capabilities","models":[{"model_id":"b"},{"model_id":"a"}],
            "limits":{"max_concurrent_total":4,"max_tokens_per_minute":null},"metadata":{"agent_version":"1"}});
        on_capabilities(&mut s, 1, 3, obj(caps));
        assert_eq!(s.violations.len(), 1);
        assert_eq!(s.violations[0].kind, ViolationKind::CapabilitiesUnsorted);
        assert_eq!(s.capabilities.len(), 1);
    }
}
