//! The room index of one database: which presences each room holds, kept in step with the
//! keyspace by the module's hooks, so that a room can be listed and counted without scanning
//! the keyspace, and the presences that are no longer live can be found at a cost that follows
//! their number, not the number that exist.
//!
//! It stores, per presence, the socket id and the key's absolute expiry (`expire_at`, ms, or
//! [`NO_TTL`]). Liveness is not stored: every read is given the cutoff of the liveness rule
//! ([`super::liveness::Liveness::cutoff`]) and a presence is live when `expire_at > cutoff`.
//!
//! Per room, presences are ordered twice: by user id (for listing) and by expiry (the ones that
//! are not live form a prefix of that order). A room caches how many of its presences are at or
//! below the last cutoff it was asked about, so counting costs only the presences that became
//! not live since then. Across rooms, a queue ordered by each room's earliest expiry gives the
//! sweeper the next presence to remove in O(log n).

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

#[derive(Debug)]
struct Room {
    users: BTreeMap<Rc<str>, Presence>,
    by_expiry: BTreeSet<(i64, Rc<str>)>,
    /// The cutoff `dead` was counted for.
    dead_cutoff: i64,
    /// How many presences have `expire_at <= dead_cutoff`.
    dead: usize,
    /// The expiry this room is queued under in [`RoomIndex::due`].
    due_at: Option<i64>,
}

impl Room {
    fn new() -> Self {
        Room {
            users: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            dead_cutoff: i64::MIN,
            dead: 0,
            due_at: None,
        }
    }

    /// Brings `dead` to `cutoff`, and returns how much it changed by.
    fn advance(&mut self, cutoff: i64, empty: &Rc<str>) -> isize {
        let before = self.dead as isize;
        if cutoff < self.dead_cutoff {
            self.dead = count_between(&self.by_expiry, i64::MIN, cutoff, empty);
        } else if cutoff > self.dead_cutoff {
            self.dead += count_between(
                &self.by_expiry,
                self.dead_cutoff.saturating_add(1),
                cutoff,
                empty,
            );
        }
        self.dead_cutoff = cutoff;
        self.dead as isize - before
    }

    fn first_expiry(&self) -> Option<i64> {
        self.by_expiry.first().map(|(at, _)| *at)
    }

    /// Takes `expire_at` out of the order (and out of `dead` when it was counted there).
    fn unlink(&mut self, expire_at: i64, user: &Rc<str>) -> bool {
        self.by_expiry.remove(&(expire_at, user.clone()));
        let was_dead = expire_at <= self.dead_cutoff;
        if was_dead {
            self.dead -= 1;
        }
        was_dead
    }

    /// Puts `expire_at` into the order (and into `dead` when it is at or below the cutoff).
    fn link(&mut self, expire_at: i64, user: Rc<str>) -> bool {
        self.by_expiry.insert((expire_at, user));
        let is_dead = expire_at <= self.dead_cutoff;
        if is_dead {
            self.dead += 1;
        }
        is_dead
    }
}

/// Counts the entries with `from <= expire_at <= to`.
fn count_between(set: &BTreeSet<(i64, Rc<str>)>, from: i64, to: i64, empty: &Rc<str>) -> usize {
    if from > to {
        return 0;
    }
    let start = Bound::Included((from, empty.clone()));
    let end = match to.checked_add(1) {
        Some(next) => Bound::Excluded((next, empty.clone())),
        None => Bound::Unbounded,
    };
    set.range((start, end)).count()
}

