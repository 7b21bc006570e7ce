//! The room index of one database: which presences each room holds, kept in step with the
//! keyspace by the module's hooks, so that a room can be listed and counted without scanning
//! the keyspace, and the presences that are no longer live can be found at a cost that follows
//! their number, not the number that exist.
//!
//! It stores, per presence, the socket id and the key's absolute expiry (`expire_at`, ms, or
//! [`NO_TTL`]). Liveness is not stored: every read is given the cutoff of the liveness rule
//! ([`super::liveness::Liveness::cutoff`]) and a presence is live when `expire_at > cutoff`.
//!
//! No single operation costs time in proportion to the room's size, except a listing of the
//! whole room: every structure a room keeps grows and shrinks in bounded pieces.
//!
//! # Per room
//!
//! A room keeps its presences in slots, found by user id through a hash table of slot numbers
//! (seeded at random: the ids come from clients). Removal moves the last slot into the hole.
//! The slots are a vector in chunks of 512 (`seg_vec`): the first chunk grows one allocator
//! size class at a time, the others are allocated whole, so growth never copies more than one
//! chunk. The hash table splits into sub-tables of at most 3,584 entries past that size
//! (`split_table`), so a rehash never moves more than one sub-table.
//!
//! **Order.** Once a room is listed (or large), its slot numbers are also kept in user id
//! order, in sorted blocks of at most 512 (`sorted_blocks`), compared through the slots. The
//! first listing of a small room sorts it once (at most [`LARGE_ROOM`] presences); from then on
//! a join or a leave moves at most one block, and a room that is never listed never pays for
//! the order. Past one block, each block has a stable id and a *ceiling*, at least the expiry
//! of each presence it holds, and the room keeps the block id of each slot: a heartbeat raises
//! its block's ceiling in O(1), a join raises the ceiling of the block it enters, a split gives
//! each half its exact ceiling and a merge the larger of the two. A listing starts at the first
//! user after a given one by two binary searches and reads on, skipping every block whose
//! ceiling is at or below the cutoff; it lowers the ceiling of a block it read whole to the
//! block's largest expiry. A block holds at least 128 slot numbers (but for a room of one
//! block), so a page of `limit` users looks at most at n / 128 blocks and reads only those
//! with a live presence (at most `limit` and the first one) or whose ceiling is stale (a
//! presence there left, or its expiry came down, since the block was last read whole; the
//! listing then makes it exact): O(log n + n / 128 + 512 · limit) at worst, whatever the number
//! of presences not live, and O(log n + limit) when the presences read are live.
//!
//! **Expiry.** The room remembers the last cutoff it was brought to (`dead_cutoff`) and keeps
//! its slot numbers in one queue in two parts: a binary min-heap of the slots ordered by a
//! lower bound of their expiry (`queued_at`), then the `dead` part, slots not live at
//! `dead_cutoff`. A heartbeat only raises a presence's expiry: the slot keeps its place in the
//! heap and records how far its real expiry has moved past its `queued_at` (`gap`), so a
//! heartbeat costs one hash lookup. When a later cutoff reaches a heap entry, the presence
//! either goes to `dead` or is queued again at its real expiry: an entry moves about once per
//! staleness window.
//!
//! **Count.** In a room of at most [`LARGE_ROOM`] presences, a count brings the room to the
//! cutoff (moving the heap entries it reaches, at most the room's size) and the live count is
//! the number of slots less the `dead` part; a cutoff that moves back (a larger `stale-after`)
//! puts the `dead` slots that are live again back in the heap. A larger room also counts its
//! presences per expiry millisecond (`expiries`): the distinct milliseconds in order, in
//! blocks of at most 512, each block with the sum of its counts, so that the number of
//! presences at or below any cutoff is a sum over the blocks before the cutoff's block and a
//! partial sum in it, O(log n + n / 128) however far the cutoff moved since the last count;
//! neither time moving on nor a change of `stale-after` makes a count touch each presence or
//! each millisecond that went stale. A heartbeat there moves one count from one millisecond
//! to another (two binary searches, and at most one block's entries moved). Such a room no longer keeps its `dead` part exact (its
//! `dead_cutoff` stays at its lowest): the heap is read by the sweeper only. A room becomes
//! large above [`LARGE_ROOM`] presences and small again below half of it (building or dropping
//! the counts once, at a cost bounded by [`LARGE_ROOM`]).
//!
//! # Across rooms
//!
//! A queue orders the rooms by a lower bound of their earliest expiry (the `dead` part's lowest
//! expiry or the heap's first entry). The sweeper takes one step at a time
//! ([`RoomIndex::first_dead`]): a step looks at the first room of the queue and either hands
//! back a presence that is not live, or does a bounded amount of work there (a small room is
//! brought to the cutoff; a large one moves at most [`SWEEP_WORK`] heap entries) and says so,
//! so that the caller can look at its clock between steps.
//!
//! The index keeps its totals as it goes: the presences it holds, and the presences known not
//! live: those in the `dead` parts of small rooms (brought to a cutoff by a count, a change
//! counted by the command, or the sweeper) and those at or below the cursor of large rooms
//! (moved by a count). A presence that went stale since its room was last brought to a cutoff
//! is counted as live until then (on a master, the sweeper removes it within a tick or so);
//! after `stale-after` is raised, a presence found not live before stays counted so until its
//! room is next counted.
//!
//! # Memory
//!
//! One presence costs, in bytes (jemalloc, Redis's allocator, rounds every allocation up to a
//! size class, about four per doubling; the vectors below grow one size class at a time, so
//! they fill the class they are given):
//!
//! | part | bytes |
//! | --- | ---: |
//! | slot: user id (24: in place up to 22 bytes, or a canonical UUID as its 16 bytes), socket id after its node (24, same), the node's number (4, and 4 of padding), `expire_at` (8), `gap` (4), place in the queue (4) | 72 |
//! | entry in the queue (slot number) | 4 |
//! | entry in the user hash table: slot number and control byte, buckets a power of two, at most 7/8 full | 5 to 11 |
//! | once the room was listed, or in a large room: entry in the user order (slot number), blocks half to full | 4 to 8 |
//! | in an order of more than one block (past 512 presences): the block id of the slot, and per block its ceiling and id (8 + 4 + 32 in a vector of blocks, 128 to 512 presences a block) | about 4 |
//! | in a large room: its expiry millisecond and its count (8 + 4), shared by the presences of that millisecond, in blocks a quarter to full | 12 to 48, about 16 when the expiries come in increasing order |
//! | an id longer than 22 bytes that is not a canonical UUID: its own allocation | its length, rounded to a size class |
//!
//! and one room costs its entry in the table of rooms (its 184-byte record and a control byte,
//! buckets a power of two, at most 7/8 full), its name (one allocation, shared with the queue
//! of rooms, 16 bytes more than its length) and its entry in that queue (24 bytes in a B-tree
//! node); a room whose user order is more than one block adds its 80-byte head.
//!
//! A presence held through a node keeps the node's number, not its id: a socket
//! `web-1.4242.k3f9/<20 bytes>` stays inline like a socket id of 20 bytes (a Socket.IO socket
//! id is 20 bytes). A UUID in canonical form (`8-4-4-4-12` hex digits, all lowercase or all
//! uppercase) stays in place too, as its 16 bytes ([`SmallStr`]): a UUID user costs the index
//! what a 12-digit one does, in rooms of 10, 100 or 10,000 (a unit test checks it), where it
//! cost 48 bytes more in its own allocation. A UUID in mixed case or in another form is kept as
//! a string, in an allocation of its own.
//!
//! For 1,000,000 presences in 10,000 rooms of 100 (12-byte user ids, 20-byte socket ids, with
//! or without a node): per room, the slots take 113 × 72 = 8,192 bytes (a size class; 99 slots
//! would fit in the class below), the queue 112 × 4 = 448 (a class) and the hash table 128
//! buckets, 656 bytes in a class of 768: 94.1 bytes per presence. The table of rooms (16,384
//! buckets × 185 bytes, in a 3 MiB class) adds 3.1, the rooms' names and the queue of rooms
//! about 0.9: about 98 bytes per presence in all, and about 102 once every room was listed (its
//! user order, one block of 448 bytes a room, without ceilings). One room of 1,000,000
//! presences, joined in user id order, takes about 98 bytes per presence
//! without its expiry counts (9 of them for its user order: slot numbers in blocks three
//! quarters full, and the block of each slot); the counts add about 1 when the presences share
//! expiry milliseconds (heartbeats, 30 a millisecond), and about 14 when every presence has a
//! millisecond of its own (in increasing order, as heartbeats give them).

