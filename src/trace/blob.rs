//! A byte string that lives in the trace by value but is written to JSONL as
//! its length and SHA-256, so that traces stay small while byte equality can
//! still be checked exactly.
//!
//! Memory: a blob is either plain, a reference-counted [`Bytes`], or
//! sealed, the packed form a mock made when its stream ended
//! ([`sealed_bytes::Sealed`]: LZ4 with the length and SHA-256 taken while
//! the bytes were at hand). Either moves into the trace without a copy
//! ([`Blob::from`] a `Vec` or a [`ByteLog`]). The bytes the coordinator
//! reassembled are the backend's body's own blob when they equal it
//! ([`Blob::shared`]), so a done job's body is held, and its values are
//! derived, once. Sealed blobs compare by length and digest, and are
//! unpacked only for a reader that needs their bytes ([`Blob::bytes`]). A
//! plain reassembly that is a prefix of a plain body is a view of it.
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
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use sealed_bytes::{ByteLog, Sealed};
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Bytes carried by a trace event (a response body, a reassembled stream).
/// Equality is by bytes.
///
/// One pointer wide: a blob sits in a trace event, and every event of a
/// trace is as large as its largest kind (a backend's end, which carries
/// a body), so the blob's size is paid by each of a run's events.
#[derive(Clone, Debug, Default)]
pub struct Blob {
    /// The bytes and what is computed from them, shared by the clones;
    /// `None` for an empty blob, whose values cost nothing to compute again
    /// (each submission and backend request starts with an empty blob, 50 k
    /// of them at 1000 jobs/s: an allocation each, and a free, saved).
    held: Option<Arc<Held>>,
}

/// A non-empty blob's bytes and memo.
#[derive(Debug)]
struct Held {
    bytes: Stored,
    memo: Memo,
}

/// The bytes of the empty blob.
static EMPTY: Stored = Stored::Plain(Bytes::new());

/// How a blob holds its bytes.
#[derive(Clone, Debug)]
enum Stored {
    /// As they are.
    Plain(Bytes),
    /// Packed by the mock that recorded them, with length and digest.
    Sealed(Arc<Sealed>),
}

/// The values computed from one blob's bytes, each at most once. Both
/// slots are `OnceLock`s: a blob is read by reference from the trace, and
/// the first reader fills a slot for all the others. Both values are
/// boxed, so that an empty memo is no larger than the digest slot alone
/// once was (40 bytes): blobs are made during the simulation, where a run
/// holds the most memory, and their slots are filled only when it is judged.
#[derive(Debug, Default)]
struct Memo {
    /// The SHA-256 of plain bytes (a sealed blob carries its own).
    digest: OnceLock<Box<[u8; 32]>>,
    /// The one value a reader derived from the bytes ([`Blob::derived`]).
    derived: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl PartialEq for Blob {
    fn eq(&self, other: &Self) -> bool {
        if let (Some(a), Some(b)) = (&self.held, &other.held)
            && Arc::ptr_eq(a, b)
        {
            return true;
        }
        match (self.stored(), other.stored()) {
            (Stored::Sealed(a), Stored::Sealed(b)) => a.same_bytes(b),
            _ => self.is_same_view(other) || (self.len() == other.len() && *self.bytes() == *other.bytes()),
        }
    }
}

impl Eq for Blob {}

impl Blob {
    fn of(bytes: Bytes) -> Self {
        Self::holding(bytes.is_empty(), Stored::Plain(bytes))
    }

    fn holding(empty: bool, bytes: Stored) -> Self {
        Self {
            held: (!empty).then(|| {
                Arc::new(Held {
                    bytes,
                    memo: Memo::default(),
                })
            }),
        }
    }

    fn stored(&self) -> &Stored {
        self.held.as_ref().map_or(&EMPTY, |held| &held.bytes)
    }

    fn memo(&self) -> Option<&Memo> {
        self.held.as_ref().map(|held| &held.memo)
    }

    fn plain(&self) -> Option<&Bytes> {
        match self.stored() {
            Stored::Plain(bytes) => Some(bytes),
            Stored::Sealed(_) => None,
        }
    }

