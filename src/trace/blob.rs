//! A byte string that lives in the trace by value but is written to JSONL as
//! its length and SHA-256, so that traces stay small while byte equality can
//! still be checked exactly.
//!
//! Memory: a blob is a reference-counted [`Bytes`], so a body moves into the
//! trace without a copy ([`Blob::from`] a `Vec`), and the bytes the
//! coordinator reassembled share the backend's body when they are a prefix
//! of it ([`Blob::share_prefix`]): a run holds each relayed byte once. A
//! blob equal to the whole body is the body's own blob, so its digest is
//! computed once for both (the trace hash writes every blob's digest).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Bytes carried by a trace event (a response body, a reassembled stream).
/// Equality is by bytes.
#[derive(Clone, Debug, Default)]
pub struct Blob {
    bytes: Bytes,
    /// The SHA-256 of `bytes`, computed once, shared by the clones.
    digest: Arc<OnceLock<[u8; 32]>>,
}

impl PartialEq for Blob {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Blob {}

impl Blob {
    fn of(bytes: Bytes) -> Self {
        Self {
            bytes,
            digest: Arc::default(),
        }
    }

    /// Wraps a copy of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        Self::of(Bytes::copy_from_slice(bytes))
    }

    /// `bytes` as a blob, sharing the first `bytes.len()` bytes of one of
    /// `candidates` when they are equal (no copy), else taking `bytes`.
    pub fn share_prefix<'a>(bytes: Vec<u8>, candidates: impl IntoIterator<Item = &'a Blob>) -> Self {
        match candidates.into_iter().find(|c| c.bytes.starts_with(&bytes)) {
            Some(whole) if whole.len() == bytes.len() => whole.clone(),
            Some(longer) => Self::of(longer.bytes.slice(..bytes.len())),
            None => Self::from(bytes),
        }
    }

    /// The bytes themselves.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Lower-case hex SHA-256 of the bytes.
    pub fn sha256_hex(&self) -> String {
        hex(self.digest.get_or_init(|| Sha256::digest(&self.bytes).into()))
    }
}

impl From<Vec<u8>> for Blob {
    /// Takes the vector's buffer without copying it. Spare capacity is
    /// released first (an in-place shrink for the allocator), since a trace
    /// holds its blobs to the end of the run.
    fn from(mut bytes: Vec<u8>) -> Self {
        bytes.shrink_to_fit();
        Self::of(Bytes::from(bytes))
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("Blob", 2)?;
        out.serialize_field("len", &self.len())?;
        out.serialize_field("sha256", &self.sha256_hex())?;
        out.end()
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob is written as its length and SHA-256, not its bytes.
    #[test]
    fn serialises_as_length_and_digest() {
        let json = serde_json::to_string(&Blob::new(b"abc")).unwrap();
        assert_eq!(
            json,
            r#"{"len":3,"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}"#
        );
    }

    /// A prefix of a candidate shares its bytes; anything else is kept as is.
    #[test]
    fn share_prefix_shares_or_keeps() {
        let body = Blob::from(b"data: a\n\ndata: b\n\n".to_vec());
        let shared = Blob::share_prefix(b"data: a\n\n".to_vec(), [&body]);
        assert_eq!(shared.as_bytes(), b"data: a\n\n");
        assert_eq!(
            shared.bytes.as_ptr(),
            body.bytes.as_ptr(),
            "a prefix is a view of the body, not a copy"
        );
        let whole = Blob::share_prefix(body.as_bytes().to_vec(), [&body]);
        assert_eq!(whole.sha256_hex(), body.sha256_hex());
        assert!(
            Arc::ptr_eq(&whole.digest, &body.digest),
            "the whole body's digest is computed once"
        );
        let other = Blob::share_prefix(b"data: x".to_vec(), [&body]);
        assert_eq!(other.as_bytes(), b"data: x");
        assert_eq!(Blob::share_prefix(Vec::new(), []).len(), 0);
    }

    /// Hex encoding pads every byte to two digits.
    #[test]
    fn hex_pads_each_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0]), "000fa0");
    }
}
