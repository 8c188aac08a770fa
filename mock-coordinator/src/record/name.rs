//! [`Name`]: a short string that many records share (a frame's message
//! type, a job id, a model), and [`Names`], a bounded table that hands out
//! one allocation per distinct name.
//!
//! A long run records hundreds of thousands of frames, almost all with one
//! of a dozen message types and the id of a job the coordinator sent, and
//! tens of thousands of jobs of a few models. Kept as a `String` each,
//! those fields were a third of the frame log's heap; as a [`Name`] each
//! costs one pointer.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use rustc_hash::FxHashSet;
use serde::{Serialize, Serializer};

/// Distinct names a table shares (`Names`'s models, the frame log's
/// message types). The agent may send any `type`, so tables are bounded:
/// past the bound, a new name gets its own allocation each time (still
/// correct, only not shared).
pub const NAMES_MAX: usize = 1024;

/// An immutable, cheaply cloned string: one pointer wide (so a record's
/// `Option<Name>` field is 8 bytes), compared, ordered, hashed and
/// serialized as the string itself.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<Box<str>>);

impl Name {
    pub fn as_str(&self) -> &str {
        self
    }

    /// Whether both are the one allocation (not merely equal strings).
    pub fn shares(&self, other: &Name) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(Arc::new(s.into()))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(Arc::new(s.into_boxed_str()))
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        **self == *other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        **self == **other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

/// The model names seen so far, each allocated once. Lookup only: the set
/// is never iterated, so its order cannot leak into anything.
#[derive(Debug, Default)]
pub(crate) struct Names {
    names: FxHashSet<Name>,
}

impl Names {
    /// `name` itself, or the shared one equal to it (which it then joins).
    pub fn share(&mut self, name: Name) -> Name {
        if let Some(shared) = self.names.get(&*name) {
            return shared.clone();
        }
        if self.names.len() < NAMES_MAX {
            self.names.insert(name.clone());
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name compares, orders and serializes as its string, and is one pointer wide.
    #[test]
    fn a_name_is_its_string() {
        let n = Name::from("job_chunk");
        assert_eq!(n, "job_chunk");
        assert_eq!(&*n, "job_chunk");
        let (a, b) = (Name::from("a"), Name::from("b"));
        assert!(a < b);
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"job_chunk\"");
        assert_eq!(format!("{n:?} {n}"), "\"job_chunk\" job_chunk");
        assert_eq!(size_of::<Option<Name>>(), size_of::<usize>());
    }

    /// The same name is shared; past the bound, new names are still right but not kept.
    #[test]
    fn names_are_shared_up_to_the_bound() {
        let mut names = Names::default();
        let a = names.share("m-a".into());
        let b = names.share("m-a".into());
        assert!(a.shares(&b));
        for i in 0..NAMES_MAX {
            names.share(format!("t{i}").into());
        }
        assert_eq!(names.names.len(), NAMES_MAX);
        let late = names.share("late".into());
        assert_eq!(late, "late");
        assert!(!late.shares(&names.share("late".into())));
        assert!(a.shares(&names.share("m-a".into())));
    }
}
