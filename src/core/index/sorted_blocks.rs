//! Values (slot numbers) kept in an order they cannot compute themselves (the user ids of the
//! slots they name), in blocks of at most `MAX` values, like Python's sortedcontainers.
//!
//! A value is found by two binary searches: over the blocks by their last value, then inside
//! one block. An insertion or removal moves at most one block's values; a block that passes
//! `MAX` splits in two, one that falls under `MAX / 4` merges with a neighbour (and splits again
//! if the two are more than `MAX`). Every comparison is made by a function the caller gives,
//! from a value to the key looked for.

#[cfg(test)]
use super::compact::vec_bytes;
use super::compact::{reserve_one, shrink};
use std::cmp::Ordering;

/// Where a value is: its block and its position in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct At {
    block: usize,
    pos: usize,
}

/// Values in an order given by the caller, in blocks of at most `MAX`.
#[derive(Debug, Default)]
pub(crate) struct SortedBlocks<const MAX: usize> {
    /// Never an empty block.
    blocks: Vec<Vec<u32>>,
}

impl<const MAX: usize> SortedBlocks<MAX> {
    /// Blocks of `values`, which are in order: one block when they fit, else blocks half full.
    pub(crate) fn from_sorted(values: Vec<u32>) -> Self {
        let blocks = if values.is_empty() {
            Vec::new()
        } else if values.len() <= MAX {
            vec![values]
        } else {
            values.chunks(MAX / 2).map(<[u32]>::to_vec).collect()
        };
        SortedBlocks { blocks }
    }

    /// The first place whose value is not `Less` than the key by `cmp` (a value compared to the
    /// key), or the end.
    fn lower_bound(&self, cmp: impl Fn(u32) -> Ordering) -> At {
        self.bound(|value| cmp(value) == Ordering::Less)
    }

    /// The first place whose value is not before the key by `before`, or the end.
    fn bound(&self, before: impl Fn(u32) -> bool) -> At {
        let block = self
            .blocks
            .partition_point(|b| b.last().is_some_and(|&last| before(last)));
        let pos = self
            .blocks
            .get(block)
            .map_or(0, |b| b.partition_point(|&value| before(value)));
        At { block, pos }
    }

    /// The place of the value equal to the key by `cmp`.
    pub(crate) fn find(&self, cmp: impl Fn(u32) -> Ordering) -> Option<At> {
        let at = self.lower_bound(&cmp);
        let value = *self.blocks.get(at.block)?.get(at.pos)?;
        (cmp(value) == Ordering::Equal).then_some(at)
    }

    /// The first place whose value is after the key by `cmp`.
    pub(crate) fn after(&self, cmp: impl Fn(u32) -> Ordering) -> At {
        self.bound(|value| cmp(value) != Ordering::Greater)
    }

    /// The first place.
    pub(crate) fn start(&self) -> At {
        At { block: 0, pos: 0 }
    }

    /// Inserts `value`, whose key is the one `cmp` compares to, at its place (after the values
    /// equal to it).
    pub(crate) fn insert(&mut self, value: u32, cmp: impl Fn(u32) -> Ordering) {
        let mut at = self.after(cmp);
        if at.block == self.blocks.len() {
            match self.blocks.last() {
                Some(last) => {
                    at = At {
                        block: self.blocks.len() - 1,
                        pos: last.len(),
                    }
                }
                None => {
                    self.blocks = vec![vec![value]];
                    return;
                }
            }
        }
        let block = &mut self.blocks[at.block];
        reserve_one(block, MAX + 1);
        block.insert(at.pos, value);
        if block.len() > MAX {
            let upper = block.split_off(block.len() / 2);
            self.blocks.insert(at.block + 1, upper);
        }
    }

    /// Removes the value at `at` and returns it.
    pub(crate) fn remove(&mut self, at: At) -> Option<u32> {
        let count = self.blocks.len();
        let block = self.blocks.get_mut(at.block)?;
        if at.pos >= block.len() {
            return None;
        }
        let value = block.remove(at.pos);
        if block.is_empty() {
            self.blocks.remove(at.block);
            shrink(&mut self.blocks);
        } else if block.len() < MAX / 4 && count > 1 {
            let low = if at.block + 1 < self.blocks.len() {
                at.block
            } else {
                at.block - 1
            };
            let high = self.blocks.remove(low + 1);
            let merged = &mut self.blocks[low];
            merged.extend_from_slice(&high);
            if merged.len() > MAX {
                let upper = merged.split_off(merged.len() / 2);
                self.blocks.insert(low + 1, upper);
            }
            shrink(&mut self.blocks);
        } else {
            shrink(block);
        }
        Some(value)
    }

