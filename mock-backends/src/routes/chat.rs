//! `POST /v1/chat/completions`: validates the request, applies status faults
//! and capacity, then hands the completion to a task of its own.

use std::sync::Arc;

use bytes::Bytes;
use hyper::Response;
use rand::Rng;
use tokio::sync::oneshot;

use super::ServeAbort;
use super::catalog::CREATED_EPOCH_S;
use super::respond::{JSON, answer, openai_error, reject, sse_response};
use crate::body::MockBody;
use crate::capacity::Admission;
use crate::complete::{Reply, run_complete};
use crate::faults::ChatPlan;
use crate::generation::{Generation, plan_output};
use crate::job::ChatJob;
use crate::record::{RecordHandle, RequestEnd};
use crate::request::ChatRequest;
use crate::server::{ConnCtx, MockBackend};
use crate::spec::FaultKind;
use crate::stream::run_stream;

/// Answers one chat completion.
pub(crate) async fn completions(
    backend: &Arc<MockBackend>,
    conn: &ConnCtx,
    body: Bytes,
    record: RecordHandle,
) -> Result<Response<MockBody>, ServeAbort> {
    let ordinal = backend.next_chat_ordinal();
    let request = match ChatRequest::parse(&body) {
        Ok(request) => request,
        Err(message) => return Ok(reject(record, 400, &message, None)),
    };
    record.update(|r| {
        r.model.clone_from(&request.model);
        r.job_id.clone_from(&request.user);
        r.stream = request.stream;
        r.prompt_tokens = Some(request.prompt_tokens);
    });
    // The job id (`user`) joins this request to the coordinator's job.
    tracing::info!(
        backend = %backend.spec().host,
        request_id = record.request_id(),
        job_id = %request.user.as_deref().unwrap_or("-"),
        model = request.model.as_deref().unwrap_or("-"),
        stream = request.stream,
        "chat completion arrived"
    );
    let Some(model_index) = backend.model_index(request.model.as_deref()) else {
        let id = request.model.as_deref().unwrap_or_default();
        let message = format!("The model `{id}` does not exist.");
        return Ok(reject(record, 404, &message, Some("model")));
    };
    let profile = &backend.spec().models[model_index];
    let planned = backend.rng().with(|rng| plan_output(profile, &request, rng));
    let generation = match planned {
        Ok(generation) => generation,
        Err(message) => return Ok(reject(record, 400, &message, Some("messages"))),
    };
    let plan = backend
        .faults()
        .plan_chat(ordinal, &profile.id, record.now_us(), backend.rng());
    for kind in &plan.fired {
        record.add_fault(kind.as_str());
    }
    if let Some(status) = plan.status {
        let body = openai_error(status, "injected fault", None);
        let end = RequestEnd::Fault(FaultKind::Status.as_str().to_owned());
        return Ok(answer(record, status, Some(JSON), body, end));
    }
    let admission = backend.capacity().admit();
    if let Admission::Rejected(status) = admission {
        let message = "The server is busy: every generation slot is taken.";
        return Ok(reject(record, status, message, None));
    }
    let job = new_job(backend, conn, model_index, &request, generation, plan, record);
    if request.stream {
        Ok(start_stream(job, admission))
    } else {
        wait_complete(job, admission).await
    }
}

fn new_job(
    backend: &Arc<MockBackend>,
    conn: &ConnCtx,
    model_index: usize,
    request: &ChatRequest,
    generation: Generation,
    plan: ChatPlan,
    mut record: RecordHandle,
) -> ChatJob {
    // From here a spawned task owns the record; only a dropped runtime can
    // drop it unfinished.
    record.set_end_on_drop(RequestEnd::Fault("backend_stopped".to_owned()));
    let (high, low) = backend.rng().with(|rng| (rng.random::<u64>(), rng.random::<u64>()));
    let model_id = &backend.spec().models[model_index].id;
    ChatJob {
        backend: backend.clone(),
        model_index,
        completion_id: format!("chatcmpl-{high:016x}{low:016x}"),
        created_s: CREATED_EPOCH_S + record.now_us() / 1_000_000,
        model_json: serde_json::Value::from(model_id.as_str()).to_string(),
        generation,
        prompt_tokens: request.prompt_tokens,
        include_usage: request.include_usage,
        plan,
        record,
        abort: conn.abort.clone(),
    }
}

/// Sends the 200 head at once, as vLLM does, and streams from a task. The
/// task is detached: it ends with its stream, and notices a gone client
/// through the body channel.
fn start_stream(job: ChatJob, admission: Admission) -> Response<MockBody> {
    job.record.set_status(200);
    let (tx, body) = MockBody::channel();
    tokio::spawn(run_stream(job, admission, tx));
    sse_response(body)
}

/// Waits for the task to answer. If the client leaves, hyper drops this
/// future and with it the receiver, which the task notices.
async fn wait_complete(job: ChatJob, admission: Admission) -> Result<Response<MockBody>, ServeAbort> {
    let (reply_tx, reply_rx) = oneshot::channel();
    tokio::spawn(run_complete(job, admission, reply_tx));
    match reply_rx.await {
        Ok(Reply::Respond(response)) => Ok(response),
        Ok(Reply::Cut) => Err(ServeAbort::Cut),
        Err(_) => Err(ServeAbort::BackendStopped),
    }
}