    /// Whether both are plain views of the same bytes in memory (then
    /// equal, without comparing them).
    fn is_same_view(&self, other: &Self) -> bool {
        match (self.plain(), other.plain()) {
            (Some(a), Some(b)) => a.as_ptr() == b.as_ptr() && a.len() == b.len(),
            _ => false,
        }
    }

    /// Whether both are sealed, of the same bytes.
    fn is_same_sealed(&self, other: &Sealed) -> bool {
        matches!(self.stored(), Stored::Sealed(mine) if mine.same_bytes(other))
    }

    /// A recorded stream as a blob: one of `candidates` when it holds the
    /// same bytes (a done job's reassembly is its body: one blob, one
    /// derived value), else the stream's own bytes. An open (plain) stream
    /// shares a plain candidate's memory when it is a prefix of it
    /// ([`Blob::share_prefix`]).
    pub fn shared<'a>(log: ByteLog, candidates: impl IntoIterator<Item = &'a Blob>) -> Self {
        match log {
            ByteLog::Open(bytes) => Self::share_prefix(bytes, candidates),
            ByteLog::Sealed(sealed) => candidates
                .into_iter()
                .find(|c| c.is_same_sealed(&sealed))
                .cloned()
                .unwrap_or_else(|| Self::from(ByteLog::Sealed(sealed))),
        }
    }

