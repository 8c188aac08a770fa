//! The adapter against wiremock over loopback HTTP: byte-exact relay, status
//! mapping, request rewriting, probes per kind, and discovery end to end.

use std::sync::Arc;
use std::time::Duration;

use provider_agent::backend::openai::AdapterLimits;
use provider_agent::backend::{Backend as _, BackendError, BackendKind};
use provider_agent::config::AgentConfig;
use provider_agent::discovery::{build_backends, discover};
use provider_agent::net::TcpConnector;
use provider_agent::net::tls::client_config_webpki;
use provider_agent::run::EnvLookup;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{CollectSink, SSE_BODY, backend_with, chat_job, job, limits, vllm};

async fn chat_server(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

fn sse(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "text/event-stream")
}

/// Proves a multi-event SSE body is relayed byte for byte, with usage and the token count reported.
#[tokio::test]
async fn relay_is_byte_exact() {
    let server = chat_server(sse(SSE_BODY)).await;
    let mut sink = CollectSink::default();
    let result = vllm(&server.uri())
        .execute(&chat_job(), &mut sink)
        .await
        .expect("completes");
    assert_eq!(String::from_utf8(sink.bytes()).expect("utf-8"), SSE_BODY);
    assert_eq!((result.input_tokens, result.output_tokens), (Some(11), Some(3)));
    assert_eq!(sink.output_tokens, 3);
}

/// Proves a stream without a usage event completes with unknown usage and the content-event estimate.
#[tokio::test]
async fn missing_usage_is_unknown_not_an_error() {
    let body = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n";
    let server = chat_server(sse(body)).await;
    let mut sink = CollectSink::default();
    let result = vllm(&server.uri())
        .execute(&chat_job(), &mut sink)
        .await
        .expect("clean EOF is success");
    assert_eq!((result.input_tokens, result.output_tokens), (None, None));
    assert_eq!(sink.output_tokens, 2);
    assert_eq!(sink.bytes(), body.as_bytes());
}

/// Proves 401/403 map to auth_rejected_by_backend and 404/429/500 to internal, with the error body quoted (bounded).
#[tokio::test]
async fn statuses_map_to_protocol_codes() {
    let cases = [
        (401, "auth_rejected_by_backend"),
        (403, "auth_rejected_by_backend"),
        (404, "internal"),
        (429, "internal"),
        (500, "internal"),
    ];
    for (status, code) in cases {
        let server =
            chat_server(ResponseTemplate::new(status).set_body_string(format!("model m-1 says {status}"))).await;
        let mut sink = CollectSink::default();
        let err = vllm(&server.uri())
            .execute(&chat_job(), &mut sink)
            .await
            .expect_err("non-2xx");
        assert_eq!(err.code().as_str(), code, "status {status}");
        assert_eq!(
            err,
            BackendError::BadStatus {
                status,
                body: format!("model m-1 says {status}")
            }
        );
        assert!(sink.chunks.is_empty(), "an error body must not be relayed");
    }
}