mod compact;
mod expiries;
#[cfg(test)]
mod invariants;
#[cfg(test)]
mod model_test;
mod presence;
mod queue;
mod room;
mod seg_vec;
mod sorted_blocks;
mod split_table;
mod staged;

use foldhash::fast::RandomState;
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::rc::Rc;

use crate::small_str::SmallStr;
pub use presence::{Dead, Presence, Prior, Refresh, RoomWalk, SocketRef, Step};
use room::Room;
pub use staged::{Staged, StagedPresence};

#[cfg(doc)]
use super::liveness::NO_TTL;

/// A room above this many presences counts them per expiry millisecond; it stops below half.
pub const LARGE_ROOM: usize = 1024;

/// The most heap entries one sweeper step moves in a large room.
pub const SWEEP_WORK: usize = 64;

/// The hash of an id's bytes.
fn hash_id(hasher: &RandomState, id: &[u8]) -> u64 {
    hasher.hash_one(id)
}

/// The room called `name` in `rooms`, to change.
fn find_room<'a>(
    rooms: &'a mut HashTable<Room>,
    hasher: &RandomState,
    name: &str,
) -> Option<&'a mut Room> {
    rooms.find_mut(hash_id(hasher, name.as_bytes()), |state| {
        *state.name == *name
    })
}

