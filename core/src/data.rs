//! Presence data (§12): which presences of a database may have a data key, and the data keys
//! to check because their presence ended (or changed hands) or because they appeared where the
//! module did not write them. The data itself stays in its keys; this keeps ids only.
//!
//! The set is a superset: a (room, user) is added whenever its data key is written or seen
//! (a module write, a raw write, a load, a key that moved here) and taken away when the key is
//! seen gone. So a JOIN or a BEAT of a presence that is not in it (and of any presence while it
//! is empty) never opens a data key. Each addition numbers the data written (a write count),
//! so that a check can tell the data of an ended presence from data written since.

use foldhash::fast::RandomState;
use std::collections::HashMap;

/// The users of one room that may have a data key, with the number of their last write.
type Users = HashMap<Box<str>, u64, RandomState>;

/// Why a data key is to be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Its presence ended or another socket (or a raw write) took it over, when the data
    /// written last had this number: that data goes, unless data was written since.
    Ended(u64),
    /// The key was written or loaded by something else than the module's commands: it stays
    /// only while it belongs to the live presence ([`belongs`]).
    Appeared,
    /// A client moved the presence key's expiry (a raw `EXPIRE`, the seed's heartbeat): the
    /// data key takes the live presence's expiry.
    Follow,
}

/// A data key to check: room, user, and why.
pub type Orphan = (Box<str>, Box<str>, Check);

/// What to do with a data key that was to be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Leave it.
    Keep,
    /// Delete it.
    Delete,
    /// Read its expiry and delete it unless it [`belongs`] to the live presence.
    Compare,
    /// Give it the live presence's expiry, if it has another.
    Follow,
}

/// The (room, user) pairs of one database that may have a data key, and the checks waiting.
#[derive(Debug, Default)]
pub struct DataKeys {
    rooms: HashMap<Box<str>, Users, RandomState>,
    pairs: usize,
    orphans: Vec<Orphan>,
    writes: u64,
}

impl DataKeys {
    /// True when (room, user) may have a data key.
    pub fn may_have(&self, room: &str, user: &str) -> bool {
        !self.rooms.is_empty() && self.written(room, user).is_some()
    }

    /// The number of the data written last for (room, user), when it may have a data key.
    fn written(&self, room: &str, user: &str) -> Option<u64> {
        self.rooms.get(room)?.get(user).copied()
    }

    /// Data was written (or seen written) for (room, user).
    pub fn add(&mut self, room: &str, user: &str) {
        self.writes += 1;
        let number = self.writes;
        match self.rooms.get_mut(room) {
            Some(users) => match users.get_mut(user) {
                Some(written) => *written = number,
                None => {
                    users.insert(user.into(), number);
                    self.pairs += 1;
                }
            },
            None => {
                let mut users = Users::default();
                users.insert(user.into(), number);
                self.rooms.insert(room.into(), users);
                self.pairs += 1;
            }
        }
    }

    /// The data key of (room, user) is gone.
    pub fn remove(&mut self, room: &str, user: &str) {
        if let Some(users) = self.rooms.get_mut(room) {
            if users.remove(user).is_some() {
                self.pairs -= 1;
            }
            if users.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// The presence (room, user) ended or changed hands: its data, if it may have some, is to
    /// be removed unless other data is written first.
    pub fn orphan(&mut self, room: &str, user: &str) {
        if let Some(written) = self.written(room, user) {
            self.orphans
                .push((room.into(), user.into(), Check::Ended(written)));
        }
    }

    /// The data key of (room, user) was written by something else than the module's commands
    /// (or loaded): noted, and to be checked against its presence.
    pub fn appeared(&mut self, room: &str, user: &str) {
        self.add(room, user);
        self.orphans
            .push((room.into(), user.into(), Check::Appeared));
    }

    /// A client moved the expiry of the presence (room, user): its data key, if it may have
    /// one, takes the new expiry at the next tick.
    pub fn follow(&mut self, room: &str, user: &str) {
        if self.may_have(room, user) {
            self.orphans.push((room.into(), user.into(), Check::Follow));
        }
    }

    /// The next data key to check, if any.
    pub fn take_orphan(&mut self) -> Option<Orphan> {
        self.orphans.pop()
    }

    /// What to do with the data key of (room, user) checked for `check`.
    pub fn verdict(&self, room: &str, user: &str, check: Check) -> Verdict {
        match (self.written(room, user), check) {
            (None, _) => Verdict::Keep,
            (Some(written), Check::Ended(ended)) if written != ended => Verdict::Keep,
            (Some(_), Check::Ended(_)) => Verdict::Delete,
            (Some(_), Check::Appeared) => Verdict::Compare,
            (Some(_), Check::Follow) => Verdict::Follow,
        }
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
        self.pairs
    }

    /// True when no presence may have a data key.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}

/// Whether a data key expiring at `data_expire_at` belongs to the presence the index holds:
/// a live presence (`live_expire_at`, its expiry, `None` when it is not live or absent) with
/// exactly the same absolute expiry.
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
        data.remove("r", "u");
        assert_eq!(data.len(), 1);
        data.remove("r", "v");
        data.remove("x", "y");
        assert!(data.is_empty());
        assert_eq!(data.len(), 0);
    }

    #[test]
    fn the_data_of_an_ended_presence_goes_unless_written_again() {
        let mut data = DataKeys::default();
        data.orphan("r", "u");
        assert_eq!(data.orphans(), 0, "no data, nothing to check");
        data.add("r", "u");
        data.orphan("r", "u");
        let (room, user, check) = data.take_orphan().unwrap();
        assert_eq!((&*room, &*user), ("r", "u"));
        assert_eq!(data.verdict("r", "u", check), Verdict::Delete);
        data.add("r", "u");
        assert_eq!(
            data.verdict("r", "u", check),
            Verdict::Keep,
            "written since"
        );
        data.remove("r", "u");
        assert_eq!(data.verdict("r", "u", check), Verdict::Keep, "already gone");
        assert_eq!(data.take_orphan(), None);
    }

    #[test]
    fn data_that_appeared_is_compared_with_its_presence() {
        let mut data = DataKeys::default();
        data.appeared("r", "u");
        assert!(data.may_have("r", "u"));
        let (_, _, check) = data.take_orphan().unwrap();
        assert_eq!(check, Check::Appeared);
        assert_eq!(data.verdict("r", "u", check), Verdict::Compare);
        data.follow("r", "u");
        data.follow("r", "w");
        let (_, _, check) = data.take_orphan().unwrap();
        assert_eq!(data.verdict("r", "u", check), Verdict::Follow);
        assert_eq!(data.take_orphan(), None, "no data, nothing to follow");
        data.appeared("r", "v");
        data.clear_orphans();
        assert_eq!(data.orphans(), 0);
        assert!(belongs(Some(1000), 1000));
        assert!(!belongs(Some(1000), 999));
        assert!(!belongs(None, 1000));
    }
}
