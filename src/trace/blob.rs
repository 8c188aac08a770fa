//! A byte string that lives in the trace by value but is written to JSONL as
//! its length and SHA-256, so that traces stay small while byte equality can
//! still be checked exactly.

use std::sync::Arc;

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Bytes carried by a trace event (a response body, a reassembled stream).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Blob(Arc<[u8]>);

impl Blob {
    /// Wraps a copy of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        Self(Arc::from(bytes))
    }

    /// The bytes themselves.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Lower-case hex SHA-256 of the bytes.
    pub fn sha256_hex(&self) -> String {
        hex(&Sha256::digest(&self.0))
    }
}

impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Self(Arc::from(bytes))
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

    /// Hex encoding pads every byte to two digits.
    #[test]
    fn hex_pads_each_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0]), "000fa0");
    }
}
