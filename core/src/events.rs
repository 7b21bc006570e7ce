//! The events the module publishes, their channels and their JSON payloads: the global channels
//! `__presence@<db>__:<event>` and the per-room channels `__presence@<db>__:{<room>}` (sharded
//! pub/sub), chosen by `presence.events` ([`Channels`]).

use super::liveness::DeadReason;
use std::fmt::Write;

/// Why a presence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `PRESENCE.LEAVE`: a clean leave.
    Leave,
    /// The key was deleted by a client (`DEL`, `UNLINK`, `RENAME` or `MOVE` away, …).
    Deleted,
    /// No heartbeat within `presence.stale-after`.
    Stale,
    /// The key's TTL ran out.
    Expired,
    /// Another socket joined as the same user in the same room.
    Replaced,
    /// Redis evicted the key under `maxmemory`.
    Evicted,
    /// The key was found without a TTL.
    NoTtl,
    /// The lease of the node the socket was held through ended.
    NodeDown,
}

impl Reason {
    /// The reason as it appears in payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Leave => "leave",
            Reason::Deleted => "deleted",
            Reason::Stale => "stale",
            Reason::Expired => "expired",
            Reason::Replaced => "replaced",
            Reason::Evicted => "evicted",
            Reason::NoTtl => "no-ttl",
            Reason::NodeDown => "node-down",
        }
    }

    /// The event a presence that ended for this reason is announced as.
    pub fn event(self) -> &'static str {
        match self {
            Reason::Leave | Reason::Deleted => "leave",
            _ => "force-leave",
        }
    }
}

impl From<DeadReason> for Reason {
    fn from(dead: DeadReason) -> Reason {
        match dead {
            DeadReason::NoTtl => Reason::NoTtl,
            DeadReason::Expired => Reason::Expired,
            DeadReason::Stale => Reason::Stale,
            DeadReason::NodeDown => Reason::NodeDown,
        }
    }
}

/// Why a database's presences were replaced wholesale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// `FLUSHDB`.
    FlushDb,
    /// `FLUSHALL`, or the flush that starts a `DEBUG RELOAD` or a replica's full sync.
    FlushAll,
    /// `SWAPDB`.
    SwapDb,
    /// A load from RDB or AOF finished.
    Load,
}

impl ResetReason {
    /// The reason as it appears in payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetReason::FlushDb => "flushdb",
            ResetReason::FlushAll => "flushall",
            ResetReason::SwapDb => "swapdb",
            ResetReason::Load => "load",
        }
    }
}

/// Which channels events go to (`presence.events`, once `auto` is resolved by the mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    /// `__presence@<db>__:<event>` with `PUBLISH` (a standalone server's default).
    Global,
    /// `__presence@<db>__:{<room>}` with sharded pub/sub (a cluster's default); `node-down` stays
    /// global.
    Room,
    /// Both.
    Both,
}

impl Channels {
    /// True when events go to the global channels.
    pub fn global(self) -> bool {
        matches!(self, Channels::Global | Channels::Both)
    }

    /// True when events go to the rooms' channels.
    pub fn room(self) -> bool {
        matches!(self, Channels::Room | Channels::Both)
    }
}

/// One event, ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The database number.
    pub db: i32,
    /// The event name: `join`, `update`, `leave`, `force-leave`, `reset` or `node-down`.
    pub name: &'static str,
    /// The JSON payload.
    pub payload: String,
    /// The room whose channel the event goes to, if any.
    pub room: Option<Box<str>>,
    /// True when the event goes to the global channel (every event but a room's `reset`).
    pub global: bool,
}

impl Event {
    /// A user became present in a room.
    pub fn join(db: i32, room: &str, user: &str, socket: &str, count: usize) -> Event {
        Event {
            db,
            name: "join",
            payload: presence_payload(room, user, socket, count, None),
            room: Some(room.into()),
            global: true,
        }
    }

