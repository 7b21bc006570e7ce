//! Every event and reason, as a pub/sub subscriber receives it, with every payload field.
//!
//! A test waits for the events it expects however late they come ([`Subscriber::take`]), and
//! listens for a moment ([`QUIET`]) only to check that nothing else came.

use std::time::Duration;
use test_support::{Conn, Options, Received, Server, Subscriber};

const QUIET: Duration = Duration::from_millis(300);

fn event(channel: &str, payload: &str) -> Received {
    Received {
        channel: channel.to_string(),
        payload: payload.to_string(),
    }
}

fn slow_sweeps() -> Options {
    Options::default().module("presence.sweep-interval", "3600000")
}

#[test]
fn join_leave_and_replace_from_the_commands() {
    let server = Server::with(slow_sweeps());
    let mut sub = Subscriber::new(&server, 0);
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "123", "45", "Xyz"]);
    c.int(&["PRESENCE.JOIN", "123", "46", "Abc"]);
    c.int(&["PRESENCE.JOIN", "123", "45", "Xyz"]);
    c.int(&["PRESENCE.BEAT", "123", "45", "Xyz"]);
    c.int(&["PRESENCE.JOIN", "123", "45", "New"]);
    c.int(&["PRESENCE.LEAVE", "123", "46", "Abc"]);
    c.int(&["PRESENCE.LEAVE", "123", "46", "Abc"]);
    assert_eq!(
        sub.take(5),
        vec![
            event(
                "__presence@0__:join",
                r#"{"room":"123","user":"45","socket":"Xyz","count":1}"#
            ),
            event(
                "__presence@0__:join",
                r#"{"room":"123","user":"46","socket":"Abc","count":2}"#
            ),
            event(
                "__presence@0__:force-leave",
                r#"{"room":"123","user":"45","socket":"Xyz","count":2,"reason":"replaced"}"#
            ),
            event(
                "__presence@0__:join",
                r#"{"room":"123","user":"45","socket":"New","count":2}"#
            ),
            event(
                "__presence@0__:leave",
                r#"{"room":"123","user":"46","socket":"Abc","count":1,"reason":"leave"}"#
            ),
        ]
    );
}

#[test]
fn raw_clients_join_refresh_replace_and_delete() {
    let server = Server::with(slow_sweeps());
    let mut sub = Subscriber::new(&server, 0);
    let mut c = server.conn();
    c.call(&["SET", "room:presence:r:u", "s1", "EX", "21600"]);
    c.call(&["SET", "room:presence:r:u", "s1", "EX", "21600"]);
    c.int(&["EXPIRE", "room:presence:r:u", "21600"]);
    c.call(&["SET", "room:presence:r:u", "s2", "EX", "21600"]);
    c.int(&["DEL", "room:presence:r:u"]);
    c.call(&["SET", "elsewhere", "x"]);
    assert_eq!(
        sub.take(4),
        vec![
            event(
                "__presence@0__:join",
                r#"{"room":"r","user":"u","socket":"s1","count":1}"#
            ),
            event(
                "__presence@0__:force-leave",
                r#"{"room":"r","user":"u","socket":"s1","count":1,"reason":"replaced"}"#
            ),
            event(
                "__presence@0__:join",
                r#"{"room":"r","user":"u","socket":"s2","count":1}"#
            ),
            event(
                "__presence@0__:leave",
                r#"{"room":"r","user":"u","socket":"s2","count":0,"reason":"deleted"}"#
            ),
        ]
    );
}

#[test]
fn events_carry_their_database() {
    let server = Server::with(slow_sweeps());
    let mut sub = Subscriber::new(&server, 4);
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "zero", "s"]);
    c.call(&["SELECT", "4"]);
    c.int(&["PRESENCE.JOIN", "r", "four", "s"]);
    assert_eq!(
        sub.take(1),
        vec![event(
            "__presence@4__:join",
            r#"{"room":"r","user":"four","socket":"s","count":1}"#
        )]
    );
}

