//! The commands behind the CLI, writing to the given output streams and
//! returning the [`Outcome`] that `main` turns into the exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, RunArgs};
use crate::report;
use crate::runner::{RunOptions, RunReport};
use crate::scenario::{self, ScenarioError};
use crate::sweep::{self, Loaded, SeedChoice};

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
}

impl Outcome {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Pass => 0,
            Self::Fail => 1,
            Self::BadInput => 2,
            Self::Nondeterministic => 3,
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
        Command::List { dir } => Ok(list(&dir, out, err)),
        Command::Mutants(args) => Ok(crate::mutants::run(&args, out, err)),
    };
    result.unwrap_or_else(|error| {
        let _ = writeln!(err, "simctl: {error}");
        Outcome::BadInput
    })
}

/// Loads every file, reporting each bad one; `None` if any was bad.
fn load_all(files: &[PathBuf], err: &mut dyn Write) -> Option<Vec<Loaded>> {
    let mut loaded = Vec::new();
    let mut bad = false;
    for file in files {
        match scenario::load(file) {
            Ok(scenario) => loaded.push(Loaded {
                file: file.display().to_string(),
                scenario,
            }),
            Err(error) => {
                bad = true;
                let _ = writeln!(err, "simctl: {error}");
            }
        }
    }
    (!bad).then_some(loaded)
}

/// The outcome of a set of runs: nondeterminism first, then failures.
pub fn outcome_of(reports: &[RunReport]) -> Outcome {
    if reports.iter().any(RunReport::nondeterministic) {
        Outcome::Nondeterministic
    } else if reports.iter().all(RunReport::passed) {
        Outcome::Pass
    } else {
        Outcome::Fail
    }
}

fn run(args: &RunArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome, OutputError> {
    let Some(loaded) = load_all(&args.files, err) else {
        return Ok(Outcome::BadInput);
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
        keep_trace: args.trace.is_some(),
        check_determinism: args.check_determinism,
    };
    let threads = args.jobs.map_or_else(sweep::default_threads, |n| n as usize);
    let reports = sweep::run_all(&loaded, &items, options, threads);
    let outcome = outcome_of(&reports);
    if let Some(path) = &args.trace {
        write_traces(path, &reports)?;
    }
    if let Some(path) = &args.junit {
        write_file(path, report::junit::render(&reports).as_bytes())?;
    }
    let text = if args.json {
        report::json::render(&reports, outcome.exit_code())
    } else {
        report::human::render(&reports)
    };
    let _ = writeln!(out, "{}", text.trim_end());
    Ok(outcome)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    std::fs::write(path, bytes).map_err(|source| OutputError {
        path: path.display().to_string(),
        source,
    })
}

/// Where the trace of `report` goes when several runs share one `--trace`.
pub fn trace_path_for(path: &Path, report: &RunReport) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "trace".to_owned(), |s| s.to_string_lossy().into_owned());
    let name: String = report
        .scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    path.with_file_name(format!("{stem}.{name}.{}.jsonl", report.seed))
}

fn write_traces(path: &Path, reports: &[RunReport]) -> Result<(), OutputError> {
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
    }
    Ok(())
}

fn check(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> Outcome {
    let mut outcome = Outcome::Pass;
    for file in files {
        match scenario::load(file) {
            Ok(s) => {
                let _ = writeln!(out, "ok   {} ({})", file.display(), s.name);
            }
            Err(error) => {
                outcome = Outcome::BadInput;
                let _ = writeln!(err, "simctl: {error}");
            }
        }
    }
    outcome
}

fn list(dir: &Path, out: &mut dyn Write, err: &mut dyn Write) -> Outcome {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            let error = ScenarioError::Read {
                file: dir.display().to_string(),
                source,
            };
            let _ = writeln!(err, "simctl: {error}");
            return Outcome::BadInput;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut outcome = Outcome::Pass;
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
