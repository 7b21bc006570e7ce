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
//! | slot: user id (24, inline up to 22 bytes), socket id after its node (24, same), the node's number (4, and 4 of padding), `expire_at` (8), `gap` (4), place in the queue (4) | 72 |
//! | entry in the queue (slot number) | 4 |
//! | entry in the user hash table: slot number and control byte, buckets a power of two, at most 7/8 full | 5 to 11 |
//! | once the room was listed, or in a large room: entry in the user order (slot number), blocks half to full | 4 to 8 |
//! | in an order of more than one block (past 512 presences): the block id of the slot, and per block its ceiling and id (8 + 4 + 32 in a vector of blocks, 128 to 512 presences a block) | about 4 |
//! | in a large room: its expiry millisecond and its count (8 + 4), shared by the presences of that millisecond, in blocks a quarter to full | 12 to 48, about 16 when the expiries come in increasing order |
//! | an id longer than 22 bytes: its own allocation | its length, rounded to a size class |
//!
//! and one room costs its entry in the table of rooms (its 184-byte record and a control byte,
//! buckets a power of two, at most 7/8 full), its name (one allocation, shared with the queue
//! of rooms, 16 bytes more than its length) and its entry in that queue (24 bytes in a B-tree
//! node); a room whose user order is more than one block adds its 80-byte head.
//!
//! A presence held through a node keeps the node's number, not its id: a socket
//! `web-1.4242.k3f9/<20 bytes>` stays inline like a socket id of 20 bytes.
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
mod seg_vec;
mod sorted_blocks;
mod split_table;

use foldhash::fast::RandomState;
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::rc::Rc;

use super::leases::NodeId;
use super::small_str::SmallStr;
use expiries::Expiries;
use seg_vec::SegVec;
use sorted_blocks::SortedBlocks;
use split_table::SplitTable;

#[cfg(doc)]
use super::liveness::NO_TTL;

/// A room above this many presences counts them per expiry millisecond; it stops below half.
pub const LARGE_ROOM: usize = 1024;

/// The most heap entries one sweeper step moves in a large room.
pub const SWEEP_WORK: usize = 64;

/// Slots per chunk, as a power of two (512 slots, 32 KiB).
const SLOT_SHIFT: u32 = 9;
/// Queue entries per chunk, as a power of two (4,096 entries, 16 KiB).
const QUEUE_SHIFT: u32 = 12;
/// The most entries of one sub-table of users (a table of 4,096 buckets).
const USERS_SPLIT: usize = 3584;
/// The most slot numbers in one block of the user order.
const ORDER_BLOCK: usize = 512;

/// One presence as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// The node the socket is held through, if any: the key's value is then
    /// `<node>/<socket>`.
    pub node: Option<NodeId>,
    /// The socket id that holds the presence (the key's value, after the node if any).
    pub socket: SmallStr,
    /// The key's absolute expiry in Unix ms, or [`NO_TTL`].
    pub expire_at: i64,
}

impl Presence {
    /// True when `socket` holds this presence.
    pub fn is_held_by(&self, socket: SocketRef<'_>) -> bool {
        self.node == socket.node && self.socket.as_bytes() == socket.id.as_bytes()
    }
}

/// A socket as the index takes it: the node it is held through (as the database's leases
/// number it), if any, and the socket id after the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketRef<'a> {
    /// The node, if any.
    pub node: Option<NodeId>,
    /// The socket id (after the node).
    pub id: &'a str,
}

impl<'a> From<&'a str> for SocketRef<'a> {
    /// A socket held through no node.
    fn from(id: &'a str) -> Self {
        SocketRef { node: None, id }
    }
}

/// A presence that is not live, as handed to the sweeper ([`crate::db::Dead`] adds its socket
/// as the key's value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dead {
    /// The room id.
    pub room: Rc<str>,
    /// The user id.
    pub user: SmallStr,
    /// What the index holds for it.
    pub presence: Presence,
}

/// What one step of the sweeper found ([`RoomIndex::first_dead`]); [`crate::db::Step`] is the
/// same step over the nodes' leases too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A presence that is not live. It stays indexed until it is removed or changed: the same
    /// step again would find it again.
    Dead(Dead),
    /// Some bounded work was done and nothing was found yet: step again.
    Progress,
    /// No presence is dead at the cutoff.
    Idle,
}

/// What a walk through a room's slots found ([`RoomIndex::find_in_room`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomWalk {
    /// A presence the walk picked, in this slot.
    Found {
        /// Its slot.
        slot: usize,
        /// The presence.
        dead: Dead,
    },
    /// None found yet: go on from this slot.
    More(usize),
    /// None found up to the room's last slot.
    End,
}

