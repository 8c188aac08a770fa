//! The task that answers one non-streamed completion: waits for a slot and
//! the whole generation time, then hands one JSON body to the route.

use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::time::sleep;

use crate::body::MockBody;
use crate::capacity::Admission;
use crate::faults::StreamStop;
use crate::generation::{gap_us, ttft_us};
use crate::job::{ChatJob, wait_for_slot};
use crate::record::RequestEnd;
use crate::routes::respond::json_response;
use crate::words::push_token;

/// What the task tells the route waiting to answer hyper.
pub(crate) enum Reply {
    /// Send this response.
    Respond(Response<MockBody>),
    /// Close the connection without an answer (a `cut` fault).
    Cut,
}

/// Answers one completion through `reply`, then ends its record. The route
/// holds the receiver: hyper drops the route when the client leaves, which
/// closes `reply`, which is how this task notices.
pub(crate) async fn run_complete(mut job: ChatJob, admission: Admission, reply: oneshot::Sender<Reply>) {
    let end = complete(&mut job, admission, reply).await;
    job.record.finish(end);
}

async fn complete(job: &mut ChatJob, admission: Admission, mut reply: oneshot::Sender<Reply>) -> RequestEnd {
    let _slot = match wait_for_slot(admission, reply.closed()).await {
        Ok(slot) => slot,
        Err(end) => return end,
    };
    job.record.set_admitted();
    let stop = job.stop_point();
    let produced = stop.map_or(job.generation.output_tokens, |(_, at)| at);
    let (text, wait_us) = generate_text(job, produced);
    tokio::select! {
        biased;
        () = reply.closed() => return RequestEnd::ClientGone,
        () = sleep(Duration::from_micros(wait_us)) => {}
    }
    match stop {
        Some((StreamStop::Stall, _)) => {
            reply.closed().await;
            return RequestEnd::ClientGone;
        }
        Some((StreamStop::Cut, _)) => {
            job.abort.arm();
            return match reply.send(Reply::Cut) {
                Ok(()) => RequestEnd::Fault("cut".to_owned()),
                Err(_) => RequestEnd::ClientGone,
            };
        }
        None => {}
    }
    let body = completion_body(job, &text);
    job.record.set_status(200);
    if reply.send(Reply::Respond(json_response(200, body.clone()))).is_err() {
        return RequestEnd::ClientGone;
    }
    job.record.append_body(&body, job.generation.output_tokens);
    RequestEnd::Completed
}

/// The text of `tokens` tokens and the time they take, microseconds.
fn generate_text(job: &ChatJob, tokens: u64) -> (String, u64) {
    let profile = job.profile();
    let mut text = Vec::new();
    let wait_us = job.backend.rng().with(|rng| {
        let mut wait_us = ttft_us(profile, rng);
        for index in 1..=tokens {
            if index > 1 {
                wait_us += gap_us(profile, rng);
            }
            push_token(rng, &mut text);
        }
        wait_us
    });
    // Words are ASCII, so this never loses anything.
    (String::from_utf8_lossy(&text).into_owned(), wait_us)
}

/// The `chat.completion` body; a `malformed_sse` fault truncates it and a
/// `missing_usage` fault leaves `usage` out.
fn completion_body(job: &ChatJob, text: &str) -> Bytes {
    let completion = job.generation.output_tokens;
    let mut body = json!({
        "id": job.completion_id,
        "object": "chat.completion",
        "created": job.created_s,
        "model": job.profile().id,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": null,
            "finish_reason": job.generation.finish.as_str(),
        }],
    });
    if !job.plan.missing_usage {
        body["usage"] = json!({
            "prompt_tokens": job.prompt_tokens,
            "total_tokens": job.prompt_tokens + completion,
            "completion_tokens": completion,
        });
    }
    let mut bytes = body.to_string().into_bytes();
    if job.plan.malformed_after.is_some() {
        bytes.truncate(bytes.len() / 2);
    }
    Bytes::from(bytes)
}
