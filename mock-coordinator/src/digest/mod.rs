//! [`Digest`]: what a person needs at the end of a by-hand run, beyond the
//! metrics of [`crate::Summary`]: how each connection ended and when it was
//! last heard from, the heartbeat figures seen, what came back for each
//! malformed kind and for re-sends, the jobs still waiting for a terminal
//! frame, the `race_completion` races actually run, and the coordinator's
//! own end-of-run checks ([`crate::checks`]). An agent that wedged must not
//! look like one that finished.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::checks::{self, CheckReport, kind_name};
use crate::record::{CancelTrigger, CloseReason, Dir, HeartbeatRecord, JobKind, JobOutcome, JobRecord};
use crate::segmented::Segmented;
use crate::state::LogState;

mod show;

/// Job ids listed per group of waiting jobs.
pub const WAITING_IDS_SHOWN: usize = 3;

/// One connection, as it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectionDigest {
    pub conn: u64,
    pub connected_us: u64,
    pub auth_ok_us: Option<u64>,
    pub closed_us: Option<u64>,
    /// The close reason's name (`agent_closed`, `idle_timeout`, …) with its
    /// detail; `open` while the connection is open.
    pub close_reason: String,
    /// When the last frame (any kind, pings included) was read from it.
    pub last_read_us: Option<u64>,
    pub frames_read: u64,
}

/// Smallest and largest value of one heartbeat field, over the heartbeats
/// that carried it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FieldRange {
    pub min: f64,
    pub max: f64,
    /// Heartbeats that carried the field.
    pub count: u64,
}

/// Ranges of the numeric heartbeat fields, and every error code reported.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HeartbeatFigures {
    pub count: u64,
    /// By field name (`queue_depth`, `tokens_per_sec_p50`, …).
    pub ranges: BTreeMap<&'static str, FieldRange>,
    /// Distinct `last_error_code` values.
    pub last_error_codes: Vec<String>,
}

/// What came back for one kind of submission (a malformed kind, or
/// `duplicate`): the outcomes by label, errors with their code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KindAnswers {
    pub kind: String,
    /// The answer the protocol asks for, when there is one.
    pub expected: Option<String>,
    pub sent: u64,
    pub answers: BTreeMap<String, u64>,
}

/// Written jobs of one kind without a terminal frame at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub kind: String,
    /// `in_flight` (nothing ended it) or `cancelled` (a cancel was written;
    /// the protocol asks for no reply).
    pub state: &'static str,
    pub count: u64,
    /// The first [`WAITING_IDS_SHOWN`] ids.
    pub job_ids: Vec<String>,
}

/// `race_completion` cancels and how their races went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Races {
    /// Jobs a `race_completion` rule selected.
    pub selected: u64,
    /// Their completion was seen and the cancel queued.
    pub fired: u64,
    /// The cancel was written before the terminal frame was read: the race
    /// was actually run.
    pub run: u64,
    /// The terminal frame was read before the cancel was written.
    pub stale: u64,
    /// Fired, but no terminal frame was read.
    pub no_terminal: u64,
}

/// Everything the binary prints after the summary, and writes to the
/// record as `digest`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Digest {
    /// The time it describes (script clock).
    pub end_us: u64,
    pub connections: Vec<ConnectionDigest>,
    pub heartbeats: HeartbeatFigures,
    pub answers: Vec<KindAnswers>,
    pub waiting: Vec<Waiting>,
    pub races: Races,
    pub checks: Vec<CheckReport>,
}

impl Digest {
    pub(crate) fn of(state: &LogState, end_us: u64) -> Digest {
        Digest {
            end_us,
            connections: connections(state),
            heartbeats: heartbeat_figures(&state.heartbeats),
            answers: answers(&state.jobs),
            waiting: waiting(&state.jobs),
            races: races(&state.jobs),
            checks: checks::run(state, end_us),
        }
    }

    /// Violations found by the end-of-run checks.
    pub fn check_violations(&self) -> u64 {
        self.checks.iter().map(CheckReport::violation_count).sum()
    }
}

fn connections(state: &LogState) -> Vec<ConnectionDigest> {
    let mut last: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for f in state.frames.iter().filter(|f| f.dir == Dir::In) {
        let entry = last.entry(f.conn).or_default();
        *entry = (f.at_us, entry.1 + 1);
    }
    let sessions = state.sessions.iter().map(|s| {
        let (last_read_us, frames_read) = last.get(&s.conn).map_or((None, 0), |(at, n)| (Some(*at), *n));
        ConnectionDigest {
            conn: s.conn,
            connected_us: s.connected_us,
            auth_ok_us: s.auth_ok_us,
            closed_us: s.closed_us,
            close_reason: s.close_reason.as_ref().map_or_else(|| "open".to_owned(), reason_text),
            last_read_us,
            frames_read,
        }
    });
    sessions.collect()
}

