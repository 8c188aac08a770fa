//! The health and model-list bodies of each kind, built once per backend
//! from the profile's model ids and context windows.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::spec::{BackendSpec, Kind, ModelProfile};

/// `created` of every model and the epoch of every completion's `created`:
/// 2025-01-01T00:00:00Z, so output does not depend on the wall clock.
pub const CREATED_EPOCH_S: u64 = 1_735_689_600;
/// `modified_at` of Ollama's tags, matching `CREATED_EPOCH_S`.
const OLLAMA_MODIFIED_AT: &str = "2025-01-01T00:00:00Z";

/// Prebuilt bodies of one backend.
pub(crate) struct Catalog {
    /// `GET /v1/models` in the kind's shape.
    pub models: Bytes,
    /// The healthy answer of the kind's health path, and its content type.
    pub health_ok: (Option<&'static str>, Bytes),
    /// LM Studio's `GET /api/v0/models`, with `max_context_length`.
    pub lmstudio_models: Bytes,
}

impl Catalog {
    pub fn new(spec: &BackendSpec) -> Self {
        let models = to_bytes(&models_list(spec.kind, &spec.models));
        let health_ok = match spec.kind {
            Kind::Vllm => (None, Bytes::new()),
            Kind::Llamacpp => (Some(super::respond::JSON), to_bytes(&json!({"status": "ok"}))),
            Kind::Lmstudio => (Some(super::respond::JSON), models.clone()),
            Kind::Ollama => (Some(super::respond::JSON), to_bytes(&ollama_tags(&spec.models))),
        };
        Self {
            models,
            health_ok,
            lmstudio_models: to_bytes(&lmstudio_v0(&spec.models)),
        }
    }
}

fn to_bytes(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}

fn models_list(kind: Kind, models: &[ModelProfile]) -> Value {
    let data: Vec<Value> = models.iter().map(|m| model_entry(kind, m)).collect();
    json!({"object": "list", "data": data})
}

fn model_entry(kind: Kind, model: &ModelProfile) -> Value {
    let id = &model.id;
    match kind {
        Kind::Vllm => json!({
            "id": id, "object": "model", "created": CREATED_EPOCH_S, "owned_by": "vllm",
            "root": id, "parent": null, "max_model_len": model.context_window, "permission": [],
        }),
        Kind::Llamacpp => json!({
            "id": id, "object": "model", "created": CREATED_EPOCH_S, "owned_by": "llamacpp",
            "meta": {"n_ctx_train": model.context_window},
        }),
        Kind::Lmstudio => json!({"id": id, "object": "model", "owned_by": "organization_owner"}),
        Kind::Ollama => json!({
            "id": id, "object": "model", "created": CREATED_EPOCH_S, "owned_by": "library",
        }),
    }
}

fn lmstudio_v0(models: &[ModelProfile]) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|m| {
            json!({
                "id": m.id, "object": "model", "type": "llm", "publisher": "mock",
                "arch": "llama", "compatibility_type": "gguf", "quantization": "Q4_K_M",
                "state": "loaded", "max_context_length": m.context_window,
            })
        })
        .collect();
    json!({"object": "list", "data": data})
}

fn ollama_details() -> Value {
    json!({
        "format": "gguf", "family": "llama", "families": ["llama"],
        "parameter_size": "8B", "quantization_level": "Q4_K_M",
    })
}

fn ollama_tags(models: &[ModelProfile]) -> Value {
    let entries: Vec<Value> = models
        .iter()
        .map(|m| {
            json!({
                "name": m.id, "model": m.id, "modified_at": OLLAMA_MODIFIED_AT, "size": 0,
                "digest": "0".repeat(64), "details": ollama_details(),
            })
        })
        .collect();
    json!({"models": entries})
}

/// Ollama's `POST /api/show` answer for `model`, with the context length
/// under `model_info`, or `None` when the model is not served.
pub(crate) fn ollama_show(models: &[ModelProfile], model: &str) -> Option<Bytes> {
    let profile = models.iter().find(|m| m.id == model)?;
    Some(to_bytes(&json!({
        "details": ollama_details(),
        "model_info": {
            "general.architecture": "llama",
            "llama.context_length": profile.context_window,
        },
        "capabilities": ["completion"],
        "modified_at": OLLAMA_MODIFIED_AT,
    })))
}

/// The answer of a health check before `ready_after_ms`: llama.cpp's
/// "Loading model" error, used for every kind.
pub(crate) fn loading_body() -> Bytes {
    to_bytes(&json!({
        "error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: &str) -> BackendSpec {
        let text = format!(
            "kind = \"{kind}\"\n[[models]]\nid = \"a\"\ncontext_window = 111\n\
             [[models]]\nid = \"b\"\ncontext_window = 222\n"
        );
        crate::spec::parse_profile_toml(&text).unwrap()
    }

    fn json_of(bytes: &Bytes) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    /// Every kind lists the profile's ids; context windows are where each kind puts them.
    #[test]
    fn model_lists_per_kind() {
        let vllm = json_of(&Catalog::new(&spec("vllm")).models);
        assert_eq!(vllm["data"][1]["id"], "b");
        assert_eq!(vllm["data"][1]["max_model_len"], 222);
        let llama = json_of(&Catalog::new(&spec("llamacpp")).models);
        assert_eq!(llama["data"][0]["meta"]["n_ctx_train"], 111);
        let lms = Catalog::new(&spec("lmstudio"));
        assert_eq!(json_of(&lms.models)["data"][0]["id"], "a");
        assert_eq!(json_of(&lms.lmstudio_models)["data"][1]["max_context_length"], 222);
        let ollama = Catalog::new(&spec("ollama"));
        assert_eq!(json_of(&ollama.health_ok.1)["models"][1]["name"], "b");
        let show = ollama_show(&spec("ollama").models, "b").unwrap();
        assert_eq!(json_of(&show)["model_info"]["llama.context_length"], 222);
        assert!(ollama_show(&spec("ollama").models, "zz").is_none());
    }
}
