//! The scenario library: every `scenarios/*.toml`, found when the test runs
//! (a new file is picked up without code changes), runs for a fixed set of
//! seeds through the same sweep `simctl run` uses, and must pass.

use std::path::{Path, PathBuf};

use simctl::report::human;
use simctl::runner::{RunOptions, RunReport};
use simctl::scenario::load;
use simctl::sweep::{Loaded, SeedChoice, run_all, work_list};

/// Seeds each scenario runs with here: few, to keep `cargo test` quick in
/// the debug profile; CI sweeps 1..20 with the release binary.
const SEEDS: std::ops::Range<u64> = 1..4;
/// Worker threads: each run is single-threaded and independent, and the
/// machines this runs on have two cores.
const THREADS: usize = 2;

/// The scenario files, sorted, as paths relative to the repository root so
/// that the replay commands in a failure can be pasted as they are.
fn scenario_files() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let entries = std::fs::read_dir(root.join("scenarios")).expect("read scenarios/");
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("list scenarios/").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            (path, format!("scenarios/{name}"))
        })
        .collect()
}

/// The full story of a failed run: outcomes, violations, unmet
/// expectations, the swarm draw if any, and the replay command.
fn story(report: &RunReport) -> String {
    format!(
        "{}  replay with a trace: {} --trace out.jsonl\n",
        human::render(std::slice::from_ref(report)),
        report.replay_command()
    )
}

/// Every scenario in `scenarios/` loads and passes for seeds 1, 2 and 3.
#[test]
fn every_scenario_passes_its_seeds() {
    let files = scenario_files();
    assert!(!files.is_empty(), "no scenarios/*.toml found");
    let mut loaded = Vec::new();
    let mut bad = Vec::new();
    for (path, file) in files {
        match load(&path) {
            Ok(scenario) => loaded.push(Loaded { file, scenario }),
            Err(error) => bad.push(error.to_string()),
        }
    }
    assert!(bad.is_empty(), "scenario files that do not load:\n{}", bad.join("\n"));
    let choice = SeedChoice {
        single: None,
        range: Some(SEEDS),
        shard: None,
    };
    let items = work_list(&loaded, &choice);
    let reports = run_all(&loaded, &items, RunOptions::default(), THREADS);
    assert_eq!(reports.len(), items.len(), "every run reports");
    let failed: Vec<String> = reports.iter().filter(|r| !r.passed()).map(story).collect();
    assert!(
        failed.is_empty(),
        "{} of {} runs failed:\n\n{}",
        failed.len(),
        reports.len(),
        failed.join("\n")
    );
}

/// A swarm scenario's draw is printed beside the seed, and is in `--json`.
#[test]
fn swarm_draws_are_printed_with_the_seed() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/swarm.toml");
    let scenario = load(&path).expect("swarm.toml loads");
    let targets = scenario.swarm.len();
    let file = path.to_string_lossy().into_owned();
    let human = crate::support::simctl(&["run", &file, "--seeds", "5..7"]);
    let text = crate::support::stdout(&human);
    let draw_lines = text.lines().filter(|l| l.trim_start().starts_with("swarm: ")).count();
    assert_eq!(draw_lines, 2, "one draw line under each seed's line:\n{text}");
    assert!(text.contains("agent.max_concurrent = "), "{text}");
    let json = crate::support::simctl(&["run", &file, "--seed", "5", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("--json is JSON");
    let draws = doc["runs"][0]["swarm"].as_array().expect("runs[0].swarm");
    assert_eq!(draws.len(), targets);
    assert!(draws.iter().all(|d| d["key"].is_string() && !d["value"].is_null()));
}

/// A `[swarm]` target the file does not write makes every command exit 2,
/// naming the entry, its line and the unknown key.
#[test]
fn unknown_swarm_target_exits_2() {
    let dir = crate::support::temp_dir("swarm-target");
    let text = crate::support::small_with("[swarm]\n\"agent.max_concurent\" = { min = 1, max = 4 }");
    let path = crate::support::write(&dir, "bad.toml", &text);
    let line = text
        .lines()
        .position(|l| l.contains("max_concurent"))
        .expect("the entry")
        + 1;
    let output = crate::support::simctl(&["check", &path.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(2));
    let err = crate::support::stderr(&output);
    assert!(err.contains(&format!("bad.toml:{line}:1:")), "{err}");
    assert!(err.contains("`swarm.\"agent.max_concurent\"`"), "{err}");
    assert!(err.contains("unknown target key `agent.max_concurent`"), "{err}");
    // The hint says what to do: write the key in the file first.
    assert!(
        err.contains("A target must be written in the file first, even where it has a default"),
        "{err}"
    );
    assert!(err.contains("(write `agent.max_concurent = …` in its table;"), "{err}");
}

/// A real key the file leaves at its default (`network.tcp_capacity` is not
/// written in the fixture) gets the same hint: a target must be written
/// first, so the value runs without `[swarm]` is in the file.
#[test]
fn swarm_target_left_at_its_default_says_write_it_first() {
    let dir = crate::support::temp_dir("swarm-default");
    let text = crate::support::small_with(
        "[swarm]
\"network.tcp_capacity\" = { min = 8, max = 64 }",
    );
    let path = crate::support::write(&dir, "default.toml", &text);
    let output = crate::support::simctl(&["check", &path.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(2));
    let err = crate::support::stderr(&output);
    assert!(err.contains("unknown target key `network.tcp_capacity`"), "{err}");
    assert!(
        err.contains("A target must be written in the file first, even where it has a default"),
        "{err}"
    );
}
