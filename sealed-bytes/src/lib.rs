//! A recorded byte stream that is sealed when it ends.
//!
//! The mocks record every byte a stream carried: the backend each response
//! body it wrote, the coordinator each job's reassembled `job_chunk` bytes.
//! The oracle needs them exactly (byte equality, and what the streams say),
//! but a run at a thousand jobs a second held two copies of every body to
//! its end, most of the memory it held at its peak (issue 16).
//!
//! A stream that has ended is not written again, so it is sealed
//! ([`ByteLog::seal`]): its bytes are packed with LZ4 ([`Sealed`]) beside
//! their length and SHA-256, both taken while the bytes are at hand. The
//! mock's SSE bodies repeat one event's skeleton, so they pack to about a
//! tenth; any bytes pack losslessly. Two sealed streams compare by length
//! and digest, without unpacking, and a reader that needs the bytes gets
//! them back exactly with [`Sealed::unpack`] or [`ByteLog::bytes`]. A
//! stream still running when it is read stays open, as plain bytes.
//!
//! One file: [`Sealed`] (the packed form) and [`ByteLog`] (a record's
//! bytes, open while written, sealed once ended).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Bytes packed with LZ4, with their length and SHA-256. Immutable: made
/// only by [`Sealed::seal`], so the packed bytes always unpack to `len`
/// bytes whose digest is `sha256`.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Length of the unpacked bytes.
    len: usize,
    /// SHA-256 of the unpacked bytes.
    sha256: [u8; 32],
    /// LZ4 block of the bytes, without spare capacity.
    packed: Box<[u8]>,
}

impl Sealed {
    /// Packs `bytes`, taking their length and digest.
    pub fn seal(bytes: &[u8]) -> Self {
        Self {
            len: bytes.len(),
            sha256: Sha256::digest(bytes).into(),
            packed: lz4_flex::block::compress(bytes).into_boxed_slice(),
        }
    }

    /// Length of the unpacked bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// SHA-256 of the unpacked bytes.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// Bytes held for the packed form.
    pub fn packed_len(&self) -> usize {
        self.packed.len()
    }

    /// The bytes, unpacked.
    pub fn unpack(&self) -> Vec<u8> {
        // Only `seal` makes a `Sealed`, from these very bytes: a failure is
        // a broken invariant of this type, not bad input.
        let bytes = lz4_flex::block::decompress(&self.packed, self.len)
            .unwrap_or_else(|err| panic!("sealed bytes fail to unpack: {err}"));
        debug_assert_eq!(bytes.len(), self.len, "an LZ4 block unpacks to its length");
        bytes
    }

    /// Whether both hold the same bytes: equal lengths and digests.
    pub fn same_bytes(&self, other: &Sealed) -> bool {
        self.len == other.len && self.sha256 == other.sha256
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sealed {{ len: {}, packed: {}, sha256: {:02x}{:02x}{:02x}{:02x}… }}",
            self.len,
            self.packed.len(),
            self.sha256[0],
            self.sha256[1],
            self.sha256[2],
            self.sha256[3]
        )
    }
}

/// The bytes of one recorded stream: open (plain bytes, appended to) while
/// the stream runs, sealed ([`Sealed`], shared) once it has ended. Equality
/// is by bytes, whatever the form.
#[derive(Clone)]
pub enum ByteLog {
    /// Still written, or never sealed.
    Open(Vec<u8>),
    /// Ended and packed; shared by clones, and by the trace that reads it.
    Sealed(Arc<Sealed>),
}

impl Default for ByteLog {
    fn default() -> Self {
        ByteLog::Open(Vec::new())
    }
}

impl ByteLog {
    /// An empty, open log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        match self {
            ByteLog::Open(bytes) => bytes.len(),
            ByteLog::Sealed(sealed) => sealed.len(),
        }
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the log has been sealed (and not written since).
    pub fn is_sealed(&self) -> bool {
        matches!(self, ByteLog::Sealed(_))
    }

    /// Appends `bytes`. A sealed log is unpacked first and stays open: bytes
    /// after a stream's end are rare (an agent writing after its terminal
    /// frame) and must still be recorded exactly.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let ByteLog::Sealed(sealed) = self {
            *self = ByteLog::Open(sealed.unpack());
        }
        if let ByteLog::Open(open) = self {
            open.extend_from_slice(bytes);
        }
    }

    /// Packs the bytes: the stream has ended. An empty log stays open (it
    /// holds nothing), and a sealed one stays as it is.
    pub fn seal(&mut self) {
        if let ByteLog::Open(open) = self
            && !open.is_empty()
        {
            *self = ByteLog::Sealed(Arc::new(Sealed::seal(open)));
        }
    }

    /// The bytes: borrowed while open, unpacked once sealed.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            ByteLog::Open(bytes) => Cow::Borrowed(bytes),
            ByteLog::Sealed(sealed) => Cow::Owned(sealed.unpack()),
        }
    }

    /// A copy of the bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes().into_owned()
    }

    /// The bytes, unpacked if sealed.
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            ByteLog::Open(bytes) => bytes,
            ByteLog::Sealed(sealed) => sealed.unpack(),
        }
    }

    /// Heap bytes held: the open buffer's capacity, or the packed form's.
    pub fn held_len(&self) -> usize {
        match self {
            ByteLog::Open(bytes) => bytes.capacity(),
            ByteLog::Sealed(sealed) => sealed.packed_len(),
        }
    }
}

