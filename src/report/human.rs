//! The human summary: for one run, outcomes and error codes, latency
//! percentiles, throughput, rules, expectations, trace hash and speed; for
//! many, one line per run and the full story of each failure. Every
//! violation names its rule, job, simulated time and seed, followed by the
//! command that replays it.

use std::fmt::Write;

use super::line::{Columns, run_line, status};
use crate::metrics::{Metrics, OUTCOME_KEYS, Percentiles};
use crate::runner::RunReport;

/// The summary of `reports` as text.
pub fn render(reports: &[RunReport]) -> String {
    let mut out = String::new();
    if let [single] = reports {
        full(&mut out, single);
    } else {
        let columns = Columns::of_reports(reports);
        for report in reports {
            let _ = writeln!(out, "{}", run_line(report, &columns));
        }
        for report in reports.iter().filter(|r| !r.passed() || r.nondeterministic()) {
            out.push('\n');
            full(&mut out, report);
        }
        totals(&mut out, reports);
    }
    out
}

/// A swarm run's drawn values, `key = value` in `[swarm]` order.
fn swarm_draws(r: &RunReport) -> String {
    r.swarm.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn totals(out: &mut String, reports: &[RunReport]) {
    let passed = reports.iter().filter(|r| r.passed() && !r.nondeterministic()).count();
    let nondeterministic = reports.iter().filter(|r| r.nondeterministic()).count();
    let harness_errors = reports.iter().filter(|r| r.harness_error.is_some()).count();
    let sim_s: f64 = reports.iter().map(|r| r.sim_ms / 1e3).sum();
    let wall_s: f64 = reports.iter().map(|r| r.wall_ms / 1e3).sum();
    let _ = writeln!(
        out,
        "\n{} run(s): {passed} passed, {} failed, {nondeterministic} nondeterministic, \
         {harness_errors} harness error(s); \
         {sim_s:.1} s simulated in {wall_s:.2} s of run time ({:.0}x per thread)",
        reports.len(),
        reports.len() - passed,
        if wall_s > 0.0 { sim_s / wall_s } else { f64::INFINITY }
    );
}

fn full(out: &mut String, r: &RunReport) {
    let _ = writeln!(out, "{} {} (seed {}) — {}", status(r), r.scenario, r.seed, r.file);
    if let Some(error) = &r.harness_error {
        let _ = writeln!(out, "  HARNESS ERROR seed {}: {error} (the run was not judged)", r.seed);
    }
    if !r.swarm.is_empty() {
        let _ = writeln!(out, "  swarm        {}", swarm_draws(r));
    }
    outcomes(out, &r.metrics);
    latency(out, &r.metrics);
    let m = &r.metrics;
    let _ = writeln!(
        out,
        "  cancels      sent {}, won {}, lost to completion {}",
        m.cancels.sent, m.cancels.won, m.cancels.lost_to_completion
    );
    let _ = writeln!(
        out,
        "  throughput   {:.2} jobs done/s, {:.1} chunks/s, {:.1} KiB/s over {:.3} s (simulated, to the last event)",
        m.done_per_sec,
        m.chunks_per_sec,
        m.bytes_per_sec / 1024.0,
        m.sim_ms / 1e3
    );
    let skipped: Vec<String> = r.skip_rules.iter().map(|s| format!("{} ({})", s.rule, s.why)).collect();
    let _ = writeln!(
        out,
        "  rules        {} checked, {} skipped{}, {} violation(s)",
        r.verdict.checked.len(),
        r.verdict.skipped.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(": {}", skipped.join("; "))
        },
        r.verdict.violations.len()
    );
    super::judged::human(out, r);
    if !r.verdict.not_judged.is_empty() {
        let _ = writeln!(
            out,
            "  not judged   {} rule(s) cannot judge an agent process from outside, not judged live: {}",
            r.verdict.not_judged.len(),
            r.verdict.not_judged.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "  expect       {} checked, {} unmet",
        r.expect.checked,
        r.expect.unmet.len()
    );
    let _ = writeln!(
        out,
        "  settled      {}",
        if r.settled { "yes" } else { "no (settle_ms_max ran out)" }
    );
    if let Some(live) = &r.live {
        crate::live::report::human(out, r, live);
    } else {
        let _ = writeln!(
            out,
            "  trace        sha256 {} ({} events)",
            r.trace_hash, r.trace_events
        );
        let _ = writeln!(
            out,
            "  speed        {:.0}x ({:.3} s simulated, scripted phase + settling, in {:.3} s wall)",
            r.speed(),
            r.sim_ms / 1e3,
            r.wall_ms / 1e3
        );
    }
    determinism(out, r);
    failures(out, r);
}

fn outcomes(out: &mut String, m: &Metrics) {
    let parts: Vec<String> = OUTCOME_KEYS
        .iter()
        .skip(1)
        .map(|k| format!("{k} {}", m.outcomes.get(*k).copied().unwrap_or(0)))
        .collect();
    let _ = writeln!(
        out,
        "  jobs         {}: {}",
        m.outcomes.get("jobs").copied().unwrap_or(0),
        parts.join(", ")
    );
    let codes: Vec<String> = m.error_codes.iter().map(|(code, n)| format!("{code} {n}")).collect();
    let _ = writeln!(
        out,
        "  error codes  {}",
        if codes.is_empty() {
            "none".to_owned()
        } else {
            codes.join(", ")
        }
    );
}

fn latency(out: &mut String, m: &Metrics) {
    let _ = writeln!(
        out,
        "  latency      {:<12} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "(sim ms)", "p50", "p90", "p99", "max", "n"
    );
    for (name, p) in [
        ("ttfc", &m.ttfc_ms),
        ("inter-chunk", &m.inter_chunk_ms),
        ("end-to-end", &m.e2e_ms),
    ] {
        let Percentiles {
            count,
            p50,
            p90,
            p99,
            max,
        } = *p;
        let _ = writeln!(
            out,
            "               {name:<12} {p50:>9.1} {p90:>9.1} {p99:>9.1} {max:>9.1} {count:>7}"
        );
    }
    let _ = writeln!(
        out,
        "               (end-to-end: job written → its job_done; jobs that ended job_done only)"
    );
}

fn determinism(out: &mut String, r: &RunReport) {
    let Some(check) = &r.determinism else { return };
    match &check.divergence {
        None => {
            let _ = writeln!(out, "  determinism  same trace twice");
        }
        Some(d) => {
            let _ = writeln!(
                out,
                "  determinism  TRACES DIFFER: second run hashed {}",
                check.second_hash
            );
            let _ = writeln!(out, "    first diverging event #{}:", d.index);
            let _ = writeln!(out, "      run 1: {}", d.first.as_deref().unwrap_or("(trace ended)"));
            let _ = writeln!(out, "      run 2: {}", d.second.as_deref().unwrap_or("(trace ended)"));
        }
    }
}

fn failures(out: &mut String, r: &RunReport) {
    for v in &r.verdict.violations {
        let _ = writeln!(
            out,
            "  VIOLATION    {} seed {} job {} at {:.3} s: {}",
            v.rule,
            r.seed,
            v.job.as_deref().unwrap_or("-"),
            v.at_us as f64 / 1e6,
            v.detail
        );
    }
    for u in &r.expect.unmet {
        let _ = writeln!(out, "  UNMET        expect.{}: {}", u.key, u.detail);
        for worst in &u.worst {
            let _ = writeln!(out, "                 {worst}");
        }
    }
    if !r.passed() || r.nondeterministic() {
        let _ = writeln!(out, "  replay       {}", r.replay_command());
    }
}
