//! [`FrameLog`]: every frame in and out, 32 bytes each.
//!
//! A long run records hundreds of thousands of frames: at 1 000 jobs/s the
//! frame log was the coordinator's largest structure after the reassembled
//! bytes. Each frame is stored as a fixed-size `Packed` entry whose
//! strings are indexes into tables: the message type into `kinds` (one
//! entry per distinct type, up to [`NAMES_MAX`]), the job id into `ids` (one
//! entry per id the coordinator sent, sharing the job record's [`Name`]),
//! the text into `texts` (kept only where a reader needs it, see
//! [`FrameRecord::text`]). A chunk frame keeps no text, so the same slot
//! holds its decoded length. Readers get a borrowed [`FrameView`] per
//! frame, or an owned [`FrameRecord`].

use rustc_hash::FxHashMap;
use serde::{Serialize, Serializer};

use crate::record::{Dir, FrameRecord, NAMES_MAX, Name};
use crate::segmented::Segmented;
use crate::state::FRAME_RECORDS_MAX;

/// `Packed::job` / `Packed::payload` when there is none.
const NONE: u32 = u32::MAX;
/// `Packed::flags`: the frame was written by the coordinator.
const FLAG_OUT: u8 = 1;
/// `Packed::flags`: `payload` is the decoded chunk length, not a text index.
const FLAG_DATA_LEN: u8 = 2;

/// One frame as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Packed {
    at_us: u64,
    /// Connection number; saturates at `u32::MAX` (four billion
    /// connections, each a handshake: never in a run).
    conn: u32,
    /// Index into `kinds`.
    kind: u32,
    /// Index into `ids`, or [`NONE`].
    job: u32,
    /// Index into `texts`, or the decoded length ([`FLAG_DATA_LEN`]), or [`NONE`].
    payload: u32,
    text_len: u32,
    flags: u8,
}

/// A frame about to be recorded: its strings resolved to table indexes
/// (see [`FrameLog::kind`], [`FrameLog::job`]), its text still borrowed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NewFrame<'a> {
    pub at_us: u64,
    pub conn: u64,
    pub dir: Dir,
    pub kind: u32,
    pub job: Option<u32>,
    pub text_len: u32,
    pub text: Option<&'a str>,
    pub data_len: Option<u32>,
}

/// One frame, borrowed from the log: the fields of a [`FrameRecord`], and
/// serialized exactly like one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FrameView<'a> {
    pub at_us: u64,
    pub conn: u64,
    pub dir: Dir,
    pub kind: &'a str,
    pub job_id: Option<&'a str>,
    pub text_len: u32,
    pub text: Option<&'a str>,
    pub data_len: Option<u32>,
}

impl FrameView<'_> {
    /// The owned record of this frame.
    pub fn to_record(&self) -> FrameRecord {
        FrameRecord {
            at_us: self.at_us,
            conn: self.conn,
            dir: self.dir,
            kind: self.kind.into(),
            job_id: self.job_id.map(Name::from),
            text_len: self.text_len,
            text: self.text.map(Box::from),
            data_len: self.data_len,
        }
    }
}

/// The tables a [`Packed`] frame's indexes point into.
#[derive(Clone, Debug, Default)]
struct Tables {
    kinds: Vec<Name>,
    ids: Vec<Name>,
    texts: Segmented<Box<str>>,
}

impl Tables {
    fn view(&self, p: &Packed) -> FrameView<'_> {
        let data = p.flags & FLAG_DATA_LEN != 0;
        let payload = (p.payload != NONE).then_some(p.payload);
        FrameView {
            at_us: p.at_us,
            conn: u64::from(p.conn),
            dir: if p.flags & FLAG_OUT != 0 { Dir::Out } else { Dir::In },
            kind: &self.kinds[p.kind as usize],
            job_id: (p.job != NONE).then(|| &*self.ids[p.job as usize]),
            text_len: p.text_len,
            text: payload.filter(|_| !data).map(|i| &*self.texts[i as usize]),
            data_len: payload.filter(|_| data),
        }
    }
}

/// Every frame in and out, in the order recorded, at most `frames_max`
/// ([`FRAME_RECORDS_MAX`]).
#[derive(Clone)]
pub struct FrameLog {
    frames: Segmented<Packed>,
    frames_max: usize,
    tables: Tables,
    /// Message type → index into `kinds`, for the first [`NAMES_MAX`]
    /// types (past them, each frame gets its own entry). Lookup only.
    kind_index: FxHashMap<Name, u32>,
    /// Job id the coordinator sent → index into `ids`. Lookup only; empty
    /// once the log is handed out (see [`FrameLog::finish`]).
    id_index: FxHashMap<Name, u32>,
}

