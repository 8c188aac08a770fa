//! Read-side backpressure windows: pauses and slow reads.

use serde::{Deserialize, Serialize};

/// In `[start_ms, end_ms)` the coordinator does not poll the socket at all,
/// so the agent's writes fill the TCP buffers and block. Writing continues.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadPause {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// In `[start_ms, end_ms)` the coordinator reads at most `frames_per_sec`
/// WebSocket frames per second (it sleeps `1 / frames_per_sec` after each).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowRead {
    pub start_ms: u64,
    pub end_ms: u64,
    pub frames_per_sec: f64,
}
