//! Submission names agree with the scenario: the `#N` that violations,
//! `UNMET` lines, `simctl trace --job N` and the HTML report print is the
//! number of the scenario's `job = N` keys, however many re-sends and
//! malformed frames the coordinator recorded before it; and every event
//! kind the trace can hold is described in docs/TRACE.md.

use std::path::Path;

use simctl::trace::examples::every_event_kind;
use simctl::trace::{EVENT_KINDS, JobKind, handmade::TraceBuilder};
use simctl::trace::{TraceView, submission_names};

use crate::support::{simctl, stderr, stdout, temp_dir};

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path).display().to_string()
}

/// `simctl trace --job 5` on duplicate-jobs.toml prints the scenario's job 5
/// (sent at 0.5 s + 5 × 250 ms, with its four re-sends 20, 60, 100 and
/// 140 ms later), named `#5` on every line; its re-sends are `#5 re-send K`.
#[test]
fn trace_job_n_is_the_scenarios_job_n() {
    let dir = temp_dir("names");
    let trace = dir.join("t.jsonl");
    let output = simctl(&[
        "run",
        &repo("scenarios/duplicate-jobs.toml"),
        "--seed",
        "1",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = simctl(&["trace", trace.to_str().unwrap(), "--job", "5"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let heading = text.lines().next().unwrap();
    assert!(heading.contains("(submission #5, job "), "{heading}");
    let sent: Vec<&str> = text.lines().filter(|l| l.contains(" job_sent ")).collect();
    assert_eq!(sent.len(), 1, "{text}");
    assert!(sent[0].trim_start().starts_with("1.750000 s  job_sent"), "{text}");
    assert!(
        sent[0].contains(" #5 job ") && sent[0].contains("kind=normal"),
        "{text}"
    );
    for (nth, at) in [(1, "1.770000"), (2, "1.810000"), (3, "1.850000"), (4, "1.890000")] {
        let output = simctl(&["trace", trace.to_str().unwrap(), "--job", &format!("#5 re-send {nth}")]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let text = stdout(&output);
        let sent = text.lines().find(|l| l.contains(" job_sent ")).unwrap_or_default();
        assert!(sent.trim_start().starts_with(&format!("{at} s")), "{text}");
        assert!(sent.contains(&format!(" #5 re-send {nth} job ")), "{text}");
    }
}

/// A malformed frame written before a job does not shift the job's name:
/// the oracle's label says `submission #0` for the first job although its
/// record index is 1, and the broken frame is `malformed 1`.
#[test]
fn labels_name_arrivals_not_records() {
    let trace = TraceBuilder::new()
        .session(0, 1)
        .job_of_kind(5, "bad", 1, 1_000, JobKind::Malformed)
        .job(10, "a", 1, 1_000)
        .job_of_kind(12, "a", 1, 1_000, JobKind::Duplicate)
        .build();
    let view = TraceView::build(&trace.events);
    let a = &view.jobs["a"];
    assert_eq!(a.sends[0].sub, 1);
    assert_eq!(a.sends[0].label(), "submission #0");
    assert_eq!(a.sends[1].label(), "#0 re-send 1");
    assert_eq!(view.jobs["bad"].sends[0].label(), "malformed 1");
    let names = submission_names(&trace.events);
    assert_eq!(names.len(), 3);
}

/// Every event kind the trace can hold (its `ev` tag) has a row in
/// docs/TRACE.md; the list of tags is checked against the code, so the doc
/// cannot fall behind a new event.
#[test]
fn every_event_kind_is_documented() {
    let doc = std::fs::read_to_string(repo("docs/TRACE.md")).unwrap();
    for kind in EVENT_KINDS {
        assert!(
            doc.contains(&format!("| `{kind}` |")),
            "docs/TRACE.md has no row for `{kind}`"
        );
    }
    // The list is the code's (`EventKind::tag` has no wildcard arm, so a new
    // variant must be named there): a serialised instance of every variant
    // carries its tag, and the tags of all of them are the list.
    let mut seen = Vec::new();
    for kind in every_event_kind() {
        let value = serde_json::to_value(&kind).unwrap();
        assert_eq!(value["ev"].as_str(), Some(kind.tag()), "{value}");
        seen.push(kind.tag());
    }
    assert_eq!(seen, EVENT_KINDS);
}
