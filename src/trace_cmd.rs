//! `simctl trace FILE.jsonl [--job N|JOB_ID] [--around TIME [--window TIME]]`:
//! a trace's events in readable form, one per line, so that a violation or an
//! `UNMET` line that names submission `#N` at some time can be read without a
//! script. Submissions are named as everywhere else ([`crate::trace::name`]):
//! `#N` is the scenario's `job = N`. The JSONL is read as plain JSON objects (any event kind, even one
//! this build does not know, prints), in file order. Every field of
//! every kind is described in docs/TRACE.md.

use std::io::{BufRead, BufReader, Write};

use serde_json::{Map, Value};

use std::collections::BTreeMap;

use crate::app::Outcome;
use crate::cli::TraceArgs;
use crate::trace::name::{NameKind, SubName, name_submissions};

/// Longest trace line read; a longer one is refused (a trace line is a few
/// hundred bytes).
pub const TRACE_LINE_BYTES_MAX: usize = 1 << 20;

/// One event of the file.
struct Line {
    event: Map<String, Value>,
}

impl Line {
    fn at_us(&self) -> u64 {
        self.event.get("at_us").and_then(Value::as_u64).unwrap_or(0)
    }

    fn job(&self) -> Option<&str> {
        self.event.get("job").and_then(Value::as_str)
    }

    /// The submission the event names (`sub`), if any.
    fn sub(&self) -> Option<u64> {
        self.event.get("sub").and_then(Value::as_u64)
    }

    /// Whether the event names submission `n` (`sub`, or in `subs`).
    fn names_sub(&self, n: u64) -> bool {
        self.sub() == Some(n)
            || self
                .event
                .get("subs")
                .and_then(Value::as_array)
                .is_some_and(|subs| subs.iter().any(|s| s.as_u64() == Some(n)))
    }

    /// Whether the event could name a submission but names none.
    fn names_no_sub(&self) -> bool {
        self.event.get("sub").is_none_or(Value::is_null)
            && self
                .event
                .get("subs")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
    }
}

/// Runs `simctl trace`.
pub fn execute(args: &TraceArgs, out: &mut dyn Write, err: &mut dyn Write) -> Outcome {
    let lines = match read(args) {
        Ok(lines) => lines,
        Err(message) => {
            let _ = writeln!(err, "simctl: {message}");
            return Outcome::BadInput;
        }
    };
    let names = names_of(&lines);
    let (chosen, heading) = match select(&lines, &names, args) {
        Ok(chosen) => chosen,
        Err(message) => {
            let _ = writeln!(err, "simctl: {}: {message}", args.file.display());
            return Outcome::BadInput;
        }
    };
    let _ = writeln!(
        out,
        "{}: {} of {} events{heading}",
        args.file.display(),
        chosen.len(),
        lines.len()
    );
    for line in chosen {
        let _ = writeln!(out, "{}", render(&line.event, &names));
    }
    Outcome::Pass
}

fn read(args: &TraceArgs) -> Result<Vec<Line>, String> {
    let file = args.file.display();
    let handle = std::fs::File::open(&args.file).map_err(|e| format!("{file}: cannot read trace: {e}"))?;
    let mut lines = Vec::new();
    for (index, text) in BufReader::new(handle).lines().enumerate() {
        let number = index + 1;
        let text = text.map_err(|e| format!("{file}:{number}: cannot read trace: {e}"))?;
        if text.len() > TRACE_LINE_BYTES_MAX {
            return Err(format!(
                "{file}:{number}: line longer than {TRACE_LINE_BYTES_MAX} bytes"
            ));
        }
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(event)) if event.contains_key("ev") => lines.push(Line { event }),
            Ok(_) => return Err(format!("{file}:{number}: not a trace event (an object with `ev`)")),
            Err(e) => return Err(format!("{file}:{number}: not JSON: {e}")),
        }
    }
    Ok(lines)
}

