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
//!
//! Derived values: a reader above the trace may keep one value computed
//! from a blob's bytes in the blob itself ([`Blob::derived`]), shared like
//! the digest by every clone, so that rules reading the same body (a done
//! job's relayed bytes *are* its backend body) compute it once. The value
//! is stored type-erased, so this module knows nothing of what readers
//! derive (the oracle's SSE summary, `oracle::body`): the trace stays
//! below the oracle. A cache beside the blob (a side table keyed by the
//! bytes' address and length) would need a lock or a per-run context
//! threaded through every rule, and could outlive or alias the bytes it
//! names; a slot in the blob lives and dies with the bytes it describes. A
//! view of a *prefix* of a body ([`Blob::share_prefix`]) is other bytes:
//! it gets slots of its own.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Bytes carried by a trace event (a response body, a reassembled stream).
/// Equality is by bytes.
#[derive(Clone, Debug, Default)]
pub struct Blob {
    bytes: Bytes,
    /// What is computed once from `bytes`, shared by the clones; `None`
    /// for an empty blob, whose values cost nothing to compute again (each
    /// submission and backend request starts with an empty blob, 50 k of
    /// them at 1000 jobs/s: an allocation each, and a free, saved).
    memo: Option<Arc<Memo>>,
}

/// The values computed from one blob's bytes, each at most once. Both
/// slots are `OnceLock`s: a blob is read by reference from the trace, and
/// the first reader fills a slot for all the others. Both values are
/// boxed, so that an empty memo is no larger than the digest slot alone
/// once was (40 bytes): blobs are made during the simulation, where a run
/// holds the most memory, and their slots are filled only when it is judged.
#[derive(Debug, Default)]
struct Memo {
    /// The SHA-256 of the bytes.
    digest: OnceLock<Box<[u8; 32]>>,
    /// The one value a reader derived from the bytes ([`Blob::derived`]).
    derived: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl PartialEq for Blob {
    fn eq(&self, other: &Self) -> bool {
        self.is_same_view(other) || self.bytes == other.bytes
    }
}

impl Eq for Blob {}

impl Blob {
    fn of(bytes: Bytes) -> Self {
        Self {
            memo: (!bytes.is_empty()).then(Arc::default),
            bytes,
        }
    }

    /// Whether both are views of the same bytes in memory (then equal,
    /// without comparing them).
    fn is_same_view(&self, other: &Self) -> bool {
        self.bytes.as_ptr() == other.bytes.as_ptr() && self.len() == other.len()
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

    /// Whether `prefix`'s bytes begin these (a view of the start of the
    /// same memory is, without comparing bytes).
    pub fn starts_with(&self, prefix: &Blob) -> bool {
        (self.bytes.as_ptr() == prefix.bytes.as_ptr() && prefix.len() <= self.len())
            || self.bytes.starts_with(&prefix.bytes)
    }

    /// Lower-case hex SHA-256 of the bytes.
    pub fn sha256_hex(&self) -> String {
        let digest = || Box::new(Sha256::digest(&self.bytes).into());
        match &self.memo {
            Some(memo) => hex(&**memo.digest.get_or_init(digest)),
            None => hex(&*digest()),
        }
    }

    /// `derive(bytes)`, computed once and shared by every clone of this
    /// blob (so by a reassembled stream equal to its body). A blob keeps
    /// one derived value: asked for a value of another type than the one
    /// it keeps, it computes that value each time (correct, only slower).
    /// `derive` must be a function of the bytes alone.
    pub fn derived<T: Clone + Send + Sync + 'static>(&self, derive: fn(&[u8]) -> T) -> T {
        let Some(memo) = &self.memo else {
            return derive(&self.bytes);
        };
        let kept = memo.derived.get_or_init(|| Box::new(derive(&self.bytes)));
        match kept.downcast_ref::<T>() {
            Some(value) => value.clone(),
            None => derive(&self.bytes),
        }
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
            Arc::ptr_eq(whole.memo.as_ref().unwrap(), body.memo.as_ref().unwrap()),
            "the whole body's digest is computed once"
        );
        let other = Blob::share_prefix(b"data: x".to_vec(), [&body]);
        assert_eq!(other.as_bytes(), b"data: x");
        assert_eq!(Blob::share_prefix(Vec::new(), []).len(), 0);
    }

    /// A derived value is computed once for a body and the clones equal to
    /// it, apart for a prefix view, and uncached for a second type.
    #[test]
    fn derived_is_shared_by_clones_only() {
        fn count_lines(bytes: &[u8]) -> usize {
            CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            bytes.iter().filter(|&&b| b == b'\n').count()
        }
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let calls = || CALLS.load(std::sync::atomic::Ordering::Relaxed);
        let body = Blob::from(b"data: a\n\ndata: b\n\n".to_vec());
        let whole = Blob::share_prefix(body.as_bytes().to_vec(), [&body]);
        let prefix = Blob::share_prefix(b"data: a\n".to_vec(), [&body]);
        assert_eq!(whole.derived(count_lines), 4);
        assert_eq!(body.derived(count_lines), 4);
        assert_eq!(calls(), 1, "the body and its equal share one computation");
        assert_eq!(
            prefix.derived(count_lines),
            1,
            "a prefix view derives from its own bytes"
        );
        assert_eq!(calls(), 2);
        assert_eq!(body.derived(|bytes| bytes.len() as u64), 18, "another type is computed");
        assert_eq!(body.derived(count_lines), 4, "and the kept value stays");
        assert_eq!(calls(), 2);
    }

    /// Equality and prefixes hold by bytes, whether or not memory is shared.
    #[test]
    fn equality_and_prefix_by_bytes() {
        let body = Blob::from(b"data: a\n\ndata: b\n\n".to_vec());
        let view = Blob::share_prefix(b"data: a\n".to_vec(), [&body]);
        let copy = Blob::new(b"data: a\n");
        assert_eq!(view, copy);
        assert_ne!(view, body);
        assert!(body.starts_with(&view) && body.starts_with(&copy) && body.starts_with(&body));
        assert!(!view.starts_with(&body) && !copy.starts_with(&body));
        assert!(!Blob::new(b"x").starts_with(&Blob::new(b"y")));
        assert!(body.starts_with(&Blob::default()));
    }

    /// A blob's shared memo costs no more than the digest slot it replaced.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn memo_is_as_small_as_the_digest_slot() {
        assert_eq!(size_of::<Memo>(), size_of::<OnceLock<[u8; 32]>>().next_multiple_of(8));
    }

    /// Hex encoding pads every byte to two digits.
    #[test]
    fn hex_pads_each_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0]), "000fa0");
    }
}
