//! Running the scenario library against one mutant's simctl binary, in an
//! order chosen to kill it fast, stopping at the first failure.
//!
//! Order: first the mutant's `try_first` scenarios, one process per seed;
//! then, seed by seed, the rest of the library in one process per seed
//! (spread over `jobs` threads). The first failing run ends the search,
//! unless it failed only on `[expect]` counts: then the search goes on
//! through the remaining runs for a rule that also fires, so that "killed
//! only by [expect]" means what it says.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use serde_json::Value;

/// One run that failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Failure {
    /// The scenario file.
    pub file: String,
    pub seed: u64,
    /// Rules that reported a violation, in report order, deduplicated.
    pub rules: Vec<String>,
    /// `[expect]` keys that were not met.
    pub unmet: Vec<String>,
    /// The first violation (or unmet expectation), in one line.
    pub detail: String,
}

/// What the library made of one mutant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Search {
    /// The first failing run.
    pub first: Option<Failure>,
    /// The first run with a rule violation (the same as `first` when that
    /// run had one).
    pub first_rule: Option<Failure>,
    /// Child CPU seconds (user + system) spent running scenarios up to and
    /// including the first failure, or over the whole search if none.
    pub cpu_s_to_first: f64,
    /// Child CPU seconds of the whole search.
    pub cpu_s_total: f64,
    /// Runs performed.
    pub runs: usize,
    /// A run that could not be judged (the binary failed to start, exited
    /// with a usage error, or printed no report).
    pub error: Option<String>,
}

/// One step of the search: scenario files run with one seed in one process.
struct Step {
    files: Vec<PathBuf>,
    seed: u64,
}

/// The steps for `library` (scenario files in order) over `seeds`, with
/// `try_first` (file names) moved to the front.
fn plan(library: &[PathBuf], try_first: &[String], seeds: std::ops::Range<u64>) -> Vec<Step> {
    let is_first = |file: &PathBuf| {
        file.file_name()
            .is_some_and(|name| try_first.iter().any(|t| name.to_string_lossy() == t.as_str()))
    };
    let (first, rest): (Vec<PathBuf>, Vec<PathBuf>) = library.iter().cloned().partition(is_first);
    let mut steps = Vec::new();
    for file in &first {
        for seed in seeds.clone() {
            steps.push(Step {
                files: vec![file.clone()],
                seed,
            });
        }
    }
    if !rest.is_empty() {
        for seed in seeds {
            steps.push(Step {
                files: rest.clone(),
                seed,
            });
        }
    }
    steps
}

/// Runs the search with `binary` (a mutant's simctl).
pub fn search(
    binary: &Path,
    library: &[PathBuf],
    try_first: &[String],
    seeds: std::ops::Range<u64>,
    jobs: usize,
) -> Search {
    let mut result = Search {
        first: None,
        first_rule: None,
        cpu_s_to_first: 0.0,
        cpu_s_total: 0.0,
        runs: 0,
        error: None,
    };
    let cpu_start = children_cpu_s();
    for step in plan(library, try_first, seeds) {
        result.runs += step.files.len();
        let failures = match run_step(binary, &step, jobs) {
            Ok(failures) => failures,
            Err(error) => {
                result.error = Some(error);
                break;
            }
        };
        if let (None, Some(first)) = (&result.first, failures.first()) {
            result.first = Some(first.clone());
            result.cpu_s_to_first = children_cpu_s() - cpu_start;
        }
        if let Some(with_rule) = failures.into_iter().find(|f| !f.rules.is_empty()) {
            result.first_rule = Some(with_rule);
            break;
        }
    }
    result.cpu_s_total = children_cpu_s() - cpu_start;
    if result.first.is_none() {
        result.cpu_s_to_first = result.cpu_s_total;
    }
    result
}

/// Runs one step and returns its failing runs, in file order.
fn run_step(binary: &Path, step: &Step, jobs: usize) -> Result<Vec<Failure>, String> {
    let output = Command::new(binary)
        .arg("run")
        .args(&step.files)
        .args(["--seed", &step.seed.to_string(), "--json", "--jobs", &jobs.to_string()])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let code = output.status.code();
    if !matches!(code, Some(0 | 1 | 3)) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let shown: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "{} run … --seed {} exited with {:?}: {}",
            binary.display(),
            step.seed,
            output.status,
            shown.join(" | ")
        ));
    }
    let report: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("seed {}: the mutant printed no JSON report: {e}", step.seed))?;
    let mut failures = Vec::new();
    let empty = Vec::new();
    for run in report.get("runs").and_then(Value::as_array).unwrap_or(&empty) {
        if let Some(failure) = failure_of(run) {
            failures.push(failure);
        }
    }
    if failures.is_empty() && code != Some(0) {
        return Err(format!("seed {}: exit code {code:?} without a failing run", step.seed));
    }
    Ok(failures)
}

