//! The room index of one database: which presences each room holds, kept in step with the
//! keyspace by the module's hooks, so that a room can be listed and counted without scanning
//! the keyspace, and the presences that are no longer live can be found at a cost that follows
//! their number, not the number that exist.
//!
//! It stores, per presence, the socket id and the key's absolute expiry (`expire_at`, ms, or
//! [`NO_TTL`]). Liveness is not stored: every read is given the cutoff of the liveness rule
//! ([`super::liveness::Liveness::cutoff`]) and a presence is live when `expire_at > cutoff`.
//!
//! Per room, presences are ordered twice: by user id (for listing) and by expiry. An entry of
//! the expiry order carries a lower bound of its presence's expiry: a heartbeat only raises the
//! presence's own expiry, and the entry is moved to the real one when a count or the sweeper
//! reaches it, so a heartbeat costs one search and an entry moves about once per staleness
//! window. A room caches how many of its presences are at or below the last cutoff it was asked
//! about, so counting costs only the entries reached since then. Across rooms, a queue ordered
//! by each room's earliest entry gives the sweeper the next presence to remove in O(log n).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::rc::Rc;

#[cfg(doc)]
use super::liveness::NO_TTL;

/// One presence as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// The socket id that holds the presence (the key's value).
    pub socket: Box<str>,
    /// The key's absolute expiry in Unix ms, or [`NO_TTL`].
    pub expire_at: i64,
}

/// A presence that is not live, as handed to the sweeper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadPresence {
    /// The room id.
    pub room: Rc<str>,
    /// The user id.
    pub user: Rc<str>,
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

/// A user id in the expiry order. Presences that expire in the same millisecond are told apart
/// by the address of their shared id, not by comparing the ids: the order among them is
/// arbitrary, and finding one costs no string comparison. `Lowest` sorts before every user.
#[derive(Debug, Clone)]
enum ExpiryUser {
    Lowest,
    User(Rc<str>),
}

impl ExpiryUser {
    fn address(&self) -> usize {
        match self {
            ExpiryUser::Lowest => 0,
            ExpiryUser::User(user) => Rc::as_ptr(user).cast::<u8>() as usize,
        }
    }
}

impl PartialEq for ExpiryUser {
    fn eq(&self, other: &Self) -> bool {
        self.address() == other.address()
    }
}

impl Eq for ExpiryUser {}

impl PartialOrd for ExpiryUser {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ExpiryUser {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.address().cmp(&other.address())
    }
}

/// A presence and the expiry its entry in the expiry order carries. A heartbeat only moves
/// `presence.expire_at` forward and leaves the entry where it is (`queued_at` stays a lower
/// bound): the entry is moved once, when a count or the sweeper reaches it, instead of at every
/// heartbeat.
#[derive(Debug)]
struct Slot {
    presence: Presence,
    queued_at: i64,
}

#[derive(Debug)]
struct Room {
    name: Rc<str>,
    users: BTreeMap<Rc<str>, Slot>,
    /// One entry per presence, at its `queued_at`.
    by_expiry: BTreeSet<(i64, ExpiryUser)>,
    /// The cutoff `dead` was counted for. Every entry at or below it is a presence that is not
    /// live at it.
    dead_cutoff: i64,
    /// How many presences have `expire_at <= dead_cutoff`.
    dead: usize,
    /// The expiry this room is queued under in [`RoomIndex::due`].
    due_at: Option<i64>,
}

/// Index-wide counters, kept beside the rooms so that a room can update them while borrowed.
#[derive(Debug, Default)]
struct Totals {
    entries: usize,
    /// Sum of every room's `dead` counter.
    dead: usize,
    /// The highest cutoff any room was counted at.
    max_cutoff: i64,
}

impl Room {
    fn new(name: Rc<str>) -> Self {
        Room {
            name,
            users: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            dead_cutoff: i64::MIN,
            dead: 0,
            due_at: None,
        }
    }

    /// Brings `dead` to `cutoff` and returns the live count.
    fn live(
        &mut self,
        cutoff: i64,
        totals: &mut Totals,
        due: &mut BTreeSet<(i64, Rc<str>)>,
    ) -> usize {
        let before = self.dead;
        if self.due_at.is_none_or(|first| first > cutoff) {
            self.dead = 0;
        } else if cutoff != self.dead_cutoff {
            let from = if cutoff < self.dead_cutoff {
                self.dead = 0;
                self.dead_cutoff = i64::MIN;
                i64::MIN
            } else {
                self.dead_cutoff.saturating_add(1)
            };
            self.dead += self.settle(from, cutoff, totals);
            self.requeue(due);
        }
        self.dead_cutoff = cutoff;
        totals.dead = totals.dead + self.dead - before;
        totals.max_cutoff = totals.max_cutoff.max(cutoff);
        self.users.len() - self.dead
    }

