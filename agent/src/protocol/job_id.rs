//! [`JobId`]: a job's id, kept exactly as the coordinator wrote it.

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

/// A job's id exactly as the coordinator wrote it.
///
/// It must parse as a UUID (any spelling the `uuid` crate reads: hyphenated,
/// simple, braced or URN, in either case), but it is kept, compared and
/// echoed as written: `job_chunk`, `job_done` and `job_error` carry the very
/// string the coordinator sent (protocol.md), and two spellings of one UUID
/// are two different jobs. Re-formatting it would answer a job the
/// coordinator cannot match, and comparing parsed values would turn two of
/// its jobs into duplicates. Every accepted spelling is plain ASCII that
/// needs no JSON escaping (hex digits, `-`, `{`, `}`, `urn:uuid:`), and at
/// most [`JOB_ID_BYTES_MAX`] bytes long.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(Arc<str>);

impl Serialize for JobId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Longest accepted job id: the URN form, `urn:uuid:` plus 36 characters.
pub const JOB_ID_BYTES_MAX: usize = 45;

impl JobId {
    /// Accepts `text` if it is a UUID in any spelling, keeping it as written.
    pub fn parse(text: &str) -> Result<JobId, String> {
        if text.len() > JOB_ID_BYTES_MAX {
            return Err(format!("`job_id` is not a UUID: {} bytes long", text.len()));
        }
        Uuid::parse_str(text).map_err(|e| format!("`job_id` is not a UUID: {e}"))?;
        debug_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-{}:".contains(&b)));
        Ok(JobId(Arc::from(text)))
    }

    /// The id as the coordinator wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The canonical (lower-case, hyphenated) spelling of `uuid`: what tests,
/// benches and the mock coordinator normally send.
impl From<Uuid> for JobId {
    fn from(uuid: Uuid) -> JobId {
        JobId(Arc::from(uuid.hyphenated().to_string()))
    }
}
