//! Scenario files: the examples load, and every kind of bad input is refused
//! with the file, line, column and key — never a panic.

use simctl::scenario::{ScenarioError, load, parse};

use crate::support::{simctl, small_fixture, small_with, stderr, temp_dir, write};

/// Parses `text` as a file named `bad.toml` and returns the error.
fn refused(text: &str) -> ScenarioError {
    match parse("bad.toml", text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(err) => err,
    }
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect("needle in text") + 1
}

fn assert_at(err: &ScenarioError, key: &str, line: usize) {
    assert_eq!(err.key(), Some(key), "{err}");
    assert_eq!(err.line_column().map(|(l, _)| l), Some(line), "{err}");
    let text = err.to_string();
    assert!(text.starts_with(&format!("bad.toml:{line}:")), "{text}");
}

/// The shipped scenarios and the fixture load.
#[test]
fn shipped_scenarios_load() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = std::fs::read_dir(root.join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path());
    let files: Vec<_> = shipped.filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    assert!(files.iter().any(|p| p.ends_with("overload.toml")));
    for file in files.into_iter().chain([small_fixture()]) {
        load(&file).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// An unknown top-level key is named, at its line.
#[test]
fn unknown_top_level_key() {
    let text = small_with("").replacen("seed = 7", "seed = 7\nsede = 8", 1);
    let err = refused(&text);
    assert_at(&err, "sede", line_of(&text, "sede ="));
    assert!(err.to_string().contains("unknown field"), "{err}");
}

/// An unknown key inside a nested table is named with its full path.
#[test]
fn unknown_nested_key() {
    let text = small_with("").replacen("idle_timeout_ms = 3000", "idle_timeout_ms = 3000\nidle_timeout = 5", 1);
    assert_at(
        &refused(&text),
        "agent.session.idle_timeout",
        line_of(&text, "idle_timeout = 5"),
    );
}

/// A value of the wrong type is named, with its column.
#[test]
fn wrong_type() {
    let text = small_with("").replacen("duration_ms = 2000", "duration_ms = \"two seconds\"", 1);
    let err = refused(&text);
    assert_at(&err, "duration_ms", line_of(&text, "duration_ms ="));
    assert_eq!(err.line_column().map(|(_, c)| c), Some(15), "{err}");
}

/// A negative network fail rate is an impossible value.
#[test]
fn negative_fail_rate() {
    let text = small_with("").replacen("latency_max_ms = 3", "latency_max_ms = 3\nfail_rate = -0.5", 1);
    assert_at(&refused(&text), "network.fail_rate", line_of(&text, "fail_rate"));
}

/// A negative arrival rate is refused by the coordinator's schema checks,
/// reported under the scenario's key path.
#[test]
fn negative_arrival_rate() {
    let text = small_with("").replacen("rate_per_sec = 5.0", "rate_per_sec = -1.0", 1);
    assert_at(
        &refused(&text),
        "coordinator.arrivals[0].rate_per_sec",
        line_of(&text, "rate_per_sec"),
    );
}

/// A fault naming a host that does not exist is refused.
#[test]
fn fault_on_unknown_host() {
    let text = small_with("[[faults]]\nat_ms = 500\naction = \"crash\"\nhost = \"vllm-9\"");
    let err = refused(&text);
    assert_at(&err, "faults[0].host", line_of(&text, "vllm-9"));
    assert!(err.to_string().contains("unknown host"), "{err}");
}

/// A link fault with an unknown end is refused at that end.
#[test]
fn partition_with_unknown_end() {
    let text = small_with("[[faults]]\nat_ms = 500\naction = \"partition\"\nbetween = [\"agent\", \"nowhere\"]");
    assert_at(&refused(&text), "faults[0].between[1]", line_of(&text, "nowhere"));
}

/// Restarting a host that was never crashed is refused.
#[test]
fn restart_without_crash() {
    let text = small_with("[[faults]]\nat_ms = 500\naction = \"restart\"\nhost = \"agent\"");
    assert_at(
        &refused(&text),
        "faults[0].action",
        line_of(&text, "action = \"restart\""),
    );
}

/// A cancel of a job that can never exist is refused.
#[test]
fn cancel_of_a_job_that_never_exists() {
    let text = small_with("[[coordinator.cancels]]\nkind = \"at\"\njob = 500\nat_ms = 1000");
    let err = refused(&text);
    assert_at(&err, "coordinator.cancels[0].job", line_of(&text, "job = 500"));
    assert!(err.to_string().contains("never exist"), "{err}");
}

/// An opt-out of an unknown rule, or without a reason, is refused.
#[test]
fn bad_rule_opt_outs() {
    let text = small_with("[[expect.skip_rules]]\nrule = \"no_such_rule\"\nwhy = \"because\"");
    assert_at(
        &refused(&text),
        "expect.skip_rules[0].rule",
        line_of(&text, "no_such_rule"),
    );
    let text = small_with("[[expect.skip_rules]]\nrule = \"hosts_stay_up\"\nwhy = \" \"");
    assert_at(&refused(&text), "expect.skip_rules[0].why", line_of(&text, "why ="));
}

/// An unknown error code in the expectations is refused.
#[test]
fn unknown_error_code() {
    let text = small_with("[expect.error_codes]\nout_of_capacty = { max = 3 }");
    assert_at(
        &refused(&text),
        "expect.error_codes.out_of_capacty",
        line_of(&text, "out_of_capacty"),
    );
}

/// An agent limit out of range is reported under `[agent]`.
#[test]
fn agent_limit_out_of_range() {
    let text = small_with("").replacen("max_concurrent = 2", "max_concurrent = 0", 1);
    assert_at(
        &refused(&text),
        "agent.max_concurrent",
        line_of(&text, "max_concurrent"),
    );
}

/// Broken TOML syntax is located too.
#[test]
fn syntax_error() {
    let text = "name = \"x\"\nduration_ms = [1,\n";
    let err = refused(text);
    assert_eq!(err.key(), Some("(syntax)"));
    assert_eq!(err.line_column(), Some((2, 18)), "{err}");
}

/// Garbage input of many shapes never panics.
#[test]
fn garbage_never_panics() {
    for text in [
        "",
        "=",
        "[[",
        "name = 1",
        "[agent]\nmax_concurrent = -1",
        "faults = 3",
        "[[faults]]\nat_ms = 1",
        "\u{0}\u{1}",
    ] {
        let _ = parse("bad.toml", text);
    }
}

/// `simctl check` exits 2 on a bad file, naming file, line, column and key.
#[test]
fn check_command_names_the_place() {
    let dir = temp_dir("check");
    let text = small_with("[[faults]]\nat_ms = 500\naction = \"crash\"\nhost = \"ghost\"");
    let file = write(&dir, "bad.toml", &text);
    let output = simctl(&["check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let line = line_of(&text, "ghost");
    let expected = format!("{}:{line}:8: `faults[0].host`: unknown host \"ghost\"", file.display());
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    let hosts = "(hosts: \"agent\", \"coordinator\", \"vllm-1\")";
    assert!(
        stderr(&output).contains(hosts),
        "valid hosts not listed: {}",
        stderr(&output)
    );
}

/// A missing file exits 2, naming it.
#[test]
fn missing_file_is_bad_input() {
    let output = simctl(&["check", "/nonexistent/scenario.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("/nonexistent/scenario.toml"));
}

/// A missing required key is named with its full path, at its table.
#[test]
fn missing_key() {
    let text = "name = \"x\"\nduration_ms = 5\n[[backends]]\nhost = \"b\"\nkind = \"vllm\"\n";
    let err = refused(text);
    assert_eq!(err.key(), Some("backends[0].models"), "{err}");
    assert!(err.to_string().contains("missing field `models`"), "{err}");
}
