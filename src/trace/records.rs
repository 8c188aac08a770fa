//! What the coordinator saw of each connection, and what a backend
//! recorded of each request.

use super::blob::Blob;
use super::event::HeartbeatFigures;
use super::job::Seen;
use super::shared::{JobId, Name};

/// One coordinator connection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionView {
    pub conn: u64,
    pub opened_us: u64,
    pub ready_us: Option<u64>,
    /// The models its first `capabilities` advertised (at the handshake).
    pub models: Option<Vec<String>>,
    /// Every `capabilities` read, in order: `(read at µs, models)`. An agent
    /// that rediscovers its backends sends it again when they change.
    pub capabilities: Vec<(u64, Vec<String>)>,
    pub closed_us: Option<u64>,
    pub reason: Option<String>,
    /// Every heartbeat read on this connection (`what` is its `queue_depth`).
    pub heartbeats: Vec<Seen<u64>>,
    /// The other figures of each heartbeat, index for index.
    pub heartbeat_figures: Vec<HeartbeatFigures>,
}

/// One request a backend served.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendCall {
    pub backend: Name,
    pub request: u64,
    pub job: Option<JobId>,
    pub method: Name,
    pub path: Name,
    /// The `model` of the request's body, when it had one.
    pub model: Option<Name>,
    pub start_us: u64,
    pub end_us: Option<u64>,
    pub status: Option<u16>,
    pub end: Option<Name>,
    pub body: Blob,
}

impl BackendCall {
    /// Whether this is a job's execution (a chat completion), not a probe.
    pub fn is_execution(&self) -> bool {
        &*self.method == "POST" && self.path.ends_with("/chat/completions")
    }
}
