//! The `--json` report: every run in full, plus totals and the exit code.

use serde::Serialize;

use crate::runner::RunReport;

/// The whole JSON document.
#[derive(Serialize)]
struct Document<'a> {
    runs: &'a [RunReport],
    passed: usize,
    failed: usize,
    nondeterministic: usize,
    exit_code: u8,
}

/// The JSON report of `reports`, ending the process with `exit_code`.
pub fn render(reports: &[RunReport], exit_code: u8) -> String {
    let passed = reports.iter().filter(|r| r.passed() && !r.nondeterministic()).count();
    let document = Document {
        runs: reports,
        passed,
        failed: reports.len() - passed,
        nondeterministic: reports.iter().filter(|r| r.nondeterministic()).count(),
        exit_code,
    };
    // Our own plain types always serialise; say so rather than panic.
    serde_json::to_string_pretty(&document).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
}
