//! What the index's tests share: a check of every invariant the index relies on, the
//! sweeper's loop, and the totals once every room was counted.

use super::room::ORDER_BLOCK;
use super::{hash_id, Dead, RoomIndex, Step};
use std::rc::Rc;

/// Pairs of ids as [`RoomIndex::list`] gives them.
pub(crate) fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(u, s)| (u.to_string(), s.to_string()))
        .collect()
}

/// The sweeper's loop: steps until a dead presence is found or none is left.
pub(crate) fn dead_at(index: &mut RoomIndex, cutoff: i64) -> Option<Dead> {
    loop {
        match index.first_dead(cutoff) {
            Step::Dead(dead) => return Some(dead),
            Step::Progress => {}
            Step::Idle => return None,
        }
    }
}

/// `live` and `backlog` once every room was counted at `cutoff`.
pub(crate) fn totals_at(index: &mut RoomIndex, cutoff: i64) -> (usize, usize) {
    let names: Vec<Rc<str>> = index.rooms.iter().map(|r| r.name.clone()).collect();
    for name in names {
        index.count(&name, cutoff);
    }
    (index.live(), index.backlog())
}

impl RoomIndex {
    /// Checks every invariant the index relies on.
    pub(crate) fn assert_consistent(&self) {
        let mut entries = 0;
        let mut dead = 0;
        let mut queued = 0;
        for state in self.rooms.iter() {
            assert!(!state.slots.is_empty(), "an empty room is kept");
            let len = state.slots.len();
            assert_eq!(state.users.len(), len);
            assert_eq!(state.queue.len(), len);
            assert!(state.heap_len as usize <= len);
            let large = state.expiries.is_some();
            if large {
                assert_eq!(state.dead_cutoff, i64::MIN);
                assert!(len >= self.large / 2, "{len}");
            } else {
                assert!(len <= self.large, "{len}");
            }
            state.users.assert_consistent(|ix| {
                hash_id(&self.hasher, &state.slots[ix as usize].user.as_bytes())
            });
            for (ix, slot) in state.slots.iter().enumerate() {
                let user = slot.user.as_bytes();
                let hash = hash_id(&self.hasher, &user);
                assert_eq!(state.find(hash, user.as_str()), Some(ix));
                let pos = slot.place as usize;
                assert_eq!(state.queue[pos] as usize, ix);
                if pos < state.heap_len as usize {
                    assert!(slot.queued_at() > state.dead_cutoff);
                    assert!(slot.queued_at() <= slot.presence.expire_at);
                } else {
                    assert_eq!(slot.gap, 0);
                    if !large {
                        assert!(slot.presence.expire_at <= state.dead_cutoff);
                    }
                    assert!(slot.presence.expire_at >= state.dead_low);
                }
            }
            for pos in 1..state.heap_len as usize {
                let parent = state.queue[(pos - 1) / 2];
                assert!(state.queued_at(parent) <= state.queued_at(state.queue[pos]));
            }
            assert!(state.ordered || !large);
            let ordered: Vec<u32> = state.order.iter_from(state.order.start()).collect();
            assert_eq!(ordered.len(), if state.ordered { len } else { 0 });
            for pair in ordered.windows(2) {
                let (a, b) = (pair[0] as usize, pair[1] as usize);
                assert!(state.slots[a].user < state.slots[b].user);
            }
            let blocks = state.order.block_lens();
            assert!(blocks.iter().all(|&n| n > 0 && n <= ORDER_BLOCK));
            state
                .order
                .assert_consistent(|ix| state.slots[ix as usize].presence.expire_at);
            if let Some(expiries) = state.expiries.as_deref() {
                let at_or_below = |cutoff: i64| {
                    let count = state
                        .slots
                        .iter()
                        .filter(|slot| slot.presence.expire_at <= cutoff)
                        .count();
                    (cutoff, count)
                };
                assert_eq!(at_or_below(expiries.cursor()).1, expiries.known());
                let some = state.slots.iter().step_by(len / 3).take(3);
                let cutoffs: Vec<(i64, usize)> = some
                    .map(|slot| slot.presence.expire_at)
                    .flat_map(|at| [at.saturating_sub(1), at])
                    .chain([i64::MIN, i64::MAX, expiries.cursor().saturating_add(1)])
                    .map(at_or_below)
                    .collect();
                expiries.assert_consistent(&cutoffs);
            }
            assert_eq!(state.queued.then_some(state.due_at), state.due_key());
            if state.queued {
                assert!(self.due.contains(&(state.due_at, state.name.clone())));
                queued += 1;
            }
            entries += len;
            dead += state.known_dead();
        }
        assert_eq!(self.due.len(), queued);
        assert_eq!(self.entries, entries);
        assert_eq!(self.dead, dead);
    }
}
