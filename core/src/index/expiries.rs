//! How many presences of a large room expire at each millisecond, kept so that the number at or
//! below any cutoff costs O(log n + blocks), whatever the cutoff and whatever the last one was.
//!
//! The distinct expiries are in increasing order in blocks of at most [`BLOCK`], each block
//! with the sum of its counts (a vector of its own, read as one run). The number at or below a
//! cutoff is the sum of the sums of the blocks before the cutoff's block (or the total less the
//! sums of the blocks from it, whichever side is shorter) and a partial sum in that block.
//! Counting a presence or forgetting one finds its block by a binary search over the blocks'
//! last expiries, then its place in the block, and moves at most one block's entries; a block
//! that passes [`BLOCK`] splits (at the new expiry when it is in the upper half, a quarter
//! of a block at least on each side: the expiries of heartbeats, which mostly come in
//! increasing order, leave blocks three quarters full behind), one that
//! falls under a quarter of it merges with a neighbour.
//!
//! A cursor remembers the last cutoff asked about and the number at or below it, kept as
//! presences are counted and forgotten, for the index's totals.

#[cfg(test)]
use super::compact::vec_bytes;
use super::compact::{fit, reserve_one, shrink, split_point};

/// The most distinct expiries in one block.
const BLOCK: usize = 512;

/// The distinct expiries of one block and the number of presences at each.
#[derive(Debug, Default)]
struct Block {
    /// Increasing, never empty.
    at: Vec<i64>,
    /// Never 0.
    counts: Vec<u32>,
}

impl Block {
    /// The last expiry.
    fn last(&self) -> i64 {
        self.at.last().copied().unwrap_or(i64::MIN)
    }

    /// The sum of `counts`.
    fn sum(counts: &[u32]) -> usize {
        counts.iter().map(|&count| count as usize).sum()
    }

    /// Splits off the entries from `pos` on.
    fn split_off(&mut self, pos: usize) -> Block {
        let upper = Block {
            at: self.at.split_off(pos),
            counts: self.counts.split_off(pos),
        };
        fit(&mut self.at);
        fit(&mut self.counts);
        upper
    }
}

/// The number of presences per expiry, and the number at or below a cursor.
#[derive(Debug)]
pub(crate) struct Expiries {
    blocks: Vec<Block>,
    /// The sum of the counts of each block of `blocks`.
    sums: Vec<u32>,
    /// The sum of `sums`.
    total: usize,
    /// The cutoff last asked about.
    cursor: i64,
    /// The number of presences with `expire_at <= cursor`.
    at_or_below: usize,
}

impl Expiries {
    /// No presence, the cursor at `cursor`.
    pub(crate) fn new(cursor: i64) -> Self {
        Expiries {
            blocks: Vec::new(),
            sums: Vec::new(),
            total: 0,
            cursor,
            at_or_below: 0,
        }
    }

    /// The block that holds `at` or would (the last one when `at` is past every expiry), and
    /// the place of `at` in it, with whether it is there. `None` when there is no block.
    fn locate(&self, at: i64) -> Option<(usize, usize, bool)> {
        let last = self.blocks.len().checked_sub(1)?;
        let block = self.blocks.partition_point(|b| b.last() < at).min(last);
        let entries = &self.blocks[block].at;
        let pos = entries.partition_point(|&other| other < at);
        Some((block, pos, entries.get(pos) == Some(&at)))
    }

    /// Counts a presence expiring at `at`.
    pub(crate) fn add(&mut self, at: i64) {
        if at <= self.cursor {
            self.at_or_below += 1;
        }
        self.total += 1;
        let Some((block, pos, found)) = self.locate(at) else {
            self.blocks.push(Block {
                at: vec![at],
                counts: vec![1],
            });
            self.sums.push(1);
            return;
        };
        self.sums[block] += 1;
        let entries = &mut self.blocks[block];
        if found {
            entries.counts[pos] += 1;
            return;
        }
        reserve_one(&mut entries.at, BLOCK + 1);
        reserve_one(&mut entries.counts, BLOCK + 1);
        entries.at.insert(pos, at);
        entries.counts.insert(pos, 1);
        let len = entries.at.len();
        if len > BLOCK {
            let upper = entries.split_off(split_point(len, pos, BLOCK));
            let upper_sum = Block::sum(&upper.counts);
            self.sums[block] -= upper_sum as u32;
            self.blocks.insert(block + 1, upper);
            self.sums.insert(block + 1, upper_sum as u32);
        }
    }