    /// The data of a live presence changed (`PRESENCE.UPDATE`, or a JOIN again by the socket
    /// that holds it with other data): `data` is one JSON value, embedded as is (`null` when the
    /// presence has none now).
    pub fn update(
        db: i32,
        room: &str,
        user: &str,
        socket: &str,
        count: usize,
        data: Option<&str>,
    ) -> Event {
        let mut payload = presence_payload(room, user, socket, count, None);
        payload.pop();
        payload.push_str(",\"data\":");
        payload.push_str(data.unwrap_or("null"));
        payload.push('}');
        Event {
            db,
            name: "update",
            payload,
            room: Some(room.into()),
            global: true,
        }
    }

    /// Adds `"data":<data>` to the payload (a `join` whose presence has data; `data` is one
    /// JSON value, embedded as is).
    pub fn add_data(&mut self, data: &str) {
        self.payload.pop();
        self.payload.push_str(",\"data\":");
        self.payload.push_str(data);
        self.payload.push('}');
    }

    /// A presence ended (`leave` or `force-leave`, after its reason).
    pub fn ended(
        db: i32,
        room: &str,
        user: &str,
        socket: &str,
        count: usize,
        reason: Reason,
    ) -> Event {
        Event {
            db,
            name: reason.event(),
            payload: presence_payload(room, user, socket, count, Some(reason)),
            room: Some(room.into()),
            global: true,
        }
    }

    /// The database's presences were replaced wholesale.
    pub fn reset(db: i32, reason: ResetReason) -> Event {
        Event {
            db,
            name: "reset",
            payload: format!("{{\"reason\":\"{}\"}}", reason.as_str()),
            room: None,
            global: true,
        }
    }

    /// The `reset` of one room's channel: the database's presences were replaced wholesale
    /// while the room held some, or holds some now.
    pub fn room_reset(db: i32, room: &str, reason: ResetReason) -> Event {
        Event {
            db,
            name: "reset",
            payload: format!("{{\"room\":\"{room}\",\"reason\":\"{}\"}}", reason.as_str()),
            room: Some(room.into()),
            global: false,
        }
    }

    /// A node's lease ended; `presences` were held through it (each is removed with reason
    /// `node-down`).
    pub fn node_down(db: i32, node: &str, presences: usize) -> Event {
        Event {
            db,
            name: "node-down",
            payload: format!("{{\"node\":\"{node}\",\"presences\":{presences}}}"),
            room: None,
            global: true,
        }
    }

    /// The pub/sub channel: `__presence@<db>__:<event>`.
    pub fn channel(&self) -> String {
        format!("__presence@{}__:{}", self.db, self.name)
    }

    /// The room's channel, `__presence@<db>__:{<room>}` (its hash slot is the room's), when the
    /// event belongs to a room.
    pub fn room_channel(&self) -> Option<String> {
        let room = self.room.as_deref()?;
        Some(format!("__presence@{}__:{{{room}}}", self.db))
    }

    /// The payload on the room's channel: the global payload plus `"event":"<name>"`.
    pub fn room_payload(&self) -> String {
        let body = self.payload.strip_suffix('}').unwrap_or(&self.payload);
        format!("{body},\"event\":\"{}\"}}", self.name)
    }
}

