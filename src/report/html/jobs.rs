//! The job table (one row per submission, as the coordinator saw it) and
//! the latency histograms (time to first chunk, gap between chunks, end to
//! end), measured per submission exactly as `metrics` measures them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::records::{Line, Rec, TerminalRec};
use crate::metrics::Percentiles;
use crate::trace::name::{NameKind, name_submissions};

/// The job table's columns, in order; every row holds one value per column.
pub const JOB_COLUMNS: &[&str] = &[
    "job",
    "name",
    "sub",
    "kind",
    "conn",
    "model",
    "sent_ms",
    "first_chunk_ms",
    "terminal_ms",
    "cancel_ms",
    "outcome",
    "code",
    "chunks",
    "bytes",
    "tokens_in",
    "tokens_out",
    "deadline_ms",
];

/// Histogram buckets per factor of ten.
pub const BUCKETS_PER_DECADE: f64 = 10.0;

/// One submission.
#[derive(Clone, Debug, Default)]
struct Row {
    job: String,
    /// The user-facing name (`#N`, `#N re-send K`, `malformed K`).
    name: String,
    sub: u64,
    /// The arrival number it carries, for naming.
    arrival: Option<u64>,
    kind: String,
    conn: Option<u64>,
    model: String,
    deadline_ms: u64,
    sent_us: Option<u64>,
    chunks_us: Vec<u64>,
    bytes: u64,
    terminal: Option<(u64, TerminalRec)>,
    cancel_us: Option<u64>,
    lost_us: Option<u64>,
}

impl Row {
    /// The outcome, as `metrics::outcome_of` decides it.
    fn outcome(&self) -> &'static str {
        match (&self.terminal, self.sent_us) {
            (_, None) => "undeliverable",
            (Some((_, TerminalRec::Done { .. })), _) => "done",
            (Some((_, TerminalRec::Error { .. })), _) => "error",
            _ if self.cancel_us.is_some() => "cancelled",
            _ if self.lost_us.is_some() => "session_lost",
            _ => "in_flight",
        }
    }

    fn cells(&self) -> Vec<serde_json::Value> {
        use serde_json::Value;
        let ms = |us: Option<u64>| us.map_or(Value::Null, |us| Value::from(us as f64 / 1e3));
        let (code, tokens_in, tokens_out) = match &self.terminal {
            Some((_, TerminalRec::Done { tokens_in, tokens_out })) => {
                (Value::Null, Value::from(*tokens_in), Value::from(*tokens_out))
            }
            Some((_, TerminalRec::Error { code, tokens_emitted })) => {
                (Value::from(code.clone()), Value::Null, Value::from(*tokens_emitted))
            }
            None => (Value::Null, Value::Null, Value::Null),
        };
        vec![
            Value::from(self.job.clone()),
            Value::from(self.name.clone()),
            Value::from(self.sub),
            Value::from(self.kind.clone()),
            self.conn.map_or(Value::Null, Value::from),
            Value::from(self.model.clone()),
            ms(self.sent_us),
            ms(self.chunks_us.first().copied()),
            ms(self.terminal.as_ref().map(|(t, _)| *t)),
            ms(self.cancel_us),
            Value::from(self.outcome()),
            code,
            Value::from(self.chunks_us.len()),
            Value::from(self.bytes),
            tokens_in,
            tokens_out,
            Value::from(self.deadline_ms),
        ]
    }
}

/// One latency histogram on log-spaced buckets.
#[derive(Clone, Debug, Serialize)]
pub struct Histogram {
    pub name: &'static str,
    /// `(lower edge ms, count)` of each bucket from the first to the last
    /// one holding a sample; a bucket ends where the next begins.
    pub buckets: Vec<(f64, u64)>,
    /// The upper edge of the last bucket, in ms.
    pub end_ms: f64,
    pub percentiles: Percentiles,
}

/// The table and the histograms.
#[derive(Clone, Debug, Serialize)]
pub struct Jobs {
    pub columns: &'static [&'static str],
    pub rows: Vec<Vec<serde_json::Value>>,
    pub histograms: Vec<Histogram>,
}

