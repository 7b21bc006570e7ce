//! A hash table of `u32` values (slot numbers) in sub-tables of bounded size, so that growing
//! it never rehashes more than one sub-table (extendible hashing).
//!
//! Up to `SPLIT` entries it is one hashbrown table. Past that, a directory indexed by `depth`
//! bits of the hash points at sub-tables; a sub-table that reaches `SPLIT` entries splits in
//! two by its next hash bit (doubling the directory when it already uses all of the
//! directory's bits), and two sibling sub-tables that fall to `SPLIT / 4` entries together
//! merge back (and with their own sibling, as far as that holds). Below `SPLIT / 8` entries in
//! all, the table is one hashbrown table again (moving those entries and freeing the
//! sub-tables, which are then few or nearly empty). Growth, splits and merges each move at most
//! `SPLIT` entries.
//!
//! The values are stored without their hash: the table is given a function that hashes a value
//! again when it has to move it. The directory takes the hash bits just below the top seven
//! (which hashbrown keeps in its control bytes) and far above the ones it picks buckets with,
//! so that entries sharing a sub-table still differ in the bits hashbrown uses.

#[cfg(test)]
use super::compact::size_class;
use hashbrown::HashTable;

/// The directory of a table that has split.
#[derive(Debug)]
struct Directory {
    /// The number of entries of all sub-tables.
    len: usize,
    /// The number of hash bits that index `subs`.
    depth: u32,
    /// For each value of the `depth` bits, the sub-table that holds those hashes.
    index: Vec<u32>,
    subs: Vec<Sub>,
}

/// One sub-table: the hashes whose first `depth` directory bits are the same.
#[derive(Debug)]
struct Sub {
    depth: u32,
    table: HashTable<u32>,
}

/// A hash table of `u32` in sub-tables of at most `SPLIT` entries.
#[derive(Debug, Default)]
pub(crate) struct SplitTable<const SPLIT: usize> {
    /// The table while there is no directory.
    first: HashTable<u32>,
    dir: Option<Box<Directory>>,
}

/// The most hash bits a directory uses (those below the top seven).
const MAX_DEPTH: u32 = 57;

/// The first `depth` directory bits of `hash`.
fn prefix(hash: u64, depth: u32) -> usize {
    match depth {
        0 => 0,
        _ => ((hash << 7) >> (64 - depth)) as usize,
    }
}

/// Shrinks a table that fell below a quarter of its capacity.
fn shrink(table: &mut HashTable<u32>, hash_of: &impl Fn(u32) -> u64) {
    if table.len() < table.capacity() / 4 {
        table.shrink_to(table.len(), |&value| hash_of(value));
    }
}

impl Directory {
    /// The position in `subs` of the sub-table for `hash`.
    fn sub_of(&self, hash: u64) -> usize {
        self.index[prefix(hash, self.depth)] as usize
    }

    /// Splits sub-table `s` in two by its next hash bit.
    fn split(&mut self, s: usize, hash_of: &impl Fn(u32) -> u64) {
        let depth = self.subs[s].depth;
        if depth == self.depth {
            self.index = (0..self.index.len() * 2)
                .map(|i| self.index[i >> 1])
                .collect();
            self.depth += 1;
        }
        let bit = 56 - depth;
        let old = std::mem::take(&mut self.subs[s].table);
        let half = old.len() / 2 + old.len() / 8;
        let mut lower = HashTable::with_capacity(half);
        let mut upper = HashTable::with_capacity(half);
        for value in old {
            let hash = hash_of(value);
            let table = if (hash >> bit) & 1 == 1 {
                &mut upper
            } else {
                &mut lower
            };
            table.insert_unique(hash, value, |&v| hash_of(v));
        }
        self.subs[s] = Sub {
            depth: depth + 1,
            table: lower,
        };
        let new = self.subs.len() as u32;
        self.subs.push(Sub {
            depth: depth + 1,
            table: upper,
        });
        let shift = self.depth - depth - 1;
        for (i, entry) in self.index.iter_mut().enumerate() {
            if *entry as usize == s && (i >> shift) & 1 == 1 {
                *entry = new;
            }
        }
    }

