//! What `simctl run --html` and `simctl report --html` write: one page for
//! one run; for a sweep, one page per failing run plus an index at the
//! given path; and the page of a saved trace with its summary beside it.

use std::path::{Path, PathBuf};

use super::index::{self, IndexRow};
use super::summary::{RunSummary, summary_path_for};
use super::{page, render, render_run};
use crate::runner::{RunOptions, RunReport};
use crate::scenario::Scenario;
use crate::sweep::{self, Loaded, WorkItem};

/// A page that could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Trace {
        path: String,
        #[source]
        source: super::BadLine,
    },
    #[error("{0}")]
    Summary(String),
}

fn write_file(path: &Path, text: &str) -> Result<(), HtmlError> {
    std::fs::write(path, text).map_err(|source| HtmlError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Where the page of `report` goes in a sweep written to `path`:
/// `<stem>.<scenario>.<seed>.html` beside it.
pub fn page_path_for(path: &Path, report: &RunReport) -> PathBuf {
    crate::app::run_file_for(path, report, "report", "html")
}

/// The loaded scenario `report` ran, and its index in `loaded`.
pub fn scenario_for<'a>(loaded: &'a [Loaded], report: &RunReport) -> Option<(usize, &'a Scenario)> {
    loaded
        .iter()
        .enumerate()
        .find(|(_, l)| l.file == report.file && l.scenario.name == report.scenario)
        .map(|(i, l)| (i, &l.scenario))
}

/// Runs again, keeping their traces, the runs of `wanted` that have none:
/// a run is a pure function of its scenario and seed, so the trace is the
/// one the sweep saw (its hash is checked when the page is made).
fn with_traces(loaded: &[Loaded], wanted: &[&RunReport], threads: usize) -> Vec<RunReport> {
    let items: Vec<WorkItem> = wanted
        .iter()
        .filter(|r| r.trace.is_none())
        .filter_map(|r| scenario_for(loaded, r).map(|(scenario, _)| WorkItem { scenario, seed: r.seed }))
        .collect();
    let options = RunOptions {
        keep_trace: true,
        check_determinism: false,
    };
    let mut again = sweep::run_all(loaded, &items, options, threads).into_iter();
    wanted
        .iter()
        .map(|r| match r.trace {
            Some(_) => (*r).clone(),
            None => again.next().unwrap_or_else(|| (*r).clone()),
        })
        .collect()
}

/// The page of `first`'s run, from `run` (the same run, holding its trace).
fn page_of(loaded: &[Loaded], first: &RunReport, run: &RunReport) -> String {
    let (Some((_, scenario)), Some(trace)) = (scenario_for(loaded, run), &run.trace) else {
        return page::error_page(&format!("{}: no trace was kept for this run", first.replay));
    };
    if run.trace_hash == first.trace_hash {
        return render_run(first, scenario, trace);
    }
    // A second run that differs is nondeterminism: show what the second run
    // did, and say so.
    let mut summary = RunSummary::of(run, scenario);
    summary.notes.push(format!(
        "This page shows a second run: the first had trace {} but this one {}. The run is not deterministic.",
        first.trace_hash, run.trace_hash
    ));
    let lines = trace.jsonl_lines();
    render(lines.iter().map(String::as_str), Some(&summary), "a second run")
        .unwrap_or_else(|e| page::error_page(&format!("the run's own trace did not read back: {e}")))
}

/// Writes the page of the one run in `reports` to `path`, or for several,
/// the page of every failing run beside `path` and an index at `path`.
/// Returns the pages written, the index last.
pub fn write_runs(
    path: &Path,
    loaded: &[Loaded],
    reports: &[RunReport],
    threads: usize,
) -> Result<Vec<PathBuf>, HtmlError> {
    if let [single] = reports {
        let run = with_traces(loaded, &[single], threads);
        write_file(path, &page_of(loaded, single, &run[0]))?;
        return Ok(vec![path.to_path_buf()]);
    }
    let failing: Vec<&RunReport> = reports.iter().filter(|r| !r.passed() || r.nondeterministic()).collect();
    let runs = with_traces(loaded, &failing, threads);
    let mut written = Vec::new();
    for (first, run) in failing.iter().zip(&runs) {
        let target = page_path_for(path, first);
        write_file(&target, &page_of(loaded, first, run))?;
        written.push(target);
    }
    let rows: Vec<IndexRow> = reports
        .iter()
        .map(|report| IndexRow {
            report,
            page: (!report.passed() || report.nondeterministic()).then(|| file_name(&page_path_for(path, report))),
        })
        .collect();
    write_file(path, &index::html(&rows))?;
    written.push(path.to_path_buf());
    Ok(written)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Writes the summary of `report` (a run of `scenario`) beside its trace
/// written at `trace`.
pub fn write_summary(trace: &Path, report: &RunReport, scenario: &Scenario) -> Result<(), HtmlError> {
    write_file(&summary_path_for(trace), &RunSummary::of(report, scenario).to_json())
}

/// What [`write_saved`] made.
#[derive(Debug)]
pub struct SavedPage {
    /// Where the summary was read from; `None`: the header is unknown.
    pub summary: Option<PathBuf>,
}

/// Writes the page of the saved trace `trace` to `html`, with the summary
/// at `summary` (default: beside the trace) if there is one.
pub fn write_saved(trace: &Path, html: &Path, summary: Option<&Path>) -> Result<SavedPage, HtmlError> {
    let text = std::fs::read_to_string(trace).map_err(|source| HtmlError::Read {
        path: trace.display().to_string(),
        source,
    })?;
    let beside = summary_path_for(trace);
    let summary_path = summary.map_or(beside.as_path(), |p| p);
    let loaded = if summary.is_some() || summary_path.exists() {
        Some(RunSummary::read(summary_path).map_err(HtmlError::Summary)?)
    } else {
        None
    };
    let source = trace.display().to_string();
    let page = render(text.lines(), loaded.as_ref(), &source).map_err(|source| HtmlError::Trace {
        path: trace.display().to_string(),
        source,
    })?;
    write_file(html, &page)?;
    Ok(SavedPage {
        summary: loaded.map(|_| summary_path.to_path_buf()),
    })
}
