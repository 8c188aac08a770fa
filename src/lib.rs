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
//! - [`live`]: the same scenarios and oracle against an external agent
//!   process, over real loopback sockets in real time (`run --agent`).
//! - [`wall`]: the wall-clock stopwatch for the speed figure (the only one).
//! - [`sweep`]: seed ranges, shards, and runs spread over worker threads.
//! - [`progress`]: what a sweep shows on stderr while it runs.
//! - [`report`]: the human summary, `--json`, `--junit` and the `--html` page.
//! - [`trace_cmd`]: `simctl trace`, a trace file's events in readable form.
//! - [`cli`] and [`app`]: the command line and the commands behind it.
//! - [`mutants`]: `simctl mutants`, the mutation catalog's runner.

pub mod app;
pub mod cli;
pub mod expect;
pub mod live;
pub mod metrics;
pub mod mutants;
pub mod oracle;
pub mod progress;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod sweep;
pub mod trace;
pub mod trace_cmd;
pub mod wall;
pub mod world;
