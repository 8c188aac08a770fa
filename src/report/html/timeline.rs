//! The timeline's content from the trace: level lanes against their limits,
//! shaded spans (read pauses, faults, sessions) and markers (error codes,
//! violations, the coordinator's flags, stopped hosts, phases).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::records::{Line, Rec, TerminalRec};
use super::series::{Level, Point, Rate};
use super::summary::{Limits, RunSummary};

/// One series of a lane.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
}

/// A horizontal line a lane is judged against.
#[derive(Clone, Debug, Serialize)]
pub struct LimitLine {
    pub name: String,
    pub value: f64,
}

/// One lane of levels drawn on the shared axis.
#[derive(Clone, Debug, Serialize)]
pub struct Lane {
    pub id: &'static str,
    pub title: String,
    pub unit: &'static str,
    pub series: Vec<Series>,
    pub limits: Vec<LimitLine>,
}

/// A shaded stretch of time on a span row.
#[derive(Clone, Debug, Serialize)]
pub struct Span {
    /// The row: `reads`, `faults` or `sessions`.
    pub row: &'static str,
    pub from_ms: f64,
    pub to_ms: f64,
    /// Its kind, which picks its colour (`paused`, `slow`, `partition`, …).
    pub kind: String,
    pub label: String,
}

/// One instant marked on the timeline.
#[derive(Clone, Debug, Serialize)]
pub struct Marker {
    pub at_ms: f64,
    /// `violation`, `code`, `flag`, `stop` or `phase`.
    pub kind: &'static str,
    /// The error code, rule, or phase: picks the colour and the legend.
    pub code: String,
    pub job: Option<String>,
    pub text: String,
}

/// Everything drawn on the shared axis.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timeline {
    pub end_ms: f64,
    pub lanes: Vec<Lane>,
    pub spans: Vec<Span>,
    pub markers: Vec<Marker>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

/// Builds the timeline of `lines`, a run lasting `end_us`.
pub fn build(lines: &[Line], end_us: u64, summary: Option<&RunSummary>) -> Timeline {
    let limits = summary.map(|s| s.limits.clone()).unwrap_or_default();
    let mut timeline = Timeline {
        end_ms: ms(end_us),
        lanes: lanes(lines, end_us, &limits),
        spans: spans(lines, end_us),
        markers: markers(lines),
    };
    if let Some(summary) = summary {
        timeline.markers.extend(summary.violations.iter().map(|v| Marker {
            at_ms: ms(v.at_us),
            kind: "violation",
            code: v.rule.clone(),
            job: v.job.clone(),
            text: v.detail.clone(),
        }));
    }
    timeline
}

/// Submissions the coordinator still awaits frames for; slots the agent
/// says it holds; execution streams open per backend; chunk bytes per
/// second; queued outbound bytes.
fn lanes(lines: &[Line], end_us: u64, limits: &Limits) -> Vec<Lane> {
    let (mut coordinator, mut slots, mut queued) = (Level::default(), Level::default(), Level::default());
    for level in [&mut coordinator, &mut slots, &mut queued] {
        level.set(0, 0.0);
    }
    let mut chunk_bytes = Rate::new(end_us);
    let mut streams: BTreeMap<String, Level> = limits
        .backends
        .iter()
        .map(|(host, _)| {
            let mut level = Level::default();
            level.set(0, 0.0);
            (host.clone(), level)
        })
        .collect();
    let mut open_streams: BTreeSet<(String, u64)> = BTreeSet::new();
    // A submission is in flight from its sending until its first terminal
    // frame, a cancel, its session's loss or its supersession.
    let mut in_flight: BTreeSet<u64> = BTreeSet::new();
    for line in lines {
        let t = line.at_us;
        match &line.rec {
            Rec::JobSent { sub, .. } => {
                in_flight.insert(*sub);
            }
            Rec::TerminalReceived { sub: Some(sub), .. } | Rec::JobSessionLost { sub } | Rec::JobSuperseded { sub } => {
                in_flight.remove(sub);
            }
            Rec::CancelSent { subs, .. } => {
                for sub in subs {
                    in_flight.remove(sub);
                }
            }
            Rec::Chunk { len, .. } => chunk_bytes.add(t, *len as f64),
            Rec::AgentJobAdmitted { in_flight: n }
            | Rec::AgentJobRejected { in_flight: n }
            | Rec::AgentSlotFreed { in_flight: n } => slots.set(t, *n as f64),
            Rec::AgentOutboundQueued { bytes } => queued.set(t, *bytes as f64),
            Rec::BackendRequest {
                backend,
                request,
                method,
                path,
            } if method == "POST" && path.ends_with("/chat/completions") => {
                open_streams.insert((backend.clone(), *request));
                streams.entry(backend.clone()).or_default().add(t, 1.0);
            }
            Rec::BackendEnd { backend, request, .. } => {
                let was_open = open_streams.remove(&(backend.clone(), *request));
                if was_open {
                    streams.entry(backend.clone()).or_default().add(t, -1.0);
                }
            }
            _ => {}
        }
        coordinator.set(t, in_flight.len() as f64);
    }
    let max_concurrent = LimitLine {
        name: "max_concurrent".into(),
        value: limits.max_concurrent as f64,
    };
    let with_limit = |limit: &LimitLine| {
        if limit.value > 0.0 {
            vec![limit.clone()]
        } else {
            Vec::new()
        }
    };
    let mut stream_limits = with_limit(&max_concurrent);
    stream_limits.extend(limits.backends.iter().map(|(host, seqs)| LimitLine {
        name: format!("{host} max_num_seqs"),
        value: *seqs as f64,
    }));
    let one = |name: &str, level: &Level| {
        vec![Series {
            name: name.to_owned(),
            points: level.points(end_us),
        }]
    };
    vec![
        Lane {
            id: "coordinator_in_flight",
            title: "Jobs in flight (coordinator)".into(),
            unit: "jobs",
            series: one("in flight", &coordinator),
            limits: with_limit(&max_concurrent),
        },
        Lane {
            id: "agent_slots",
            title: "Slots held (agent)".into(),
            unit: "slots",
            series: one("slots", &slots),
            limits: with_limit(&max_concurrent),
        },
        Lane {
            id: "backend_streams",
            title: "Backend streams open".into(),
            unit: "streams",
            series: streams
                .iter()
                .map(|(host, level)| Series {
                    name: host.clone(),
                    points: level.points(end_us),
                })
                .collect(),
            limits: stream_limits,
        },
        Lane {
            id: "chunk_rate",
            title: "job_chunk bytes/s".into(),
            unit: "B/s",
            series: vec![Series {
                name: "bytes/s".into(),
                points: chunk_bytes.points(),
            }],
            limits: Vec::new(),
        },
        Lane {
            id: "outbound_queue",
            // The agent reports each new high-water mark of its queue, never
            // a fall, so this lane is the high water, not the queue's level;
            // the title says so, and the page's legend says why.
            title: "Outbound queue high water (agent)".into(),
            unit: "B",
            series: one("queued", &queued),
            limits: with_limit(&LimitLine {
                name: "outbound_queue_bytes_max".into(),
                value: limits.outbound_queue_bytes_max as f64,
            }),
        },
    ]
}