impl From<Vec<u8>> for ByteLog {
    fn from(bytes: Vec<u8>) -> Self {
        ByteLog::Open(bytes)
    }
}

impl PartialEq for ByteLog {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ByteLog::Sealed(a), ByteLog::Sealed(b)) => a.same_bytes(b),
            _ => self.len() == other.len() && *self.bytes() == *other.bytes(),
        }
    }
}

impl Eq for ByteLog {}

impl PartialEq<[u8]> for ByteLog {
    fn eq(&self, other: &[u8]) -> bool {
        self.len() == other.len() && *self.bytes() == *other
    }
}

impl PartialEq<&[u8]> for ByteLog {
    fn eq(&self, other: &&[u8]) -> bool {
        *self == **other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for ByteLog {
    fn eq(&self, other: &[u8; N]) -> bool {
        *self == other[..]
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for ByteLog {
    fn eq(&self, other: &&[u8; N]) -> bool {
        *self == other[..]
    }
}

impl PartialEq<Vec<u8>> for ByteLog {
    fn eq(&self, other: &Vec<u8>) -> bool {
        *self == other[..]
    }
}

impl PartialEq<ByteLog> for Vec<u8> {
    fn eq(&self, other: &ByteLog) -> bool {
        *other == self[..]
    }
}

impl fmt::Debug for ByteLog {
    /// The bytes as an escaped byte string, `b"…"`, either form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.bytes().escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse_body(events: usize) -> Vec<u8> {
        let mut body = Vec::new();
        for i in 0..events {
            body.extend_from_slice(
                format!(
                    "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\
                     \"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i}\"}},\"finish_reason\":null}}]}}\n\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(b"data: [DONE]\n\n");
        body
    }

    /// Sealing keeps the bytes exactly, with their length and SHA-256.
    #[test]
    fn seal_round_trips_exactly() {
        for bytes in [
            Vec::new(),
            b"x".to_vec(),
            sse_body(40),
            (0..=255u8).cycle().take(5000).collect(),
        ] {
            let sealed = Sealed::seal(&bytes);
            assert_eq!(sealed.unpack(), bytes);
            assert_eq!(sealed.len(), bytes.len());
            assert_eq!(sealed.sha256(), &<[u8; 32]>::from(Sha256::digest(&bytes)));
        }
    }

    /// An SSE body packs to well under a fifth of its size.
    #[test]
    fn an_sse_body_packs_small() {
        let body = sse_body(40);
        let sealed = Sealed::seal(&body);
        assert!(
            sealed.packed_len() * 5 < body.len(),
            "{} bytes packed to {}",
            body.len(),
            sealed.packed_len()
        );
    }

    /// A log is equal by bytes whether open or sealed, in any pairing.
    #[test]
    fn equality_by_bytes_in_either_form() {
        let mut open = ByteLog::from(sse_body(3));
        let mut sealed = open.clone();
        sealed.seal();
        assert!(sealed.is_sealed() && !open.is_sealed());
        assert_eq!(open, sealed);
        assert_eq!(sealed, sse_body(3));
        let mut other = ByteLog::from(sse_body(4));
        assert_ne!(open, other);
        other.seal();
        assert_ne!(sealed, other);
        open.seal();
        assert_eq!(open, sealed, "two sealed logs compare by digest");
        assert_eq!(ByteLog::from(b"ab".to_vec()), b"ab");
        assert_ne!(ByteLog::from(b"ab".to_vec()), b"abc");
    }

    /// Writing to a sealed log unpacks it and appends; an empty log stays open.
    #[test]
    fn write_after_seal_appends() {
        let mut log = ByteLog::new();
        log.seal();
        assert!(!log.is_sealed(), "an empty log holds nothing to pack");
        log.extend_from_slice(b"abc");
        log.seal();
        assert!(log.is_sealed());
        log.extend_from_slice(b"");
        assert!(log.is_sealed(), "appending nothing keeps the seal");
        log.extend_from_slice(b"de");
        assert!(!log.is_sealed());
        assert_eq!(log, b"abcde");
        assert_eq!(log.len(), 5);
        assert_eq!(log.clone().into_vec(), b"abcde");
    }

    /// A sealed log holds its packed form only.
    #[test]
    fn sealed_log_holds_the_packed_form() {
        let mut log = ByteLog::from(sse_body(40));
        let open_held = log.held_len();
        log.seal();
        assert!(log.held_len() * 5 < open_held, "{} vs {open_held}", log.held_len());
        assert_eq!(format!("{:?}", ByteLog::from(b"a\n".to_vec())), "b\"a\\n\"");
    }
}
