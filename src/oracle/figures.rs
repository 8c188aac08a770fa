//! Heartbeat figures agree with what the coordinator observed, and the
//! `job_done` durations they are built from agree with the time the
//! coordinator saw each job take.
//!
//! `heartbeat_figures_truthful` rebuilds, for each heartbeat, the agent's
//! sliding window from the terminal frames the coordinator read: every
//! `job_done` (its `duration_ms`, and its output tokens) and every
//! `job_error` (its code), over the last [`WINDOW_MS`] of the agent's
//! process (a restart empties it). The agent recorded each terminal
//! between its submission's writing and its reading, at the latest
//! `heartbeat_tolerance_ms` (plus disrupted time) before the reading; it
//! took the heartbeat's snapshot at most as long before that was read. A
//! terminal is thus *surely* in the window, *possibly* in it, or out; a
//! submission cancelled or lost without a terminal frame may have been
//! recorded unseen, and counts as possibly in, with unknown figures. Each
//! figure must lie within the least and most it can be over every window
//! between the sure and the possible set (nearest-rank percentiles, as the
//! agent's `stats.rs` computes them), with this tolerance:
//! - `p50_latency_ms`, `p95_latency_ms`: ±1 ms (rounding), over `job_done`
//!   `duration_ms`;
//! - `tokens_per_sec_p50`: relative 1e-6, over `output tokens × 1000 /
//!   duration_ms` of each `job_done` with a non-zero duration, its output
//!   tokens being either the `job_done`'s or those relayed
//!   (`usage::relayed_tokens`), whichever the agent counts;
//! - `error_rate_60s`: ±1e-9 (the rest of the tolerance is the window's
//!   edges above), `job_error`s over all terminal frames. Every `job_error`
//!   counts, admission rejections (`out_of_capacity`, `invalid_job`,
//!   `duplicate_job`, `model_not_loaded`) included: each is an error the
//!   coordinator observed, and a provider whose heartbeat hides its
//!   rejections tells the marketplace it is healthier than it is;
//! - `last_error_code`: the code of an error that may be the latest one the
//!   agent recorded (remembered beyond the window), rejections included;
//!   null only while no error is surely recorded.
//!
//! 0 with nothing to compute from is the agent's convention, and allowed
//! exactly then. `done_duration_truthful` closes the loop: each `job_done`'s
//! `duration_ms` is at most the time from the job frame's writing to the
//! `job_done`'s reading (+1 ms), and at least that less two deliveries
//! (2 × `heartbeat_tolerance_ms`) and any disrupted time.

mod index;

use self::index::Index;
use super::body;
use super::windows::{AGENT_HOST, Windows, all_disruptions};
use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::{FaultAction, HeartbeatFigures, JobKind, JobSend, Name, Terminal, TraceView};

/// Heartbeat figures are truthful.
pub const FIGURES: Rule = Rule {
    name: "heartbeat_figures_truthful",
    summary: "heartbeat p50/p95 latency, tokens/s p50, error_rate_60s and last_error_code agree with the terminal frames the coordinator read in the last 60 s",
    check: figures,
};

/// `job_done.duration_ms` is truthful.
pub const DURATION: Rule = Rule {
    name: "done_duration_truthful",
    summary: "a job_done's duration_ms lies within the time the coordinator saw the job take, less two deliveries",
    check: duration,
};

/// The window `error_rate_60s` names, which the agent uses for every figure.
pub const WINDOW_MS: u64 = 60_000;
/// Latency figures are whole milliseconds, sent as numbers.
const LATENCY_TOLERANCE_MS: f64 = 1.0;
/// Rates go through floating point and JSON.
const RATE_TOLERANCE_RELATIVE: f64 = 1e-6;
/// Error rates are ratios of small counts.
const ERROR_RATE_TOLERANCE: f64 = 1e-9;

/// A value known only within `[lo, hi]`.
type Range = (f64, f64);

/// One outcome the agent may have recorded.
#[derive(Clone, Debug)]
enum Outcome {
    /// `job_done`: its latency and tokens-per-second, each a range.
    Done { latency_ms: Range, rate: Range },
    /// `job_error`, with its code.
    Error { code: Name },
    /// Cancelled or lost without a terminal frame: anything, or nothing.
    Unknown,
}

/// An outcome and when the agent can have recorded it.
#[derive(Clone, Debug)]
struct Entry {
    recorded_us: (u64, u64),
    outcome: Outcome,
}

/// How a `job_done`'s output tokens enter its rate's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tokens {
    /// The `job_done`'s own count only: each rate a point inside its true
    /// range, so every figure's allowed range is inside its true one.
    Reported,
    /// Between the `job_done`'s count and the tokens relayed
    /// (`usage::relayed_tokens`, which parses every relayed event).
    Counted,
}

