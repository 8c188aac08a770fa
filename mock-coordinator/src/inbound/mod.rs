//! Decoding and recording of the agent's frames, with the coordinator's
//! own types (it must not share the agent's, see docs/ARCHITECTURE.md).
//!
//! Nothing here fails: a frame that breaks the protocol is recorded as it
//! came and as a [`crate::record::Violation`], and the connection goes on.

mod attribution;
mod fields;
mod jobs;
mod marker;
mod status;

use serde_json::{Map, Value};

use crate::framelog::NewFrame;
use crate::record::{Dir, ViolationKind};
use crate::state::LogState;

pub(crate) use fields::str_field;
pub(crate) use jobs::CancelOrder;

/// One received WebSocket message, reduced to what recording needs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum InFrame<'a> {
    Text(&'a str),
    Binary(usize),
    Ping(usize),
    Pong(usize),
}

/// A text frame, parsed as far as it goes.
pub(crate) enum Parsed {
    /// Not a JSON object; the reason.
    Invalid(String),
    /// A JSON object without a string `type`.
    Untyped(Map<String, Value>),
    /// A typed JSON object.
    Typed { kind: String, obj: Map<String, Value> },
}

pub(crate) fn parse(text: &str) -> Parsed {
    match serde_json::from_str::<Value>(text) {
        Err(e) => Parsed::Invalid(format!("not JSON: {e}")),
        Ok(Value::Object(obj)) => match obj.get("type") {
            Some(Value::String(kind)) => Parsed::Typed {
                kind: kind.clone(),
                obj,
            },
            _ => Parsed::Untyped(obj),
        },
        Ok(_) => Parsed::Invalid("top level is not a JSON object".to_owned()),
    }
}

/// What the session must do after a frame was ingested.
#[derive(Debug, Default)]
pub(crate) struct Reaction {
    /// Cancels that triggers (chunk count, completion race) asked for.
    pub cancels: Vec<CancelOrder>,
    /// A job got its terminal frame: a closed loop may issue the next one.
    pub job_finished: bool,
}

/// Builds the record of a text frame; its text is kept when `keep_text`
/// and it is not a `job_chunk`.
pub(crate) fn frame_record<'a>(
    state: &mut LogState,
    at_us: u64,
    conn: u64,
    dir: Dir,
    text: &'a str,
    parsed: &Parsed,
    keep_text: bool,
) -> NewFrame<'a> {
    let (kind, job_id) = match parsed {
        Parsed::Invalid(_) => ("invalid", None),
        Parsed::Untyped(obj) => ("untyped", str_field(obj, "job_id")),
        Parsed::Typed { kind, obj } => (kind.as_str(), str_field(obj, "job_id")),
    };
    let keep_text = keep_text && kind != "job_chunk";
    NewFrame {
        at_us,
        conn,
        dir,
        kind: state.frames.kind(kind),
        job: job_id.map(|id| state.frames.job(id)),
        text_len: len_u32(text.len()),
        text: keep_text.then_some(text),
        data_len: None,
    }
}

/// Builds the record of a non-text frame.
pub(crate) fn control_record(
    state: &mut LogState,
    at_us: u64,
    conn: u64,
    dir: Dir,
    kind: &str,
    len: usize,
) -> NewFrame<'static> {
    NewFrame {
        at_us,
        conn,
        dir,
        kind: state.frames.kind(kind),
        job: None,
        text_len: len_u32(len),
        text: None,
        data_len: None,
    }
}