    /// Counts the presences whose entries lie in `from..=to` and that are not live at `to`;
    /// moves the entries of the others (refreshed since) to their real expiry.
    fn settle(&mut self, from: i64, to: i64, totals: &mut Totals) -> usize {
        let mut dead = 0;
        let mut refreshed = Vec::new();
        for (at, user) in self.by_expiry.range(range_between(from, to)) {
            if let ExpiryUser::User(user) = user {
                match self.users.get(user) {
                    Some(slot) if slot.presence.expire_at <= to => dead += 1,
                    Some(slot) => refreshed.push((*at, slot.presence.expire_at, user.clone())),
                    None => {}
                }
            }
        }
        for (queued, real, user) in refreshed {
            self.relink(&user, Some(queued), Some(real), totals);
        }
        dead
    }

    /// Moves (user, `from`) to (user, `to`) in the expiry order, keeping `dead` exact.
    fn relink(&mut self, user: &Rc<str>, from: Option<i64>, to: Option<i64>, totals: &mut Totals) {
        if let Some(at) = from {
            self.by_expiry.remove(&(at, ExpiryUser::User(user.clone())));
            if at <= self.dead_cutoff {
                self.dead -= 1;
                totals.dead -= 1;
            }
        }
        if let Some(at) = to {
            self.by_expiry.insert((at, ExpiryUser::User(user.clone())));
            if at <= self.dead_cutoff {
                self.dead += 1;
                totals.dead += 1;
            }
            if let Some(slot) = self.users.get_mut(&**user) {
                slot.queued_at = at;
            }
        }
    }

    /// Gives an existing slot the expiry `expire_at`: in place when its entry stays a lower
    /// bound outside the counted prefix, else by moving the entry.
    fn set_expiry(&mut self, user: &str, queued_at: i64, expire_at: i64, totals: &mut Totals) {
        if queued_at > self.dead_cutoff && expire_at >= queued_at {
            return;
        }
        if let Some(name) = self.users.get_key_value(user).map(|(name, _)| name.clone()) {
            self.relink(&name, Some(queued_at), Some(expire_at), totals);
        }
    }

    /// Moves the room to its place in the due queue.
    fn requeue(&mut self, due: &mut BTreeSet<(i64, Rc<str>)>) {
        let first = self.by_expiry.first().map(|(at, _)| *at);
        if first != self.due_at {
            if let Some(at) = self.due_at {
                due.remove(&(at, self.name.clone()));
            }
            if let Some(at) = first {
                due.insert((at, self.name.clone()));
            }
            self.due_at = first;
        }
    }

    /// Sets `user` to `socket` expiring at `expire_at`.
    fn upsert(
        &mut self,
        user: &str,
        socket: &str,
        expire_at: i64,
        totals: &mut Totals,
    ) -> Previous {
        let existing = self.users.get_mut(user).map(|slot| {
            let presence = &mut slot.presence;
            let old_expire = std::mem::replace(&mut presence.expire_at, expire_at);
            let previous = if &*presence.socket == socket {
                Previous::Same {
                    expire_at: old_expire,
                }
            } else {
                Previous::Other(Presence {
                    socket: std::mem::replace(&mut presence.socket, Box::from(socket)),
                    expire_at: old_expire,
                })
            };
            (slot.queued_at, previous)
        });
        match existing {
            Some((queued_at, previous)) => {
                self.set_expiry(user, queued_at, expire_at, totals);
                previous
            }
            None => {
                let name: Rc<str> = Rc::from(user);
                self.users.insert(
                    name.clone(),
                    Slot {
                        presence: Presence {
                            socket: Box::from(socket),
                            expire_at,
                        },
                        queued_at: expire_at,
                    },
                );
                self.relink(&name, None, Some(expire_at), totals);
                totals.entries += 1;
                Previous::Absent
            }
        }
    }
}