/// Judged first with [`Tokens::Reported`]: every heartbeat that agrees
/// then agrees with the true ranges too (a narrower allowed range, and a
/// smaller slack, accept no more), so a run without a disagreement never
/// parses a relayed byte here. Only when a figure disagrees is the whole
/// rule judged again with the relayed tokens counted, and that verdict is
/// the rule's. Counting every done job's relayed events was 14 % of all
/// judging at 1000 jobs/s (benches/README.md, "Scale").
fn figures(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let mut first = Tally::default();
    let found = figures_with(view, config, Tokens::Reported, &mut first);
    if found.is_empty() {
        tally.judge_n(first.judged);
        return found;
    }
    figures_with(view, config, Tokens::Counted, tally)
}

fn figures_with(view: &TraceView, config: &OracleConfig, tokens: Tokens, tally: &mut Tally) -> Vec<Violation> {
    let tolerance_us = config.bounds.heartbeat_tolerance_ms * 1_000;
    let all = all_disruptions(view);
    let entries = entries(view, tolerance_us, &all, config, tokens);
    let index = Index::new(&entries);
    let restarts = agent_restarts(view);
    let mut found = Vec::new();
    for session in view.sessions.values() {
        for (beat, figures) in session.heartbeats.iter().zip(&session.heartbeat_figures) {
            let born_us = restarts.iter().copied().filter(|&r| r <= beat.at_us).max().unwrap_or(0);
            let from_us = session.opened_us.max(born_us);
            let snapshot_us = (beat
                .at_us
                .saturating_sub(tolerance_us + all.covered_us(from_us, beat.at_us)))
            .max(from_us);
            let window = Window::of(&index, born_us, snapshot_us, beat.at_us);
            tally.judge();
            for detail in window.disagreements(figures) {
                found.push(Violation::new(
                    FIGURES.name,
                    None,
                    beat.at_us,
                    format!("heartbeat on conn {}: {detail}", session.conn),
                ));
            }
        }
    }
    found
}

/// When the agent's software was restarted (its window starts empty).
fn agent_restarts(view: &TraceView) -> Vec<u64> {
    view.faults
        .iter()
        .filter(|(_, action, hosts)| *action == FaultAction::Restart && hosts.iter().any(|h| h == AGENT_HOST))
        .map(|(at, _, _)| *at)
        .collect()
}

/// Every outcome the agent may have recorded, from the coordinator's log.
fn entries(view: &TraceView, tolerance_us: u64, all: &Windows, config: &OracleConfig, tokens: Tokens) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (_, send) in view.sends() {
        if send.kind == JobKind::Malformed {
            continue;
        }
        let Some(first) = send.first_terminal() else {
            // Recorded perhaps, its terminal frame purged by the cancel or
            // lost with the session (noticed up to an idle timeout later).
            let ended_us = send.cancel_us.or(send.session_lost_us);
            if let Some(ended_us) = ended_us {
                let late_us = ended_us + tolerance_us + config.idle_timeout_ms * 1_000;
                entries.push(Entry {
                    recorded_us: (send.at_us, late_us + all.covered_us(ended_us, late_us)),
                    outcome: Outcome::Unknown,
                });
            }
            continue;
        };
        let read_us = first.at_us;
        let earliest_us = read_us.saturating_sub(tolerance_us + all.covered_us(send.at_us, read_us));
        entries.push(Entry {
            recorded_us: (earliest_us.max(send.at_us), read_us),
            outcome: outcome_of(send, &first.what, tokens),
        });
    }
    entries
}

fn outcome_of(send: &JobSend, terminal: &Terminal, tokens: Tokens) -> Outcome {
    match terminal {
        Terminal::Done {
            duration_ms,
            tokens_out,
            ..
        } => {
            let relayed = match tokens {
                Tokens::Reported => *tokens_out,
                Tokens::Counted => body::of(&send.bytes).tokens_with_tail,
            };
            let (least, most) = ((*tokens_out).min(relayed), (*tokens_out).max(relayed));
            let per_sec = |tokens: u64| tokens as f64 * 1000.0 / *duration_ms as f64;
            Outcome::Done {
                latency_ms: (*duration_ms as f64, *duration_ms as f64),
                rate: if *duration_ms == 0 {
                    (f64::NAN, f64::NAN)
                } else {
                    (per_sec(least), per_sec(most))
                },
            }
        }
        Terminal::Error { code, .. } => Outcome::Error { code: code.clone() },
    }
}

/// The entries surely and possibly in one heartbeat's window, and what the
/// outcomes recorded before its snapshot allow as the last error.
struct Window<'a> {
    sure: Vec<&'a Entry>,
    possible: Vec<&'a Entry>,
    last_error: LastError<'a>,
}

