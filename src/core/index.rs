//! The room index of one database: which presences each room holds, kept in step with the
//! keyspace by the module's hooks, so that a room can be listed and counted without scanning
//! the keyspace, and the presences that are no longer live can be found at a cost that follows
//! their number, not the number that exist.
//!
//! It stores, per presence, the socket id and the key's absolute expiry (`expire_at`, ms, or
//! [`NO_TTL`]). Liveness is not stored: every read is given the cutoff of the liveness rule
//! ([`super::liveness::Liveness::cutoff`]) and a presence is live when `expire_at > cutoff`.
//!
//! # Per room
//!
//! A room keeps its presences in a dense vector of slots, found by user id through a hash table
//! of slot numbers (seeded at random: the ids come from clients). Removal moves the last slot
//! into the hole.
//!
//! The room also remembers the last cutoff it was asked about (`dead_cutoff`) and splits its
//! slots in two: those with `expire_at <= dead_cutoff` are in a `dead` list, every other one is
//! in a binary min-heap ordered by a lower bound of its expiry (`queued_at`). A heartbeat only
//! raises a presence's expiry: the slot keeps its place in the heap and records how far its
//! real expiry has moved past its `queued_at` (`gap`), so a heartbeat costs one hash lookup.
//! When a later cutoff reaches a heap entry, the presence either goes to `dead` or is queued
//! again at its real expiry: an entry moves about once per staleness window. The live count is
//! then the number of slots less the `dead` list. A cutoff that moves back (a larger
//! `stale-after`) puts the `dead` slots that are live again back in the heap.
//!
//! Listing needs the slots in user id order: the first listing after a change of the room's
//! members sorts the slots themselves (renumbering their entries in the hash table, the heap and
//! the `dead` list), so no order is kept beside them and a room that is never listed is never
//! sorted. A join with a user id above every other and the removal of the last slot keep the
//! order.
//!
//! # Across rooms
//!
//! A queue orders the rooms by a lower bound of their earliest expiry: the `dead` list's lowest
//! expiry when it is not empty, else the heap's first entry. It gives the sweeper a presence
//! that is not live in O(log n) (amortized: entries of presences refreshed since they were
//! queued are moved on the way).
//!
//! # Memory
//!
//! One presence costs, in bytes (jemalloc, Redis's allocator, rounds every allocation up to a
//! size class, about four per doubling; the vectors below grow one size class at a time, so
//! they fill the class they are given):
//!
//! | part | bytes |
//! | --- | ---: |
//! | slot: user id (24, inline up to 22 bytes), socket id (24, same), `expire_at` (8), `gap` (4), place in the heap or `dead` list (4) | 64 |
//! | entry in the heap or the `dead` list (slot number) | 4 |
//! | entry in the user hash table: slot number and control byte, buckets a power of two, at most 7/8 full | 5 to 11 |
//! | an id longer than 22 bytes: its own allocation | its length, rounded to a size class |
//!
//! and one room costs its entry in the table of rooms (its 160-byte record and a control byte,
//! buckets a power of two, at most 7/8 full), its name (one allocation, shared with the queue
//! of rooms, 16 bytes more than its length) and its entry in that queue (24 bytes in a B-tree
//! node).
//!
//! For 1,000,000 presences in 10,000 rooms of 100 (12-byte user ids, 20-byte socket ids): per
//! room, the slots take 112 × 64 = 7,168 bytes (a size class), the heap 112 × 4 = 448 (a class)
//! and the hash table 128 buckets, 656 bytes in a class of 768: 83.8 bytes per presence. The
//! table of rooms (16,384 buckets × 161 bytes, in a 3 MiB class) adds 3.1, the rooms' names and
//! the queue of rooms about 0.9: about 88 bytes per presence in all.

use foldhash::fast::RandomState;
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::rc::Rc;

use super::small_str::SmallStr;

#[cfg(doc)]
use super::liveness::NO_TTL;

/// One presence as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// The socket id that holds the presence (the key's value).
    pub socket: SmallStr,
    /// The key's absolute expiry in Unix ms, or [`NO_TTL`].
    pub expire_at: i64,
}

/// A presence that is not live, as handed to the sweeper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadPresence {
    /// The room id.
    pub room: Rc<str>,
    /// The user id.
    pub user: SmallStr,
    /// What the index holds for it.
    pub presence: Presence,
}

/// What (room, user) held before an [`RoomIndex::upsert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    /// Nothing: a new presence.
    Absent,
    /// The same socket, expiring at this time.
    Same {
        /// The expiry it had.
        expire_at: i64,
    },
    /// Another socket, now replaced.
    Other(Presence),
}

/// What [`RoomIndex::refresh`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// (room, user) is not held by that socket: nothing changed.
    NotHeld,
    /// The socket holds it, but it is not live (its expiry is at or below the cutoff): nothing
    /// changed.
    NotLive {
        /// Its expiry.
        expire_at: i64,
    },
    /// The expiry moved; it was `previous` before.
    Refreshed {
        /// The expiry it had.
        previous: i64,
    },
}

/// The tag of a slot's `place` that says it is in the `dead` list, not the heap. A room holds
/// fewer than 2^31 presences.
const DEAD_TAG: u32 = 1 << 31;

/// Where a slot is listed.
enum Place {
    /// At this position of the heap.
    Heap(usize),
    /// At this position of the `dead` list.
    Dead(usize),
}

/// One presence of a room.
#[derive(Debug)]
struct Slot {
    user: SmallStr,
    presence: Presence,
    /// How far `presence.expire_at` lies past the expiry the slot is queued under in the heap
    /// (0 in the `dead` list).
    gap: u32,
    /// The slot's position in the heap, or in the `dead` list with [`DEAD_TAG`] set.
    place: u32,
}

impl Slot {
    /// The expiry the slot is queued under: a lower bound of its real expiry.
    fn queued_at(&self) -> i64 {
        self.presence.expire_at.saturating_sub(i64::from(self.gap))
    }