/// A length for a [`FrameRecord`]: a frame read is at most the WebSocket's
/// message size (64 MiB), so only a frame written past 4 GiB saturates.
pub(crate) fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Records one steady-state frame (after `auth_ok`) and applies it.
pub(crate) fn ingest(state: &mut LogState, conn: u64, at_us: u64, frame: InFrame<'_>) -> Reaction {
    let mut reaction = Reaction::default();
    let text = match frame {
        InFrame::Text(text) => text,
        InFrame::Binary(len) => {
            let record = control_record(state, at_us, conn, Dir::In, "binary", len);
            state.push_frame(record);
            let what = format!("binary frame of {len} bytes (the protocol sends text only)");
            state.violation(at_us, conn, ViolationKind::BinaryFrame, None, what);
            return reaction;
        }
        InFrame::Ping(len) => {
            let record = control_record(state, at_us, conn, Dir::In, "ping", len);
            state.push_frame(record);
            return reaction;
        }
        InFrame::Pong(len) => {
            let record = control_record(state, at_us, conn, Dir::In, "pong", len);
            state.push_frame(record);
            return reaction;
        }
    };
    let parsed = parse(text);
    let mut record = frame_record(state, at_us, conn, Dir::In, text, &parsed, true);
    match parsed {
        Parsed::Invalid(why) => {
            state.push_frame(record);
            state.violation(at_us, conn, ViolationKind::NotJson, None, why);
        }
        Parsed::Untyped(obj) => {
            state.push_frame(record);
            let id = str_field(&obj, "job_id");
            let what = "JSON object without a string `type`".to_owned();
            state.violation(at_us, conn, ViolationKind::NoType, id, what);
        }
        Parsed::Typed { kind, obj } => {
            let ctx = attribution::Ctx { conn, at_us };
            match kind.as_str() {
                "job_chunk" => {
                    record.data_len = jobs::on_chunk(state, ctx, &obj, &mut reaction).map(len_u32);
                    // Decoding comes first so the record can carry the
                    // decoded length.
                    state.push_frame(record);
                }
                "job_done" | "job_error" => {
                    state.push_frame(record);
                    reaction.job_finished = jobs::on_terminal(state, ctx, &kind, &obj);
                }
                "heartbeat" => {
                    state.push_frame(record);
                    status::on_heartbeat(state, conn, at_us, &obj);
                }
                "capabilities" => {
                    state.push_frame(record);
                    status::on_capabilities(state, conn, at_us, obj);
                }
                "auth_response" => {
                    state.push_frame(record);
                    let what = "auth_response after auth_ok".to_owned();
                    state.violation(at_us, conn, ViolationKind::AuthAfterAuth, None, what);
                }
                other => {
                    let what = format!("message type `{other}` is not one the agent may send");
                    let id = str_field(&obj, "job_id");
                    state.violation(at_us, conn, ViolationKind::UnknownType, id, what);
                    state.push_frame(record);
                }
            }
        }
    }
    reaction
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(state: &LogState) -> Vec<ViolationKind> {
        state.violations.iter().map(|v| v.kind).collect()
    }

    /// Broken frames are recorded and become violations, never errors.
    #[test]
    fn broken_frames_are_violations() {
        let mut s = LogState::default();
        ingest(&mut s, 1, 5, InFrame::Text("nope"));
        ingest(&mut s, 1, 6, InFrame::Text("[1]"));
        ingest(&mut s, 1, 7, InFrame::Text("{\"x\":1}"));
        ingest(&mut s, 1, 8, InFrame::Text("{\"type\":\"config_update\"}"));
        ingest(&mut s, 1, 9, InFrame::Binary(3));
        ingest(&mut s, 1, 10, InFrame::Ping(0));
        assert_eq!(
            kinds(&s),
            vec![
                ViolationKind::NotJson,
                ViolationKind::NotJson,
                ViolationKind::NoType,
                ViolationKind::UnknownType,
                ViolationKind::BinaryFrame,
            ]
        );
        let frame_kinds: Vec<&str> = s.frames.iter().map(|f| f.kind).collect();
        assert_eq!(
            frame_kinds,
            vec!["invalid", "invalid", "untyped", "config_update", "binary", "ping"]
        );
        assert_eq!(s.frames.get(0).unwrap().text, Some("nope"));
    }
}