    /// Merges sub-table `s`, which holds `hash`, with its sibling while the two hold at most
    /// `limit` entries together, and halves the directory when no sub-table uses all its bits.
    fn merge(&mut self, mut s: usize, hash: u64, limit: usize, hash_of: &impl Fn(u32) -> u64) {
        loop {
            let depth = self.subs[s].depth;
            if depth == 0 {
                break;
            }
            let sibling = self.index[(prefix(hash, depth) ^ 1) << (self.depth - depth)] as usize;
            if self.subs[sibling].depth != depth
                || self.subs[s].table.len() + self.subs[sibling].table.len() > limit
            {
                break;
            }
            let moved = std::mem::take(&mut self.subs[sibling].table);
            let table = &mut self.subs[s].table;
            for value in moved {
                table.insert_unique(hash_of(value), value, |&v| hash_of(v));
            }
            self.subs[s].depth = depth - 1;
            let last = self.subs.len() - 1;
            self.subs.swap_remove(sibling);
            for entry in self.index.iter_mut() {
                if *entry as usize == sibling {
                    *entry = s as u32;
                }
                if *entry as usize == last {
                    *entry = sibling as u32;
                }
            }
            if s == last {
                s = sibling;
            }
        }
        while self.depth > 0 && self.subs.iter().all(|sub| sub.depth < self.depth) {
            self.index = self.index.iter().step_by(2).copied().collect();
            self.depth -= 1;
        }
    }
}