/// The payload of a presence event. Ids are restricted to bytes that need no JSON escaping.
fn presence_payload(
    room: &str,
    user: &str,
    socket: &str,
    count: usize,
    reason: Option<Reason>,
) -> String {
    let mut out = String::with_capacity(64 + room.len() + user.len() + socket.len());
    let _ = write!(
        out,
        "{{\"room\":\"{room}\",\"user\":\"{user}\",\"socket\":\"{socket}\",\"count\":{count}"
    );
    if let Some(reason) = reason {
        let _ = write!(out, ",\"reason\":\"{}\"", reason.as_str());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_payload_and_channel() {
        let event = Event::join(0, "123", "45", "Xyz", 17);
        assert_eq!(event.channel(), "__presence@0__:join");
        assert_eq!(
            event.payload,
            r#"{"room":"123","user":"45","socket":"Xyz","count":17}"#
        );
    }

    #[test]
    fn ended_events_carry_their_reason() {
        let event = Event::ended(3, "123", "45", "Xyz", 17, Reason::Stale);
        assert_eq!(event.channel(), "__presence@3__:force-leave");
        assert_eq!(
            event.payload,
            r#"{"room":"123","user":"45","socket":"Xyz","count":17,"reason":"stale"}"#
        );
        assert_eq!(
            Event::ended(0, "r", "u", "s", 0, Reason::Leave).channel(),
            "__presence@0__:leave"
        );
        assert_eq!(
            Event::ended(0, "r", "u", "s", 0, Reason::Deleted).name,
            "leave"
        );
        for reason in [
            Reason::Stale,
            Reason::Expired,
            Reason::Replaced,
            Reason::Evicted,
            Reason::NoTtl,
            Reason::NodeDown,
        ] {
            assert_eq!(reason.event(), "force-leave");
        }
        assert_eq!(Reason::NodeDown.as_str(), "node-down");
        assert_eq!(Reason::from(DeadReason::NodeDown), Reason::NodeDown);
        assert_eq!(Reason::NoTtl.as_str(), "no-ttl");
        assert_eq!(Reason::from(DeadReason::Stale), Reason::Stale);
        assert_eq!(Reason::from(DeadReason::Expired), Reason::Expired);
        assert_eq!(Reason::from(DeadReason::NoTtl), Reason::NoTtl);
    }

    #[test]
    fn data_is_embedded_as_json() {
        let mut join = Event::join(0, "r", "u", "s", 2);
        join.add_data(r#"{"name":"Ada"}"#);
        assert_eq!(
            join.payload,
            r#"{"room":"r","user":"u","socket":"s","count":2,"data":{"name":"Ada"}}"#
        );
        assert_eq!(
            join.room_payload(),
            r#"{"room":"r","user":"u","socket":"s","count":2,"data":{"name":"Ada"},"event":"join"}"#
        );
        let update = Event::update(1, "r", "u", "s", 3, Some("[1]"));
        assert_eq!(update.channel(), "__presence@1__:update");
        assert_eq!(
            update.payload,
            r#"{"room":"r","user":"u","socket":"s","count":3,"data":[1]}"#
        );
        assert_eq!(
            Event::update(0, "r", "u", "s", 0, None).payload,
            r#"{"room":"r","user":"u","socket":"s","count":0,"data":null}"#
        );
    }

    #[test]
    fn node_down_payload() {
        let event = Event::node_down(0, "web-1.42", 17);
        assert_eq!(event.channel(), "__presence@0__:node-down");
        assert_eq!(event.payload, r#"{"node":"web-1.42","presences":17}"#);
    }

    #[test]
    fn room_channels_carry_the_event_name() {
        let join = Event::join(0, "123", "45", "Xyz", 17);
        assert_eq!(join.room_channel().as_deref(), Some("__presence@0__:{123}"));
        assert_eq!(
            join.room_payload(),
            r#"{"room":"123","user":"45","socket":"Xyz","count":17,"event":"join"}"#
        );
        let stale = Event::ended(2, "r", "u", "s", 0, Reason::Stale);
        assert_eq!(
            stale.room_payload(),
            r#"{"room":"r","user":"u","socket":"s","count":0,"reason":"stale","event":"force-leave"}"#
        );
        let reset = Event::room_reset(0, "r", ResetReason::FlushAll);
        assert!(!reset.global);
        assert_eq!(
            reset.room_payload(),
            r#"{"room":"r","reason":"flushall","event":"reset"}"#
        );
        assert_eq!(Event::reset(0, ResetReason::Load).room_channel(), None);
        assert_eq!(Event::node_down(0, "n", 1).room_channel(), None);
        assert!(Channels::Both.global() && Channels::Both.room());
        assert!(!Channels::Global.room() && !Channels::Room.global());
    }

    #[test]
    fn reset_payload() {
        let event = Event::reset(1, ResetReason::FlushAll);
        assert_eq!(event.channel(), "__presence@1__:reset");
        assert_eq!(event.payload, r#"{"reason":"flushall"}"#);
        assert_eq!(ResetReason::SwapDb.as_str(), "swapdb");
        assert_eq!(ResetReason::Load.as_str(), "load");
        assert_eq!(ResetReason::FlushDb.as_str(), "flushdb");
    }
}
