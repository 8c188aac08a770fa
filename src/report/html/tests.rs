//! The page of a failing run, made from a hand-made trace judged by the
//! real oracle: it must carry the violation's marker and the job's row.

use std::collections::BTreeSet;

use serde_json::Value;

use super::render;
use super::summary::{Limits, RunSummary, SUMMARY_FORMAT, ViolationRow};
use crate::oracle::{OracleConfig, judge};
use crate::trace::Trace;
use crate::trace::handmade::TraceBuilder;

/// The JSON the page embeds for its script.
pub fn embedded_data(page: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"data\">";
    let start = page.find(open).expect("the page embeds its data") + open.len();
    let end = start + page[start..].find("</script>").expect("the data element ends");
    serde_json::from_str(&page[start..end]).expect("the embedded data is JSON")
}

/// A run in which job `twice` gets two terminal frames (never_two_terminals)
/// beside a job that completes and one rejected for capacity.
fn failing_trace() -> Trace {
    TraceBuilder::new()
        .session(0, 1)
        .job(10, "ok", 1, 5_000)
        .admitted(11, "ok", 1)
        .backend(12, Some(60), "ok", b"data: x\n\n", "complete")
        .chunk(40, "ok", 1, b"hello")
        .done(61, "ok", 1)
        .freed(61, "ok", 0)
        .job(20, "twice", 1, 5_000)
        .admitted(21, "twice", 2)
        .done(50, "twice", 1)
        .done(55, "twice", 1)
        .freed(50, "twice", 1)
        .job(30, "full", 1, 5_000)
        .error(31, "full", 1, "out_of_capacity")
        .build()
}

fn summary_of(trace: &Trace) -> RunSummary {
    let verdict = judge(trace, &OracleConfig::for_handmade_traces(), &BTreeSet::new());
    RunSummary {
        format: SUMMARY_FORMAT,
        file: "handmade.toml".into(),
        scenario: "handmade <failing>".into(),
        description: "A hand-made trace with a job answered twice.".into(),
        seed: 3,
        verdict: "FAIL".into(),
        replay: "simctl run handmade.toml --seed 3".into(),
        trace_hash: trace.hash(),
        trace_events: trace.events.len(),
        settled: true,
        sim_ms: 100.0,
        swarm: Vec::new(),
        rules_checked: verdict.checked.len(),
        rules_skipped: Vec::new(),
        violations: verdict
            .violations
            .iter()
            .map(|v| ViolationRow {
                rule: v.rule.to_owned(),
                job: v.job.clone(),
                at_us: v.at_us,
                detail: v.detail.clone(),
            })
            .collect(),
        expect: Vec::new(),
        limits: Limits {
            max_concurrent: 2,
            outbound_queue_bytes_max: 1_000,
            backends: vec![("vllm-1".into(), 8)],
        },
        notes: Vec::new(),
    }
}

/// The failing run's page holds the violation's marker, naming rule and
/// job, and the job's row with its outcome.
#[test]
fn failing_run_page_marks_the_violation_and_lists_the_job() {
    let trace = failing_trace();
    let summary = summary_of(&trace);
    let violation = summary
        .violations
        .iter()
        .find(|v| v.rule == "never_two_terminals")
        .expect("the oracle flags the second terminal frame");
    assert_eq!(violation.job.as_deref(), Some("twice"));
    let lines = trace.jsonl_lines();
    let page = render(lines.iter().map(String::as_str), Some(&summary), "test").unwrap();
    assert!(page.contains("<canvas id=\"timeline\">"));
    assert!(page.contains("<title>FAIL handmade &lt;failing&gt; seed 3</title>"));
    let data = embedded_data(&page);

    let markers = data["timeline"]["markers"].as_array().unwrap();
    let marker = markers
        .iter()
        .find(|m| m["kind"] == "violation" && m["code"] == "never_two_terminals")
        .expect("a violation marker");
    assert_eq!(marker["job"], "twice");
    assert_eq!(marker["at_ms"], violation.at_us as f64 / 1e3);
    assert_eq!(marker["text"], violation.detail.as_str());
    let code = markers
        .iter()
        .find(|m| m["kind"] == "code")
        .expect("an error code marker");
    assert_eq!(
        (code["code"].as_str(), code["job"].as_str()),
        (Some("out_of_capacity"), Some("full"))
    );

    let columns: Vec<&str> = data["jobs"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let cell = |row: &Value, name: &str| row[columns.iter().position(|c| *c == name).unwrap()].clone();
    let rows = data["jobs"]["rows"].as_array().unwrap();
    let row = rows.iter().find(|r| cell(r, "job") == "twice").expect("the job's row");
    assert_eq!(cell(row, "outcome"), "done");
    assert_eq!(cell(row, "sent_ms"), 20.0);
    assert_eq!(cell(row, "terminal_ms"), 50.0);
    assert_eq!(data["summary"]["verdict"], "FAIL");
}

/// The lanes hold what the trace says: slots against max_concurrent, the
/// coordinator's in-flight count, the backend's stream, the chunk rate.
#[test]
fn lanes_follow_the_trace() {
    let trace = failing_trace();
    let summary = summary_of(&trace);
    let lines = trace.jsonl_lines();
    let data = embedded_data(&render(lines.iter().map(String::as_str), Some(&summary), "test").unwrap());
    let lanes = data["timeline"]["lanes"].as_array().unwrap();
    let lane = |id: &str| {
        lanes
            .iter()
            .find(|l| l["id"] == id)
            .unwrap_or_else(|| panic!("lane {id}"))
    };
    let peak = |id: &str| {
        lane(id)["series"][0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[2].as_f64().unwrap())
            .fold(0.0, f64::max)
    };
    assert_eq!(peak("coordinator_in_flight"), 3.0);
    assert_eq!(peak("agent_slots"), 2.0);
    assert_eq!(peak("backend_streams"), 1.0);
    assert!(peak("chunk_rate") > 0.0);
    assert_eq!(lane("agent_slots")["limits"][0]["value"], 2.0);
    assert_eq!(lane("backend_streams")["limits"][1]["name"], "vllm-1 max_num_seqs");
    // The agent reports only new highs of its outbound queue: the lane is
    // titled as the high water it is, never as the queue's level.
    assert_eq!(lane("outbound_queue")["title"], "Outbound queue high water (agent)");
}

/// Markup in the scenario's text cannot end the data element early.
#[test]
fn text_in_the_data_cannot_close_the_script() {
    let trace = failing_trace();
    let mut summary = summary_of(&trace);
    summary.description = "</script><script>alert(1)</script>".into();
    let lines = trace.jsonl_lines();
    let page = render(lines.iter().map(String::as_str), Some(&summary), "test").unwrap();
    assert!(!page.contains("</script><script>alert"));
    assert_eq!(
        embedded_data(&page)["summary"]["description"],
        summary.description.as_str()
    );
}

/// A saved trace without its summary still makes a page, with no header.
#[test]
fn a_trace_without_summary_still_renders() {
    let trace = failing_trace();
    let lines = trace.jsonl_lines();
    let data = embedded_data(&render(lines.iter().map(String::as_str), None, "t.jsonl").unwrap());
    assert!(data["summary"].is_null());
    assert_eq!(data["source"], "t.jsonl");
    assert_eq!(data["events"], trace.events.len());
}