/// The name of every submission the trace's `job_sent` and
/// `job_undeliverable` events number, by `sub`.
fn names_of(lines: &[Line]) -> BTreeMap<u64, SubName> {
    name_submissions(lines.iter().filter_map(|line| {
        let ev = line.event.get("ev").and_then(Value::as_str)?;
        if !matches!(ev, "job_sent" | "job_undeliverable") {
            return None;
        }
        let kind = line.event.get("kind").and_then(Value::as_str).unwrap_or("normal");
        let arrival = line.event.get("arrival").and_then(Value::as_u64);
        Some((line.sub()?, NameKind::of_trace_kind(kind), arrival))
    }))
}

/// The events `--job` and `--around` choose, and a heading saying which.
fn select<'a>(
    lines: &'a [Line],
    names: &BTreeMap<u64, SubName>,
    args: &TraceArgs,
) -> Result<(Vec<&'a Line>, String), String> {
    let mut chosen: Vec<&Line> = lines.iter().collect();
    let mut heading = Vec::new();
    if let Some(job) = &args.job {
        let (keep, what) = by_job(lines, names, job)?;
        chosen.retain(|line| keep(line));
        heading.push(what);
    }
    if let Some(around_us) = args.around {
        let (from, to) = (
            around_us.saturating_sub(args.window),
            around_us.saturating_add(args.window),
        );
        chosen.retain(|line| (from..=to).contains(&line.at_us()));
        heading.push(format!(
            "within {:.3} ms of {}",
            args.window as f64 / 1e3,
            seconds(around_us).trim_start()
        ));
    }
    let heading = if heading.is_empty() {
        String::new()
    } else {
        format!(" ({})", heading.join(", "))
    };
    Ok((chosen, heading))
}

type Keep<'a> = Box<dyn Fn(&Line) -> bool + 'a>;

/// `--job N`: submission `#N` (the scenario's `job = N`; also `#N re-send
/// K`, `malformed K`), plus events of its id that name no submission from
/// its first event until the id's next submission. `--job ID`: every event
/// of the job ids starting with `ID`.
fn by_job<'a>(lines: &'a [Line], names: &BTreeMap<u64, SubName>, job: &'a str) -> Result<(Keep<'a>, String), String> {
    let Some(wanted) = SubName::parse(job) else {
        if !lines.iter().any(|l| l.job().is_some_and(|j| j.starts_with(job))) {
            return Err(format!("no event of a job id starting with `{job}`"));
        }
        let keep = move |l: &Line| l.job().is_some_and(|j| j.starts_with(job));
        return Ok((Box::new(keep), format!("job id {job}…")));
    };
    let found = names.iter().find(|(_, name)| **name == wanted).map(|(sub, _)| *sub);
    let own: Vec<&Line> = found
        .map(|n| lines.iter().filter(|l| l.names_sub(n)).collect())
        .unwrap_or_default();
    let (Some(n), Some(first), Some(last)) = (found, own.first(), own.last()) else {
        let highest = names.values().filter_map(|name| match name {
            SubName::Job(n) => Some(*n),
            _ => None,
        });
        let known = highest
            .max()
            .map_or_else(|| "it holds none".to_owned(), |h| format!("jobs run #0 to #{h}"));
        return Err(format!("no submission {wanted} in this trace ({known})"));
    };
    let id = first.job().unwrap_or_default().to_owned();
    // Events of the id naming no submission (backend records, stray
    // frames) count from this submission's first event until the next
    // submission of the id is written, or the trace ends.
    let from_us = first.at_us();
    let next_sent_us = lines
        .iter()
        .filter(|l| l.event.get("ev").and_then(Value::as_str) == Some("job_sent"))
        .filter(|l| l.job() == Some(id.as_str()) && l.at_us() > from_us && !l.names_sub(n))
        .map(Line::at_us)
        .min();
    let to_us = next_sent_us.map_or(u64::MAX, |t| t - 1).max(last.at_us());
    let what = format!("submission {wanted}, job {id}");
    let keep = move |l: &Line| {
        l.names_sub(n) || (l.job() == Some(id.as_str()) && l.names_no_sub() && (from_us..=to_us).contains(&l.at_us()))
    };
    Ok((Box::new(keep), what))
}

