//! The page's header: what a run was and how it was judged (scenario,
//! seed, verdict, replay command, the `[expect]` table met and unmet, the
//! violations) and the limits its lanes are drawn against.
//!
//! The JSONL trace holds only events, so `simctl run --trace OUT.jsonl`
//! writes this summary beside it as `OUT.run.json`, and `simctl report`
//! reads it back: the page of a saved trace is the page of the run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::expect::oracle_config;
use crate::metrics::{Metrics, Percentiles};
use crate::runner::RunReport;
use crate::scenario::Scenario;
use crate::scenario::model::{CountBound, PercentileBound};
use crate::scenario::swarm;

/// Version of the summary file's layout; a reader refuses a newer one.
pub const SUMMARY_FORMAT: u32 = 1;

/// One violation, as the page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViolationRow {
    pub rule: String,
    pub job: Option<String>,
    pub at_us: u64,
    pub detail: String,
}

/// One `[expect]` key: what was wanted, what was measured, and whether it held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpectRow {
    /// The key as reports name it (`outcomes.done`, `latency.e2e_ms.p99`).
    pub key: String,
    /// The bound, e.g. `>= 420 and <= 560` or `<= 250 ms`.
    pub wanted: String,
    /// The measured value, or the unmet detail when nothing was measured.
    pub got: String,
    pub met: bool,
}

/// The lines the lanes are drawn against.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// The agent's `limits.max_concurrent`.
    pub max_concurrent: u64,
    /// The agent's `session.outbound_queue_bytes_max`.
    pub outbound_queue_bytes_max: u64,
    /// Each backend host with its `max_num_seqs`.
    pub backends: Vec<(String, u64)>,
}

/// Everything the page's header shows about one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// [`SUMMARY_FORMAT`] when written.
    pub format: u32,
    pub file: String,
    pub scenario: String,
    pub description: String,
    pub seed: u64,
    /// `PASS`, `FAIL` or `NONDETERMINISTIC`.
    pub verdict: String,
    pub replay: String,
    pub trace_hash: String,
    pub trace_events: usize,
    pub settled: bool,
    pub sim_ms: f64,
    /// This seed's `[swarm]` draws, `key = value`.
    pub swarm: Vec<String>,
    pub rules_checked: usize,
    /// Rules the scenario opted out of, `rule: why`.
    pub rules_skipped: Vec<String>,
    pub violations: Vec<ViolationRow>,
    pub expect: Vec<ExpectRow>,
    pub limits: Limits,
    /// Something the reader should know about how the page was made.
    pub notes: Vec<String>,
}

impl RunSummary {
    /// The summary of `report`, a run of `scenario` (as loaded: the swarm
    /// draw of the report's seed is made again here).
    pub fn of(report: &RunReport, scenario: &Scenario) -> Self {
        let drawn = match swarm::draw(scenario, report.seed) {
            Ok(Some((drawn, _))) => drawn,
            _ => scenario.clone(),
        };
        let config = oracle_config(&drawn);
        let verdict = if report.nondeterministic() {
            "NONDETERMINISTIC"
        } else if report.passed() {
            "PASS"
        } else {
            "FAIL"
        };
        Self {
            format: SUMMARY_FORMAT,
            file: report.file.clone(),
            scenario: report.scenario.clone(),
            description: drawn.description.split_whitespace().collect::<Vec<_>>().join(" "),
            seed: report.seed,
            verdict: verdict.to_owned(),
            replay: report.replay.clone(),
            trace_hash: report.trace_hash.clone(),
            trace_events: report.trace_events,
            settled: report.settled,
            sim_ms: report.sim_ms,
            swarm: report.swarm.iter().map(ToString::to_string).collect(),
            rules_checked: report.verdict.checked.len(),
            rules_skipped: report
                .skip_rules
                .iter()
                .map(|s| format!("{}: {}", s.rule, s.why))
                .collect(),
            violations: report
                .verdict
                .violations
                .iter()
                .map(|v| ViolationRow {
                    rule: v.rule.to_owned(),
                    job: v.job.clone(),
                    at_us: v.at_us,
                    detail: v.detail.clone(),
                })
                .collect(),
            expect: expect_rows(&drawn, &report.metrics, report),
            limits: Limits {
                max_concurrent: config.max_concurrent,
                outbound_queue_bytes_max: config.outbound_queue_bytes_max,
                backends: drawn
                    .backends
                    .iter()
                    .map(|b| (b.host.clone(), u64::from(b.max_num_seqs)))
                    .collect(),
            },
            notes: Vec::new(),
        }
    }

