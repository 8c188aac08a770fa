//! The commands behind the CLI, writing to the given output streams and
//! returning the [`Outcome`] that `main` turns into the exit code.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, ReportArgs, RunArgs};
use crate::progress::Progress;
use crate::report;
use crate::report::line::Columns;
use crate::runner::{RunOptions, RunReport};
use crate::scenario::{self, ScenarioError};
use crate::sweep::{self, Loaded, SeedChoice, WorkItem};
use crate::trace_cmd;

/// How a command ended; each maps to one exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every run passed (exit 0).
    Pass,
    /// A violation or an unmet expectation (exit 1).
    Fail,
    /// A scenario file, argument or output path was unusable (exit 2).
    BadInput,
    /// `--check-determinism` saw two different traces (exit 3).
    Nondeterministic,
    /// The simulator reached one of its own limits and a run could not be
    /// judged (exit 4): a harness error, never the agent's.
    HarnessError,
}

impl Outcome {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Pass => 0,
            Self::Fail => 1,
            Self::BadInput => 2,
            Self::Nondeterministic => 3,
            Self::HarnessError => 4,
        }
    }
}

/// A failure to write an output file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write: {source}")]
pub struct OutputError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// Runs `cli`, writing reports to `out` and diagnostics to `err`.
pub fn execute(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Outcome {
    let result = match cli.command {
        Command::Run(args) => run(&args, out, err),
        Command::Check { files } => Ok(check(&files, out, err)),
        Command::List { paths } => Ok(list(&paths, out, err)),
        Command::Trace(args) => Ok(trace_cmd::execute(&args, out, err)),
        Command::Report(args) => Ok(report_html(&args, out, err)),
        Command::Mutants(args) => Ok(crate::mutants::run(&args, out, err)),
    };
    result.unwrap_or_else(|error| {
        let _ = writeln!(err, "simctl: {error}");
        Outcome::BadInput
    })
}

/// Loads every file (directories expanded), or returns every error.
fn load_all(paths: &[PathBuf]) -> Result<Vec<Loaded>, Vec<ScenarioError>> {
    let (files, mut errors) = scenario::files::expand(paths);
    let mut loaded = Vec::new();
    for file in files {
        match scenario::load(&file) {
            Ok(scenario) => loaded.push(Loaded {
                file: file.display().to_string(),
                scenario,
            }),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() { Ok(loaded) } else { Err(errors) }
}

/// Reports bad input on `err` and, with `--json`, as a JSON object on `out`
/// (`{"error": …, "errors": […], "exit_code": 2}`), so a script reading
/// stdout never gets nothing.
pub fn report_bad_input(json: bool, errors: &[String], out: &mut dyn Write, err: &mut dyn Write) {
    for error in errors {
        let _ = writeln!(err, "simctl: {error}");
    }
    if json {
        let _ = writeln!(out, "{}", json_error(errors));
    }
}

/// The JSON error object for bad input.
pub fn json_error(errors: &[String]) -> String {
    let document = serde_json::json!({
        "error": errors.first().map_or("bad input", String::as_str),
        "errors": errors,
        "exit_code": Outcome::BadInput.exit_code(),
    });
    serde_json::to_string_pretty(&document).unwrap_or_default()
}

/// The outcome of a set of runs: harness errors first (some run went
/// unjudged), then nondeterminism, then failures.
pub fn outcome_of(reports: &[RunReport]) -> Outcome {
    if reports.iter().any(|r| r.harness_error.is_some()) {
        Outcome::HarnessError
    } else if reports.iter().any(RunReport::nondeterministic) {
        Outcome::Nondeterministic
    } else if reports.iter().all(RunReport::passed) {
        Outcome::Pass
    } else {
        Outcome::Fail
    }
}

fn run(args: &RunArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome, OutputError> {
    let loaded = match load_all(&args.files) {
        Ok(loaded) => loaded,
        Err(errors) => {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            report_bad_input(args.json, &errors, out, err);
            return Ok(Outcome::BadInput);
        }
    };
    let choice = SeedChoice {
        single: args.seed,
        range: args.seeds.clone(),
        shard: args.shard,
    };
    let items = sweep::work_list(&loaded, &choice);
    if items.is_empty() {
        let _ = writeln!(err, "simctl: no run falls in this shard");
        return Ok(Outcome::Pass);
    }
    let options = RunOptions {
        // A page needs its run's trace; a sweep's failing runs are run again
        // for theirs (`report::html::write_runs`) rather than keeping all.
        keep_trace: args.trace.is_some() || (args.html.is_some() && items.len() == 1),
        check_determinism: args.check_determinism,
    };
    let threads = args.jobs.map_or_else(sweep::default_threads, |n| n as usize);
    let reports = match &args.agent {
        Some(adapter) => match crate::live::app::run_all(adapter, args, &loaded, &items, threads, err) {
            Some(reports) => reports,
            None => return Ok(Outcome::BadInput),
        },
        None => run_with_progress(&loaded, &items, options, threads, err),
    };
    let outcome = outcome_of(&reports);
    if let Err(error) = write_outputs(args, &reports, &loaded) {
        report_bad_input(args.json, &[error.to_string()], out, err);
        return Ok(Outcome::BadInput);
    }
    if let Some(path) = &args.html {
        if let Err(error) = report::html::write_runs(path, &loaded, &reports, threads) {
            report_bad_input(args.json, &[error.to_string()], out, err);
            return Ok(Outcome::BadInput);
        }
    }
    let text = if args.json {
        report::json::render(&reports, outcome.exit_code())
    } else {
        report::human::render(&reports)
    };
    let _ = writeln!(out, "{}", text.trim_end());
    Ok(outcome)
}

/// Runs the sweep, showing each run as it finishes (see [`crate::progress`]).
fn run_with_progress(
    loaded: &[Loaded],
    items: &[WorkItem],
    options: RunOptions,
    threads: usize,
    err: &mut dyn Write,
) -> Vec<RunReport> {
    let names = items
        .iter()
        .map(|i| (loaded[i.scenario].scenario.name.as_str(), i.seed));
    let columns = Columns::of(names, options.check_determinism);
    let terminal = std::io::stderr().is_terminal();
    let mut progress = Progress::new(items.len(), columns, terminal, err);
    let reports = sweep::run_all_streaming(loaded, items, options, threads, &mut |r| progress.finished(r));
    progress.finish();
    reports
}

fn write_outputs(args: &RunArgs, reports: &[RunReport], loaded: &[Loaded]) -> Result<(), OutputError> {
    if let Some(path) = &args.trace {
        write_traces(path, reports, loaded)?;
    }
    if let Some(path) = &args.junit {
        write_file(path, report::junit::render(reports).as_bytes())?;
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    std::fs::write(path, bytes).map_err(|source| OutputError {
        path: path.display().to_string(),
        source,
    })
}

/// Where the trace of `report` goes when several runs share one `--trace`.
pub fn trace_path_for(path: &Path, report: &RunReport) -> PathBuf {
    run_file_for(path, report, "trace", "jsonl")
}

/// `<stem>.<scenario>.<seed>.<ext>` beside `path` (`default_stem` when
/// `path` has none): where one run's file goes when a sweep writes one per
/// run. Characters of the scenario name that are unsafe in a file name
/// become `_`.
pub fn run_file_for(path: &Path, report: &RunReport, default_stem: &str, ext: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| default_stem.to_owned(), |s| s.to_string_lossy().into_owned());
    let safe = |c: char| {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        }
    };
    let name: String = report.scenario.chars().map(safe).collect();
    path.with_file_name(format!("{stem}.{name}.{}.{ext}", report.seed))
}

/// Writes each run's trace, and beside it the run's summary
/// (`<trace stem>.run.json`) that `simctl report` reads.
fn write_traces(path: &Path, reports: &[RunReport], loaded: &[Loaded]) -> Result<(), OutputError> {
    for report in reports {
        let Some(trace) = &report.trace else { continue };
        let target = if reports.len() == 1 {
            path.to_path_buf()
        } else {
            trace_path_for(path, report)
        };
        let mut bytes = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = trace.write_jsonl(&mut bytes);
        write_file(&target, &bytes)?;
        if let Some((_, scenario)) = report::html::write::scenario_for(loaded, report) {
            let summary = report::html::RunSummary::of(report, scenario).to_json();
            write_file(&report::html::summary_path_for(&target), summary.as_bytes())?;
        }
    }
    Ok(())
}

/// `simctl report TRACE --html OUT`: the page of a saved trace.
fn report_html(args: &ReportArgs, out: &mut dyn Write, err: &mut dyn Write) -> Outcome {
    match report::html::write_saved(&args.trace, &args.html, args.summary.as_deref()) {
        Ok(page) => {
            if page.summary.is_none() {
                let _ = writeln!(
                    err,
                    "simctl: no run summary beside {}: the page has no verdict or [expect] table",
                    args.trace.display()
                );
            }
            let _ = writeln!(out, "wrote {}", args.html.display());
            Outcome::Pass
        }
        Err(error) => {
            let _ = writeln!(err, "simctl: {error}");
            Outcome::BadInput
        }
    }
}

fn check(paths: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> Outcome {
    let (files, errors) = scenario::files::expand(paths);
    let mut outcome = Outcome::Pass;
    for error in errors {
        outcome = Outcome::BadInput;
        let _ = writeln!(err, "simctl: {error}");
    }
    for file in files {
        match scenario::load(&file) {
            Ok(s) => {
                let _ = writeln!(out, "ok   {} ({})", file.display(), s.name);
                for warning in scenario::warn::warnings(&s) {
                    let _ = writeln!(err, "simctl: warning: {}: {warning}", file.display());
                }
            }
            Err(error) => {
                outcome = Outcome::BadInput;
                let _ = writeln!(err, "simctl: {error}");
            }
        }
    }
    outcome
}

/// Where `simctl list` looks without an argument.
pub const LIST_DIR_DEFAULT: &str = "scenarios";

fn list(paths: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> Outcome {
    let default = [PathBuf::from(LIST_DIR_DEFAULT)];
    let paths = if paths.is_empty() { &default[..] } else { paths };
    let (files, errors) = scenario::files::expand(paths);
    let mut outcome = Outcome::Pass;
    for error in errors {
        outcome = Outcome::BadInput;
        let _ = writeln!(err, "simctl: {error}");
    }
    for file in files {
        match scenario::load(&file) {
            Ok(s) => {
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}",
                    s.name,
                    s.description.split_whitespace().collect::<Vec<_>>().join(" "),
                    file.display()
                );
            }
            Err(error) => {
                outcome = Outcome::BadInput;
                let _ = writeln!(err, "simctl: {error}");
            }
        }
    }
    outcome
}