#[test]
fn the_sweeper_announces_stale_and_no_ttl() {
    let server = Server::with(Options::default().fast(1, 50));
    let mut sub = Subscriber::new(&server, 0);
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    assert_eq!(
        sub.expect(),
        event(
            "__presence@0__:join",
            r#"{"room":"r","user":"u","socket":"s","count":1}"#
        )
    );
    assert_eq!(
        sub.expect(),
        event(
            "__presence@0__:force-leave",
            r#"{"room":"r","user":"u","socket":"s","count":0,"reason":"stale"}"#
        )
    );
    c.call(&["SET", "room:presence:r:v", "t"]);
    assert_eq!(
        sub.expect(),
        event(
            "__presence@0__:force-leave",
            r#"{"room":"r","user":"v","socket":"t","count":0,"reason":"no-ttl"}"#
        )
    );
    assert_eq!(c.int(&["DBSIZE"]), 0);
    assert!(sub.drain(QUIET).is_empty());
}

#[test]
fn expiry_announces_expired() {
    let server = Server::with(Options::default().fast(0, 3_600_000));
    let mut sub = Subscriber::new(&server, 0);
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    c.int(&["PEXPIRE", "room:presence:r:u", "100"]);
    assert_eq!(sub.expect().channel, "__presence@0__:join");
    assert_eq!(
        sub.expect(),
        event(
            "__presence@0__:force-leave",
            r#"{"room":"r","user":"u","socket":"s","count":0,"reason":"expired"}"#
        )
    );
}

