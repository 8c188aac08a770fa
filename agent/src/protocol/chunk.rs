//! The hot path: `job_chunk` frames written straight into a byte buffer by a
//! per-job [`ChunkEncoder`]: no `serde_json::Value`, no intermediate `String`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::JobId;

const CHUNK_PREFIX: &str = r#"{"type":"job_chunk","job_id":""#;
const CHUNK_MIDDLE: &str = r#"","data":""#;
const CHUNK_SUFFIX: &str = r#""}"#;
/// Length of a hyphenated UUID, the canonical spelling.
const UUID_TEXT_LEN: usize = 36;

/// Exact length of the `job_chunk` frame for `data_len` bytes of a job whose
/// id has the canonical 36 characters (other spellings: [`ChunkEncoder::frame_len`]).
pub fn job_chunk_frame_len(data_len: usize) -> usize {
    frame_len(CHUNK_PREFIX.len() + UUID_TEXT_LEN + CHUNK_MIDDLE.len(), data_len)
}

fn frame_len(head_len: usize, data_len: usize) -> usize {
    head_len + data_len.div_ceil(3) * 4 + CHUNK_SUFFIX.len()
}

/// Writes the `job_chunk` frames of one job.
///
/// The frame's head, everything before the base64 text, depends only on the
/// job id, so it is rendered once per job here instead of formatting the
/// id again for every chunk.
#[derive(Clone, Debug)]
pub struct ChunkEncoder {
    head: Box<[u8]>,
}

impl ChunkEncoder {
    pub fn new(job_id: &JobId) -> Self {
        Self {
            head: render_head(job_id),
        }
    }

    /// Exact length of the frame [`ChunkEncoder::encode`] writes for
    /// `data_len` bytes.
    pub fn frame_len(&self, data_len: usize) -> usize {
        frame_len(self.head.len(), data_len)
    }

    /// The `job_chunk` frame for `data`, in a `String` of exactly
    /// [`ChunkEncoder::frame_len`] bytes (one allocation, never regrown).
    ///
    /// The output is plain ASCII JSON, identical to what serde would produce
    /// for `{"type":"job_chunk","job_id":…,"data":…}`: a [`JobId`] and
    /// standard base64 never need escaping. It is a `String` so that it
    /// becomes a WebSocket text frame without another UTF-8 check or a copy.
    pub fn encode(&self, data: &[u8]) -> String {
        encode_frame(&self.head, data)
    }
}

/// `{"type":"job_chunk","job_id":"<id as written>","data":"` for `job_id`.
fn render_head(job_id: &JobId) -> Box<[u8]> {
    let id = job_id.as_str();
    let mut head = Vec::with_capacity(CHUNK_PREFIX.len() + id.len() + CHUNK_MIDDLE.len());
    head.extend_from_slice(CHUNK_PREFIX.as_bytes());
    head.extend_from_slice(id.as_bytes());
    head.extend_from_slice(CHUNK_MIDDLE.as_bytes());
    head.into_boxed_slice()
}

/// Head, base64 of `data`, suffix: built as bytes and then turned into a
/// `String`.
///
/// Why bytes: `unsafe` is forbidden in this workspace, so nothing can write
/// base64 straight into a `String`'s buffer. `encode_slice` into the byte
/// buffer writes in place, and `String::from_utf8`'s one pass of ASCII
/// validation costs less than `encode_string`, which zeroes a 1 KiB stack
/// buffer, encodes into it, validates that and copies it out.
fn encode_frame(head: &[u8], data: &[u8]) -> String {
    let frame_len = frame_len(head.len(), data.len());
    let mut buf = Vec::with_capacity(frame_len);
    buf.extend_from_slice(head);
    buf.resize(frame_len - CHUNK_SUFFIX.len(), 0);
    B64.encode_slice(data, &mut buf[head.len()..])
        .expect("buffer sized by frame_len");
    buf.extend_from_slice(CHUNK_SUFFIX.as_bytes());
    debug_assert_eq!(buf.len(), frame_len);
    String::from_utf8(buf).expect("a job_chunk frame is ASCII")
}

/// Appends a `job_chunk` frame for `data` to `out`, for one-off frames; a
/// job's stream uses a [`ChunkEncoder`], which renders the head only once.
///
/// The frame is built as in [`ChunkEncoder::encode`]; an empty `out` takes
/// it over without a copy, otherwise it is copied onto the end of `out`.
pub fn encode_job_chunk(out: &mut String, job_id: &JobId, data: &[u8]) {
    let frame = encode_frame(&render_head(job_id), data);
    if out.is_empty() {
        *out = frame;
    } else {
        out.push_str(&frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::{Value, json};

    const ID: &str = "6f1c2d7e-3b1a-4c5d-8e9f-0a1b2c3d4e5f";

    fn id() -> JobId {
        JobId::parse(ID).unwrap()
    }

    #[test]
    fn chunk_encoder_matches_serde_for_every_length_mod_3() {
        for len in [0usize, 1, 2, 3, 4, 5, 16, 256, 4097] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut out = String::from("prefix");
            encode_job_chunk(&mut out, &id(), &data);
            let expected = json!({"type": "job_chunk", "job_id": ID, "data": B64.encode(&data)});
            let got: Value = serde_json::from_str(&out[6..]).unwrap();
            assert_eq!(got, expected, "len {len}");
            assert_eq!(out.len() - 6, job_chunk_frame_len(len));
        }
    }

    /// The frame as serde writes it from a struct with the wire's field
    /// order, to compare byte for byte (a `json!` map sorts its keys).
    #[derive(Serialize)]
    struct SerdeChunk {
        r#type: &'static str,
        job_id: JobId,
        data: String,
    }

    #[test]
    fn job_encoder_is_byte_identical_to_serde_for_every_length_mod_3() {
        let encoder = ChunkEncoder::new(&id());
        for len in [0usize, 1, 2, 3, 4, 5, 16, 256, 4097, 65536] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let out = encoder.encode(&data);
            let serde_frame = SerdeChunk {
                r#type: "job_chunk",
                job_id: id(),
                data: B64.encode(&data),
            };
            assert_eq!(out, serde_json::to_string(&serde_frame).unwrap(), "len {len}");
            assert_eq!(out.len(), job_chunk_frame_len(len));
        }
    }

    #[test]
    fn job_encoder_and_one_off_encoder_agree() {
        let data = b"data: {}\n\n";
        let mut one_off = String::new();
        encode_job_chunk(&mut one_off, &id(), data);
        assert_eq!(ChunkEncoder::new(&id()).encode(data), one_off);
    }
}
