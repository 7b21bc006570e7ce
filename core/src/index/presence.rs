//! What the index keeps for one presence, the form in which it takes a socket, and what its
//! operations hand back.

use crate::leases::NodeId;
use crate::small_str::SmallStr;
use std::rc::Rc;

#[cfg(doc)]
use super::RoomIndex;
#[cfg(doc)]
use crate::liveness::NO_TTL;

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
        self.node == socket.node && self.socket == *socket.id
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