/// What (room, user) held before an [`RoomIndex::upsert_counted`], in the index's form:
/// [`crate::db::Prior`] is the same with the socket as the key's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prior {
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

/// One presence of a room.
#[derive(Debug)]
struct Slot {
    user: SmallStr,
    presence: Presence,
    /// How far `presence.expire_at` lies past the expiry the slot is queued under in the heap
    /// (0 in the `dead` part).
    gap: u32,
    /// The slot's position in the queue (the heap, or the `dead` part after it).
    place: u32,
}

impl Slot {
    /// The expiry the slot is queued under: a lower bound of its real expiry.
    fn queued_at(&self) -> i64 {
        self.presence.expire_at.saturating_sub(i64::from(self.gap))
    }
}

/// The presences of one room. The queue holds every slot number once: the heap in
/// `queue[..heap_len]`, every entry with `dead_cutoff < queued_at <= expire_at`, then the
/// `dead` part, every slot with `expire_at <= dead_cutoff` (in a small room, all of them; in a
/// large room `dead_cutoff` stays at `i64::MIN` and the `dead` part may also hold slots found
/// not live at an earlier cutoff).
#[derive(Debug)]
struct Room {
    name: Rc<str>,
    slots: SegVec<Slot, SLOT_SHIFT>,
    /// Slot numbers, by the hash of their user id.
    users: SplitTable<USERS_SPLIT>,
    /// Slot numbers: a binary min-heap by `queued_at`, then the `dead` part in no order.
    queue: SegVec<u32, QUEUE_SHIFT>,
    /// Slot numbers in user id order, when `ordered`.
    order: SortedBlocks<ORDER_BLOCK>,
    /// The presences per expiry, in a large room.
    expiries: Option<Box<Expiries>>,
    /// The cutoff a small room was last brought to.
    dead_cutoff: i64,
    /// At most the lowest expiry in the `dead` part, when it is not empty.
    dead_low: i64,
    /// The key this room is queued under in [`RoomIndex::due`], when `queued`.
    due_at: i64,
    /// The number of entries of the heap.
    heap_len: u32,
    /// True when the room is in [`RoomIndex::due`].
    queued: bool,
    /// True when `order` is kept: since the room was first listed, or was large.
    ordered: bool,
}

/// The hash of an id's bytes.
fn hash_id(hasher: &RandomState, id: &[u8]) -> u64 {
    hasher.hash_one(id)
}

