//! `cancel_purges_queued_frames` on hand-made traces: a job cancelled during
//! a read pause whose queued frames still arrive after the pause.

use super::{caught, passes};
use simctl::trace::EventKind;
use simctl::trace::handmade::TraceBuilder;

/// 30 000 bytes of data: 40 000 bytes of base64 in a frame.
static DATA: [u8; 30_000] = [b'x'; 30_000];

/// A job streaming into a read pause from 500 ms to 3 s, cancelled at 1 s
/// (the test config's `cancel_close_ms` is 100 ms): two frames were in
/// flight and arrive as the pause ends.
fn cancelled_in_a_pause() -> TraceBuilder {
    let pause = EventKind::ReadBlocked {
        conn: 1,
        until_us: 3_000_000,
        slow: false,
    };
    TraceBuilder::new()
        .session(0, 1)
        .job(10, "j", 1, 60_000)
        .backend(12, Some(1_010), "j", b"", "client_gone")
        .chunk(100, "j", 1, &DATA)
        .at(500, pause)
        .cancel(1_000, "j", 1)
        .chunk(3_000, "j", 1, &DATA)
        .chunk(3_000, "j", 1, &DATA)
}

/// Four frames after the first read that follows the pause: more than one socket write, so queued frames were sent.
#[test]
fn catches_queued_frames_sent_after_a_pause() {
    let mut b = cancelled_in_a_pause();
    for at in [3_004, 3_005, 3_009, 3_010] {
        b = b.chunk(at, "j", 1, &DATA);
    }
    let v = caught("cancel_purges_queued_frames", &b.build());
    assert_eq!(v.at_us, 3_000_000);
    assert!(v.detail.contains("4 frames (160000 bytes"), "{}", v.detail);
}

/// What was in flight, plus one socket write's worth (three frames), passes.
#[test]
fn passes_frames_in_flight_and_one_write() {
    let mut b = cancelled_in_a_pause();
    for at in [3_004, 3_005, 3_009] {
        b = b.chunk(at, "j", 1, &DATA);
    }
    passes("cancel_purges_queued_frames", &b.build());
}

/// A cancel that lost the race to job_done purges nothing: the job's frames rightly flow.
#[test]
fn passes_a_job_that_finished_before_the_cancel() {
    let mut b = cancelled_in_a_pause();
    for at in [3_004, 3_005, 3_009, 3_010] {
        b = b.chunk(at, "j", 1, &DATA);
    }
    passes("cancel_purges_queued_frames", &b.done(3_011, "j", 1).build());
}

/// A slow-read window right after the pause delays the instant everything in flight was read.
#[test]
fn passes_frames_read_slowly_after_the_pause() {
    let slow = EventKind::ReadBlocked {
        conn: 1,
        until_us: 4_000_000,
        slow: true,
    };
    let mut b = cancelled_in_a_pause().at(3_000, slow);
    for at in [3_100, 3_200, 3_300, 3_400] {
        b = b.chunk(at, "j", 1, &DATA);
    }
    passes("cancel_purges_queued_frames", &b.chunk(4_000, "j", 1, &DATA).build());
}

/// A hold of the agent–coordinator link may keep written frames in flight: not judged.
#[test]
fn passes_when_the_link_was_held() {
    let hold = EventKind::Fault {
        action: simctl::trace::FaultAction::Hold,
        hosts: vec!["agent".into(), "coordinator".into()],
    };
    let mut b = cancelled_in_a_pause().at(2_000, hold);
    for at in [3_004, 3_005, 3_009, 3_010] {
        b = b.chunk(at, "j", 1, &DATA);
    }
    passes("cancel_purges_queued_frames", &b.build());
}
