//! `simctl run --html` and `simctl report --html`: the page of a run, the
//! page of its saved trace, and a sweep's index.

use serde_json::Value;

use crate::support::{simctl, small_fixture, small_with, stderr, stdout, temp_dir, write};

/// The JSON a page embeds for its script.
fn embedded_data(page: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"data\">";
    let start = page.find(open).expect("the page embeds its data") + open.len();
    let end = start + page[start..].find("</script>").expect("the data element ends");
    serde_json::from_str(&page[start..end]).expect("the embedded data is JSON")
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A scenario that fails: the coordinator rejects every handshake, so the
/// world cannot settle (violations), and `done` is unmet.
fn failing(dir: &std::path::Path) -> std::path::PathBuf {
    let text = small_with("[coordinator.handshake]\nmode = \"reject\"").replacen(
        "settle_ms_max = 20000",
        "settle_ms_max = 2000",
        1,
    );
    write(dir, "reject.toml", &text)
}

/// A failing run's page carries its verdict, violations, unmet [expect]
/// row and lanes; the page of its saved trace holds the same data.
#[test]
fn run_page_equals_the_page_of_its_saved_trace() {
    let dir = temp_dir("html-run");
    let file = failing(&dir);
    let (page, trace) = (dir.join("run.html"), dir.join("run.jsonl"));
    let output = simctl(&[
        "run",
        file.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let data = embedded_data(&read(&page));
    assert_eq!(data["summary"]["verdict"], "FAIL");
    assert_eq!(data["summary"]["seed"], 7);
    let violations = data["summary"]["violations"].as_array().unwrap();
    assert!(
        violations.iter().any(|v| v["rule"] == "settles_within_bound"),
        "{violations:?}"
    );
    let markers = data["timeline"]["markers"].as_array().unwrap();
    assert_eq!(
        markers.iter().filter(|m| m["kind"] == "violation").count(),
        violations.len()
    );
    let unmet: Vec<&Value> = data["summary"]["expect"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["met"] == false)
        .collect();
    assert_eq!(unmet.len(), 1);
    assert_eq!(
        (&unmet[0]["key"], &unmet[0]["got"]),
        (&"outcomes.done".into(), &"0".into())
    );
    assert_eq!(data["timeline"]["lanes"].as_array().unwrap().len(), 5);
    assert!(
        dir.join("run.run.json").is_file(),
        "the summary is written beside the trace"
    );

    let again = dir.join("again.html");
    let output = simctl(&["report", trace.to_str().unwrap(), "--html", again.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut saved = embedded_data(&read(&again));
    let mut live = data;
    for data in [&mut saved, &mut live] {
        data["source"] = Value::Null;
    }
    assert_eq!(saved, live, "the saved trace's page holds the run's data");
}

/// A sweep writes an index linking one page per failing run, and none
/// for a passing one.
#[test]
fn sweep_writes_an_index_and_a_page_per_failing_run() {
    let dir = temp_dir("html-sweep");
    let unmet = small_with("[expect.error_codes]\nout_of_capacity = { min = 100 }").replacen(
        "name = \"small\"",
        "name = \"small-unmet\"",
        1,
    );
    let unmet = write(&dir, "unmet.toml", &unmet);
    let fixture = small_fixture();
    let index = dir.join("sweep.html");
    let output = simctl(&[
        "run",
        fixture.to_str().unwrap(),
        unmet.to_str().unwrap(),
        "--seeds",
        "1..3",
        "--html",
        index.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let html = read(&index);
    assert!(html.contains("2 of 4 run(s) failed"), "{html}");
    for seed in 1..3 {
        let page = dir.join(format!("sweep.small-unmet.{seed}.html"));
        assert!(
            html.contains(&format!("<a href=\"sweep.small-unmet.{seed}.html\">FAIL</a>")),
            "{html}"
        );
        let data = embedded_data(&read(&page));
        assert_eq!(
            (&data["summary"]["seed"], &data["summary"]["verdict"]),
            (&seed.into(), &"FAIL".into())
        );
        assert!(
            !dir.join(format!("sweep.small.{seed}.html")).exists(),
            "no page for a passing run"
        );
    }
}

/// `report` names a broken trace line, and without a summary still writes
/// a page, saying what it lacks.
#[test]
fn report_of_bad_or_bare_traces() {
    let dir = temp_dir("html-report");
    let bad = write(
        &dir,
        "bad.jsonl",
        "{\"at_us\":0,\"ev\":\"phase\",\"phase\":\"scripted\"}\n{oops\n",
    );
    let out = dir.join("bad.html");
    let output = simctl(&["report", bad.to_str().unwrap(), "--html", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("bad.jsonl: line 2:"), "{}", stderr(&output));
    assert!(!out.exists());

    let bare = write(
        &dir,
        "bare.jsonl",
        "{\"at_us\":5,\"ev\":\"session_opened\",\"conn\":1}\n",
    );
    let out = dir.join("bare.html");
    let output = simctl(&["report", bare.to_str().unwrap(), "--html", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("no run summary beside"), "{}", stderr(&output));
    let data = embedded_data(&read(&out));
    assert!(data["summary"].is_null());
    assert_eq!(data["timeline"]["spans"][0]["label"], "conn 1: open at the end");
}