/// Adds to `total` the change of a room's known dead from `before` to `after`.
fn settle(total: &mut usize, before: usize, after: usize) {
    *total = *total + after - before;
}

/// The room index of one database.
#[derive(Debug)]
pub struct RoomIndex {
    rooms: HashTable<Room>,
    /// Rooms by [`Room::due_key`].
    due: BTreeSet<(i64, Rc<str>)>,
    /// The number of presences.
    entries: usize,
    /// The sum of every room's [`Room::known_dead`].
    dead: usize,
    /// The size above which a room counts per expiry ([`LARGE_ROOM`]).
    large: usize,
    /// Hashes room and user ids, with a random seed.
    hasher: RandomState,
}

/// One room of the index open for writing ([`RoomIndex::write_room`]).
pub struct RoomWriter<'a> {
    room: &'a mut Room,
    hasher: &'a RandomState,
    large: usize,
    /// The presences added so far.
    added: usize,
}

impl RoomWriter<'_> {
    /// Sets `user` to `socket` expiring at `expire_at`, and says what it held before.
    pub fn upsert(&mut self, user: &str, socket: SocketRef<'_>, expire_at: i64) -> Prior {
        let previous = self
            .room
            .upsert(self.hasher, user, socket, expire_at, self.large);
        if previous == Prior::Absent {
            self.added += 1;
        }
        previous
    }

    /// The room's live count at `cutoff`.
    pub fn live(&mut self, cutoff: i64) -> usize {
        self.room.live(cutoff)
    }
}

impl Default for RoomIndex {
    fn default() -> Self {
        RoomIndex::new()
    }
}

impl RoomIndex {
    /// An empty index.
    pub fn new() -> Self {
        RoomIndex {
            rooms: HashTable::new(),
            due: BTreeSet::new(),
            entries: 0,
            dead: 0,
            large: LARGE_ROOM,
            hasher: RandomState::default(),
        }
    }

    /// An empty index whose rooms count per expiry above `large` presences.
    #[cfg(test)]
    fn with_large_rooms_above(large: usize) -> Self {
        RoomIndex {
            large,
            ..RoomIndex::new()
        }
    }

    /// The room called `room`.
    fn room(&self, room: &str) -> Option<&Room> {
        self.rooms
            .find(hash_id(&self.hasher, room.as_bytes()), |state| {
                *state.name == *room
            })
    }

    /// What the index holds for (room, user).
    pub fn get(&self, room: &str, user: &str) -> Option<&Presence> {
        let state = self.room(room)?;
        let ix = state.find(hash_id(&self.hasher, user.as_bytes()), user)?;
        Some(&state.slots[ix].presence)
    }

    /// Sets (room, user) to `socket` expiring at `expire_at`, and says what it held before.
    #[cfg(test)]
    pub(crate) fn upsert(&mut self, room: &str, user: &str, socket: &str, expire_at: i64) -> Prior {
        self.upsert_counted(room, user, socket.into(), expire_at, None)
            .0
    }

    /// Sets (room, user) to `socket` expiring at `expire_at`, and says what it held before,
    /// with the room's live count at `cutoff` afterwards when one is given.
    pub fn upsert_counted(
        &mut self,
        room: &str,
        user: &str,
        socket: SocketRef<'_>,
        expire_at: i64,
        cutoff: Option<i64>,
    ) -> (Prior, usize) {
        self.write_room(room, |writer| {
            let previous = writer.upsert(user, socket, expire_at);
            (previous, cutoff.map_or(0, |cutoff| writer.live(cutoff)))
        })
    }

