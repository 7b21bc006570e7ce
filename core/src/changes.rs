//! What a change of a presence key means: the index update and the events to announce.
//! Every path that changes a presence (the commands, the hooks that follow raw clients, the
//! sweeper) goes through these two functions, so that a change is announced the same way
//! whatever caused it.

use super::db::{Db, Prior};
use super::events::{Event, Reason};
use super::ids::Socket;
use super::liveness::Moment;

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
    index: &mut Db,
    at: PresenceRef<'_>,
    socket: Socket<'_>,
    expire_at: i64,
    now: Moment,
) -> (Vec<Event>, usize, Prior) {
    let PresenceRef { db, room, user } = at;
    let (previous, count) = index.upsert_counted(room, user, socket, expire_at, now);
    let node_up = index.node_up(socket, now);
    let live = node_up && expire_at > now.cutoff;
    let was_live = match &previous {
        Prior::Same { expire_at } => node_up && *expire_at > now.cutoff,
        Prior::Absent | Prior::Other { .. } => false,
    };
    let mut events = Vec::new();
    if let Prior::Other { socket: old } = &previous {
        index.data.orphan(room, user);
        events.push(Event::ended(db, room, user, old, count, Reason::Replaced));
    }
    if live && !was_live {
        events.push(Event::join(db, room, user, socket.full, count));
    }
    (events, count, previous)
}

/// The key of the presence `at` is gone (or no longer a presence) for `reason`. Announces the end
/// of the presence the index held, if any. Its data key, if it may have one, is left to check
/// ([`crate::data::DataKeys::orphan`]); so is that of a presence another socket took over.
pub fn removed(index: &mut Db, at: PresenceRef<'_>, reason: Reason, now: Moment) -> Vec<Event> {
    let PresenceRef { db, room, user } = at;
    match index.remove_counted(room, user, now) {
        Some((old, count)) => {
            index.data.orphan(room, user);
            vec![Event::ended(db, room, user, &old, count, reason)]
        }
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::liveness::NO_TTL;

    fn moment(cutoff: i64) -> Moment {
        Moment { now: 0, cutoff }
    }

    fn at<'a>(db: i32, room: &'a str, user: &'a str) -> PresenceRef<'a> {
        PresenceRef { db, room, user }
    }

    fn names(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.name).collect()
    }

    #[test]
    fn a_new_live_presence_joins() {
        let mut index = Db::default();
        let (events, count, previous) =
            observed(&mut index, at(0, "r", "u"), "s".into(), 1000, moment(0));
        assert_eq!(previous, Prior::Absent);
        assert_eq!(count, 1);
        assert_eq!(events, vec![Event::join(0, "r", "u", "s", 1)]);
    }

    #[test]
    fn a_refresh_is_silent_and_a_revival_joins() {
        let mut index = Db::default();
        observed(&mut index, at(0, "r", "u"), "s".into(), 1000, moment(0));
        assert!(
            observed(&mut index, at(0, "r", "u"), "s".into(), 2000, moment(500))
                .0
                .is_empty()
        );
        assert_eq!(
            names(&observed(&mut index, at(0, "r", "u"), "s".into(), 5000, moment(3000)).0),
            ["join"]
        );
    }

    #[test]
    fn a_new_presence_that_is_not_live_is_indexed_silently() {
        let mut index = Db::default();
        assert!(
            observed(&mut index, at(0, "r", "u"), "s".into(), NO_TTL, moment(0))
                .0
                .is_empty()
        );
        assert!(
            observed(&mut index, at(0, "r", "v"), "s".into(), 10, moment(50))
                .0
                .is_empty()
        );
        assert_eq!(index.rooms.entries(), 2);
        assert_eq!(index.count("r", moment(50)), 0);
    }

    #[test]
    fn another_socket_replaces() {
        let mut index = Db::default();
        observed(&mut index, at(0, "r", "u"), "old".into(), 1000, moment(0));
        let (events, _, _) = observed(&mut index, at(0, "r", "u"), "new".into(), 2000, moment(0));
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
        let mut index = Db::default();
        observed(&mut index, at(2, "r", "a"), "sa".into(), 1000, moment(0));
        observed(&mut index, at(2, "r", "b"), "sb".into(), 1000, moment(0));
        let events = removed(&mut index, at(2, "r", "a"), Reason::Deleted, moment(0));
        assert_eq!(
            events,
            vec![Event::ended(2, "r", "a", "sa", 1, Reason::Deleted)]
        );
        assert!(removed(&mut index, at(2, "r", "a"), Reason::Deleted, moment(0)).is_empty());
    }
}
