//! One event as one line of JSON: the JSONL form and what the trace hash
//! reads.
//!
//! serde_json writes every line, except the one event most lines are: a
//! chunk whose job id needs no escaping is written here directly, the same
//! bytes serde_json writes for it (the tests compare the two). Serialising
//! 400 k chunk events through serde's flattened, internally tagged map was
//! ≈ 10 % of judging at 1000 jobs/s (benches/README.md, "Scale").

use super::event::{Event, EventKind};

/// One event as JSON. Serialising our own plain types cannot fail; should it
/// ever, the line says so instead of panicking, and the hash still differs.
pub(super) fn event_line(event: &Event) -> String {
    let mut line = Vec::new();
    event_line_into(event, &mut line);
    String::from_utf8(line).unwrap_or_else(|err| format!("{{\"unserialisable\":\"{err}\"}}"))
}

/// [`event_line`] written into `line` (cleared first), the same bytes.
pub(super) fn event_line_into(event: &Event, line: &mut Vec<u8>) {
    line.clear();
    if chunk_line(event, line) {
        return;
    }
    if let Err(err) = kind_line(event, line) {
        line.clear();
        line.extend_from_slice(format!("{{\"unserialisable\":\"{err}\"}}").as_bytes());
    }
}

/// Writes an event as serde_json writes it, without serde's `flatten`: the
/// `at_us` entry, then the kind's own object with its opening brace
/// dropped. An event is `at_us` followed by its kind's entries (`at_us`
/// and a flattened, internally tagged kind), so the bytes are the same
/// (the tests compare every kind); serialising through `flatten` buffers
/// and re-dispatches every entry, which made these lines ≈ twice as dear.
fn kind_line(event: &Event, line: &mut Vec<u8>) -> serde_json::Result<()> {
    let mut number = itoa::Buffer::new();
    line.extend_from_slice(b"{\"at_us\":");
    line.extend_from_slice(number.format(event.at_us).as_bytes());
    let brace = line.len();
    serde_json::to_writer(&mut *line, &event.kind)?;
    // `{"at_us":N` + `{"ev":…}` → `{"at_us":N,"ev":…}`; an internally tagged
    // enum is always an object with its tag in it.
    debug_assert_eq!(line.get(brace), Some(&b'{'));
    line[brace] = b',';
    Ok(())
}

/// Writes a chunk event as serde_json would, if it is one and its job id
/// needs no escaping; says whether it did.
fn chunk_line(event: &Event, line: &mut Vec<u8>) -> bool {
    let EventKind::Chunk { job, sub, conn, len } = &event.kind else {
        return false;
    };
    if !needs_no_escape(job) {
        return false;
    }
    let mut number = itoa::Buffer::new();
    line.extend_from_slice(b"{\"at_us\":");
    line.extend_from_slice(number.format(event.at_us).as_bytes());
    line.extend_from_slice(b",\"ev\":\"chunk\",\"job\":\"");
    line.extend_from_slice(job.as_bytes());
    line.extend_from_slice(b"\",\"sub\":");
    match sub {
        Some(sub) => line.extend_from_slice(number.format(*sub).as_bytes()),
        None => line.extend_from_slice(b"null"),
    }
    line.extend_from_slice(b",\"conn\":");
    line.extend_from_slice(number.format(*conn).as_bytes());
    line.extend_from_slice(b",\"len\":");
    line.extend_from_slice(number.format(*len).as_bytes());
    line.push(b'}');
    true
}

/// Whether serde_json writes `text` as it is between its quotes: no quote,
/// no backslash, no control character (every other byte, UTF-8 included,
/// it writes unchanged).
fn needs_no_escape(text: &str) -> bool {
    text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::examples;

    fn chunk(at_us: u64, job: &str, sub: Option<u64>, conn: u64, len: u64) -> Event {
        Event::new(
            at_us,
            EventKind::Chunk {
                job: job.into(),
                sub,
                conn,
                len,
            },
        )
    }

    /// A chunk line is byte for byte serde_json's, whatever its numbers and
    /// its job id (ids that need escaping go through serde_json itself).
    #[test]
    fn chunk_lines_are_serde_json_lines() {
        let jobs = [
            "6f1c2d7e-3b1a-4c5d-8e9f-0a1b2c3d4e5f",
            "",
            "a b",
            "é✓",
            "q\"uote",
            "back\\slash",
            "tab\t",
            "\u{7f}",
            "malformed#3",
        ];
        let numbers = [0, 1, 9, 10, 99_999, u64::MAX];
        for job in jobs {
            for &n in &numbers {
                for sub in [None, Some(n)] {
                    let event = chunk(n, job, sub, n, n);
                    let mut line = Vec::new();
                    event_line_into(&event, &mut line);
                    assert_eq!(
                        String::from_utf8(line).unwrap(),
                        serde_json::to_string(&event).unwrap(),
                        "{job:?} {n}"
                    );
                }
            }
        }
    }

    /// Every other kind of event is written by serde_json unchanged.
    #[test]
    fn other_lines_are_serde_json_lines() {
        for (at_us, kind) in examples::every_event_kind().into_iter().enumerate() {
            let event = Event::new(at_us as u64, kind);
            assert_eq!(
                event_line(&event),
                serde_json::to_string(&event).unwrap(),
                "{}",
                event.kind.tag()
            );
        }
    }

    /// Which ids are written without serde_json.
    #[test]
    fn escaping_is_recognised() {
        assert!(needs_no_escape("6f1c2d7e-3b1a-4c5d-8e9f-0a1b2c3d4e5f"));
        assert!(needs_no_escape("é✓ \u{7f}"));
        for bad in ["\"", "\\", "\n", "\u{1f}"] {
            assert!(!needs_no_escape(bad), "{bad:?}");
        }
    }
}
