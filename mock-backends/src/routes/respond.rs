//! Building responses, and answering a request with a whole body in one go.

use bytes::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;

use crate::body::MockBody;
use crate::record::{RecordHandle, RequestEnd};

/// `Content-Type` of JSON answers.
pub const JSON: &str = "application/json";
/// `Content-Type` of streamed answers, as vLLM sends it.
pub const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";
/// `Content-Type` of plain-text answers.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// A response with `status`, an optional content type, and `body`.
pub(crate) fn response(status: u16, content_type: Option<&'static str>, body: MockBody) -> Response<MockBody> {
    let mut response = Response::new(body);
    // Statuses come from validated profiles or this crate's constants, so
    // the fallback is never expected; it avoids a panic all the same.
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}

/// A JSON response of exactly `body`.
pub(crate) fn json_response(status: u16, body: Bytes) -> Response<MockBody> {
    response(status, Some(JSON), MockBody::full(body))
}

/// The 200 head of a streamed completion.
pub(crate) fn sse_response(body: MockBody) -> Response<MockBody> {
    let mut response = response(200, Some(EVENT_STREAM), body);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Answers with a whole body: records status and bytes, ends the record.
pub(crate) fn answer(
    mut record: RecordHandle,
    status: u16,
    content_type: Option<&'static str>,
    body: Bytes,
    end: RequestEnd,
) -> Response<MockBody> {
    record.set_status(status);
    record.append_body(&body, 0);
    record.finish(end);
    response(status, content_type, MockBody::full(body))
}

/// Answers an OpenAI-style error the backend chose by its own rules.
pub(crate) fn reject(record: RecordHandle, status: u16, message: &str, param: Option<&str>) -> Response<MockBody> {
    let body = openai_error(status, message, param);
    answer(record, status, Some(JSON), body, RequestEnd::Rejected(status))
}

/// `{"error":{"message","type","param","code"}}` as OpenAI and recent vLLM
/// send it.
pub(crate) fn openai_error(status: u16, message: &str, param: Option<&str>) -> Bytes {
    let body = json!({
        "error": {
            "message": message,
            "type": error_type(status),
            "param": param,
            "code": status,
        }
    });
    Bytes::from(body.to_string())
}

fn error_type(status: u16) -> &'static str {
    match status {
        400 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        413 => "RequestTooLargeError",
        429 => "RateLimitError",
        503 => "ServiceUnavailableError",
        500..=599 => "InternalServerError",
        _ => "APIError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Error bodies have the OpenAI shape.
    #[test]
    fn error_body_shape() {
        let body = openai_error(404, "The model `x` does not exist.", Some("model"));
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["error"]["type"], "NotFoundError");
        assert_eq!(value["error"]["code"], 404);
        assert_eq!(value["error"]["param"], "model");
    }
}
