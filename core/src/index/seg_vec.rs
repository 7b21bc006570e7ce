//! A vector kept in chunks of `2^SHIFT` elements, so that growing or shrinking it never copies
//! more than one chunk.
//!
//! The first chunk (the head) is grown one allocator size class at a time, like a compact
//! vector: a vector that never holds more than one chunk is one allocation that fits its
//! length. Past the head, elements go to chunks allocated whole. Popping the last element of a
//! chunk keeps that chunk as a spare (one at most), so that a length moving back and forth
//! across a chunk boundary does not allocate each time.

use super::compact::{reserve_one, shrink};
#[cfg(test)]
use super::compact::{size_class, vec_bytes};
use std::ops::{Index, IndexMut};

/// A vector of `T` in chunks of `2^SHIFT` elements.
#[derive(Debug)]
pub(crate) struct SegVec<T, const SHIFT: u32> {
    /// Elements `0..2^SHIFT`. Full whenever a chunk of `tail` holds an element.
    head: Vec<T>,
    /// The chunks after the head, each allocated for `2^SHIFT` elements: full ones, then the
    /// last one that holds elements, then at most one empty spare. `None` when there is none.
    /// Boxed so that a vector of one chunk (most of them) keeps 8 bytes for it, not 24.
    #[expect(
        clippy::box_collection,
        reason = "the box keeps the field at 8 bytes in vectors without chunks"
    )]
    tail: Option<Box<Vec<Vec<T>>>>,
}

impl<T, const SHIFT: u32> Default for SegVec<T, SHIFT> {
    fn default() -> Self {
        SegVec {
            head: Vec::new(),
            tail: None,
        }
    }
}

impl<T, const SHIFT: u32> SegVec<T, SHIFT> {
    /// The number of elements a chunk holds.
    pub(crate) const CHUNK: usize = 1 << SHIFT;
    const MASK: usize = Self::CHUNK - 1;

    /// The index in `tail` of the last chunk that holds elements.
    fn last_used(tail: &[Vec<T>]) -> Option<usize> {
        tail.iter().rposition(|chunk| !chunk.is_empty())
    }

    /// The number of elements.
    pub(crate) fn len(&self) -> usize {
        let in_tail = self
            .tail
            .as_deref()
            .and_then(|tail| Self::last_used(tail).map(|last| (last << SHIFT) + tail[last].len()));
        self.head.len() + in_tail.unwrap_or(0)
    }

    /// True when there is no element.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_empty()
    }

    /// The element at `ix`.
    pub(crate) fn get(&self, ix: usize) -> Option<&T> {
        if ix < Self::CHUNK {
            self.head.get(ix)
        } else {
            self.tail
                .as_deref()?
                .get((ix >> SHIFT) - 1)?
                .get(ix & Self::MASK)
        }
    }

    /// The element at `ix`, to change.
    pub(crate) fn get_mut(&mut self, ix: usize) -> Option<&mut T> {
        if ix < Self::CHUNK {
            self.head.get_mut(ix)
        } else {
            self.tail
                .as_deref_mut()?
                .get_mut((ix >> SHIFT) - 1)?
                .get_mut(ix & Self::MASK)
        }
    }

    /// The first element.
    pub(crate) fn first(&self) -> Option<&T> {
        self.head.first()
    }

    /// Appends `value`. Copies at most the head (when it grows to its next size class).
    pub(crate) fn push(&mut self, value: T) {
        if self.head.len() < Self::CHUNK {
            reserve_one(&mut self.head, Self::CHUNK);
            self.head.push(value);
            return;
        }
        let tail = self.tail.get_or_insert_with(Box::default);
        let target = match Self::last_used(tail) {
            Some(last) if tail[last].len() < Self::CHUNK => last,
            Some(last) => last + 1,
            None => 0,
        };
        if target == tail.len() {
            tail.push(Vec::with_capacity(Self::CHUNK));
        }
        tail[target].push(value);
    }

    /// Removes and returns the last element. Frees a chunk only when another one is empty
    /// already, and shrinks the head only when no chunk is left.
    pub(crate) fn pop(&mut self) -> Option<T> {
        if let Some(tail) = self.tail.as_deref_mut() {
            if let Some(last) = Self::last_used(tail) {
                let value = tail[last].pop();
                if tail[last].is_empty() && last + 1 < tail.len() {
                    tail.pop();
                }
                return value;
            }
            if self.head.len() > Self::CHUNK / 2 {
                return self.head.pop();
            }
            self.tail = None;
        }
        let value = self.head.pop();
        shrink(&mut self.head);
        value
    }

    /// Removes the element at `ix` and puts the last one in its place. Returns the removed
    /// element, or `None` when `ix` is out of bounds.
    pub(crate) fn swap_remove(&mut self, ix: usize) -> Option<T> {
        if ix >= self.len() {
            return None;
        }
        let last = self.pop()?;
        match self.get_mut(ix) {
            Some(slot) => Some(std::mem::replace(slot, last)),
            None => Some(last),
        }
    }

    /// The elements in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        let tail = self
            .tail
            .as_deref()
            .map(|tail| tail.as_slice())
            .unwrap_or_default();
        self.head.iter().chain(tail.iter().flatten())
    }

    /// The bytes the vector's buffers take (its own allocations, not the elements' own).
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        let tail = self.tail.as_deref().map_or(0, |tail| {
            vec_bytes(tail)
                + size_class(size_of::<Vec<Vec<T>>>())
                + tail.iter().map(vec_bytes).sum::<usize>()
        });
        vec_bytes(&self.head) + tail
    }

    /// The head's capacity and the number of chunks after it (spare included).
    #[cfg(test)]
    pub(crate) fn shape(&self) -> (usize, usize) {
        (
            self.head.capacity(),
            self.tail.as_deref().map_or(0, Vec::len),
        )
    }
}