impl Default for FrameLog {
    fn default() -> Self {
        FrameLog::with_bound(FRAME_RECORDS_MAX)
    }
}

impl FrameLog {
    /// An empty log that keeps at most `frames_max` frames.
    pub(crate) fn with_bound(frames_max: usize) -> Self {
        FrameLog {
            frames: Segmented::new(),
            frames_max,
            tables: Tables::default(),
            kind_index: FxHashMap::default(),
            id_index: FxHashMap::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// In order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = FrameView<'_>> + '_ {
        self.frames.iter().map(|p| self.tables.view(p))
    }

    pub fn get(&self, index: usize) -> Option<FrameView<'_>> {
        self.frames.get(index).map(|p| self.tables.view(p))
    }

    /// Walks the frames in order while freeing them: each segment of
    /// frames is released once `f` has seen it (the tables at the end).
    pub fn consume(self, mut f: impl FnMut(FrameView<'_>)) {
        let FrameLog { frames, tables, .. } = self;
        for p in frames {
            f(tables.view(&p));
        }
    }

    /// Whether the bound is reached: frames from now on are dropped, so
    /// their strings are not added to the tables either.
    fn is_full(&self) -> bool {
        self.frames.len() >= self.frames_max
    }

    /// The index of message type `kind`.
    pub(crate) fn kind(&mut self, kind: &str) -> u32 {
        if let Some(&i) = self.kind_index.get(kind) {
            return i;
        }
        if self.is_full() {
            return NONE;
        }
        let name = Name::from(kind);
        let i = push_index(&mut self.tables.kinds, name.clone());
        if self.kind_index.len() < NAMES_MAX {
            self.kind_index.insert(name, i);
        }
        i
    }

    /// The index of a frame's job id: the shared one of an id the
    /// coordinator sent ([`FrameLog::register_id`]), a new one otherwise.
    pub(crate) fn job(&mut self, job_id: &str) -> u32 {
        match self.id_index.get(job_id) {
            Some(&i) => i,
            None if self.is_full() => NONE,
            None => push_index(&mut self.tables.ids, Name::from(job_id)),
        }
    }

    /// Makes the frames naming `job_id` share its [`Name`] (idempotent).
    pub(crate) fn register_id(&mut self, job_id: &Name) {
        if !self.id_index.contains_key(&**job_id) {
            let i = push_index(&mut self.tables.ids, job_id.clone());
            self.id_index.insert(job_id.clone(), i);
        }
    }

    /// Appends a frame; false when the bound is reached (it is dropped).
    pub(crate) fn push(&mut self, frame: NewFrame<'_>) -> bool {
        if self.is_full() {
            return false;
        }
        let text = frame.text.map(|t| {
            self.tables.texts.push(t.into());
            u32::try_from(self.tables.texts.len() - 1).expect("fewer texts than frames, and frames are bounded")
        });
        let mut flags = if frame.dir == Dir::Out { FLAG_OUT } else { 0 };
        let payload = match (text, frame.data_len) {
            (Some(i), _) => i,
            (None, Some(len)) => {
                flags |= FLAG_DATA_LEN;
                len
            }
            (None, None) => NONE,
        };
        debug_assert!(
            text.is_none() || frame.data_len.is_none(),
            "a chunk frame keeps no text"
        );
        debug_assert!(
            frame.data_len.is_none_or(|len| len != NONE),
            "a decoded length below 4 GiB"
        );
        self.frames.push(Packed {
            at_us: frame.at_us,
            conn: u32::try_from(frame.conn).unwrap_or(u32::MAX),
            kind: frame.kind,
            job: frame.job.unwrap_or(NONE),
            payload,
            text_len: frame.text_len,
            flags,
        });
        true
    }

    /// The log as handed out at the end of a run: the lookup maps, which
    /// only recording needs, are dropped.
    pub(crate) fn finish(mut self) -> FrameLog {
        self.kind_index = FxHashMap::default();
        self.id_index = FxHashMap::default();
        self
    }
}

fn push_index(table: &mut Vec<Name>, name: Name) -> u32 {
    table.push(name);
    u32::try_from(table.len() - 1).expect("fewer names than frames, and frames are bounded")
}

impl std::fmt::Debug for FrameLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// As the sequence of its [`FrameRecord`]s.
impl Serialize for FrameLog {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(log: &mut FrameLog, at_us: u64, dir: Dir, kind: &str, job: Option<&str>, text: Option<&str>) {
        let new = NewFrame {
            at_us,
            conn: 2,
            dir,
            kind: log.kind(kind),
            job: job.map(|id| log.job(id)),
            text_len: 9,
            text,
            data_len: (kind == "job_chunk").then_some(6),
        };
        log.push(new);
    }

