//! One room's queue of slot numbers by expiry: a binary min-heap by a lower bound of each
//! slot's expiry, then the `dead` part, the slots not live at the cutoff the room was last
//! brought to (see the index's module doc, *Expiry* and *Count*); and the room's key in the
//! queue of rooms.

use super::room::Room;
use std::collections::BTreeSet;
use std::rc::Rc;

impl Room {
    /// The `queued_at` of slot `ix`.
    pub(crate) fn queued_at(&self, ix: u32) -> i64 {
        self.slots[ix as usize].queued_at()
    }

    /// The expiry of slot `ix`.
    pub(crate) fn expire_at(&self, ix: u32) -> i64 {
        self.slots[ix as usize].presence.expire_at
    }

    /// Puts slot `ix` at queue position `pos`.
    fn put(&mut self, pos: usize, ix: u32) {
        self.queue[pos] = ix;
        self.slots[ix as usize].place = pos as u32;
    }

    /// Moves the heap entry at `pos` up to its place and returns where it landed.
    fn sift_up(&mut self, mut pos: usize) -> usize {
        let ix = self.queue[pos];
        let at = self.queued_at(ix);
        while pos > 0 {
            let parent = (pos - 1) / 2;
            let above = self.queue[parent];
            if self.queued_at(above) <= at {
                break;
            }
            self.put(pos, above);
            pos = parent;
        }
        self.put(pos, ix);
        pos
    }

    /// Moves the heap entry at `pos` down to its place.
    fn sift_down(&mut self, mut pos: usize) {
        let ix = self.queue[pos];
        let at = self.queued_at(ix);
        let len = self.heap_len as usize;
        loop {
            let left = 2 * pos + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len
                && self.queued_at(self.queue[right]) < self.queued_at(self.queue[left])
            {
                right
            } else {
                left
            };
            let below = self.queue[child];
            if self.queued_at(below) >= at {
                break;
            }
            self.put(pos, below);
            pos = child;
        }
        self.put(pos, ix);
    }

    /// Moves the heap entry at `pos`, whose key changed, to its place.
    fn heap_fix(&mut self, pos: usize) {
        let pos = self.sift_up(pos);
        self.sift_down(pos);
    }

    /// Moves the `dead` entry at `pos` into the heap, under its real expiry.
    pub(crate) fn revive(&mut self, pos: usize) {
        let first_dead = self.heap_len as usize;
        let ix = self.queue[pos];
        let other = self.queue[first_dead];
        self.put(pos, other);
        self.put(first_dead, ix);
        self.slots[ix as usize].gap = 0;
        self.heap_len += 1;
        self.sift_up(first_dead);
    }

    /// Moves the heap entry at `pos` to the `dead` part, and returns where it landed.
    fn bury(&mut self, pos: usize) -> usize {
        let last = self.heap_len as usize - 1;
        let ix = self.queue[pos];
        let moved = self.queue[last];
        self.heap_len -= 1;
        self.put(last, ix);
        self.slots[ix as usize].gap = 0;
        if pos < last {
            self.put(pos, moved);
            self.heap_fix(pos);
        }
        last
    }

    /// Lowers `dead_low` for an entry of the `dead` part expiring at `at`.
    fn note_dead(&mut self, at: i64) {
        self.dead_low = if self.dead_len() == 1 {
            at
        } else {
            self.dead_low.min(at)
        };
    }

    /// Lists the new slot `ix` in the heap or the `dead` part, at its real expiry.
    pub(crate) fn attach(&mut self, ix: u32) {
        let pos = self.queue.len();
        self.queue.push(ix);
        self.slots[ix as usize].place = pos as u32;
        self.slots[ix as usize].gap = 0;
        let at = self.expire_at(ix);
        if at > self.dead_cutoff {
            self.revive(pos);
        } else {
            self.note_dead(at);
        }
    }

    /// Takes slot `ix` out of the queue.
    pub(crate) fn detach(&mut self, ix: usize) {
        let mut pos = self.slots[ix].place as usize;
        if pos < self.heap_len as usize {
            pos = self.bury(pos);
        }
        self.queue.swap_remove(pos);
        if let Some(&moved) = self.queue.get(pos) {
            self.slots[moved as usize].place = pos as u32;
        }
    }

