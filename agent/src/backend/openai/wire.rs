//! What the adapter writes and reads on the wire, as pure functions: the
//! chat-completions request rewrite, the per-kind probe paths, and the model
//! list parser.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::backend::{BackendKind, ModelInfo};

/// Path of the chat-completions endpoint under the base URL.
pub const CHAT_COMPLETIONS_PATH: &str = "/v1/chat/completions";
/// Path of the model list under the base URL (every kind).
pub const MODELS_PATH: &str = "/v1/models";

/// The health probe path of `kind` under the base URL (protocol.md table).
/// Remote kinds have no health endpoint; their model list (which also checks
/// the API key) serves as the probe.
pub fn health_path(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Vllm | BackendKind::Llamacpp => "/health",
        BackendKind::Lmstudio | BackendKind::Venice | BackendKind::Openrouter => MODELS_PATH,
        BackendKind::Ollama => "/api/tags",
    }
}

/// The request body sent to the backend: `request` unchanged except that
/// `stream` is forced to `true`, `stream_options.include_usage` is forced to
/// `true` (other `stream_options` keys are kept; a non-object
/// `stream_options` is replaced), and `model` is always set to `model_id`.
/// Forcing `include_usage` even over an explicit `false` is deliberate: the
/// agent must report usage for billing. Overwriting `model` is a security
/// rule (protocol.md): a job routed and priced as a cheap allow-listed model
/// must never reach another model on the operator's key or GPU.
pub fn chat_request_body(request: &Map<String, Value>, model_id: &str) -> Result<Bytes, serde_json::Error> {
    let mut body = request.clone();
    body.insert("stream".to_owned(), Value::Bool(true));
    match body.get_mut("stream_options") {
        Some(Value::Object(options)) => {
            options.insert("include_usage".to_owned(), Value::Bool(true));
        }
        _ => {
            let mut options = Map::new();
            options.insert("include_usage".to_owned(), Value::Bool(true));
            body.insert("stream_options".to_owned(), Value::Object(options));
        }
    }
    body.insert("model".to_owned(), Value::String(model_id.to_owned()));
    serde_json::to_vec(&body).map(Bytes::from)
}

/// Keys that carry a model's context window, in order of preference:
/// vLLM's `max_model_len`, then OpenRouter's `context_length`, then
/// `context_window` (used by some other servers).
const CONTEXT_KEYS: [&str; 3] = ["max_model_len", "context_length", "context_window"];

/// Parses an OpenAI-style model list (`{"data":[{"id":...}, ...]}`). Entries
/// without a non-empty string `id` are skipped; a context value that is not
/// a non-negative integer is ignored. The result is sorted by id with
/// duplicates removed (the first entry wins).
pub fn parse_model_list(body: &[u8]) -> Result<Vec<ModelInfo>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("model list is not JSON: {e}"))?;
    let data = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or("model list has no `data` array")?;
    let mut models: BTreeMap<&str, Option<u64>> = BTreeMap::new();
    for entry in data {
        let Some(model_id) = entry.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()) else {
            continue;
        };
        let context_window = CONTEXT_KEYS
            .iter()
            .find_map(|key| entry.get(*key).and_then(Value::as_u64));
        models.entry(model_id).or_insert(context_window);
    }
    Ok(models
        .into_iter()
        .map(|(model_id, context_window)| ModelInfo {
            model_id: model_id.to_owned(),
            context_window,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rewrite(request: Value) -> Value {
        let Value::Object(map) = request else {
            panic!("test request must be an object")
        };
        serde_json::from_slice(&chat_request_body(&map, "m-1").expect("serialises")).expect("json")
    }

    /// Proves stream is forced, include_usage added and model filled, other fields untouched.
    #[test]
    fn forces_stream_and_usage_and_fills_model() {
        let out = rewrite(json!({"messages": [{"role": "user", "content": "hi"}], "user": "job-1", "stream": false}));
        assert_eq!(
            out,
            json!({
                "messages": [{"role": "user", "content": "hi"}],
                "user": "job-1",
                "stream": true,
                "stream_options": {"include_usage": true},
                "model": "m-1",
            })
        );
    }

    /// Proves a `request.model` naming another model is overwritten by the routed model_id
    /// (issue 13 item 1: a cheap allow-listed model_id must not reach an expensive upstream model).
    #[test]
    fn routed_model_overrides_request_model() {
        let out = rewrite(json!({"model": "some-expensive-upstream-model", "messages": []}));
        assert_eq!(out["model"], "m-1");
        let out = rewrite(json!({"model": 7}));
        assert_eq!(out["model"], "m-1");
    }

    /// Proves other stream_options keys are kept while include_usage is forced.
    #[test]
    fn keeps_other_stream_options() {
        let out = rewrite(
            json!({"model": "alias", "stream_options": {"continuous_usage_stats": true, "include_usage": false}}),
        );
        assert_eq!(out["model"], "m-1");
        assert_eq!(
            out["stream_options"],
            json!({"continuous_usage_stats": true, "include_usage": true})
        );
    }

    /// Proves a null model and a non-object stream_options are replaced.
    #[test]
    fn replaces_null_model_and_non_object_stream_options() {
        let out = rewrite(json!({"model": null, "stream_options": null}));
        assert_eq!(out["model"], "m-1");
        assert_eq!(out["stream_options"], json!({"include_usage": true}));
    }

    /// Proves each kind's health path matches protocol.md.
    #[test]
    fn health_paths_follow_protocol_table() {
        assert_eq!(health_path(BackendKind::Vllm), "/health");
        assert_eq!(health_path(BackendKind::Llamacpp), "/health");
        assert_eq!(health_path(BackendKind::Lmstudio), "/v1/models");
        assert_eq!(health_path(BackendKind::Ollama), "/api/tags");
        assert_eq!(health_path(BackendKind::Openrouter), "/v1/models");
        assert_eq!(health_path(BackendKind::Venice), "/v1/models");
    }

    /// Proves model lists yield sorted unique ids with context from the known keys.
    #[test]
    fn model_list_reads_ids_and_context_windows() {
        let body = json!({"object": "list", "data": [
            {"id": "b", "max_model_len": 8192, "context_length": 1},
            {"id": "a", "context_length": 4096},
            {"id": "c", "context_window": 2048},
            {"id": "d"},
            {"id": "e", "max_model_len": -1},
            {"id": ""},
            {"name": "no id"},
            {"id": "a", "context_length": 1},
        ]});
        let models = parse_model_list(body.to_string().as_bytes()).expect("parses");
        let pairs: Vec<(&str, Option<u64>)> = models.iter().map(|m| (m.model_id.as_str(), m.context_window)).collect();
        assert_eq!(
            pairs,
            vec![
                ("a", Some(4096)),
                ("b", Some(8192)),
                ("c", Some(2048)),
                ("d", None),
                ("e", None)
            ]
        );
    }

    /// Proves non-JSON and data-less model lists give clear errors and an empty list is fine.
    #[test]
    fn model_list_errors_are_clear() {
        assert!(parse_model_list(b"<html>").expect_err("not json").contains("not JSON"));
        assert!(
            parse_model_list(b"{\"models\":[]}")
                .expect_err("no data")
                .contains("`data`")
        );
        assert_eq!(parse_model_list(b"{\"data\":[]}").expect("empty"), vec![]);
    }
}
