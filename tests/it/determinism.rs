//! Determinism: one scenario and seed give the same trace byte for byte;
//! different seeds give different traces; a divergence maps to exit 3.

use simctl::app::{Outcome, outcome_of};
use simctl::runner::{DeterminismReport, DivergenceReport, RunOptions, run_one};
use simctl::scenario::load;

use crate::support::small_fixture;

/// Two runs of one seed have the same trace hash and the same JSONL.
#[test]
fn same_seed_same_trace() {
    let scenario = load(&small_fixture()).unwrap();
    let options = RunOptions {
        keep_trace: true,
        check_determinism: false,
    };
    let a = run_one("small.toml", &scenario, 11, options);
    let b = run_one("small.toml", &scenario, 11, options);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.trace.unwrap().jsonl_lines(), b.trace.unwrap().jsonl_lines());
}

/// Different seeds give different traces (the seed reaches the world).
#[test]
fn different_seeds_differ() {
    let scenario = load(&small_fixture()).unwrap();
    let a = run_one("small.toml", &scenario, 1, RunOptions::default());
    let b = run_one("small.toml", &scenario, 2, RunOptions::default());
    assert_ne!(a.trace_hash, b.trace_hash);
}

/// The shipped overload scenario is deterministic too.
#[test]
fn overload_is_deterministic() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/overload.toml");
    let scenario = load(&path).unwrap();
    let report = run_one(
        "overload.toml",
        &scenario,
        3,
        RunOptions {
            keep_trace: false,
            check_determinism: true,
        },
    );
    let check = report.determinism.clone().unwrap();
    assert_eq!(check.divergence, None);
    assert_eq!(check.second_hash, report.trace_hash);
}

/// Host crashes replay exactly inside one process: tokio's process-wide task
/// ids, which set the order a crashed host's tasks are dropped in, differ
/// between the two runs of each seed, and must not reach the trace.
#[test]
fn crashes_are_deterministic_in_one_process() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/agent-restart.toml");
    let scenario = load(&path).unwrap();
    let small = load(&small_fixture()).unwrap();
    for seed in 1..=4 {
        // A run in between moves the task-id counter on by an amount that
        // has nothing to do with the crash scenario.
        let _ = run_one("small.toml", &small, seed, RunOptions::default());
        let options = RunOptions {
            keep_trace: false,
            check_determinism: true,
        };
        let report = run_one("agent-restart.toml", &scenario, seed, options);
        let check = report.determinism.clone().unwrap();
        assert_eq!(check.divergence, None, "seed {seed}");
    }
}

/// A report whose determinism check diverged makes the outcome exit 3,
/// ahead of ordinary failures.
#[test]
fn divergence_is_exit_3() {
    let scenario = load(&small_fixture()).unwrap();
    let mut report = run_one("small.toml", &scenario, 1, RunOptions::default());
    assert_eq!(outcome_of(std::slice::from_ref(&report)), Outcome::Pass);
    report.determinism = Some(DeterminismReport {
        second_hash: "0".repeat(64),
        divergence: Some(DivergenceReport {
            index: 4,
            first: Some("{\"a\":1}".into()),
            second: Some("{\"a\":2}".into()),
        }),
    });
    assert_eq!(outcome_of(std::slice::from_ref(&report)), Outcome::Nondeterministic);
    assert_eq!(Outcome::Nondeterministic.exit_code(), 3);
    let text = simctl::report::human::render(std::slice::from_ref(&report));
    assert!(text.contains("first diverging event #4"), "{text}");
    assert!(text.contains("run 2: {\"a\":2}"), "{text}");
}
