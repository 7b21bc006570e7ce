//! One database's presences: the room index and the node leases side by side, with the whole
//! liveness rule applied to every read: a presence is live when its key's expiry is above the
//! cutoff ([`crate::liveness`]) and, when its socket names a node, that node's lease is live
//! ([`crate::leases`]).
//!
//! The index keeps a presence held through a node as the node's number and the socket id after
//! it; this is the one place that turns `<node>/<socket>` into that form and back, so everything
//! above it deals in the key's value.
//!
//! A read looks at the nodes that hold presences in the room first. When none is down, it is
//! the room index's read as it was. Otherwise a count takes the presences of the down nodes
//! from the index's count, each node's number kept as presences come and go; only while the
//! room also holds presences that are not live by their expiry (a moment the sweeper ends
//! within a tick or so) does it count the room's presences one by one. A listing passes over
//! the down nodes' presences as it reads them.

use crate::data::DataKeys;
use crate::events::Reason;
use crate::ids::Socket;
use crate::index::{
    self, Presence, Refresh, RoomIndex, RoomWalk, SocketRef, Staged, StagedPresence,
};
use crate::leases::{Leases, NodeId};
use crate::liveness::{DeadReason, Moment};
use crate::small_str::SmallStr;
use std::rc::Rc;

/// The most slots one sweeper step looks at while it looks for a down node's presences.
pub const NODE_SWEEP_WORK: usize = 512;

/// What (room, user) held before [`Db::upsert_counted`].
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
    Other {
        /// The socket that held it (the key's value).
        socket: String,
    },
}

/// A presence that is not live, as handed to the sweeper. It stays indexed until it is
/// removed or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dead {
    /// The room id.
    pub room: Rc<str>,
    /// The user id.
    pub user: SmallStr,
    /// What the index holds for it (compare with [`Db::get`] to see that it did not change).
    pub presence: Presence,
    /// The socket that holds it (the key's value).
    pub socket: String,
}

/// What one step of the sweeper found ([`Db::node_step`], [`Db::first_dead`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A node's lease ended: announce it. The node held this many presences then.
    Down {
        /// The node id.
        node: String,
        /// The presences held through it.
        presences: usize,
    },
    /// A presence that is not live.
    Dead(Dead),
    /// Some bounded work was done and nothing was found yet: step again.
    Progress,
    /// Nothing left to find.
    Idle,
}

/// What the sweeper does with a dead presence once it has looked at its key
/// ([`Db::sweep_verdict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The index changed since it handed the presence over: nothing to do.
    Changed,
    /// The key is live after all (a raw `EXPIRE` moved its expiry): the index catches up.
    CatchUp {
        /// The key's expiry.
        expire_at: i64,
    },
    /// The key is dead: delete it, and announce the end for this reason.
    Delete(Reason),
    /// The key is already gone (or holds another type): forget the presence for this reason.
    Gone(Reason),
}

/// The presences and node leases of one database.
#[derive(Debug, Default)]
pub struct Db {
    /// The room index.
    pub rooms: RoomIndex,
    /// The node leases, and the presences held through each node per room.
    pub leases: Leases,
    /// Presences read during a load, not indexed yet ([`Db::stage`]).
    staged: Staged,
    /// The presences that may have a data key, and the data keys to check (§12).
    pub data: DataKeys,
}

/// What a presence is to a socket at a moment ([`Db::held`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The socket does not hold it (or nothing does).
    NotHeld,
    /// The socket holds it, but it is not live, for this reason.
    Dead(DeadReason),
    /// The socket holds it and it is live, expiring at `expire_at`.
    Live {
        /// Its absolute expiry.
        expire_at: i64,
    },
}

/// The key's value of `presence`: `<node>/<socket>` or the socket.
fn socket_of(leases: &Leases, presence: &Presence) -> String {
    match presence.node {
        Some(id) => format!("{}/{}", leases.name(id), presence.socket),
        None => presence.socket.to_string(),
    }
}