impl Room {
    /// An empty room.
    fn new(name: Rc<str>) -> Self {
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
    fn dead_len(&self) -> usize {
        self.queue.len() - self.heap_len as usize
    }

    /// The number of presences known not live: the `dead` part of a small room, the presences
    /// at or below the cursor of a large one.
    fn known_dead(&self) -> usize {
        match &self.expiries {
            Some(expiries) => expiries.known(),
            None => self.dead_len(),
        }
    }

    /// The slot of `user`, whose id hashes to `hash`.
    fn find(&self, hash: u64, user: &str) -> Option<usize> {
        let slots = &self.slots;
        self.users
            .find(hash, |&ix| {
                slots[ix as usize].user.as_bytes() == user.as_bytes()
            })
            .map(|ix| ix as usize)
    }

    /// The `queued_at` of slot `ix`.
    fn queued_at(&self, ix: u32) -> i64 {
        self.slots[ix as usize].queued_at()
    }

    /// The expiry of slot `ix`.
    fn expire_at(&self, ix: u32) -> i64 {
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
    fn revive(&mut self, pos: usize) {
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
    fn attach(&mut self, ix: u32) {
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
    fn detach(&mut self, ix: usize) {
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
    fn set_expiry(&mut self, ix: usize, expire_at: i64) -> bool {
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
    fn live(&mut self, cutoff: i64) -> usize {
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
    fn sweep(&mut self, cutoff: i64, work: usize) -> Option<u32> {
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

    /// Keeps the user order from now on, sorting the slot numbers once (a room that is not
    /// ordered is small: at most [`LARGE_ROOM`] presences).
    fn keep_order(&mut self) {
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

    /// The key the room belongs under in the queue of rooms: a lower bound of its earliest
    /// expiry, `None` when it holds nothing.
    fn due_key(&self) -> Option<i64> {
        let heap = self.queue.first().filter(|_| self.heap_len > 0);
        let heap = heap.map(|&ix| self.queued_at(ix));
        let dead = (self.dead_len() > 0).then_some(self.dead_low);
        match (heap, dead) {
            (Some(heap), Some(dead)) => Some(heap.min(dead)),
            (heap, dead) => heap.or(dead),
        }
    }

    /// Moves the room to its place in the queue of rooms.
    fn requeue(&mut self, due: &mut BTreeSet<(i64, Rc<str>)>) {
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

    /// Sets `user` to `socket` expiring at `expire_at`.
    fn upsert(
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
            hash_id(hasher, slots[other as usize].user.as_bytes())
        });
        if self.ordered {
            self.order.insert(
                ix,
                |other| slots[other as usize].user.as_bytes().cmp(user.as_bytes()),
                |other| slots[other as usize].presence.expire_at,
            );
        }
        self.attach(ix);
        if let Some(expiries) = self.expiries.as_deref_mut() {
            expiries.add(expire_at);
        }
        self.fit(large);
        Prior::Absent
    }

    /// Removes slot `ix`, whose user id hashes to `hash`, and returns it.
    fn remove(&mut self, ix: usize, hash: u64, hasher: &RandomState, large: usize) -> Option<Slot> {
        self.detach(ix);
        if let Some(expiries) = self.expiries.as_deref_mut() {
            expiries.remove(self.slots[ix].presence.expire_at);
        }
        let slots = &self.slots;
        self.users.remove(
            hash,
            |&other| other as usize == ix,
            |other| hash_id(hasher, slots[other as usize].user.as_bytes()),
        );
        let by_user = |of: usize| {
            let user = slots[of].user.as_bytes();
            move |other: u32| slots[other as usize].user.as_bytes().cmp(user)
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
            (at, hash_id(hasher, slots[last].user.as_bytes()))
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
    fn allocated_bytes(&self) -> usize {
        let long_ids: usize = self
            .slots
            .iter()
            .flat_map(|slot| [&slot.user, &slot.presence.socket])
            .filter(|id| id.len() > super::small_str::INLINE_MAX)
            .map(|id| compact::size_class(id.len()))
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
        let previous = state.upsert(hasher, user, socket, expire_at, self.large);
        if previous == Prior::Absent {
            self.entries += 1;
        }
        let count = cutoff.map_or(0, |cutoff| state.live(cutoff));
        settle(&mut self.dead, before, state.known_dead());
        state.requeue(&mut self.due);
        (previous, count)
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
    ) -> Vec<(&str, &str)> {
        self.list_where(room, cutoff, limit, after, |_| true)
            .into_iter()
            .map(|(user, presence)| (user, &*presence.socket))
            .collect()
    }

    /// [`RoomIndex::list`] of the presences `keep` admits, as (user, presence): the others are
    /// passed over as if they were not live (they are read, so a page also reads each of them
    /// in the blocks it looks at).
    pub fn list_where(
        &mut self,
        room: &str,
        cutoff: i64,
        limit: usize,
        after: Option<&str>,
        keep: impl Fn(&Presence) -> bool,
    ) -> Vec<(&str, &Presence)> {
        let Some(state) = find_room(&mut self.rooms, &self.hasher, room) else {
            return Vec::new();
        };
        state.keep_order();
        let Room { slots, order, .. } = state;
        let slots = &*slots;
        let start = match after {
            Some(after) => {
                order.after(|ix| slots[ix as usize].user.as_bytes().cmp(after.as_bytes()))
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
                (&*slot.user, &slot.presence)
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
    use super::*;
    use crate::liveness::NO_TTL;
    use crate::test_rng::Rng;
    use std::collections::BTreeMap;

    fn users(index: &mut RoomIndex, room: &str, cutoff: i64) -> Vec<String> {
        index
            .list(room, cutoff, usize::MAX, None)
            .into_iter()
            .map(|(u, _)| u.to_string())
            .collect()
    }

    /// The sweeper's loop: steps until a dead presence is found or none is left.
    fn dead_at(index: &mut RoomIndex, cutoff: i64) -> Option<Dead> {
        loop {
            match index.first_dead(cutoff) {
                Step::Dead(dead) => return Some(dead),
                Step::Progress => {}
                Step::Idle => return None,
            }
        }
    }

    /// `live` and `backlog` once every room was counted at `cutoff`.
    fn totals_at(index: &mut RoomIndex, cutoff: i64) -> (usize, usize) {
        let names: Vec<Rc<str>> = index.rooms.iter().map(|r| r.name.clone()).collect();
        for name in names {
            index.count(&name, cutoff);
        }
        (index.live(), index.backlog())
    }

    impl RoomIndex {
        /// Checks every invariant the index relies on.
        fn assert_consistent(&self) {
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
                    hash_id(&self.hasher, state.slots[ix as usize].user.as_bytes())
                });
                for (ix, slot) in state.slots.iter().enumerate() {
                    let hash = hash_id(&self.hasher, slot.user.as_bytes());
                    assert_eq!(state.find(hash, &slot.user), Some(ix));
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
        assert_eq!(index.get("r", "u1").map(|p| &*p.socket), Some("s2"));
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
            index.remove(&dead.room, &dead.user);
        }
        assert_eq!(order, ["r1/c", "r2/b", "r1/a"]);
        assert_eq!(index.entries(), 1);
        assert_eq!(dead_at(&mut index, 500), None);
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
            vec![("u010001", "s"), ("u010002", "s"), ("u010003", "s")]
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
            vec![("c", "other"), ("m", "s")]
        );
        assert_eq!(
            index.list("r", 100, 2, Some("b")),
            vec![("c", "other"), ("m", "s")]
        );
        assert_eq!(
            index.list("r", 100, 9, Some("m")),
            vec![("mm", "s"), ("x", "s"), ("y", "s")]
        );
        assert!(index.list("r", 100, 9, Some("y")).is_empty());
        assert!(index.list("r", 100, 9, Some("zzz")).is_empty());
        assert!(index.list("r", 100, 0, None).is_empty());
        assert_eq!(index.list("r", 100, 1, Some("")), vec![("a", "s")]);
        index.remove("r", "a");
        index.upsert("r", "aa", "s", 1000);
        assert_eq!(
            users(&mut index, "r", 100),
            ["aa", "c", "m", "mm", "x", "y"]
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
                    index.remove(&dead.room, &dead.user);
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

    /// How the random model test picks times.
    #[derive(Clone, Copy)]
    enum Times {
        /// Expiries and cutoffs anywhere in a small range, with extremes.
        Scattered,
        /// A clock that moves forward, heartbeats a little ahead of it, and a cutoff that
        /// sometimes steps back.
        Clock,
        /// A clock that moves forward, with a cutoff that jumps back and forth around it (as
        /// `stale-after` is changed).
        Jumps,
        /// Expiries far ahead of a clock that moves forward, so that rooms grow, with a cutoff
        /// that now and then jumps past most of them and back.
        Long,
    }

    type Model = BTreeMap<(String, String), (String, i64)>;

    fn live_in(model: &Model, room: &str, cutoff: i64) -> Vec<(String, String)> {
        model
            .range((room.to_string(), String::new())..)
            .take_while(|((r, _), _)| r == room)
            .filter(|(_, (_, at))| *at > cutoff)
            .map(|((_, u), (s, _))| (u.clone(), s.clone()))
            .collect()
    }

    fn live_count(model: &Model, room: &str, cutoff: i64) -> usize {
        model
            .range((room.to_string(), String::new())..)
            .take_while(|((r, _), _)| r == room)
            .filter(|(_, (_, at))| *at > cutoff)
            .count()
    }

    fn owned(listed: Vec<(&str, &str)>) -> Vec<(String, String)> {
        listed
            .into_iter()
            .map(|(u, s)| (u.to_string(), s.to_string()))
            .collect()
    }

    /// A model test run: `rooms` rooms of up to `users` users each, rooms counting per expiry
    /// above `large` presences, the first room holding `prefill` users to begin with.
    struct Run {
        seed: u64,
        prefill: u64,
        steps: u32,
        rooms: u64,
        users: u64,
        large: usize,
        times: Times,
    }

    fn run_model(run: Run) {
        let Run {
            seed,
            prefill,
            steps,
            rooms,
            users,
            large,
            times,
        } = run;
        let mut index = RoomIndex::with_large_rooms_above(large);
        let mut model = Model::new();
        let mut rng = Rng(seed);
        let mut clock: i64 = 1_000;
        let mut was_large = BTreeSet::new();
        let mut left_large = 0;
        let mut was_split = BTreeSet::new();
        let mut left_split = 0;
        for n in 0..prefill {
            let (user, at) = (format!("u{n}"), clock + rng.below(400) as i64);
            index.upsert("r0", &user, "s1", at);
            model.insert(("r0".to_string(), user), ("s1".to_string(), at));
        }
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
                Times::Jumps => {
                    let expire_at = match rng.below(50) {
                        0 => NO_TTL,
                        _ => clock + rng.below(400) as i64,
                    };
                    let cutoff = match (step / 500) % 3 {
                        0 => clock,
                        1 => clock + 200,
                        _ => clock + rng.below(400) as i64 - 100,
                    };
                    (expire_at, cutoff)
                }
                Times::Long => {
                    let expire_at = match rng.below(8) {
                        0 => NO_TTL,
                        1 => clock + rng.below(400) as i64,
                        _ => clock + 5_000 + rng.below(5_000) as i64,
                    };
                    let cutoff = match (step / 300) % 5 {
                        4 => clock + 5_000 + rng.below(5_000) as i64,
                        _ => clock,
                    };
                    (expire_at, cutoff)
                }
            };
            let key = (room.clone(), user.clone());
            let held = model.get(&key).cloned();
            let draining = (step / 2500) % 2 == 1;
            match rng.below(13) {
                0..=2 if draining => {
                    let got = index
                        .remove(&room, &user)
                        .map(|p| (p.socket.to_string(), p.expire_at));
                    assert_eq!(got, model.remove(&key), "step {step}");
                }
                0 | 1 => {
                    let want = match &held {
                        None => Prior::Absent,
                        Some((s, at)) if *s == socket => Prior::Same { expire_at: *at },
                        Some((s, at)) => Prior::Other(Presence {
                            node: None,
                            socket: s.as_str().into(),
                            expire_at: *at,
                        }),
                    };
                    let got = index.upsert(&room, &user, &socket, expire_at);
                    assert_eq!(got, want, "step {step}");
                    model.insert(key, (socket, expire_at));
                }
                2 => {
                    let got = index.upsert_counted(
                        &room,
                        &user,
                        socket.as_str().into(),
                        expire_at,
                        Some(cutoff),
                    );
                    model.insert(key, (socket, expire_at));
                    assert_eq!(got.1, live_count(&model, &room, cutoff), "step {step}");
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
                    let got =
                        index.refresh(&room, &user, socket.as_str().into(), expire_at, cutoff);
                    assert_eq!(got, want, "step {step}");
                    if let Refresh::Refreshed { .. } = got {
                        model.insert(key, (socket, expire_at));
                    }
                }
                6 => {
                    let got = index.remove(&room, &user);
                    let want = model.remove(&key).map(|(s, at)| Presence {
                        node: None,
                        socket: s.as_str().into(),
                        expire_at: at,
                    });
                    assert_eq!(got, want, "step {step}");
                }
                7 => {
                    let got = index.remove_counted(&room, &user, cutoff);
                    let want = model.remove(&key).map(|(s, at)| {
                        let count = live_count(&model, &room, cutoff);
                        (
                            Presence {
                                node: None,
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
                    let mut steps_left = model.len() + 2;
                    loop {
                        match index.first_dead(cutoff) {
                            Step::Dead(dead) => {
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
                                break;
                            }
                            Step::Progress => {
                                assert!(steps_left > 0, "step {step}: the sweeper never ends");
                                steps_left -= 1;
                                if rng.below(3) == 0 {
                                    break;
                                }
                            }
                            Step::Idle => {
                                assert!(!any_dead, "step {step}: a dead presence was missed");
                                break;
                            }
                        }
                    }
                }
                10 => {
                    let got = index.get(&room, &user).cloned();
                    let want = held.map(|(s, at)| Presence {
                        node: None,
                        socket: s.as_str().into(),
                        expire_at: at,
                    });
                    assert_eq!(got, want, "step {step}");
                }
                11 => {
                    let live = live_in(&model, &room, cutoff);
                    let page = 1 + rng.below(7) as usize;
                    let mut pages = Vec::new();
                    let mut after: Option<String> = None;
                    loop {
                        let got = owned(index.list(&room, cutoff, page, after.as_deref()));
                        assert!(got.len() <= page);
                        let last = got.last().map(|(u, _)| u.clone());
                        let full = got.len() == page;
                        pages.extend(got);
                        match last {
                            Some(last) if full => after = Some(last),
                            _ => break,
                        }
                    }
                    assert_eq!(pages, live, "step {step}: pages of {page}");
                }
                _ => {
                    let limit = match rng.below(3) {
                        0 => usize::MAX,
                        _ => rng.below(6) as usize,
                    };
                    let after = match rng.below(3) {
                        0 => None,
                        1 => Some(user.clone()),
                        _ => Some(format!("u{}", rng.below(users))),
                    };
                    let want: Vec<(String, String)> = live_in(&model, &room, cutoff)
                        .into_iter()
                        .filter(|(u, _)| after.as_ref().is_none_or(|a| u > a))
                        .take(limit)
                        .collect();
                    let got = owned(index.list(&room, cutoff, limit, after.as_deref()));
                    assert_eq!(got, want, "step {step}");
                }
            }
            if let Some(state) = index.room(&room) {
                if state.expiries.is_some() {
                    was_large.insert(room.clone());
                } else if was_large.remove(&room) {
                    left_large += 1;
                }
                if state.order.block_lens().len() > 1 {
                    was_split.insert(room.clone());
                } else if was_split.remove(&room) {
                    left_split += 1;
                }
            }
            if step % 3 == 0 {
                index.assert_consistent();
            }
            if rng.below(2) == 0 {
                let want = live_count(&model, &room, cutoff);
                assert_eq!(index.count(&room, cutoff), want, "step {step}");
            }
            if step % 7 == 0 {
                let listed = owned(index.list(&room, cutoff, usize::MAX, None));
                assert_eq!(listed, live_in(&model, &room, cutoff), "step {step}");
            }
            assert_eq!(index.live() + index.backlog(), model.len());
            if step % 31 == 0 {
                let all_live = model.values().filter(|(_, at)| *at > cutoff).count();
                let want = (all_live, model.len() - all_live);
                assert_eq!(totals_at(&mut index, cutoff), want, "step {step}");
            }
            assert_eq!(index.entries(), model.len(), "step {step}");
            assert_eq!(index.is_empty(), model.is_empty());
            let rooms: BTreeSet<&String> = model.keys().map(|(r, _)| r).collect();
            assert_eq!(index.rooms(), rooms.len(), "step {step}");
        }
        index.assert_consistent();
        if prefill == 0 && large * 4 < users as usize {
            assert!(left_large > 0, "rooms went large and back");
        }
        if prefill == 0 && users as usize > ORDER_BLOCK * 2 {
            assert!(left_split > 0, "orders went past one block and back");
        }
    }

    #[test]
    fn matches_a_naive_model_under_random_operations() {
        for (seed, rooms, users, large) in [
            (0x2545_f491_4f6c_dd1d, 8, 40, LARGE_ROOM),
            (0x9e37_79b9_7f4a_7c15, 3, 300, LARGE_ROOM),
            (0x5851_f42d_4c95_7f2d, 3, 60, 12),
        ] {
            run_model(Run {
                seed,
                prefill: 0,
                steps: 60_000,
                rooms,
                users,
                large,
                times: Times::Scattered,
            });
        }
    }

    #[test]
    fn matches_a_naive_model_under_a_moving_clock() {
        for (seed, rooms, users, large) in [
            (0xd1b5_4a32_d192_ed03, 6, 60, LARGE_ROOM),
            (0x8cb9_2ba7_2f3d_8dd7, 2, 500, LARGE_ROOM),
            (0x1405_7b7e_f767_814f, 2, 80, 16),
        ] {
            run_model(Run {
                seed,
                prefill: 0,
                steps: 60_000,
                rooms,
                users,
                large,
                times: Times::Clock,
            });
        }
    }

    #[test]
    fn matches_a_naive_model_under_jumping_cutoffs() {
        run_model(Run {
            seed: 0x6c07_8965_2f3a_1b4d,
            prefill: 0,
            steps: 60_000,
            rooms: 4,
            users: 100,
            large: 20,
            times: Times::Jumps,
        });
    }

    /// Rooms whose user order goes past one block and back, with ceilings on the blocks, under
    /// cutoffs that jump back and forth.
    #[test]
    fn matches_a_naive_model_across_block_splits() {
        run_model(Run {
            seed: 0x2f6b_0c61_9d3e_a457,
            prefill: 0,
            steps: 60_000,
            rooms: 1,
            users: 4000,
            large: LARGE_ROOM,
            times: Times::Long,
        });
    }

    /// A room of about 4,000 presences that shrinks as the sweeper removes them: the slots and
    /// the queue span several chunks and give them back, the users are in sub-tables, the order
    /// in many blocks, and the room counts per expiry.
    #[test]
    fn matches_a_naive_model_in_a_large_room() {
        run_model(Run {
            seed: 0x3c6e_f372_fe94_f82b,
            prefill: 4150,
            steps: 12_000,
            rooms: 1,
            users: 8000,
            large: LARGE_ROOM,
            times: Times::Jumps,
        });
    }
}