/// What `last_error_code` may be. An error or unknown outcome is superseded
/// when another error was surely recorded after it and surely before the
/// snapshot; the rest may be the latest.
struct LastError<'a> {
    /// No error of this process was surely recorded before the snapshot.
    null_allowed: bool,
    /// The codes of the errors not superseded, in the order of their jobs.
    allowed: Vec<&'a str>,
    /// An outcome recorded unseen is not superseded: any code may be last.
    any_allowed: bool,
}

impl<'a> Window<'a> {
    fn of(index: &Index<'a>, born_us: u64, snapshot_us: u64, read_us: u64) -> Self {
        let window_us = WINDOW_MS * 1_000;
        let (mut sure, mut possible) = (Vec::new(), Vec::new());
        for entry in index.near(snapshot_us, read_us) {
            let (earliest, latest) = entry.recorded_us;
            if latest < born_us || earliest > read_us {
                continue;
            }
            if latest <= snapshot_us && earliest >= read_us.saturating_sub(window_us) && earliest >= born_us {
                sure.push(entry);
            } else if latest + window_us >= snapshot_us {
                possible.push(entry);
            }
        }
        let last_sure_us = index.last_sure_error_us(born_us, snapshot_us);
        let (allowed, any_allowed) = index.not_superseded(born_us.max(last_sure_us.unwrap_or(0)), read_us);
        Window {
            sure,
            possible,
            last_error: LastError {
                null_allowed: last_sure_us.is_none(),
                allowed,
                any_allowed,
            },
        }
    }

    /// Each figure of `figures` that lies outside what the window allows.
    fn disagreements(&self, figures: &HeartbeatFigures) -> Vec<String> {
        let mut out = Vec::new();
        let latency = |e: &Entry| match e.outcome {
            Outcome::Done { latency_ms, .. } => Some(latency_ms),
            Outcome::Unknown => Some((0.0, f64::INFINITY)),
            Outcome::Error { .. } => None,
        };
        let rate = |e: &Entry| match e.outcome {
            Outcome::Done { rate, .. } if !rate.0.is_nan() => Some(rate),
            Outcome::Unknown => Some((0.0, f64::INFINITY)),
            _ => None,
        };
        for (name, value, pct, of) in [
            (
                "p50_latency_ms",
                figures.p50_latency_ms,
                50,
                &latency as &dyn Fn(&Entry) -> Option<Range>,
            ),
            ("p95_latency_ms", figures.p95_latency_ms, 95, &latency),
            ("tokens_per_sec_p50", figures.tokens_per_sec_p50, 50, &rate),
        ] {
            let Some(value) = value else { continue };
            let sure: Vec<Range> = self.sure.iter().filter_map(|e| of(e)).collect();
            let optional: Vec<Range> = self.possible.iter().filter_map(|e| of(e)).collect();
            let (lo, hi) = percentile_range(&sure, &optional, pct);
            let slack = if name.starts_with('p') {
                LATENCY_TOLERANCE_MS
            } else {
                hi * RATE_TOLERANCE_RELATIVE + RATE_TOLERANCE_RELATIVE
            };
            if value < lo - slack || value > hi + slack {
                out.push(format!(
                    "{name} {value} but the terminal frames read allow {lo}..={hi} ({} in the window, {} more possibly)",
                    sure.len(),
                    optional.len()
                ));
            }
        }
        if let Some(value) = figures.error_rate_60s {
            let (lo, hi) = self.error_rate_range();
            if value < lo - ERROR_RATE_TOLERANCE || value > hi + ERROR_RATE_TOLERANCE {
                out.push(format!(
                    "error_rate_60s {value} but the terminal frames read allow {lo:.4}..={hi:.4}"
                ));
            }
        }
        if let Some(detail) = self.last_error_disagreement(figures.last_error_code.as_deref()) {
            out.push(detail);
        }
        out
    }

    /// The least and most error rate: every `job_error` counted.
    fn error_rate_range(&self) -> Range {
        let counts = |entries: &[&Entry]| {
            let (mut errors, mut oks, mut unknown) = (0_u64, 0_u64, 0_u64);
            for e in entries {
                match &e.outcome {
                    Outcome::Error { .. } => errors += 1,
                    Outcome::Done { .. } => oks += 1,
                    Outcome::Unknown => unknown += 1,
                }
            }
            (errors, oks, unknown)
        };
        let (sure_errors, sure_oks, sure_unknown) = counts(&self.sure);
        let (opt_errors, opt_oks, opt_unknown) = counts(&self.possible);
        let ratio = |e: u64, n: u64| if n == 0 { 0.0 } else { e as f64 / n as f64 };
        let sure_total = sure_errors + sure_oks;
        let lo = ratio(sure_errors, sure_total + sure_unknown + opt_oks + opt_unknown);
        let worst_errors = sure_errors + sure_unknown + opt_errors + opt_unknown;
        let hi = ratio(worst_errors, sure_total + sure_unknown + opt_errors + opt_unknown);
        (lo, hi)
    }

