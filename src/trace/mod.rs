//! The event trace of one run: an ordered list of [`Event`]s, its JSONL form
//! (one event per line), and the trace hash (SHA-256 over that JSONL).
//!
//! The same scenario and seed must give the same JSONL byte for byte; the
//! hash makes that cheap to compare and to print.

mod blob;
mod build;
mod event;
pub mod examples;
pub mod handmade;
mod job;
mod line;
pub mod name;
mod order;
mod pairing;
mod records;
mod shared;
mod view;

use std::io::Write;

use sha2::{Digest, Sha256};

use self::line::{event_line, event_line_into};

pub use blob::{Blob, hex};
pub use event::{EVENT_KINDS, Event, EventKind, FREED_WHY, FaultAction, HeartbeatFigures, JobKind, Phase, Terminal};
pub use job::{ADMISSION_CODES, JobSend, JobView, Seen};
pub use name::{SubName, submission_names};
pub use order::sort_stable_by_key;
pub use records::{BackendCall, SessionView};
pub use shared::{Interner, JobId, Name};
pub use view::TraceView;

/// Where an event came from; orders events that share a timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The harness (phases, faults).
    World,
    /// The mock coordinator's log.
    Coordinator,
    /// A mock backend's records.
    Backend,
    /// The agent's observer.
    Agent,
}

/// The ordered events of one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// Events in trace order: by time, then by source, then as each source
    /// recorded them.
    pub events: Vec<Event>,
}

impl Trace {
    /// Merges events from several sources into trace order. Sorting is
    /// stable, so events of one source at one instant keep their order.
    pub fn merge(mut tagged: Vec<(Source, Event)>) -> Self {
        tagged.sort_by_key(|(source, _)| *source);
        Self::merge_listed_by_source(tagged.into_iter().map(|(_, event)| event).collect())
    }

    /// Trace order from `events` listed source by source, in [`Source`]
    /// order, each source's events in the order it recorded them: a stable
    /// sort by time keeps that order among events of one instant. Sorting
    /// in place lets a run's collection fill one buffer of exact size,
    /// rather than tag and copy every event (`world::collect`).
    pub fn merge_listed_by_source(mut events: Vec<Event>) -> Self {
        sort_stable_by_key(&mut events, |event| event.at_us);
        Self { events }
    }

    /// A trace holding `events` in the given order (hand-made traces).
    pub fn from_events(events: Vec<Event>) -> Self {
        Self { events }
    }

    /// Each event as one line of JSON, without the newline.
    pub fn jsonl_lines(&self) -> Vec<String> {
        self.events.iter().map(event_line).collect()
    }

    /// Writes the JSONL form: one event per line, each line ending in `\n`.
    pub fn write_jsonl(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut line = Vec::new();
        for event in &self.events {
            event_line_into(event, &mut line);
            out.write_all(&line)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// SHA-256 (lower-case hex) over the JSONL form exactly as
    /// [`Trace::write_jsonl`] writes it, so `sha256sum trace.jsonl` agrees.
    pub fn hash(&self) -> String {
        // One line at a time into one buffer: hashing holds no copy of
        // the trace.
        let mut hasher = Sha256::new();
        let mut line = Vec::new();
        for event in &self.events {
            event_line_into(event, &mut line);
            hasher.update(&line);
            hasher.update(b"\n");
        }
        hex(&hasher.finalize())
    }
}

/// Where two traces first differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Zero-based index of the first differing event.
    pub index: usize,
    /// That event's JSON in the first trace (`None`: the trace had ended).
    pub first: Option<String>,
    /// That event's JSON in the second trace.
    pub second: Option<String>,
}

/// The first event at which `a` and `b` differ, or `None` if they are equal.
pub fn first_divergence(a: &Trace, b: &Trace) -> Option<Divergence> {
    let (lines_a, lines_b) = (a.jsonl_lines(), b.jsonl_lines());
    let count_max = lines_a.len().max(lines_b.len());
    (0..count_max).find_map(|index| {
        let (first, second) = (lines_a.get(index), lines_b.get(index));
        (first != second).then(|| Divergence {
            index,
            first: first.cloned(),
            second: second.cloned(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(at_us: u64, phase: Phase) -> Event {
        Event::new(at_us, EventKind::Phase { phase })
    }

    /// Merging orders events by time, then by source.
    #[test]
    fn merge_orders_by_time_then_source() {
        let trace = Trace::merge(vec![
            (Source::Agent, phase(5, Phase::Settled)),
            (Source::World, phase(5, Phase::Healed)),
            (Source::World, phase(1, Phase::Scripted)),
        ]);
        let phases: Vec<_> = trace.events.iter().map(|e| e.kind.clone()).collect();
        assert_eq!(
            phases,
            vec![
                EventKind::Phase { phase: Phase::Scripted },
                EventKind::Phase { phase: Phase::Healed },
                EventKind::Phase { phase: Phase::Settled },
            ]
        );
    }

    /// The trace hash is the SHA-256 of exactly the JSONL bytes written.
    #[test]
    fn hash_is_sha256_of_the_jsonl_bytes() {
        let trace = Trace::from_events(vec![phase(0, Phase::Scripted)]);
        let mut bytes = Vec::new();
        trace.write_jsonl(&mut bytes).unwrap();
        assert_eq!(bytes, b"{\"at_us\":0,\"ev\":\"phase\",\"phase\":\"scripted\"}\n");
        assert_eq!(trace.hash(), hex(&Sha256::digest(&bytes)));
    }

    /// The first differing event is found, and equal traces have none.
    #[test]
    fn divergence_names_the_first_differing_event() {
        let a = Trace::from_events(vec![phase(0, Phase::Scripted), phase(9, Phase::Settled)]);
        let b = Trace::from_events(vec![phase(0, Phase::Scripted), phase(9, Phase::SettleBoundHit)]);
        let divergence = first_divergence(&a, &b).unwrap();
        assert_eq!(divergence.index, 1);
        assert!(divergence.first.unwrap().contains("settled"));
        assert_eq!(first_divergence(&a, &a), None);
    }

    /// A trace that ends early diverges where it ends.
    #[test]
    fn divergence_reports_a_shorter_trace() {
        let a = Trace::from_events(vec![phase(0, Phase::Scripted)]);
        let b = Trace::default();
        let divergence = first_divergence(&a, &b).unwrap();
        assert_eq!((divergence.index, divergence.second), (0, None));
    }
}
