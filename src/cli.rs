//! The command line: `simctl run`, `simctl check`, `simctl list`,
//! `simctl mutants`, and the
//! parsers of `--seeds A..B` and `--shard i/n`.

use std::ops::Range;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Most seeds one `--seeds` range may hold.
pub const SEEDS_MAX: u64 = 1_000_000;

/// Deterministic simulation tests for the provider agent.
#[derive(Debug, Parser)]
#[command(name = "simctl", version, about)]
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
    /// Print the name and description of every scenario in a directory.
    List {
        /// Directory holding `*.toml` scenario files.
        dir: PathBuf,
    },
    /// Plant each defect of the mutation catalog in the agent and report
    /// which scenario, seed and rule catches it.
    Mutants(crate::mutants::MutantsArgs),
}

/// `simctl run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files.
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
    /// Run every seed twice and fail (exit 3) if the traces differ.
    #[arg(long)]
    pub check_determinism: bool,
    /// Worker threads (default: every core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jobs: Option<u64>,
}

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
