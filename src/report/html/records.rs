//! The JSONL trace read back: every event the page draws, with the fields
//! it needs. Events it does not draw (and fields it does not read) are
//! skipped, so traces from newer harnesses with new events still open.
//!
//! The page of a live run is built from the same JSONL lines as the page of
//! a saved trace, so the two cannot differ.

use serde::Deserialize;

/// A terminal frame as the coordinator decoded it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "frame", rename_all = "snake_case")]
pub enum TerminalRec {
    Done { tokens_in: u64, tokens_out: u64 },
    Error { code: String, tokens_emitted: u64 },
}

/// One event the page draws (see `trace::EventKind` for what each means).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Rec {
    Phase {
        phase: String,
    },
    Fault {
        action: String,
        hosts: Vec<String>,
    },
    HostStopped {
        host: String,
        error: Option<String>,
    },
    RecordsDropped {
        source: String,
        count: u64,
    },
    SessionOpened {
        conn: u64,
    },
    SessionClosed {
        conn: u64,
        reason: String,
    },
    ReadBlocked {
        conn: u64,
        until_us: u64,
        slow: bool,
    },
    JobSent {
        job: String,
        sub: u64,
        conn: u64,
        model: String,
        deadline_ms: u64,
        kind: String,
        #[serde(default)]
        arrival: Option<u64>,
    },
    JobUndeliverable {
        job: String,
        sub: u64,
        kind: String,
        #[serde(default)]
        arrival: Option<u64>,
    },
    CancelSent {
        job: String,
        subs: Vec<u64>,
    },
    Chunk {
        job: String,
        sub: Option<u64>,
        len: u64,
    },
    TerminalReceived {
        job: String,
        sub: Option<u64>,
        terminal: TerminalRec,
    },
    JobSessionLost {
        sub: u64,
    },
    JobSuperseded {
        sub: u64,
    },
    CoordinatorFlagged {
        kind: String,
        job: Option<String>,
        what: String,
    },
    BackendRequest {
        backend: String,
        request: u64,
        method: String,
        path: String,
    },
    BackendEnd {
        backend: String,
        request: u64,
        status: u16,
        end: String,
    },
    AgentSessionEnded {
        reason: String,
    },
    AgentJobAdmitted {
        in_flight: u64,
    },
    AgentJobRejected {
        in_flight: u64,
    },
    AgentSlotFreed {
        in_flight: u64,
    },
    AgentOutboundQueued {
        bytes: u64,
    },
    /// Any event the page does not draw.
    #[serde(other)]
    Other,
}

/// One line of the trace.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Line {
    pub at_us: u64,
    #[serde(flatten)]
    pub rec: Rec,
}

/// A line that is not an event.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// Parses a JSONL trace, skipping blank lines, into time order (stable, so
/// events of one instant keep the trace's order).
pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Vec<Line>, BadLine> {
    let mut out = Vec::new();
    for (index, text) in lines.into_iter().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(text).map_err(|e| BadLine {
            line: index + 1,
            message: e.to_string(),
        })?;
        out.push(line);
    }
    out.sort_by_key(|l| l.at_us);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known events parse with their fields, unknown ones become `Other`.
    #[test]
    fn known_and_unknown_events() {
        let lines = parse([
            r#"{"at_us":5,"ev":"chunk","job":"a","sub":0,"conn":1,"len":7}"#,
            "",
            r#"{"at_us":2,"ev":"something_new","x":1}"#,
        ])
        .unwrap();
        assert_eq!(
            lines[0],
            Line {
                at_us: 2,
                rec: Rec::Other
            }
        );
        assert_eq!(
            lines[1].rec,
            Rec::Chunk {
                job: "a".into(),
                sub: Some(0),
                len: 7
            }
        );
    }

    /// A broken line is named by its number.
    #[test]
    fn bad_line_is_named() {
        let error = parse([r#"{"at_us":1,"ev":"phase","phase":"scripted"}"#, "{nope"]).unwrap_err();
        assert_eq!(error.line, 2);
    }
}