    /// Frames come back in order with every field, shared names, and the same JSON as their records.
    #[test]
    fn frames_round_trip() {
        assert_eq!(size_of::<Packed>(), 32);
        let mut log = FrameLog::default();
        let sent = Name::from("j-1");
        log.register_id(&sent);
        log.register_id(&sent);
        frame(&mut log, 5, Dir::Out, "job", Some("j-1"), None);
        frame(&mut log, 6, Dir::In, "job_chunk", Some("j-1"), None);
        frame(&mut log, 7, Dir::In, "job_done", Some("j-1"), Some("{\"x\":1}"));
        frame(&mut log, 8, Dir::In, "job_chunk", Some("other"), None);
        frame(&mut log, 9, Dir::In, "ping", None, None);
        assert_eq!(log.len(), 5);
        let views: Vec<FrameView<'_>> = log.iter().collect();
        assert_eq!(views.iter().map(|v| v.at_us).collect::<Vec<_>>(), vec![5, 6, 7, 8, 9]);
        assert_eq!(
            (views[0].dir, views[0].kind, views[0].job_id, views[0].text),
            (Dir::Out, "job", Some("j-1"), None)
        );
        assert_eq!((views[1].data_len, views[1].text, views[1].conn), (Some(6), None, 2));
        assert_eq!(
            (views[2].text, views[2].data_len, views[2].text_len),
            (Some("{\"x\":1}"), None, 9)
        );
        assert_eq!((views[3].job_id, views[4].job_id), (Some("other"), None));
        assert_eq!(log.tables.kinds.len(), 4, "job, job_chunk, job_done, ping");
        assert_eq!(log.tables.ids.len(), 2, "the sent id once, the unknown one");
        assert!(log.tables.ids[0].shares(&sent));
        let records: Vec<FrameRecord> = views.iter().map(FrameView::to_record).collect();
        assert_eq!(
            serde_json::to_value(&log).unwrap(),
            serde_json::to_value(&records).unwrap()
        );
        assert_eq!(log.get(2).map(|v| v.to_record()), records.get(2).cloned());
        let mut seen = Vec::new();
        log.finish().consume(|v| seen.push(v.to_record()));
        assert_eq!(seen, records);
    }

    /// Past the frame bound, frames are refused and add nothing to the tables.
    #[test]
    fn the_bound_holds_for_frames_and_tables() {
        let mut log = FrameLog::with_bound(3);
        for i in 0..3 {
            frame(&mut log, i, Dir::In, "job_done", Some(&format!("id{i}")), Some("{}"));
        }
        let (kinds, ids, texts) = (log.tables.kinds.len(), log.tables.ids.len(), log.tables.texts.len());
        let new = NewFrame {
            at_us: 9,
            conn: 1,
            dir: Dir::In,
            kind: log.kind("another"),
            job: Some(log.job("another id")),
            text_len: 2,
            text: Some("{}"),
            data_len: None,
        };
        assert!(!log.push(new));
        assert_eq!(log.len(), 3);
        assert_eq!(
            (log.tables.kinds.len(), log.tables.ids.len(), log.tables.texts.len()),
            (kinds, ids, texts)
        );
        assert_eq!(FrameLog::default().frames_max, FRAME_RECORDS_MAX);
    }

    /// Past the bound, new message types are recorded right but not shared.
    #[test]
    fn kinds_past_the_bound_are_kept_unshared() {
        let mut log = FrameLog::default();
        for i in 0..NAMES_MAX + 3 {
            frame(&mut log, i as u64, Dir::In, &format!("t{i}"), None, None);
        }
        frame(&mut log, 0, Dir::In, "late", None, None);
        frame(&mut log, 0, Dir::In, "late", None, None);
        frame(&mut log, 0, Dir::In, "t0", None, None);
        assert_eq!(log.kind_index.len(), NAMES_MAX);
        assert_eq!(log.tables.kinds.len(), NAMES_MAX + 5);
        let kinds: Vec<&str> = log.iter().rev().take(3).map(|v| v.kind).collect();
        assert_eq!(kinds, vec!["t0", "late", "late"]);
    }
}
