//! Node leases: which nodes (app server processes) hold a live lease, and how many presences
//! each node holds in each room, so that a read leaves out the presences of a node whose lease
//! ended without looking at them one by one, and the sweeper finds them.
//!
//! A lease is the key `presence:node:<node>`; this table follows it as the room index follows
//! presence keys: the hooks tell it the lease's expiry ([`Leases::set_lease`]), or that the key
//! is gone or has no TTL ([`NO_TTL`]). A node is *up* at a moment while its lease expires after
//! it ([`Moment::lease_live`]); otherwise it is *down*, and so are the presences held through
//! it. The presences' side comes from the room index: every presence whose socket is
//! `<node>/<socket>` is counted once, in its room, for its node ([`Leases::held`],
//! [`Leases::released`]).
//!
//! A read of a room looks at the nodes that hold presences there (usually a handful: the app
//! servers), O(nodes in the room). The nodes are also kept in the order of their lease's
//! expiry, so that the sweeper finds the first down node in O(log nodes).
//!
//! Memory: per node about 150 bytes and its name; per (room, node) pair that holds presences
//! about 60 bytes (the room's list entry and the node's set of rooms). A presence costs
//! nothing more.

use crate::liveness::{Moment, NO_TTL};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

#[cfg(doc)]
use crate::liveness::Liveness;

/// The longest lease `PRESENCE.LEASE` takes, in milliseconds (one day).
pub const MAX_LEASE_MS: i64 = 86_400_000;

/// One node the table knows: it holds a lease, holds presences, or its lease ended and that
/// was not announced yet.
#[derive(Debug)]
struct Node {
    /// Its id.
    name: Rc<str>,
    /// The lease's absolute expiry (Unix ms), or [`NO_TTL`] when there is no lease key or it
    /// has no TTL.
    lease: i64,
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
    nodes: HashMap<Rc<str>, Node>,
    /// Per room, the nodes that hold presences there and how many.
    rooms: HashMap<Rc<str>, Vec<(Rc<str>, usize)>>,
    /// Every node by its lease's expiry ([`NO_TTL`] first).
    by_expiry: BTreeSet<(i64, Rc<str>)>,
}

impl Leases {
    /// The node called `node`, created (without a lease, its end announced) when missing.
    fn node(&mut self, node: &str) -> &mut Node {
        if !self.nodes.contains_key(node) {
            let name: Rc<str> = Rc::from(node);
            self.by_expiry.insert((NO_TTL, name.clone()));
            let state = Node {
                name: name.clone(),
                lease: NO_TTL,
                presences: 0,
                rooms: HashSet::new(),
                announced: true,
                sweep: None,
            };
            self.nodes.insert(name, state);
        }
        self.nodes.get_mut(node).expect("the node is in the table")
    }

    /// Drops `node` when nothing keeps it: no lease, no presence, nothing to announce.
    fn settle(&mut self, node: &str) {
        let Some(state) = self.nodes.get(node) else {
            return;
        };
        if state.lease == NO_TTL && state.presences == 0 && state.announced {
            if let Some((name, state)) = self.nodes.remove_entry(node) {
                self.by_expiry.remove(&(state.lease, name));
            }
        }
    }

    /// The node's lease key now expires at `expire_at` ([`NO_TTL`]: it is gone, or has no
    /// TTL). A lease that exists again (with a TTL) makes its end worth announcing again.
    pub fn set_lease(&mut self, node: &str, expire_at: i64) {
        if expire_at == NO_TTL && !self.nodes.contains_key(node) {
            return;
        }
        let state = self.node(node);
        let name = state.name.clone();
        let before = state.lease;
        state.lease = expire_at;
        if expire_at != NO_TTL {
            state.announced = false;
            state.sweep = None;
        }
        self.by_expiry.remove(&(before, name.clone()));
        self.by_expiry.insert((expire_at, name));
        self.settle(node);
    }

    /// The expiry of `node`'s lease as the table knows it ([`NO_TTL`] for none).
    pub fn lease(&self, node: &str) -> i64 {
        self.nodes.get(node).map_or(NO_TTL, |state| state.lease)
    }

