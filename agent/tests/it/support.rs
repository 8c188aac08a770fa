//! Shared helpers: a collecting [`JobSink`], backend construction, jobs,
//! and per-test temporary directories.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use provider_agent::backend::openai::{AdapterLimits, OpenAiBackend};
use provider_agent::backend::{BackendKind, Job, JobSink, SinkError};
use provider_agent::config::{BackendConfig, SessionConfig};
use provider_agent::net::TcpConnector;
use provider_agent::net::tls::client_config_webpki;
use provider_agent::protocol::JobFormat;
use provider_agent::run::EnvLookup;
use serde_json::{Value, json};
use uuid::Uuid;

/// Collects relayed chunks; optionally reports `Gone` (a cancelled job)
/// once `accept_chunks` chunks have been accepted.
#[derive(Debug, Default)]
pub struct CollectSink {
    pub chunks: Vec<Bytes>,
    pub output_tokens: u64,
    pub accept_chunks: Option<usize>,
}

impl CollectSink {
    pub fn bytes(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

#[async_trait]
impl JobSink for CollectSink {
    async fn send_chunk(&mut self, chunk: Bytes) -> Result<(), SinkError> {
        if self.accept_chunks.is_some_and(|n| self.chunks.len() >= n) {
            return Err(SinkError::Gone);
        }
        assert!(!chunk.is_empty(), "the adapter must not relay empty chunks");
        self.chunks.push(chunk);
        Ok(())
    }

    fn set_output_tokens(&mut self, output_tokens: u64) {
        assert!(output_tokens >= self.output_tokens, "output token count went backwards");
        self.output_tokens = output_tokens;
    }
}

/// Limits with a short discovery timeout so probe tests stay quick.
pub fn limits() -> AdapterLimits {
    AdapterLimits {
        discovery_timeout_ms: 2_000,
        ..AdapterLimits::from_session(&SessionConfig::default())
    }
}

/// An adapter for `kind` at `url`, with `env` as its whole environment.
pub fn backend_with(
    kind: BackendKind,
    url: &str,
    api_key_env: Option<&str>,
    env: &[(&str, &str)],
    limits: AdapterLimits,
) -> OpenAiBackend {
    let cfg = BackendConfig {
        kind,
        url: Some(url.to_owned()),
        api_key_env: api_key_env.map(str::to_owned),
        models: None,
    };
    let vars: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let env: EnvLookup = Arc::new(move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
    OpenAiBackend::new(&cfg, Arc::new(TcpConnector), client_config_webpki(), &env, limits)
        .expect("valid backend config")
        .expect("backend not skipped")
}

/// A local vLLM adapter at `url`.
pub fn vllm(url: &str) -> OpenAiBackend {
    backend_with(BackendKind::Vllm, url, None, &[], limits())
}

/// A job whose request body is `request` (a JSON object).
pub fn job(model_id: &str, request: Value) -> Job {
    let Value::Object(request) = request else {
        panic!("request must be a JSON object")
    };
    Job {
        job_id: Uuid::from_u128(0x1234).into(),
        model_id: model_id.to_owned(),
        request,
        format: JobFormat::Openai,
    }
}

/// A typical chat request, as the coordinator sends it.
pub fn chat_job() -> Job {
    job(
        "m-1",
        json!({"messages": [{"role": "user", "content": "hi"}], "user": "job-1"}),
    )
}

/// A multi-event SSE body in the shape vLLM streams, with usage and `[DONE]`.
pub const SSE_BODY: &str = concat!(
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Héllo\"}}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" wörld ✓\"}}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3,\"total_tokens\":14}}\n\n",
    "data: [DONE]\n\n",
);

/// A directory under the system temp dir, unique to this test and process,
/// removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("provider-agent-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
