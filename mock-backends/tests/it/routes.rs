//! Health, model lists and error answers per kind, over loopback TCP.

use mock_backends::RequestEnd;
use serde_json::{Value, json};

use crate::support::{Client, body_bytes, chat, tcp_server};

fn profile(kind: &str) -> String {
    format!(
        "kind = \"{kind}\"\n[[models]]\nid = \"alpha\"\ncontext_window = 1000\n\
         [[models]]\nid = \"beta\"\ncontext_window = 2000\n"
    )
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn ids(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}

/// vLLM: `/health` is 200 and `/v1/models` carries `max_model_len`.
#[tokio::test]
async fn vllm_paths() {
    let server = tcp_server(&profile("vllm"), 0).await;
    let mut client = Client::tcp(server.addr).await;
    assert_eq!(client.get("/health").await.0, 200);
    let (status, body) = client.get("/v1/models").await;
    assert_eq!(status, 200);
    let list = json_of(&body);
    assert_eq!(ids(&list), vec!["alpha", "beta"]);
    assert_eq!(list["data"][1]["max_model_len"], 2000);
}

/// llama.cpp: `/health` answers `{"status":"ok"}`, models carry `meta.n_ctx_train`.
#[tokio::test]
async fn llamacpp_paths() {
    let server = tcp_server(&profile("llamacpp"), 0).await;
    let mut client = Client::tcp(server.addr).await;
    let (status, body) = client.get("/health").await;
    assert_eq!((status, json_of(&body)), (200, json!({"status": "ok"})));
    let list = json_of(&client.get("/v1/models").await.1);
    assert_eq!(list["data"][0]["meta"]["n_ctx_train"], 1000);
}

/// LM Studio: health is `/v1/models`; `/api/v0/models` has `max_context_length`.
#[tokio::test]
async fn lmstudio_paths() {
    let server = tcp_server(&profile("lmstudio"), 0).await;
    let mut client = Client::tcp(server.addr).await;
    let (status, body) = client.get("/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&json_of(&body)), vec!["alpha", "beta"]);
    let native = json_of(&client.get("/api/v0/models").await.1);
    assert_eq!(native["data"][1]["max_context_length"], 2000);
    assert_eq!(client.get("/health").await.0, 404, "LM Studio has no /health");
}

/// Ollama: health is `/api/tags`; `/v1/models` lists ids; `/api/show` has the context length.
#[tokio::test]
async fn ollama_paths() {
    let server = tcp_server(&profile("ollama"), 0).await;
    let mut client = Client::tcp(server.addr).await;
    let tags = json_of(&client.get("/api/tags").await.1);
    assert_eq!(tags["models"][0]["name"], "alpha");
    assert_eq!(ids(&json_of(&client.get("/v1/models").await.1)), vec!["alpha", "beta"]);
    let show = client.post("/api/show", &json!({"model": "beta"})).await;
    assert_eq!(show.status(), 200);
    let show = json_of(&body_bytes(show).await);
    assert_eq!(show["model_info"]["llama.context_length"], 2000);
    assert_eq!(client.get("/").await, (200, "Ollama is running".into()));
}

/// Every kind streams chat completions for each of its models.
#[tokio::test]
async fn every_kind_serves_chat() {
    for kind in ["vllm", "llamacpp", "lmstudio", "ollama"] {
        let server = tcp_server(&profile(kind), 0).await;
        let mut client = Client::tcp(server.addr).await;
        let response = client
            .post("/v1/chat/completions", &chat("beta", true, json!({})))
            .await;
        assert_eq!(response.status(), 200, "{kind}");
        assert!(body_bytes(response).await.ends_with(b"data: [DONE]\n\n"), "{kind}");
    }
}

/// An unknown model is a 404 with an OpenAI-style error body, recorded as rejected.
#[tokio::test]
async fn unknown_model_is_404() {
    let server = tcp_server(&profile("vllm"), 0).await;
    let mut client = Client::tcp(server.addr).await;
    let response = client
        .post("/v1/chat/completions", &chat("gamma", true, json!({})))
        .await;
    assert_eq!(response.status(), 404);
    let error = json_of(&body_bytes(response).await);
    assert_eq!(error["error"]["code"], 404);
    assert_eq!(error["error"]["param"], "model");
    assert!(error["error"]["message"].as_str().unwrap().contains("gamma"));
    let record = &server.recorder.records()[0];
    assert_eq!(record.end, Some(RequestEnd::Rejected(404)));
    assert_eq!(record.model.as_deref(), Some("gamma"));
}

/// Unknown paths are 404; bad bodies and oversized prompts are 400 naming the problem.
#[tokio::test]
async fn bad_requests() {
    let server = tcp_server(&profile("vllm"), 0).await;
    let mut client = Client::tcp(server.addr).await;
    assert_eq!(client.get("/v1/nothing").await.0, 404);
    let response = client.post("/v1/chat/completions", &json!({"model": "alpha"})).await;
    assert_eq!(response.status(), 400);
    let error = json_of(&body_bytes(response).await);
    assert_eq!(error["error"]["message"], "messages: field required");
    let long = "x".repeat(8000);
    let request = json!({"model": "alpha", "messages": [{"role": "user", "content": long}]});
    let response = client.post("/v1/chat/completions", &request).await;
    assert_eq!(response.status(), 400);
    let error = json_of(&body_bytes(response).await);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("maximum context length is 1000")
    );
}