    /// Runs `f` on the room called `room` (created when missing), then settles the index's
    /// totals and the room's place in the queue of rooms once: the presences of one room are
    /// written in a row at the cost of one room lookup ([`RoomWriter::upsert`] for each).
    pub fn write_room<R>(&mut self, room: &str, f: impl FnOnce(&mut RoomWriter<'_>) -> R) -> R {
        let hasher = &self.hasher;
        let state = match self.rooms.entry(
            hash_id(hasher, room.as_bytes()),
            |state| *state.name == *room,
            |state| hash_id(hasher, state.name.as_bytes()),
        ) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(Room::new(Rc::from(room))).into_mut(),
        };
        let before = state.known_dead();
        let mut writer = RoomWriter {
            room: &mut *state,
            hasher,
            large: self.large,
            added: 0,
        };
        let result = f(&mut writer);
        self.entries += writer.added;
        settle(&mut self.dead, before, state.known_dead());
        state.requeue(&mut self.due);
        result
    }

    /// Moves the expiry of (room, user) to `expire_at` when `socket` holds it and it is live at
    /// `cutoff`.
    pub fn refresh(
        &mut self,
        room: &str,
        user: &str,
        socket: SocketRef<'_>,
        expire_at: i64,
        cutoff: i64,
    ) -> Refresh {
        let hash = hash_id(&self.hasher, user.as_bytes());
        let Some(state) = find_room(&mut self.rooms, &self.hasher, room) else {
            return Refresh::NotHeld;
        };
        let Some(ix) = state.find(hash, user) else {
            return Refresh::NotHeld;
        };
        let presence = &state.slots[ix].presence;
        if !presence.is_held_by(socket) {
            return Refresh::NotHeld;
        }
        let previous = presence.expire_at;
        if previous <= cutoff {
            return Refresh::NotLive {
                expire_at: previous,
            };
        }
        let before = state.known_dead();
        if state.set_expiry(ix, expire_at) {
            settle(&mut self.dead, before, state.known_dead());
            state.requeue(&mut self.due);
        } else if state.expiries.is_some() {
            settle(&mut self.dead, before, state.known_dead());
        }
        Refresh::Refreshed { previous }
    }

    /// Removes (room, user) and returns what it held, with the room's live count at `cutoff`
    /// afterwards when one is given.
    fn take(&mut self, room: &str, user: &str, cutoff: Option<i64>) -> Option<(Presence, usize)> {
        let hasher = &self.hasher;
        let Ok(mut entry) = self
            .rooms
            .find_entry(hash_id(hasher, room.as_bytes()), |state| {
                *state.name == *room
            })
        else {
            return None;
        };
        let state = entry.get_mut();
        let hash = hash_id(hasher, user.as_bytes());
        let ix = state.find(hash, user)?;
        let before = state.known_dead();
        let old = state.remove(ix, hash, hasher, self.large)?;
        self.entries -= 1;
        let count = cutoff.map_or(0, |cutoff| state.live(cutoff));
        settle(&mut self.dead, before, state.known_dead());
        state.requeue(&mut self.due);
        if state.slots.is_empty() {
            entry.remove();
            if self.rooms.len() < self.rooms.capacity() / 4 {
                self.rooms.shrink_to(self.rooms.len(), |state| {
                    hash_id(hasher, state.name.as_bytes())
                });
            }
        }
        Some((old.presence, count))
    }

    /// Removes (room, user) and returns what it held, with the room's live count at `cutoff`
    /// afterwards.
    pub fn remove_counted(
        &mut self,
        room: &str,
        user: &str,
        cutoff: i64,
    ) -> Option<(Presence, usize)> {
        self.take(room, user, Some(cutoff))
    }

    /// Removes (room, user) and returns what it held.
    #[cfg(test)]
    pub(crate) fn remove(&mut self, room: &str, user: &str) -> Option<Presence> {
        self.take(room, user, None).map(|(old, _)| old)
    }

    /// The number of live presences in `room`: those with `expire_at > cutoff`.
    pub fn count(&mut self, room: &str, cutoff: i64) -> usize {
        let Some(state) = find_room(&mut self.rooms, &self.hasher, room) else {
            return 0;
        };
        let before = state.known_dead();
        let count = state.live(cutoff);
        settle(&mut self.dead, before, state.known_dead());
        state.requeue(&mut self.due);
        count
    }

