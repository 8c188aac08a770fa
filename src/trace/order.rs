//! A stable sort of trace events that borrows little memory.
//!
//! `slice::sort_by_key` is stable, and for that it borrows a buffer of up
//! to the whole slice (every element up to 8 MB of them, half of a longer
//! slice): a collected run's events, 104 bytes each, sorted once per
//! source and once merged, would hold a second copy of themselves at the
//! moment a run holds the most (issue 16). [`sort_stable_by_key`] sorts
//! `(key, position)` pairs instead, 16 bytes for a time key, with the
//! unstable sort, which sorts in place; the positions make every key
//! distinct, so the order is exactly the stable one. The events are then
//! moved into that order in place, one permutation cycle at a time.

/// Sorts `events` by `key`, keeping the order of elements with equal keys,
/// with one `(K, u32)` per element of extra memory.
pub fn sort_stable_by_key<T, K: Ord + Copy>(events: &mut [T], key: impl Fn(&T) -> K) {
    let len = u32::try_from(events.len()).expect("fewer than 2^32 events in one sort");
    if events.windows(2).all(|w| key(&w[0]) <= key(&w[1])) {
        return;
    }
    let mut order: Vec<(K, u32)> = events.iter().zip(0..len).map(|(e, at)| (key(e), at)).collect();
    order.sort_unstable();
    let mut from: Vec<u32> = order.into_iter().map(|(_, at)| at).collect();
    permute(events, &mut from);
}

/// Moves `events[from[i]]` to position `i` for every `i`, in place:
/// each cycle of the permutation is rotated by swaps, and its entries of
/// `from` are marked done (set to their own index) on the way.
fn permute<T>(events: &mut [T], from: &mut [u32]) {
    debug_assert_eq!(events.len(), from.len());
    for start in 0..from.len() {
        let mut at = start;
        // Follow the cycle through `start`: position `at` takes the element
        // at `from[at]`, which is then the hole to fill.
        loop {
            let source = from[at] as usize;
            from[at] = at as u32;
            if source == start {
                break;
            }
            events.swap(at, source);
            at = source;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order equals the standard library's stable sort, ties included.
    #[test]
    fn equals_the_stable_sort() {
        let mut seed = 0x9e37_79b9_u64;
        for len in [0, 1, 2, 3, 10, 100, 1000] {
            let items: Vec<(u8, u32)> = (0..len)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ((seed % 7) as u8, i)
                })
                .collect();
            let mut want = items.clone();
            want.sort_by_key(|&(k, _)| k);
            let mut got = items;
            sort_stable_by_key(&mut got, |&(k, _)| k);
            assert_eq!(got, want, "len {len}");
        }
    }

    /// A sorted slice is left as it is; a reversed one is reversed.
    #[test]
    fn sorted_and_reversed() {
        let mut sorted = vec![1, 2, 2, 3];
        sort_stable_by_key(&mut sorted, |&x| x);
        assert_eq!(sorted, [1, 2, 2, 3]);
        let mut reversed: Vec<u32> = (0..50).rev().collect();
        sort_stable_by_key(&mut reversed, |&x| x);
        assert_eq!(reversed, (0..50).collect::<Vec<_>>());
    }
}
