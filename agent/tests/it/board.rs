//! The board's bookkeeping, seen from outside: the `OutboundQueued` events
//! the harness judges the memory bound by, the room written frames give
//! back to the control bound, and the `SlotFreed` events of a session's end.
//! Each test kills mutants `cargo mutants` found the other tests miss
//! (`mutants/README.md`, "`cargo mutants` (not gating)").

use std::sync::{Arc, Mutex};

use provider_agent::executor::board::{Board, FrameKind, QueueError};
use provider_agent::observer::{AgentEvent, NoopObserver, Observer};

/// Records every event the board emits.
#[derive(Default)]
struct Recorder(Mutex<Vec<AgentEvent>>);

impl Observer for Recorder {
    fn on_event(&self, event: AgentEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    /// The `(bytes, frames)` of every `OutboundQueued` event so far.
    fn queued(&self) -> Vec<(usize, usize)> {
        let events = self.0.lock().unwrap();
        let queued = events.iter().filter_map(|event| match event {
            AgentEvent::OutboundQueued { bytes, frames } => Some((*bytes, *frames)),
            _ => None,
        });
        queued.collect()
    }
}

fn text(len: usize) -> FrameKind {
    FrameKind::Text("x".repeat(len))
}

/// `OutboundQueued` reports each new high water of queued bytes exactly
/// once, with the frames queued at that moment; a queue that refills to an
/// old high water, or grows by an empty frame, reports nothing.
#[test]
fn outbound_queued_reports_each_new_high_water_once() {
    let recorder = Arc::new(Recorder::default());
    let board = Board::new(1, 100, 64 << 10, recorder.clone());
    board.push_control(text(10)).unwrap();
    board.push_control(text(5)).unwrap();
    while board.pop().is_some() {}
    board.push_control(text(15)).unwrap();
    board.push_control(FrameKind::Ping).unwrap();
    board.push_control(text(1)).unwrap();
    assert_eq!(recorder.queued(), [(10, 1), (15, 2), (16, 3)]);
    assert_eq!(board.queued_bytes_high_water(), 16);
    assert_eq!(board.queued(), (3, 16));
}

/// Frames the writer takes give their room back to the control bound, in
/// frames and in bytes: a long session's heartbeats and pings never add up
/// to an overflow, and a drained board counts nothing.
#[test]
fn written_control_frames_free_their_room() {
    let board = Board::new(1, 4, 40, Arc::new(NoopObserver));
    for round in 0..3 {
        board.push_control(FrameKind::Ping).unwrap();
        for _ in 0..3 {
            board.push_control(text(10)).unwrap();
        }
        assert_eq!(
            board.push_control(FrameKind::Ping),
            Err(QueueError::ControlFull(4)),
            "round {round}"
        );
        while board.pop().is_some() {}
        assert_eq!(board.queued(), (0, 0), "round {round}");
    }
    board
        .push_control(text(40))
        .expect("the whole byte bound is free again");
}