/// The failure a run's JSON report shows, if any.
pub fn failure_of(run: &Value) -> Option<Failure> {
    let empty = Vec::new();
    let violations = run
        .pointer("/verdict/violations")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let unmet = run.pointer("/expect/unmet").and_then(Value::as_array).unwrap_or(&empty);
    let divergent = run.pointer("/determinism/divergence").is_some_and(|d| !d.is_null());
    if violations.is_empty() && unmet.is_empty() && !divergent {
        return None;
    }
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut rules: Vec<String> = Vec::new();
    for v in violations {
        let rule = text(v, "rule");
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    let unmet_keys: Vec<String> = unmet.iter().map(|u| text(u, "key")).collect();
    let detail = match (violations.first(), unmet.first()) {
        (Some(v), _) => format!("{}: {}", text(v, "rule"), text(v, "detail")),
        (None, Some(u)) => format!("[expect] {}: {}", text(u, "key"), text(u, "detail")),
        (None, None) => "nondeterministic trace".to_owned(),
    };
    Some(Failure {
        file: text(run, "file"),
        seed: run.get("seed").and_then(Value::as_u64).unwrap_or(0),
        rules,
        unmet: unmet_keys,
        detail,
    })
}

/// Clock ticks per second of `/proc` times (`USER_HZ`, fixed at 100 by
/// the Linux ABI on every architecture Rust supports there).
const PROC_TICKS_PER_S: f64 = 100.0;

/// CPU seconds (user + system) used so far by this process's waited-for
/// children, from `/proc/self/stat` (`cutime` + `cstime`); 0 where there is
/// no `/proc` (the report then shows no CPU figures).
pub fn children_cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at field
    // 3; cutime and cstime are fields 16 and 17.
    let Some((_, after)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (field(16) + field(17)) / PROC_TICKS_PER_S
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// try_first scenarios come first, one per seed; the rest follow seed by seed.
    #[test]
    fn plan_puts_try_first_in_front() {
        let lib: Vec<PathBuf> = ["s/a.toml", "s/b.toml", "s/c.toml"].iter().map(PathBuf::from).collect();
        let steps = plan(&lib, &["b.toml".to_owned()], 1..3);
        let shown: Vec<(Vec<String>, u64)> = steps
            .iter()
            .map(|s| (s.files.iter().map(|f| f.display().to_string()).collect(), s.seed))
            .collect();
        assert_eq!(
            shown,
            vec![
                (vec!["s/b.toml".to_owned()], 1),
                (vec!["s/b.toml".to_owned()], 2),
                (vec!["s/a.toml".to_owned(), "s/c.toml".to_owned()], 1),
                (vec!["s/a.toml".to_owned(), "s/c.toml".to_owned()], 2),
            ]
        );
    }

    /// A run report's violations and unmet expectations become one failure; a clean run none.
    #[test]
    fn failure_of_reads_rules_and_expects() {
        let clean = json!({"file": "f", "seed": 1, "verdict": {"violations": []}, "expect": {"unmet": []}});
        assert_eq!(failure_of(&clean), None);
        let failing = json!({"file": "f", "seed": 2,
            "verdict": {"violations": [
                {"rule": "a", "detail": "first"}, {"rule": "b", "detail": "x"}, {"rule": "a", "detail": "y"}]},
            "expect": {"unmet": [{"key": "outcomes.done", "detail": "z"}]}});
        let failure = failure_of(&failing).expect("fails");
        assert_eq!(failure.rules, vec!["a", "b"]);
        assert_eq!(failure.unmet, vec!["outcomes.done"]);
        assert_eq!(failure.detail, "a: first");
        let expect_only = json!({"file": "f", "seed": 3, "verdict": {"violations": []},
            "expect": {"unmet": [{"key": "k", "detail": "d"}]}});
        let failure = failure_of(&expect_only).expect("fails");
        assert!(failure.rules.is_empty());
        assert_eq!(failure.detail, "[expect] k: d");
    }
}