impl<T, const SHIFT: u32> Index<usize> for SegVec<T, SHIFT> {
    type Output = T;

    fn index(&self, ix: usize) -> &T {
        match self.get(ix) {
            Some(value) => value,
            None => panic!("index {ix} out of bounds"),
        }
    }
}

impl<T, const SHIFT: u32> IndexMut<usize> for SegVec<T, SHIFT> {
    fn index_mut(&mut self, ix: usize) -> &mut T {
        match self.get_mut(ix) {
            Some(value) => value,
            None => panic!("index {ix} out of bounds"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Small = SegVec<u64, 3>;

    #[test]
    fn pushes_and_pops_across_chunks() {
        let mut vec = Small::default();
        assert!(vec.is_empty());
        assert_eq!(vec.pop(), None);
        for i in 0..100 {
            vec.push(i);
            assert_eq!(vec.len(), i as usize + 1);
        }
        assert_eq!(vec.shape(), (8, 12));
        assert!(vec.iter().copied().eq(0..100));
        assert_eq!(vec[63], 63);
        assert_eq!(vec.get(100), None);
        for i in (0..100).rev() {
            assert_eq!(vec.pop(), Some(i));
            assert_eq!(vec.len(), i as usize);
        }
        assert_eq!(vec.shape(), (0, 0));
        assert!(vec.is_empty());
    }

    #[test]
    fn keeps_one_spare_chunk_at_a_boundary() {
        let mut vec = Small::default();
        for i in 0..24 {
            vec.push(i);
        }
        assert_eq!(vec.shape().1, 2);
        for _ in 0..10 {
            vec.push(24);
            assert_eq!(vec.shape().1, 3);
            vec.pop();
            assert_eq!(vec.shape().1, 3, "the emptied chunk stays as a spare");
        }
        for _ in 0..8 {
            vec.pop();
        }
        assert_eq!(vec.len(), 16);
        assert_eq!(vec.shape().1, 2, "one spare at most");
        for _ in 0..8 {
            vec.pop();
        }
        assert_eq!(vec.shape(), (8, 1));
        vec.push(8);
        assert_eq!(vec.shape(), (8, 1), "the spare is used again");
        vec.pop();
        for _ in 0..4 {
            vec.pop();
        }
        assert_eq!(vec.len(), 4);
        assert_eq!(
            vec.shape().1,
            1,
            "the head stays full while a spare is kept"
        );
        vec.pop();
        assert_eq!(vec.len(), 3);
        assert_eq!(vec.shape().1, 0);
        assert!(vec.iter().copied().eq(0..3));
    }

    #[test]
    fn the_head_grows_by_size_class_up_to_a_chunk() {
        let mut vec: SegVec<[u8; 64], 9> = SegVec::default();
        let mut capacities = Vec::new();
        for _ in 0..2000 {
            vec.push([0; 64]);
            let capacity = vec.shape().0;
            if capacities.last() != Some(&capacity) {
                capacities.push(capacity);
            }
        }
        assert_eq!(capacities.last(), Some(&512));
        for pair in capacities.windows(2).filter(|pair| pair[0] >= 8) {
            assert!(pair[1] * 4 <= pair[0] * 5, "{pair:?}");
        }
        assert_eq!(vec.shape().1, 3);
    }

    #[test]
    fn swap_remove_moves_the_last_element() {
        let mut vec = Small::default();
        for i in 0..20 {
            vec.push(i);
        }
        assert_eq!(vec.swap_remove(3), Some(3));
        assert_eq!(vec[3], 19);
        assert_eq!(vec.swap_remove(18), Some(18));
        assert_eq!(vec.len(), 18);
        assert_eq!(vec.swap_remove(18), None);
    }
}