    /// The live presences of `room` as (user, socket), ordered by user id (bytes), at most
    /// `limit`, and only those after `after` when it is given. Reading a room page by page,
    /// each page after the last user of the one before, gives the same presences as one
    /// listing. Costs O(log n + the blocks of the user order looked at + the presences read):
    /// blocks whose ceiling is at or below `cutoff` are skipped whole, so the presences read
    /// are those of the blocks that hold a live one or whose ceiling is stale (see the module's
    /// doc), whatever the number of presences not live. The first listing of a small room
    /// sorts it once (at most [`LARGE_ROOM`] presences); the room keeps its order from then on.
    #[cfg(test)]
    pub fn list(
        &mut self,
        room: &str,
        cutoff: i64,
        limit: usize,
        after: Option<&str>,
    ) -> Vec<(String, String)> {
        self.list_where(room, cutoff, limit, after, |_| true)
            .into_iter()
            .map(|(user, presence)| (user.to_string(), presence.socket.to_string()))
            .collect()
    }

    /// [`RoomIndex::list`] of the presences `keep` admits, as (user, presence): the others are
    /// passed over as if they were not live (they are read, so a page also reads each of them
    /// in the blocks it looks at). The ids stay [`SmallStr`]s, whose bytes a reply takes
    /// without allocating and without checking them again as UTF-8 ([`SmallStr::with_bytes`]).
    pub fn list_where(
        &mut self,
        room: &str,
        cutoff: i64,
        limit: usize,
        after: Option<&str>,
        keep: impl Fn(&Presence) -> bool,
    ) -> Vec<(&SmallStr, &Presence)> {
        let Some(state) = find_room(&mut self.rooms, &self.hasher, room) else {
            return Vec::new();
        };
        state.keep_order();
        let Room { slots, order, .. } = state;
        let slots = &*slots;
        let start = match after {
            Some(after) => {
                let after = SmallStr::from(after);
                order.after(|ix| slots[ix as usize].user.cmp(&after))
            }
            None => order.start(),
        };
        order
            .live_from(
                start,
                cutoff,
                limit,
                |ix| slots[ix as usize].presence.expire_at,
                |ix| keep(&slots[ix as usize].presence),
            )
            .into_iter()
            .map(|ix| {
                let slot = &slots[ix as usize];
                (&slot.user, &slot.presence)
            })
            .collect()
    }

    /// The number of presences of `room` live at `cutoff` that `keep` admits: one pass over the
    /// room.
    pub fn count_where(&self, room: &str, cutoff: i64, keep: impl Fn(&Presence) -> bool) -> usize {
        let Some(state) = self.room(room) else {
            return 0;
        };
        state
            .slots
            .iter()
            .map(|slot| &slot.presence)
            .filter(|presence| presence.expire_at > cutoff && keep(presence))
            .count()
    }

    /// The number of presences of `room`, live or not.
    pub fn room_len(&self, room: &str) -> usize {
        self.room(room).map_or(0, |state| state.slots.len())
    }

    /// Looks through the slots of `room` from slot `from` on, at most `work` of them, for a
    /// presence that `pick` admits. Slots move when a presence leaves (the last one
    /// fills the hole), so a walk that reaches the end may have missed one that moved behind
    /// it: the caller walks again while it knows of one left.
    pub fn find_in_room(
        &self,
        room: &str,
        from: usize,
        work: usize,
        pick: impl Fn(&Presence) -> bool,
    ) -> RoomWalk {
        let Some(state) = self.room(room) else {
            return RoomWalk::End;
        };
        let end = state.slots.len().min(from.saturating_add(work));
        for ix in from..end {
            let slot = &state.slots[ix];
            if pick(&slot.presence) {
                return RoomWalk::Found {
                    slot: ix,
                    dead: Dead {
                        room: state.name.clone(),
                        user: slot.user.clone(),
                        presence: slot.presence.clone(),
                    },
                };
            }
        }
        if end < state.slots.len() {
            RoomWalk::More(end)
        } else {
            RoomWalk::End
        }
    }

    /// One bounded step of the sweeper at `cutoff`, in the room with the earliest expiry: a
    /// presence that is not live, [`Step::Progress`] when the step found none yet (step
    /// again), or [`Step::Idle`] when no presence is dead at `cutoff`. A step costs
    /// O(log n) in the queue of rooms, plus at most [`LARGE_ROOM`] entries of a small room or
    /// [`SWEEP_WORK`] heap entries of a large one.
    pub fn first_dead(&mut self, cutoff: i64) -> Step {
        let Some((at, name)) = self.due.first() else {
            return Step::Idle;
        };
        if *at > cutoff {
            return Step::Idle;
        }
        let name = name.clone();
        let Some(state) = find_room(&mut self.rooms, &self.hasher, &name) else {
            return Step::Idle;
        };
        let before = state.known_dead();
        let found = state.sweep(cutoff, SWEEP_WORK);
        settle(&mut self.dead, before, state.known_dead());
        state.requeue(&mut self.due);
        match found {
            Some(ix) => {
                let slot = &state.slots[ix as usize];
                Step::Dead(Dead {
                    room: name,
                    user: slot.user.clone(),
                    presence: slot.presence.clone(),
                })
            }
            None => Step::Progress,
        }
    }

