//! Values (slot numbers) kept in an order they cannot compute themselves (the user ids of the
//! slots they name), in blocks of at most `MAX` values, like Python's sortedcontainers, with an
//! upper bound of the expiry of each block's values, so that a listing of the live ones skips
//! the blocks that hold none.
//!
//! A value is found by two binary searches: over the blocks by their last value, then inside
//! one block. An insertion or removal moves at most one block's values; a block that passes
//! `MAX` splits in two, one that falls under `MAX / 4` merges with a neighbour (and splits again
//! if the two are more than `MAX`). Every comparison is made by a function the caller gives,
//! from a value to the key looked for; so is every expiry.
//!
//! The values are the numbers `0..len` (the slots of a room): a new value is the current
//! length, and the removal of a value renames the last one to it (the caller's swap-remove),
//! which the caller then writes with [`SortedBlocks::set`].
//!
//! Values that fit one block are that block alone, without an expiry bound: a listing there
//! reads at most `MAX` values, and a change of expiry touches nothing. With more, each block
//! has a stable id (its place in a slab) and a *ceiling*, at least the expiry of every value it
//! holds; a vector gives the block id of each value, so that a value whose expiry grows raises
//! its block's ceiling in O(1). A listing skips every block whose ceiling is at or below the
//! cutoff, and lowers the ceiling of a block it read whole to the largest expiry there.

use super::compact::{fit, reserve_one, shrink, split_point};
#[cfg(test)]
use super::compact::{size_class, vec_bytes};
use super::seg_vec::SegVec;
use std::cmp::Ordering;

/// Where a value is: its block (its place in the order of blocks) and its position there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct At {
    block: usize,
    pos: usize,
}

/// Values in an order given by the caller, in blocks of at most `MAX`.
#[derive(Debug, Default)]
pub(crate) struct SortedBlocks<const MAX: usize> {
    blocks: Blocks,
}

/// The blocks, by how many there are.
#[derive(Debug, Default)]
enum Blocks {
    /// No value.
    #[default]
    Empty,
    /// One block, of at most `MAX` values (never empty).
    One(Vec<u32>),
    /// Two blocks or more.
    Many(Box<Many>),
}

/// Two blocks or more, each with a ceiling.
#[derive(Debug)]
struct Many {
    /// The blocks, by id: as many as `order`.
    slab: Vec<Block>,
    /// The block ids in order.
    order: Vec<u32>,
    /// The id of the block of each value.
    block_of: SegVec<u32, 12>,
}

/// One block of [`Many`].
#[derive(Debug)]
struct Block {
    /// Never empty.
    values: Vec<u32>,
    /// At least the expiry of every value of the block.
    ceiling: i64,
}

/// The largest expiry of `values`.
fn highest(values: &[u32], expiry: impl Fn(u32) -> i64) -> i64 {
    values
        .iter()
        .map(|&value| expiry(value))
        .max()
        .unwrap_or(i64::MIN)
}

