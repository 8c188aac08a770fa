//! CI: the GitHub workflow and `.ci/run` run the same steps, defined once
//! in `.ci/run`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The steps `.ci/run` defines, in its own words (`.ci/run --list`).
fn ci_run_steps() -> Vec<String> {
    let output = Command::new("bash")
        .arg(repo().join(".ci/run"))
        .arg("--list")
        .output()
        .expect("run bash .ci/run --list");
    assert!(
        output.status.success(),
        ".ci/run --list failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The command of every `run:` of a workflow file, in order.
fn workflow_runs(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches("- ").trim_start();
            line.strip_prefix("run:").map(|command| command.trim().to_owned())
        })
        .collect()
}

/// What is wrong with `workflow` given the steps of `.ci/run`: commands that
/// are not `.ci/run STEP...`, unknown steps, steps it never runs.
fn divergences(workflow: &str, steps: &[String]) -> Vec<String> {
    let known: BTreeSet<&str> = steps.iter().map(String::as_str).collect();
    let mut used = BTreeSet::new();
    let mut problems = Vec::new();
    for command in workflow_runs(workflow) {
        let Some(names) = command.strip_prefix(".ci/run ") else {
            problems.push(format!(
                "`run: {command}` is not `.ci/run STEP...`: define the step in .ci/run"
            ));
            continue;
        };
        for name in names.split_whitespace() {
            if known.contains(name) {
                used.insert(name.to_owned());
            } else {
                problems.push(format!(
                    "`run: {command}` names `{name}`, which .ci/run does not define"
                ));
            }
        }
    }
    for step in steps.iter().filter(|s| !used.contains(*s)) {
        problems.push(format!("step `{step}` of .ci/run is never run by the workflow"));
    }
    problems
}

/// The workflow runs every step of `.ci/run`, and nothing else: the two
/// cannot drift apart (as the in-process determinism step once did).
#[test]
fn workflow_runs_every_step_of_ci_run() {
    let steps = ci_run_steps();
    assert!(steps.iter().any(|s| s == "test"), "{steps:?}");
    let workflow = std::fs::read_to_string(repo().join(".github/workflows/ci.yml")).expect("read ci.yml");
    let problems = divergences(&workflow, &steps);
    assert!(
        problems.is_empty(),
        "ci.yml and .ci/run diverge:\n{}",
        problems.join("\n")
    );
}

/// The check catches a step missing from the workflow, a raw command and an
/// unknown step name.
#[test]
fn divergence_check_catches_drift() {
    let steps: Vec<String> = ["fmt", "test", "determinism"].map(String::from).into();
    let workflow =
        "jobs:\n  a:\n    steps:\n      - run: .ci/run fmt test\n      - run: cargo bench\n      - run: .ci/run tset\n";
    let problems = divergences(workflow, &steps);
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("cargo bench"));
    assert!(problems[1].contains("`tset`"));
    assert!(problems[2].contains("`determinism`"));
}

/// `.ci/run` keeps calling the README's test command literally.
#[test]
fn ci_run_calls_cargo_test_workspace() {
    let text = std::fs::read_to_string(repo().join(".ci/run")).expect("read .ci/run");
    assert!(text.contains("cargo test --workspace"));
}