/// Proves an error body longer than error_body_bytes_max is truncated in the error.
#[tokio::test]
async fn long_error_body_is_truncated() {
    let server = chat_server(ResponseTemplate::new(500).set_body_string("x".repeat(10_000))).await;
    let small = AdapterLimits {
        error_body_bytes_max: 100,
        ..limits()
    };
    let backend = backend_with(BackendKind::Vllm, &server.uri(), None, &[], small);
    let err = backend
        .execute(&chat_job(), &mut CollectSink::default())
        .await
        .expect_err("500");
    let BackendError::BadStatus { body, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(body, format!("{} …", "x".repeat(100)));
}

/// Proves the request body is rewritten (stream forced, include_usage added, model filled in) with every other field untouched, and the headers are right.
#[tokio::test]
async fn request_body_rewriting_and_headers() {
    let server = chat_server(sse("data: [DONE]\n\n")).await;
    let request = json!({
        "messages": [{"role": "user", "content": "hi"}],
        "user": "job-42",
        "temperature": 0.5,
        "stream": false,
        "stream_options": {"continuous_usage_stats": true},
        "tools": [{"type": "function", "function": {"name": "f"}}],
    });
    vllm(&server.uri())
        .execute(&job("m-1", request.clone()), &mut CollectSink::default())
        .await
        .expect("completes");
    let received = server.received_requests().await.expect("recording on");
    assert_eq!(received.len(), 1);
    let sent: Value = serde_json::from_slice(&received[0].body).expect("json body");
    let mut expected = request;
    expected["stream"] = json!(true);
    expected["stream_options"] = json!({"continuous_usage_stats": true, "include_usage": true});
    expected["model"] = json!("m-1");
    assert_eq!(sent, expected);
    let headers = &received[0].headers;
    let port = server.address().port();
    assert_eq!(
        headers.get("host").map(|v| v.to_str().expect("ascii")),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert_eq!(
        headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    assert_eq!(
        headers
            .get("content-length")
            .map(|v| v.to_str().expect("ascii").to_owned()),
        Some(received[0].body.len().to_string())
    );
    assert!(
        headers.get("authorization").is_none(),
        "a local backend gets no Authorization"
    );
}

/// Proves a remote kind sends its Bearer key and uses the base URL's path prefix.
#[tokio::test]
async fn remote_kind_sends_bearer_under_base_path() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/chat/completions"))
        .respond_with(sse("data: [DONE]\n\n"))
        .mount(&server)
        .await;
    let url = format!("{}/api", server.uri());
    let backend = backend_with(
        BackendKind::Openrouter,
        &url,
        Some("OR_KEY"),
        &[("OR_KEY", "sk-test")],
        limits(),
    );
    backend
        .execute(&chat_job(), &mut CollectSink::default())
        .await
        .expect("completes");
    let received = server.received_requests().await.expect("recording on");
    assert_eq!(
        received[0].headers.get("authorization").map(|v| v.as_bytes()),
        Some(&b"Bearer sk-test"[..])
    );
}

/// Proves each kind probes its protocol.md health path, and list_models reads ids and context windows.
#[tokio::test]
async fn health_paths_and_model_list_per_kind() {
    let models = json!({"data": [{"id": "m-b", "max_model_len": 4096}, {"id": "m-a", "context_length": 8192}]});
    for (kind, health) in [
        (BackendKind::Vllm, "/health"),
        (BackendKind::Ollama, "/api/tags"),
        (BackendKind::Lmstudio, "/v1/models"),
    ] {
        let server = MockServer::start().await;
        if health != "/v1/models" {
            Mock::given(method("GET"))
                .and(path(health))
                .respond_with(ResponseTemplate::new(200))
                .mount(&server)
                .await;
        }
        Mock::given(method("GET"))
            .and(path("/v1/models"))
            .respond_with(ResponseTemplate::new(200).set_body_json(models.clone()))
            .mount(&server)
            .await;
        let backend = backend_with(kind, &server.uri(), None, &[], limits());
        backend
            .health()
            .await
            .unwrap_or_else(|e| panic!("{kind:?} health: {e}"));
        let listed = backend.list_models().await.expect("model list");
        let summary: Vec<(&str, Option<u64>)> =
            listed.iter().map(|m| (m.model_id.as_str(), m.context_window)).collect();
        assert_eq!(summary, vec![("m-a", Some(8192)), ("m-b", Some(4096))], "{kind:?}");
        let probed: Vec<String> = server
            .received_requests()
            .await
            .expect("recording on")
            .iter()
            .map(|r| r.url.path().to_owned())
            .collect();
        assert_eq!(probed.first().map(String::as_str), Some(health), "{kind:?}");
    }
}

/// Proves a failing health probe is an error and a stalled one is cut off by the discovery timeout.
#[tokio::test]
async fn health_failures_and_discovery_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let err = vllm(&server.uri()).health().await.expect_err("503");
    assert_eq!(
        err,
        BackendError::BadStatus {
            status: 503,
            body: String::new()
        }
    );

    let stalled = MockServer::start().await;
    let slow = ResponseTemplate::new(200).set_delay(Duration::from_secs(30));
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(slow)
        .mount(&stalled)
        .await;
    let quick = AdapterLimits {
        discovery_timeout_ms: 200,
        ..limits()
    };
    let err = backend_with(BackendKind::Vllm, &stalled.uri(), None, &[], quick)
        .health()
        .await
        .expect_err("timeout");
    assert!(
        matches!(&err, BackendError::Unreachable(m) if m.contains("within 200 ms")),
        "{err:?}"
    );
}

/// Proves discovery over live servers: a vLLM backend wins a model over Ollama, an unhealthy backend is skipped, and capabilities follow.
#[tokio::test]
async fn discovery_end_to_end() {
    let list = |ids: &[&str]| {
        ResponseTemplate::new(200)
            .set_body_json(json!({"data": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()}))
    };
    let ollama = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/tags"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&ollama)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(list(&["shared", "only-ollama"]))
        .mount(&ollama)
        .await;
    let vllm_server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&vllm_server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(list(&["shared"]))
        .mount(&vllm_server)
        .await;
    let sick = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&sick)
        .await;

    let text = format!(
        "[coordinator]\nurl = \"ws://c/\"\n[identity]\nkey_path = \"k\"\n[pricing]\ndefault_input_per_1m = 1.0\ndefault_output_per_1m = 2.0\n\
         [[backends]]\nkind = \"ollama\"\nurl = \"{}\"\n[[backends]]\nkind = \"vllm\"\nurl = \"{}\"\n[[backends]]\nkind = \"llamacpp\"\nurl = \"{}\"\n",
        ollama.uri(),
        vllm_server.uri(),
        sick.uri()
    );
    let config = AgentConfig::from_toml_str(&text, "inline").expect("valid");
    let env: EnvLookup = Arc::new(|_: &str| None);
    let backends = build_backends(&config, Arc::new(TcpConnector), client_config_webpki(), &env).expect("set up");
    let routes = discover(&backends, &config).await;
    let capabilities = routes.capabilities(config.limits.max_concurrent);
    let summary: Vec<(&str, &str)> = capabilities
        .iter()
        .map(|c| (c.model_id.as_str(), c.backend.as_str()))
        .collect();
    assert_eq!(summary, vec![("only-ollama", "ollama"), ("shared", "vllm")]);
}
