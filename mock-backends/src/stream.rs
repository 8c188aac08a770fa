//! The task that writes one streamed completion: waits for a slot, then the
//! time to first token, then writes the SSE events on the profile's schedule,
//! grouped into frames, with any stall, cut or malformed event on the way.
//!
//! Token `i` is ready at `admitted + ttft + Σ gaps`; an event is complete with
//! its last token, and a frame is written when it holds `events_per_write`
//! events (or a fault or the end forces it). The task only wakes to write.

use std::time::Duration;

use bytes::BytesMut;
use hyper::body::Frame;
use tokio::time::{Instant, sleep_until};

use crate::body::{BodyError, BodySender};
use crate::capacity::Admission;
use crate::faults::StreamStop;
use crate::generation::{gap_us, ttft_us};
use crate::job::{ChatJob, wait_for_slot};
use crate::record::RequestEnd;
use crate::sse::ChunkFormat;
use crate::words::push_token;

/// Initial capacity of the frame buffer: a few events without reallocating.
const FRAME_BYTES_INITIAL: usize = 4096;

/// Streams one completion into `tx`, then ends its record.
pub(crate) async fn run_stream(job: ChatJob, admission: Admission, tx: BodySender) {
    let format = ChunkFormat::new(&job.completion_id, job.created_s, &job.model_json);
    let mut streamer = Streamer {
        job,
        tx,
        format,
        pending: BytesMut::with_capacity(FRAME_BYTES_INITIAL),
        pending_events: 0,
        pending_tokens: 0,
        event_tokens: 0,
        deadline: Instant::now(),
    };
    let end = match streamer.generate(admission).await {
        Ok(()) => RequestEnd::Completed,
        Err(end) => end,
    };
    streamer.job.record.finish(end);
}

struct Streamer {
    job: ChatJob,
    /// Feeds hyper's body; `closed()` resolves when the client is gone.
    tx: BodySender,
    format: ChunkFormat,
    /// Events not yet written.
    pending: BytesMut,
    pending_events: u32,
    pending_tokens: u64,
    /// Tokens in the open content event; 0 means no event is open.
    event_tokens: u32,
    /// When the newest token is ready.
    deadline: Instant,
}

impl Streamer {
    async fn generate(&mut self, admission: Admission) -> Result<(), RequestEnd> {
        let _slot = wait_for_slot(admission, self.tx.closed()).await?;
        self.job.record.set_admitted();
        let profile = self.job.profile();
        let ttft = self.job.backend.rng().with(|rng| ttft_us(profile, rng));
        self.deadline = Instant::now() + Duration::from_micros(ttft);
        self.fault_point(0).await?;
        self.format.push_role(&mut self.pending);
        self.event_done().await?;
        let tokens = self.job.generation.output_tokens;
        let tokens_per_event = self.job.profile().tokens_per_event;
        for index in 1..=tokens {
            self.push_token(index > 1);
            if self.event_tokens >= tokens_per_event || index == tokens {
                self.close_event().await?;
            }
            self.fault_point(index).await?;
        }
        self.finish_events().await
    }

    /// `finish_reason`, usage when asked for (and not faulted away), `[DONE]`.
    async fn finish_events(&mut self) -> Result<(), RequestEnd> {
        self.format.push_finish(&mut self.pending, self.job.generation.finish);
        self.event_done().await?;
        if self.job.include_usage && !self.job.plan.missing_usage {
            let completion = self.job.generation.output_tokens;
            self.format
                .push_usage(&mut self.pending, self.job.prompt_tokens, completion);
            self.event_done().await?;
        }
        self.format.push_done(&mut self.pending);
        self.event_done().await?;
        self.flush().await
    }

    /// Appends the next token (after its gap), opening an event if needed.
    fn push_token(&mut self, after_gap: bool) {
        let profile = &self.job.backend.spec().models[self.job.model_index];
        let pending = &mut self.pending;
        let format = &self.format;
        let open = self.event_tokens == 0;
        let gap = self.job.backend.rng().with(|rng| {
            let gap = if after_gap { gap_us(profile, rng) } else { 0 };
            if open {
                format.open_content(pending);
            }
            push_token(rng, pending);
            gap
        });
        self.deadline += Duration::from_micros(gap);
        self.event_tokens += 1;
        self.pending_tokens += 1;
    }

    async fn close_event(&mut self) -> Result<(), RequestEnd> {
        self.format.close_content(&mut self.pending);
        self.event_tokens = 0;
        self.event_done().await
    }

    /// Counts a finished event and writes a frame when it is full.
    async fn event_done(&mut self) -> Result<(), RequestEnd> {
        self.pending_events += 1;
        if self.pending_events >= self.job.profile().events_per_write {
            self.flush().await?;
        }
        Ok(())
    }

    /// Applies the faults planned for the moment `written` tokens are out.
    async fn fault_point(&mut self, written: u64) -> Result<(), RequestEnd> {
        if self.job.malformed_point() == Some(written) {
            if self.event_tokens > 0 {
                self.close_event().await?;
            }
            self.format.push_malformed(&mut self.pending);
            self.event_done().await?;
        }
        if let Some((stop, at)) = self.job.stop_point()
            && at == written
        {
            if self.event_tokens > 0 {
                self.close_event().await?;
            }
            self.flush().await?;
            return Err(match stop {
                StreamStop::Stall => self.stall().await,
                StreamStop::Cut => self.cut().await,
            });
        }
        Ok(())
    }

    /// Waits for the newest token's time, then hands pending events to hyper.
    async fn flush(&mut self) -> Result<(), RequestEnd> {
        self.wait_until_deadline().await?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let frame = self.pending.split().freeze();
        let tokens = std::mem::take(&mut self.pending_tokens);
        self.pending_events = 0;
        self.tx
            .send(Ok(Frame::data(frame.clone())))
            .await
            .map_err(|_| RequestEnd::ClientGone)?;
        self.job.record.append_body(&frame, tokens);
        Ok(())
    }

    async fn wait_until_deadline(&self) -> Result<(), RequestEnd> {
        if Instant::now() >= self.deadline {
            return Ok(());
        }
        tokio::select! {
            biased;
            () = self.tx.closed() => Err(RequestEnd::ClientGone),
            () = sleep_until(self.deadline) => Ok(()),
        }
    }

    /// Sends nothing more; the request ends when the client leaves.
    async fn stall(&self) -> RequestEnd {
        self.tx.closed().await;
        RequestEnd::ClientGone
    }

    /// Fails the body so hyper closes the connection without finishing it,
    /// after arming the reset. The error is queued behind the last frame, so
    /// hyper has taken (and tried to flush) that frame before it sees it.
    async fn cut(&self) -> RequestEnd {
        self.job.abort.arm();
        match self.tx.send(Err(BodyError::Cut)).await {
            Ok(()) => RequestEnd::Fault("cut".to_owned()),
            Err(_) => RequestEnd::ClientGone,
        }
    }
}
