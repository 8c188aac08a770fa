//! One line per run of a sweep, in aligned columns: the same line is
//! streamed as each run finishes and repeated, sorted, in the final summary,
//! so the widths are fixed before the first run ends (from the scenario
//! names and seeds of the whole work list).

use crate::runner::RunReport;

/// Width of the status column when a determinism check may print
/// `NONDETERMINISTIC`.
const STATUS_WIDTH_DETERMINISM: usize = 16;
/// Width of the status column otherwise (`PASS`, `FAIL`).
const STATUS_WIDTH: usize = 4;

/// Column widths of the run lines of one sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Columns {
    status: usize,
    scenario: usize,
    seed: usize,
}

impl Columns {
    /// Widths for runs of these `(scenario name, seed)` pairs;
    /// `determinism`: a determinism check runs (so a status may be
    /// `NONDETERMINISTIC`).
    pub fn of<'a>(runs: impl IntoIterator<Item = (&'a str, u64)>, determinism: bool) -> Self {
        let mut columns = Self {
            status: if determinism {
                STATUS_WIDTH_DETERMINISM
            } else {
                STATUS_WIDTH
            },
            ..Self::default()
        };
        for (scenario, seed) in runs {
            columns.scenario = columns.scenario.max(scenario.chars().count());
            columns.seed = columns.seed.max(seed.to_string().len());
        }
        columns
    }

    /// Widths for the runs of `reports`.
    pub fn of_reports(reports: &[RunReport]) -> Self {
        let determinism = reports.iter().any(|r| r.determinism.is_some());
        let mut columns = Self::of(reports.iter().map(|r| (r.scenario.as_str(), r.seed)), determinism);
        if reports.iter().any(|r| r.harness_error.is_some()) {
            columns.status = columns.status.max(STATUS_WIDTH_HARNESS_ERROR);
        }
        columns
    }

    /// Spaces as wide as the status column plus its separator (for lines
    /// that continue a run line).
    pub fn indent(&self) -> String {
        " ".repeat(self.status + 1)
    }
}

/// Width of the status column when a run hit a simulator limit
/// (`HARNESS ERROR`).
const STATUS_WIDTH_HARNESS_ERROR: usize = 13;

/// `HARNESS ERROR`, `PASS`, `FAIL` or `NONDETERMINISTIC`.
pub fn status(report: &RunReport) -> &'static str {
    if report.harness_error.is_some() {
        "HARNESS ERROR"
    } else if report.nondeterministic() {
        "NONDETERMINISTIC"
    } else if report.passed() {
        "PASS"
    } else {
        "FAIL"
    }
}

/// The run's line, without a newline: status, scenario, seed, jobs,
/// violations, unmet expectations, trace hash and speed, in aligned columns.
pub fn run_line(r: &RunReport, columns: &Columns) -> String {
    let Columns {
        status: status_w,
        scenario: scenario_w,
        seed: seed_w,
    } = *columns;
    let mut line = format!(
        "{:<status_w$} {:<scenario_w$}  seed {:>seed_w$}  {:>4} jobs, {:>2} violation(s), {:>2} unmet, trace {} ({:.0}x)",
        status(r),
        r.scenario,
        r.seed,
        r.metrics.outcomes.get("jobs").copied().unwrap_or(0),
        r.verdict.violations.len(),
        r.expect.unmet.len(),
        if r.live.is_some() {
            "live"
        } else {
            short_hash(&r.trace_hash)
        },
        r.speed()
    );
    if !r.swarm.is_empty() {
        let draws: Vec<String> = r.swarm.iter().map(ToString::to_string).collect();
        line.push_str(&format!("\n{}swarm: {}", columns.indent(), draws.join(", ")));
    }
    line
}

/// The first 12 hex digits of a trace hash.
pub fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Widths come from the longest scenario name and seed, and the status
    /// column widens only when a determinism check runs.
    #[test]
    fn widths_fit_the_longest_name_and_seed() {
        let columns = Columns::of([("a", 7), ("longer", 12345)], false);
        assert_eq!(
            columns,
            Columns {
                status: 4,
                scenario: 6,
                seed: 5
            }
        );
        assert_eq!(Columns::of([("a", 1)], true).status, 16);
    }
}