    /// Reads a summary written by [`RunSummary::write`].
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let summary: Self =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a run summary: {e}", path.display()))?;
        if summary.format > SUMMARY_FORMAT {
            return Err(format!(
                "{}: run summary format {} is newer than this simctl reads ({SUMMARY_FORMAT})",
                path.display(),
                summary.format
            ));
        }
        Ok(summary)
    }

    /// The summary as pretty JSON.
    pub fn to_json(&self) -> String {
        // Our own plain types always serialise; say so rather than panic.
        serde_json::to_string_pretty(self).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
    }
}

/// Where the summary of the trace at `trace` lives: `OUT.jsonl` → `OUT.run.json`.
pub fn summary_path_for(trace: &Path) -> PathBuf {
    trace.with_extension("run.json")
}

/// Every `[expect]` key of `scenario` with its bound and measured value;
/// met unless `report` lists it as unmet. Unmet keys that are no bound of
/// the scenario (a swarm draw that made no scenario) come last.
fn expect_rows(scenario: &Scenario, metrics: &Metrics, report: &RunReport) -> Vec<ExpectRow> {
    let expect = &scenario.expect;
    let mut rows = Vec::new();
    for (key, bound) in &expect.outcomes {
        let got = metrics.outcomes.get(key).copied().unwrap_or(0);
        rows.push(count_row(format!("outcomes.{key}"), bound, got));
    }
    for (code, bound) in &expect.error_codes {
        let got = metrics.error_codes.get(code).copied().unwrap_or(0);
        rows.push(count_row(format!("error_codes.{code}"), bound, got));
    }
    let latency = &expect.latency;
    for (key, bound, measured) in [
        ("ttfc_ms", latency.ttfc_ms, &metrics.ttfc_ms),
        ("inter_chunk_ms", latency.inter_chunk_ms, &metrics.inter_chunk_ms),
        ("e2e_ms", latency.e2e_ms, &metrics.e2e_ms),
    ] {
        if let Some(bound) = bound {
            rows.extend(percentile_rows(key, &bound, measured));
        }
    }
    for row in &mut rows {
        if let Some(unmet) = report.expect.unmet.iter().find(|u| u.key == row.key) {
            row.met = false;
            if row.got.is_empty() {
                row.got.clone_from(&unmet.detail);
            }
        }
    }
    for unmet in &report.expect.unmet {
        if !rows.iter().any(|r| r.key == unmet.key) {
            rows.push(ExpectRow {
                key: unmet.key.clone(),
                wanted: String::new(),
                got: unmet.detail.clone(),
                met: false,
            });
        }
    }
    rows
}

fn count_row(key: String, bound: &CountBound, got: u64) -> ExpectRow {
    ExpectRow {
        key,
        wanted: bound.describe(),
        got: got.to_string(),
        met: true,
    }
}

fn percentile_rows(key: &str, bound: &PercentileBound, measured: &Percentiles) -> Vec<ExpectRow> {
    [
        ("p50", bound.p50, measured.p50),
        ("p90", bound.p90, measured.p90),
        ("p99", bound.p99, measured.p99),
    ]
    .into_iter()
    .filter_map(|(name, limit, value)| {
        let limit = limit?;
        Some(ExpectRow {
            key: format!("latency.{key}.{name}"),
            wanted: format!("<= {limit} ms"),
            got: if measured.count == 0 {
                String::new()
            } else {
                format!("{value:.3} ms")
            },
            met: true,
        })
    })
    .collect()
}
