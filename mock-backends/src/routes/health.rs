//! The kind's health path: healthy, loading, slow or failing as scripted.

use std::time::Duration;

use hyper::Response;

use super::catalog::loading_body;
use super::respond::{JSON, answer, openai_error};
use crate::body::MockBody;
use crate::clock::ms_to_us;
use crate::record::{RecordHandle, RequestEnd};
use crate::server::MockBackend;
use crate::spec::FaultKind;

/// Answers one health check. A slow answer sleeps inside the request: if
/// the client leaves meanwhile, hyper drops this future and the record
/// ends as `ClientGone`.
pub(crate) async fn check(backend: &MockBackend, record: RecordHandle) -> Response<MockBody> {
    let ordinal = backend.next_health_ordinal();
    let plan = backend.faults().plan_health(ordinal, record.now_us(), backend.rng());
    for kind in &plan.fired {
        record.add_fault(kind.as_str());
    }
    let delay_ms = backend.spec().health.delay_ms.saturating_add(plan.delay_ms);
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    if let Some(status) = plan.fail_status {
        let body = openai_error(status, "injected health failure", None);
        let end = RequestEnd::Fault(FaultKind::HealthFail.as_str().to_owned());
        return answer(record, status, Some(JSON), body, end);
    }
    if record.now_us() < ms_to_us(backend.spec().health.ready_after_ms) {
        return answer(record, 503, Some(JSON), loading_body(), RequestEnd::Rejected(503));
    }
    let (content_type, body) = backend.catalog().health_ok.clone();
    answer(record, 200, content_type, body, RequestEnd::Completed)
}
