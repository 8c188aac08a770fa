//! The text of a [`Digest`], printed by the binary after the summary.

use std::fmt::{self, Display, Formatter};

use super::{ConnectionDigest, Digest, HeartbeatFigures, KindAnswers, Races, Waiting};
use crate::checks::CheckReport;

/// Violations printed per check; the record holds them all.
const VIOLATIONS_SHOWN: usize = 5;

/// A heartbeat figure: whole numbers as such, others to 3 decimals.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn secs(us: u64) -> String {
    format!("{:.3} s", us as f64 / 1e6)
}

fn connection(f: &mut Formatter<'_>, c: &ConnectionDigest, end_us: u64) -> fmt::Result {
    write!(f, "  conn {}: connected {}", c.conn, secs(c.connected_us))?;
    match c.auth_ok_us {
        Some(at) => write!(f, ", auth_ok {}", secs(at))?,
        None => write!(f, ", never authenticated")?,
    }
    match c.closed_us {
        Some(at) => write!(f, ", closed {} ({})", secs(at), c.close_reason)?,
        None => write!(f, ", still open")?,
    }
    match c.last_read_us {
        Some(at) => writeln!(
            f,
            "; last frame read {} ({} before the end), {} frames read",
            secs(at),
            secs(end_us.saturating_sub(at)),
            c.frames_read
        ),
        None => writeln!(f, "; nothing read"),
    }
}

fn heartbeats(f: &mut Formatter<'_>, h: &HeartbeatFigures) -> fmt::Result {
    write!(f, "heartbeat figures: {} heartbeats", h.count)?;
    for (name, r) in &h.ranges {
        write!(f, "; {name} {}..{}", num(r.min), num(r.max))?;
        if r.count < h.count {
            write!(f, " (in {} of them)", r.count)?;
        }
    }
    if h.count > 0 {
        let codes = if h.last_error_codes.is_empty() {
            "none".to_owned()
        } else {
            h.last_error_codes.join(", ")
        };
        write!(f, "; last_error_code seen: {codes}")?;
    }
    writeln!(f)
}

fn answers(f: &mut Formatter<'_>, answers: &[KindAnswers]) -> fmt::Result {
    if answers.is_empty() {
        return writeln!(f, "malformed and duplicate submissions: none sent");
    }
    writeln!(f, "what came back for malformed and duplicate submissions:")?;
    for a in answers {
        let got: Vec<String> = a.answers.iter().map(|(k, n)| format!("{k} {n}")).collect();
        write!(f, "  {}: {} sent", a.kind, a.sent)?;
        if let Some(expected) = &a.expected {
            write!(f, ", expected {expected}")?;
        }
        writeln!(f, "; got {}", got.join(", "))?;
    }
    Ok(())
}

fn waiting(f: &mut Formatter<'_>, waiting: &[Waiting]) -> fmt::Result {
    let in_flight: u64 = waiting.iter().filter(|w| w.state == "in_flight").map(|w| w.count).sum();
    if waiting.is_empty() {
        return writeln!(f, "without a terminal frame at the end: none");
    }
    writeln!(
        f,
        "without a terminal frame at the end: {in_flight} still in flight (the agent owes a terminal frame)"
    )?;
    for w in waiting {
        let more = if w.count > w.job_ids.len() as u64 { ", …" } else { "" };
        let note = if w.state == "cancelled" {
            " (cancel written; no reply is required)"
        } else {
            ""
        };
        writeln!(
            f,
            "  {} {}: {}{note}: {}{more}",
            w.kind,
            w.state,
            w.count,
            w.job_ids.join(", ")
        )?;
    }
    Ok(())
}

fn races(f: &mut Formatter<'_>, r: &Races) -> fmt::Result {
    if r.selected == 0 {
        return Ok(());
    }
    writeln!(
        f,
        "race_completion cancels: {} selected, {} fired; races run (cancel written before the terminal frame was \
         read) {}, stale (terminal read first) {}, no terminal {}",
        r.selected, r.fired, r.run, r.stale, r.no_terminal
    )
}

fn check(f: &mut Formatter<'_>, c: &CheckReport) -> fmt::Result {
    let verdict = if c.violation_count() == 0 { "ok  " } else { "FAIL" };
    write!(f, "  {verdict} {}: judged {}", c.name, c.judged)?;
    for (why, n) in &c.excused {
        write!(f, ", excused {n} ({why})")?;
    }
    writeln!(f, " — {}", c.rule)?;
    for v in c.violations.iter().take(VIOLATIONS_SHOWN) {
        write!(f, "       at {}", secs(v.at_us))?;
        if let Some(conn) = v.conn {
            write!(f, " conn {conn}")?;
        }
        if let Some(id) = &v.job_id {
            write!(f, " job {id}")?;
        }
        writeln!(f, ": {}", v.what)?;
    }
    let hidden = c.violation_count().saturating_sub(VIOLATIONS_SHOWN as u64);
    if hidden > 0 {
        writeln!(f, "       … and {hidden} more (see the record)")?;
    }
    Ok(())
}

impl Display for Digest {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "connections (end at {}):", secs(self.end_us))?;
        if self.connections.is_empty() {
            writeln!(f, "  none: no agent connected")?;
        }
        for c in &self.connections {
            connection(f, c, self.end_us)?;
        }
        heartbeats(f, &self.heartbeats)?;
        answers(f, &self.answers)?;
        waiting(f, &self.waiting)?;
        races(f, &self.races)?;
        let found = self.check_violations();
        writeln!(
            f,
            "coordinator checks: {} rules, {found} violation{}",
            self.checks.len(),
            if found == 1 { "" } else { "s" }
        )?;
        for c in &self.checks {
            check(f, c)?;
        }
        Ok(())
    }
}
