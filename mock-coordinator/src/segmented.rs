//! [`Segmented`]: an append-only list stored in fixed-size segments.
//!
//! The log's long lists (frames, job records) grow for the whole run and
//! are held until its end. A `Vec` grows by doubling: each growth copies
//! every element, and up to half of its capacity is empty at any moment,
//! so at the peak it may hold twice what it records. Here a full segment is
//! never moved again and a new one is allocated at its full size, so the
//! slack is at most one segment ([`SEGMENT_BYTES`]), whatever the length.

use std::fmt;
use std::ops::{Index, IndexMut};

use serde::{Serialize, Serializer};

/// Bytes of one segment (a few times the allocator's mmap threshold would
/// also do; this keeps a small run's lists small).
pub const SEGMENT_BYTES: usize = 64 * 1024;

/// An append-only list in segments of [`Segmented::SEGMENT_LEN`] elements:
/// indexing, iteration and serialization as a `Vec`, growth without copying.
#[derive(Clone, PartialEq)]
pub struct Segmented<T> {
    /// Every segment but the last is full; none is empty.
    segments: Vec<Vec<T>>,
    len: usize,
}

impl<T> Segmented<T> {
    /// Elements per segment: as many as fit in [`SEGMENT_BYTES`], at least one.
    pub const SEGMENT_LEN: usize = {
        let size = size_of::<T>();
        if size == 0 || size >= SEGMENT_BYTES {
            1
        } else {
            SEGMENT_BYTES / size
        }
    };

    pub const fn new() -> Self {
        Segmented {
            segments: Vec::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `value`; a full last segment gets a successor of full size.
    pub fn push(&mut self, value: T) {
        match self.segments.last_mut() {
            Some(last) if last.len() < Self::SEGMENT_LEN => last.push(value),
            _ => {
                let mut segment = Vec::with_capacity(Self::SEGMENT_LEN);
                segment.push(value);
                self.segments.push(segment);
            }
        }
        self.len += 1;
        debug_assert!(self.segments.iter().rev().skip(1).all(|s| s.len() == Self::SEGMENT_LEN));
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        self.segments
            .get(index / Self::SEGMENT_LEN)?
            .get(index % Self::SEGMENT_LEN)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.segments
            .get_mut(index / Self::SEGMENT_LEN)?
            .get_mut(index % Self::SEGMENT_LEN)
    }

    pub fn first(&self) -> Option<&T> {
        self.segments.first()?.first()
    }

    pub fn last(&self) -> Option<&T> {
        self.segments.last()?.last()
    }

    /// In order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + Clone {
        self.segments.iter().flatten()
    }

    /// In order.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut T> {
        self.segments.iter_mut().flatten()
    }

    /// Elements room is allocated for (full segments and the last one's
    /// capacity).
    pub fn capacity(&self) -> usize {
        self.segments.iter().map(Vec::capacity).sum()
    }
}

impl<T> Default for Segmented<T> {
    fn default() -> Self {
        Segmented::new()
    }
}

impl<T> Index<usize> for Segmented<T> {
    type Output = T;
    fn index(&self, index: usize) -> &T {
        let len = self.len;
        self.get(index)
            .unwrap_or_else(|| panic!("index {index} out of a list of {len}"))
    }
}

impl<T> IndexMut<usize> for Segmented<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        let len = self.len;
        self.get_mut(index)
            .unwrap_or_else(|| panic!("index {index} out of a list of {len}"))
    }
}

impl<T> FromIterator<T> for Segmented<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut list = Segmented::new();
        list.extend(iter);
        list
    }
}

impl<T> Extend<T> for Segmented<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for value in iter {
            self.push(value);
        }
    }
}

/// Consumes the list in order; each segment is freed as soon as it has
/// been walked, so turning the list into something else does not hold
/// both whole.
impl<T> IntoIterator for Segmented<T> {
    type Item = T;
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Vec<T>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.segments.into_iter().flatten()
    }
}

impl<'a, T> IntoIterator for &'a Segmented<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<T>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.segments.iter().flatten()
    }
}

impl<'a, T> IntoIterator for &'a mut Segmented<T> {
    type Item = &'a mut T;
    type IntoIter = std::iter::Flatten<std::slice::IterMut<'a, Vec<T>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.segments.iter_mut().flatten()
    }
}

impl<T: fmt::Debug> fmt::Debug for Segmented<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// As a sequence, exactly like the `Vec` it replaces.
impl<T: Serialize> Serialize for Segmented<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Across many segments, order, indexing, length and serialization are a `Vec`'s.
    #[test]
    fn keeps_order_across_segments() {
        let n = Segmented::<u64>::SEGMENT_LEN * 3 + 5;
        let list: Segmented<u64> = (0..n as u64).collect();
        let vec: Vec<u64> = (0..n as u64).collect();
        assert_eq!(list.len(), n);
        assert!(list.iter().copied().eq(vec.iter().copied()));
        assert!(list.iter().rev().copied().eq(vec.iter().rev().copied()));
        assert_eq!((list[0], list[n - 1], list.get(n)), (0, n as u64 - 1, None));
        assert_eq!((list.first(), list.last()), (Some(&0), Some(&(n as u64 - 1))));
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            serde_json::to_string(&vec).unwrap()
        );
        assert_eq!(format!("{list:?}"), format!("{vec:?}"));
        assert!(list.clone().into_iter().eq(vec));
    }

    /// Elements are changed in place through `get_mut`, `IndexMut` and `iter_mut`.
    #[test]
    fn changes_in_place() {
        let n = Segmented::<u64>::SEGMENT_LEN + 2;
        let mut list: Segmented<u64> = (0..n as u64).collect();
        list[n - 1] = 100;
        *list.get_mut(1).unwrap() = 50;
        for x in list.iter_mut().take(1) {
            *x = 7;
        }
        for x in &mut list {
            *x += 1;
        }
        assert_eq!((list[0], list[1], list[n - 1]), (8, 51, 101));
    }

    /// Capacity never exceeds the length by more than one segment.
    #[test]
    fn slack_is_at_most_one_segment() {
        let seg = Segmented::<[u8; 48]>::SEGMENT_LEN;
        let mut list = Segmented::new();
        for i in 0..seg * 5 + 1 {
            list.push([0u8; 48]);
            assert!(list.capacity() - list.len() < seg, "at {i}");
        }
        assert_eq!(seg * 48, SEGMENT_BYTES - SEGMENT_BYTES % 48);
        assert_eq!(Segmented::<[u8; 100_000]>::SEGMENT_LEN, 1);
        assert!(Segmented::<u8>::new().is_empty() && Segmented::<u8>::new().first().is_none());
    }
}
