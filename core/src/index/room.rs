//! One room's structure: its presences in slots, found by user id through a hash table, and,
//! once the room is listed or large, in user id order (see the index's module doc, *Per
//! room*). How the slots are queued by expiry is in [`super::queue`].

use super::expiries::Expiries;
use super::seg_vec::SegVec;
use super::sorted_blocks::SortedBlocks;
use super::split_table::SplitTable;
use super::{hash_id, Presence, Prior, SocketRef};
use crate::small_str::SmallStr;
use foldhash::fast::RandomState;
use std::rc::Rc;

#[cfg(test)]
use super::compact;
#[cfg(doc)]
use super::LARGE_ROOM;

/// Slots per chunk, as a power of two (512 slots, 32 KiB).
const SLOT_SHIFT: u32 = 9;
/// Queue entries per chunk, as a power of two (4,096 entries, 16 KiB).
const QUEUE_SHIFT: u32 = 12;
/// The most entries of one sub-table of users (a table of 4,096 buckets).
const USERS_SPLIT: usize = 3584;
/// The most slot numbers in one block of the user order.
pub(crate) const ORDER_BLOCK: usize = 512;

/// One presence of a room.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) user: SmallStr,
    pub(crate) presence: Presence,
    /// How far `presence.expire_at` lies past the expiry the slot is queued under in the heap
    /// (0 in the `dead` part).
    pub(crate) gap: u32,
    /// The slot's position in the queue (the heap, or the `dead` part after it).
    pub(crate) place: u32,
}

impl Slot {
    /// The expiry the slot is queued under: a lower bound of its real expiry.
    pub(crate) fn queued_at(&self) -> i64 {
        self.presence.expire_at.saturating_sub(i64::from(self.gap))
    }
}

/// The presences of one room. The queue holds every slot number once: the heap in
/// `queue[..heap_len]`, every entry with `dead_cutoff < queued_at <= expire_at`, then the
/// `dead` part, every slot with `expire_at <= dead_cutoff` (in a small room, all of them; in a
/// large room `dead_cutoff` stays at `i64::MIN` and the `dead` part may also hold slots found
/// not live at an earlier cutoff).
#[derive(Debug)]
pub(crate) struct Room {
    pub(crate) name: Rc<str>,
    pub(crate) slots: SegVec<Slot, SLOT_SHIFT>,
    /// Slot numbers, by the hash of their user id.
    pub(crate) users: SplitTable<USERS_SPLIT>,
    /// Slot numbers: a binary min-heap by `queued_at`, then the `dead` part in no order.
    pub(crate) queue: SegVec<u32, QUEUE_SHIFT>,
    /// Slot numbers in user id order, when `ordered`.
    pub(crate) order: SortedBlocks<ORDER_BLOCK>,
    /// The presences per expiry, in a large room.
    pub(crate) expiries: Option<Box<Expiries>>,
    /// The cutoff a small room was last brought to.
    pub(crate) dead_cutoff: i64,
    /// At most the lowest expiry in the `dead` part, when it is not empty.
    pub(crate) dead_low: i64,
    /// The key this room is queued under in [`RoomIndex::due`], when `queued`.
    pub(crate) due_at: i64,
    /// The number of entries of the heap.
    pub(crate) heap_len: u32,
    /// True when the room is in [`RoomIndex::due`].
    pub(crate) queued: bool,
    /// True when `order` is kept: since the room was first listed, or was large.
    pub(crate) ordered: bool,
}

impl Room {
    /// An empty room.
    pub(crate) fn new(name: Rc<str>) -> Self {
        Room {
            name,
            slots: SegVec::default(),
            users: SplitTable::default(),
            queue: SegVec::default(),
            order: SortedBlocks::default(),
            expiries: None,
            dead_cutoff: i64::MIN,
            dead_low: i64::MIN,
            due_at: 0,
            heap_len: 0,
            queued: false,
            ordered: false,
        }
    }

    /// The number of entries in the `dead` part.
    pub(crate) fn dead_len(&self) -> usize {
        self.queue.len() - self.heap_len as usize
    }

    /// The number of presences known not live: the `dead` part of a small room, the presences
    /// at or below the cursor of a large one.
    pub(crate) fn known_dead(&self) -> usize {
        match &self.expiries {
            Some(expiries) => expiries.known(),
            None => self.dead_len(),
        }
    }