    /// Gives slot `ix` the expiry `expire_at`. A later expiry of a slot in the heap only grows
    /// its `gap`; otherwise the slot moves, and the result is true (the room's key in the queue
    /// of rooms may have changed).
    pub(crate) fn set_expiry(&mut self, ix: usize, expire_at: i64) -> bool {
        let slot = &mut self.slots[ix];
        let previous = slot.presence.expire_at;
        let queued_at = slot.queued_at();
        slot.presence.expire_at = expire_at;
        let pos = slot.place as usize;
        self.order.raise(ix as u32, expire_at);
        if let Some(expiries) = self.expiries.as_deref_mut() {
            expiries.remove(previous);
            expiries.add(expire_at);
        }
        if pos < self.heap_len as usize {
            let slot = &mut self.slots[ix];
            if let Some(gap) = expire_at
                .checked_sub(queued_at)
                .and_then(|gap| u32::try_from(gap).ok())
            {
                slot.gap = gap;
                return false;
            }
            slot.gap = 0;
            if expire_at <= self.dead_cutoff {
                self.bury(pos);
                self.note_dead(expire_at);
            } else {
                self.heap_fix(pos);
            }
        } else if expire_at > self.dead_cutoff {
            self.revive(pos);
        } else {
            self.dead_low = self.dead_low.min(expire_at);
        }
        true
    }

    /// Brings a small room to `cutoff`: afterwards the `dead` part holds exactly the presences
    /// not live at it. Costs the heap entries reached (moving forward) or the `dead` part
    /// (moving back): at most the room's size.
    fn advance(&mut self, cutoff: i64) {
        if cutoff < self.dead_cutoff {
            self.dead_cutoff = cutoff;
            let mut low = i64::MAX;
            let mut pos = self.heap_len as usize;
            while let Some(&ix) = self.queue.get(pos) {
                let at = self.expire_at(ix);
                if at > cutoff {
                    self.revive(pos);
                } else {
                    low = low.min(at);
                }
                pos += 1;
            }
            self.dead_low = low;
        } else {
            self.dead_cutoff = cutoff;
            while self.heap_len > 0 {
                let ix = self.queue[0];
                let slot = &mut self.slots[ix as usize];
                if slot.queued_at() > cutoff {
                    break;
                }
                if slot.presence.expire_at <= cutoff {
                    let at = slot.presence.expire_at;
                    self.bury(0);
                    self.note_dead(at);
                } else {
                    slot.gap = 0;
                    self.sift_down(0);
                }
            }
        }
    }

    /// The number of presences live at `cutoff`. A small room is brought to `cutoff`; a large
    /// one moves its cursor.
    pub(crate) fn live(&mut self, cutoff: i64) -> usize {
        match self.expiries.as_deref_mut() {
            Some(expiries) => self.slots.len() - expiries.at_or_below(cutoff),
            None => {
                self.advance(cutoff);
                self.slots.len() - self.dead_len()
            }
        }
    }

    /// One step of the sweeper in this room: a slot not live at `cutoff`, or `None` when the
    /// step found none (it may find one when called again while the room's key in the queue of
    /// rooms is at or below `cutoff`). A small room moves as far as needed (at most to
    /// `cutoff`): back to `cutoff` when its own cutoff is above it, else forward to its earliest
    /// entries until one is not live; a large room moves at most `work` heap entries. Either
    /// way, the slot is one of the `dead` part when it holds one, else the earliest expiry.
    pub(crate) fn sweep(&mut self, cutoff: i64, work: usize) -> Option<u32> {
        if self.expiries.is_none() {
            if cutoff < self.dead_cutoff {
                self.advance(cutoff);
            }
            loop {
                if let Some(&ix) = self.queue.get(self.heap_len as usize) {
                    return Some(ix);
                }
                let first = self.queued_at(*self.queue.first()?);
                if first > cutoff {
                    return None;
                }
                self.advance(first);
            }
        }
        for _ in 0..work {
            if self.dead_len() > 0 {
                let pos = self.queue.len() - 1;
                let ix = self.queue[pos];
                if self.expire_at(ix) <= cutoff {
                    return Some(ix);
                }
                self.revive(pos);
                continue;
            }
            let ix = *self.queue.first()?;
            let slot = &mut self.slots[ix as usize];
            if slot.queued_at() > cutoff {
                return None;
            }
            if slot.presence.expire_at <= cutoff {
                return Some(ix);
            }
            slot.gap = 0;
            self.sift_down(0);
        }
        None
    }

