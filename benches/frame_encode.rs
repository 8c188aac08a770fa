//! `frame_encode`: the agent's `job_chunk` encoder beside two references, in
//! one group so that their ratios come from one run on one machine state.
//!
//! - `agent`: `ChunkEncoder::encode` of an encoder made once per job, exactly
//!   as `BoardSink` calls it (a fresh `String` per chunk: the `String` *is*
//!   the frame the writer sends, so it cannot be reused).
//! - `base64_only`: base64 alone into a reused buffer with the base64
//!   crate's fastest call (`encode_slice`) — no JSON, no allocation, no
//!   intermediate copy: the ceiling any `job_chunk` encoder could reach.
//! - `seed_json`: the seed's way (`shared/seed/job_executor.rs`): base64 to a
//!   `String`, a `json!` value, then `to_string`.
//!
//! The functions of one chunk size run back to back, so slow drifts in a
//! shared machine's load hit all sides of a ratio alike.

mod common;

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use criterion::measurement::Measurement;
use criterion::{BenchmarkId, Criterion, Throughput};
use provider_agent::protocol::{ChunkEncoder, job_chunk_frame_len};
use serde_json::json;

use common::{CHUNK_SIZES, JOB_ID, job_id, payload, size_label, slowdown};

fn frame_encode<M: Measurement>(c: &mut Criterion<M>) {
    let mut group = c.benchmark_group("frame_encode");
    let slow = slowdown();
    for size in CHUNK_SIZES {
        let data = payload(size);
        // Throughput in chunk bytes (body bytes relayed), the same unit on
        // every side, so criterion's bytes/s compare directly; chunks/s is
        // bytes/s ÷ size (criterion 0.7 has one throughput per benchmark;
        // the gate's table prints both).
        group.throughput(Throughput::Bytes(size as u64));

        group.bench_with_input(BenchmarkId::new("agent", size_label(size)), &data, |b, data| {
            // Made once per job, as `BoardSink::new` does: outside the loop.
            let encoder = ChunkEncoder::new(&job_id());
            b.iter(|| {
                let out = if slow {
                    // Deliberate slowdown (bench-side only): copy the chunk once more.
                    let copy = black_box(data.to_vec());
                    black_box(&encoder).encode(&copy)
                } else {
                    black_box(&encoder).encode(black_box(data))
                };
                debug_assert_eq!(out.len(), job_chunk_frame_len(size));
                out
            });
        });

        group.bench_with_input(BenchmarkId::new("base64_only", size_label(size)), &data, |b, data| {
            // `encode_slice` writes straight into the buffer; `encode_string`
            // (what a `String` forces) goes through a 1 KiB stack buffer and
            // copies, so it is not the ceiling.
            let mut buf = vec![0u8; size.div_ceil(3) * 4];
            b.iter(|| {
                let written = B64
                    .encode_slice(black_box(data), &mut buf)
                    .expect("buffer sized for the chunk");
                black_box(&buf[..written]);
            });
        });

        group.bench_with_input(BenchmarkId::new("seed_json", size_label(size)), &data, |b, data| {
            // The seed's per-chunk code (shared/seed/job_executor.rs), the
            // `Uuid` serialised by serde as there; only the `Message::Text`
            // wrapping is left out, which costs no copy.
            b.iter(|| {
                let frame = json!({
                    "type": "job_chunk",
                    "job_id": black_box(JOB_ID),
                    "data": B64.encode(black_box(data)),
                });
                frame.to_string()
            });
        });
    }
    group.finish();
}

common::bench_main!(frame_encode);