#[test]
fn eviction_announces_evicted() {
    let server = Server::with(slow_sweeps().config("maxmemory-policy", "allkeys-random"));
    let mut c = server.conn();
    for i in 0..200 {
        c.int(&["PRESENCE.JOIN", "r", &format!("u{i}"), "s"]);
    }
    let mut sub = Subscriber::new(&server, 0);
    let used: u64 = c.info_field("memory", "used_memory").parse().unwrap();
    c.call(&["CONFIG", "SET", "maxmemory", &(used + 200_000).to_string()]);
    let big = "x".repeat(10_000);
    for i in 0..100 {
        c.call(&["SET", &format!("filler{i}"), big.as_str()]);
    }
    c.call(&["CONFIG", "SET", "maxmemory", "0"]);
    let evicted = 200 - c.int(&["PRESENCE.COUNT", "r"]) as usize;
    assert!(evicted > 0, "no presence evicted");
    let events = sub.take(evicted);
    assert_eq!(events.len(), evicted, "one event per evicted presence");
    assert!(
        events
            .iter()
            .all(|e| e.channel == "__presence@0__:force-leave"
                && e.payload.starts_with(r#"{"room":"r","user":"u"#)
                && e.payload.ends_with(r#""reason":"evicted"}"#)),
        "{events:?}"
    );
}

#[test]
fn flushes_swaps_and_reloads_announce_reset() {
    let server = Server::with(slow_sweeps());
    let mut sub0 = Subscriber::new(&server, 0);
    let mut sub1 = Subscriber::new(&server, 1);
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    c.call(&["FLUSHDB"]);
    c.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    c.call(&["FLUSHALL"]);
    c.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    c.call(&["SWAPDB", "0", "1"]);
    c.call(&["SELECT", "1"]);
    c.call(&["DEBUG", "RELOAD"]);
    let reset = |reason: &str, db: u32| {
        event(
            &format!("__presence@{db}__:reset"),
            &format!(r#"{{"reason":"{reason}"}}"#),
        )
    };
    let join = event(
        "__presence@0__:join",
        r#"{"room":"r","user":"u","socket":"s","count":1}"#,
    );
    assert_eq!(
        sub0.take(6),
        vec![
            join.clone(),
            reset("flushdb", 0),
            join.clone(),
            reset("flushall", 0),
            join,
            reset("swapdb", 0),
        ]
    );
    assert_eq!(
        sub1.take(3),
        vec![reset("swapdb", 1), reset("flushall", 1), reset("load", 1)]
    );
    assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["u"]);
}

#[test]
fn module_writes_send_keyspace_notifications_when_enabled() {
    let server = Server::with(slow_sweeps().config("notify-keyspace-events", "Kg$"));
    let mut sub = server.conn();
    sub.call(&["PSUBSCRIBE", "__keyspace@0__:room:presence:*"]);
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    c.int(&["PRESENCE.BEAT", "r", "u", "s"]);
    c.int(&["PRESENCE.LEAVE", "r", "u", "s"]);
    let key = "__keyspace@0__:room:presence:r:u";
    assert_eq!(
        keyspace_events(&mut sub, 4),
        [
            format!("{key} set"),
            format!("{key} expire"),
            format!("{key} expire"),
            format!("{key} del"),
        ]
    );
}

/// The next `n` keyspace notifications on `sub` (`<channel> <event>`), each of which may take
/// 30 s, then any other that comes before [`QUIET`] passes without one.
fn keyspace_events(sub: &mut Conn, n: usize) -> Vec<String> {
    let mut events = Vec::new();
    let mut wait = Duration::from_secs(30);
    while let Some(reply) = sub.read_within(wait) {
        let parts = reply.strings();
        events.push(format!("{} {}", parts[2], parts[3]));
        if events.len() == n {
            wait = QUIET;
        }
    }
    events
}

/// `presence.events` picks the channels on a standalone server too: the rooms' own sharded
/// channels (payload plus `"event"`), the global ones, or both; `CONFIG SET` switches at once,
/// and a database's `reset` stays on the global channel while each room gets its own.
#[test]
fn presence_events_chooses_the_global_or_the_rooms_channels() {
    let server = Server::with(slow_sweeps().module("presence.events", "room"));
    let mut c = server.conn();
    assert_eq!(
        c.strings(&["CONFIG", "GET", "presence.events"]),
        ["presence.events", "room"]
    );
    let mut rooms = Subscriber::rooms(&server, 0, &["r1", "r2"]);
    let mut global = Subscriber::new(&server, 0);
    c.int(&["PRESENCE.JOIN", "r1", "u", "s"]);
    c.int(&["PRESENCE.JOIN", "r2", "u", "s"]);
    assert_eq!(
        rooms.take(2),
        [
            event(
                "__presence@0__:{r1}",
                r#"{"room":"r1","user":"u","socket":"s","count":1,"event":"join"}"#
            ),
            event(
                "__presence@0__:{r2}",
                r#"{"room":"r2","user":"u","socket":"s","count":1,"event":"join"}"#
            ),
        ]
    );
    assert_eq!(global.drain(QUIET), []);
    assert_eq!(
        c.text(&["CONFIG", "SET", "presence.events", "both"])
            .as_deref(),
        Some("OK")
    );
    c.int(&["PRESENCE.LEAVE", "r1", "u", "s"]);
    assert_eq!(
        rooms.take(1),
        [event(
            "__presence@0__:{r1}",
            r#"{"room":"r1","user":"u","socket":"s","count":0,"reason":"leave","event":"leave"}"#
        )]
    );
    assert_eq!(
        global.take(1),
        [event(
            "__presence@0__:leave",
            r#"{"room":"r1","user":"u","socket":"s","count":0,"reason":"leave"}"#
        )]
    );
    assert_eq!(c.text(&["FLUSHALL"]).as_deref(), Some("OK"));
    assert_eq!(
        rooms.take(1),
        [event(
            "__presence@0__:{r2}",
            r#"{"room":"r2","reason":"flushall","event":"reset"}"#
        )]
    );
    assert_eq!(
        global.take(1),
        [event("__presence@0__:reset", r#"{"reason":"flushall"}"#)]
    );
    assert_eq!(
        c.text(&["CONFIG", "SET", "presence.events", "global"])
            .as_deref(),
        Some("OK")
    );
    c.int(&["PRESENCE.JOIN", "r1", "u", "s"]);
    assert_eq!(global.take(1).len(), 1);
    assert_eq!(rooms.drain(QUIET), []);
    let refused = c.err(&["CONFIG", "SET", "presence.events", "sideways"]);
    assert!(refused.contains("auto, global, room, both"), "{refused}");
}
