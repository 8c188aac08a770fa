//! Discovery: which configured backend serves which model, at what price.
//!
//! For every backend: health → model list → allow-list → pricing → routes.
//! A backend that fails its health probe or its model list is skipped with a
//! warning. When several backends serve one model, the smaller
//! [`BackendKind`] wins (its derived `Ord` is protocol.md's priority: vllm,
//! llamacpp, lmstudio, ollama, venice, openrouter); between backends of the
//! same kind, the one listed first in `agent.toml` wins.
//!
//! Backends and their allow-lists travel together as [`ConfiguredBackend`]s
//! (rather than being matched to `config.backends` by index) because
//! [`build_backends`] skips remote backends whose API key is absent, which
//! would shift the indices.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::backend::openai::{AdapterLimits, OpenAiBackend};
use crate::backend::{Backend, ModelInfo};
use crate::config::AgentConfig;
use crate::deps::EnvLookup;
use crate::net::SharedConnector;
use crate::protocol::ModelCapability;

pub use crate::backend::openai::BackendSetupError;

/// A backend plus the allow-list of its `[[backends]]` entry, in config order.
#[derive(Clone)]
pub struct ConfiguredBackend {
    pub backend: Arc<dyn Backend>,
    /// `models` of the entry: when `Some`, only these model ids are served.
    pub allow_list: Option<Vec<String>>,
}

/// Where jobs for one model go, and what they cost.
#[derive(Clone)]
pub struct Route {
    pub backend: Arc<dyn Backend>,
    pub model: ModelInfo,
    pub input_per_1m: f64,
    pub output_per_1m: f64,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("backend", &self.backend.id())
            .field("model", &self.model)
            .field("input_per_1m", &self.input_per_1m)
            .field("output_per_1m", &self.output_per_1m)
            .finish()
    }
}

/// The routing table: model id → [`Route`].
#[derive(Clone, Debug, Default)]
pub struct Routes {
    by_model: BTreeMap<String, Route>,
}

impl Routes {
    pub fn get(&self, model_id: &str) -> Option<&Route> {
        self.by_model.get(model_id)
    }

    pub fn len(&self) -> usize {
        self.by_model.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_model.is_empty()
    }

    /// Model ids in ascending order.
    pub fn model_ids(&self) -> impl Iterator<Item = &str> {
        self.by_model.keys().map(String::as_str)
    }

    /// `capabilities.models`, sorted by `model_id`; `backend` is the serving
    /// backend's kind and `max_concurrent` the agent's limit.
    pub fn capabilities(&self, max_concurrent: u32) -> Vec<ModelCapability> {
        let capabilities: Vec<ModelCapability> = self
            .by_model
            .values()
            .map(|route| ModelCapability {
                model_id: route.model.model_id.clone(),
                input_per_1m: route.input_per_1m,
                output_per_1m: route.output_per_1m,
                max_concurrent,
                backend: route.backend.kind().as_str().to_owned(),
                context_window: route.model.context_window,
            })
            .collect();
        debug_assert!(
            capabilities.windows(2).all(|w| w[0].model_id < w[1].model_id),
            "capabilities must be sorted and unique"
        );
        capabilities
    }

    /// Adds `route` unless a higher-priority backend (smaller kind) already
    /// serves the model. Equal kinds keep the earlier route.
    fn offer(&mut self, route: Route) {
        match self.by_model.get(&route.model.model_id) {
            Some(existing) if existing.backend.kind() <= route.backend.kind() => {}
            _ => {
                self.by_model.insert(route.model.model_id.clone(), route);
            }
        }
    }
}

/// Sets up one [`OpenAiBackend`] per `[[backends]]` entry, in config order,
/// skipping (with a warning) remote entries whose API key is absent.
pub fn build_backends(
    config: &AgentConfig,
    connector: SharedConnector,
    tls: Arc<rustls::ClientConfig>,
    env: &EnvLookup,
) -> Result<Vec<ConfiguredBackend>, BackendSetupError> {
    let limits = AdapterLimits::from_session(&config.session);
    let mut backends = Vec::with_capacity(config.backends.len());
    for entry in &config.backends {
        if let Some(backend) = OpenAiBackend::new(entry, Arc::clone(&connector), Arc::clone(&tls), env, limits)? {
            backends.push(ConfiguredBackend {
                backend: Arc::new(backend),
                allow_list: entry.models.clone(),
            });
        }
    }
    Ok(backends)
}

/// Probes every backend (concurrently; each probe is bounded by the
/// backend's own discovery timeout) and builds the routing table. The result
/// does not depend on which probe finishes first.
pub async fn discover(backends: &[ConfiguredBackend], config: &AgentConfig) -> Routes {
    let probes = backends.iter().map(probe);
    let listed: Vec<Vec<ModelInfo>> = futures_util::future::join_all(probes).await;
    let mut routes = Routes::default();
    for (entry, models) in backends.iter().zip(listed) {
        for model in models {
            let (input_per_1m, output_per_1m) = price(config, &model.model_id);
            routes.offer(Route {
                backend: Arc::clone(&entry.backend),
                model,
                input_per_1m,
                output_per_1m,
            });
        }
    }
    tracing::info!(models = routes.len(), backends = backends.len(), "discovery finished");
    routes
}

/// Health, then model list, then allow-list, for one backend. Failures
/// yield no models.
async fn probe(entry: &ConfiguredBackend) -> Vec<ModelInfo> {
    let backend = &entry.backend;
    if let Err(error) = backend.health().await {
        tracing::warn!(backend = backend.id(), %error, "backend failed its health probe; skipped");
        return Vec::new();
    }
    let models = match backend.list_models().await {
        Ok(models) => models,
        Err(error) => {
            tracing::warn!(backend = backend.id(), %error, "backend model list failed; skipped");
            return Vec::new();
        }
    };
    let Some(allow_list) = &entry.allow_list else {
        return models;
    };
    for wanted in allow_list {
        if !models.iter().any(|m| &m.model_id == wanted) {
            tracing::warn!(backend = backend.id(), model = %wanted, "allow-listed model is not served by the backend");
        }
    }
    models
        .into_iter()
        .filter(|m| allow_list.contains(&m.model_id))
        .collect()
}

/// The model's `[pricing.models."id"]` override, else the defaults.
fn price(config: &AgentConfig, model_id: &str) -> (f64, f64) {
    match config.pricing.models.get(model_id) {
        Some(price) => (price.input_per_1m, price.output_per_1m),
        None => (
            config.pricing.default_input_per_1m,
            config.pricing.default_output_per_1m,
        ),
    }
}

#[cfg(test)]
mod tests;