    /// Forgets a presence expiring at `at` (one that was added).
    pub(crate) fn remove(&mut self, at: i64) {
        let Some((block, pos, true)) = self.locate(at) else {
            return;
        };
        if at <= self.cursor {
            self.at_or_below -= 1;
        }
        self.total -= 1;
        self.sums[block] -= 1;
        let many = self.blocks.len() > 1;
        let entries = &mut self.blocks[block];
        entries.counts[pos] -= 1;
        if entries.counts[pos] > 0 {
            return;
        }
        entries.at.remove(pos);
        entries.counts.remove(pos);
        if entries.at.is_empty() {
            self.blocks.remove(block);
            self.sums.remove(block);
            shrink(&mut self.blocks);
            shrink(&mut self.sums);
        } else if entries.at.len() < BLOCK / 4 && many {
            let low = if block + 1 < self.blocks.len() {
                block
            } else {
                block - 1
            };
            let high = self.blocks.remove(low + 1);
            let high_sum = self.sums.remove(low + 1);
            let merged = &mut self.blocks[low];
            merged.at.extend_from_slice(&high.at);
            merged.counts.extend_from_slice(&high.counts);
            self.sums[low] += high_sum;
            let len = merged.at.len();
            if len > BLOCK {
                let upper = merged.split_off(len / 2);
                let upper_sum = Block::sum(&upper.counts);
                self.sums[low] -= upper_sum as u32;
                self.blocks.insert(low + 1, upper);
                self.sums.insert(low + 1, upper_sum as u32);
            }
            shrink(&mut self.blocks);
            shrink(&mut self.sums);
        } else {
            shrink(&mut entries.at);
            shrink(&mut entries.counts);
        }
    }

    /// The number of presences with `expire_at <= cutoff`. O(log n + blocks).
    fn rank(&self, cutoff: i64) -> usize {
        let block = self.blocks.partition_point(|b| b.last() <= cutoff);
        let before = if block <= self.sums.len() / 2 {
            Block::sum(&self.sums[..block])
        } else {
            self.total - Block::sum(&self.sums[block..])
        };
        let Some(entries) = self.blocks.get(block) else {
            return before;
        };
        let pos = entries.at.partition_point(|&at| at <= cutoff);
        let partial = if pos <= entries.at.len() / 2 {
            Block::sum(&entries.counts[..pos])
        } else {
            self.sums[block] as usize - Block::sum(&entries.counts[pos..])
        };
        before + partial
    }

    /// The number of presences with `expire_at <= cutoff`; the cursor moves to `cutoff`.
    /// O(log n + blocks), wherever the cursor was.
    pub(crate) fn at_or_below(&mut self, cutoff: i64) -> usize {
        if cutoff != self.cursor {
            self.at_or_below = self.rank(cutoff);
            self.cursor = cutoff;
        }
        self.at_or_below
    }

    /// The number at or below the cursor, without moving it.
    pub(crate) fn known(&self) -> usize {
        self.at_or_below
    }

    /// The cutoff last asked about.
    #[cfg(test)]
    pub(crate) fn cursor(&self) -> i64 {
        self.cursor
    }

    /// The number of distinct expiries.
    #[cfg(test)]
    pub(crate) fn distinct(&self) -> usize {
        self.blocks.iter().map(|b| b.at.len()).sum()
    }

    /// The number of distinct expiries in each block.
    #[cfg(test)]
    fn block_lens(&self) -> Vec<usize> {
        self.blocks.iter().map(|b| b.at.len()).collect()
    }

