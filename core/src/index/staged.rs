//! Presences read during a load and not indexed yet, set aside by room: a load reads keys in
//! the order of the keyspace, each of a room taken at random, and indexing them one by one
//! touches a different room every time. Set aside, each room's presences are indexed in a row
//! once the load ends ([`crate::db::Db::index_staged`]), its structures warm in the cache.
//!
//! One presence set aside costs 64 bytes (its user and socket ids inline up to 22 bytes), in a
//! vector per room that doubles as it grows: less than the index keeps for it, and each room's
//! vector is freed once the room is indexed, so a load never holds much more than the index it
//! builds.

use crate::small_str::SmallStr;
use foldhash::fast::RandomState;
use std::collections::HashMap;

/// One presence set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedPresence {
    /// The user id.
    pub user: SmallStr,
    /// The node its socket is held through, if any, as a number of [`Staged::nodes`].
    pub node: Option<u32>,
    /// The socket id (after the node, if any).
    pub socket: SmallStr,
    /// The key's absolute expiry in Unix ms, or [`crate::liveness::NO_TTL`].
    pub expire_at: i64,
}

/// The presences set aside, by room, in the order they were read.
#[derive(Debug, Default)]
pub struct Staged {
    rooms: HashMap<Box<str>, Vec<StagedPresence>, RandomState>,
    /// The nodes named by the presences, by number.
    nodes: Vec<Box<str>>,
    /// The number of each node.
    node_numbers: HashMap<Box<str>, u32, RandomState>,
    /// The presences set aside.
    len: usize,
}

/// What [`Staged::drain`] hands over: the nodes' names by number, and each room's presences.
pub type Drained = (
    Vec<Box<str>>,
    std::collections::hash_map::IntoIter<Box<str>, Vec<StagedPresence>>,
);

impl Staged {
    /// Sets aside `user` of `room`, held by `socket` (through `node`, if any) until
    /// `expire_at`.
    pub fn push(
        &mut self,
        room: &str,
        user: &str,
        node: Option<&str>,
        socket: &str,
        expire_at: i64,
    ) {
        let node = node.map(|name| self.number(name));
        let presence = StagedPresence {
            user: SmallStr::from(user),
            node,
            socket: SmallStr::from(socket),
            expire_at,
        };
        match self.rooms.get_mut(room) {
            Some(presences) => presences.push(presence),
            None => {
                self.rooms.insert(Box::from(room), vec![presence]);
            }
        }
        self.len += 1;
    }

    /// The number of the node called `name`, given it now if it has none.
    fn number(&mut self, name: &str) -> u32 {
        if let Some(number) = self.node_numbers.get(name) {
            return *number;
        }
        // Each node named takes memory: far fewer than 2^32 of them fit in any server's.
        let number = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        self.nodes.push(Box::from(name));
        self.node_numbers.insert(Box::from(name), number);
        number
    }

    /// The names of the nodes, by number.
    pub fn nodes(&self) -> &[Box<str>] {
        &self.nodes
    }

    /// The number of presences set aside.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no presence is set aside.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes the presences set aside for `room`, in the order they were read (none: empty).
    pub fn take_room(&mut self, room: &str) -> Vec<StagedPresence> {
        let presences = self.rooms.remove(room).unwrap_or_default();
        self.len -= presences.len();
        presences
    }

    /// Takes every presence set aside, leaving nothing.
    pub fn drain(&mut self) -> Drained {
        let Staged { rooms, nodes, .. } = std::mem::take(self);
        (nodes, rooms.into_iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presences_are_kept_by_room_in_order_with_their_nodes_numbered() {
        let mut staged = Staged::default();
        staged.push("r", "a", Some("n1"), "s1", 10);
        staged.push("q", "b", None, "s2", 20);
        staged.push("r", "c", Some("n2"), "s3", 30);
        staged.push("r", "a", Some("n1"), "s4", 40);
        assert_eq!(staged.len(), 4);
        let r = staged.take_room("r");
        let users: Vec<String> = r
            .iter()
            .map(|p| {
                let node = p.node.map_or("", |n| &*staged.nodes()[n as usize]);
                format!("{} {node} {}", p.user, p.socket)
            })
            .collect();
        assert_eq!(users, ["a n1 s1", "c n2 s3", "a n1 s4"]);
        assert_eq!(staged.len(), 1);
        assert!(staged.take_room("r").is_empty());
        let (nodes, rooms) = staged.drain();
        assert_eq!(nodes.len(), 2);
        let rooms: Vec<_> = rooms.collect();
        assert_eq!(rooms.len(), 1);
        assert_eq!(&*rooms[0].0, "q");
        assert!(staged.is_empty());
    }
}