    /// Where the slot is listed.
    fn place(&self) -> Place {
        if self.place & DEAD_TAG == 0 {
            Place::Heap(self.place as usize)
        } else {
            Place::Dead((self.place & !DEAD_TAG) as usize)
        }
    }
}

/// The presences of one room. Every slot with `expire_at <= dead_cutoff` is in `dead`, every
/// other one is in `heap` with `dead_cutoff < queued_at <= expire_at`.
#[derive(Debug)]
struct Room {
    name: Rc<str>,
    slots: Vec<Slot>,
    /// Slot numbers, by the hash of their user id.
    users: HashTable<u32>,
    /// Slot numbers, a binary min-heap by `queued_at`.
    heap: Vec<u32>,
    /// Slot numbers of the presences not live at `dead_cutoff`, in no order.
    dead: Vec<u32>,
    /// True when `slots` are in user id order (sorted by a listing, no change of members since).
    sorted: bool,
    /// The cutoff the room was last brought to.
    dead_cutoff: i64,
    /// At most the lowest expiry in `dead`, when `dead` is not empty.
    dead_low: i64,
    /// The key this room is queued under in [`RoomIndex::due`].
    due_at: Option<i64>,
}

/// Index-wide counters, kept beside the rooms so that a room can update them while borrowed.
#[derive(Debug)]
struct Totals {
    entries: usize,
    /// The sum of every room's `dead` list length.
    dead: usize,
    /// The highest cutoff any room was brought to; no room's `dead_cutoff` is above it.
    max_cutoff: i64,
}

/// The hash of an id.
fn hash_id(hasher: &RandomState, id: &str) -> u64 {
    hasher.hash_one(id.as_bytes())
}

/// The size jemalloc gives an allocation of `bytes`: 8, multiples of 16 up to 128, then four
/// classes per doubling.
fn size_class(bytes: usize) -> usize {
    match bytes {
        0 => 0,
        1..=8 => 8,
        9..=128 => bytes.next_multiple_of(16),
        _ => bytes
            .checked_next_power_of_two()
            .and_then(|power| bytes.checked_next_multiple_of(power / 8))
            .unwrap_or(bytes),
    }
}

/// The most elements of `T` that fit the size class of `len` of them.
fn class_capacity<T>(len: usize) -> usize {
    let size = size_of::<T>().max(1);
    size_class(len.saturating_mul(size)) / size
}

/// Pushes `value`, growing a full vector to the next size class (by an eighth to a quarter)
/// instead of doubling it.
fn push_compact<T>(vec: &mut Vec<T>, value: T) {
    if vec.len() == vec.capacity() {
        let capacity = class_capacity::<T>(vec.len() + 1);
        vec.reserve_exact(capacity - vec.len());
    }
    vec.push(value);
}

/// Gives back the memory of a vector that fell below half its capacity.
fn shrink_compact<T>(vec: &mut Vec<T>) {
    if vec.len() < vec.capacity() / 2 {
        vec.shrink_to(class_capacity::<T>(vec.len()));
    }
}

impl Room {
    /// An empty room.
    fn new(name: Rc<str>) -> Self {
        Room {
            name,
            slots: Vec::new(),
            users: HashTable::new(),
            heap: Vec::new(),
            dead: Vec::new(),
            sorted: false,
            dead_cutoff: i64::MIN,
            dead_low: i64::MIN,
            due_at: None,
        }
    }

    /// The number of presences live at `dead_cutoff`.
    fn live(&self) -> usize {
        self.slots.len() - self.dead.len()
    }

    /// The slot of `user`, whose id hashes to `hash`.
    fn find(&self, hash: u64, user: &str) -> Option<usize> {
        let slots = &self.slots;
        self.users
            .find(hash, |&ix| {
                slots[ix as usize].user.as_bytes() == user.as_bytes()
            })
            .map(|&ix| ix as usize)
    }

    /// The `queued_at` of slot `ix`.
    fn queued_at(&self, ix: u32) -> i64 {
        self.slots[ix as usize].queued_at()
    }

    /// Puts slot `ix` at heap position `pos`.
    fn heap_set(&mut self, pos: usize, ix: u32) {
        self.heap[pos] = ix;
        self.slots[ix as usize].place = pos as u32;
    }

    /// Moves the entry at `pos` up to its place and returns where it landed.
    fn sift_up(&mut self, mut pos: usize) -> usize {
        let ix = self.heap[pos];
        let at = self.queued_at(ix);
        while pos > 0 {
            let parent = (pos - 1) / 2;
            let above = self.heap[parent];
            if self.queued_at(above) <= at {
                break;
            }
            self.heap_set(pos, above);
            pos = parent;
        }
        self.heap_set(pos, ix);
        pos
    }