    /// The slot of `user`, whose id hashes to `hash`.
    pub(crate) fn find(&self, hash: u64, user: &str) -> Option<usize> {
        let slots = &self.slots;
        self.users
            .find(hash, |&ix| slots[ix as usize].user == *user)
            .map(|ix| ix as usize)
    }

    /// Keeps the user order from now on, sorting the slot numbers once (a room that is not
    /// ordered is small: at most [`LARGE_ROOM`] presences).
    pub(crate) fn keep_order(&mut self) {
        if self.ordered {
            return;
        }
        let slots = &self.slots;
        let mut numbers: Vec<u32> = (0..slots.len() as u32).collect();
        numbers.sort_unstable_by(|&a, &b| slots[a as usize].user.cmp(&slots[b as usize].user));
        self.order = SortedBlocks::from_sorted(numbers, |ix| slots[ix as usize].presence.expire_at);
        self.ordered = true;
    }

    /// Counts per expiry above `large` presences, and stops below half of it. A large room
    /// keeps the user order.
    fn fit(&mut self, large: usize) {
        let len = self.slots.len();
        if self.expiries.is_none() && len > large {
            self.keep_order();
            let mut expiries = Expiries::new(self.dead_cutoff);
            for slot in self.slots.iter() {
                expiries.add(slot.presence.expire_at);
            }
            self.expiries = Some(Box::new(expiries));
            self.dead_cutoff = i64::MIN;
        } else if self.expiries.is_some() && len < large / 2 {
            self.expiries = None;
            let mut pos = self.heap_len as usize;
            while let Some(&ix) = self.queue.get(pos) {
                if self.expire_at(ix) > self.dead_cutoff {
                    self.revive(pos);
                }
                pos += 1;
            }
            self.dead_low = self.dead_cutoff;
        }
    }

    /// Sets `user` to `socket` expiring at `expire_at`.
    pub(crate) fn upsert(
        &mut self,
        hasher: &RandomState,
        user: &str,
        socket: SocketRef<'_>,
        expire_at: i64,
        large: usize,
    ) -> Prior {
        let hash = hash_id(hasher, user.as_bytes());
        if let Some(ix) = self.find(hash, user) {
            let presence = &mut self.slots[ix].presence;
            let old_expire = presence.expire_at;
            let previous = if presence.is_held_by(socket) {
                Prior::Same {
                    expire_at: old_expire,
                }
            } else {
                Prior::Other(Presence {
                    node: std::mem::replace(&mut presence.node, socket.node),
                    socket: std::mem::replace(&mut presence.socket, SmallStr::from(socket.id)),
                    expire_at: old_expire,
                })
            };
            self.set_expiry(ix, expire_at);
            return previous;
        }
        let ix = self.slots.len() as u32;
        self.slots.push(Slot {
            user: SmallStr::from(user),
            presence: Presence {
                node: socket.node,
                socket: SmallStr::from(socket.id),
                expire_at,
            },
            gap: 0,
            place: 0,
        });
        let slots = &self.slots;
        self.users.insert(hash, ix, |other| {
            slots[other as usize]
                .user
                .with_bytes(|user| hash_id(hasher, user))
        });
        if self.ordered {
            let expire_at = |other: u32| slots[other as usize].presence.expire_at;
            // A user id kept as it is compares with the others' bytes; a UUID kept as its 16
            // bytes compares with them as a `SmallStr` (16 bytes against those of its case).
            let user = &slots[ix as usize].user;
            match user.plain() {
                Some(bytes) => self.order.insert(
                    ix,
                    |other| slots[other as usize].user.cmp_bytes(bytes),
                    expire_at,
                ),
                None => {
                    self.order
                        .insert(ix, |other| slots[other as usize].user.cmp(user), expire_at)
                }
            }
        }
        self.attach(ix);
        if let Some(expiries) = self.expiries.as_deref_mut() {
            expiries.add(expire_at);
        }
        self.fit(large);
        Prior::Absent
    }