    /// The number of presences known live in the whole database: those indexed less those
    /// known not live (see [`RoomIndex::backlog`]). O(1).
    pub fn live(&self) -> usize {
        self.entries - self.dead
    }

    /// The number of presences known not live and not yet removed (the sweeper's backlog):
    /// found not live at the cutoff their room was last brought to (a count; in a room of at
    /// most [`LARGE_ROOM`] presences also a counted change or a sweeper step). A presence that
    /// went stale since is not in it until then. O(1).
    pub fn backlog(&self) -> usize {
        self.dead
    }

    /// The bytes the index takes in allocations: its rooms, the table of rooms, the rooms'
    /// names and the queue of rooms (24 bytes an entry, in B-tree nodes about two thirds full).
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        let rooms: usize = self
            .rooms
            .iter()
            .map(|state| state.allocated_bytes() + compact::size_class(state.name.len() + 16))
            .sum();
        rooms + compact::size_class(self.rooms.allocation_size()) + self.due.len() * 36
    }

    /// The names of the rooms that hold at least one presence (live or not), in no order.
    pub fn room_names(&self) -> impl Iterator<Item = &str> {
        self.rooms.iter().map(|room| &*room.name)
    }

    /// The number of rooms that hold at least one presence (live or not).
    pub fn rooms(&self) -> usize {
        self.rooms.len()
    }

    /// The number of presences indexed (live or not).
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

#[cfg(test)]
mod tests {
    use super::invariants::{dead_at, owned, totals_at};
    use super::*;
    use crate::liveness::NO_TTL;

    fn users(index: &mut RoomIndex, room: &str, cutoff: i64) -> Vec<String> {
        index
            .list(room, cutoff, usize::MAX, None)
            .into_iter()
            .map(|(u, _)| u.to_string())
            .collect()
    }

    #[test]
    fn insert_refresh_replace_remove() {
        let mut index = RoomIndex::new();
        assert_eq!(index.upsert("r", "u1", "s1", 100), Prior::Absent);
        assert_eq!(
            index.upsert("r", "u1", "s1", 200),
            Prior::Same { expire_at: 100 }
        );
        assert_eq!(
            index.upsert("r", "u1", "s2", 300),
            Prior::Other(Presence {
                node: None,
                socket: "s1".into(),
                expire_at: 200
            })
        );
        assert_eq!(
            index.get("r", "u1").map(|p| p.socket.to_string()),
            Some("s2".to_string())
        );
        assert_eq!(index.entries(), 1);
        assert_eq!(
            index.remove("r", "u1"),
            Some(Presence {
                node: None,
                socket: "s2".into(),
                expire_at: 300
            })
        );
        assert_eq!(index.remove("r", "u1"), None);
        assert!(index.is_empty());
        assert_eq!(index.rooms(), 0);
    }

    #[test]
    fn refresh_moves_only_the_holding_socket() {
        let mut index = RoomIndex::new();
        index.upsert("r", "u", "s", 100);
        assert_eq!(
            index.refresh("r", "u", "other".into(), 500, 0),
            Refresh::NotHeld
        );
        assert_eq!(
            index.refresh("r", "nobody", "s".into(), 500, 0),
            Refresh::NotHeld
        );
        assert_eq!(
            index.refresh("nowhere", "u", "s".into(), 500, 0),
            Refresh::NotHeld
        );
        assert_eq!(
            index.refresh("r", "u", "s".into(), 500, 100),
            Refresh::NotLive { expire_at: 100 }
        );
        assert_eq!(index.count("r", 200), 0);
        assert_eq!(
            index.refresh("r", "u", "s".into(), 500, 0),
            Refresh::Refreshed { previous: 100 }
        );
        assert_eq!(index.count("r", 200), 1);
        assert_eq!(dead_at(&mut index, 200), None);
        assert_eq!(
            dead_at(&mut index, 500).map(|d| d.presence.expire_at),
            Some(500)
        );
        assert_eq!(
            index.upsert_counted("r", "v", "t".into(), 50, Some(200)),
            (Prior::Absent, 1)
        );
        assert_eq!(
            index
                .remove_counted("r", "u", 200)
                .map(|(p, c)| (p.expire_at, c)),
            Some((500, 0))
        );
        assert_eq!(totals_at(&mut index, 200).1, 1);
        index.assert_consistent();
    }