#[cfg(test)]
thread_local! {
    /// The blocks and values listings looked at on this thread.
    static VISITED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts blocks or values a listing looked at.
#[inline]
fn visit(_count: usize) {
    #[cfg(test)]
    VISITED.with(|visited| visited.set(visited.get() + _count));
}

/// The blocks and values listings on this thread looked at so far.
#[cfg(test)]
pub(crate) fn visited() -> usize {
    VISITED.with(std::cell::Cell::get)
}

impl Many {
    /// Makes `values` the block with id `id` (a new id when it is the slab's length), with
    /// the given ceiling, and records it as the block of each of its values.
    fn place(&mut self, id: u32, values: Vec<u32>, ceiling: i64) {
        for &value in &values {
            self.block_of[value as usize] = id;
        }
        let block = Block { values, ceiling };
        match self.slab.get_mut(id as usize) {
            Some(slot) => *slot = block,
            None => self.slab.push(block),
        }
    }

    /// Drops the block at place `block` of the order (emptied or merged): the last block of
    /// the slab takes its id. Costs the number of blocks and the values of the moved block.
    fn drop_block(&mut self, block: usize) {
        let id = self.order.remove(block);
        let last = (self.slab.len() - 1) as u32;
        self.slab.swap_remove(id as usize);
        if id != last {
            if let Some(place) = self.order.iter_mut().find(|other| **other == last) {
                *place = id;
            }
            for &value in &self.slab[id as usize].values {
                self.block_of[value as usize] = id;
            }
        }
        shrink(&mut self.order);
        shrink(&mut self.slab);
    }
}

impl<const MAX: usize> SortedBlocks<MAX> {
    /// Blocks of `values`, which are in order and are the numbers `0..values.len()`: one block
    /// when they fit, else blocks about half full (a third at least), with the exact ceilings
    /// given by `expiry`.
    pub(crate) fn from_sorted(values: Vec<u32>, expiry: impl Fn(u32) -> i64) -> Self {
        let blocks = if values.is_empty() {
            Blocks::Empty
        } else if values.len() <= MAX {
            Blocks::One(values)
        } else {
            let mut many = Many {
                slab: Vec::new(),
                order: Vec::new(),
                block_of: SegVec::default(),
            };
            for _ in 0..values.len() {
                many.block_of.push(0);
            }
            let count = values.len().div_ceil(MAX / 2);
            for id in 0..count {
                let chunk = &values[id * values.len() / count..(id + 1) * values.len() / count];
                let ceiling = highest(chunk, &expiry);
                many.place(id as u32, chunk.to_vec(), ceiling);
                many.order.push(id as u32);
            }
            Blocks::Many(Box::new(many))
        };
        SortedBlocks { blocks }
    }

    /// The number of blocks.
    fn block_count(&self) -> usize {
        match &self.blocks {
            Blocks::Empty => 0,
            Blocks::One(_) => 1,
            Blocks::Many(many) => many.order.len(),
        }
    }

    /// The values of the block at place `block`.
    fn block(&self, block: usize) -> Option<&[u32]> {
        match &self.blocks {
            Blocks::Empty => None,
            Blocks::One(values) => (block == 0).then_some(values.as_slice()),
            Blocks::Many(many) => {
                let id = *many.order.get(block)?;
                Some(&many.slab[id as usize].values)
            }
        }
    }

    /// The first place whose value is not `Less` than the key by `cmp` (a value compared to the
    /// key), or the end.
    fn lower_bound(&self, cmp: impl Fn(u32) -> Ordering) -> At {
        self.bound(|value| cmp(value) == Ordering::Less)
    }

    /// The first place whose value is not before the key by `before`, or the end.
    fn bound(&self, before: impl Fn(u32) -> bool) -> At {
        let last_before = |values: &[u32]| values.last().is_some_and(|&last| before(last));
        let block = match &self.blocks {
            Blocks::Empty => 0,
            Blocks::One(values) => usize::from(last_before(values)),
            Blocks::Many(many) => many
                .order
                .partition_point(|&id| last_before(&many.slab[id as usize].values)),
        };
        let pos = self
            .block(block)
            .map_or(0, |values| values.partition_point(|&value| before(value)));
        At { block, pos }
    }

    /// The place of the value equal to the key by `cmp`.
    pub(crate) fn find(&self, cmp: impl Fn(u32) -> Ordering) -> Option<At> {
        let at = self.lower_bound(&cmp);
        let value = *self.block(at.block)?.get(at.pos)?;
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

    /// Inserts `value`, the current number of values, whose key is the one `cmp` compares to,
    /// at its place (after the values equal to it). `expiry` gives the expiry of any value,
    /// the new one included: its block's ceiling rises to it, and a block that splits gets the
    /// exact ceilings of its halves.
    pub(crate) fn insert(
        &mut self,
        value: u32,
        cmp: impl Fn(u32) -> Ordering,
        expiry: impl Fn(u32) -> i64,
    ) {
        let mut at = self.after(cmp);
        if at.block == self.block_count() {
            match self.block(at.block.wrapping_sub(1)) {
                Some(last) => {
                    at = At {
                        block: at.block - 1,
                        pos: last.len(),
                    }
                }
                None => {
                    self.blocks = Blocks::One(vec![value]);
                    return;
                }
            }
        }
        match &mut self.blocks {
            Blocks::Empty => {}
            Blocks::One(values) => {
                reserve_one(values, MAX + 1);
                values.insert(at.pos, value);
                if values.len() > MAX {
                    let lower = std::mem::take(values);
                    let mut many = Many {
                        slab: Vec::new(),
                        order: vec![0, 1],
                        block_of: SegVec::default(),
                    };
                    for _ in 0..lower.len() {
                        many.block_of.push(0);
                    }
                    let point = split_point(lower.len(), at.pos, MAX);
                    Self::split(&mut many, lower, point, [0, 1], &expiry);
                    self.blocks = Blocks::Many(Box::new(many));
                }
            }
            Blocks::Many(many) => {
                let id = many.order[at.block];
                many.block_of.push(id);
                let block = &mut many.slab[id as usize];
                reserve_one(&mut block.values, MAX + 1);
                block.values.insert(at.pos, value);
                block.ceiling = block.ceiling.max(expiry(value));
                if block.values.len() > MAX {
                    let values = std::mem::take(&mut block.values);
                    let point = split_point(values.len(), at.pos, MAX);
                    let upper = many.slab.len() as u32;
                    many.order.insert(at.block + 1, upper);
                    Self::split(many, values, point, [id, upper], &expiry);
                }
            }
        }
    }

    /// Puts `values` before `point` in block `ids[0]`, the others in block `ids[1]`, each with
    /// its exact ceiling.
    fn split(
        many: &mut Many,
        mut values: Vec<u32>,
        point: usize,
        ids: [u32; 2],
        expiry: impl Fn(u32) -> i64,
    ) {
        let high = values.split_off(point);
        fit(&mut values);
        let (low_ceiling, high_ceiling) = (highest(&values, &expiry), highest(&high, &expiry));
        many.place(ids[0], values, low_ceiling);
        many.place(ids[1], high, high_ceiling);
    }

    /// Removes the value at `at` and returns it. Unless it was the last value, the caller then
    /// renames the last value to it ([`SortedBlocks::set`]).
    pub(crate) fn remove(&mut self, at: At) -> Option<u32> {
        match &mut self.blocks {
            Blocks::Empty => None,
            Blocks::One(values) => {
                if at.block != 0 || at.pos >= values.len() {
                    return None;
                }
                let value = values.remove(at.pos);
                if values.is_empty() {
                    self.blocks = Blocks::Empty;
                } else {
                    shrink(values);
                }
                Some(value)
            }
            Blocks::Many(many) => {
                let id = *many.order.get(at.block)?;
                let block = &mut many.slab[id as usize];
                if at.pos >= block.values.len() {
                    return None;
                }
                let value = block.values.remove(at.pos);
                if block.values.is_empty() {
                    many.drop_block(at.block);
                } else if block.values.len() < MAX / 4 {
                    let low = if at.block + 1 < many.order.len() {
                        at.block
                    } else {
                        at.block - 1
                    };
                    let (low_id, high_id) = (many.order[low], many.order[low + 1]);
                    let high = std::mem::take(&mut many.slab[high_id as usize]);
                    let merged = &mut many.slab[low_id as usize];
                    merged.ceiling = merged.ceiling.max(high.ceiling);
                    let ceiling = merged.ceiling;
                    if merged.values.len() + high.values.len() > MAX {
                        let mut values = std::mem::take(&mut merged.values);
                        values.extend_from_slice(&high.values);
                        let upper = values.split_off(values.len() / 2);
                        fit(&mut values);
                        many.place(low_id, values, ceiling);
                        many.place(high_id, upper, ceiling);
                    } else {
                        merged.values.extend_from_slice(&high.values);
                        for &moved in &high.values {
                            many.block_of[moved as usize] = low_id;
                        }
                        many.drop_block(low + 1);
                    }
                } else {
                    shrink(&mut block.values);
                }
                many.block_of.swap_remove(value as usize);
                if many.order.len() == 1 {
                    let id = many.order[0] as usize;
                    let values = std::mem::take(&mut many.slab[id].values);
                    self.blocks = Blocks::One(values);
                }
                Some(value)
            }
        }
    }

    /// Replaces the value at `at` by `value`: the last value renamed to the one just removed.
    pub(crate) fn set(&mut self, at: At, value: u32) {
        let slot = match &mut self.blocks {
            Blocks::Empty => None,
            Blocks::One(values) => values.get_mut(at.pos).filter(|_| at.block == 0),
            Blocks::Many(many) => many
                .order
                .get(at.block)
                .and_then(|&id| many.slab[id as usize].values.get_mut(at.pos)),
        };
        if let Some(slot) = slot {
            *slot = value;
        }
    }

    /// Notes that the expiry of `value` is now `expire_at`: its block's ceiling rises to it.
    /// O(1).
    #[inline]
    pub(crate) fn raise(&mut self, value: u32, expire_at: i64) {
        if let Blocks::Many(many) = &mut self.blocks {
            let id = many.block_of[value as usize];
            let block = &mut many.slab[id as usize];
            block.ceiling = block.ceiling.max(expire_at);
        }
    }

    /// The values from `at` on whose expiry by `expiry` is above `cutoff` and that `keep`
    /// admits, in order, at most `limit`. Skips the blocks whose ceiling is at or below
    /// `cutoff`, and lowers the ceiling of each block read whole to its largest expiry (of every
    /// value, kept or not).
    pub(crate) fn live_from(
        &mut self,
        at: At,
        cutoff: i64,
        limit: usize,
        expiry: impl Fn(u32) -> i64,
        keep: impl Fn(u32) -> bool,
    ) -> Vec<u32> {
        let mut found = Vec::new();
        if limit == 0 {
            return found;
        }
        let read = |values: &[u32], found: &mut Vec<u32>| -> Option<i64> {
            let mut high = i64::MIN;
            for (n, &value) in values.iter().enumerate() {
                let at = expiry(value);
                high = high.max(at);
                if at > cutoff && keep(value) {
                    found.push(value);
                    if found.len() == limit {
                        visit(n + 1);
                        return (n + 1 == values.len()).then_some(high);
                    }
                }
            }
            visit(values.len());
            Some(high)
        };
        match &mut self.blocks {
            Blocks::Empty => {}
            Blocks::One(values) => {
                if let Some(values) = values.get(at.pos..).filter(|_| at.block == 0) {
                    read(values, &mut found);
                }
            }
            Blocks::Many(many) => {
                for block in at.block..many.order.len() {
                    visit(1);
                    let id = many.order[block] as usize;
                    let Block { values, ceiling } = &mut many.slab[id];
                    if *ceiling <= cutoff {
                        continue;
                    }
                    let from = if block == at.block { at.pos } else { 0 };
                    let whole = read(values.get(from..).unwrap_or_default(), &mut found);
                    if let Some(high) = whole.filter(|_| from == 0) {
                        *ceiling = high;
                    }
                    if found.len() == limit {
                        break;
                    }
                }
            }
        }
        found
    }

    /// The values from `at` on, in order.
    #[cfg(test)]
    pub(crate) fn iter_from(&self, at: At) -> impl Iterator<Item = u32> + '_ {
        let first = self
            .block(at.block)
            .and_then(|b| b.get(at.pos..))
            .unwrap_or_default();
        let rest = (at.block + 1..self.block_count())
            .flat_map(|block| self.block(block).unwrap_or_default().iter());
        first.iter().chain(rest).copied()
    }

    /// The bytes the blocks take in allocations.
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        match &self.blocks {
            Blocks::Empty => 0,
            Blocks::One(values) => vec_bytes(values),
            Blocks::Many(many) => {
                size_class(size_of::<Many>())
                    + vec_bytes(&many.slab)
                    + vec_bytes(&many.order)
                    + many.block_of.allocated_bytes()
                    + many
                        .slab
                        .iter()
                        .map(|block| vec_bytes(&block.values))
                        .sum::<usize>()
            }
        }
    }

    /// The number of values in each block.
    #[cfg(test)]
    pub(crate) fn block_lens(&self) -> Vec<usize> {
        (0..self.block_count())
            .map(|block| self.block(block).map_or(0, <[u32]>::len))
            .collect()
    }

    /// The ceiling of each block, `None` for the single block of a set that fits one.
    #[cfg(test)]
    pub(crate) fn ceilings(&self) -> Vec<Option<i64>> {
        match &self.blocks {
            Blocks::Many(many) => many
                .order
                .iter()
                .map(|&id| Some(many.slab[id as usize].ceiling))
                .collect(),
            _ => vec![None; self.block_count()],
        }
    }

    /// Checks the invariants: blocks within bounds, ids and the block of each value in step,
    /// each ceiling at least the expiry by `expiry` of each value of its block.
    #[cfg(test)]
    pub(crate) fn assert_consistent(&self, expiry: impl Fn(u32) -> i64) {
        let lens = self.block_lens();
        assert!(lens.iter().all(|&len| len > 0 && len <= MAX), "{lens:?}");
        let len: usize = lens.iter().sum();
        let mut values: Vec<u32> = self.iter_from(self.start()).collect();
        values.sort_unstable();
        assert!(values.iter().copied().eq(0..len as u32), "values 0..{len}");
        let Blocks::Many(many) = &self.blocks else {
            return;
        };
        assert!(many.order.len() >= 2);
        assert_eq!(many.slab.len(), many.order.len());
        let mut ids = many.order.clone();
        ids.sort_unstable();
        assert!(ids.iter().copied().eq(0..many.slab.len() as u32), "ids");
        assert_eq!(many.block_of.len(), len);
        for (id, block) in many.slab.iter().enumerate() {
            for &value in &block.values {
                assert_eq!(
                    many.block_of[value as usize] as usize, id,
                    "block of {value}"
                );
                assert!(expiry(value) <= block.ceiling, "ceiling of block {id}");
            }
        }
    }
}