    /// True when `node` holds a live lease at `at`.
    pub fn is_up(&self, node: &str, at: Moment) -> bool {
        at.lease_live(self.lease(node))
    }

    /// A presence of `room` is now held through `node`.
    pub fn held(&mut self, room: &str, node: &str) {
        let state = self.node(node);
        let name = state.name.clone();
        state.presences += 1;
        let counts = match self.rooms.get_mut(room) {
            Some(counts) => counts,
            None => self.rooms.entry(Rc::from(room)).or_default(),
        };
        match counts.iter_mut().find(|(n, _)| **n == *node) {
            Some((_, count)) => *count += 1,
            None => {
                counts.push((name, 1));
                let room = self
                    .rooms
                    .get_key_value(room)
                    .map(|(room, _)| room.clone())
                    .expect("the room was just inserted");
                if let Some(state) = self.nodes.get_mut(node) {
                    state.rooms.insert(room);
                }
            }
        }
    }

    /// A presence of `room` held through `node` is gone (or now held otherwise).
    pub fn released(&mut self, room: &str, node: &str) {
        let Some(counts) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(pos) = counts.iter().position(|(n, _)| **n == *node) else {
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
        if let Some(state) = self.nodes.get_mut(node) {
            state.presences -= 1;
            if room_done {
                state.rooms.remove(room);
            }
        }
        self.settle(node);
    }

    /// The presences of `room` held through nodes that are down at `at`, per node.
    pub fn down_in<'a>(
        &'a self,
        room: &str,
        at: Moment,
    ) -> impl Iterator<Item = (&'a str, usize)> + 'a {
        self.rooms
            .get(room)
            .into_iter()
            .flatten()
            .filter(move |(node, _)| !self.is_up(node, at))
            .map(|(node, count)| (&**node, *count))
    }

    /// The number of presences of `room` held through `node`.
    pub fn held_in(&self, room: &str, node: &str) -> usize {
        self.rooms
            .get(room)
            .and_then(|counts| counts.iter().find(|(n, _)| **n == *node))
            .map_or(0, |(_, count)| *count)
    }

    /// The number of live leases at `at`.
    pub fn live(&self, at: Moment) -> usize {
        self.by_expiry.range((at.now + 1, Rc::from(""))..).count()
    }

    /// The number of presences held through nodes that are down at `at`.
    pub fn down_presences(&self, at: Moment) -> usize {
        self.down_nodes(at)
            .map(|node| self.nodes.get(node).map_or(0, |state| state.presences))
            .sum()
    }

    /// The nodes down at `at`, lease expiry first.
    fn down_nodes(&self, at: Moment) -> impl Iterator<Item = &str> {
        self.by_expiry
            .iter()
            .take_while(move |(lease, _)| !at.lease_live(*lease))
            .map(|(_, node)| &**node)
    }

    /// The first node that is down at `at` and still has work for the sweeper: an end to
    /// announce, or presences to remove. Nodes with neither are dropped on the way.
    pub fn first_down(&mut self, at: Moment) -> Option<Rc<str>> {
        loop {
            let node = self.down_nodes(at).next()?;
            let state = &self.nodes[node];
            let name = state.name.clone();
            if !state.announced || state.presences > 0 {
                return Some(name);
            }
            self.by_expiry.remove(&(state.lease, name.clone()));
            self.nodes.remove(&name);
        }
    }

    /// Marks the end of `node`'s lease as announced; false when it already was (or the node is
    /// unknown).
    pub fn announce(&mut self, node: &str) -> bool {
        match self.nodes.get_mut(node) {
            Some(state) if !state.announced => {
                state.announced = true;
                true
            }
            _ => false,
        }
    }

    /// The number of presences held through `node`.
    pub fn presences(&self, node: &str) -> usize {
        self.nodes.get(node).map_or(0, |state| state.presences)
    }

    /// Where the sweeper goes on looking for `node`'s presences: its saved place, or the first
    /// slot of one of its rooms.
    pub fn sweep_place(&self, node: &str) -> Option<(Rc<str>, usize)> {
        let state = self.nodes.get(node)?;
        state
            .sweep
            .clone()
            .filter(|(room, _)| state.rooms.contains(room))
            .or_else(|| state.rooms.iter().next().map(|room| (room.clone(), 0)))
    }

    /// Saves where the sweeper goes on looking for `node`'s presences.
    pub fn set_sweep_place(&mut self, node: &str, place: Option<(Rc<str>, usize)>) {
        if let Some(state) = self.nodes.get_mut(node) {
            state.sweep = place;
        }
    }

    /// Forgets that `node` holds presences in `room`: a whole pass over the room found none.
    pub fn drop_room(&mut self, room: &str, node: &str) {
        let count = self.held_in(room, node);
        for _ in 0..count {
            self.released(room, node);
        }
    }

    /// True when no node is known.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now: i64) -> Moment {
        Moment { now, cutoff: now }
    }