/// The fault that a healing action ends.
fn healed_by(action: &str) -> Option<&'static str> {
    match action {
        "repair" => Some("partition"),
        "release" => Some("hold"),
        "restart" => Some("crash"),
        _ => None,
    }
}

fn spans(lines: &[Line], end_us: u64) -> Vec<Span> {
    let mut out = Vec::new();
    let mut open_faults: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut open_sessions: BTreeMap<u64, u64> = BTreeMap::new();
    for line in lines {
        let t = line.at_us;
        match &line.rec {
            Rec::ReadBlocked { conn, until_us, slow } => out.push(Span {
                row: "reads",
                from_ms: ms(t),
                to_ms: ms((*until_us).max(t)),
                kind: if *slow { "slow" } else { "paused" }.into(),
                label: format!(
                    "conn {conn}: coordinator {}",
                    if *slow { "reads slowly" } else { "not reading" }
                ),
            }),
            Rec::Fault { action, hosts } => {
                let on = hosts.join(" ↔ ");
                if let Some(fault) = healed_by(action) {
                    if let Some(from) = open_faults.remove(&(fault.to_owned(), on.clone())) {
                        out.push(fault_span(fault, &on, from, t));
                    }
                } else {
                    open_faults.entry((action.clone(), on)).or_insert(t);
                }
            }
            Rec::SessionOpened { conn } => {
                open_sessions.insert(*conn, t);
            }
            Rec::SessionClosed { conn, reason } => {
                let from = open_sessions.remove(conn).unwrap_or(0);
                out.push(session_span(*conn, from, t, reason));
            }
            _ => {}
        }
    }
    for ((fault, on), from) in open_faults {
        out.push(fault_span(&fault, &on, from, end_us));
    }
    for (conn, from) in open_sessions {
        out.push(session_span(conn, from, end_us, "open at the end"));
    }
    out
}

fn fault_span(fault: &str, on: &str, from_us: u64, to_us: u64) -> Span {
    Span {
        row: "faults",
        from_ms: ms(from_us),
        to_ms: ms(to_us),
        kind: fault.to_owned(),
        label: format!("{fault} {on}"),
    }
}

fn session_span(conn: u64, from_us: u64, to_us: u64, reason: &str) -> Span {
    Span {
        row: "sessions",
        from_ms: ms(from_us),
        to_ms: ms(to_us),
        kind: "session".into(),
        label: format!("conn {conn}: {reason}"),
    }
}

fn markers(lines: &[Line]) -> Vec<Marker> {
    let mut out = Vec::new();
    for line in lines {
        let at_ms = ms(line.at_us);
        let (kind, code, job, text) = match &line.rec {
            Rec::TerminalReceived {
                job,
                terminal: TerminalRec::Error { code, .. },
                ..
            } => ("code", code.clone(), Some(job.clone()), format!("job_error {code}")),
            Rec::CoordinatorFlagged { kind, job, what } => ("flag", kind.clone(), job.clone(), what.clone()),
            Rec::HostStopped { host, error } => (
                "stop",
                "host_stopped".into(),
                None,
                format!("{host} stopped: {}", error.as_deref().unwrap_or("returned")),
            ),
            Rec::RecordsDropped { source, count } => (
                "stop",
                "records_dropped".into(),
                None,
                format!("{source} dropped {count} records: the trace is incomplete"),
            ),
            Rec::Phase { phase } if phase != "scripted" => ("phase", phase.clone(), None, format!("phase: {phase}")),
            _ => continue,
        };
        out.push(Marker {
            at_ms,
            kind,
            code,
            job,
            text,
        });
    }
    out
}
