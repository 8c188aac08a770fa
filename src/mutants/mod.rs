//! `simctl mutants`: measures the harness's power by planting defects in the
//! agent and running the scenario library against each.
//!
//! - [`catalog`]: the catalog files (`mutants/catalog/*.toml`): exact
//!   find/replace edits, what each breaks, what the harness must do.
//! - [`scratch`]: the reused scratch copy the mutants are built in.
//! - [`exec`]: one mutant's search through the library, first failure first.
//! - [`report`]: the per-mutant verdicts, human and `--json`.
//!
//! The unmutated tree is built and run first (the baseline): a library that
//! fails without any mutant would make every mutant look killed.

pub mod catalog;
pub mod exec;
pub mod report;
pub mod scratch;

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::app::Outcome;
use crate::cli::parse_seeds;
use crate::wall::Stopwatch;
use catalog::Mutant;
use exec::{Search, children_cpu_s};
use report::{MutantResult, Status};
use scratch::Scratch;

/// `simctl mutants`.
#[derive(Debug, Args)]
pub struct MutantsArgs {
    /// The catalog directory (`*.toml`, one mutant each).
    #[arg(long, default_value = "mutants/catalog")]
    pub catalog: PathBuf,
    /// The scenario library (`*.toml`).
    #[arg(long, default_value = "scenarios")]
    pub scenarios: PathBuf,
    /// Seeds every scenario is run with: `A..B` or `A..=B`.
    #[arg(long, value_parser = parse_seeds, default_value = "1..=2")]
    pub seeds: Range<u64>,
    /// Only mutants whose name contains one of these (repeatable).
    #[arg(long)]
    pub only: Vec<String>,
    /// Only check that every snippet still applies (no build, no runs).
    #[arg(long)]
    pub check: bool,
    /// Skip the unmutated baseline run.
    #[arg(long)]
    pub no_baseline: bool,
    /// The repository whose agent is mutated.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The scratch copy (default: `<target dir>/mutants-scratch`).
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// The cargo target directory shared with the repository (default:
    /// `$CARGO_TARGET_DIR`, else `<repo>/target`).
    #[arg(long)]
    pub target_dir: Option<PathBuf>,
    /// Worker threads of each library run (default: every core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jobs: Option<u64>,
    /// Print a JSON report on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Why the command could not run at all.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error(transparent)]
    Scratch(#[from] scratch::ScratchError),
    #[error("{0}")]
    Other(String),
}

/// Runs `simctl mutants`.
pub fn run(args: &MutantsArgs, out: &mut dyn Write, err: &mut dyn Write) -> Outcome {
    match run_inner(args, out, err) {
        Ok(outcome) => outcome,
        Err(error) => {
            let _ = writeln!(err, "simctl mutants: {error}");
            Outcome::BadInput
        }
    }
}

fn run_inner(args: &MutantsArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome, SetupError> {
    let mutants: Vec<Mutant> = catalog::load_dir(&args.catalog)?
        .into_iter()
        .filter(|m| args.only.is_empty() || args.only.iter().any(|o| m.name.contains(o.as_str())))
        .collect();
    if mutants.is_empty() {
        return Err(SetupError::Other(format!(
            "{}: no mutant selected",
            args.catalog.display()
        )));
    }
    let library = scenario_files(&args.scenarios)?;
    let repo =
        std::fs::canonicalize(&args.repo).map_err(|e| SetupError::Other(format!("{}: {e}", args.repo.display())))?;
    let target_dir = args
        .target_dir
        .clone()
        .unwrap_or_else(|| std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo.join("target"), PathBuf::from));
    let scratch_dir = args
        .scratch
        .clone()
        .unwrap_or_else(|| target_dir.join("mutants-scratch"));
    let scratch = Scratch::new(&repo, &scratch_dir, &target_dir);
    if args.check {
        return check_only(&scratch, &mutants, out);
    }
    let jobs = args.jobs.map_or_else(crate::sweep::default_threads, |n| n as usize);
    let total = Stopwatch::start();
    let _ = writeln!(err, "simctl mutants: syncing {}", scratch_dir.display());
    scratch.sync()?;
    let baseline = if args.no_baseline {
        None
    } else {
        let _ = writeln!(err, "simctl mutants: building and running the unmutated baseline");
        let cpu_before_build = children_cpu_s();
        let (binary, build_s) = timed_build(&scratch)?;
        let build_cpu_s = children_cpu_s() - cpu_before_build;
        let binary = binary.map_err(|tail| SetupError::Other(format!("the unmutated tree does not build:\n{tail}")))?;
        let search = exec::search(&binary, &library, &[], args.seeds.clone(), jobs);
        if let Some(error) = &search.error {
            return Err(SetupError::Other(format!("baseline: {error}")));
        }
        if let Some(first) = &search.first {
            return Err(SetupError::Other(format!(
                "the unmutated agent already fails {} seed {}: {} — fix that first",
                first.file, first.seed, first.detail
            )));
        }
        Some(report::Baseline {
            build_s,
            build_cpu_s,
            cpu_s: search.cpu_s_total,
            runs: search.runs,
        })
    };
    let mut results = Vec::new();
    for mutant in &mutants {
        let result = run_mutant(&scratch, mutant, &library, args.seeds.clone(), jobs)?;
        let _ = writeln!(err, "{}", report::line(&result));
        results.push(result);
    }
    let summary = report::Summary::of(&results, total.elapsed().as_secs_f64());
    let text = if args.json {
        report::json(&args.seeds, baseline.as_ref(), &results, &summary)
    } else {
        report::human(&args.seeds, baseline.as_ref(), &results, &summary)
    };
    let _ = writeln!(out, "{}", text.trim_end());
    Ok(if summary.failures == 0 {
        Outcome::Pass
    } else {
        Outcome::Fail
    })
}

/// `--check`: every snippet must apply.
fn check_only(scratch: &Scratch, mutants: &[Mutant], out: &mut dyn Write) -> Result<Outcome, SetupError> {
    let mut stale = 0;
    for mutant in mutants {
        let found = scratch.check(mutant)?;
        if found.is_empty() {
            let _ = writeln!(out, "ok     {}", mutant.name);
        } else {
            stale += 1;
            let _ = writeln!(out, "STALE  {}: {}", mutant.name, report::stale_text(&found));
        }
    }
    let _ = writeln!(out, "{} mutants, {stale} stale", mutants.len());
    Ok(if stale == 0 { Outcome::Pass } else { Outcome::Fail })
}

fn timed_build(scratch: &Scratch) -> Result<(Result<PathBuf, String>, f64), SetupError> {
    let watch = Stopwatch::start();
    let built = scratch.build()?;
    Ok((built, watch.elapsed().as_secs_f64()))
}

/// Applies, builds, searches and restores one mutant.
fn run_mutant(
    scratch: &Scratch,
    mutant: &Mutant,
    library: &[PathBuf],
    seeds: Range<u64>,
    jobs: usize,
) -> Result<MutantResult, SetupError> {
    let stale = scratch.check(mutant)?;
    if !stale.is_empty() {
        return Ok(MutantResult::new(mutant, Status::Stale(stale), None, 0.0));
    }
    let cpu_before_build = children_cpu_s();
    scratch.apply(mutant)?;
    let built = timed_build(scratch);
    scratch.restore(mutant)?;
    let (binary, build_s) = built?;
    let build_cpu_s = children_cpu_s() - cpu_before_build;
    let binary = match binary {
        Ok(binary) => binary,
        Err(tail) => return Ok(MutantResult::new(mutant, Status::BuildFailed(tail), None, build_s)),
    };
    let search: Search = exec::search(&binary, library, &mutant.try_first, seeds, jobs);
    let status = Status::of(&search);
    let mut result = MutantResult::new(mutant, status, Some(search), build_s);
    result.build_cpu_s = build_cpu_s;
    Ok(result)
}

/// The `*.toml` files of `dir`, sorted.
fn scenario_files(dir: &Path) -> Result<Vec<PathBuf>, SetupError> {
    let entries = std::fs::read_dir(dir).map_err(|e| SetupError::Other(format!("{}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(SetupError::Other(format!("{}: no scenario file", dir.display())));
    }
    Ok(files)
}