    /// Replaces the value at `at` (by one of the same key).
    pub(crate) fn set(&mut self, at: At, value: u32) {
        if let Some(slot) = self
            .blocks
            .get_mut(at.block)
            .and_then(|b| b.get_mut(at.pos))
        {
            *slot = value;
        }
    }

    /// The values from `at` on, in order.
    pub(crate) fn iter_from(&self, at: At) -> impl Iterator<Item = u32> + '_ {
        let first = self
            .blocks
            .get(at.block)
            .and_then(|b| b.get(at.pos..))
            .unwrap_or_default();
        let rest = self.blocks.get(at.block + 1..).unwrap_or_default();
        first.iter().chain(rest.iter().flatten()).copied()
    }

    /// The bytes the blocks take in allocations.
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        vec_bytes(&self.blocks) + self.blocks.iter().map(vec_bytes).sum::<usize>()
    }

    /// The number of values in each block.
    #[cfg(test)]
    pub(crate) fn block_lens(&self) -> Vec<usize> {
        self.blocks.iter().map(Vec::len).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values ordered by their key in `keys`.
    fn by<'a>(keys: &'a [u32], key: u32) -> impl Fn(u32) -> Ordering + 'a {
        move |value| keys[value as usize].cmp(&key)
    }

    fn all(blocks: &SortedBlocks<8>) -> Vec<u32> {
        blocks.iter_from(blocks.start()).collect()
    }

    #[test]
    fn keeps_the_order_of_the_keys_across_splits() {
        let keys: Vec<u32> = (0..200).map(|i| (i * 7919) % 200).collect();
        let mut blocks = SortedBlocks::<8>::default();
        for value in 0..200 {
            blocks.insert(value, by(&keys, keys[value as usize]));
        }
        let got: Vec<u32> = all(&blocks).into_iter().map(|v| keys[v as usize]).collect();
        assert!(got.into_iter().eq(0..200));
        assert!(blocks
            .block_lens()
            .iter()
            .all(|&len| (4..=8).contains(&len)));
        for key in 0..200 {
            let at = blocks.find(by(&keys, key)).unwrap();
            let from: Vec<u32> = blocks.iter_from(at).map(|v| keys[v as usize]).collect();
            assert!(from.into_iter().eq(key..200));
            let after: Vec<u32> = blocks
                .iter_from(blocks.after(by(&keys, key)))
                .map(|v| keys[v as usize])
                .collect();
            assert!(after.into_iter().eq(key + 1..200));
        }
        assert_eq!(blocks.find(by(&keys, 500)), None);
        assert_eq!(blocks.iter_from(blocks.after(by(&keys, 500))).count(), 0);
    }

    #[test]
    fn removals_merge_blocks_and_empty_them() {
        let keys: Vec<u32> = (0..100).collect();
        let mut blocks = SortedBlocks::<8>::default();
        for value in 0..100 {
            blocks.insert(value, by(&keys, value));
        }
        for value in (0..100).step_by(3) {
            let at = blocks.find(by(&keys, value)).unwrap();
            assert_eq!(blocks.remove(at), Some(value));
            assert_eq!(blocks.find(by(&keys, value)), None);
            let lens = blocks.block_lens();
            assert!(lens.iter().all(|&len| len <= 8 && len > 0), "{lens:?}");
        }
        let want: Vec<u32> = (0..100).filter(|v| v % 3 != 0).collect();
        assert_eq!(all(&blocks), want);
        for value in want {
            let at = blocks.find(by(&keys, value)).unwrap();
            blocks.remove(at);
        }
        assert!(blocks.block_lens().is_empty());
        assert_eq!(blocks.remove(blocks.start()), None);
        assert_eq!(all(&blocks), Vec::<u32>::new());
    }

    #[test]
    fn built_from_sorted_values() {
        let keys: Vec<u32> = (0..20).collect();
        let blocks = SortedBlocks::<8>::from_sorted((0..20).collect());
        assert_eq!(blocks.block_lens(), [4, 4, 4, 4, 4]);
        assert!(all(&blocks).into_iter().eq(0..20));
        assert_eq!(
            blocks
                .find(by(&keys, 13))
                .map(|at| blocks.iter_from(at).count()),
            Some(7)
        );
        assert_eq!(SortedBlocks::<8>::from_sorted(vec![1, 2]).block_lens(), [2]);
        assert!(SortedBlocks::<8>::from_sorted(Vec::new())
            .block_lens()
            .is_empty());
    }

    #[test]
    fn set_renames_a_value_in_place() {
        let keys = [5, 3, 9, 3];
        let mut blocks = SortedBlocks::<8>::default();
        for value in 0..3 {
            blocks.insert(value, by(&keys, keys[value as usize]));
        }
        let at = blocks.find(by(&keys, 3)).unwrap();
        blocks.set(at, 3);
        assert_eq!(all(&blocks), [3, 0, 2]);
    }
}