impl<const SPLIT: usize> SplitTable<SPLIT> {
    /// The number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        match &self.dir {
            None => self.first.len(),
            Some(dir) => dir.len,
        }
    }

    /// The table that holds `hash`.
    fn table(&self, hash: u64) -> &HashTable<u32> {
        match &self.dir {
            None => &self.first,
            Some(dir) => &dir.subs[dir.sub_of(hash)].table,
        }
    }

    /// The value with `hash` for which `eq` holds.
    pub(crate) fn find(&self, hash: u64, eq: impl FnMut(&u32) -> bool) -> Option<u32> {
        self.table(hash).find(hash, eq).copied()
    }

    /// The value with `hash` for which `eq` holds, to change (to a value of the same hash).
    pub(crate) fn find_mut(&mut self, hash: u64, eq: impl FnMut(&u32) -> bool) -> Option<&mut u32> {
        let table = match &mut self.dir {
            None => &mut self.first,
            Some(dir) => {
                let s = dir.sub_of(hash);
                &mut dir.subs[s].table
            }
        };
        table.find_mut(hash, eq)
    }

    /// Adds `value`, which hashes to `hash` and is not in the table. `hash_of` hashes any value
    /// of the table.
    pub(crate) fn insert(&mut self, hash: u64, value: u32, hash_of: impl Fn(u32) -> u64) {
        if self.dir.is_none() && self.first.len() >= SPLIT {
            self.dir = Some(Box::new(Directory {
                len: self.first.len(),
                depth: 0,
                index: vec![0],
                subs: vec![Sub {
                    depth: 0,
                    table: std::mem::take(&mut self.first),
                }],
            }));
        }
        let table = match &mut self.dir {
            None => &mut self.first,
            Some(dir) => {
                dir.len += 1;
                let mut s = dir.sub_of(hash);
                while dir.subs[s].table.len() >= SPLIT && dir.subs[s].depth < MAX_DEPTH {
                    dir.split(s, &hash_of);
                    s = dir.sub_of(hash);
                }
                &mut dir.subs[s].table
            }
        };
        table.insert_unique(hash, value, |&v| hash_of(v));
    }

    /// Removes the value with `hash` for which `eq` holds, and returns it.
    pub(crate) fn remove(
        &mut self,
        hash: u64,
        eq: impl FnMut(&u32) -> bool,
        hash_of: impl Fn(u32) -> u64,
    ) -> Option<u32> {
        let Some(dir) = &mut self.dir else {
            let (value, _) = self.first.find_entry(hash, eq).ok()?.remove();
            shrink(&mut self.first, &hash_of);
            return Some(value);
        };
        let s = dir.sub_of(hash);
        let (value, _) = dir.subs[s].table.find_entry(hash, eq).ok()?.remove();
        dir.len -= 1;
        shrink(&mut dir.subs[s].table, &hash_of);
        dir.merge(s, hash, SPLIT / 4, &hash_of);
        if dir.subs.len() == 1 || dir.len < SPLIT / 8 {
            let mut table = HashTable::with_capacity(dir.len);
            for sub in std::mem::take(&mut dir.subs) {
                for value in sub.table {
                    table.insert_unique(hash_of(value), value, |&v| hash_of(v));
                }
            }
            self.first = table;
            self.dir = None;
        }
        Some(value)
    }

    /// Every value, in no order.
    #[cfg(test)]
    pub(crate) fn values(&self) -> Vec<u32> {
        match &self.dir {
            None => self.first.iter().copied().collect(),
            Some(dir) => dir
                .subs
                .iter()
                .flat_map(|sub| sub.table.iter().copied())
                .collect(),
        }
    }

    /// The number of sub-tables (1 before the first split).
    #[cfg(test)]
    pub(crate) fn tables(&self) -> usize {
        self.dir.as_ref().map_or(1, |dir| dir.subs.len())
    }

    /// The largest number of buckets of a sub-table.
    #[cfg(test)]
    pub(crate) fn largest_buckets(&self) -> usize {
        match &self.dir {
            None => self.first.num_buckets(),
            Some(dir) => dir
                .subs
                .iter()
                .map(|sub| sub.table.num_buckets())
                .max()
                .unwrap_or(0),
        }
    }

    /// The bytes the table takes in allocations.
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        let first = size_class(self.first.allocation_size());
        first
            + self.dir.as_ref().map_or(0, |dir| {
                size_class(size_of::<Directory>())
                    + size_class(dir.index.capacity() * 4)
                    + size_class(dir.subs.capacity() * size_of::<Sub>())
                    + dir
                        .subs
                        .iter()
                        .map(|sub| size_class(sub.table.allocation_size()))
                        .sum::<usize>()
            })
    }

    /// Checks the directory against the hashes of the values.
    #[cfg(test)]
    pub(crate) fn assert_consistent(&self, hash_of: impl Fn(u32) -> u64) {
        let Some(dir) = &self.dir else {
            assert!(self.first.len() <= SPLIT);
            return;
        };
        assert!(dir.subs.len() > 1);
        assert!(dir.len >= SPLIT / 8);
        assert_eq!(
            dir.len,
            dir.subs.iter().map(|sub| sub.table.len()).sum::<usize>()
        );
        assert!(self.first.is_empty());
        assert_eq!(dir.index.len(), 1 << dir.depth);
        assert!(dir.subs.iter().any(|sub| sub.depth == dir.depth));
        for (s, sub) in dir.subs.iter().enumerate() {
            assert!(sub.table.len() <= SPLIT);
            let pointing = dir.index.iter().filter(|&&e| e as usize == s).count();
            assert_eq!(pointing, 1 << (dir.depth - sub.depth), "sub-table {s}");
            for &value in sub.table.iter() {
                assert_eq!(dir.sub_of(hash_of(value)), s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash_of(value: u32) -> u64 {
        foldhash::fast::FixedState::with_seed(7).hash_one(value)
    }

    fn table_with(n: u32) -> SplitTable<8> {
        let mut table = SplitTable::<8>::default();
        for value in 0..n {
            table.insert(hash_of(value), value, hash_of);
        }
        table
    }

    #[test]
    fn one_table_up_to_the_split_size() {
        let table = table_with(8);
        assert_eq!(table.tables(), 1);
        assert!(table.dir.is_none());
        let table = table_with(9);
        assert_eq!(table.tables(), 2);
        table.assert_consistent(hash_of);
        assert_eq!(table.find(hash_of(3), |&v| v == 3), Some(3));
    }

    #[test]
    fn splits_and_merges_keep_every_value() {
        let mut table = table_with(2000);
        table.assert_consistent(hash_of);
        assert_eq!(table.len(), 2000);
        assert!(table.tables() >= 2000 / 8);
        assert!(table.largest_buckets() <= 16, "{}", table.largest_buckets());
        for value in 0..2000 {
            assert_eq!(table.find(hash_of(value), |&v| v == value), Some(value));
        }
        assert_eq!(table.find(hash_of(5000), |&v| v == 5000), None);
        if let Some(value) = table.find_mut(hash_of(7), |&v| v == 7) {
            *value = 7;
        }
        for value in (0..2000).rev() {
            assert_eq!(
                table.remove(hash_of(value), |&v| v == value, hash_of),
                Some(value)
            );
            assert_eq!(table.remove(hash_of(value), |&v| v == value, hash_of), None);
            if value % 97 == 0 {
                table.assert_consistent(hash_of);
                let mut values = table.values();
                values.sort_unstable();
                assert!(values.into_iter().eq(0..value));
            }
            if value < 8 / 8 {
                assert!(table.dir.is_none(), "{value} left in one table");
            }
        }
        assert_eq!(table.len(), 0);
        assert_eq!(table.tables(), 1);
    }

    #[test]
    fn a_mix_of_inserts_and_removals() {
        let mut table = SplitTable::<8>::default();
        let mut present = std::collections::BTreeSet::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let value = (x % 300) as u32;
            if present.remove(&value) {
                assert_eq!(
                    table.remove(hash_of(value), |&v| v == value, hash_of),
                    Some(value)
                );
            } else {
                table.insert(hash_of(value), value, hash_of);
                present.insert(value);
            }
            if step % 101 == 0 {
                table.assert_consistent(hash_of);
                assert_eq!(table.len(), present.len());
            }
        }
    }
}
