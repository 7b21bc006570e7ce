//! Node leases: which nodes (app server processes) hold a live lease, and how many presences
//! each node holds in each room, so that a read leaves out the presences of a node whose lease
//! ended without looking at them one by one, and the sweeper finds them.
//!
//! A lease is the key `presence:node:<node>` (or `presence:node:{<tag>}<node>`: in a cluster a
//! node holds one under a tag of each shard, and a migration may bring a shard a second one);
//! this table follows those keys as the room index follows presence keys: the hooks tell it a
//! key's expiry ([`Leases::set_lease`]), or that the key is gone or has no TTL ([`NO_TTL`]).
//! A node's lease expires with the last of its keys. A node is *up* at a moment while its lease expires after
//! it ([`Moment::lease_live`]); otherwise it is *down*, and so are the presences held through
//! it. The presences' side comes from the room index: every presence whose socket is
//! `<node>/<socket>` is counted once, in its room, for its node ([`Leases::held`],
//! [`Leases::released`]).
//!
//! A read of a room looks at the nodes that hold presences there (usually a handful: the app
//! servers), O(nodes in the room). The nodes are also kept in the order of their lease's
//! expiry, so that the sweeper finds the first down node in O(log nodes).
//!
//! The table numbers the nodes it knows ([`NodeId`]), so that the room index keeps a number
//! per presence held through a node, not the node's id.
//!
//! Memory: per node about 150 bytes and its id; per (room, node) pair that holds presences
//! about 50 bytes (the room's list entry and the node's set of rooms).

use crate::keys::LeaseKey;
use crate::liveness::{Moment, NO_TTL};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

#[cfg(doc)]
use crate::liveness::Liveness;

/// The longest lease `PRESENCE.LEASE` takes, in milliseconds (one day).
pub const MAX_LEASE_MS: i64 = 86_400_000;

/// A node as the leases of one database number it while they know it: the room index keeps
/// this instead of the node's id in each presence held through the node. A number is given
/// back when its node is dropped, and may then number another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(u32);

/// One node the table knows: it holds a lease, holds presences, or its lease ended and that
/// was not announced yet.
#[derive(Debug)]
struct Node {
    /// Its id.
    name: Rc<str>,
    /// The lease's absolute expiry (Unix ms): the latest of [`Node::keys`], or [`NO_TTL`] when
    /// there is no lease key with a TTL.
    lease: i64,
    /// The expiry of each of its lease keys with a TTL, by tag.
    keys: Vec<(Box<str>, i64)>,
    /// The presences held through the node, in every room.
    presences: usize,
    /// The rooms where it holds presences.
    rooms: HashSet<Rc<str>>,
    /// True once the end of its last lease was announced (or when no lease was ever seen).
    announced: bool,
    /// Where the sweeper goes on looking for its presences: a room and a slot of it.
    sweep: Option<(Rc<str>, usize)>,
}

/// The node leases of one database, and the presences held through each node per room.
#[derive(Debug, Default)]
pub struct Leases {
    /// The nodes by number; `None` for a number free to give again.
    nodes: Vec<Option<Node>>,
    /// The numbers free to give again.
    free: Vec<NodeId>,
    /// The nodes' numbers by id.
    by_name: HashMap<Rc<str>, NodeId>,
    /// Per room, the nodes that hold presences there and how many.
    rooms: HashMap<Rc<str>, Vec<(NodeId, usize)>>,
    /// Every node by its lease's expiry ([`NO_TTL`] first).
    by_expiry: BTreeSet<(i64, NodeId)>,
}

impl Leases {
    /// The node numbered `id`.
    fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// The node numbered `id`, to change.
    fn get_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    /// The number of the node called `node`, if the table knows it.
    pub fn id(&self, node: &str) -> Option<NodeId> {
        self.by_name.get(node).copied()
    }

    /// The id of the node numbered `id` ("" for a number no node holds).
    pub fn name(&self, id: NodeId) -> &str {
        self.get(id).map_or("", |node| &node.name)
    }

