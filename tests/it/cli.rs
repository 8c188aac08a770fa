//! The binary, flag by flag, on the small fixture.

use std::collections::BTreeSet;

use serde_json::Value;
use sha2::{Digest, Sha256};
use simctl::trace::hex;

use crate::support::{simctl, small_fixture, small_with, stderr, stdout, temp_dir, write};

fn fixture() -> String {
    small_fixture().display().to_string()
}

/// Runs `simctl run <fixture> args… --json` and parses the report.
fn run_json(args: &[&str]) -> (Option<i32>, Value) {
    let file = fixture();
    let mut all = vec!["run", file.as_str(), "--json"];
    all.extend_from_slice(args);
    let output = simctl(&all);
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&output), stderr(&output)));
    (output.status.code(), report)
}

fn seeds_of(report: &Value) -> Vec<u64> {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seed"].as_u64().unwrap())
        .collect()
}

/// A plain run passes and prints the whole human summary.
#[test]
fn run_prints_the_summary() {
    let output = simctl(&["run", &fixture()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let rules_line = format!("rules        {} checked", simctl::oracle::RULES.len());
    for needle in [
        "PASS small (seed 7)",
        "jobs ",
        "error codes",
        "ttfc",
        "inter-chunk",
        "end-to-end",
        "throughput",
        rules_line.as_str(),
        "trace        sha256 ",
        "speed ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

/// `--seed` overrides the scenario's seed.
#[test]
fn seed_flag_sets_the_seed() {
    let (code, report) = run_json(&["--seed", "99"]);
    assert_eq!(code, Some(0));
    assert_eq!(seeds_of(&report), vec![99]);
}

/// `--seeds A..B` runs every seed of the half-open range, in order.
#[test]
fn seeds_flag_runs_a_range() {
    let (code, report) = run_json(&["--seeds", "3..7"]);
    assert_eq!(code, Some(0));
    assert_eq!(seeds_of(&report), vec![3, 4, 5, 6]);
    let (_, inclusive) = run_json(&["--seeds", "3..=4"]);
    assert_eq!(seeds_of(&inclusive), vec![3, 4]);
}

/// `--shard i/n` splits the seeds into disjoint shards that cover them all.
#[test]
fn shards_partition_the_seeds() {
    let (_, first) = run_json(&["--seeds", "0..5", "--shard", "1/2"]);
    let (_, second) = run_json(&["--seeds", "0..5", "--shard", "2/2"]);
    let (a, b) = (seeds_of(&first), seeds_of(&second));
    assert_eq!(a, vec![0, 2, 4]);
    assert_eq!(b, vec![1, 3]);
    let all: BTreeSet<u64> = a.into_iter().chain(b).collect();
    assert_eq!(all.len(), 5);
}

/// A bad `--shard` or `--seeds` is a usage error (exit 2).
#[test]
fn bad_seed_flags_exit_2() {
    assert_eq!(simctl(&["run", &fixture(), "--shard", "3/2"]).status.code(), Some(2));
    assert_eq!(simctl(&["run", &fixture(), "--seeds", "9..3"]).status.code(), Some(2));
    assert_eq!(
        simctl(&["run", &fixture(), "--seed", "1", "--seeds", "1..3"])
            .status
            .code(),
        Some(2)
    );
}

/// `--json` is one document with the runs, totals and the exit code.
#[test]
fn json_report_has_runs_and_totals() {
    let (code, report) = run_json(&[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        (
            report["passed"].as_u64(),
            report["failed"].as_u64(),
            report["exit_code"].as_u64()
        ),
        (Some(1), Some(0), Some(0))
    );
    let run = &report["runs"][0];
    assert_eq!(run["scenario"], "small");
    assert_eq!(
        run["verdict"]["checked"].as_array().unwrap().len(),
        simctl::oracle::RULES.len()
    );
    assert_eq!(run["replay"], format!("simctl run {} --seed 7", fixture()));
    assert_eq!(run["trace_hash"].as_str().unwrap().len(), 64);
    assert!(run["metrics"]["outcomes"]["done"].as_u64().unwrap() >= 1);
}

/// `--trace` writes the JSONL whose SHA-256 is the reported trace hash.
#[test]
fn trace_file_hashes_to_the_trace_hash() {
    let dir = temp_dir("trace");
    let path = dir.join("out.jsonl");
    let (code, report) = run_json(&["--trace", path.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    let bytes = std::fs::read(&path).expect("trace written");
    assert_eq!(
        hex(&Sha256::digest(&bytes)),
        report["runs"][0]["trace_hash"].as_str().unwrap()
    );
    let lines = String::from_utf8(bytes).unwrap();
    for line in lines.lines() {
        let event: Value = serde_json::from_str(line).expect("each line is JSON");
        assert!(event["at_us"].is_u64() && event["ev"].is_string(), "{line}");
    }
}

/// With several runs, `--trace` writes one file per run.
#[test]
fn trace_files_per_run() {
    let dir = temp_dir("traces");
    let path = dir.join("out.jsonl");
    let (code, _) = run_json(&["--seeds", "1..3", "--trace", path.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert!(dir.join("out.small.1.jsonl").is_file());
    assert!(dir.join("out.small.2.jsonl").is_file());
}

/// `--junit` writes one testcase per seed.
#[test]
fn junit_report_lists_every_seed() {
    let dir = temp_dir("junit");
    let path = dir.join("out.xml");
    let output = simctl(&["run", &fixture(), "--seeds", "1..4", "--junit", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let xml = std::fs::read_to_string(&path).unwrap();
    assert!(xml.starts_with("<?xml"));
    assert!(xml.contains("tests=\"3\" failures=\"0\""), "{xml}");
    for seed in 1..4 {
        assert!(xml.contains(&format!("name=\"seed {seed}\"")), "{xml}");
    }
}

/// `--check-determinism` runs twice and reports the same trace.
#[test]
fn check_determinism_passes_a_deterministic_run() {
    let output = simctl(&["run", &fixture(), "--check-determinism"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("determinism  same trace twice"));
}

/// An unmet expectation exits 1 and prints the replay command.
#[test]
fn unmet_expectation_exits_1_with_replay() {
    let dir = temp_dir("unmet");
    let file = write(
        &dir,
        "unmet.toml",
        &small_with("[expect.error_codes]\nout_of_capacity = { min = 100 }"),
    );
    let output = simctl(&["run", file.to_str().unwrap(), "--seed", "5"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("UNMET        expect.error_codes.out_of_capacity: expected >= 100, got 0"),
        "{text}"
    );
    assert!(
        text.contains(&format!("replay       simctl run {} --seed 5", file.display())),
        "{text}"
    );
}

/// A broken run exits 1, each violation naming rule, seed, job and time,
/// and the JUnit report carries the failure.
#[test]
fn violation_exits_1_naming_rule_and_replay() {
    let dir = temp_dir("violation");
    // The coordinator rejects every handshake: the agent never serves, so
    // the world cannot settle and liveness fails.
    let text = small_with("[coordinator.handshake]\nmode = \"reject\"").replacen(
        "settle_ms_max = 20000",
        "settle_ms_max = 2000",
        1,
    );
    let file = write(&dir, "reject.toml", &text);
    let junit = dir.join("out.xml");
    let output = simctl(&["run", file.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(out.contains("VIOLATION    settles_within_bound seed 7 job "), "{out}");
    assert!(out.contains("VIOLATION    reconnects_after_disruption seed 7"), "{out}");
    assert!(
        out.contains(&format!("replay       simctl run {} --seed 7", file.display())),
        "{out}"
    );
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(
        xml.contains("failures=\"1\"") && xml.contains("<failure message=\""),
        "{xml}"
    );
}

/// `check` accepts good files; `list` prints names and descriptions.
#[test]
fn check_and_list() {
    let output = simctl(&["check", &fixture()]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("ok   "));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let output = simctl(&["list", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output)
            .lines()
            .any(|l| l.starts_with("overload\tScripted overload")),
        "{}",
        stdout(&output)
    );
}

/// `list` on a directory holding a bad file exits 2 and still lists the rest.
#[test]
fn list_reports_bad_files() {
    let dir = temp_dir("list");
    std::fs::copy(small_fixture(), dir.join("a.toml")).unwrap();
    write(&dir, "b.toml", "name = 3\n");
    let output = simctl(&["list", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).contains("small\t"));
    assert!(stderr(&output).contains("b.toml:1:8: `name`"), "{}", stderr(&output));
}

/// `--jobs` changes only how many threads run the seeds, never a result.
#[test]
fn jobs_flag_does_not_change_results() {
    let (_, one) = run_json(&["--seeds", "1..5", "--jobs", "1"]);
    let (_, two) = run_json(&["--seeds", "1..5", "--jobs", "2"]);
    let hashes = |r: &Value| {
        r["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| run["trace_hash"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(hashes(&one), hashes(&two));
    assert_eq!(simctl(&["run", &fixture(), "--jobs", "0"]).status.code(), Some(2));
}

/// Without a terminal on stderr no progress bar is drawn (only lines).
#[test]
fn no_progress_bar_without_a_terminal() {
    let output = simctl(&["run", &fixture(), "--seeds", "1..3"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(!stderr(&output).contains(['[', '\r']), "{}", stderr(&output));
}

/// Several files run in one invocation, each with its own seed; one bad
/// file stops everything with exit 2 before any run.
#[test]
fn several_files_in_one_run() {
    let dir = temp_dir("several");
    let other = write(
        &dir,
        "other.toml",
        &small_with("")
            .replacen("name = \"small\"", "name = \"other\"", 1)
            .replacen("seed = 7", "seed = 8", 1),
    );
    let output = simctl(&["run", &fixture(), other.to_str().unwrap(), "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let runs: Vec<(String, u64)> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["scenario"].as_str().unwrap().to_owned(), r["seed"].as_u64().unwrap()))
        .collect();
    assert_eq!(runs, vec![("small".to_owned(), 7), ("other".to_owned(), 8)]);
    let bad = write(&dir, "bad.toml", "name = \"bad\"\n");
    let output = simctl(&["run", &fixture(), bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).is_empty(), "ran despite a bad file");
    assert!(
        stderr(&output).contains("bad.toml:1:1: `duration_ms`: missing field"),
        "{}",
        stderr(&output)
    );
}
