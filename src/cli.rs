//! The command line: `simctl run`, `simctl check`, `simctl list`,
//! `simctl trace`, `simctl report`, `simctl mutants`, and the parsers of
//! `--seeds A..B` and `--shard i/n`.

use std::ops::Range;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Most seeds one `--seeds` range may hold.
pub const SEEDS_MAX: u64 = 1_000_000;

/// Deterministic simulation tests for the provider agent.
#[derive(Debug, Parser)]
#[command(
    name = "simctl",
    version,
    about,
    after_help = "Exit codes: 0 pass, 1 a violation or unmet expectation, 2 bad input, \
                  3 nondeterminism, 4 harness error (the simulator reached one of its \
                  own limits, e.g. a listen backlog of `network.tcp_capacity`; the run \
                  was not judged)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios and judge every run.
    Run(RunArgs),
    /// Validate scenario files without running them.
    Check {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the name and description of every scenario in the given
    /// directories (default `scenarios/`) and files.
    List {
        /// Directories holding `*.toml` scenario files, or scenario files
        /// (default: `scenarios`).
        paths: Vec<PathBuf>,
    },
    /// Print the events of a trace (`simctl run --trace`) readably: one
    /// submission's, or those around a moment.
    Trace(TraceArgs),
    /// Write the HTML report of a saved trace (with its `.run.json` beside it).
    Report(ReportArgs),
    /// Plant each defect of the mutation catalog in the agent and report
    /// which scenario, seed and rule catches it.
    Mutants(crate::mutants::MutantsArgs),
}

/// `simctl trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// A JSONL trace written by `simctl run --trace`.
    pub file: PathBuf,
    /// Only submission `#N` as reports name it (the scenario's `job = N`;
    /// also `'#N re-send K'` or `NrK`, `'malformed K'` or `mK`), with the
    /// events of its job id that name no submission until its id is sent
    /// again; or a job id (or its first characters): every submission of that id.
    #[arg(long, value_name = "N|JOB_ID")]
    pub job: Option<String>,
    /// Only the events within `--window` of this simulated time: `21.09s`,
    /// `21090ms`, `21090000us` or `21.09` (seconds).
    #[arg(long, value_name = "TIME", value_parser = crate::trace_cmd::parse_time_us)]
    pub around: Option<u64>,
    /// Half-width of the `--around` window.
    #[arg(long, value_name = "TIME", default_value = "100ms", value_parser = crate::trace_cmd::parse_time_us)]
    pub window: u64,
}

/// `simctl report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A trace written by `simctl run --trace`.
    pub trace: PathBuf,
    /// Write the page here.
    #[arg(long, value_name = "OUT.html", required = true)]
    pub html: PathBuf,
    /// The run summary (default: `<trace stem>.run.json` beside the trace).
    #[arg(long, value_name = "RUN.json")]
    pub summary: Option<PathBuf>,
}

/// `simctl run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files, or directories: each runs its `*.toml` files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Run this one seed (default: each scenario's own `seed`).
    #[arg(long, conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// Run a range of seeds: `A..B` (B excluded) or `A..=B`.
    #[arg(long, value_parser = parse_seeds)]
    pub seeds: Option<Range<u64>>,
    /// Run only shard `i` of `n` (1-based) of the seeds: seed number k of the
    /// range goes to shard `k mod n + 1`.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Write the event trace as JSONL here (one file per run when there are
    /// several: `<stem>.<scenario>.<seed>.jsonl`).
    #[arg(long, value_name = "OUT.jsonl")]
    pub trace: Option<PathBuf>,
    /// Print a JSON report on stdout instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "OUT.xml")]
    pub junit: Option<PathBuf>,
    /// Write an HTML report with a timeline here: the run's page, or for
    /// several runs an index linking a page per failing run
    /// (`<stem>.<scenario>.<seed>.html`).
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
    /// Run every seed twice and fail (exit 3) if the traces differ.
    #[arg(long)]
    pub check_determinism: bool,
    /// Worker threads (default: every core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jobs: Option<u64>,
    /// Live mode: judge the agent process this adapter file starts, over
    /// real loopback sockets in real time (`--agent` alone:
    /// agents/provider-agent.toml). See README, "Testing your own agent".
    #[arg(long, value_name = "ADAPTER.toml", num_args = 0..=1, default_missing_value = LIVE_AGENT_DEFAULT, conflicts_with = "check_determinism")]
    pub agent: Option<PathBuf>,
    /// Live mode: where each run's directory (agent config, state, stdout,
    /// stderr) is made (default: target/simctl-live, or the temp dir).
    #[arg(long, value_name = "DIR", requires = "agent")]
    pub live_dir: Option<PathBuf>,
    /// Live mode: run the scenarios that can run live and list the others
    /// as refused, instead of refusing the whole command.
    #[arg(long, requires = "agent")]
    pub skip_refused: bool,
}

/// The adapter `--agent` uses when given no file: our own agent.
pub const LIVE_AGENT_DEFAULT: &str = "agents/provider-agent.toml";

/// `--shard i/n`: shard `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Whether the `position`-th seed (0-based) belongs to this shard.
    pub fn owns(&self, position: u64) -> bool {
        position % self.count == self.index - 1
    }
}

/// Parses `A..B` (half-open) or `A..=B` (inclusive).
pub fn parse_seeds(text: &str) -> Result<Range<u64>, String> {
    let number = |s: &str| s.trim().parse::<u64>().map_err(|e| format!("`{s}` is not a seed: {e}"));
    let range = if let Some((a, b)) = text.split_once("..=") {
        let end = number(b)?.checked_add(1).ok_or("range end overflows")?;
        number(a)?..end
    } else if let Some((a, b)) = text.split_once("..") {
        number(a)?..number(b)?
    } else {
        return Err(format!("`{text}` is not a range: write A..B (B excluded) or A..=B"));
    };
    if range.is_empty() {
        return Err(format!("`{text}` holds no seed"));
    }
    if range.end - range.start > SEEDS_MAX {
        return Err(format!("`{text}` holds more than {SEEDS_MAX} seeds"));
    }
    Ok(range)
}

/// Parses `i/n` with `1 <= i <= n`.
pub fn parse_shard(text: &str) -> Result<Shard, String> {
    let (i, n) = text.split_once('/').ok_or_else(|| format!("`{text}` is not i/n"))?;
    let index: u64 = i.trim().parse().map_err(|e| format!("shard index `{i}`: {e}"))?;
    let count: u64 = n.trim().parse().map_err(|e| format!("shard count `{n}`: {e}"))?;
    if count == 0 || index == 0 || index > count {
        return Err(format!("`{text}`: need 1 <= i <= n"));
    }
    Ok(Shard { index, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed ranges parse half-open and inclusive forms and refuse bad ones.
    #[test]
    fn seed_ranges() {
        assert_eq!(parse_seeds("3..6"), Ok(3..6));
        assert_eq!(parse_seeds("3..=6"), Ok(3..7));
        assert!(parse_seeds("6..3").is_err());
        assert!(parse_seeds("5").is_err());
        assert!(parse_seeds("0..2000000").is_err());
    }

    /// Shards take seeds round robin and refuse bad i/n.
    #[test]
    fn shards_split_positions_round_robin() {
        let shard = parse_shard("2/3").unwrap();
        let owned: Vec<u64> = (0..7).filter(|&p| shard.owns(p)).collect();
        assert_eq!(owned, vec![1, 4]);
        assert!(parse_shard("0/3").is_err());
        assert!(parse_shard("4/3").is_err());
        assert!(parse_shard("1/0").is_err());
    }
}