    /// Why `code` cannot be the last error the agent recorded, if it cannot.
    fn last_error_disagreement(&self, code: Option<&str>) -> Option<String> {
        let LastError {
            null_allowed,
            allowed,
            any_allowed,
        } = &self.last_error;
        let (null_allowed, any_allowed) = (*null_allowed, *any_allowed);
        match code {
            None if null_allowed => None,
            None => Some(format!(
                "last_error_code null, but an error was surely recorded before (one of {})",
                allowed.join(", ")
            )),
            Some(code) if any_allowed || allowed.contains(&code) => None,
            Some(code) => Some(format!(
                "last_error_code {code}, but the latest error may only be one of [{}]",
                allowed.join(", ")
            )),
        }
    }
}

/// The agent's nearest-rank percentile of a sorted slice, 0 when empty.
fn nearest_rank(sorted: &[f64], pct: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Inserts `value` into the sorted `values`.
fn insert_sorted(values: &mut Vec<f64>, value: f64) {
    let at = values.partition_point(|v| v.total_cmp(&value).is_le());
    values.insert(at, value);
}

/// The least and most nearest-rank percentile `pct` over every set holding
/// all of `sure` and any of `optional`, each value anywhere in its range.
///
/// Least: the low ends, adding optional values from the smallest while one
/// does not exceed the current percentile (adding a value above it never
/// lowers it, and once one is above, every larger one is too); most: the
/// high ends, from the largest while one is not below it. An empty set
/// gives 0.
pub fn percentile_range(sure: &[Range], optional: &[Range], pct: usize) -> Range {
    let mut low: Vec<f64> = sure.iter().map(|r| r.0).collect();
    low.sort_by(f64::total_cmp);
    let lo = if low.is_empty() {
        0.0
    } else {
        let mut extra: Vec<f64> = optional.iter().map(|r| r.0).collect();
        extra.sort_by(f64::total_cmp);
        for value in extra {
            if value > nearest_rank(&low, pct) {
                break;
            }
            insert_sorted(&mut low, value);
        }
        nearest_rank(&low, pct)
    };
    let mut high: Vec<f64> = sure.iter().map(|r| r.1).collect();
    high.sort_by(f64::total_cmp);
    let mut extra: Vec<f64> = optional.iter().map(|r| r.1).collect();
    extra.sort_by(|a, b| b.total_cmp(a));
    for value in extra {
        if !high.is_empty() && value < nearest_rank(&high, pct) {
            break;
        }
        insert_sorted(&mut high, value);
    }
    (lo, nearest_rank(&high, pct))
}

fn duration(view: &TraceView, config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let deliveries_us = 2 * config.bounds.heartbeat_tolerance_ms * 1_000;
    let all = all_disruptions(view);
    let mut found = Vec::new();
    for (job, send) in view.sends() {
        let Some(first) = send.first_terminal() else { continue };
        let Terminal::Done { duration_ms, .. } = first.what else {
            continue;
        };
        tally.judge();
        let seen_us = first.at_us.saturating_sub(send.at_us);
        let most_ms = seen_us.div_ceil(1_000) + 1;
        let least_ms = seen_us.saturating_sub(deliveries_us + all.covered_us(send.at_us, first.at_us)) / 1_000;
        if duration_ms > most_ms || duration_ms < least_ms {
            let detail = format!(
                "{}: job_done says duration_ms {duration_ms}, but the coordinator saw it take {:.1} ms \
                 (allowed {least_ms}..={most_ms})",
                send.label(),
                seen_us as f64 / 1e3
            );
            found.push(Violation::new(DURATION.name, Some(&*job.job), first.at_us, detail));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(values: &[f64]) -> Vec<Range> {
        values.iter().map(|&v| (v, v)).collect()
    }

    /// The agent's nearest rank: p50 of 1..=100 is 50, p95 is 95, empty is 0.
    #[test]
    fn nearest_rank_matches_the_agent() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!((nearest_rank(&v, 50), nearest_rank(&v, 95)), (50.0, 95.0));
        assert_eq!(nearest_rank(&[], 50), 0.0);
    }

    /// Optional values widen the percentile both ways, no further than any real choice.
    #[test]
    fn optional_values_widen_the_range() {
        assert_eq!(percentile_range(&exact(&[10.0, 20.0, 30.0]), &[], 50), (20.0, 20.0));
        let range = percentile_range(&exact(&[10.0, 20.0, 30.0]), &exact(&[1.0, 100.0]), 50);
        assert_eq!(range, (10.0, 20.0));
        assert_eq!(percentile_range(&[], &exact(&[5.0]), 50), (0.0, 5.0));
    }
}
