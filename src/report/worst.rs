//! The submissions behind an unmet expectation: for a latency percentile,
//! the slowest few; for an error code, the jobs that got it; for an outcome
//! count, the jobs that made it too high (or, when too low, those that ended
//! otherwise). Each is named by its submission number `#N` (what violations,
//! `simctl trace --job N` and the scenario's `job =` keys use) with its key
//! times, so an `UNMET` line points at the jobs to read in the trace.

use crate::expect::ExpectReport;
use crate::metrics::{Metrics, outcome_of};
use crate::scenario::Scenario;
use crate::trace::{JobKind, JobSend, Terminal, TraceView};

/// Submissions listed under one unmet expectation at most.
pub const WORST_LISTED_MAX: usize = 5;

/// Fills `worst` on every unmet expectation of `report`.
pub fn annotate(report: &mut ExpectReport, view: &TraceView, scenario: &Scenario, metrics: &Metrics) {
    for unmet in &mut report.unmet {
        unmet.worst = worst_for(&unmet.key, view, scenario, metrics);
    }
}

/// The worst submissions for the `[expect]` key `key`.
pub fn worst_for(key: &str, view: &TraceView, scenario: &Scenario, metrics: &Metrics) -> Vec<String> {
    let sends: Vec<(&str, &JobSend)> = view.sends().map(|(job, send)| (&*job.job, send)).collect();
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["latency", "ttfc_ms", _] => slowest(&sends, "ttfc", |s| {
            s.chunks.first().map(|c| c.at_us.saturating_sub(s.at_us))
        }),
        ["latency", "e2e_ms", _] => slowest(&sends, "end-to-end", |s| {
            s.first_terminal()
                .filter(|_| s.is_done())
                .map(|t| t.at_us.saturating_sub(s.at_us))
        }),
        ["latency", "inter_chunk_ms", _] => slowest(&sends, "longest gap", |s| {
            s.chunks.windows(2).map(|w| w[1].at_us.saturating_sub(w[0].at_us)).max()
        }),
        ["error_codes", code] => listed(
            sends
                .iter()
                .filter(|(_, s)| s.first_terminal().and_then(|t| t.what.error_code()) == Some(*code)),
        ),
        ["outcomes", outcome] => by_outcome(&sends, outcome, scenario, metrics),
        _ => Vec::new(),
    }
}

/// The submissions with the largest `measure`, largest first.
fn slowest(sends: &[(&str, &JobSend)], what: &str, measure: impl Fn(&JobSend) -> Option<u64>) -> Vec<String> {
    let mut measured: Vec<(u64, &str, &JobSend)> = sends
        .iter()
        .filter_map(|(job, send)| measure(send).map(|us| (us, *job, *send)))
        .collect();
    // Largest first; ties in submission order, so the list is deterministic.
    measured.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.sub.cmp(&b.2.sub)));
    measured
        .into_iter()
        .take(WORST_LISTED_MAX)
        .map(|(us, job, send)| format!("{what} {:.1} ms: {}", us as f64 / 1e3, key_times(job, send)))
        .collect()
}

/// The first few submissions of `sends`, in time order.
fn listed<'a>(sends: impl Iterator<Item = &'a (&'a str, &'a JobSend)>) -> Vec<String> {
    let mut chosen: Vec<&(&str, &JobSend)> = sends.collect();
    chosen.sort_by_key(|(_, s)| (s.at_us, s.sub));
    chosen
        .into_iter()
        .take(WORST_LISTED_MAX)
        .map(|(job, send)| key_times(job, send))
        .collect()
}