    /// Moves the entry at `pos` down to its place.
    fn sift_down(&mut self, mut pos: usize) {
        let ix = self.heap[pos];
        let at = self.queued_at(ix);
        let len = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len
                && self.queued_at(self.heap[right]) < self.queued_at(self.heap[left])
            {
                right
            } else {
                left
            };
            let below = self.heap[child];
            if self.queued_at(below) >= at {
                break;
            }
            self.heap_set(pos, below);
            pos = child;
        }
        self.heap_set(pos, ix);
    }

    /// Moves the entry at `pos`, whose key changed, to its place.
    fn heap_fix(&mut self, pos: usize) {
        let pos = self.sift_up(pos);
        self.sift_down(pos);
    }

    /// Lists slot `ix` in the heap, under its `queued_at`.
    fn heap_push(&mut self, ix: u32) {
        let pos = self.heap.len();
        push_compact(&mut self.heap, ix);
        self.sift_up(pos);
    }

    /// Takes the entry at `pos` out of the heap.
    fn heap_remove(&mut self, pos: usize) {
        if let Some(last) = self.heap.pop() {
            if pos < self.heap.len() {
                self.heap_set(pos, last);
                self.heap_fix(pos);
            }
        }
        shrink_compact(&mut self.heap);
    }

    /// Lists slot `ix` in `dead`.
    fn dead_push(&mut self, ix: u32, totals: &mut Totals) {
        let slot = &mut self.slots[ix as usize];
        slot.gap = 0;
        slot.place = DEAD_TAG | self.dead.len() as u32;
        let at = slot.presence.expire_at;
        self.dead_low = if self.dead.is_empty() {
            at
        } else {
            self.dead_low.min(at)
        };
        push_compact(&mut self.dead, ix);
        totals.dead += 1;
    }

    /// Takes the entry at `pos` out of the `dead` list.
    fn dead_remove(&mut self, pos: usize, totals: &mut Totals) {
        self.dead.swap_remove(pos);
        if let Some(&moved) = self.dead.get(pos) {
            self.slots[moved as usize].place = DEAD_TAG | pos as u32;
        }
        shrink_compact(&mut self.dead);
        totals.dead -= 1;
    }

    /// Lists slot `ix` in `dead` or the heap, at its real expiry.
    fn attach(&mut self, ix: u32, totals: &mut Totals) {
        let slot = &mut self.slots[ix as usize];
        slot.gap = 0;
        if slot.presence.expire_at <= self.dead_cutoff {
            self.dead_push(ix, totals);
        } else {
            self.heap_push(ix);
        }
    }

    /// Takes slot `ix` out of `dead` or the heap.
    fn detach(&mut self, ix: usize, totals: &mut Totals) {
        match self.slots[ix].place() {
            Place::Heap(pos) => self.heap_remove(pos),
            Place::Dead(pos) => self.dead_remove(pos, totals),
        }
    }

    /// Gives slot `ix` the expiry `expire_at`. A later expiry of a slot in the heap only grows
    /// its `gap`; otherwise the slot moves, and the result is true (the room's key in the queue
    /// of rooms may have changed).
    fn set_expiry(&mut self, ix: usize, expire_at: i64, totals: &mut Totals) -> bool {
        let dead_cutoff = self.dead_cutoff;
        let slot = &mut self.slots[ix];
        let queued_at = slot.queued_at();
        slot.presence.expire_at = expire_at;
        match slot.place() {
            Place::Heap(pos) => {
                if let Some(gap) = expire_at
                    .checked_sub(queued_at)
                    .and_then(|gap| u32::try_from(gap).ok())
                {
                    slot.gap = gap;
                    return false;
                }
                slot.gap = 0;
                if expire_at <= dead_cutoff {
                    self.heap_remove(pos);
                    self.dead_push(ix as u32, totals);
                } else {
                    self.heap_fix(pos);
                }
            }
            Place::Dead(pos) => {
                if expire_at > dead_cutoff {
                    self.dead_remove(pos, totals);
                    self.heap_push(ix as u32);
                } else {
                    self.dead_low = self.dead_low.min(expire_at);
                }
            }
        }
        true
    }

    /// Brings the room to `cutoff`: afterwards `dead` holds exactly the presences not live at it.
    fn advance(&mut self, cutoff: i64, totals: &mut Totals) {
        if cutoff < self.dead_cutoff {
            self.dead_cutoff = cutoff;
            let mut pos = 0;
            let mut low = i64::MAX;
            while let Some(&ix) = self.dead.get(pos) {
                let at = self.slots[ix as usize].presence.expire_at;
                if at > cutoff {
                    self.dead_remove(pos, totals);
                    self.heap_push(ix);
                } else {
                    low = low.min(at);
                    pos += 1;
                }
            }
            self.dead_low = low;
        } else {
            self.dead_cutoff = cutoff;
            while let Some(&ix) = self.heap.first() {
                let slot = &mut self.slots[ix as usize];
                if slot.queued_at() > cutoff {
                    break;
                }
                if slot.presence.expire_at <= cutoff {
                    self.heap_remove(0);
                    self.dead_push(ix, totals);
                } else {
                    slot.gap = 0;
                    self.sift_down(0);
                }
            }
        }
        totals.max_cutoff = totals.max_cutoff.max(cutoff);
    }

    /// A slot not live at `cutoff`, if any: one of the `dead` list when it holds one, else the
    /// earliest expiry. The room moves only as far as needed: back to `cutoff` when its own
    /// cutoff is above it, else forward to its earliest entries until one is not live.
    fn first_dead(&mut self, cutoff: i64, totals: &mut Totals) -> Option<usize> {
        if cutoff < self.dead_cutoff {
            self.advance(cutoff, totals);
        }
        loop {
            if let Some(&ix) = self.dead.last() {
                return Some(ix as usize);
            }
            let first = self.queued_at(*self.heap.first()?);
            if first > cutoff {
                return None;
            }
            self.advance(first, totals);
        }
    }

    /// Puts the slots in user id order, and renumbers the entries that point at them. The
    /// order is found on slot numbers with a stable sort, which takes O(n) when the slots were
    /// sorted before a few changes of members, then applied by following its cycles.
    fn sort(&mut self) {
        let slots = &self.slots;
        let mut order: Vec<u32> = (0..slots.len() as u32).collect();
        order.sort_by(|&a, &b| slots[a as usize].user.cmp(&slots[b as usize].user));
        let mut renumbered = vec![0; order.len()];
        for (new, &old) in order.iter().enumerate() {
            renumbered[old as usize] = new as u32;
        }
        for start in 0..order.len() {
            let mut at = start;
            while order[at] != u32::MAX {
                let from = order[at] as usize;
                order[at] = u32::MAX;
                if from != start {
                    self.slots.swap(at, from);
                    at = from;
                }
            }
        }
        let entries = self.heap.iter_mut().chain(self.dead.iter_mut());
        for entry in entries.chain(self.users.iter_mut()) {
            *entry = renumbered[*entry as usize];
        }
        self.sorted = true;
    }

    /// The key the room belongs under in the queue of rooms: a lower bound of its earliest
    /// expiry, `None` when it holds nothing.
    fn due_key(&self) -> Option<i64> {
        if self.dead.is_empty() {
            self.heap.first().map(|&ix| self.queued_at(ix))
        } else {
            Some(self.dead_low)
        }
    }

    /// Moves the room to its place in the queue of rooms.
    fn requeue(&mut self, due: &mut BTreeSet<(i64, Rc<str>)>) {
        let key = self.due_key();
        if key != self.due_at {
            if let Some(at) = self.due_at {
                due.remove(&(at, self.name.clone()));
            }
            if let Some(at) = key {
                due.insert((at, self.name.clone()));
            }
            self.due_at = key;
        }
    }

    /// Brings the room to `cutoff` and returns its live count.
    fn count(
        &mut self,
        cutoff: i64,
        totals: &mut Totals,
        due: &mut BTreeSet<(i64, Rc<str>)>,
    ) -> usize {
        self.advance(cutoff, totals);
        self.requeue(due);
        self.live()
    }

    /// Sets `user` to `socket` expiring at `expire_at`.
    fn upsert(
        &mut self,
        hasher: &RandomState,
        user: &str,
        socket: &str,
        expire_at: i64,
        totals: &mut Totals,
    ) -> Previous {
        let hash = hash_id(hasher, user);
        if let Some(ix) = self.find(hash, user) {
            let presence = &mut self.slots[ix].presence;
            let old_expire = presence.expire_at;
            let previous = if presence.socket.as_bytes() == socket.as_bytes() {
                Previous::Same {
                    expire_at: old_expire,
                }
            } else {
                Previous::Other(Presence {
                    socket: std::mem::replace(&mut presence.socket, SmallStr::from(socket)),
                    expire_at: old_expire,
                })
            };
            self.set_expiry(ix, expire_at, totals);
            return previous;
        }
        let ix = self.slots.len() as u32;
        self.sorted &= self
            .slots
            .last()
            .is_none_or(|last| last.user.as_bytes() < user.as_bytes());
        push_compact(
            &mut self.slots,
            Slot {
                user: SmallStr::from(user),
                presence: Presence {
                    socket: SmallStr::from(socket),
                    expire_at,
                },
                gap: 0,
                place: 0,
            },
        );
        let slots = &self.slots;
        self.users.insert_unique(hash, ix, |&other| {
            hash_id(hasher, &slots[other as usize].user)
        });
        self.attach(ix, totals);
        totals.entries += 1;
        Previous::Absent
    }

    /// Removes slot `ix`, whose user id hashes to `hash`, and returns it.
    fn remove(&mut self, ix: usize, hash: u64, hasher: &RandomState, totals: &mut Totals) -> Slot {
        self.detach(ix, totals);
        if let Ok(entry) = self.users.find_entry(hash, |&other| other as usize == ix) {
            entry.remove();
        }
        let last = self.slots.len() - 1;
        let removed = self.slots.swap_remove(ix);
        if let Some(moved) = self.slots.get(ix) {
            match moved.place() {
                Place::Heap(pos) => self.heap[pos] = ix as u32,
                Place::Dead(pos) => self.dead[pos] = ix as u32,
            }
            let moved_hash = hash_id(hasher, &moved.user);
            if let Some(entry) = self
                .users
                .find_mut(moved_hash, |&other| other as usize == last)
            {
                *entry = ix as u32;
            }
        }
        shrink_compact(&mut self.slots);
        if self.users.len() < self.users.capacity() / 4 {
            let slots = &self.slots;
            self.users.shrink_to(self.users.len(), |&other| {
                hash_id(hasher, &slots[other as usize].user)
            });
        }
        self.sorted &= ix == last;
        totals.entries -= 1;
        removed
    }
}

