//! The strings events carry, shared: one allocation per distinct text.
//!
//! A run at 1000 jobs/s has ≈ 400 k chunk events over ≈ 38 k job ids, and
//! ≈ 60 k more events naming a model, a backend, an error code or an end
//! from a vocabulary of a few dozen words. With an owned `String` each,
//! every such event paid one allocation when the trace was collected, one
//! more each time the view copied it, and one free for each when they were
//! dropped (freeing was 14 % of judging at 1000 jobs/s); an interned string
//! is a reference count.

use rustc_hash::FxHashSet;
use std::sync::Arc;

/// A job id as events carry it (serialised as the plain string).
pub type JobId = Arc<str>;

/// Any other shared text of an event: a model, a backend's host name, an
/// HTTP method or path, an error code, a reason (serialised as the string).
pub type Name = Arc<str>;

/// Hands out one shared string per distinct text. Only ever looked up,
/// never iterated, so hash order cannot reach the trace.
#[derive(Debug, Default)]
pub struct Interner {
    /// Hashed (Fx, as rustc's own tables), although the determinism guard
    /// of clippy.toml steers to ordered sets: only ever looked up, never
    /// iterated, so no order leaves it.
    known: FxHashSet<Arc<str>>,
}

impl Interner {
    /// The shared string spelled `id`, made on first sight.
    pub fn intern(&mut self, id: &str) -> Arc<str> {
        if let Some(known) = self.known.get(id) {
            return known.clone();
        }
        let made: Arc<str> = Arc::from(id);
        self.known.insert(made.clone());
        made
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same spelling gives the same allocation; another gives another.
    #[test]
    fn one_allocation_per_spelling() {
        let mut ids = Interner::default();
        let a = ids.intern("a");
        assert!(Arc::ptr_eq(&a, &ids.intern("a")));
        assert!(!Arc::ptr_eq(&a, &ids.intern("b")));
        assert_eq!(&*ids.intern("b"), "b");
    }
}
