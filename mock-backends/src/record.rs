//! What the oracle reads: one record per HTTP request, in arrival order,
//! with the exact body bytes written and how the request ended.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sealed_bytes::ByteLog;
use serde::Serialize;

use crate::clock::Clock;

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RequestEnd {
    /// The whole response was handed to the transport.
    Completed,
    /// The client closed the connection before the response was complete
    /// (seen on a failed write, or while idle by the connection closing).
    ClientGone,
    /// An injected fault ended it: `"status"` (error status instead of an
    /// answer), `"cut"` (connection closed mid-stream), or `"backend_stopped"`
    /// (the host's tasks were dropped, e.g. simctl crashed the host).
    Fault(String),
    /// The backend refused it by its own rules, answering this status:
    /// 400 bad request or context overflow, 404 unknown model or path,
    /// 413 body too large, 429/503 capacity.
    Rejected(u16),
}

/// One HTTP request as the backend saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// The backend's `host` name.
    pub backend: String,
    /// Per-recorder id: 0, 1, 2… in arrival order, across host restarts.
    pub request_id: u64,
    /// Per-recorder id of the TCP connection it came on (keep-alive reuse).
    pub connection_id: u64,
    /// Clock time the request head was parsed, microseconds.
    pub arrival_us: u64,
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request path without the query string.
    pub path: String,
    /// The body's `model` (chat completions and `/api/show`).
    pub model: Option<String>,
    /// The body's `user` field: the coordinator's job id.
    pub job_id: Option<String>,
    /// Status sent, 0 until one is decided.
    pub status: u16,
    /// Whether the body asked for `stream: true`.
    pub stream: bool,
    /// Estimated prompt tokens (chat completions), as reported in `usage`.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens inside `body`.
    pub tokens_written: u64,
    /// Exact response body bytes handed to the transport, without chunked
    /// framing: what an HTTP client's body reader yields. Sealed (packed,
    /// with its digest) when the request ends, since a run keeps every
    /// body to its end. Serialized as text (the mock writes UTF-8 only).
    #[serde(serialize_with = "body_as_text")]
    pub body: ByteLog,
    /// Clock time a capacity slot was granted (chat completions only).
    pub admitted_us: Option<u64>,
    /// Clock time the first body bytes were handed to the transport.
    pub first_byte_us: Option<u64>,
    /// Injected faults that shaped this request, by `FaultKind` name.
    pub faults: Vec<String>,
    /// Clock time it ended, microseconds.
    pub end_us: Option<u64>,
    /// How it ended; `None` while it is still running.
    pub end: Option<RequestEnd>,
}

fn body_as_text<S: serde::Serializer>(body: &ByteLog, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(&body.bytes()))
}

/// Shared log of every request of one backend host. simctl creates one per
/// host and hands it to every instance, so records survive restarts.
#[derive(Clone, Default)]
pub struct Recorder {
    /// Written by the host's request tasks, read by the harness. Every lock
    /// is a short copy in or out, never held across an `.await`.
    state: Arc<Mutex<RecorderState>>,
}

#[derive(Default)]
struct RecorderState {
    /// The kept records; the oldest are dropped past `records_max`.
    records: VecDeque<RequestRecord>,
    /// `request_id` of `records[0]`.
    first_id: u64,
    /// Next `request_id` to hand out.
    next_id: u64,
    /// How many records to keep; `None` keeps all (the simulation's choice).
    records_max: Option<usize>,
    connections_accepted: u64,
    connections_refused: u64,
}

impl RecorderState {
    fn get_mut(&mut self, request_id: u64) -> Option<&mut RequestRecord> {
        let offset = request_id.checked_sub(self.first_id)?;
        self.records.get_mut(usize::try_from(offset).ok()?)
    }

    fn push(&mut self, record: RequestRecord) {
        self.records.push_back(record);
        self.next_id += 1;
        if let Some(max) = self.records_max {
            while self.records.len() > max {
                self.records.pop_front();
                self.first_id += 1;
            }
        }
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Recorder")
            .field("records", &state.records.len())
            .field("connections_accepted", &state.connections_accepted)
            .field("connections_refused", &state.connections_refused)
            .finish()
    }
}

impl Recorder {
    /// An empty recorder that keeps every record (for the simulation).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty recorder that keeps only the newest `records_max` records,
    /// so a long-running binary does not grow without bound.
    pub fn bounded(records_max: usize) -> Self {
        let recorder = Self::default();
        recorder.lock().records_max = Some(records_max);
        recorder
    }