/// The room called `name` in `rooms`, to change.
fn find_room<'a>(
    rooms: &'a mut HashTable<Room>,
    hasher: &RandomState,
    name: &str,
) -> Option<&'a mut Room> {
    rooms.find_mut(hash_id(hasher, name), |state| *state.name == *name)
}

/// The room index of one database.
#[derive(Debug)]
pub struct RoomIndex {
    rooms: HashTable<Room>,
    /// Rooms by [`Room::due_key`].
    due: BTreeSet<(i64, Rc<str>)>,
    totals: Totals,
    /// Hashes room and user ids, with a random seed.
    hasher: RandomState,
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
            totals: Totals {
                entries: 0,
                dead: 0,
                max_cutoff: i64::MIN,
            },
            hasher: RandomState::default(),
        }
    }

    /// The room called `room`.
    fn room(&self, room: &str) -> Option<&Room> {
        self.rooms
            .find(hash_id(&self.hasher, room), |state| *state.name == *room)
    }

    /// What the index holds for (room, user).
    pub fn get(&self, room: &str, user: &str) -> Option<&Presence> {
        let state = self.room(room)?;
        let ix = state.find(hash_id(&self.hasher, user), user)?;
        Some(&state.slots[ix].presence)
    }

    /// Sets (room, user) to `socket` expiring at `expire_at`, and says what it held before.
    pub fn upsert(&mut self, room: &str, user: &str, socket: &str, expire_at: i64) -> Previous {
        self.upsert_counted(room, user, socket, expire_at, None).0
    }

    /// [`RoomIndex::upsert`], and the room's live count at `cutoff` afterwards when one is given.
    pub fn upsert_counted(
        &mut self,
        room: &str,
        user: &str,
        socket: &str,
        expire_at: i64,
        cutoff: Option<i64>,
    ) -> (Previous, usize) {
        let hasher = &self.hasher;
        let state = match self.rooms.entry(
            hash_id(hasher, room),
            |state| *state.name == *room,
            |state| hash_id(hasher, &state.name),
        ) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(Room::new(Rc::from(room))).into_mut(),
        };
        let previous = state.upsert(hasher, user, socket, expire_at, &mut self.totals);
        state.requeue(&mut self.due);
        let count = cutoff.map_or(0, |c| state.count(c, &mut self.totals, &mut self.due));
        (previous, count)
    }

    /// Moves the expiry of (room, user) to `expire_at` when `socket` holds it and it is live at
    /// `cutoff`.
    pub fn refresh(
        &mut self,
        room: &str,
        user: &str,
        socket: &str,
        expire_at: i64,
        cutoff: i64,
    ) -> Refresh {
        let hash = hash_id(&self.hasher, user);
        let Some(state) = find_room(&mut self.rooms, &self.hasher, room) else {
            return Refresh::NotHeld;
        };
        let Some(ix) = state.find(hash, user) else {
            return Refresh::NotHeld;
        };
        let presence = &state.slots[ix].presence;
        if presence.socket.as_bytes() != socket.as_bytes() {
            return Refresh::NotHeld;
        }
        let previous = presence.expire_at;
        if previous <= cutoff {
            return Refresh::NotLive {
                expire_at: previous,
            };
        }
        if state.set_expiry(ix, expire_at, &mut self.totals) {
            state.requeue(&mut self.due);
        }
        Refresh::Refreshed { previous }
    }

    /// Removes (room, user) and returns what it held, with the room's live count at `cutoff`
    /// afterwards.
    pub fn remove_counted(
        &mut self,
        room: &str,
        user: &str,
        cutoff: i64,
    ) -> Option<(Presence, usize)> {
        let hasher = &self.hasher;
        let Ok(mut entry) = self
            .rooms
            .find_entry(hash_id(hasher, room), |state| *state.name == *room)
        else {
            return None;
        };
        let state = entry.get_mut();
        let hash = hash_id(hasher, user);
        let ix = state.find(hash, user)?;
        let old = state.remove(ix, hash, hasher, &mut self.totals);
        let count = state.count(cutoff, &mut self.totals, &mut self.due);
        if state.slots.is_empty() {
            entry.remove();
            if self.rooms.len() < self.rooms.capacity() / 4 {
                self.rooms
                    .shrink_to(self.rooms.len(), |state| hash_id(hasher, &state.name));
            }
        }
        Some((old.presence, count))
    }

    /// Removes (room, user) and returns what it held.
    pub fn remove(&mut self, room: &str, user: &str) -> Option<Presence> {
        let cutoff = self.totals.max_cutoff;
        self.remove_counted(room, user, cutoff).map(|(old, _)| old)
    }

    /// The number of live presences in `room`: those with `expire_at > cutoff`.
    pub fn count(&mut self, room: &str, cutoff: i64) -> usize {
        match find_room(&mut self.rooms, &self.hasher, room) {
            Some(state) => state.count(cutoff, &mut self.totals, &mut self.due),
            None => 0,
        }
    }

    /// The live presences of `room` as (user, socket), ordered by user id, at most `limit`.
    /// The first listing after a change of the room's members sorts the room (O(n log n), less
    /// when few members changed); the order lasts until the next change.
    pub fn list(
        &mut self,
        room: &str,
        cutoff: i64,
        limit: usize,
        after: Option<&str>,
    ) -> Vec<(&str, &str)> {
        let Some(state) = find_room(&mut self.rooms, &self.hasher, room) else {
            return Vec::new();
        };
        if !state.sorted {
            state.sort();
        }
        let start = after.map_or(0, |after| {
            state
                .slots
                .partition_point(|slot| slot.user.as_bytes() <= after.as_bytes())
        });
        state.slots[start..]
            .iter()
            .filter(|slot| slot.presence.expire_at > cutoff)
            .take(limit)
            .map(|slot| (&*slot.user, &*slot.presence.socket))
            .collect()
    }

    /// One presence that is not live at `cutoff`, if any, from the room with the earliest
    /// expiry. Within that room it is the earliest expiry, unless a count already found some
    /// presences not live: then it is any one of those.
    pub fn first_dead(&mut self, cutoff: i64) -> Option<DeadPresence> {
        loop {
            let (at, name) = self.due.first()?;
            if *at > cutoff {
                return None;
            }
            let name = name.clone();
            let state = find_room(&mut self.rooms, &self.hasher, &name)?;
            let found = state.first_dead(cutoff, &mut self.totals);
            state.requeue(&mut self.due);
            if let Some(ix) = found {
                let slot = &state.slots[ix];
                return Some(DeadPresence {
                    room: name,
                    user: slot.user.clone(),
                    presence: slot.presence.clone(),
                });
            }
        }
    }

    /// Brings every room that may hold a presence not live at `cutoff` to it. Costs the
    /// presences that became not live since the last call and the rooms that hold some, unless
    /// the cutoff moved back (a larger `stale-after`): then every room is visited.
    fn advance_all(&mut self, cutoff: i64) {
        if cutoff < self.totals.max_cutoff {
            for state in self.rooms.iter_mut() {
                state.count(cutoff, &mut self.totals, &mut self.due);
            }
        } else {
            let reached: Vec<Rc<str>> = self
                .due
                .iter()
                .take_while(|(at, _)| *at <= cutoff)
                .map(|(_, name)| name.clone())
                .collect();
            for name in reached {
                if let Some(state) = find_room(&mut self.rooms, &self.hasher, &name) {
                    state.count(cutoff, &mut self.totals, &mut self.due);
                }
            }
        }
        self.totals.max_cutoff = cutoff;
    }

    /// The number of live presences in the whole database.
    pub fn live(&mut self, cutoff: i64) -> usize {
        self.advance_all(cutoff);
        self.totals.entries - self.totals.dead
    }

    /// The number of presences that are not live and not yet removed (the sweeper's backlog).
    pub fn backlog(&mut self, cutoff: i64) -> usize {
        self.advance_all(cutoff);
        self.totals.dead
    }

    /// The number of rooms that hold at least one presence (live or not).
    pub fn rooms(&self) -> usize {
        self.rooms.len()
    }

    /// The number of presences indexed (live or not).
    pub fn entries(&self) -> usize {
        self.totals.entries
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.totals.entries == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::liveness::NO_TTL;
    use std::collections::BTreeMap;

    fn users(index: &mut RoomIndex, room: &str, cutoff: i64) -> Vec<String> {
        index
            .list(room, cutoff, usize::MAX, None)
            .into_iter()
            .map(|(u, _)| u.to_string())
            .collect()
    }

    impl RoomIndex {
        /// Checks every invariant the index relies on.
        fn assert_consistent(&self) {
            let mut entries = 0;
            let mut dead = 0;
            let mut queued = 0;
            for state in self.rooms.iter() {
                assert!(!state.slots.is_empty(), "an empty room is kept");
                assert_eq!(state.users.len(), state.slots.len());
                assert_eq!(state.heap.len() + state.dead.len(), state.slots.len());
                assert!(state.dead_cutoff <= self.totals.max_cutoff);
                for (ix, slot) in state.slots.iter().enumerate() {
                    let hash = hash_id(&self.hasher, &slot.user);
                    assert_eq!(state.find(hash, &slot.user), Some(ix));
                    match slot.place() {
                        Place::Heap(pos) => {
                            assert_eq!(state.heap[pos] as usize, ix);
                            assert!(slot.queued_at() > state.dead_cutoff);
                            assert!(slot.queued_at() <= slot.presence.expire_at);
                        }
                        Place::Dead(pos) => {
                            assert_eq!(state.dead[pos] as usize, ix);
                            assert_eq!(slot.gap, 0);
                            assert!(slot.presence.expire_at <= state.dead_cutoff);
                            assert!(slot.presence.expire_at >= state.dead_low);
                        }
                    }
                }
                for pos in 1..state.heap.len() {
                    let parent = state.heap[(pos - 1) / 2];
                    assert!(state.queued_at(parent) <= state.queued_at(state.heap[pos]));
                }
                if state.sorted {
                    for pair in state.slots.windows(2) {
                        assert!(pair[0].user < pair[1].user);
                    }
                }
                assert_eq!(state.due_at, state.due_key());
                if let Some(at) = state.due_at {
                    assert!(self.due.contains(&(at, state.name.clone())));
                    queued += 1;
                }
                entries += state.slots.len();
                dead += state.dead.len();
            }
            assert_eq!(self.due.len(), queued);
            assert_eq!(self.totals.entries, entries);
            assert_eq!(self.totals.dead, dead);
        }
    }

    #[test]
    fn insert_refresh_replace_remove() {
        let mut index = RoomIndex::new();
        assert_eq!(index.upsert("r", "u1", "s1", 100), Previous::Absent);
        assert_eq!(
            index.upsert("r", "u1", "s1", 200),
            Previous::Same { expire_at: 100 }
        );
        assert_eq!(
            index.upsert("r", "u1", "s2", 300),
            Previous::Other(Presence {
                socket: "s1".into(),
                expire_at: 200
            })
        );
        assert_eq!(index.get("r", "u1").map(|p| &*p.socket), Some("s2"));
        assert_eq!(index.entries(), 1);
        assert_eq!(
            index.remove("r", "u1"),
            Some(Presence {
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
        assert_eq!(index.refresh("r", "u", "other", 500, 0), Refresh::NotHeld);
        assert_eq!(index.refresh("r", "nobody", "s", 500, 0), Refresh::NotHeld);
        assert_eq!(index.refresh("nowhere", "u", "s", 500, 0), Refresh::NotHeld);
        assert_eq!(
            index.refresh("r", "u", "s", 500, 100),
            Refresh::NotLive { expire_at: 100 }
        );
        assert_eq!(index.count("r", 200), 0);
        assert_eq!(
            index.refresh("r", "u", "s", 500, 0),
            Refresh::Refreshed { previous: 100 }
        );
        assert_eq!(index.count("r", 200), 1);
        assert_eq!(index.first_dead(200), None);
        assert_eq!(
            index.first_dead(500).map(|d| d.presence.expire_at),
            Some(500)
        );
        assert_eq!(
            index.upsert_counted("r", "v", "t", 50, Some(200)),
            (Previous::Absent, 1)
        );
        assert_eq!(
            index
                .remove_counted("r", "u", 200)
                .map(|(p, c)| (p.expire_at, c)),
            Some((500, 0))
        );
        assert_eq!(index.backlog(200), 1);
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
        assert_eq!(index.list("r", 0, 2, None), vec![("a", "sa"), ("b", "sb")]);
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
        assert_eq!(index.live(50), 2);
        assert_eq!(index.live(500), 0);
        assert_eq!(index.live(150), 1);
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
        assert_eq!(index.backlog(150), 1);
        assert_eq!(index.live(150), 1);
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
        while let Some(dead) = index.first_dead(500) {
            order.push(format!("{}/{}", dead.room, dead.user));
            index.remove(&dead.room, &dead.user);
        }
        assert_eq!(order, ["r1/c", "r2/b", "r1/a"]);
        assert_eq!(index.entries(), 1);
        assert_eq!(index.first_dead(500), None);
        assert_eq!(index.rooms(), 1);
        index.assert_consistent();
    }

    #[test]
    fn a_heartbeat_only_grows_the_gap() {
        let mut index = RoomIndex::new();
        index.upsert("r", "a", "s", 1000);
        index.upsert("r", "b", "s", 2000);
        for beat in 1..=100 {
            assert!(matches!(
                index.refresh("r", "a", "s", 1000 + beat * 10, 0),
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
            index.refresh("r", "a", "s", i64::MAX, 0),
            Refresh::Refreshed { previous: 2000 }
        );
        assert_eq!(
            index.refresh("r", "a", "s", 1600, 0),
            Refresh::Refreshed { previous: i64::MAX }
        );
        assert_eq!(index.count("r", 1500), 2);
        assert_eq!(index.count("r", 1600), 1);
        assert_eq!(
            index.first_dead(1600).map(|d| d.user.to_string()),
            Some("a".into())
        );
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
        assert_eq!(index.live(i64::MIN), 3);
        assert_eq!(index.backlog(i64::MAX), 4);
        assert_eq!(
            index.refresh("r", "d", "s", NO_TTL, -1),
            Refresh::Refreshed { previous: 0 }
        );
        assert_eq!(index.count("r", -1), 1);
        assert_eq!(
            index.first_dead(i64::MIN).map(|d| d.presence.expire_at),
            Some(NO_TTL)
        );
        index.assert_consistent();
    }

    #[test]
    fn sizes_of_the_parts() {
        assert_eq!(size_of::<SmallStr>(), 24);
        assert_eq!(size_of::<Presence>(), 32);
        assert_eq!(size_of::<Slot>(), 64);
        assert_eq!(size_of::<Room>(), 160);
        let mut index = RoomIndex::new();
        for i in 0..100 {
            index.upsert("room1", &format!("{i:012}"), &format!("s{i:019}"), 1000);
        }
        let state = index.room("room1").unwrap();
        assert_eq!(state.slots.capacity(), 112);
        assert_eq!(size_class(state.slots.capacity() * size_of::<Slot>()), 7168);
        assert_eq!(state.heap.capacity(), 112);
        assert_eq!(size_class(state.heap.capacity() * 4), 448);
        assert_eq!(state.users.allocation_size(), 656);
        assert_eq!(size_class(state.users.allocation_size()), 768);
        assert_eq!(state.dead.capacity(), 0);
    }

    #[test]
    fn size_classes_are_jemallocs() {
        let classes = [
            8, 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768,
            896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
        ];
        let mut class = classes.iter();
        let mut current = *class.next().unwrap();
        for bytes in 1..=8192 {
            if bytes > current {
                current = *class.next().unwrap();
            }
            assert_eq!(size_class(bytes), current, "{bytes}");
        }
        assert_eq!(size_class(0), 0);
        assert_eq!(size_class(usize::MAX), usize::MAX);
    }

    #[test]
    fn vectors_follow_membership() {
        let mut index = RoomIndex::new();
        let mut capacities = Vec::new();
        for i in 0..2000 {
            index.upsert("r", &format!("u{i}"), "s", 1000 + i);
            let capacity = index.room("r").unwrap().slots.capacity();
            if capacities.last() != Some(&capacity) {
                capacities.push(capacity);
            }
        }
        for pair in capacities.windows(2).filter(|pair| pair[0] >= 8) {
            assert!(
                pair[1] * 4 <= pair[0] * 5,
                "{pair:?} grows by at most a quarter"
            );
            assert!(
                pair[1] * 8 >= pair[0] * 9,
                "{pair:?} grows by at least an eighth"
            );
        }
        assert_eq!(
            index.list("r", 0, 3, None),
            vec![("u0", "s"), ("u1", "s"), ("u10", "s")]
        );
        for i in 10..2000 {
            index.remove("r", &format!("u{i}"));
        }
        let state = index.room("r").unwrap();
        assert!(state.slots.capacity() <= 20, "{}", state.slots.capacity());
        assert!(state.heap.capacity() <= 20);
        assert!(state.users.capacity() <= 28);
        assert_eq!(index.count("r", 0), 10);
        index.assert_consistent();
        for i in 0..10 {
            index.remove("r", &format!("u{i}"));
        }
        assert_eq!(index.rooms(), 0);
        assert!(index.due.is_empty());
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
            index.first_dead(2000).map(|d| d.room.to_string()),
            Some("r0".into())
        );
        index.assert_consistent();
    }

    #[test]
    fn listing_sorts_the_slots_once_per_change_of_members() {
        let mut index = RoomIndex::new();
        for user in ["m", "c", "x", "a"] {
            index.upsert("r", user, "s", 1000);
        }
        assert!(!index.room("r").unwrap().sorted);
        assert_eq!(users(&mut index, "r", 0), ["a", "c", "m", "x"]);
        assert!(index.room("r").unwrap().sorted);
        index.upsert("r", "z", "s", 1000);
        index.upsert("r", "c", "other", 2000);
        index.remove("r", "z");
        assert!(
            index.room("r").unwrap().sorted,
            "kept by appends and the last removal"
        );
        index.upsert("r", "b", "s", 1000);
        assert!(!index.room("r").unwrap().sorted);
        assert_eq!(users(&mut index, "r", 0), ["a", "b", "c", "m", "x"]);
        index.remove("r", "a");
        assert!(!index.room("r").unwrap().sorted);
        assert_eq!(
            index.list("r", 0, 2, None),
            vec![("b", "s"), ("c", "other")]
        );
        index.assert_consistent();
    }

    /// A xorshift generator: the same sequence on every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// How the random model test picks times.
    #[derive(Clone, Copy)]
    enum Times {
        /// Expiries and cutoffs anywhere in a small range, with extremes.
        Scattered,
        /// A clock that moves forward, heartbeats a little ahead of it, and a cutoff that
        /// sometimes steps back.
        Clock,
    }

    type Model = BTreeMap<(String, String), (String, i64)>;

    fn live_in(model: &Model, room: &str, cutoff: i64) -> Vec<(String, String)> {
        model
            .iter()
            .filter(|((r, _), (_, at))| r == room && *at > cutoff)
            .map(|((_, u), (s, _))| (u.clone(), s.clone()))
            .collect()
    }

    fn run_model(seed: u64, steps: u32, rooms: u64, users: u64, times: Times) {
        let mut index = RoomIndex::new();
        let mut model = Model::new();
        let mut rng = Rng(seed);
        let mut clock: i64 = 1_000;
        for step in 0..steps {
            let room = format!("r{}", rng.below(rooms));
            let n = rng.below(users);
            let user = if n.is_multiple_of(4) {
                format!("user-with-an-id-over-twenty-two-bytes-{n}")
            } else {
                format!("u{n}")
            };
            let socket = match rng.below(4) {
                0 => "a-socket-id-longer-than-twenty-two-bytes".to_string(),
                k => format!("s{k}"),
            };
            clock += rng.below(3) as i64;
            let (expire_at, cutoff) = match times {
                Times::Scattered => {
                    let expire_at = match rng.below(20) {
                        0 => NO_TTL,
                        1 => i64::MAX,
                        2 => i64::MIN + 1,
                        3 => (1 << 40) + (rng.below(4) << 31) as i64,
                        _ => rng.below(1000) as i64,
                    };
                    let cutoff = match rng.below(40) {
                        0 => i64::MIN,
                        1 => i64::MAX,
                        2 => 1 << 40,
                        _ => rng.below(1000) as i64,
                    };
                    (expire_at, cutoff)
                }
                Times::Clock => {
                    let expire_at = match rng.below(50) {
                        0 => NO_TTL,
                        1 => clock - rng.below(100) as i64,
                        _ => clock + 50 + rng.below(200) as i64,
                    };
                    let cutoff = match rng.below(100) {
                        0 => clock - 300,
                        _ => clock,
                    };
                    (expire_at, cutoff)
                }
            };
            let key = (room.clone(), user.clone());
            let held = model.get(&key).cloned();
            match rng.below(12) {
                0 | 1 => {
                    let want = match &held {
                        None => Previous::Absent,
                        Some((s, at)) if *s == socket => Previous::Same { expire_at: *at },
                        Some((s, at)) => Previous::Other(Presence {
                            socket: s.as_str().into(),
                            expire_at: *at,
                        }),
                    };
                    let got = index.upsert(&room, &user, &socket, expire_at);
                    assert_eq!(got, want, "step {step}");
                    model.insert(key, (socket, expire_at));
                }
                2 => {
                    let got = index.upsert_counted(&room, &user, &socket, expire_at, Some(cutoff));
                    model.insert(key, (socket, expire_at));
                    assert_eq!(got.1, live_in(&model, &room, cutoff).len(), "step {step}");
                }
                3..=5 => {
                    let socket = match (&held, rng.below(4)) {
                        (Some((s, _)), 0..=2) => s.clone(),
                        _ => socket,
                    };
                    let want = match &held {
                        Some((s, at)) if *s == socket && *at > cutoff => {
                            Refresh::Refreshed { previous: *at }
                        }
                        Some((s, at)) if *s == socket => Refresh::NotLive { expire_at: *at },
                        _ => Refresh::NotHeld,
                    };
                    let got = index.refresh(&room, &user, &socket, expire_at, cutoff);
                    assert_eq!(got, want, "step {step}");
                    if let Refresh::Refreshed { .. } = got {
                        model.insert(key, (socket, expire_at));
                    }
                }
                6 => {
                    let got = index.remove(&room, &user);
                    let want = model.remove(&key).map(|(s, at)| Presence {
                        socket: s.as_str().into(),
                        expire_at: at,
                    });
                    assert_eq!(got, want, "step {step}");
                }
                7 => {
                    let got = index.remove_counted(&room, &user, cutoff);
                    let want = model.remove(&key).map(|(s, at)| {
                        let count = live_in(&model, &room, cutoff).len();
                        (
                            Presence {
                                socket: s.as_str().into(),
                                expire_at: at,
                            },
                            count,
                        )
                    });
                    assert_eq!(got, want, "step {step}");
                }
                8 | 9 => {
                    let any_dead = model.values().any(|(_, at)| *at <= cutoff);
                    match index.first_dead(cutoff) {
                        Some(dead) => {
                            let key = (dead.room.to_string(), dead.user.to_string());
                            let (s, at) = model.get(&key).expect("an indexed presence");
                            assert_eq!(
                                (s.as_str(), *at),
                                (&*dead.presence.socket, dead.presence.expire_at),
                                "step {step}"
                            );
                            assert!(*at <= cutoff, "step {step}");
                            if rng.below(4) > 0 {
                                assert!(index.remove(&dead.room, &dead.user).is_some());
                                model.remove(&key);
                            }
                        }
                        None => assert!(!any_dead, "step {step}: a dead presence was missed"),
                    }
                }
                10 => {
                    let got = index.get(&room, &user).cloned();
                    let want = held.map(|(s, at)| Presence {
                        socket: s.as_str().into(),
                        expire_at: at,
                    });
                    assert_eq!(got, want, "step {step}");
                }
                _ => {
                    let limit = match rng.below(3) {
                        0 => usize::MAX,
                        _ => rng.below(6) as usize,
                    };
                    let want: Vec<(String, String)> = live_in(&model, &room, cutoff)
                        .into_iter()
                        .take(limit)
                        .collect();
                    let got: Vec<(String, String)> = index
                        .list(&room, cutoff, limit, None)
                        .into_iter()
                        .map(|(u, s)| (u.to_string(), s.to_string()))
                        .collect();
                    assert_eq!(got, want, "step {step}");
                }
            }
            if step % 3 == 0 {
                index.assert_consistent();
            }
            let live = live_in(&model, &room, cutoff);
            if rng.below(2) == 0 {
                assert_eq!(index.count(&room, cutoff), live.len(), "step {step}");
            }
            if step % 7 == 0 {
                let listed: Vec<(String, String)> = index
                    .list(&room, cutoff, usize::MAX, None)
                    .into_iter()
                    .map(|(u, s)| (u.to_string(), s.to_string()))
                    .collect();
                assert_eq!(listed, live, "step {step}");
            }
            if step % 31 == 0 {
                let all_live = model.values().filter(|(_, at)| *at > cutoff).count();
                assert_eq!(index.live(cutoff), all_live, "step {step}");
                assert_eq!(index.backlog(cutoff), model.len() - all_live, "step {step}");
            }
            assert_eq!(index.entries(), model.len(), "step {step}");
            assert_eq!(index.is_empty(), model.is_empty());
            let rooms: BTreeSet<&String> = model.keys().map(|(r, _)| r).collect();
            assert_eq!(index.rooms(), rooms.len(), "step {step}");
        }
        index.assert_consistent();
    }

    #[test]
    fn matches_a_naive_model_under_random_operations() {
        run_model(0x2545_f491_4f6c_dd1d, 60_000, 8, 40, Times::Scattered);
        run_model(0x9e37_79b9_7f4a_7c15, 60_000, 3, 300, Times::Scattered);
    }

    #[test]
    fn matches_a_naive_model_under_a_moving_clock() {
        run_model(0xd1b5_4a32_d192_ed03, 60_000, 6, 60, Times::Clock);
        run_model(0x8cb9_2ba7_2f3d_8dd7, 60_000, 2, 500, Times::Clock);
    }
}
