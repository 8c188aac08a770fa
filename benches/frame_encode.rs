//! `frame_encode`: the agent's `job_chunk` encoder beside two references, in
//! one group so that their ratios come from one run on one machine state.
//!
//! - `agent`: `encode_job_chunk` into a fresh `String`, exactly as the sink
//!   calls it (one allocation per chunk: the `String` *is* the frame the
//!   writer sends, so it cannot be reused).
//! - `base64_only`: base64 alone into a reused buffer with the base64
//!   crate's fastest call (`encode_slice`) — no JSON, no allocation, no
//!   intermediate copy: the ceiling any `job_chunk` encoder could reach.
//! - `seed_json`: the seed's way (`shared/seed/job_executor.rs`): base64 to a
//!   `String`, a `json!` value, then `to_string`.
//! - `agent_reused_buf` (informational, not gated): the agent's encoder into
//!   a reused `String`, which separates encoding from the allocation.
//!
//! The functions of one chunk size run back to back, so slow drifts in a
//! shared machine's load hit all sides of a ratio alike.

mod common;

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use criterion::measurement::Measurement;
use criterion::{BenchmarkId, Criterion, Throughput};
use provider_agent::protocol::{encode_job_chunk, job_chunk_frame_len};
use serde_json::json;

use common::{CHUNK_SIZES, JOB_ID, payload, size_label, slowdown};

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
            b.iter(|| {
                let mut out = String::new();
                if slow {
                    // Deliberate slowdown (bench-side only): copy the chunk once more.
                    let copy = black_box(data.to_vec());
                    encode_job_chunk(&mut out, black_box(&JOB_ID), &copy);
                } else {
                    encode_job_chunk(&mut out, black_box(&JOB_ID), black_box(data));
                }
                debug_assert_eq!(out.len(), job_chunk_frame_len(size));
                out
            });
        });

        // Informational, not gated: the same encoder into a reused `String`,
        // to split the agent's cost into encoding and the per-chunk
        // allocation the sink pays (see benches/README.md).
        group.bench_with_input(
            BenchmarkId::new("agent_reused_buf", size_label(size)),
            &data,
            |b, data| {
                let mut out = String::with_capacity(job_chunk_frame_len(size));
                b.iter(|| {
                    out.clear();
                    encode_job_chunk(&mut out, black_box(&JOB_ID), black_box(data));
                    black_box(out.len())
                });
            },
        );

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
