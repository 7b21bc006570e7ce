//! What a change of a presence key means: the index update and the events to announce.
//! Every path that changes a presence (the commands, the hooks that follow raw clients, the
//! sweeper) goes through these two functions, so that a change is announced the same way
//! whatever caused it.

use super::events::{Event, Reason};
use super::index::{Previous, RoomIndex};

/// Which presence: the database, room and user of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceRef<'a> {
    /// The database.
    pub db: i32,
    /// The room id.
    pub room: &'a str,
    /// The user id.
    pub user: &'a str,
}

/// The key of the presence `at` now holds `socket`, expiring at `expire_at`. Announces a `join` when
/// the presence became live, and a `force-leave`/`replaced` for the socket it replaced. Returns
/// the events, the room's live count afterwards, and what the index held before.
pub fn observed(
    index: &mut RoomIndex,
    at: PresenceRef<'_>,
    socket: &str,
    expire_at: i64,
    cutoff: i64,
) -> (Vec<Event>, usize, Previous) {
    let PresenceRef { db, room, user } = at;
    let (previous, count) = index.upsert_counted(room, user, socket, expire_at, Some(cutoff));
    let live = expire_at > cutoff;
    let was_live = match &previous {
        Previous::Same { expire_at } => *expire_at > cutoff,
        Previous::Absent | Previous::Other(_) => false,
    };
    let mut events = Vec::new();
    if let Previous::Other(old) = &previous {
        events.push(Event::ended(
            db,
            room,
            user,
            &old.socket,
            count,
            Reason::Replaced,
        ));
    }
    if live && !was_live {
        events.push(Event::join(db, room, user, socket, count));
    }
    (events, count, previous)
}

/// The key of the presence `at` is gone (or no longer a presence) for `reason`. Announces the end
/// of the presence the index held, if any.
pub fn removed(
    index: &mut RoomIndex,
    at: PresenceRef<'_>,
    reason: Reason,
    cutoff: i64,
) -> Vec<Event> {
    let PresenceRef { db, room, user } = at;
    match index.remove_counted(room, user, cutoff) {
        Some((old, count)) => vec![Event::ended(db, room, user, &old.socket, count, reason)],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::liveness::NO_TTL;

    fn at<'a>(db: i32, room: &'a str, user: &'a str) -> PresenceRef<'a> {
        PresenceRef { db, room, user }
    }

    fn names(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.name).collect()
    }

    #[test]
    fn a_new_live_presence_joins() {
        let mut index = RoomIndex::new();
        let (events, count, previous) = observed(&mut index, at(0, "r", "u"), "s", 1000, 0);
        assert_eq!(previous, Previous::Absent);
        assert_eq!(count, 1);
        assert_eq!(events, vec![Event::join(0, "r", "u", "s", 1)]);
    }

    #[test]
    fn a_refresh_is_silent_and_a_revival_joins() {
        let mut index = RoomIndex::new();
        observed(&mut index, at(0, "r", "u"), "s", 1000, 0);
        assert!(observed(&mut index, at(0, "r", "u"), "s", 2000, 500)
            .0
            .is_empty());
        assert_eq!(
            names(&observed(&mut index, at(0, "r", "u"), "s", 5000, 3000).0),
            ["join"]
        );
    }

    #[test]
    fn a_new_presence_that_is_not_live_is_indexed_silently() {
        let mut index = RoomIndex::new();
        assert!(observed(&mut index, at(0, "r", "u"), "s", NO_TTL, 0)
            .0
            .is_empty());
        assert!(observed(&mut index, at(0, "r", "v"), "s", 10, 50)
            .0
            .is_empty());
        assert_eq!(index.entries(), 2);
        assert_eq!(index.count("r", 50), 0);
    }

    #[test]
    fn another_socket_replaces() {
        let mut index = RoomIndex::new();
        observed(&mut index, at(0, "r", "u"), "old", 1000, 0);
        let (events, _, _) = observed(&mut index, at(0, "r", "u"), "new", 2000, 0);
        assert_eq!(
            events,
            vec![
                Event::ended(0, "r", "u", "old", 1, Reason::Replaced),
                Event::join(0, "r", "u", "new", 1),
            ]
        );
    }

    #[test]
    fn removal_announces_once_with_the_count_after() {
        let mut index = RoomIndex::new();
        observed(&mut index, at(2, "r", "a"), "sa", 1000, 0);
        observed(&mut index, at(2, "r", "b"), "sb", 1000, 0);
        let events = removed(&mut index, at(2, "r", "a"), Reason::Deleted, 0);
        assert_eq!(
            events,
            vec![Event::ended(2, "r", "a", "sa", 1, Reason::Deleted)]
        );
        assert!(removed(&mut index, at(2, "r", "a"), Reason::Deleted, 0).is_empty());
    }
}