    #[test]
    fn count_and_list_follow_the_cutoff() {
        let mut index = RoomIndex::new();
        index.upsert("r", "c", "sc", 300);
        index.upsert("r", "a", "sa", 100);
        index.upsert("r", "b", "sb", 200);
        index.upsert("other", "a", "x", 1000);
        assert_eq!(index.count("r", 0), 3);
        assert_eq!(users(&mut index, "r", 0), ["a", "b", "c"]);
        assert_eq!(index.count("r", 100), 2);
        assert_eq!(users(&mut index, "r", 100), ["b", "c"]);
        assert_eq!(index.count("r", 250), 1);
        assert_eq!(index.count("r", 300), 0);
        assert_eq!(index.count("nope", 0), 0);
        assert_eq!(index.count("other", 300), 1);
        assert_eq!(
            index.list("r", 0, 2, None),
            owned(&[("a", "sa"), ("b", "sb")])
        );
        assert!(index.list("nope", 0, 2, None).is_empty());
        index.assert_consistent();
    }

    #[test]
    fn a_cutoff_that_moves_back_recounts() {
        let mut index = RoomIndex::new();
        index.upsert("r", "a", "s", 100);
        index.upsert("r", "b", "s", 200);
        assert_eq!(index.count("r", 150), 1);
        assert_eq!(index.count("r", 50), 2);
        assert_eq!(totals_at(&mut index, 50), (2, 0));
        assert_eq!(totals_at(&mut index, 500), (0, 2));
        assert_eq!(totals_at(&mut index, 150), (1, 1));
        index.assert_consistent();
    }

    #[test]
    fn refresh_and_removal_of_counted_entries_keep_the_count_exact() {
        let mut index = RoomIndex::new();
        index.upsert("r", "a", "s", 100);
        index.upsert("r", "b", "s", 100);
        assert_eq!(index.count("r", 150), 0);
        index.upsert("r", "a", "s", 1000);
        assert_eq!(index.count("r", 150), 1);
        index.remove("r", "b");
        assert_eq!(index.count("r", 150), 1);
        index.upsert("r", "c", "s", NO_TTL);
        assert_eq!(index.count("r", 150), 1);
        assert_eq!(totals_at(&mut index, 150), (1, 1));
        index.assert_consistent();
    }

    #[test]
    fn first_dead_walks_expiry_order_across_rooms() {
        let mut index = RoomIndex::new();
        index.upsert("r1", "a", "s", 300);
        index.upsert("r2", "b", "s", 100);
        index.upsert("r1", "c", "s", NO_TTL);
        index.upsert("r3", "d", "s", 10_000);
        let mut order = Vec::new();
        while let Some(dead) = dead_at(&mut index, 500) {
            order.push(format!("{}/{}", dead.room, dead.user));
            index.remove(&dead.room, &dead.user.to_string());
        }
        assert_eq!(order, ["r1/c", "r2/b", "r1/a"]);
        assert_eq!(index.entries(), 1);
        assert_eq!(dead_at(&mut index, 500), None);
        assert_eq!(index.rooms(), 1);
        index.assert_consistent();
    }

    #[test]
    fn no_ttl_and_extreme_expiries_do_not_overflow() {
        let mut index = RoomIndex::new();
        for (user, at) in [
            ("a", NO_TTL),
            ("b", i64::MAX),
            ("c", i64::MIN + 1),
            ("d", 0),
        ] {
            index.upsert("r", user, "s", at);
        }
        index.assert_consistent();
        assert_eq!(index.count("r", i64::MIN), 3);
        assert_eq!(index.count("r", i64::MAX), 0);
        assert_eq!(index.count("r", i64::MIN + 1), 2);
        assert_eq!(totals_at(&mut index, i64::MIN).0, 3);
        assert_eq!(totals_at(&mut index, i64::MAX).1, 4);
        assert_eq!(
            index.refresh("r", "d", "s".into(), NO_TTL, -1),
            Refresh::Refreshed { previous: 0 }
        );
        assert_eq!(index.count("r", -1), 1);
        assert_eq!(
            dead_at(&mut index, i64::MIN).map(|d| d.presence.expire_at),
            Some(NO_TTL)
        );
        index.assert_consistent();
    }

