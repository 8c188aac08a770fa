//! Dispatch of one HTTP request to its handler, by kind, method and path.
//!
//! | path | kinds | handler |
//! |---|---|---|
//! | the kind's health path | all | `health::check` (faults, delay, loading) |
//! | `GET /v1/models` | all | model list in the kind's shape |
//! | `GET /api/v0/models` | lmstudio | model list with `max_context_length` |
//! | `POST /api/show` | ollama | model details with the context length |
//! | `GET /` | ollama | `Ollama is running` |
//! | `POST /v1/chat/completions` | all | `chat::completions` |
//! | anything else | all | 404 with an OpenAI-style error |

mod catalog;
mod chat;
mod health;
pub(crate) mod respond;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

pub use catalog::CREATED_EPOCH_S;
pub(crate) use catalog::Catalog;

use crate::body::MockBody;
use crate::record::{Arrival, RecordHandle, RequestEnd};
use crate::server::{ConnCtx, MockBackend};
use crate::spec::Kind;
use respond::{JSON, TEXT, answer, reject};

/// Largest request body read; a larger one is answered 413.
pub const REQUEST_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Why a request ends with the connection closed instead of a response.
#[derive(Debug, thiserror::Error)]
pub enum ServeAbort {
    /// A `cut` fault on a non-streamed completion.
    #[error("connection cut by an injected fault")]
    Cut,
    /// The request body could not be read (the client left mid-upload, or
    /// sent broken framing).
    #[error("the request body could not be read")]
    BodyUnreadable,
    /// The completion task was dropped (the host is shutting down).
    #[error("the backend stopped before answering")]
    BackendStopped,
}

/// Serves one request: records its arrival, reads its body, dispatches.
pub(crate) async fn route(
    backend: Arc<MockBackend>,
    conn: ConnCtx,
    request: Request<Incoming>,
) -> Result<Response<MockBody>, ServeAbort> {
    let record = backend.recorder().open(
        Arrival {
            backend: backend.spec().host.clone(),
            connection_id: conn.id,
            arrival_us: backend.now_us(),
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
        },
        backend.clock().clone(),
    );
    tracing::debug!(
        backend = %backend.spec().host,
        request_id = record.request_id(),
        method = %request.method(),
        path = request.uri().path(),
        "request arrived"
    );
    let (parts, body) = request.into_parts();
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(ReadError::TooLarge) => {
            let message = format!("request body over {REQUEST_BODY_BYTES_MAX} bytes");
            return Ok(reject(record, 413, &message, None));
        }
        // Dropping the record ends it as ClientGone.
        Err(ReadError::Broken) => return Err(ServeAbort::BodyUnreadable),
    };
    dispatch(&backend, &conn, &parts.method, parts.uri.path(), body, record).await
}

async fn dispatch(
    backend: &Arc<MockBackend>,
    conn: &ConnCtx,
    method: &Method,
    path: &str,
    body: Bytes,
    record: RecordHandle,
) -> Result<Response<MockBody>, ServeAbort> {
    let kind = backend.spec().kind;
    let catalog = backend.catalog();
    let ok = RequestEnd::Completed;
    Ok(match (method, path) {
        (&Method::GET, _) if path == kind.health_path() => health::check(backend, record).await,
        (&Method::GET, "/v1/models") => answer(record, 200, Some(JSON), catalog.models.clone(), ok),
        (&Method::GET, "/api/v0/models") if kind == Kind::Lmstudio => {
            answer(record, 200, Some(JSON), catalog.lmstudio_models.clone(), ok)
        }
        (&Method::POST, "/api/show") if kind == Kind::Ollama => ollama_show(backend, &body, record),
        (&Method::GET, "/") if kind == Kind::Ollama => {
            answer(record, 200, Some(TEXT), Bytes::from_static(b"Ollama is running"), ok)
        }
        (&Method::POST, "/v1/chat/completions") => {
            return chat::completions(backend, conn, body, record).await;
        }
        _ => reject(record, 404, &format!("no route for {method} {path}"), None),
    })
}

fn ollama_show(backend: &MockBackend, body: &[u8], record: RecordHandle) -> Response<MockBody> {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let model = request
        .get("model")
        .or_else(|| request.get("name"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    record.update(|r| r.model = Some(model.to_owned()));
    match catalog::ollama_show(&backend.spec().models, model) {
        Some(body) => answer(record, 200, Some(JSON), body, RequestEnd::Completed),
        None => reject(record, 404, &format!("model '{model}' not found"), Some("model")),
    }
}

enum ReadError {
    TooLarge,
    Broken,
}

async fn read_body(body: Incoming) -> Result<Bytes, ReadError> {
    match Limited::new(body, REQUEST_BODY_BYTES_MAX).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(ReadError::TooLarge),
        Err(_) => Err(ReadError::Broken),
    }
}
