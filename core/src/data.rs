//! Presence data (§12): which presences of a database may have a data key, and the data keys
//! whose presence ended where the key could not be removed at once. The data itself stays in
//! its keys; this keeps ids only.
//!
//! The set is a superset: a (room, user) is added whenever its data key is written or seen
//! (a module write, a raw write, a load, a key that moved here) and taken away when the key is
//! seen gone. So a JOIN or a BEAT of a presence that is not in it (and of any presence while it
//! is empty) never opens a data key.

use std::collections::{HashMap, HashSet};

/// The (room, user) pairs of one database that may have a data key, and the orphans to check.
#[derive(Debug, Default)]
pub struct DataKeys {
    rooms: HashMap<Box<str>, HashSet<Box<str>>>,
    orphans: Vec<(Box<str>, Box<str>)>,
}

impl DataKeys {
    /// True when (room, user) may have a data key.
    pub fn may_have(&self, room: &str, user: &str) -> bool {
        !self.rooms.is_empty()
            && self
                .rooms
                .get(room)
                .is_some_and(|users| users.contains(user))
    }

    /// (room, user) has a data key now.
    pub fn add(&mut self, room: &str, user: &str) {
        match self.rooms.get_mut(room) {
            Some(users) => {
                if !users.contains(user) {
                    users.insert(user.into());
                }
            }
            None => {
                self.rooms.insert(room.into(), HashSet::from([user.into()]));
            }
        }
    }

    /// The data key of (room, user) is gone.
    pub fn remove(&mut self, room: &str, user: &str) {
        if let Some(users) = self.rooms.get_mut(room) {
            users.remove(user);
            if users.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// The presence (room, user) ended or changed hands: its data key, if it may have one, is
    /// to be checked (and removed unless it belongs to a live presence again).
    pub fn orphan(&mut self, room: &str, user: &str) {
        if self.may_have(room, user) {
            self.orphans.push((room.into(), user.into()));
        }
    }

    /// The next data key to check, if any.
    pub fn take_orphan(&mut self) -> Option<(Box<str>, Box<str>)> {
        self.orphans.pop()
    }

    /// The number of data keys waiting to be checked.
    pub fn orphans(&self) -> usize {
        self.orphans.len()
    }

    /// Forgets the data keys waiting to be checked (a replica leaves that to its master).
    pub fn clear_orphans(&mut self) {
        self.orphans.clear();
    }

    /// The number of (room, user) pairs that may have a data key.
    pub fn len(&self) -> usize {
        self.rooms.values().map(HashSet::len).sum()
    }

    /// True when no presence may have a data key.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}

/// Whether a data key expiring at `data_expire_at` belongs to the presence the index holds:
/// a live presence (`live_expire_at`, its expiry, `None` when it is not live or absent) with
/// exactly the same absolute expiry. A data key that does not is removed.
pub fn belongs(live_expire_at: Option<i64>, data_expire_at: i64) -> bool {
    live_expire_at == Some(data_expire_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_known_until_removed() {
        let mut data = DataKeys::default();
        assert!(data.is_empty() && !data.may_have("r", "u"));
        data.add("r", "u");
        data.add("r", "u");
        data.add("r", "v");
        assert!(data.may_have("r", "u") && data.may_have("r", "v"));
        assert!(!data.may_have("r", "w") && !data.may_have("s", "u"));
        assert_eq!(data.len(), 2);
        data.remove("r", "u");
        data.remove("r", "v");
        data.remove("x", "y");
        assert!(data.is_empty());
    }

    #[test]
    fn only_pairs_that_may_have_data_are_orphaned() {
        let mut data = DataKeys::default();
        data.orphan("r", "u");
        assert_eq!(data.orphans(), 0);
        data.add("r", "u");
        data.orphan("r", "u");
        assert_eq!(data.orphans(), 1);
        assert_eq!(data.take_orphan(), Some(("r".into(), "u".into())));
        assert_eq!(data.take_orphan(), None);
        data.orphan("r", "u");
        data.clear_orphans();
        assert_eq!(data.orphans(), 0);
    }

    #[test]
    fn data_belongs_to_a_live_presence_of_the_same_expiry() {
        assert!(belongs(Some(1000), 1000));
        assert!(!belongs(Some(1000), 999));
        assert!(!belongs(None, 1000));
    }
}
