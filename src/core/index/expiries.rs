//! How many presences of a large room expire at each millisecond, with a cursor that keeps the
//! number at or below one cutoff, so that the live count at a new cutoff costs the distinct
//! expiry milliseconds between the two cutoffs, whatever the number of presences there.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included};

/// The number of presences per expiry, and the number at or below a cursor.
#[derive(Debug)]
pub(crate) struct Expiries {
    counts: BTreeMap<i64, u32>,
    /// The cutoff last asked about.
    cursor: i64,
    /// The number of presences with `expire_at <= cursor`.
    at_or_below: usize,
}

impl Expiries {
    /// No presence, the cursor at `cursor`.
    pub(crate) fn new(cursor: i64) -> Self {
        Expiries {
            counts: BTreeMap::new(),
            cursor,
            at_or_below: 0,
        }
    }

    /// Counts a presence expiring at `at`.
    pub(crate) fn add(&mut self, at: i64) {
        *self.counts.entry(at).or_insert(0) += 1;
        if at <= self.cursor {
            self.at_or_below += 1;
        }
    }

    /// Forgets a presence expiring at `at` (one that was added).
    pub(crate) fn remove(&mut self, at: i64) {
        if let Some(count) = self.counts.get_mut(&at) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&at);
            }
            if at <= self.cursor {
                self.at_or_below -= 1;
            }
        }
    }

    /// The number of presences with `expire_at <= cutoff`; the cursor moves to `cutoff`.
    pub(crate) fn at_or_below(&mut self, cutoff: i64) -> usize {
        let sum = |counts: &BTreeMap<i64, u32>, low: i64, high: i64| -> usize {
            counts
                .range((Excluded(low), Included(high)))
                .map(|(_, &count)| count as usize)
                .sum()
        };
        if cutoff > self.cursor {
            self.at_or_below += sum(&self.counts, self.cursor, cutoff);
        } else if cutoff < self.cursor {
            self.at_or_below -= sum(&self.counts, cutoff, self.cursor);
        }
        self.cursor = cutoff;
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
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_at_any_cutoff_through_the_cursor() {
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
    }
}
