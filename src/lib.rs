//! simctl: deterministic simulation tests for the provider agent.
//!
//! Module map:
//! - [`trace`]: the ordered event list of one run, its JSONL form and hash.
//! - [`oracle`]: the named rules every run is judged by.

pub mod oracle;
pub mod trace;