/// `  21.090123 s  chunk                   #12 job 9f3c2a1e conn=1 len=40`.
/// A submission prints by its name (`#12`, `#5 re-send 2`, `malformed 3`).
fn render(event: &Map<String, Value>, names: &BTreeMap<u64, SubName>) -> String {
    let at_us = event.get("at_us").and_then(Value::as_u64).unwrap_or(0);
    let kind = event.get("ev").and_then(Value::as_str).unwrap_or("?");
    let name = |sub: u64| names.get(&sub).copied().unwrap_or(SubName::Record(sub)).to_string();
    let mut parts = Vec::new();
    if let Some(sub) = event.get("sub").and_then(Value::as_u64) {
        parts.push(name(sub));
    }
    if let Some(subs) = event.get("subs").and_then(Value::as_array).filter(|s| !s.is_empty()) {
        let subs: Vec<String> = subs.iter().filter_map(Value::as_u64).map(name).collect();
        parts.push(subs.join(","));
    }
    if let Some(job) = event.get("job").and_then(Value::as_str) {
        parts.push(format!("job {}", job.get(..8).unwrap_or(job)));
    }
    // Keys in name order, whatever order the JSON map keeps.
    let mut fields: Vec<(&String, &Value)> = event.iter().collect();
    fields.sort_by_key(|(key, _)| key.as_str());
    for (key, value) in fields {
        if matches!(key.as_str(), "at_us" | "ev" | "sub" | "subs" | "job" | "arrival") || value.is_null() {
            continue;
        }
        parts.push(format!("{key}={}", value_text(value)));
    }
    format!("{}  {kind:<24} {}", seconds(at_us), parts.join(" "))
}

/// A field's value: strings bare, blobs as their length, objects as
/// `{key=value …}`.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Object(map) if map.contains_key("sha256") => {
            format!("<{} bytes>", map.get("len").and_then(Value::as_u64).unwrap_or(0))
        }
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().filter(|(_, v)| !v.is_null()).collect();
            fields.sort_by_key(|(key, _)| key.as_str());
            let inner: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", value_text(v))).collect();
            format!("{{{}}}", inner.join(" "))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(value_text).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// `  21.090123 s`, right-aligned for up to 99 999 s.
fn seconds(at_us: u64) -> String {
    format!("{:>12.6} s", at_us as f64 / 1e6)
}

/// Parses a simulated time: `21.09s`, `21090ms`, `21090000us` (or `µs`), or
/// a bare number of seconds; into microseconds.
pub fn parse_time_us(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("us").or_else(|| text.strip_suffix("µs")) {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e6)
    } else {
        (text, 1e6)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a time: write 21.09s, 21090ms, 21090000us or 21.09"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("`{text}` is not a time at or after 0"));
    }
    Ok((value * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Times parse in seconds, milliseconds and microseconds.
    #[test]
    fn times_parse_with_units() {
        assert_eq!(parse_time_us("21.09s"), Ok(21_090_000));
        assert_eq!(parse_time_us("21.09"), Ok(21_090_000));
        assert_eq!(parse_time_us("21090ms"), Ok(21_090_000));
        assert_eq!(parse_time_us("5us"), Ok(5));
        assert!(parse_time_us("soon").is_err());
        assert!(parse_time_us("-1s").is_err());
    }

    /// An event prints its time, kind, submission, short job id and fields.
    #[test]
    fn events_render_readably() {
        let event: Value = serde_json::from_str(
            r#"{"at_us":21090123,"ev":"terminal_received","job":"9f3c2a1e-0000-4000-8000-000000000000","sub":12,"conn":1,"terminal":{"frame":"error","code":"backend_timeout","tokens_emitted":3,"bytes_emitted":null}}"#,
        )
        .unwrap();
        let Value::Object(map) = event else { panic!() };
        let names = BTreeMap::from([(12, SubName::Job(12))]);
        assert_eq!(
            render(&map, &names),
            "   21.090123 s  terminal_received        #12 job 9f3c2a1e conn=1 \
             terminal={code=backend_timeout frame=error tokens_emitted=3}"
        );
    }
}