    /// Removes slot `ix`, whose user id hashes to `hash`, and returns it.
    pub(crate) fn remove(
        &mut self,
        ix: usize,
        hash: u64,
        hasher: &RandomState,
        large: usize,
    ) -> Option<Slot> {
        self.detach(ix);
        if let Some(expiries) = self.expiries.as_deref_mut() {
            expiries.remove(self.slots[ix].presence.expire_at);
        }
        let slots = &self.slots;
        self.users.remove(
            hash,
            |&other| other as usize == ix,
            |other| {
                slots[other as usize]
                    .user
                    .with_bytes(|user| hash_id(hasher, user))
            },
        );
        let by_user = |of: usize| {
            let user = &slots[of].user;
            move |other: u32| slots[other as usize].user.cmp(user)
        };
        let ordered = self.ordered;
        if let Some(at) = self.order.find(by_user(ix)).filter(|_| ordered) {
            self.order.remove(at);
        }
        let last = slots.len() - 1;
        let moved = (ix != last).then(|| {
            let at = if ordered {
                self.order.find(by_user(last))
            } else {
                None
            };
            (
                at,
                slots[last].user.with_bytes(|user| hash_id(hasher, user)),
            )
        });
        let removed = self.slots.swap_remove(ix);
        if let Some((at, moved_hash)) = moved {
            if let Some(at) = at {
                self.order.set(at, ix as u32);
            }
            let place = self.slots[ix].place as usize;
            self.queue[place] = ix as u32;
            if let Some(entry) = self
                .users
                .find_mut(moved_hash, |&other| other as usize == last)
            {
                *entry = ix as u32;
            }
        }
        self.fit(large);
        removed
    }

    /// The bytes the room's structures take in allocations (not its record, name or entry in
    /// the queue of rooms).
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        let long_ids: usize = self
            .slots
            .iter()
            .flat_map(|slot| [&slot.user, &slot.presence.socket])
            .map(SmallStr::heap_len)
            .filter(|&len| len > 0)
            .map(compact::size_class)
            .sum();
        let expiries = self.expiries.as_deref().map_or(0, |expiries| {
            compact::size_class(size_of::<Expiries>()) + expiries.allocated_bytes()
        });
        self.slots.allocated_bytes()
            + self.users.allocated_bytes()
            + self.queue.allocated_bytes()
            + self.order.allocated_bytes()
            + long_ids
            + expiries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::invariants::owned;
    use crate::index::{sorted_blocks, RoomIndex};

    #[test]
    fn sizes_of_the_parts() {
        assert_eq!(size_of::<SmallStr>(), 24);
        assert_eq!(size_of::<Presence>(), 40);
        assert_eq!(size_of::<Slot>(), 72);
        assert_eq!(size_of::<Room>(), 184);
        let mut index = RoomIndex::new();
        for i in 0..100 {
            index.upsert("room1", &format!("{i:012}"), &format!("s{i:019}"), 1000);
        }
        let state = index.room("room1").unwrap();
        assert_eq!(state.slots.shape(), (113, 0));
        assert_eq!(state.slots.allocated_bytes(), 8192);
        assert_eq!(state.queue.shape(), (112, 0));
        assert_eq!(state.queue.allocated_bytes(), 448);
        assert_eq!(state.order.allocated_bytes(), 0);
        assert_eq!(state.users.allocated_bytes(), 768);
        assert!(state.expiries.is_none());
        assert_eq!(state.allocated_bytes(), 8192 + 448 + 768);
        index.list("room1", 0, 1, None);
        let state = index.room("room1").unwrap();
        assert_eq!(state.order.block_lens(), [100]);
        assert_eq!(state.order.allocated_bytes(), 448);
        index.upsert("room1", "another", "s", 1000);
        let state = index.room("room1").unwrap();
        assert_eq!(state.order.allocated_bytes(), 448);
    }