    /// A copy of every kept record, in arrival order.
    pub fn records(&self) -> Vec<RequestRecord> {
        self.lock().records.iter().cloned().collect()
    }

    /// Whether `test` holds for every kept record, looked at under the lock
    /// without copying them (a harness polls this while a run settles).
    pub fn all_records(&self, test: impl FnMut(&RequestRecord) -> bool) -> bool {
        self.lock().records.iter().all(test)
    }

    /// Every kept record, moved out in arrival order, for a harness whose
    /// run is over: later updates of those requests find no record and are
    /// ignored, as for a record a bounded recorder dropped. Bodies are most
    /// of a backend's memory; [`Recorder::records`] would hold them twice.
    pub fn take_records(&self) -> Vec<RequestRecord> {
        let mut state = self.lock();
        state.first_id = state.next_id;
        std::mem::take(&mut state.records).into()
    }

    /// How many requests have arrived (kept or not).
    pub fn len(&self) -> usize {
        usize::try_from(self.lock().next_id).unwrap_or(usize::MAX)
    }

    /// Whether no request has arrived yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connections served so far (each got a `connection_id`).
    pub fn connections_accepted(&self) -> u64 {
        self.lock().connections_accepted
    }

    /// Connections refused by a `host_down` fault so far.
    pub fn connections_refused(&self) -> u64 {
        self.lock().connections_refused
    }

    pub(crate) fn next_connection_id(&self) -> u64 {
        let mut state = self.lock();
        state.connections_accepted += 1;
        state.connections_accepted - 1
    }

    pub(crate) fn count_refused(&self) {
        self.lock().connections_refused += 1;
    }

    /// Appends a record for a request that just arrived.
    pub(crate) fn open(&self, arrival: Arrival, clock: Clock) -> RecordHandle {
        let mut state = self.lock();
        let request_id = state.next_id;
        state.push(RequestRecord {
            backend: arrival.backend,
            request_id,
            connection_id: arrival.connection_id,
            arrival_us: arrival.arrival_us,
            method: arrival.method,
            path: arrival.path,
            model: None,
            job_id: None,
            status: 0,
            stream: false,
            prompt_tokens: None,
            tokens_written: 0,
            body: ByteLog::new(),
            admitted_us: None,
            first_byte_us: None,
            faults: Vec::new(),
            end_us: None,
            end: None,
        });
        drop(state);
        RecordHandle {
            recorder: self.clone(),
            request_id,
            clock,
            ended: false,
            end_on_drop: RequestEnd::ClientGone,
        }
    }

    fn lock(&self) -> MutexGuard<'_, RecorderState> {
        // A panic elsewhere must not hide the records from the oracle.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What is known of a request when its head arrives.
pub(crate) struct Arrival {
    pub backend: String,
    pub connection_id: u64,
    pub arrival_us: u64,
    pub method: String,
    pub path: String,
}

/// The writer of one record, owned by whatever is serving the request. If
/// it is dropped before `finish`, the request ends with `end_on_drop`: that
/// is `ClientGone` while hyper owns the request (hyper drops it when the
/// client closes the connection) and `Fault("backend_stopped")` once a
/// spawned task owns it (only a dropped runtime drops a task unfinished).
pub(crate) struct RecordHandle {
    recorder: Recorder,
    request_id: u64,
    clock: Clock,
    ended: bool,
    end_on_drop: RequestEnd,
}

impl RecordHandle {
    /// Clock time now, microseconds.
    pub fn now_us(&self) -> u64 {
        (self.clock)()
    }

    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    pub fn set_end_on_drop(&mut self, end: RequestEnd) {
        self.end_on_drop = end;
    }

    pub fn update(&self, change: impl FnOnce(&mut RequestRecord)) {
        let mut state = self.recorder.lock();
        // A record already dropped by a bounded recorder takes no updates.
        if let Some(record) = state.get_mut(self.request_id) {
            change(record);
        }
    }

    pub fn set_status(&self, status: u16) {
        self.update(|r| r.status = status);
    }

    pub fn add_fault(&self, name: &str) {
        self.update(|r| r.faults.push(name.to_owned()));
    }

    pub fn set_admitted(&self) {
        let now = self.now_us();
        self.update(|r| r.admitted_us = Some(now));
    }

    /// Records body bytes just handed to the transport.
    pub fn append_body(&self, bytes: &[u8], tokens: u64) {
        let now = self.now_us();
        self.update(|r| {
            r.first_byte_us.get_or_insert(now);
            r.body.extend_from_slice(bytes);
            r.tokens_written += tokens;
        });
    }