    /// The number of the node called `node`, which the table knows from now on (without a
    /// lease, its end announced, when it is new). A new node that nothing keeps is dropped at
    /// the next change of the table that concerns it.
    pub fn intern(&mut self, node: &str) -> NodeId {
        if let Some(id) = self.id(node) {
            return id;
        }
        let name: Rc<str> = Rc::from(node);
        let state = Node {
            name: name.clone(),
            lease: NO_TTL,
            keys: Vec::new(),
            presences: 0,
            rooms: HashSet::new(),
            announced: true,
            sweep: None,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id.0 as usize] = Some(state);
                id
            }
            None => {
                // A node is known only while a lease key or a presence holds it: far fewer than
                // 2^32 of them fit in any server's memory.
                let id = NodeId(u32::try_from(self.nodes.len()).unwrap_or(u32::MAX));
                self.nodes.push(Some(state));
                id
            }
        };
        self.by_name.insert(name, id);
        self.by_expiry.insert((NO_TTL, id));
        id
    }

    /// Drops node `id` when nothing keeps it: no lease, no presence, nothing to announce.
    fn settle(&mut self, id: NodeId) {
        let Some(state) = self.get(id) else {
            return;
        };
        if state.lease == NO_TTL && state.presences == 0 && state.announced {
            self.drop_node(id);
        }
    }

    /// Forgets node `id` and frees its number.
    fn drop_node(&mut self, id: NodeId) {
        if let Some(state) = self.nodes.get_mut(id.0 as usize).and_then(Option::take) {
            self.by_name.remove(&state.name);
            self.by_expiry.remove(&(state.lease, id));
            self.free.push(id);
        }
    }

    /// One of the node's lease keys now expires at `expire_at` ([`NO_TTL`]: it is gone, or has
    /// no TTL). A lease that exists again (with a TTL) makes its end worth announcing again.
    /// Keys of the node that expire before a key written now are forgotten: only the last one
    /// decides, and its owner renews one key per shard.
    pub fn set_lease<'a>(&mut self, lease: impl Into<LeaseKey<'a>>, expire_at: i64) {
        let LeaseKey { node, tag } = lease.into();
        if expire_at == NO_TTL && self.id(node).is_none() {
            return;
        }
        let id = self.intern(node);
        let Some(state) = self.get_mut(id) else {
            return;
        };
        state.keys.retain(|(t, at)| **t != *tag && *at >= expire_at);
        if expire_at != NO_TTL {
            state.keys.push((tag.into(), expire_at));
        }
        let expire_at = state.keys.iter().map(|(_, at)| *at).max().unwrap_or(NO_TTL);
        let before = state.lease;
        state.lease = expire_at;
        if expire_at != NO_TTL && before != expire_at {
            state.announced = false;
            state.sweep = None;
        }
        self.by_expiry.remove(&(before, id));
        self.by_expiry.insert((expire_at, id));
        self.settle(id);
    }

    /// True when node `id` holds a live lease at `at`.
    pub fn is_up(&self, id: NodeId, at: Moment) -> bool {
        at.lease_live(self.get(id).map_or(NO_TTL, |state| state.lease))
    }

    /// True when the node called `node` holds a live lease at `at`.
    pub fn is_up_by_name(&self, node: &str, at: Moment) -> bool {
        self.id(node).is_some_and(|id| self.is_up(id, at))
    }

    /// A presence of `room` is now held through node `id`.
    pub fn held(&mut self, room: &str, id: NodeId) {
        let name = match self.rooms.get_key_value(room) {
            Some((name, _)) => name.clone(),
            None => {
                let name: Rc<str> = Rc::from(room);
                self.rooms.insert(name.clone(), Vec::new());
                name
            }
        };
        let Some(counts) = self.rooms.get_mut(room) else {
            return;
        };
        let first_in_room = match counts.iter_mut().find(|(n, _)| *n == id) {
            Some((_, count)) => {
                *count += 1;
                false
            }
            None => {
                counts.push((id, 1));
                true
            }
        };
        if let Some(state) = self.get_mut(id) {
            state.presences += 1;
            if first_in_room {
                state.rooms.insert(name);
            }
        }
    }

    /// A presence of `room` held through node `id` is gone (or now held otherwise).
    pub fn released(&mut self, room: &str, id: NodeId) {
        let Some(counts) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(pos) = counts.iter().position(|(n, _)| *n == id) else {
            return;
        };
        counts[pos].1 -= 1;
        let room_done = counts[pos].1 == 0;
        if room_done {
            counts.swap_remove(pos);
            if counts.is_empty() {
                self.rooms.remove(room);
            }
        }
        if let Some(state) = self.get_mut(id) {
            state.presences -= 1;
            if room_done {
                state.rooms.remove(room);
            }
        }
        self.settle(id);
    }

    /// The presences of `room` held through nodes that are down at `at`, per node.
    pub fn down_in<'a>(
        &'a self,
        room: &str,
        at: Moment,
    ) -> impl Iterator<Item = (NodeId, usize)> + 'a {
        self.rooms
            .get(room)
            .into_iter()
            .flatten()
            .filter(move |(id, _)| !self.is_up(*id, at))
            .copied()
    }

    /// The number of presences of `room` held through node `id`.
    pub fn held_in(&self, room: &str, id: NodeId) -> usize {
        self.rooms
            .get(room)
            .and_then(|counts| counts.iter().find(|(n, _)| *n == id))
            .map_or(0, |(_, count)| *count)
    }

    /// The number of live leases at `at`.
    pub fn live(&self, at: Moment) -> usize {
        self.by_expiry.range((at.now + 1, NodeId(0))..).count()
    }

    /// The number of presences held through nodes that are down at `at`.
    pub fn down_presences(&self, at: Moment) -> usize {
        self.down_nodes(at)
            .map(|id| self.get(id).map_or(0, |state| state.presences))
            .sum()
    }

    /// The nodes down at `at`, lease expiry first.
    fn down_nodes(&self, at: Moment) -> impl Iterator<Item = NodeId> + '_ {
        self.by_expiry
            .iter()
            .take_while(move |(lease, _)| !at.lease_live(*lease))
            .map(|(_, id)| *id)
    }

    /// The first node that is down at `at` and still has work for the sweeper: an end to
    /// announce, or presences to remove. Nodes with neither are dropped on the way.
    pub fn first_down(&mut self, at: Moment) -> Option<NodeId> {
        loop {
            let id = self.down_nodes(at).next()?;
            let state = self.get(id)?;
            if !state.announced || state.presences > 0 {
                return Some(id);
            }
            self.drop_node(id);
        }
    }

    /// Marks the end of node `id`'s lease as announced; false when it already was (or the node
    /// is unknown).
    pub fn announce(&mut self, id: NodeId) -> bool {
        match self.get_mut(id) {
            Some(state) if !state.announced => {
                state.announced = true;
                true
            }
            _ => false,
        }
    }

    /// The number of presences held through node `id`.
    pub fn presences(&self, id: NodeId) -> usize {
        self.get(id).map_or(0, |state| state.presences)
    }

    /// Where the sweeper goes on looking for node `id`'s presences: its saved place, or the
    /// first slot of one of its rooms.
    pub fn sweep_place(&self, id: NodeId) -> Option<(Rc<str>, usize)> {
        let state = self.get(id)?;
        state
            .sweep
            .clone()
            .filter(|(room, _)| state.rooms.contains(room))
            .or_else(|| state.rooms.iter().next().map(|room| (room.clone(), 0)))
    }

    /// Saves where the sweeper goes on looking for node `id`'s presences.
    pub fn set_sweep_place(&mut self, id: NodeId, place: Option<(Rc<str>, usize)>) {
        if let Some(state) = self.get_mut(id) {
            state.sweep = place;
        }
    }

    /// Forgets that node `id` holds presences in `room`: a whole pass over the room found none.
    pub fn drop_room(&mut self, room: &str, id: NodeId) {
        for _ in 0..self.held_in(room, id) {
            self.released(room, id);
        }
    }

    /// True when no node is known.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now: i64) -> Moment {
        Moment { now, cutoff: now }
    }

    fn tagged(tag: &str) -> LeaseKey<'_> {
        LeaseKey { node: "n", tag }
    }

    #[test]
    fn a_node_with_keys_under_several_tags_is_up_until_the_last_ends() {
        let mut leases = Leases::default();
        leases.set_lease(tagged("a"), 100);
        leases.set_lease(tagged("b"), 300);
        assert!(leases.is_up_by_name("n", at(299)));
        leases.set_lease(tagged("a"), NO_TTL);
        assert!(leases.is_up_by_name("n", at(299)), "b still runs");
        leases.set_lease(tagged("a"), 400);
        leases.set_lease(tagged("b"), NO_TTL);
        assert!(leases.is_up_by_name("n", at(399)), "a runs again");
        leases.set_lease(tagged("b"), 500);
        leases.set_lease(tagged("a"), NO_TTL);
        assert!(leases.is_up_by_name("n", at(499)));
        leases.set_lease(tagged("b"), NO_TTL);
        assert!(!leases.is_up_by_name("n", at(0)), "no key left");
    }

    #[test]
    fn a_node_is_up_while_its_lease_runs() {
        let mut leases = Leases::default();
        assert!(!leases.is_up_by_name("n", at(0)));
        leases.set_lease("n", 100);
        assert!(leases.is_up_by_name("n", at(99)));
        assert!(!leases.is_up_by_name("n", at(100)));
        assert_eq!(leases.live(at(99)), 1);
        assert_eq!(leases.live(at(100)), 0);
        leases.set_lease("n", NO_TTL);
        assert!(!leases.is_up_by_name("n", at(0)));
    }

    #[test]
    fn counts_follow_presences_per_room_and_node() {
        let mut leases = Leases::default();
        leases.set_lease("a", 100);
        let a = leases.intern("a");
        let b = leases.intern("b");
        assert_eq!(leases.name(b), "b");
        leases.held("r1", a);
        leases.held("r1", a);
        leases.held("r2", a);
        leases.held("r1", b);
        assert_eq!(leases.held_in("r1", a), 2);
        assert_eq!(leases.presences(a), 3);
        assert_eq!(
            leases.down_in("r1", at(0)).collect::<Vec<_>>(),
            [(b, 1)],
            "b holds no lease"
        );
        assert_eq!(leases.down_presences(at(0)), 1);
        let mut down: Vec<_> = leases.down_in("r1", at(100)).collect();
        down.sort();
        assert_eq!(down, [(a, 2), (b, 1)]);
        leases.released("r1", b);
        assert_eq!(leases.id("b"), None, "nothing keeps b");
        assert_eq!(leases.intern("c"), b, "its number is given again");
        leases.released("r1", a);
        leases.released("r1", a);
        assert!(!leases.rooms.contains_key("r1"));
        assert_eq!(leases.presences(a), 1);
        leases.released("r1", a);
        assert_eq!(leases.presences(a), 1, "an unknown pair changes nothing");
    }

    #[test]
    fn the_end_of_a_lease_is_announced_once() {
        let mut leases = Leases::default();
        leases.set_lease("n", 100);
        let n = leases.id("n").unwrap();
        assert_eq!(leases.first_down(at(50)), None);
        assert_eq!(leases.first_down(at(100)), Some(n));
        assert!(leases.announce(n));
        assert!(!leases.announce(n));
        assert_eq!(leases.first_down(at(100)), None, "nothing left to do");
        assert!(leases.is_empty());
        leases.set_lease("n", 200);
        leases.set_lease("n", NO_TTL);
        let n = leases.id("n").unwrap();
        assert_eq!(leases.first_down(at(0)), Some(n));
        assert!(leases.announce(n));
    }

    #[test]
    fn presences_without_a_lease_are_down_but_announce_nothing() {
        let mut leases = Leases::default();
        let n = leases.intern("n");
        leases.held("r", n);
        assert_eq!(leases.first_down(at(0)), Some(n));
        assert!(!leases.announce(n));
        assert_eq!(leases.sweep_place(n), Some((Rc::from("r"), 0)));
        leases.set_sweep_place(n, Some((Rc::from("r"), 7)));
        assert_eq!(leases.sweep_place(n), Some((Rc::from("r"), 7)));
        leases.drop_room("r", n);
        assert_eq!(leases.first_down(at(0)), None);
        assert_eq!(leases.sweep_place(n), None);
        assert!(leases.is_empty());
    }

    #[test]
    fn a_gone_lease_of_an_unknown_node_is_ignored() {
        let mut leases = Leases::default();
        leases.set_lease("n", NO_TTL);
        assert!(leases.is_empty());
    }
}