/// Bounds of a range of the expiry order.
type ExpiryRange = (Bound<(i64, ExpiryUser)>, Bound<(i64, ExpiryUser)>);

/// The entries with `from <= expire_at <= to`.
fn range_between(from: i64, to: i64) -> ExpiryRange {
    let end = match to.checked_add(1) {
        Some(next) => Bound::Excluded((next, ExpiryUser::Lowest)),
        None => Bound::Unbounded,
    };
    (Bound::Included((from, ExpiryUser::Lowest)), end)
}

/// The room index of one database.
#[derive(Debug)]
pub struct RoomIndex {
    rooms: HashMap<Rc<str>, Room>,
    /// Rooms ordered by their earliest expiry.
    due: BTreeSet<(i64, Rc<str>)>,
    totals: Totals,
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
            rooms: HashMap::new(),
            due: BTreeSet::new(),
            totals: Totals {
                max_cutoff: i64::MIN,
                ..Totals::default()
            },
        }
    }

    /// What the index holds for (room, user).
    pub fn get(&self, room: &str, user: &str) -> Option<&Presence> {
        self.rooms
            .get(room)?
            .users
            .get(user)
            .map(|slot| &slot.presence)
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
        let state = match self.rooms.get_mut(room) {
            Some(state) => state,
            None => {
                let name: Rc<str> = Rc::from(room);
                self.rooms
                    .entry(name.clone())
                    .or_insert_with(|| Room::new(name))
            }
        };
        let previous = state.upsert(user, socket, expire_at, &mut self.totals);
        state.requeue(&mut self.due);
        let count = cutoff.map_or(0, |c| state.live(c, &mut self.totals, &mut self.due));
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
        let Some(state) = self.rooms.get_mut(room) else {
            return Refresh::NotHeld;
        };
        let dead_cutoff = state.dead_cutoff;
        let Some(slot) = state.users.get_mut(user) else {
            return Refresh::NotHeld;
        };
        if &*slot.presence.socket != socket {
            return Refresh::NotHeld;
        }
        if slot.presence.expire_at <= cutoff {
            return Refresh::NotLive {
                expire_at: slot.presence.expire_at,
            };
        }
        let previous = std::mem::replace(&mut slot.presence.expire_at, expire_at);
        let queued_at = slot.queued_at;
        if queued_at <= dead_cutoff || expire_at < queued_at {
            state.set_expiry(user, queued_at, expire_at, &mut self.totals);
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
        let state = self.rooms.get_mut(room)?;
        let (name, old) = state.users.remove_entry(user)?;
        state.relink(&name, Some(old.queued_at), None, &mut self.totals);
        self.totals.entries -= 1;
        state.requeue(&mut self.due);
        let count = state.live(cutoff, &mut self.totals, &mut self.due);
        if state.users.is_empty() {
            self.rooms.remove(room);
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
        match self.rooms.get_mut(room) {
            Some(state) => state.live(cutoff, &mut self.totals, &mut self.due),
            None => 0,
        }
    }

    /// The live presences of `room` as (user, socket), ordered by user id, at most `limit`.
    pub fn list(&self, room: &str, cutoff: i64, limit: usize) -> Vec<(&str, &str)> {
        let Some(state) = self.rooms.get(room) else {
            return Vec::new();
        };
        state
            .users
            .iter()
            .filter(|(_, slot)| slot.presence.expire_at > cutoff)
            .take(limit)
            .map(|(user, slot)| (&**user, &*slot.presence.socket))
            .collect()
    }

    /// One presence that is not live at `cutoff` (the one with the earliest expiry), if any.
    /// Entries of presences refreshed since they were queued are moved on the way.
    pub fn first_dead(&mut self, cutoff: i64) -> Option<DeadPresence> {
        loop {
            let (at, room) = self.due.first()?.clone();
            if at > cutoff {
                return None;
            }
            let Some(state) = self.rooms.get_mut(&room) else {
                self.due.remove(&(at, room));
                continue;
            };
            let Some((queued_at, ExpiryUser::User(user))) = state.by_expiry.first().cloned() else {
                state.requeue(&mut self.due);
                continue;
            };
            let real = state.users.get(&user).map(|slot| slot.presence.clone());
            match real {
                Some(presence) if presence.expire_at <= cutoff => {
                    return Some(DeadPresence {
                        room,
                        user,
                        presence,
                    });
                }
                Some(presence) => {
                    state.relink(
                        &user,
                        Some(queued_at),
                        Some(presence.expire_at),
                        &mut self.totals,
                    );
                }
                None => {
                    state
                        .by_expiry
                        .remove(&(queued_at, ExpiryUser::User(user.clone())));
                }
            }
            state.requeue(&mut self.due);
        }
    }

    /// Brings every room's dead counter to `cutoff`. Costs the presences that became not live
    /// since the last call, unless the cutoff moved back (a larger `stale-after`): then every
    /// room is recounted.
    fn advance_all(&mut self, cutoff: i64) {
        let everything = cutoff < self.totals.max_cutoff;
        for state in self.rooms.values_mut() {
            if everything || state.due_at.is_some_and(|first| first <= cutoff) || state.dead > 0 {
                state.live(cutoff, &mut self.totals, &mut self.due);
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

    fn users(index: &RoomIndex, room: &str, cutoff: i64) -> Vec<String> {
        index
            .list(room, cutoff, usize::MAX)
            .into_iter()
            .map(|(u, _)| u.to_string())
            .collect()
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
    }

    #[test]
    fn count_and_list_follow_the_cutoff() {
        let mut index = RoomIndex::new();
        index.upsert("r", "c", "sc", 300);
        index.upsert("r", "a", "sa", 100);
        index.upsert("r", "b", "sb", 200);
        index.upsert("other", "a", "x", 1000);
        assert_eq!(index.count("r", 0), 3);
        assert_eq!(users(&index, "r", 0), ["a", "b", "c"]);
        assert_eq!(index.count("r", 100), 2);
        assert_eq!(users(&index, "r", 100), ["b", "c"]);
        assert_eq!(index.count("r", 250), 1);
        assert_eq!(index.count("r", 300), 0);
        assert_eq!(index.count("nope", 0), 0);
        assert_eq!(index.count("other", 300), 1);
        assert_eq!(index.list("r", 0, 2), vec![("a", "sa"), ("b", "sb")]);
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
    }

    #[test]
    fn matches_a_naive_model_under_random_operations() {
        let mut index = RoomIndex::new();
        let mut model: BTreeMap<(String, String), (String, i64)> = BTreeMap::new();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for step in 0..20_000 {
            let room = format!("r{}", next(5));
            let user = format!("u{}", next(20));
            let cutoff = next(1000) as i64;
            match next(4) {
                0 | 1 => {
                    let socket = format!("s{}", next(3));
                    let expire_at = if next(10) == 0 {
                        NO_TTL
                    } else {
                        next(1000) as i64
                    };
                    index.upsert(&room, &user, &socket, expire_at);
                    model.insert((room.clone(), user), (socket, expire_at));
                }
                2 if next(2) == 0 => {
                    let socket = format!("s{}", next(3));
                    let expire_at = next(1000) as i64;
                    let key = (room.clone(), user.clone());
                    let held = model
                        .get(&key)
                        .is_some_and(|(s, at)| *s == socket && *at > cutoff);
                    let got = index.refresh(&room, &user, &socket, expire_at, cutoff);
                    assert_eq!(
                        matches!(got, Refresh::Refreshed { .. }),
                        held,
                        "step {step}"
                    );
                    if held {
                        model.insert(key, (socket, expire_at));
                    }
                }
                2 => {
                    let got = index.remove(&room, &user).map(|p| p.socket.to_string());
                    let want = model.remove(&(room.clone(), user)).map(|(s, _)| s);
                    assert_eq!(got, want, "step {step}");
                }
                _ => {
                    if let Some(dead) = index.first_dead(cutoff) {
                        assert!(dead.presence.expire_at <= cutoff);
                        index.remove(&dead.room, &dead.user);
                        model.remove(&(dead.room.to_string(), dead.user.to_string()));
                    }
                }
            }
            let live: Vec<String> = model
                .iter()
                .filter(|((r, _), (_, at))| *r == room && *at > cutoff)
                .map(|((_, u), _)| u.clone())
                .collect();
            assert_eq!(index.count(&room, cutoff), live.len(), "step {step}");
            assert_eq!(users(&index, &room, cutoff), live, "step {step}");
            if step % 97 == 0 {
                let all_live = model.values().filter(|(_, at)| *at > cutoff).count();
                assert_eq!(index.live(cutoff), all_live, "step {step}");
                assert_eq!(index.backlog(cutoff), model.len() - all_live);
            }
        }
    }
}
