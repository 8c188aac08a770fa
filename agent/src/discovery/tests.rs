//! Discovery with fake backends: priority, allow-list, pricing, skipping.

use async_trait::async_trait;

use super::*;
use crate::backend::{BackendError, BackendKind, Job, JobResult, JobSink};

/// A backend that answers discovery from fixed data.
struct FakeBackend {
    kind: BackendKind,
    id: String,
    healthy: bool,
    list_fails: bool,
    models: Vec<ModelInfo>,
}

#[async_trait]
impl Backend for FakeBackend {
    fn kind(&self) -> BackendKind {
        self.kind
    }
    fn id(&self) -> &str {
        &self.id
    }
    async fn health(&self) -> Result<(), BackendError> {
        if self.healthy {
            Ok(())
        } else {
            Err(BackendError::Unreachable("down".into()))
        }
    }
    async fn list_models(&self) -> Result<Vec<ModelInfo>, BackendError> {
        if self.list_fails {
            Err(BackendError::BadStatus {
                status: 500,
                body: String::new(),
            })
        } else {
            Ok(self.models.clone())
        }
    }
    async fn execute(&self, _job: &Job, _sink: &mut dyn JobSink) -> Result<JobResult, BackendError> {
        Err(BackendError::Other("fake backends do not execute".into()))
    }
}

fn fake(kind: BackendKind, id: &str, models: &[(&str, Option<u64>)]) -> FakeBackend {
    FakeBackend {
        kind,
        id: id.to_owned(),
        healthy: true,
        list_fails: false,
        models: models
            .iter()
            .map(|(m, c)| ModelInfo {
                model_id: (*m).to_owned(),
                context_window: *c,
            })
            .collect(),
    }
}

fn entry(backend: FakeBackend, allow_list: Option<&[&str]>) -> ConfiguredBackend {
    ConfiguredBackend {
        backend: Arc::new(backend),
        allow_list: allow_list.map(|l| l.iter().map(|s| (*s).to_owned()).collect()),
    }
}

fn config() -> AgentConfig {
    let text = r#"
[coordinator]
url = "wss://c/"
[identity]
key_path = "k"
[pricing]
default_input_per_1m = 1.0
default_output_per_1m = 2.0
[pricing.models."special"]
input_per_1m = 5.0
output_per_1m = 7.5
"#;
    AgentConfig::from_toml_str(text, "test").expect("valid test config")
}

fn served_by(routes: &Routes, model_id: &str) -> String {
    routes
        .get(model_id)
        .map(|r| r.backend.id().to_owned())
        .unwrap_or_default()
}

/// Proves the smaller kind wins regardless of config order, and config order breaks ties.
#[tokio::test]
async fn priority_then_config_order() {
    let backends = [
        entry(fake(BackendKind::Openrouter, "or", &[("a", None), ("b", None)]), None),
        entry(fake(BackendKind::Ollama, "ollama-1", &[("a", None), ("c", None)]), None),
        entry(fake(BackendKind::Ollama, "ollama-2", &[("c", None), ("d", None)]), None),
        entry(fake(BackendKind::Vllm, "vllm", &[("c", Some(8192))]), None),
    ];
    let routes = discover(&backends, &config()).await;
    assert_eq!(routes.model_ids().collect::<Vec<_>>(), vec!["a", "b", "c", "d"]);
    assert_eq!(served_by(&routes, "a"), "ollama-1");
    assert_eq!(served_by(&routes, "b"), "or");
    assert_eq!(served_by(&routes, "c"), "vllm");
    assert_eq!(served_by(&routes, "d"), "ollama-2");
    assert_eq!(routes.get("c").map(|r| r.model.context_window), Some(Some(8192)));

    let same_kind = [
        entry(fake(BackendKind::Ollama, "second-listed-first", &[("x", None)]), None),
        entry(fake(BackendKind::Ollama, "listed-second", &[("x", None)]), None),
    ];
    assert_eq!(
        served_by(&discover(&same_kind, &config()).await, "x"),
        "second-listed-first"
    );
}