/// For `outcomes.<outcome>`: when the count is above its bound, the
/// submissions with that outcome; when below, the originals that ended
/// otherwise.
fn by_outcome(sends: &[(&str, &JobSend)], outcome: &str, scenario: &Scenario, metrics: &Metrics) -> Vec<String> {
    let value = metrics.outcomes.get(outcome).copied().unwrap_or(0);
    let too_many = scenario
        .expect
        .outcomes
        .get(outcome)
        .is_some_and(|b| b.max.is_some_and(|max| value > max) || b.eq.is_some_and(|eq| value > eq));
    let has = |send: &JobSend| match outcome {
        "jobs" => send.kind == JobKind::Normal,
        "duplicate" => send.kind == JobKind::Duplicate,
        "duplicate_done" => send.kind == JobKind::Duplicate && send.is_done(),
        "malformed" => matches!(send.kind, JobKind::Invalid | JobKind::Malformed),
        other => send.kind == JobKind::Normal && outcome_of(send) == other,
    };
    if too_many {
        listed(sends.iter().filter(|(_, s)| has(s)))
    } else if outcome == "jobs" {
        Vec::new()
    } else {
        listed(sends.iter().filter(|(_, s)| s.kind == JobKind::Normal && !has(s)))
    }
}

/// `#12 (job 9f3c2a1e, conn 1) sent 20.010 s, first chunk 20.530 s, done 21.090 s`.
pub fn key_times(job: &str, send: &JobSend) -> String {
    let seconds = |us: u64| format!("{:.3} s", us as f64 / 1e6);
    let mut parts = vec![format!("sent {}", seconds(send.at_us))];
    if let Some(chunk) = send.chunks.first() {
        parts.push(format!("first chunk {}", seconds(chunk.at_us)));
    }
    if let Some(cancel_us) = send.cancel_us {
        parts.push(format!("cancel {}", seconds(cancel_us)));
    }
    if let Some(terminal) = send.first_terminal() {
        let what = match &terminal.what {
            Terminal::Done { .. } => "done".to_owned(),
            Terminal::Error { code, .. } => format!("job_error {code}"),
        };
        parts.push(format!("{what} {}", seconds(terminal.at_us)));
    }
    if let Some(lost_us) = send.session_lost_us {
        parts.push(format!("session lost {}", seconds(lost_us)));
    }
    if send.first_terminal().is_none() && send.cancel_us.is_none() && send.session_lost_us.is_none() {
        parts.push("no terminal frame".to_owned());
    }
    format!(
        "{} (job {}, conn {}, deadline {} ms) {}",
        send.name,
        short_job(job),
        send.conn,
        send.deadline_ms,
        parts.join(", ")
    )
}

/// The first 8 characters of a job id (a UUID's first group).
pub fn short_job(job: &str) -> &str {
    job.get(..8).unwrap_or(job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::handmade::TraceBuilder;

    fn scenario() -> Scenario {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/small.toml");
        crate::scenario::load(std::path::Path::new(file)).expect("fixture loads")
    }

    fn view() -> TraceView {
        let trace = TraceBuilder::new()
            .session(0, 1)
            .job(10, "aaaaaaaa-1", 1, 60_000)
            .chunk(20, "aaaaaaaa-1", 1, b"x")
            .done(30, "aaaaaaaa-1", 1)
            .job(10, "bbbbbbbb-2", 1, 60_000)
            .chunk(15, "bbbbbbbb-2", 1, b"x")
            .done(510, "bbbbbbbb-2", 1)
            .job(12, "cccccccc-3", 1, 60_000)
            .error(13, "cccccccc-3", 1, "out_of_capacity")
            .build();
        TraceView::build(&trace.events)
    }

    /// A percentile lists the slowest submissions first, with their times.
    #[test]
    fn percentiles_list_the_slowest_first() {
        let view = view();
        let scenario = scenario();
        let worst = worst_for("latency.e2e_ms.p99", &view, &scenario, &Metrics::of(&view));
        assert_eq!(worst.len(), 2);
        assert!(
            worst[0].starts_with("end-to-end 500.0 ms: #1 (job bbbbbbbb"),
            "{worst:?}"
        );
        assert!(
            worst[0].contains("sent 0.010 s, first chunk 0.015 s, done 0.510 s"),
            "{worst:?}"
        );
    }

    /// An error code lists the submissions that got it.
    #[test]
    fn error_codes_list_their_jobs() {
        let view = view();
        let worst = worst_for("error_codes.out_of_capacity", &view, &scenario(), &Metrics::of(&view));
        assert_eq!(worst.len(), 1);
        assert!(worst[0].starts_with("#2 (job cccccccc"), "{worst:?}");
        assert!(worst[0].ends_with("job_error out_of_capacity 0.013 s"), "{worst:?}");
    }
}