fn reason_text(reason: &CloseReason) -> String {
    let value = serde_json::to_value(reason).unwrap_or_default();
    let name = value["reason"].as_str().unwrap_or("?").to_owned();
    match value["detail"].as_str() {
        Some(detail) => format!("{name}: {detail}"),
        None => name,
    }
}

fn heartbeat_figures(beats: &[HeartbeatRecord]) -> HeartbeatFigures {
    let mut figures = HeartbeatFigures {
        count: beats.len() as u64,
        ..HeartbeatFigures::default()
    };
    for b in beats {
        let fields = [
            ("queue_depth", b.queue_depth.map(|d| d as f64)),
            ("tokens_per_sec_p50", b.tokens_per_sec_p50),
            ("p50_latency_ms", b.p50_latency_ms),
            ("p95_latency_ms", b.p95_latency_ms),
            ("error_rate_60s", b.error_rate_60s),
        ];
        for (name, value) in fields {
            let Some(v) = value else { continue };
            let range = figures.ranges.entry(name).or_insert(FieldRange {
                min: v,
                max: v,
                count: 0,
            });
            range.min = range.min.min(v);
            range.max = range.max.max(v);
            range.count += 1;
        }
        if let Some(code) = &b.last_error_code
            && !figures.last_error_codes.contains(code)
        {
            figures.last_error_codes.push(code.clone());
        }
    }
    figures
}

/// The answer a job got, as a person reads it.
fn answer_label(job: &JobRecord) -> String {
    match job.outcome() {
        JobOutcome::Error(code) => format!("job_error {code}"),
        JobOutcome::Done => "job_done".into(),
        JobOutcome::InFlight => "nothing yet".into(),
        other => other.label().to_owned(),
    }
}

fn answers(jobs: &Segmented<JobRecord>) -> Vec<KindAnswers> {
    let mut by_kind: BTreeMap<String, KindAnswers> = BTreeMap::new();
    for job in jobs {
        let expected = match &job.kind {
            JobKind::Normal => continue,
            JobKind::Duplicate { .. } => None,
            JobKind::Malformed(k) => Some(k.expected_error_code().map_or_else(
                || "nothing (logged and dropped)".to_owned(),
                |code| format!("job_error {code}"),
            )),
        };
        let kind = kind_name(&job.kind);
        let entry = by_kind.entry(kind.clone()).or_insert_with(|| KindAnswers {
            kind,
            expected,
            sent: 0,
            answers: BTreeMap::new(),
        });
        entry.sent += 1;
        *entry.answers.entry(answer_label(job)).or_default() += 1;
    }
    by_kind.into_values().collect()
}

fn waiting(jobs: &Segmented<JobRecord>) -> Vec<Waiting> {
    let mut groups: BTreeMap<(String, &'static str), Waiting> = BTreeMap::new();
    for job in jobs.iter().filter(|j| j.sent_us.is_some() && j.terminals.is_empty()) {
        let state = match job.outcome() {
            JobOutcome::InFlight => "in_flight",
            JobOutcome::Cancelled => "cancelled",
            _ => continue,
        };
        let kind = kind_name(&job.kind);
        let group = groups.entry((kind.clone(), state)).or_insert_with(|| Waiting {
            kind,
            state,
            count: 0,
            job_ids: Vec::new(),
        });
        group.count += 1;
        if group.job_ids.len() < WAITING_IDS_SHOWN {
            group.job_ids.push(job.job_id.to_string());
        }
    }
    groups.into_values().collect()
}

fn races(jobs: &Segmented<JobRecord>) -> Races {
    let mut r = Races::default();
    let selected = jobs.iter().filter(|j| {
        let race = |t: &CancelTrigger| matches!(t, CancelTrigger::RaceCompletion { .. });
        j.sent_us.is_some() && j.cancel_plan.iter().any(race)
    });
    for job in selected {
        r.selected += 1;
        if job.race_fired_us.is_none() {
            continue;
        }
        r.fired += 1;
        match job.cancel_before_terminal {
            Some(true) => r.run += 1,
            Some(false) => r.stale += 1,
            None => r.no_terminal += 1,
        }
    }
    r
}