    /// Wraps a copy of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        Self::of(Bytes::copy_from_slice(bytes))
    }

    /// `bytes` as a blob, sharing the first `bytes.len()` bytes of one of
    /// `candidates` when they are equal (no copy), else taking `bytes`.
    pub fn share_prefix<'a>(bytes: Vec<u8>, candidates: impl IntoIterator<Item = &'a Blob>) -> Self {
        let mut plain = candidates.into_iter().filter_map(|c| Some((c, c.plain()?)));
        match plain.find(|(_, c)| c.starts_with(&bytes)) {
            Some((whole, _)) if whole.len() == bytes.len() => whole.clone(),
            Some((_, longer)) => Self::of(longer.slice(..bytes.len())),
            None => Self::from(bytes),
        }
    }

    /// The bytes themselves: borrowed when plain, unpacked when sealed
    /// (each call unpacks again; a value read often is [`Blob::derived`]).
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self.stored() {
            Stored::Plain(bytes) => Cow::Borrowed(bytes),
            Stored::Sealed(sealed) => Cow::Owned(sealed.unpack()),
        }
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        match self.stored() {
            Stored::Plain(bytes) => bytes.len(),
            Stored::Sealed(sealed) => sealed.len(),
        }
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `prefix`'s bytes begin these (a plain view of the start of
    /// the same memory does, and a blob of equal length must be equal,
    /// without unpacking sealed bytes).
    pub fn starts_with(&self, prefix: &Blob) -> bool {
        if let (Some(mine), Some(theirs)) = (self.plain(), prefix.plain())
            && mine.as_ptr() == theirs.as_ptr()
            && theirs.len() <= mine.len()
        {
            return true;
        }
        match prefix.len() {
            0 => true,
            len if len > self.len() => false,
            len if len == self.len() => self == prefix,
            _ => self.bytes().starts_with(&prefix.bytes()),
        }
    }

    /// Lower-case hex SHA-256 of the bytes: a sealed blob's own, taken
    /// when it was sealed; a plain blob's computed once.
    pub fn sha256_hex(&self) -> String {
        let plain = match self.stored() {
            Stored::Sealed(sealed) => return hex(sealed.sha256()),
            Stored::Plain(bytes) => bytes,
        };
        let digest = || Box::new(Sha256::digest(plain).into());
        match self.memo() {
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
        let Some(memo) = self.memo() else {
            return derive(&self.bytes());
        };
        let kept = memo.derived.get_or_init(|| Box::new(derive(&self.bytes())));
        match kept.downcast_ref::<T>() {
            Some(value) => value.clone(),
            None => derive(&self.bytes()),
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

impl From<ByteLog> for Blob {
    /// Takes the log's bytes without copying them: an open log's buffer
    /// (spare capacity released), a sealed log's packed form.
    fn from(log: ByteLog) -> Self {
        match log {
            ByteLog::Open(bytes) => Self::from(bytes),
            ByteLog::Sealed(sealed) => Self::holding(sealed.is_empty(), Stored::Sealed(sealed)),
        }
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
        assert_eq!(&*shared.bytes(), b"data: a\n\n");
        assert_eq!(
            shared.plain().unwrap().as_ptr(),
            body.plain().unwrap().as_ptr(),
            "a prefix is a view of the body, not a copy"
        );
        let whole = Blob::share_prefix(body.bytes().to_vec(), [&body]);
        assert_eq!(whole.sha256_hex(), body.sha256_hex());
        assert!(
            Arc::ptr_eq(whole.held.as_ref().unwrap(), body.held.as_ref().unwrap()),
            "the whole body's digest is computed once"
        );
        let other = Blob::share_prefix(b"data: x".to_vec(), [&body]);
        assert_eq!(&*other.bytes(), b"data: x");
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
        let whole = Blob::share_prefix(body.bytes().to_vec(), [&body]);
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

    fn sealed(bytes: &[u8]) -> Blob {
        let mut log = ByteLog::from(bytes.to_vec());
        log.seal();
        Blob::from(log)
    }

    /// A sealed blob equals, begins and digests like the plain blob of the
    /// same bytes, and derives from its unpacked bytes.
    #[test]
    fn sealed_blob_reads_like_plain() {
        let bytes = b"data: a\n\ndata: b\n\n";
        let (plain, packed) = (Blob::new(bytes), sealed(bytes));
        assert_eq!(packed, plain);
        assert_eq!(plain, packed);
        assert_eq!(packed, sealed(bytes));
        assert_ne!(packed, sealed(b"data: a\n\n"));
        assert_eq!(packed.sha256_hex(), plain.sha256_hex());
        assert_eq!(packed.len(), bytes.len());
        assert_eq!(&*packed.bytes(), bytes);
        assert!(packed.starts_with(&sealed(b"data: a")) && packed.starts_with(&Blob::new(b"data: a")));
        assert!(packed.starts_with(&plain) && plain.starts_with(&packed) && packed.starts_with(&Blob::default()));
        assert!(!packed.starts_with(&sealed(b"data: x")) && !sealed(b"data: a").starts_with(&packed));
        assert_eq!(packed.derived(|b| b.len()), bytes.len());
        assert_eq!(
            serde_json::to_string(&packed).unwrap(),
            serde_json::to_string(&plain).unwrap()
        );
    }

    /// A sealed reassembly equal to a sealed body is the body's own blob;
    /// another stays its own.
    #[test]
    fn shared_takes_the_equal_sealed_body() {
        let body = sealed(b"data: a\n\ndata: b\n\n");
        let mut log = ByteLog::from(b"data: a\n\ndata: b\n\n".to_vec());
        log.seal();
        let same = Blob::shared(log, [&Blob::new(b"x"), &body]);
        assert!(Arc::ptr_eq(same.held.as_ref().unwrap(), body.held.as_ref().unwrap()));
        let mut log = ByteLog::from(b"data: a\n\n".to_vec());
        log.seal();
        let prefix = Blob::shared(log, [&body]);
        assert!(!Arc::ptr_eq(prefix.held.as_ref().unwrap(), body.held.as_ref().unwrap()));
        assert!(body.starts_with(&prefix));
        let open = Blob::shared(ByteLog::from(b"data: a".to_vec()), [&body]);
        assert_eq!(&*open.bytes(), b"data: a", "an open log is kept as plain bytes");
    }

    /// A blob's shared memo costs no more than the digest slot it replaced.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn memo_is_as_small_as_the_digest_slot() {
        assert_eq!(size_of::<Memo>(), size_of::<OnceLock<[u8; 32]>>().next_multiple_of(8));
    }

    /// A blob is one pointer wide.
    #[test]
    fn blob_is_one_pointer() {
        assert_eq!(size_of::<Blob>(), size_of::<usize>());
    }

    /// Hex encoding pads every byte to two digits.
    #[test]
    fn hex_pads_each_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0]), "000fa0");
    }
}