    #[test]
    fn a_node_is_up_while_its_lease_runs() {
        let mut leases = Leases::default();
        assert!(!leases.is_up("n", at(0)));
        leases.set_lease("n", 100);
        assert!(leases.is_up("n", at(99)));
        assert!(!leases.is_up("n", at(100)));
        assert_eq!(leases.live(at(99)), 1);
        assert_eq!(leases.live(at(100)), 0);
        leases.set_lease("n", NO_TTL);
        assert!(!leases.is_up("n", at(0)));
    }

    #[test]
    fn counts_follow_presences_per_room_and_node() {
        let mut leases = Leases::default();
        leases.set_lease("a", 100);
        leases.held("r1", "a");
        leases.held("r1", "a");
        leases.held("r2", "a");
        leases.held("r1", "b");
        assert_eq!(leases.held_in("r1", "a"), 2);
        assert_eq!(leases.presences("a"), 3);
        assert_eq!(
            leases.down_in("r1", at(0)).collect::<Vec<_>>(),
            [("b", 1)],
            "b holds no lease"
        );
        assert_eq!(leases.down_presences(at(0)), 1);
        let mut down: Vec<_> = leases.down_in("r1", at(100)).collect();
        down.sort();
        assert_eq!(down, [("a", 2), ("b", 1)]);
        leases.released("r1", "b");
        assert!(!leases.nodes.contains_key("b"), "nothing keeps b");
        leases.released("r1", "a");
        leases.released("r1", "a");
        assert!(!leases.rooms.contains_key("r1"));
        assert_eq!(leases.presences("a"), 1);
        leases.released("r1", "a");
        assert_eq!(leases.presences("a"), 1, "an unknown pair changes nothing");
    }

    #[test]
    fn the_end_of_a_lease_is_announced_once() {
        let mut leases = Leases::default();
        leases.set_lease("n", 100);
        assert_eq!(leases.first_down(at(50)), None);
        assert_eq!(leases.first_down(at(100)).as_deref(), Some("n"));
        assert!(leases.announce("n"));
        assert!(!leases.announce("n"));
        assert_eq!(leases.first_down(at(100)), None, "nothing left to do");
        assert!(leases.is_empty());
        leases.set_lease("n", 200);
        leases.set_lease("n", NO_TTL);
        assert_eq!(leases.first_down(at(0)).as_deref(), Some("n"));
        assert!(leases.announce("n"));
    }

    #[test]
    fn presences_without_a_lease_are_down_but_announce_nothing() {
        let mut leases = Leases::default();
        leases.held("r", "n");
        assert_eq!(leases.first_down(at(0)).as_deref(), Some("n"));
        assert!(!leases.announce("n"));
        assert_eq!(leases.sweep_place("n"), Some((Rc::from("r"), 0)));
        leases.set_sweep_place("n", Some((Rc::from("r"), 7)));
        assert_eq!(leases.sweep_place("n"), Some((Rc::from("r"), 7)));
        leases.drop_room("r", "n");
        assert_eq!(leases.first_down(at(0)), None);
        assert_eq!(leases.sweep_place("n"), None);
    }

    #[test]
    fn a_gone_lease_of_an_unknown_node_is_ignored() {
        let mut leases = Leases::default();
        leases.set_lease("n", NO_TTL);
        assert!(leases.is_empty());
    }
}