/// Proves the allow-list filters a backend's models and lets a lower-priority backend serve the rest.
#[tokio::test]
async fn allow_list_filters_models() {
    let backends = [
        entry(
            fake(BackendKind::Vllm, "vllm", &[("a", None), ("b", None)]),
            Some(&["a", "missing"]),
        ),
        entry(fake(BackendKind::Ollama, "ollama", &[("b", None)]), None),
    ];
    let routes = discover(&backends, &config()).await;
    assert_eq!(routes.len(), 2);
    assert_eq!(served_by(&routes, "a"), "vllm");
    assert_eq!(served_by(&routes, "b"), "ollama");
    assert!(routes.get("missing").is_none());
}

/// Proves per-model price overrides apply and other models get the defaults.
#[tokio::test]
async fn pricing_override_else_default() {
    let backends = [entry(
        fake(BackendKind::Vllm, "vllm", &[("special", None), ("plain", None)]),
        None,
    )];
    let routes = discover(&backends, &config()).await;
    let special = routes.get("special").expect("routed");
    assert_eq!((special.input_per_1m, special.output_per_1m), (5.0, 7.5));
    let plain = routes.get("plain").expect("routed");
    assert_eq!((plain.input_per_1m, plain.output_per_1m), (1.0, 2.0));
}

/// Proves a backend failing health (or its model list) contributes nothing while others still do.
#[tokio::test]
async fn unhealthy_backends_are_skipped() {
    let mut sick = fake(BackendKind::Vllm, "sick", &[("a", None)]);
    sick.healthy = false;
    let mut broken_list = fake(BackendKind::Llamacpp, "broken", &[("a", None)]);
    broken_list.list_fails = true;
    let backends = [
        entry(sick, None),
        entry(broken_list, None),
        entry(fake(BackendKind::Ollama, "ok", &[("a", None)]), None),
    ];
    let routes = discover(&backends, &config()).await;
    assert_eq!(served_by(&routes, "a"), "ok");
    assert!(discover(&[], &config()).await.is_empty());
}

/// Proves capabilities are sorted by model id and carry kind, limit, price and context.
#[tokio::test]
async fn capabilities_sorted_with_kind_and_limit() {
    let backends = [
        entry(
            fake(BackendKind::Openrouter, "or", &[("zeta", None), ("alpha", Some(1000))]),
            None,
        ),
        entry(fake(BackendKind::Llamacpp, "llama", &[("mid", None)]), None),
    ];
    let capabilities = discover(&backends, &config()).await.capabilities(16);
    let summary: Vec<(&str, &str, u32, Option<u64>)> = capabilities
        .iter()
        .map(|c| {
            (
                c.model_id.as_str(),
                c.backend.as_str(),
                c.max_concurrent,
                c.context_window,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("alpha", "openrouter", 16, Some(1000)),
            ("mid", "llamacpp", 16, None),
            ("zeta", "openrouter", 16, None)
        ]
    );
    assert!(
        capabilities
            .iter()
            .all(|c| c.input_per_1m == 1.0 && c.output_per_1m == 2.0)
    );
}

/// Proves build_backends keeps config order, carries allow-lists, and skips a remote backend without its key.
#[test]
fn build_backends_skips_remote_without_key() {
    let text = r#"
[coordinator]
url = "wss://c/"
[identity]
key_path = "k"
[pricing]
default_input_per_1m = 1.0
default_output_per_1m = 2.0
[[backends]]
kind = "openrouter"
api_key_env = "UNSET_KEY"
models = ["o"]
[[backends]]
kind = "vllm"
models = ["m"]
[[backends]]
kind = "venice"
api_key_env = "SET_KEY"
models = ["v"]
"#;
    let config = AgentConfig::from_toml_str(text, "test").expect("valid");
    let env: EnvLookup = Arc::new(|name: &str| (name == "SET_KEY").then(|| "k".to_owned()));
    let built = build_backends(
        &config,
        Arc::new(crate::net::TcpConnector),
        crate::net::tls::client_config_webpki(),
        &env,
    )
    .expect("set up");
    let kinds: Vec<BackendKind> = built.iter().map(|b| b.backend.kind()).collect();
    assert_eq!(kinds, vec![BackendKind::Vllm, BackendKind::Venice]);
    assert_eq!(built[0].allow_list, Some(vec!["m".to_owned()]));
}
