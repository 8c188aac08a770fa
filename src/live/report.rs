//! The live run's lines of the human report: no trace hash (a live run is
//! not deterministic), real time instead of speed, the agent's resident
//! set against its bound, the `[expect]` bounds `[live.expect]` replaced,
//! and the agent's process files.

use std::fmt::Write;

use super::LiveInfo;
use super::memory::MemoryReport;
use crate::runner::RunReport;

/// The trace, time and agent lines of a live run's full report.
pub fn human(out: &mut String, r: &RunReport, live: &LiveInfo) {
    let _ = writeln!(
        out,
        "  trace        {} events; live run: not deterministic, so no trace hash",
        r.trace_events
    );
    let ready = live
        .ready_ms
        .map_or_else(|| "never ready".to_owned(), |ms| format!("ready after {:.0} ms", ms));
    let _ = writeln!(
        out,
        "  time         {:.3} s of script time in {:.3} s wall (real time, slack {} ms on timing bounds)",
        r.sim_ms / 1e3,
        r.wall_ms / 1e3,
        live.slack_ms
    );
    if let Some(memory) = &live.memory {
        let _ = writeln!(out, "  memory       {}", memory_line(memory));
    }
    if !live.expect_overrides.is_empty() {
        let replaced: Vec<String> = (live.expect_overrides.iter())
            .map(|o| match &o.simulated {
                Some(simulated) => format!("{} {} (simulated: {simulated})", o.key, o.live),
                None => format!("{} {} (none simulated)", o.key, o.live),
            })
            .collect();
        let _ = writeln!(
            out,
            "  live expect  [live.expect] holds {} key(s) to live bounds: {}; why: {}",
            replaced.len(),
            replaced.join(", "),
            live.expect_why
        );
    }
    let _ = writeln!(out, "  agent        {} ({}), {ready}", live.agent, live.adapter);
    let _ = writeln!(out, "  run dir      {}", live.run_dir);
    for p in &live.processes {
        let end = p.end.as_deref().unwrap_or("running");
        let _ = writeln!(out, "    #{} {end}", p.incarnation);
        let _ = writeln!(out, "       stdout {}", p.stdout);
        let _ = writeln!(out, "       stderr {}", p.stderr);
    }
}

/// `agent resident set: max N KiB at T s (reads paused), S samples (P while
/// reads were paused); bound B KiB (from)`.
pub fn memory_line(memory: &MemoryReport) -> String {
    let max = memory.max.map_or_else(
        || "not sampled".to_owned(),
        |m| {
            let paused = if m.reads_paused { ", reads paused" } else { "" };
            format!(
                "max {} KiB at {:.3} s (agent #{}{paused})",
                m.rss_bytes / 1024,
                m.at_us as f64 / 1e6,
                m.incarnation
            )
        },
    );
    format!(
        "agent resident set {max}, {} sample(s), {} while reads were paused; bound {} KiB ({})",
        memory.samples,
        memory.samples_reads_paused,
        memory.bound_bytes / 1024,
        memory.bound_from
    )
}