/// The room index of one database.
#[derive(Debug)]
pub struct RoomIndex {
    rooms: HashMap<Rc<str>, Room>,
    /// Rooms ordered by their earliest expiry.
    due: BTreeSet<(i64, Rc<str>)>,
    entries: usize,
    /// Sum of every room's `dead` counter.
    dead: usize,
    /// The highest cutoff any room was counted at.
    max_cutoff: i64,
    /// The empty string, the lowest user id, for range bounds.
    empty: Rc<str>,
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
            entries: 0,
            dead: 0,
            max_cutoff: i64::MIN,
            empty: Rc::from(""),
        }
    }

    /// What the index holds for (room, user).
    pub fn get(&self, room: &str, user: &str) -> Option<&Presence> {
        self.rooms.get(room)?.users.get(user)
    }

    /// Sets (room, user) to `socket` expiring at `expire_at`, and says what it held before.
    pub fn upsert(&mut self, room: &str, user: &str, socket: &str, expire_at: i64) -> Previous {
        let room_rc = match self.rooms.get_key_value(room) {
            Some((name, _)) => name.clone(),
            None => {
                let name: Rc<str> = Rc::from(room);
                self.rooms.insert(name.clone(), Room::new());
                name
            }
        };
        let Some(state) = self.rooms.get_mut(room) else {
            return Previous::Absent;
        };
        let existing = state
            .users
            .get_key_value(user)
            .map(|(name, p)| (name.clone(), p.expire_at));
        let previous = match existing {
            Some((user_rc, old_expire)) => {
                if state.unlink(old_expire, &user_rc) {
                    self.dead -= 1;
                }
                if state.link(expire_at, user_rc) {
                    self.dead += 1;
                }
                match state.users.get_mut(user) {
                    Some(entry) if &*entry.socket == socket => {
                        entry.expire_at = expire_at;
                        Previous::Same {
                            expire_at: old_expire,
                        }
                    }
                    Some(entry) => Previous::Other(std::mem::replace(
                        entry,
                        Presence {
                            socket: Box::from(socket),
                            expire_at,
                        },
                    )),
                    None => Previous::Absent,
                }
            }
            None => {
                let user_rc: Rc<str> = Rc::from(user);
                if state.link(expire_at, user_rc.clone()) {
                    self.dead += 1;
                }
                state.users.insert(
                    user_rc,
                    Presence {
                        socket: Box::from(socket),
                        expire_at,
                    },
                );
                self.entries += 1;
                Previous::Absent
            }
        };
        self.requeue(&room_rc);
        previous
    }

    /// Removes (room, user) and returns what it held.
    pub fn remove(&mut self, room: &str, user: &str) -> Option<Presence> {
        let room_rc = self.rooms.get_key_value(room)?.0.clone();
        let state = self.rooms.get_mut(room)?;
        let (user_rc, old) = state.users.remove_entry(user)?;
        if state.unlink(old.expire_at, &user_rc) {
            self.dead -= 1;
        }
        self.entries -= 1;
        self.requeue(&room_rc);
        Some(old)
    }

    /// Moves a room to its place in the due queue, or drops it once it is empty.
    fn requeue(&mut self, room: &Rc<str>) {
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        let first = state.first_expiry();
        if first != state.due_at {
            if let Some(at) = state.due_at {
                self.due.remove(&(at, room.clone()));
            }
            if let Some(at) = first {
                self.due.insert((at, room.clone()));
            }
            state.due_at = first;
        }
        if state.users.is_empty() {
            self.rooms.remove(room);
        }
    }

    /// The number of live presences in `room`: those with `expire_at > cutoff`.
    pub fn count(&mut self, room: &str, cutoff: i64) -> usize {
        let Some(state) = self.rooms.get_mut(room) else {
            return 0;
        };
        let delta = state.advance(cutoff, &self.empty);
        self.dead = self.dead.wrapping_add_signed(delta);
        self.max_cutoff = self.max_cutoff.max(cutoff);
        state.users.len() - state.dead
    }

    /// The live presences of `room` as (user, socket), ordered by user id, at most `limit`.
    pub fn list(&self, room: &str, cutoff: i64, limit: usize) -> Vec<(&str, &str)> {
        let Some(state) = self.rooms.get(room) else {
            return Vec::new();
        };
        state
            .users
            .iter()
            .filter(|(_, p)| p.expire_at > cutoff)
            .take(limit)
            .map(|(user, p)| (&**user, &*p.socket))
            .collect()
    }

    /// One presence that is not live at `cutoff` (the one with the earliest expiry), if any.
    pub fn first_dead(&self, cutoff: i64) -> Option<DeadPresence> {
        let (at, room) = self.due.first()?;
        if *at > cutoff {
            return None;
        }
        let state = self.rooms.get(room)?;
        let (_, user) = state.by_expiry.first()?;
        let presence = state.users.get(user)?.clone();
        Some(DeadPresence {
            room: room.clone(),
            user: user.clone(),
            presence,
        })
    }

    /// Brings every room's dead counter to `cutoff`. Costs the presences that became not live
    /// since the last call, unless the cutoff moved back (a larger `stale-after`): then every
    /// room is recounted.
    fn advance_all(&mut self, cutoff: i64) {
        let rooms: Vec<Rc<str>> = if cutoff < self.max_cutoff {
            self.rooms.keys().cloned().collect()
        } else {
            self.due
                .iter()
                .take_while(|(at, _)| *at <= cutoff)
                .map(|(_, room)| room.clone())
                .collect()
        };
        for room in rooms {
            self.count(&room, cutoff);
        }
        self.max_cutoff = cutoff;
    }

    /// The number of live presences in the whole database.
    pub fn live(&mut self, cutoff: i64) -> usize {
        self.advance_all(cutoff);
        self.entries - self.dead
    }

    /// The number of presences that are not live and not yet removed (the sweeper's backlog).
    pub fn backlog(&mut self, cutoff: i64) -> usize {
        self.advance_all(cutoff);
        self.dead
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