    /// The bytes the counts take in allocations (not the record).
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        let blocks: usize = self
            .blocks
            .iter()
            .map(|b| vec_bytes(&b.at) + vec_bytes(&b.counts))
            .sum();
        vec_bytes(&self.blocks) + vec_bytes(&self.sums) + blocks
    }

    /// Checks the invariants, and that the number at or below `cutoff` is `want`.
    #[cfg(test)]
    pub(crate) fn assert_consistent(&self, cutoffs: &[(i64, usize)]) {
        assert_eq!(self.blocks.len(), self.sums.len());
        let mut previous = None;
        let mut total = 0;
        for (block, sum) in self.blocks.iter().zip(&self.sums) {
            assert!(!block.at.is_empty() && block.at.len() <= BLOCK);
            assert_eq!(block.at.len(), block.counts.len());
            assert!(block.counts.iter().all(|&count| count > 0));
            for &at in &block.at {
                assert!(previous < Some(at), "expiries in order");
                previous = Some(at);
            }
            assert_eq!(Block::sum(&block.counts), *sum as usize);
            total += *sum as usize;
        }
        assert_eq!(self.total, total);
        assert_eq!(self.rank(self.cursor), self.at_or_below, "at the cursor");
        for &(cutoff, want) in cutoffs {
            assert_eq!(self.rank(cutoff), want, "at {cutoff}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_at_any_cutoff() {
        let mut expiries = Expiries::new(i64::MIN);
        for at in [i64::MIN, 5, 5, 7, 10, i64::MAX] {
            expiries.add(at);
        }
        assert_eq!(expiries.known(), 1);
        assert_eq!(expiries.at_or_below(5), 3);
        assert_eq!(expiries.at_or_below(9), 4);
        assert_eq!(expiries.at_or_below(i64::MAX), 6);
        assert_eq!(expiries.at_or_below(6), 3);
        expiries.remove(5);
        expiries.add(4);
        expiries.add(100);
        assert_eq!(expiries.known(), 3);
        assert_eq!(expiries.at_or_below(i64::MIN), 1);
        expiries.remove(i64::MIN);
        expiries.remove(12345);
        assert_eq!(expiries.known(), 0);
        assert_eq!(expiries.at_or_below(i64::MAX), 6);
        assert_eq!(expiries.distinct(), 6);
        expiries.assert_consistent(&[(4, 1), (5, 2), (i64::MIN, 0), (99, 4)]);
    }

    /// The number at or below `cutoff` in `all`, counted one by one.
    fn naive(all: &[i64], cutoff: i64) -> usize {
        all.iter().filter(|&&at| at <= cutoff).count()
    }

    #[test]
    fn blocks_split_merge_and_count_at_their_edges() {
        let mut expiries = Expiries::new(0);
        let mut all = Vec::new();
        // Appended in order, as heartbeats are: blocks three quarters full.
        for at in 0..3 * BLOCK as i64 {
            expiries.add(at * 10);
            all.push(at * 10);
        }
        assert_eq!(expiries.block_lens(), [385, 385, 385, 381]);
        // Inserted in the lower half of a full block: it splits in halves.
        for at in 0..128 {
            expiries.add(at * 10 + 5);
            all.push(at * 10 + 5);
        }
        assert_eq!(expiries.block_lens(), [256, 257, 385, 385, 381]);
        let edges: Vec<i64> = [0, 1, 2, 3, 4]
            .into_iter()
            .flat_map(|block| {
                let b = &expiries.blocks[block];
                [b.at[0], b.last()]
            })
            .flat_map(|at| [at - 1, at, at + 1])
            .chain([i64::MIN, i64::MAX])
            .collect();
        let check = |expiries: &Expiries, all: &[i64]| {
            let want: Vec<(i64, usize)> = edges.iter().map(|&c| (c, naive(all, c))).collect();
            expiries.assert_consistent(&want);
        };
        check(&expiries, &all);
        assert_eq!(expiries.at_or_below(15_000), naive(&all, 15_000));
        assert_eq!(expiries.known(), 1501 + 128);
        // The first blocks drain: they merge, and counts stay exact.
        for at in 0..BLOCK as i64 {
            expiries.remove(at * 10);
            all.retain(|&other| other != at * 10);
            if at % 50 == 0 {
                check(&expiries, &all);
            }
        }
        assert!(expiries.block_lens().iter().all(|&len| len >= BLOCK / 4));
        assert_eq!(expiries.known(), naive(&all, 15_000));
        // Twice the same expiry: one entry, counted twice.
        expiries.add(20_000);
        expiries.add(20_000);
        assert_eq!(expiries.at_or_below(20_000), all.len() + 2);
        expiries.remove(20_000);
        all.push(20_000);
        assert_eq!(expiries.known(), all.len());
        check(&expiries, &all);
        for at in all.clone() {
            expiries.remove(at);
        }
        assert_eq!((expiries.known(), expiries.distinct()), (0, 0));
        assert!(expiries.blocks.is_empty());
        assert_eq!(expiries.at_or_below(i64::MAX), 0);
    }
}