    #[test]
    fn a_room_grows_and_shrinks_in_bounded_pieces() {
        let mut index = RoomIndex::new();
        let n = 20_000;
        for i in 0..n {
            index.upsert("r", &format!("u{i:06}"), "s", 1000 + i);
            let state = index.room("r").unwrap();
            let (head, chunks) = state.slots.shape();
            assert!(head <= 512);
            assert!(chunks <= (i as usize + 1) / 512 + 1);
            assert!(state.users.largest_buckets() <= 4096);
            assert!(state
                .order
                .block_lens()
                .iter()
                .all(|&len| len <= ORDER_BLOCK));
        }
        let state = index.room("r").unwrap();
        assert_eq!(state.slots.shape(), (512, 39));
        assert_eq!(state.queue.shape(), (4096, 4));
        assert!(state.users.tables() >= 6, "{}", state.users.tables());
        assert!(state.expiries.is_some());
        index.assert_consistent();
        assert_eq!(
            index.list("r", 0, 3, Some("u010000")),
            owned(&[("u010001", "s"), ("u010002", "s"), ("u010003", "s")])
        );
        for i in 10..n {
            index.remove("r", &format!("u{i:06}"));
            if i % 997 == 0 {
                index.assert_consistent();
            }
        }
        let state = index.room("r").unwrap();
        assert_eq!(state.slots.shape(), (17, 0));
        assert_eq!(state.queue.shape().1, 0);
        assert_eq!(state.users.tables(), 1);
        assert_eq!(state.order.block_lens(), [10]);
        assert!(state.expiries.is_none());
        assert_eq!(index.count("r", 0), 10);
        index.assert_consistent();
        for i in 0..10 {
            index.remove("r", &format!("u{i:06}"));
        }
        assert_eq!(index.rooms(), 0);
        assert!(index.due.is_empty());
    }

    /// A page of a room of 100,000 where all but a few presences are dead looks at each block
    /// once and reads only the blocks that hold a live presence (or held one since they were
    /// last read whole), not the dead presences one by one.
    #[test]
    fn a_page_skips_the_blocks_without_a_live_presence() {
        let mut index = RoomIndex::new();
        let n = 100_000;
        let user = |i: usize| format!("u{i:06}");
        let live = [7, 50_000, 99_998];
        for i in 0..n {
            let at = if live.contains(&i) {
                1 << 40
            } else {
                1000 + (i as i64 % 5000)
            };
            index.upsert("r", &user(i), "s", at);
        }
        let blocks = index.room("r").unwrap().order.block_lens().len();
        assert!(
            (n / ORDER_BLOCK..=n * 4 / ORDER_BLOCK).contains(&blocks),
            "{blocks}"
        );
        let cutoff = 1 << 30;
        let page = |index: &mut RoomIndex, limit, after: Option<&str>| {
            let before = sorted_blocks::visited();
            let users: Vec<String> = index
                .list("r", cutoff, limit, after)
                .into_iter()
                .map(|(u, _)| u.to_string())
                .collect();
            (users, sorted_blocks::visited() - before)
        };
        let (users, work) = page(&mut index, 100, None);
        assert_eq!(users, live.map(user));
        assert!(
            work <= blocks + live.len() * ORDER_BLOCK,
            "{work} for {blocks} blocks"
        );
        let (users, work) = page(&mut index, 1, Some(&user(7)));
        assert_eq!(users, [user(50_000)]);
        assert!(
            work <= blocks + 2 * ORDER_BLOCK,
            "{work} for {blocks} blocks"
        );
        // A heartbeat or a join that makes a presence live raises its block's ceiling.
        index.upsert("r", &user(70_000), "s", 1 << 41);
        index.upsert("r", "u070000a", "s", 1 << 41);
        let (users, work) = page(&mut index, 100, Some(&user(50_000)));
        assert_eq!(users, [user(70_000), "u070000a".into(), user(99_998)]);
        assert!(
            work <= blocks + 3 * ORDER_BLOCK,
            "{work} for {blocks} blocks"
        );
        // The live ones leave: their blocks are read once more, then skipped.
        for i in live {
            index.remove("r", &user(i));
        }
        index.upsert("r", &user(70_000), "s", 0);
        index.remove("r", "u070000a");
        let (users, work) = page(&mut index, 100, None);
        assert!(users.is_empty());
        assert!(
            work <= blocks + 4 * ORDER_BLOCK,
            "{work} for {blocks} blocks"
        );
        let (_, work) = page(&mut index, 100, None);
        assert!(work <= blocks, "{work} for {blocks} blocks");
        // A cutoff back below every expiry: a page reads its own presences only.
        let before = sorted_blocks::visited();
        assert_eq!(index.list("r", 0, 100, Some(&user(500))).len(), 100);
        assert!(
            sorted_blocks::visited() - before <= 100 + 2,
            "a page of live presences"
        );
        index.assert_consistent();
    }
}
