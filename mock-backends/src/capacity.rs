//! Generation slots like a real server's `max_num_seqs`, with a bounded FIFO
//! queue in front or an immediate 429/503, as the profile chooses.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::spec::Overflow;

/// Status answered when `overflow = "queue"` and the queue is full.
pub const QUEUE_FULL_STATUS: u16 = 503;

/// The slots of one backend instance.
pub(crate) struct Capacity {
    /// One permit per generation slot. tokio's semaphore hands released
    /// permits to waiters in arrival order, so the queue is FIFO.
    slots: Arc<Semaphore>,
    /// Requests waiting for a permit; bounded by `queue_depth_max`.
    queued: Arc<AtomicU32>,
    queue_depth_max: u32,
    overflow: Overflow,
}

/// The outcome of asking for a slot.
pub(crate) enum Admission {
    /// A slot was free; generation may start now.
    Running(OwnedSemaphorePermit),
    /// All slots are busy; wait on the ticket for one.
    Queued(QueueTicket),
    /// All slots are busy and the policy (or a full queue) says no.
    Rejected(u16),
}

/// A place in the queue. Dropping it (the client left) frees the place.
pub(crate) struct QueueTicket {
    slots: Arc<Semaphore>,
    queued: Arc<AtomicU32>,
}

impl Capacity {
    pub fn new(max_num_seqs: u32, overflow: Overflow, queue_depth_max: u32) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_num_seqs as usize)),
            queued: Arc::new(AtomicU32::new(0)),
            queue_depth_max,
            overflow,
        }
    }

    /// Decides at once whether a request runs, waits or is refused.
    pub fn admit(&self) -> Admission {
        // While anyone is queued a newcomer queues behind them, even if a
        // permit was released before the waiters polled for it: FIFO.
        if self.queued() == 0
            && let Ok(permit) = self.slots.clone().try_acquire_owned()
        {
            return Admission::Running(permit);
        }
        match self.overflow {
            Overflow::Reject429 => Admission::Rejected(429),
            Overflow::Reject503 => Admission::Rejected(503),
            Overflow::Queue => self.enqueue(),
        }
    }

    fn enqueue(&self) -> Admission {
        let max = self.queue_depth_max;
        let reserved = self
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1));
        match reserved {
            Ok(_) => Admission::Queued(QueueTicket {
                slots: self.slots.clone(),
                queued: self.queued.clone(),
            }),
            Err(_) => Admission::Rejected(QUEUE_FULL_STATUS),
        }
    }

    /// Requests waiting for a slot now.
    pub fn queued(&self) -> u32 {
        self.queued.load(Ordering::SeqCst)
    }

    /// Slots free now.
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }
}

impl QueueTicket {
    /// Waits for a slot in FIFO order and leaves the queue.
    pub async fn wait(self) -> OwnedSemaphorePermit {
        let slots = self.slots.clone();
        let permit = slots.acquire_owned().await;
        drop(self);
        // The semaphore is never closed, so acquiring cannot fail; should it
        // ever, waiting forever keeps the request queued rather than panicking.
        match permit {
            Ok(permit) => permit,
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for QueueTicket {
    fn drop(&mut self) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_running(a: &Admission) -> bool {
        matches!(a, Admission::Running(_))
    }

    /// Beyond `max_num_seqs` the reject policies answer their status.
    #[test]
    fn reject_policies() {
        for (overflow, status) in [(Overflow::Reject429, 429), (Overflow::Reject503, 503)] {
            let cap = Capacity::new(1, overflow, 10);
            let first = cap.admit();
            assert!(is_running(&first));
            assert!(matches!(cap.admit(), Admission::Rejected(s) if s == status));
            drop(first);
            assert!(is_running(&cap.admit()));
        }
    }

    /// The queue holds `queue_depth_max` waiters; the next is refused, and a
    /// waiter that leaves frees its place.
    #[test]
    fn queue_is_bounded() {
        let cap = Capacity::new(1, Overflow::Queue, 2);
        let _running = cap.admit();
        let a = cap.admit();
        let _b = cap.admit();
        assert!(matches!(a, Admission::Queued(_)));
        assert_eq!(cap.queued(), 2);
        assert!(matches!(cap.admit(), Admission::Rejected(QUEUE_FULL_STATUS)));
        drop(a);
        assert_eq!(cap.queued(), 1);
        assert!(matches!(cap.admit(), Admission::Queued(_)));
    }

    /// Queued requests get slots in arrival order.
    #[tokio::test]
    async fn queue_is_fifo() {
        let cap = Capacity::new(1, Overflow::Queue, 5);
        let Admission::Running(running) = cap.admit() else {
            panic!("first request must run")
        };
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for n in 0..3 {
            let Admission::Queued(ticket) = cap.admit() else {
                panic!("must queue")
            };
            let order = order.clone();
            handles.push(tokio::spawn(async move {
                let permit = ticket.wait().await;
                order.lock().unwrap().push(n);
                drop(permit);
            }));
        }
        tokio::task::yield_now().await;
        drop(running);
        for handle in handles {
            handle.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
        assert_eq!(cap.free_slots(), 1);
    }
}
