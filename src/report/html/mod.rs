//! The HTML report: one self-contained page per run that an engineer can
//! look at — the run's header and `[expect]` table, one zoomable timeline
//! in simulated ms (levels against their limits, read pauses, faults and
//! sessions, error codes and violations), the job table and the latency
//! histograms — plus an index page for a sweep.
//!
//! The page embeds its data as JSON and a small hand-written script
//! (`assets/report.js`, `assets/histograms.js`) that draws it on canvases;
//! it needs no network and no server. No charting
//! library: the timeline needs shared zoom over step lanes, shaded spans
//! and markers with hover text, which is less code drawn directly than
//! bent out of a library, and keeps the page small.
//!
//! Files: [`summary`] (the header, and its `OUT.run.json` file beside a
//! saved trace), [`records`] (the JSONL trace read back), [`series`]
//! (downsampling), [`timeline`] (lanes, spans, markers), [`jobs`] (job
//! table, histograms), [`page`] (the HTML), [`index`] (a sweep's index),
//! [`write`] (what `simctl run --html` and `simctl report` write).

pub mod index;
pub mod jobs;
pub mod page;
pub mod records;
pub mod series;
pub mod summary;
pub mod timeline;
pub mod write;

use serde::Serialize;

pub use records::BadLine;
pub use summary::{RunSummary, summary_path_for};
pub use write::{HtmlError, write_runs, write_saved};

use crate::runner::RunReport;
use crate::scenario::Scenario;
use crate::trace::Trace;

/// Version of the data the page's script reads.
pub const PAGE_FORMAT: u32 = 1;

/// Everything embedded in one page.
#[derive(Serialize)]
pub struct PageData<'a> {
    pub format: u32,
    /// The run's header; `None` for a trace saved without its summary.
    pub summary: Option<&'a RunSummary>,
    /// Where the events came from (a trace file, or the run itself).
    pub source: &'a str,
    pub events: usize,
    pub timeline: timeline::Timeline,
    pub jobs: jobs::Jobs,
}

/// The page of the JSONL trace `lines`, with its run's `summary` if known.
pub fn render<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    summary: Option<&RunSummary>,
    source: &str,
) -> Result<String, BadLine> {
    let lines = records::parse(lines)?;
    let last_us = lines.last().map_or(0, |l| l.at_us);
    let summary_us = summary.map_or(0, |s| {
        let violation_us = s.violations.iter().map(|v| v.at_us).max().unwrap_or(0);
        violation_us.max((s.sim_ms * 1e3) as u64)
    });
    let end_us = last_us.max(summary_us).max(1);
    let data = PageData {
        format: PAGE_FORMAT,
        summary,
        source,
        events: lines.len(),
        timeline: timeline::build(&lines, end_us, summary),
        jobs: jobs::build(&lines),
    };
    Ok(page::html(&data))
}

/// The page of `report`, a run of `scenario` whose trace is `trace`.
pub fn render_run(report: &RunReport, scenario: &Scenario, trace: &Trace) -> String {
    let summary = RunSummary::of(report, scenario);
    let lines = trace.jsonl_lines();
    // The trace's own lines always parse; should one ever not, the page
    // says so instead of the run failing.
    render(lines.iter().map(String::as_str), Some(&summary), "this run")
        .unwrap_or_else(|error| page::error_page(&format!("the run's own trace did not read back: {error}")))
}

#[cfg(test)]
mod tests;