    /// The key the room belongs under in the queue of rooms: a lower bound of its earliest
    /// expiry, `None` when it holds nothing.
    pub(crate) fn due_key(&self) -> Option<i64> {
        let heap = self.queue.first().filter(|_| self.heap_len > 0);
        let heap = heap.map(|&ix| self.queued_at(ix));
        let dead = (self.dead_len() > 0).then_some(self.dead_low);
        match (heap, dead) {
            (Some(heap), Some(dead)) => Some(heap.min(dead)),
            (heap, dead) => heap.or(dead),
        }
    }

    /// Moves the room to its place in the queue of rooms.
    pub(crate) fn requeue(&mut self, due: &mut BTreeSet<(i64, Rc<str>)>) {
        let key = self.due_key();
        let current = self.queued.then_some(self.due_at);
        if key != current {
            if let Some(at) = current {
                due.remove(&(at, self.name.clone()));
            }
            if let Some(at) = key {
                due.insert((at, self.name.clone()));
                self.due_at = at;
            }
            self.queued = key.is_some();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::index::invariants::dead_at;
    use crate::index::{Refresh, RoomIndex, Step};

    #[test]
    fn a_heartbeat_only_grows_the_gap() {
        let mut index = RoomIndex::new();
        index.upsert("r", "a", "s", 1000);
        index.upsert("r", "b", "s", 2000);
        for beat in 1..=100 {
            assert!(matches!(
                index.refresh("r", "a", "s".into(), 1000 + beat * 10, 0),
                Refresh::Refreshed { .. }
            ));
        }
        let state = index.room("r").unwrap();
        let slot = &state.slots[0];
        assert_eq!((slot.queued_at(), slot.gap), (1000, 1000));
        assert_eq!(index.due.first().map(|(at, _)| *at), Some(1000));
        assert_eq!(index.count("r", 1500), 2);
        let slot = &index.room("r").unwrap().slots[0];
        assert_eq!((slot.queued_at(), slot.gap), (2000, 0));
        assert_eq!(
            index.refresh("r", "a", "s".into(), i64::MAX, 0),
            Refresh::Refreshed { previous: 2000 }
        );
        assert_eq!(
            index.refresh("r", "a", "s".into(), 1600, 0),
            Refresh::Refreshed { previous: i64::MAX }
        );
        assert_eq!(index.count("r", 1500), 2);
        assert_eq!(index.count("r", 1600), 1);
        assert_eq!(
            dead_at(&mut index, 1600).map(|d| d.user.to_string()),
            Some("a".into())
        );
        index.assert_consistent();
    }

    #[test]
    fn large_rooms_count_per_expiry_and_sweep_in_steps() {
        let mut index = RoomIndex::with_large_rooms_above(8);
        for i in 0..20 {
            index.upsert("r", &format!("u{i:02}"), "s", 100 + i);
        }
        assert!(index.room("r").unwrap().expiries.is_some());
        assert_eq!(index.count("r", 109), 10);
        assert_eq!(index.count("r", 0), 20);
        assert_eq!(index.count("r", 119), 0);
        assert_eq!(index.backlog(), 20);
        assert_eq!(index.count("r", 104), 15);
        assert_eq!((index.live(), index.backlog()), (15, 5));
        for i in 0..20 {
            index.refresh("r", &format!("u{i:02}"), "s".into(), 1000 + i, 104);
        }
        assert_eq!((index.live(), index.backlog()), (15, 5));
        let mut progress = 0;
        let mut swept = Vec::new();
        loop {
            match index.first_dead(1009) {
                Step::Dead(dead) => {
                    swept.push(dead.user.to_string());
                    index.remove(&dead.room, &dead.user.to_string());
                }
                Step::Progress => progress += 1,
                Step::Idle => break,
            }
            index.assert_consistent();
        }
        let want: Vec<String> = (0..10).map(|i| format!("u{i:02}")).collect();
        assert_eq!(swept, want, "earliest expiry first");
        assert_eq!(progress, 1, "the refreshed entries queued again");
        assert_eq!(index.count("r", 1009), 10);
        assert!(index.room("r").unwrap().expiries.is_some());
        for i in 10..17 {
            index.remove("r", &format!("u{i:02}"));
        }
        assert!(
            index.room("r").unwrap().expiries.is_none(),
            "small again below half"
        );
        assert_eq!(index.count("r", 1009), 3);
        assert_eq!(index.count("r", 0), 3);
        index.assert_consistent();
    }
}