/// Writes `user` of `room` held by `socket` (through `node`) in `writer`, and counts it for
/// its node in the leases: what it held before, with a replaced socket as the key's value.
fn write(
    writer: &mut index::RoomWriter<'_>,
    leases: &mut Leases,
    room: &str,
    user: &str,
    socket: SocketRef<'_>,
    expire_at: i64,
) -> Prior {
    match writer.upsert(user, socket, expire_at) {
        index::Prior::Same { expire_at } => Prior::Same { expire_at },
        index::Prior::Absent => {
            if let Some(node) = socket.node {
                leases.held(room, node);
            }
            Prior::Absent
        }
        index::Prior::Other(old) => {
            let replaced = socket_of(leases, &old);
            if let Some(node) = socket.node {
                leases.held(room, node);
            }
            if let Some(old) = old.node {
                leases.released(room, old);
            }
            Prior::Other { socket: replaced }
        }
    }
}

/// Indexes the presences of `room` set aside during a load, in the order they were read, with
/// `nodes` the names of their nodes by number.
fn index_room(
    rooms: &mut RoomIndex,
    leases: &mut Leases,
    room: &str,
    presences: Vec<StagedPresence>,
    nodes: &[Box<str>],
) {
    rooms.write_room(room, |writer| {
        for presence in &presences {
            let node = presence
                .node
                .and_then(|number| nodes.get(number as usize))
                .map(|name| leases.intern(name));
            let (user, id) = (presence.user.as_bytes(), presence.socket.as_bytes());
            let socket = SocketRef {
                node,
                id: id.as_str(),
            };
            write(
                writer,
                leases,
                room,
                user.as_str(),
                socket,
                presence.expire_at,
            );
        }
    });
}

/// True when `presence` is held through no node, or through a node that is up at `at`.
fn node_up(leases: &Leases, presence: &Presence, at: Moment) -> bool {
    presence.node.is_none_or(|id| leases.is_up(id, at))
}

impl Db {
    /// What the index holds for (room, user).
    pub fn get(&self, room: &str, user: &str) -> Option<&Presence> {
        self.rooms.get(room, user)
    }

    /// The key's value of a presence the index holds: `<node>/<socket>` or the socket.
    pub fn socket_of(&self, presence: &Presence) -> String {
        socket_of(&self.leases, presence)
    }