    #[test]
    fn memory_per_presence_in_ten_thousand_rooms_of_a_hundred() {
        let mut index = RoomIndex::new();
        for room in 0..10_000 {
            let name = format!("room{room:06}");
            for i in 0..100 {
                index.upsert(&name, &format!("{i:012}"), &format!("s{i:019}"), 1000 + i);
            }
        }
        let per_presence = index.allocated_bytes() as f64 / 1e6;
        assert!((97.0..=99.0).contains(&per_presence), "{per_presence}");
        for room in 0..10_000 {
            index.list(&format!("room{room:06}"), 0, 1, None);
        }
        let listed = index.allocated_bytes() as f64 / 1e6;
        assert!((101.0..=103.0).contains(&listed), "{listed}");
    }

    /// A version 4 UUID made from `i`, as applications use for user ids.
    fn uuid(i: u64) -> String {
        let bits = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            bits >> 32,
            bits >> 16 & 0xffff,
            bits & 0xfff,
            i & 0xfff,
            i
        )
    }

    /// The bytes per presence of `n` presences in rooms of `room_size`, user ids made by `user`,
    /// Socket.IO socket ids (20 bytes).
    fn per_presence(n: u64, room_size: u64, user: impl Fn(u64) -> String) -> f64 {
        let mut index = RoomIndex::new();
        for i in 0..n {
            let room = format!("stream-2026-12-06-{:06}", i / room_size);
            index.upsert(
                &room,
                &user(i),
                &format!("Ab3_xY-9kL{i:010}"),
                1000 + i as i64,
            );
        }
        index.allocated_bytes() as f64 / n as f64
    }

    #[test]
    fn uuid_users_with_socket_io_sockets_cost_what_short_ids_cost() {
        for room_size in [10, 100, 10_000] {
            let uuids = per_presence(200_000, room_size, uuid);
            let short = per_presence(200_000, room_size, |i| format!("{i:012}"));
            // The user order of a large room fills its blocks a little differently when the
            // users do not join in their order, as UUIDs do not.
            let slack = if room_size > LARGE_ROOM as u64 {
                1.0
            } else {
                0.0
            };
            assert!(
                (uuids - short).abs() <= slack,
                "rooms of {room_size}: {uuids} {short}"
            );
        }
        let uuids = per_presence(1_000_000, 100, uuid);
        assert!((97.0..=99.0).contains(&uuids), "{uuids}");
    }

    #[test]
    fn the_table_of_rooms_follows_membership() {
        let mut index = RoomIndex::new();
        for room in 0..1000 {
            index.upsert(&format!("r{room}"), "u", "s", 1000 + room);
        }
        let full = index.rooms.capacity();
        for room in 10..1000 {
            assert!(index.remove(&format!("r{room}"), "u").is_some());
        }
        assert!(
            index.rooms.capacity() * 8 <= full,
            "{full} {}",
            index.rooms.capacity()
        );
        assert_eq!(index.rooms(), 10);
        assert_eq!(index.count("r3", 0), 1);
        assert_eq!(index.get("r9", "u").map(|p| p.expire_at), Some(1009));
        assert_eq!(
            dead_at(&mut index, 2000).map(|d| d.room.to_string()),
            Some("r0".into())
        );
        index.assert_consistent();
    }

    #[test]
    fn pages_after_a_user_join_up_to_the_full_listing() {
        let mut index = RoomIndex::new();
        for user in ["m", "c", "x", "a", "b", "mm", "y"] {
            index.upsert("r", user, "s", 1000);
        }
        index.upsert("r", "c", "other", 2000);
        index.upsert("r", "b", "s", 10);
        assert_eq!(users(&mut index, "r", 100), ["a", "c", "m", "mm", "x", "y"]);
        assert_eq!(
            index.list("r", 100, 2, Some("a")),
            owned(&[("c", "other"), ("m", "s")])
        );
        assert_eq!(
            index.list("r", 100, 2, Some("b")),
            owned(&[("c", "other"), ("m", "s")])
        );
        assert_eq!(
            index.list("r", 100, 9, Some("m")),
            owned(&[("mm", "s"), ("x", "s"), ("y", "s")])
        );
        assert!(index.list("r", 100, 9, Some("y")).is_empty());
        assert!(index.list("r", 100, 9, Some("zzz")).is_empty());
        assert!(index.list("r", 100, 0, None).is_empty());
        assert_eq!(index.list("r", 100, 1, Some("")), owned(&[("a", "s")]));
        index.remove("r", "a");
        index.upsert("r", "aa", "s", 1000);
        assert_eq!(
            users(&mut index, "r", 100),
            ["aa", "c", "m", "mm", "x", "y"]
        );
        index.assert_consistent();
    }
}
