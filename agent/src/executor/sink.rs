//! The [`JobSink`] a backend streams into: encodes each chunk once into its
//! final `job_chunk` text, waits for outbound budget (inside the job's
//! deadline), and queues the frame only while the job is still live.

use std::sync::Arc;

use super::board::{Board, Ticket};
use crate::backend::{JobSink, SinkError};
use crate::protocol::ChunkEncoder;
use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Semaphore;

/// Streams one job's body bytes onto the board.
pub struct BoardSink {
    /// The job's admission: chunks are queued only while it is live.
    ticket: Ticket,
    /// Renders the job's frame head once, when the sink is made: formatting
    /// the UUID again for every chunk was a measurable part of its cost.
    encoder: ChunkEncoder,
    board: Arc<Board>,
    /// Outbound byte budget shared by all jobs of the session: a permit per
    /// queued `job_chunk` byte, returned when the writer takes the frame or a
    /// cancel purges it. Producers wait here when the coordinator reads slower
    /// than backends write, which bounds queued memory.
    budget: Arc<Semaphore>,
    budget_bytes_max: usize,
    bytes_emitted: u64,
    output_tokens: u64,
}

impl BoardSink {
    pub fn new(ticket: Ticket, board: Arc<Board>, budget: Arc<Semaphore>, budget_bytes_max: usize) -> Self {
        Self {
            encoder: ChunkEncoder::new(&ticket.job_id),
            ticket,
            board,
            budget,
            budget_bytes_max,
            bytes_emitted: 0,
            output_tokens: 0,
        }
    }

    /// Body bytes queued for the coordinator so far.
    pub fn bytes_emitted(&self) -> u64 {
        self.bytes_emitted
    }

    /// The backend's count of output tokens relayed so far.
    pub fn output_tokens(&self) -> u64 {
        self.output_tokens
    }
}

#[async_trait]
impl JobSink for BoardSink {
    async fn send_chunk(&mut self, chunk: Bytes) -> Result<(), SinkError> {
        if chunk.is_empty() {
            return Ok(());
        }
        // Budget first, for the frame's exact length, and only then encode:
        // a job waiting for budget then holds just the raw chunk its backend
        // already read, never an encoded frame the board does not count. A
        // frame larger than the whole budget takes all of it, so it still
        // goes out once the queue has drained instead of waiting forever.
        let frame_len = self.encoder.frame_len(chunk.len());
        let permits = u32::try_from(frame_len.min(self.budget_bytes_max)).unwrap_or(u32::MAX);
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(permits)
            .await
            .map_err(|_| SinkError::Gone)?;
        let text = self.encoder.encode(&chunk);
        debug_assert_eq!(text.len(), frame_len);
        self.board
            .push_chunk(&self.ticket, text, permit)
            .map_err(|_| SinkError::Gone)?;
        self.bytes_emitted += chunk.len() as u64;
        Ok(())
    }

    fn set_output_tokens(&mut self, output_tokens: u64) {
        debug_assert!(output_tokens >= self.output_tokens, "output token count went backwards");
        self.output_tokens = self.output_tokens.max(output_tokens);
    }
}