    /// `socket` in the index's form, or `None` when it names a node the leases do not know (so
    /// that no presence is held by it).
    fn lookup<'a>(&self, socket: Socket<'a>) -> Option<SocketRef<'a>> {
        let node = match socket.node {
            Some(node) => Some(self.leases.id(node)?),
            None => None,
        };
        Some(SocketRef {
            node,
            id: socket.id,
        })
    }

    /// True when `socket` holds (room, user).
    pub fn holds(&self, room: &str, user: &str, socket: Socket<'_>) -> bool {
        let held = self.rooms.get(room, user);
        self.lookup(socket)
            .is_some_and(|socket| held.is_some_and(|p| p.is_held_by(socket)))
    }

    /// What (room, user) is to `socket` at `at`.
    pub fn held(&mut self, room: &str, user: &str, socket: Socket<'_>, at: Moment) -> Held {
        self.index_staged_in(room);
        let Some(socket_ref) = self.lookup(socket) else {
            return Held::NotHeld;
        };
        match self.rooms.get(room, user) {
            Some(presence) if presence.is_held_by(socket_ref) => {
                let expire_at = presence.expire_at;
                match self.dead_reason(socket, expire_at, at) {
                    Some(reason) => Held::Dead(reason),
                    None => Held::Live { expire_at },
                }
            }
            _ => Held::NotHeld,
        }
    }

    /// The expiry of (room, user) when it is live at `at`, whoever holds it.
    pub fn live_expiry(&mut self, room: &str, user: &str, at: Moment) -> Option<i64> {
        self.index_staged_in(room);
        let presence = self.rooms.get(room, user)?;
        (presence.expire_at > at.cutoff && node_up(&self.leases, presence, at))
            .then_some(presence.expire_at)
    }

    /// True when `socket` is held through no node, or through one whose lease is live at `at`.
    pub fn node_up(&self, socket: Socket<'_>, at: Moment) -> bool {
        socket
            .node
            .is_none_or(|node| self.leases.is_up_by_name(node, at))
    }

    /// Why a presence held by `socket`, expiring at `expire_at`, is not live at `at`, or `None`
    /// when it is. A down node comes first: it is why the presence stopped.
    pub fn dead_reason(
        &self,
        socket: Socket<'_>,
        expire_at: i64,
        at: Moment,
    ) -> Option<DeadReason> {
        if self.node_up(socket, at) {
            at.dead_reason(expire_at)
        } else {
            Some(DeadReason::NodeDown)
        }
    }

    /// The live count of `room` at `at`, given `by_expiry`, its number of presences live by
    /// their expiry alone.
    fn with_nodes(&self, room: &str, by_expiry: usize, at: Moment) -> usize {
        let down: usize = self.leases.down_in(room, at).map(|(_, n)| n).sum();
        if down == 0 {
            by_expiry
        } else if self.rooms.room_len(room) == by_expiry {
            by_expiry - down
        } else {
            let leases = &self.leases;
            self.rooms
                .count_where(room, at.cutoff, |presence| node_up(leases, presence, at))
        }
    }

    /// Sets (room, user) to `socket` expiring at `expire_at`, and says what it held before,
    /// with the room's live count at `at` afterwards.
    pub fn upsert_counted(
        &mut self,
        room: &str,
        user: &str,
        socket: Socket<'_>,
        expire_at: i64,
        at: Moment,
    ) -> (Prior, usize) {
        self.index_staged_in(room);
        let Db { rooms, leases, .. } = self;
        let node = socket.node.map(|node| leases.intern(node));
        let socket = SocketRef {
            node,
            id: socket.id,
        };
        let (prior, by_expiry) = rooms.write_room(room, |writer| {
            let prior = write(writer, leases, room, user, socket, expire_at);
            (prior, writer.live(at.cutoff))
        });
        let count = self.with_nodes(room, by_expiry, at);
        (prior, count)
    }

    /// Sets aside (room, user) held by `socket` until `expire_at`, as a load read it: it is
    /// indexed with the rest of its room by [`Db::index_staged`], or before anything else
    /// changes or counts or lists its room here, as if it had been indexed at once.
    pub fn stage(&mut self, room: &str, user: &str, socket: Socket<'_>, expire_at: i64) {
        self.staged
            .push(room, user, socket.node, socket.id, expire_at);
    }

    /// The number of presences set aside by [`Db::stage`] and not indexed yet.
    #[cfg(test)]
    fn staged(&self) -> usize {
        self.staged.len()
    }

    /// Indexes every presence set aside by [`Db::stage`], one room after the other, each room's
    /// in the order they were read: the same index as indexing each one when it was read.
    pub fn index_staged(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let (nodes, by_room) = self.staged.drain();
        for (room, presences) in by_room {
            index_room(&mut self.rooms, &mut self.leases, &room, presences, &nodes);
        }
    }

    /// Indexes the presences of `room` set aside by [`Db::stage`], if any.
    fn index_staged_in(&mut self, room: &str) {
        if self.staged.is_empty() {
            return;
        }
        let presences = self.staged.take_room(room);
        if !presences.is_empty() {
            let Db {
                rooms,
                leases,
                staged,
                ..
            } = self;
            index_room(rooms, leases, room, presences, staged.nodes());
        }
        if self.staged.is_empty() {
            self.staged = Staged::default();
        }
    }

    /// Moves the expiry of (room, user) to `expire_at` when `socket` holds it and it is live at
    /// `at`.
    pub fn refresh(
        &mut self,
        room: &str,
        user: &str,
        socket: Socket<'_>,
        expire_at: i64,
        at: Moment,
    ) -> Refresh {
        self.index_staged_in(room);
        let Some(socket) = self.lookup(socket) else {
            return Refresh::NotHeld;
        };
        if socket.node.is_none_or(|id| self.leases.is_up(id, at)) {
            return self.rooms.refresh(room, user, socket, expire_at, at.cutoff);
        }
        match self.rooms.get(room, user) {
            Some(held) if held.is_held_by(socket) => Refresh::NotLive {
                expire_at: held.expire_at,
            },
            _ => Refresh::NotHeld,
        }
    }

    /// Removes (room, user) and returns the socket that held it, with the room's live count at
    /// `at` afterwards.
    pub fn remove_counted(
        &mut self,
        room: &str,
        user: &str,
        at: Moment,
    ) -> Option<(String, usize)> {
        self.index_staged_in(room);
        let (old, by_expiry) = self.rooms.remove_counted(room, user, at.cutoff)?;
        let socket = self.socket_of(&old);
        if let Some(node) = old.node {
            self.leases.released(room, node);
        }
        let count = self.with_nodes(room, by_expiry, at);
        Some((socket, count))
    }

    /// The number of live presences in `room` at `at`.
    pub fn count(&mut self, room: &str, at: Moment) -> usize {
        self.index_staged_in(room);
        let by_expiry = self.rooms.count(room, at.cutoff);
        self.with_nodes(room, by_expiry, at)
    }

    /// The live presences of `room` at `at` as (user, node, socket id after the node), ordered
    /// by user id, at most `limit`, those after `after` only when it is given
    /// ([`RoomIndex::list_where`]). The ids stay [`SmallStr`]s, whose bytes
    /// ([`SmallStr::as_bytes`]) a reply takes without allocating and without checking them
    /// again as UTF-8 (that would cost a listing more than the rest).
    pub fn list(
        &mut self,
        room: &str,
        at: Moment,
        limit: usize,
        after: Option<&str>,
    ) -> Vec<(&SmallStr, Option<&str>, &SmallStr)> {
        self.index_staged_in(room);
        let Db { rooms, leases, .. } = self;
        let down: Vec<NodeId> = leases.down_in(room, at).map(|(node, _)| node).collect();
        let leases = &*leases;
        rooms
            .list_where(room, at.cutoff, limit, after, |presence| {
                down.is_empty() || !presence.node.is_some_and(|node| down.contains(&node))
            })
            .into_iter()
            .map(|(user, presence)| {
                let node = presence.node.map(|node| leases.name(node));
                (user, node, &presence.socket)
            })
            .collect()
    }

    /// A presence the index handed over, with its socket as the key's value.
    fn dead(&self, room: Rc<str>, user: SmallStr, presence: Presence) -> Dead {
        let socket = self.socket_of(&presence);
        Dead {
            room,
            user,
            presence,
            socket,
        }
    }

    /// One bounded step of the sweeper among the presences not live by their expiry
    /// ([`RoomIndex::first_dead`]).
    pub fn first_dead(&mut self, at: Moment) -> Step {
        match self.rooms.first_dead(at.cutoff) {
            index::Step::Dead(dead) => Step::Dead(self.dead(dead.room, dead.user, dead.presence)),
            index::Step::Progress => Step::Progress,
            index::Step::Idle => Step::Idle,
        }
    }

    /// One bounded step of the sweeper among the down nodes, the one whose lease ended first
    /// first: the end of its lease to announce, then its presences one by one, looking at most
    /// at [`NODE_SWEEP_WORK`] slots of one of its rooms per step.
    pub fn node_step(&mut self, at: Moment) -> Step {
        let Some(node) = self.leases.first_down(at) else {
            return Step::Idle;
        };
        if self.leases.announce(node) {
            return Step::Down {
                node: self.leases.name(node).to_string(),
                presences: self.leases.presences(node),
            };
        }
        let Some((room, from)) = self.leases.sweep_place(node) else {
            return Step::Idle;
        };
        let walk = self
            .rooms
            .find_in_room(&room, from, NODE_SWEEP_WORK, |presence| {
                presence.node == Some(node)
            });
        match walk {
            RoomWalk::Found { slot, dead } => {
                self.leases.set_sweep_place(node, Some((room, slot)));
                Step::Dead(self.dead(dead.room, dead.user, dead.presence))
            }
            RoomWalk::More(next) => {
                self.leases.set_sweep_place(node, Some((room, next)));
                Step::Progress
            }
            RoomWalk::End => {
                if from == 0 {
                    self.leases.drop_room(&room, node);
                    self.leases.set_sweep_place(node, None);
                } else {
                    self.leases.set_sweep_place(node, Some((room, 0)));
                }
                Step::Progress
            }
        }
    }

    /// The number of presences known live: those the index counts live, less those held
    /// through nodes down at `at`. O(down nodes).
    pub fn live(&self, at: Moment) -> usize {
        self.rooms
            .live()
            .saturating_sub(self.leases.down_presences(at))
    }

    /// True when no presence is indexed or set aside.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty() && self.staged.is_empty()
    }

    /// What the sweeper does at `at` with `dead`, as [`Db::node_step`] or [`Db::first_dead`]
    /// handed it over, given what its key holds now: `Some` of its expiry (`NO_TTL` for none)
    /// for a string key, `None` for no key or a key of another type. A key that still holds a
    /// dead presence is deleted (a down node is the reason first); one that is live after all
    /// brings the index in line; one that is gone is forgotten for the reason the index knows.
    pub fn sweep_verdict(&self, dead: &Dead, key_expiry: Option<i64>, at: Moment) -> Verdict {
        if self.get(&dead.room, dead.user.as_bytes().as_str()) != Some(&dead.presence) {
            return Verdict::Changed;
        }
        let socket = Socket::from(dead.socket.as_str());
        match key_expiry {
            Some(expire_at) => match self.dead_reason(socket, expire_at, at) {
                Some(why) => Verdict::Delete(Reason::from(why)),
                None => Verdict::CatchUp { expire_at },
            },
            None => Verdict::Gone(
                self.dead_reason(socket, dead.presence.expire_at, at)
                    .map_or(Reason::Deleted, Reason::from),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::liveness::NO_TTL;
    use crate::test_rng::Rng;

    fn at(now: i64) -> Moment {
        Moment { now, cutoff: now }
    }

    fn users(db: &mut Db, room: &str, now: i64) -> Vec<String> {
        db.list(room, at(now), usize::MAX, None)
            .into_iter()
            .map(|(user, _, _)| user.to_string())
            .collect()
    }

    /// Everything a read of `db` tells about `rooms` at `now`: each room's live count and
    /// listing (user, node, socket), and each node's presences per room.
    fn reads(db: &mut Db, rooms: &[String], nodes: &[&str], now: i64) -> Vec<String> {
        let mut seen = Vec::new();
        for room in rooms {
            let count = db.count(room, at(now));
            let listed: Vec<String> = db
                .list(room, at(now), usize::MAX, None)
                .into_iter()
                .map(|(user, node, socket)| format!("{user}={}/{socket}", node.unwrap_or("")))
                .collect();
            seen.push(format!("{room} {count} {listed:?}"));
            for node in nodes {
                let held = db
                    .leases
                    .id(node)
                    .map_or(0, |id| db.leases.held_in(room, id));
                seen.push(format!("{room} {node} {held}"));
            }
        }
        seen
    }

    /// A load sets presences aside, while other changes (an AOF's commands) come in between:
    /// indexed at the end, room by room, they give the same index as indexing each when it was
    /// read, whatever the order, the repeats, the nodes and the leases.
    #[test]
    fn presences_set_aside_index_as_if_indexed_one_by_one() {
        let nodes = ["n1", "n2", "web-1.4242.k3f9"];
        for seed in 1..40u64 {
            let mut rng = Rng(seed * 0x9e37_79b9_7f4a_7c15);
            let rooms: Vec<String> = (0..1 + rng.below(6)).map(|r| format!("r{r}")).collect();
            let (mut bulk, mut single) = (Db::default(), Db::default());
            for db in [&mut bulk, &mut single] {
                db.leases.set_lease("n1", 5_000);
                db.leases.set_lease("n2", 50);
            }
            let ops = 1 + rng.below(3000);
            for _ in 0..ops {
                let room = &rooms[rng.below(rooms.len() as u64) as usize];
                let user = format!("u{}", rng.below(400));
                let socket = match rng.below(4) {
                    0 => format!("{}/s{}", nodes[rng.below(3) as usize], rng.below(9)),
                    _ => format!("s{}", rng.below(9)),
                };
                let expire_at = match rng.below(10) {
                    0 => NO_TTL,
                    _ => rng.below(200) as i64 * 50,
                };
                let socket = Socket::from(socket.as_str());
                match rng.below(20) {
                    0 => {
                        bulk.remove_counted(room, &user, at(0));
                        single.remove_counted(room, &user, at(0));
                    }
                    1 => {
                        bulk.upsert_counted(room, &user, socket, expire_at, at(0));
                        single.upsert_counted(room, &user, socket, expire_at, at(0));
                    }
                    2 => {
                        let lease = rng.below(2) as i64 * 3_000;
                        let node = nodes[rng.below(3) as usize];
                        bulk.leases.set_lease(node, lease);
                        single.leases.set_lease(node, lease);
                    }
                    _ => {
                        bulk.stage(room, &user, socket, expire_at);
                        single.upsert_counted(room, &user, socket, expire_at, at(0));
                    }
                }
            }
            assert_eq!(bulk.is_empty(), single.is_empty());
            bulk.index_staged();
            assert_eq!(bulk.staged(), 0);
            bulk.rooms.assert_consistent();
            assert_eq!(bulk.rooms.entries(), single.rooms.entries(), "seed {seed}");
            for now in [0, 60, 2_500, 4_000, 6_000] {
                assert_eq!(
                    reads(&mut bulk, &rooms, &nodes, now),
                    reads(&mut single, &rooms, &nodes, now),
                    "seed {seed} at {now}"
                );
            }
        }
    }

    #[test]
    fn a_read_or_change_of_a_room_indexes_what_was_set_aside_for_it() {
        let mut db = Db::default();
        db.stage("r", "a", "s1".into(), 1000);
        db.stage("q", "b", "s2".into(), 1000);
        assert!(!db.is_empty());
        assert_eq!(db.count("r", at(0)), 1);
        assert_eq!(db.staged(), 1);
        let (prior, count) = db.upsert_counted("q", "b", "s3".into(), 2000, at(0));
        assert!(matches!(prior, Prior::Other { socket } if socket == "s2"));
        assert_eq!(count, 1);
        assert_eq!(db.staged(), 0);
        db.rooms.assert_consistent();
    }

    #[test]
    fn a_down_node_leaves_reads_at_once() {
        let mut db = Db::default();
        db.leases.set_lease("n", 100);
        db.upsert_counted("r", "a", "n/s1".into(), 1000, at(0));
        db.upsert_counted("r", "b", "s2".into(), 1000, at(0));
        let (_, count) = db.upsert_counted("r", "c", "n/s3".into(), 1000, at(0));
        assert_eq!(count, 3);
        assert_eq!(db.count("r", at(99)), 3);
        assert_eq!(db.count("r", at(100)), 1);
        assert_eq!(users(&mut db, "r", 100), ["b"]);
        assert_eq!(db.live(at(100)), 1);
        assert_eq!(
            db.dead_reason("n/s1".into(), 1000, at(100)),
            Some(DeadReason::NodeDown)
        );
        assert_eq!(db.dead_reason("s2".into(), 1000, at(100)), None);
        db.leases.set_lease("n", 500);
        assert_eq!(
            db.count("r", at(100)),
            3,
            "a lease back makes them live again"
        );
    }

    /// The dead presence the sweeper is handed at `now`.
    fn first_dead(db: &mut Db, now: i64) -> Dead {
        loop {
            match db.node_step(at(now)) {
                Step::Dead(dead) => return dead,
                Step::Idle => break,
                Step::Down { .. } | Step::Progress => {}
            }
        }
        loop {
            match db.first_dead(at(now)) {
                Step::Dead(dead) => return dead,
                Step::Progress => {}
                other => panic!("nothing dead: {other:?}"),
            }
        }
    }

    #[test]
    fn the_sweeper_decides_from_what_the_key_holds() {
        let mut db = Db::default();
        db.upsert_counted("r", "a", "s1".into(), 100, at(0));
        let dead = first_dead(&mut db, 100);
        let stale = Moment {
            now: 100,
            cutoff: 150,
        };
        let cases = [
            (Some(100), at(100), Verdict::Delete(Reason::Expired)),
            (Some(NO_TTL), at(100), Verdict::Delete(Reason::NoTtl)),
            (Some(120), stale, Verdict::Delete(Reason::Stale)),
            (Some(5000), at(100), Verdict::CatchUp { expire_at: 5000 }),
            (None, at(100), Verdict::Gone(Reason::Expired)),
        ];
        for (key, moment, verdict) in cases {
            assert_eq!(db.sweep_verdict(&dead, key, moment), verdict, "{key:?}");
        }
        let mut other = dead.clone();
        other.presence.expire_at = 1000;
        assert_eq!(
            db.sweep_verdict(&other, None, at(100)),
            Verdict::Changed,
            "not what the index holds"
        );
    }

    #[test]
    fn the_sweeper_names_a_down_node_first_and_sees_changes() {
        let mut db = Db::default();
        db.leases.set_lease("n", 100);
        db.upsert_counted("r", "a", "n/s1".into(), 1000, at(0));
        let dead = first_dead(&mut db, 100);
        assert_eq!(dead.socket, "n/s1");
        assert_eq!(
            db.sweep_verdict(&dead, Some(1000), at(100)),
            Verdict::Delete(Reason::NodeDown)
        );
        assert_eq!(
            db.sweep_verdict(&dead, None, at(100)),
            Verdict::Gone(Reason::NodeDown)
        );
        db.upsert_counted("r", "a", "s2".into(), 1000, at(100));
        assert_eq!(
            db.sweep_verdict(&dead, Some(1000), at(100)),
            Verdict::Changed
        );
    }

    #[test]
    fn a_room_with_stale_and_down_presences_counts_each_once() {
        let mut db = Db::default();
        db.leases.set_lease("n", 100);
        db.upsert_counted("r", "a", "n/s1".into(), 50, at(0));
        db.upsert_counted("r", "b", "n/s2".into(), 1000, at(0));
        db.upsert_counted("r", "c", "s3".into(), 1000, at(0));
        assert_eq!(db.count("r", at(60)), 2, "a is stale");
        assert_eq!(
            db.count("r", at(100)),
            1,
            "a is stale and down: counted out once"
        );
        assert_eq!(users(&mut db, "r", 100), ["c"]);
    }

    #[test]
    fn refresh_and_replace_follow_the_node() {
        let mut db = Db::default();
        db.leases.set_lease("n", 100);
        db.upsert_counted("r", "a", "n/s1".into(), 1000, at(0));
        assert!(matches!(
            db.refresh("r", "a", "n/s1".into(), 2000, at(50)),
            Refresh::Refreshed { .. }
        ));
        assert_eq!(
            db.refresh("r", "a", "n/s1".into(), 3000, at(100)),
            Refresh::NotLive { expire_at: 2000 }
        );
        assert_eq!(
            db.refresh("r", "a", "n/other".into(), 3000, at(100)),
            Refresh::NotHeld
        );
        let (previous, count) = db.upsert_counted("r", "a", "s9".into(), 3000, at(100));
        assert_eq!(
            previous,
            Prior::Other {
                socket: "n/s1".into()
            }
        );
        assert_eq!(count, 1);
        assert_eq!(
            db.leases.id("n").map(|n| db.leases.presences(n)),
            Some(0),
            "kept for its lease"
        );
        let (_, count) = db.remove_counted("r", "a", at(100)).unwrap();
        assert_eq!(count, 0);
    }

    #[test]
    fn the_sweeper_announces_a_down_node_then_hands_over_its_presences() {
        let mut db = Db::default();
        db.leases.set_lease("n", 100);
        for room in 0..3 {
            for user in 0..700 {
                let socket = if user % 2 == 0 { "n/s" } else { "m" };
                db.upsert_counted(
                    &format!("r{room}"),
                    &format!("u{user}"),
                    socket.into(),
                    1000,
                    at(0),
                );
            }
        }
        assert_eq!(db.node_step(at(50)), Step::Idle);
        assert_eq!(
            db.node_step(at(100)),
            Step::Down {
                node: "n".into(),
                presences: 1050
            }
        );
        let mut removed = 0;
        let mut steps = 0;
        loop {
            steps += 1;
            match db.node_step(at(100)) {
                Step::Dead(dead) => {
                    assert_eq!(dead.socket, "n/s");
                    db.remove_counted(&dead.room, &dead.user.to_string(), at(100));
                    removed += 1;
                }
                Step::Progress => {}
                Step::Idle => break,
                Step::Down { .. } => panic!("announced twice"),
            }
        }
        assert_eq!(removed, 1050);
        assert!(steps < 1050 + 30, "{steps} steps");
        assert!(db.leases.is_empty());
        assert_eq!(db.count("r0", at(100)), 350);
    }

    #[test]
    fn the_sweeper_finds_presences_that_moved_behind_it() {
        let mut db = Db::default();
        for user in 0..2000 {
            let socket = if user >= 1990 { "n/s" } else { "m" };
            db.upsert_counted("r", &format!("u{user:04}"), socket.into(), 1000, at(0));
        }
        db.leases.set_lease("n", NO_TTL);
        let mut removed = 0;
        // Users leave while the sweeper walks: the last slots (n's) move into their holes.
        let mut leaving = 0;
        for _ in 0..10_000 {
            match db.node_step(at(0)) {
                Step::Dead(dead) => {
                    db.remove_counted(&dead.room, &dead.user.to_string(), at(0));
                    removed += 1;
                }
                Step::Progress => {
                    if leaving < 600 {
                        db.remove_counted("r", &format!("u{leaving:04}"), at(0));
                        leaving += 1;
                    }
                }
                Step::Idle => break,
                Step::Down { .. } => {}
            }
        }
        assert_eq!(removed, 10);
        assert_eq!(db.leases.id("n"), None, "nothing keeps n");
    }

    #[test]
    fn matches_a_naive_model_with_nodes_coming_and_going() {
        use std::collections::BTreeMap;
        for seed in 1..=8u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut db = Db::default();
            let mut keys: BTreeMap<(String, String), (String, i64)> = BTreeMap::new();
            let mut leases: BTreeMap<String, i64> = BTreeMap::new();
            let mut now = 1_000;
            for step in 0..6000 {
                now += rng.below(20) as i64;
                let node = format!("n{}", rng.below(4));
                let room = format!("r{}", rng.below(3));
                let user = format!("u{}", rng.below(if room == "r0" { 1500 } else { 20 }));
                match rng.below(10) {
                    0 => {
                        let expire_at = now + rng.below(400) as i64;
                        leases.insert(node.clone(), expire_at);
                        db.leases.set_lease(node.as_str(), expire_at);
                    }
                    1 => {
                        leases.remove(&node);
                        db.leases.set_lease(node.as_str(), NO_TTL);
                    }
                    2..=5 => {
                        let socket = match rng.below(3) {
                            0 => format!("s{}", rng.below(5)),
                            _ => format!("{node}/s{}", rng.below(5)),
                        };
                        let expire_at = now + rng.below(300) as i64;
                        keys.insert((room.clone(), user.clone()), (socket.clone(), expire_at));
                        db.upsert_counted(&room, &user, socket.as_str().into(), expire_at, at(now));
                    }
                    6 => {
                        keys.remove(&(room.clone(), user.clone()));
                        db.remove_counted(&room, &user, at(now));
                    }
                    _ => {
                        if let Step::Dead(dead) = db.node_step(at(now)) {
                            keys.remove(&(dead.room.to_string(), dead.user.to_string()));
                            db.remove_counted(&dead.room, &dead.user.to_string(), at(now));
                        }
                    }
                }
                let live_at = |socket: &str, expire_at: i64| {
                    expire_at > now
                        && Socket::from(socket)
                            .node
                            .is_none_or(|node| leases.get(node).is_some_and(|&l| l > now))
                };
                for room in ["r0", "r1", "r2"] {
                    let expected: Vec<String> = keys
                        .iter()
                        .filter(|((r, _), (socket, expire_at))| {
                            r == room && live_at(socket, *expire_at)
                        })
                        .map(|((_, user), _)| user.clone())
                        .collect();
                    assert_eq!(
                        db.count(room, at(now)),
                        expected.len(),
                        "seed {seed} step {step} {room}"
                    );
                    if step % 50 == 0 {
                        let mut listed = users(&mut db, room, now);
                        listed.sort();
                        let mut expected = expected;
                        expected.sort();
                        assert_eq!(listed, expected, "seed {seed} step {step} {room}");
                    }
                }
            }
        }
    }
}
