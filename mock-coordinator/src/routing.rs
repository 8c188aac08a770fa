//! Routing by capabilities (`route_by_capabilities`): a job goes to a
//! session only if that session's latest `capabilities` lists its model.
//!
//! The agent may send `capabilities` again in steady state when the models
//! it serves change (protocol.md **(ext)**); the latest frame of a
//! connection replaces the earlier ones, as on a production coordinator.

use serde_json::Value;

use crate::coordinator::Coordinator;

/// Why a job for `model` must not be written to connection `conn`, or
/// `None` when it may (always, unless the script routes by capabilities).
pub(crate) fn refusal(coord: &Coordinator, conn: Option<u64>, model: &str) -> Option<String> {
    if !coord.script().route_by_capabilities {
        return None;
    }
    let conn = conn?;
    let advertised = coord.log().with(|s| {
        let latest = s
            .capabilities
            .iter()
            .rev()
            .find(|(c, _)| *c == conn)
            .map(|(_, caps)| caps);
        latest.is_some_and(|caps| lists(caps, model))
    });
    (!advertised).then(|| "model not advertised by the session's latest capabilities".to_owned())
}

/// Whether `capabilities.models` lists `model`.
fn lists(capabilities: &Value, model: &str) -> bool {
    capabilities["models"]
        .as_array()
        .is_some_and(|models| models.iter().any(|m| m["model_id"].as_str() == Some(model)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Proves a model is listed only by its exact `model_id`.
    #[test]
    fn lists_reads_model_ids() {
        let caps = json!({"models": [{"model_id": "a"}, {"model_id": "b"}]});
        assert!(lists(&caps, "a"));
        assert!(!lists(&caps, "c"));
        assert!(!lists(&json!({}), "a"));
    }
}
