//! What a chat-completion task needs, decided by the route before it spawns
//! the task, and the wait for a generation slot both task kinds share.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use crate::abort::AbortFlag;
use crate::capacity::Admission;
use crate::faults::{ChatPlan, StreamStop};
use crate::generation::Generation;
use crate::record::{RecordHandle, RequestEnd};
use crate::server::MockBackend;
use crate::spec::ModelProfile;

/// One admitted chat completion, owned by its task.
pub(crate) struct ChatJob {
    pub backend: Arc<MockBackend>,
    /// Index into the backend's `models`.
    pub model_index: usize,
    /// `chatcmpl-…`, drawn from the host RNG.
    pub completion_id: String,
    /// `created`, seconds: a fixed epoch plus the clock.
    pub created_s: u64,
    /// The model id encoded as a JSON string, quotes included.
    pub model_json: String,
    pub generation: Generation,
    pub prompt_tokens: u64,
    pub include_usage: bool,
    pub plan: ChatPlan,
    pub record: RecordHandle,
    /// The connection's reset request, armed by a `cut`.
    pub abort: AbortFlag,
}

impl ChatJob {
    pub fn profile(&self) -> &ModelProfile {
        &self.backend.spec().models[self.model_index]
    }

    /// Where a stop fault acts, clamped to the completion: a fault asked for
    /// after more tokens than the completion has acts before `finish_reason`.
    pub fn stop_point(&self) -> Option<(StreamStop, u64)> {
        let n = self.generation.output_tokens;
        self.plan.stop.map(|(stop, after)| (stop, after.min(n)))
    }

    /// Where the malformed event goes, clamped the same way.
    pub fn malformed_point(&self) -> Option<u64> {
        let n = self.generation.output_tokens;
        self.plan.malformed_after.map(|after| after.min(n))
    }
}

/// Waits for a generation slot unless `gone` (the client left) comes first.
pub(crate) async fn wait_for_slot(
    admission: Admission,
    gone: impl Future<Output = ()>,
) -> Result<OwnedSemaphorePermit, RequestEnd> {
    match admission {
        Admission::Running(permit) => Ok(permit),
        Admission::Queued(ticket) => tokio::select! {
            biased;
            () = gone => Err(RequestEnd::ClientGone),
            permit = ticket.wait() => Ok(permit),
        },
        // The route answers rejections itself; this arm only keeps the
        // function total.
        Admission::Rejected(status) => Err(RequestEnd::Rejected(status)),
    }
}