    /// Ends the record now. Later calls (and the drop) do nothing.
    pub fn finish(&mut self, end: RequestEnd) {
        if self.ended {
            return;
        }
        self.ended = true;
        let now = self.now_us();
        let mut state = self.recorder.lock();
        let Some(record) = state.get_mut(self.request_id) else {
            return;
        };
        tracing::info!(
            backend = %record.backend,
            request_id = record.request_id,
            job_id = %record.job_id.as_deref().unwrap_or("-"),
            method = %record.method,
            path = %record.path,
            model = record.model.as_deref().unwrap_or("-"),
            status = record.status,
            tokens = record.tokens_written,
            end = ?end,
            "request ended"
        );
        record.end_us = Some(now);
        record.end = Some(end);
        // Nothing more is written to this body: keep it packed.
        record.body.seal();
    }
}

impl Drop for RecordHandle {
    fn drop(&mut self) {
        let end = std::mem::replace(&mut self.end_on_drop, RequestEnd::ClientGone);
        self.finish(end);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn test_clock() -> (Clock, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(0));
        let read = now.clone();
        (Arc::new(move || read.load(Ordering::SeqCst)), now)
    }

    fn arrival(path: &str) -> Arrival {
        Arrival {
            backend: "b".into(),
            connection_id: 0,
            arrival_us: 0,
            method: "GET".into(),
            path: path.into(),
        }
    }

    /// Records keep arrival order and ids, and a clone shares them.
    #[test]
    fn records_in_arrival_order() {
        let recorder = Recorder::new();
        let (clock, _) = test_clock();
        let mut first = recorder.clone().open(arrival("/a"), clock.clone());
        let mut second = recorder.open(arrival("/b"), clock);
        second.finish(RequestEnd::Completed);
        first.finish(RequestEnd::Completed);
        let records = recorder.records();
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].request_id, records[0].path.as_str()), (0, "/a"));
        assert_eq!((records[1].request_id, records[1].path.as_str()), (1, "/b"));
        assert!(recorder.all_records(|r| r.end.is_some()));
        assert!(!recorder.all_records(|r| r.path == "/a"));
    }

    /// Taking the records empties the recorder; a handle still open after
    /// the take changes nothing taken, and later requests keep their ids.
    #[test]
    fn take_records_moves_them_out() {
        let recorder = Recorder::new();
        let (clock, _) = test_clock();
        let open = recorder.open(arrival("/a"), clock.clone());
        open.append_body(b"ab", 1);
        let taken = recorder.take_records();
        assert_eq!((taken.len(), taken[0].body.to_vec()), (1, b"ab".to_vec()));
        open.append_body(b"late", 1);
        drop(open);
        assert!(recorder.records().is_empty());
        let next = recorder.open(arrival("/b"), clock);
        next.append_body(b"c", 1);
        let records = recorder.records();
        assert_eq!((records[0].request_id, records[0].body.to_vec()), (1, b"c".to_vec()));
    }

    /// Dropping an unfinished handle ends the record with its drop end at
    /// the drop time; a finished handle is not changed by the drop.
    #[test]
    fn drop_ends_unfinished_record() {
        let recorder = Recorder::new();
        let (clock, now) = test_clock();
        let mut handle = recorder.open(arrival("/x"), clock.clone());
        handle.set_end_on_drop(RequestEnd::Fault("backend_stopped".into()));
        handle.append_body(b"abc", 2);
        now.store(42, Ordering::SeqCst);
        drop(handle);
        let mut done = recorder.open(arrival("/y"), clock);
        done.finish(RequestEnd::Completed);
        drop(done);
        let records = recorder.records();
        assert_eq!(records[0].end, Some(RequestEnd::Fault("backend_stopped".into())));
        assert_eq!(records[0].end_us, Some(42));
        assert_eq!(records[0].body, b"abc");
        assert!(records[0].body.is_sealed(), "an ended request's body is sealed");
        assert_eq!(records[0].tokens_written, 2);
        assert_eq!(records[1].end, Some(RequestEnd::Completed));
    }

    /// A bounded recorder keeps the newest records and ignores updates to
    /// dropped ones.
    #[test]
    fn bounded_keeps_newest() {
        let recorder = Recorder::bounded(2);
        let (clock, _) = test_clock();
        let old = recorder.open(arrival("/0"), clock.clone());
        for n in 1..4 {
            recorder.open(arrival(&format!("/{n}")), clock.clone());
        }
        old.append_body(b"late", 1);
        drop(old);
        let ids: Vec<u64> = recorder.records().iter().map(|r| r.request_id).collect();
        assert_eq!(ids, vec![2, 3]);
        assert_eq!(recorder.len(), 4);
    }
}
