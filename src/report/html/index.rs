//! The index page of a sweep: one row per run, linking the page of every
//! failing one. Plain HTML with no script, so it opens anywhere.

use std::fmt::Write;

use super::page::escape;
use crate::runner::RunReport;

/// One run of the sweep, with the file name of its page if one was written.
pub struct IndexRow<'a> {
    pub report: &'a RunReport,
    pub page: Option<String>,
}

fn status(report: &RunReport) -> &'static str {
    if report.nondeterministic() {
        "NONDETERMINISTIC"
    } else if report.passed() {
        "PASS"
    } else {
        "FAIL"
    }
}

/// The index page of `rows`.
pub fn html(rows: &[IndexRow]) -> String {
    let failed = rows.iter().filter(|r| status(r.report) != "PASS").count();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>simctl sweep: {failed} of {} failed</title><style>{STYLE}</style></head><body>\
         <h1>simctl sweep: {failed} of {} run(s) failed</h1>\
         <p>Failing runs link to their report page. Replay any run with its command.</p>\
         <table><thead><tr><th>status</th><th>scenario</th><th>seed</th><th>jobs</th>\
         <th>violations</th><th>unmet</th><th>first problem</th><th>replay</th></tr></thead><tbody>",
        rows.len(),
        rows.len()
    );
    for row in rows {
        let r = row.report;
        let first = r
            .verdict
            .violations
            .first()
            .map(|v| format!("{}: {}", v.rule, v.detail))
            .or_else(|| {
                r.expect
                    .unmet
                    .first()
                    .map(|u| format!("expect.{}: {}", u.key, u.detail))
            })
            .unwrap_or_default();
        let status = status(r);
        let status_cell = match &row.page {
            Some(page) => format!("<a href=\"{}\">{status}</a>", escape(page)),
            None => status.to_owned(),
        };
        let _ = write!(
            out,
            "<tr class=\"{}\"><td>{status_cell}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td><code>{}</code></td></tr>",
            status.to_lowercase(),
            escape(&r.scenario),
            r.seed,
            r.metrics.outcomes.get("jobs").copied().unwrap_or(0),
            r.verdict.violations.len(),
            r.expect.unmet.len(),
            escape(&first),
            escape(&r.replay),
        );
    }
    out.push_str("</tbody></table></body></html>\n");
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330}\
table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #e3e6ec;text-align:left;\
vertical-align:top}tr.fail td:first-child a,tr.nondeterministic td:first-child a{color:#c0262d;font-weight:600}\
tr.pass td:first-child{color:#1f7a3a}code{font-size:12px}";