/// Builds the job table and histograms of `lines`.
pub fn build(lines: &[Line]) -> Jobs {
    let mut rows: BTreeMap<u64, Row> = BTreeMap::new();
    for line in lines {
        let t = line.at_us;
        match &line.rec {
            Rec::JobSent {
                job,
                sub,
                conn,
                model,
                deadline_ms,
                kind,
                arrival,
            } => {
                let row = rows.entry(*sub).or_default();
                (row.job, row.sub, row.kind, row.conn) = (job.clone(), *sub, kind.clone(), Some(*conn));
                row.arrival = *arrival;
                (row.model, row.deadline_ms, row.sent_us) = (model.clone(), *deadline_ms, Some(t));
            }
            Rec::JobUndeliverable {
                job,
                sub,
                kind,
                arrival,
            } => {
                let row = rows.entry(*sub).or_default();
                (row.job, row.sub, row.kind, row.arrival) = (job.clone(), *sub, kind.clone(), *arrival);
            }
            Rec::Chunk {
                sub: Some(sub), len, ..
            } => {
                if let Some(row) = rows.get_mut(sub) {
                    row.chunks_us.push(t);
                    row.bytes += len;
                }
            }
            Rec::TerminalReceived {
                sub: Some(sub),
                terminal,
                ..
            } => {
                if let Some(row) = rows.get_mut(sub).filter(|r| r.terminal.is_none()) {
                    row.terminal = Some((t, terminal.clone()));
                }
            }
            Rec::CancelSent { subs, .. } => {
                for sub in subs {
                    if let Some(row) = rows.get_mut(sub) {
                        row.cancel_us.get_or_insert(t);
                    }
                }
            }
            Rec::JobSessionLost { sub } => {
                if let Some(row) = rows.get_mut(sub) {
                    row.lost_us.get_or_insert(t);
                }
            }
            _ => {}
        }
    }
    let names = name_submissions(
        rows.values()
            .map(|row| (row.sub, NameKind::of_trace_kind(&row.kind), row.arrival)),
    );
    for (sub, row) in &mut rows {
        row.name = names.get(sub).map(ToString::to_string).unwrap_or_default();
    }
    Jobs {
        columns: JOB_COLUMNS,
        histograms: histograms(rows.values()),
        rows: rows.values().map(Row::cells).collect(),
    }
}

fn histograms<'a>(rows: impl Iterator<Item = &'a Row>) -> Vec<Histogram> {
    let (mut ttfc, mut gaps, mut e2e) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        let Some(sent) = row.sent_us else { continue };
        if let Some(first) = row.chunks_us.first() {
            ttfc.push(first.saturating_sub(sent));
        }
        gaps.extend(row.chunks_us.windows(2).map(|w| w[1].saturating_sub(w[0])));
        if let Some((at, TerminalRec::Done { .. })) = &row.terminal {
            e2e.push(at.saturating_sub(sent));
        }
    }
    vec![
        histogram("time to first chunk", ttfc),
        histogram("gap between chunks", gaps),
        histogram("end to end (job_done)", e2e),
    ]
}

/// The bucket of a sample: `BUCKETS_PER_DECADE` per factor of ten from 1 µs.
fn bucket_of(sample_us: u64) -> i64 {
    ((sample_us.max(1) as f64).log10() * BUCKETS_PER_DECADE).floor() as i64
}

fn edge_ms(bucket: i64) -> f64 {
    10f64.powf(bucket as f64 / BUCKETS_PER_DECADE) / 1e3
}

fn histogram(name: &'static str, samples_us: Vec<u64>) -> Histogram {
    let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
    for &sample in &samples_us {
        *counts.entry(bucket_of(sample)).or_default() += 1;
    }
    let (first, last) = match (counts.keys().next(), counts.keys().next_back()) {
        (Some(&first), Some(&last)) => (first, last),
        _ => (0, -1),
    };
    Histogram {
        name,
        buckets: (first..=last)
            .map(|b| (edge_ms(b), counts.get(&b).copied().unwrap_or(0)))
            .collect(),
        end_ms: edge_ms(last + 1),
        percentiles: Percentiles::of(samples_us),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html::records::parse;
    use crate::trace::handmade::TraceBuilder;

    /// Every submission gets a row with its times, outcome and bytes.
    #[test]
    fn rows_follow_each_submission() {
        let trace = TraceBuilder::new()
            .session(0, 1)
            .job(10, "a", 1, 1_000)
            .chunk(20, "a", 1, b"xy")
            .done(30, "a", 1)
            .job(10, "b", 1, 1_000)
            .error(15, "b", 1, "out_of_capacity")
            .job(10, "c", 1, 1_000)
            .cancel(12, "c", 1)
            .undeliverable(40, "d")
            .build();
        let lines = trace.jsonl_lines();
        let jobs = build(&parse(lines.iter().map(String::as_str)).unwrap());
        let column = |name: &str| JOB_COLUMNS.iter().position(|c| *c == name).unwrap();
        let outcomes: Vec<_> = jobs.rows.iter().map(|r| r[column("outcome")].clone()).collect();
        assert_eq!(outcomes, ["done", "error", "cancelled", "undeliverable"]);
        let names: Vec<_> = jobs.rows.iter().map(|r| r[column("name")].clone()).collect();
        assert_eq!(names, ["#0", "#1", "#2", "#3"]);
        assert_eq!(jobs.rows[0][column("bytes")], 2);
        assert_eq!(jobs.rows[0][column("first_chunk_ms")], 20.0);
        assert_eq!(jobs.rows[1][column("code")], "out_of_capacity");
        assert_eq!(jobs.histograms[0].percentiles.count, 1);
        assert_eq!(jobs.histograms[2].percentiles.p50, 20.0);
    }

    /// Buckets are log-spaced, contiguous, and count every sample.
    #[test]
    fn histogram_buckets_count_every_sample() {
        let h = histogram("x", vec![1_000, 1_100, 10_000, 100_000]);
        assert_eq!(h.buckets.iter().map(|b| b.1).sum::<u64>(), 4);
        assert_eq!(h.buckets.len(), 21);
        assert!((h.buckets[0].0 - 1.0).abs() < 1e-9);
        assert!(h.end_ms > 100.0);
    }
}
