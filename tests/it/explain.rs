//! Results as they happen and failures explained: streamed run lines,
//! `simctl trace`, the submissions behind an `UNMET` line, the cancel
//! summary, and the small things a new user trips on (`list`, directories,
//! `--json` errors, `check` warnings).

use std::path::Path;

use serde_json::Value;

use crate::support::{simctl, small_fixture, small_with, stderr, stdout, temp_dir, write};

fn fixture() -> String {
    small_fixture().display().to_string()
}

/// Without a terminal, each run's line streams to stderr as it finishes,
/// and stdout keeps the sorted summary with aligned columns.
#[test]
fn sweep_lines_stream_to_stderr_and_the_summary_stays_sorted() {
    let output = simctl(&["run", &fixture(), "--seeds", "8..12", "--jobs", "2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let streamed: Vec<String> = stderr(&output)
        .lines()
        .filter(|l| l.starts_with("PASS"))
        .map(str::to_owned)
        .collect();
    assert_eq!(streamed.len(), 4, "{}", stderr(&output));
    let summary: Vec<String> = stdout(&output)
        .lines()
        .filter(|l| l.starts_with("PASS"))
        .map(str::to_owned)
        .collect();
    let mut sorted_stream = streamed.clone();
    sorted_stream.sort_by_key(|l| {
        l.split("seed")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    });
    assert_eq!(
        summary, sorted_stream,
        "the summary repeats the streamed lines, by seed"
    );
    // Columns line up: every line has its `jobs,` at the same place.
    let columns: Vec<usize> = summary.iter().map(|l| l.find(" jobs,").unwrap()).collect();
    assert!(columns.windows(2).all(|w| w[0] == w[1]), "{summary:?}");
}

/// `simctl list` without an argument lists `scenarios/`; with a file, that file.
#[test]
fn list_defaults_to_scenarios_and_takes_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_simctl"))
        .arg("list")
        .current_dir(root)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).lines().any(|l| l.starts_with("overload\t")),
        "{}",
        stdout(&output)
    );
    let output = simctl(&["list", &fixture()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("small\t"), "{}", stdout(&output));
}

/// `simctl run DIR` runs the directory's scenarios; a directory without
/// any says what it expects.
#[test]
fn run_takes_a_directory() {
    let dir = temp_dir("rundir");
    std::fs::copy(small_fixture(), dir.join("a.toml")).unwrap();
    let output = simctl(&["run", dir.to_str().unwrap(), "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["runs"][0]["scenario"], "small");
    let empty = temp_dir("emptydir");
    let output = simctl(&["run", empty.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("without any *.toml scenario file"),
        "{}",
        stderr(&output)
    );
}

/// With `--json`, bad input (a bad file, a bad flag) prints a JSON error
/// object on stdout, not nothing.
#[test]
fn json_with_bad_input_prints_a_json_error() {
    let dir = temp_dir("jsonbad");
    let bad = write(&dir, "bad.toml", "name = 3\n");
    for args in [
        vec!["run", bad.to_str().unwrap(), "--json"],
        vec!["run", bad.to_str().unwrap(), "--json", "--seeds", "5..1"],
    ] {
        let output = simctl(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let error: Value =
            serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&output)));
        assert_eq!(error["exit_code"], 2, "{error}");
        assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()), "{error}");
    }
}

/// `simctl check` warns about an arrival that starts after `duration_ms`.
#[test]
fn check_warns_about_actions_after_the_scripted_phase() {
    let dir = temp_dir("late");
    let text =
        small_with("[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 5000\nend_ms = 6000");
    let file = write(&dir, "late.toml", &text);
    let output = simctl(&["check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "a warning is not an error");
    assert!(
        stderr(&output).contains("warning:") && stderr(&output).contains("`coordinator.arrivals[1].start_ms` = 5000"),
        "{}",
        stderr(&output)
    );
}

/// An unmet count lists the submissions behind it with their key times,
/// and the summary says what became of the cancels.
#[test]
fn unmet_lines_name_the_submissions_and_cancels_are_summed() {
    let dir = temp_dir("worst");
    let text = small_with(
        "[[coordinator.cancels]]\nkind = \"at\"\njob = 0\nat_ms = 215\n\n[expect.error_codes]\nout_of_capacity = { max = 0 }\n[expect.latency]\ne2e_ms = { p50 = 1.0 }",
    );
    let file = write(&dir, "worst.toml", &text);
    let output = simctl(&["run", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stdout(&output);
    let unmet = text
        .lines()
        .position(|l| l.contains("UNMET        expect.latency.e2e_ms.p50"))
        .expect(&text);
    let first_worst = text.lines().nth(unmet + 1).unwrap();
    assert!(
        first_worst.trim_start().starts_with("end-to-end ")
            && first_worst.contains(" ms: #")
            && first_worst.contains("sent "),
        "{text}"
    );
    assert!(text.contains("cancels      sent 1, won "), "{text}");
}

/// `simctl trace --job N` prints submission N's events readably, agent
/// events included; `--around` the events near a moment.
#[test]
fn trace_command_prints_a_submission_and_a_moment() {
    let dir = temp_dir("tracecmd");
    let path = dir.join("t.jsonl");
    let output = simctl(&["run", &fixture(), "--trace", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let trace = path.to_str().unwrap();
    let output = simctl(&["trace", trace, "--job", "3"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("(submission #3, job "), "{text}");
    for kind in [
        "job_sent",
        "agent_job_admitted",
        "chunk",
        "terminal_received",
        "agent_slot_freed",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(kind))
            .unwrap_or_else(|| panic!("no {kind} in\n{text}"));
        assert!(line.contains("#3 job "), "{line}");
    }
    assert!(text.contains("why=completed"), "{text}");
    let sent_at = text
        .lines()
        .find(|l| l.contains("job_sent"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let output = simctl(&["trace", trace, "--around", &format!("{sent_at}s"), "--window", "0ms"]);
    assert!(
        stdout(&output)
            .lines()
            .skip(1)
            .all(|l| l.trim_start().starts_with(&sent_at)),
        "{}",
        stdout(&output)
    );
    let output = simctl(&["trace", trace, "--job", "999"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no submission #999"), "{}", stderr(&output));
}