impl Default for Block {
    fn default() -> Self {
        Block {
            values: Vec::new(),
            ceiling: i64::MIN,
        }
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

    /// The expiry of a value in the tests: ten times its key.
    fn ten_times(keys: &[u32]) -> impl Fn(u32) -> i64 + '_ {
        move |value| i64::from(keys[value as usize]) * 10
    }

    #[test]
    fn keeps_the_order_of_the_keys_across_splits() {
        let keys: Vec<u32> = (0..200).map(|i| (i * 7919) % 200).collect();
        let mut blocks = SortedBlocks::<8>::default();
        for value in 0..200 {
            blocks.insert(value, by(&keys, keys[value as usize]), ten_times(&keys));
            blocks.assert_consistent(ten_times(&keys));
        }
        let got: Vec<u32> = all(&blocks).into_iter().map(|v| keys[v as usize]).collect();
        assert!(got.into_iter().eq(0..200));
        assert!(blocks
            .block_lens()
            .iter()
            .all(|&len| (2..=8).contains(&len)));
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

    /// Removes the value of `key` as a room does: the last value takes its number.
    fn remove_key(blocks: &mut SortedBlocks<8>, keys: &mut Vec<u32>, key: u32) {
        let value = keys.iter().position(|&k| k == key).unwrap() as u32;
        let at = blocks.find(by(keys, key)).unwrap();
        assert_eq!(blocks.remove(at), Some(value));
        let last = keys.len() as u32 - 1;
        if value != last {
            let at = blocks.find(by(keys, keys[last as usize])).unwrap();
            blocks.set(at, value);
        }
        keys.swap_remove(value as usize);
    }

    #[test]
    fn removals_merge_blocks_and_empty_them() {
        let mut keys: Vec<u32> = (0..100).collect();
        let mut blocks = SortedBlocks::<8>::default();
        for value in 0..100 {
            blocks.insert(value, by(&keys, value), ten_times(&keys));
        }
        for key in (0..100).step_by(3) {
            remove_key(&mut blocks, &mut keys, key);
            assert_eq!(blocks.find(by(&keys, key)), None);
            blocks.assert_consistent(ten_times(&keys));
        }
        let want: Vec<u32> = (0..100).filter(|v| v % 3 != 0).collect();
        let got: Vec<u32> = all(&blocks).iter().map(|&v| keys[v as usize]).collect();
        assert_eq!(got, want);
        for key in want {
            remove_key(&mut blocks, &mut keys, key);
            blocks.assert_consistent(ten_times(&keys));
        }
        assert!(blocks.block_lens().is_empty());
        assert_eq!(blocks.remove(blocks.start()), None);
        assert_eq!(all(&blocks), Vec::<u32>::new());
    }

    #[test]
    fn built_from_sorted_values() {
        let keys: Vec<u32> = (0..20).collect();
        let blocks = SortedBlocks::<8>::from_sorted((0..20).collect(), ten_times(&keys));
        assert_eq!(blocks.block_lens(), [4, 4, 4, 4, 4]);
        assert_eq!(
            blocks.ceilings(),
            [Some(30), Some(70), Some(110), Some(150), Some(190)]
        );
        blocks.assert_consistent(ten_times(&keys));
        assert!(all(&blocks).into_iter().eq(0..20));
        assert_eq!(
            blocks
                .find(by(&keys, 13))
                .map(|at| blocks.iter_from(at).count()),
            Some(7)
        );
        let nine = SortedBlocks::<8>::from_sorted((0..9).collect(), ten_times(&keys));
        assert_eq!(nine.block_lens(), [3, 3, 3]);
        let two = SortedBlocks::<8>::from_sorted(vec![1, 0], ten_times(&keys));
        assert_eq!((two.block_lens(), two.ceilings()), (vec![2], vec![None]));
        assert!(SortedBlocks::<8>::from_sorted(Vec::new(), ten_times(&keys))
            .block_lens()
            .is_empty());
    }

    #[test]
    fn set_renames_a_value_in_place() {
        let mut keys = vec![5, 3, 9];
        let mut blocks = SortedBlocks::<8>::default();
        for value in 0..3 {
            blocks.insert(value, by(&keys, keys[value as usize]), ten_times(&keys));
        }
        remove_key(&mut blocks, &mut keys, 5);
        assert_eq!(keys, [9, 3]);
        assert_eq!(all(&blocks), [1, 0]);
    }

    #[test]
    fn one_block_splits_into_many_and_many_fall_back_to_one() {
        let mut keys: Vec<u32> = Vec::new();
        let mut blocks = SortedBlocks::<8>::default();
        for key in 0..9 {
            keys.push(key);
            blocks.insert(key, by(&keys, key), ten_times(&keys));
        }
        // Split where the last one came in, a quarter of a block kept above it.
        assert_eq!(blocks.block_lens(), [7, 2]);
        assert_eq!(blocks.ceilings(), [Some(60), Some(80)]);
        blocks.assert_consistent(ten_times(&keys));
        // The upper block falls under MAX / 4 and merges: one block again.
        remove_key(&mut blocks, &mut keys, 7);
        blocks.assert_consistent(ten_times(&keys));
        assert_eq!(blocks.block_lens(), [8]);
        assert_eq!(blocks.ceilings(), [None]);
        // Past MAX again, in the lower half: split in the middle.
        keys.push(0);
        blocks.insert(8, by(&keys, 0), ten_times(&keys));
        assert_eq!(blocks.block_lens(), [4, 5]);
        assert_eq!(blocks.ceilings(), [Some(20), Some(80)]);
        blocks.assert_consistent(ten_times(&keys));
        for key in [0, 0, 1] {
            remove_key(&mut blocks, &mut keys, key);
            blocks.assert_consistent(ten_times(&keys));
        }
        assert_eq!(blocks.block_lens(), [6]);
        for key in 0..6 {
            blocks.raise(key, i64::MAX);
        }
        blocks.assert_consistent(ten_times(&keys));
    }

    #[test]
    fn a_raised_expiry_raises_its_block_only() {
        let keys: Vec<u32> = (0..32).collect();
        let mut blocks = SortedBlocks::<8>::from_sorted((0..32).collect(), ten_times(&keys));
        assert_eq!(blocks.ceilings().len(), 8);
        let mut expiries: Vec<i64> = (0..32).map(|k| k * 10).collect();
        expiries[13] = 1000;
        blocks.raise(13, 1000);
        let ceilings = blocks.ceilings();
        assert_eq!(ceilings[3], Some(1000));
        assert_eq!(ceilings[2], Some(110));
        blocks.assert_consistent(|v| expiries[v as usize]);
        // Only that block is read at 500: the others' ceilings are below.
        let before = visited();
        let live = blocks.live_from(
            blocks.start(),
            500,
            usize::MAX,
            |v| expiries[v as usize],
            |_| true,
        );
        assert_eq!(live, [13]);
        assert_eq!(visited() - before, 8 + 4);
        // An expiry that came down leaves the ceiling above it until a listing reads the block
        // whole and lowers it to the largest expiry there.
        expiries[13] = 130;
        assert!(blocks
            .live_from(blocks.start(), 0, 0, |v| expiries[v as usize], |_| true)
            .is_empty());
        assert_eq!(blocks.ceilings()[3], Some(1000));
        let live = blocks.live_from(
            blocks.start(),
            500,
            usize::MAX,
            |v| expiries[v as usize],
            |_| true,
        );
        assert!(live.is_empty());
        assert_eq!(blocks.ceilings()[3], Some(150));
    }

    #[test]
    fn listings_skip_blocks_at_or_below_the_cutoff() {
        let keys: Vec<u32> = (0..64).collect();
        let mut blocks = SortedBlocks::<8>::from_sorted((0..64).collect(), ten_times(&keys));
        let expiry = ten_times(&keys);
        let before = visited();
        let live = blocks.live_from(blocks.start(), 600, 3, &expiry, |_| true);
        assert_eq!(live, [61, 62, 63]);
        // 16 blocks looked at, 4 values read in the last one.
        assert_eq!(visited() - before, 16 + 4);
        // From the middle of a block: its values from there only.
        let at = blocks.after(by(&keys, 61));
        let live = blocks.live_from(at, 0, 2, &expiry, |_| true);
        assert_eq!(live, [62, 63]);
        let at = blocks.after(by(&keys, 63));
        assert!(blocks.live_from(at, 0, 2, &expiry, |_| true).is_empty());
        // A limit reached in a block's middle leaves its ceiling as it was.
        let live = blocks.live_from(blocks.start(), -1, 2, &expiry, |_| true);
        assert_eq!(live, [0, 1]);
        assert_eq!(blocks.ceilings()[0], Some(30));
        // Nothing live: every block skipped.
        let before = visited();
        assert!(blocks
            .live_from(blocks.start(), 630, 9, &expiry, |_| true)
            .is_empty());
        assert_eq!(visited() - before, 16);
        // One block: read from the place given, without a ceiling.
        let mut one = SortedBlocks::<8>::from_sorted((0..5).collect(), ten_times(&keys));
        assert_eq!(
            one.live_from(one.start(), 15, 9, &expiry, |_| true),
            [2, 3, 4]
        );
        let at = one.after(by(&keys, 3));
        assert_eq!(one.live_from(at, 0, 9, &expiry, |_| true), [4]);
        // Values left out by `keep` still hold their block's ceiling up.
        let odd = blocks.live_from(blocks.start(), 600, usize::MAX, &expiry, |v| v % 2 == 1);
        assert_eq!(odd, [61, 63]);
        assert_eq!(blocks.ceilings()[15], Some(630));
    }
}
