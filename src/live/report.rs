//! The live run's lines of the human report: no trace hash (a live run is
//! not deterministic), real time instead of speed, and the agent's process
//! files.

use std::fmt::Write;

use super::LiveInfo;
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
    let _ = writeln!(out, "  agent        {} ({}), {ready}", live.agent, live.adapter);
    let _ = writeln!(out, "  run dir      {}", live.run_dir);
    for p in &live.processes {
        let end = p.end.as_deref().unwrap_or("running");
        let _ = writeln!(out, "    #{} {end}", p.incarnation);
        let _ = writeln!(out, "       stdout {}", p.stdout);
        let _ = writeln!(out, "       stderr {}", p.stderr);
    }
}
