//! simctl: deterministic simulation tests for the provider agent.
//!
//! Module map:
//! - [`scenario`]: the scenario file: schema, loading, precise errors.
//! - [`trace`]: the ordered event list of one run, its JSONL form and hash.
//! - [`oracle`]: the named rules every run is judged by.
//! - [`metrics`]: outcomes, latency percentiles and throughput of a run.
//! - [`expect`]: `[expect]` counts and thresholds, and the oracle's bounds.
//! - [`world`]: the turmoil simulation of one run, and its trace.
//! - [`runner`]: one scenario and seed → world → oracle → [`runner::RunReport`].
//! - [`wall`]: the wall-clock stopwatch for the speed figure (the only one).
//! - [`sweep`]: seed ranges, shards, and runs spread over worker threads.
//! - [`report`]: the human summary, `--json` and `--junit`.
//! - [`cli`] and [`app`]: the command line and the commands behind it.
//! - [`mutants`]: `simctl mutants`, the mutation catalog's runner.

pub mod app;
pub mod cli;
pub mod expect;
pub mod metrics;
pub mod mutants;
pub mod oracle;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod sweep;
pub mod trace;
pub mod wall;
pub mod world;
