//! Presence data (§12) against a real server: `PRESENCE.JOIN … DATA`, `PRESENCE.UPDATE`,
//! `PRESENCE.LIST … WITHDATA`, `presence.max-data`, the data keys beside the presence keys, and
//! every way a presence ends taking its data key with it.
//!
//! Nothing here depends on how fast the machine is: what a sweeper tick removes is waited for
//! with a deadline.

use std::time::Duration;
use test_support::{wait_for, Conn, Options, Reply, Server, Subscriber};

const INVALID: &str = "ERR data must be one JSON value";
const ADA: &str = r#"{"name":"Ada","role":"host"}"#;
const BOB: &str = r#"{"name":"Bob"}"#;

/// Sweeps every 50 ms; presences stay live for the default 90 s.
fn ticking() -> Options {
    Options::default().module("presence.sweep-interval", "50")
}

fn presence_key(room: &str, user: &str) -> String {
    format!("room:presence:{room}:{user}")
}

fn data_key(room: &str, user: &str) -> String {
    format!("room:presence-data:{room}:{user}")
}

/// Every data key of the selected database, sorted.
fn data_keys(c: &mut Conn) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = c.call(&[
            "SCAN",
            &cursor,
            "MATCH",
            "room:presence-data:*",
            "COUNT",
            "1000",
        ]);
        let Reply::Array(Some(parts)) = reply else {
            panic!("SCAN reply: {reply:?}");
        };
        cursor = parts[0].text().unwrap_or_default();
        keys.extend(parts[1].strings());
        if cursor == "0" {
            break;
        }
    }
    keys.sort();
    keys
}

/// Every data key has its presence key beside it, with exactly the same absolute expiry.
fn assert_data_follows_presences(c: &mut Conn) {
    for key in data_keys(c) {
        let presence = key.replacen("room:presence-data:", "room:presence:", 1);
        let data_at = c.int(&["PEXPIRETIME", &key]);
        let presence_at = c.int(&["PEXPIRETIME", &presence]);
        assert!(presence_at > 0, "{key} outlives {presence} ({presence_at})");
        assert_eq!(data_at, presence_at, "{key} expires apart from {presence}");
    }
}

/// Waits until the data key of (room, user) is gone.
fn wait_data_gone(c: &mut Conn, room: &str, user: &str, path: &str) {
    let key = data_key(room, user);
    wait_for(
        Duration::from_secs(30),
        &format!("{key} to go ({path})"),
        || (c.int(&["EXISTS", &key]) == 0).then_some(()),
    );
}

#[test]
fn join_with_data_writes_a_data_key_with_the_presence_expiry() {
    let server = Server::start();
    let mut c = server.conn();
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "u", "s", "DATA", ADA]), 1);
    assert_eq!(c.text(&["GET", &data_key("r", "u")]).as_deref(), Some(ADA));
    assert_eq!(
        c.text(&["GET", &presence_key("r", "u")]).as_deref(),
        Some("s")
    );
    assert_data_follows_presences(&mut c);
    assert_eq!(c.info_field("presence", "presence_data_keys"), "1");
    assert_eq!(c.info_field("presence", "presence_data_checks"), "0");
    let scanned = c.call(&["SCAN", "0", "MATCH", "room:presence:r:*", "COUNT", "100"]);
    let Reply::Array(Some(parts)) = scanned else {
        panic!("{scanned:?}");
    };
    assert_eq!(
        parts[1].strings(),
        [presence_key("r", "u")],
        "the seed's SCAN does not match data keys"
    );
    assert_eq!(
        c.int(&["PRESENCE.JOIN", "r", "u", "s", "data", "[1, 2.5e3, null]"]),
        1,
        "the token is case-insensitive"
    );
    assert_eq!(
        c.text(&["GET", &data_key("r", "u")]).as_deref(),
        Some("[1, 2.5e3, null]")
    );
    assert_data_follows_presences(&mut c);
}

#[test]
fn errors_are_exact_and_write_nothing() {
    let server = Server::start();
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s", "DATA", ADA]);
    let before = (c.int(&["DBSIZE"]), c.text(&["GET", &data_key("r", "u")]));
    for bad in [
        "",
        "{",
        "{\"a\":}",
        "[1,]",
        "'a'",
        "1 2",
        "nul",
        "{\"a\":1}}",
        "\"\u{1}\"",
    ] {
        assert_eq!(
            c.err(&["PRESENCE.JOIN", "r", "v", "s", "DATA", bad]),
            INVALID,
            "JOIN {bad:?}"
        );
        assert_eq!(
            c.err(&["PRESENCE.UPDATE", "r", "u", "s", bad]),
            INVALID,
            "UPDATE {bad:?}"
        );
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    c.call(&["CONFIG", "SET", "presence.max-data", "65536"]);
    assert_eq!(
        c.err(&["PRESENCE.UPDATE", "r", "u", "s", &deep[..65536]]),
        INVALID,
        "nesting is bounded"
    );
    c.call(&["CONFIG", "SET", "presence.max-data", "1024"]);
    let big = format!("\"{}\"", "x".repeat(1023));
    assert_eq!(
        c.err(&["PRESENCE.JOIN", "r", "v", "s", "DATA", &big]),
        "ERR data too large: 1025 bytes, presence.max-data is 1024"
    );
    assert_eq!(
        c.err(&["PRESENCE.UPDATE", "r", "u", "s", &big]),
        "ERR data too large: 1025 bytes, presence.max-data is 1024"
    );
    let fits = format!("\"{}\"", "x".repeat(1022));
    assert_eq!(
        c.int(&["PRESENCE.JOIN", "r", "w", "s", "DATA", &fits]),
        2,
        "1024 bytes fit"
    );
    c.int(&["PRESENCE.LEAVE", "r", "w", "s"]);
    c.call(&["CONFIG", "SET", "presence.max-data", "0"]);
    assert_eq!(
        c.err(&["PRESENCE.JOIN", "r", "v", "s", "DATA", "1"]),
        "ERR data too large: 1 bytes, presence.max-data is 0"
    );
    assert_eq!(
        c.err(&["PRESENCE.UPDATE", "r", "u", "s", "{}"]),
        "ERR data too large: 2 bytes, presence.max-data is 0"
    );
    assert_eq!(
        c.int(&["PRESENCE.JOIN", "r", "x", "s"]),
        2,
        "no data is fine"
    );
    c.int(&["PRESENCE.LEAVE", "r", "x", "s"]);
    c.call(&["CONFIG", "SET", "presence.max-data", "1024"]);
    assert_eq!(
        c.err(&["PRESENCE.JOIN", "r", "v", "s", "DATA"]),
        "ERR syntax error"
    );
    assert_eq!(
        c.err(&["PRESENCE.JOIN", "r", "v", "s", "META", "1"]),
        "ERR syntax error"
    );
    assert!(c
        .err(&["PRESENCE.UPDATE", "r", "u", "s"])
        .starts_with("ERR wrong number of arguments"));
    assert!(c
        .err(&["PRESENCE.UPDATE", "r:x", "u", "s", "1"])
        .starts_with("ERR invalid room id"));
    assert_eq!(
        (c.int(&["DBSIZE"]), c.text(&["GET", &data_key("r", "u")])),
        before,
        "an error writes nothing"
    );
    assert!(c
        .err(&["CONFIG", "SET", "presence.max-data", "65537"])
        .starts_with("ERR"));
    assert_eq!(
        c.strings(&["CONFIG", "GET", "presence.max-data"]),
        ["presence.max-data", "1024"]
    );
}

#[test]
fn update_replaces_live_data_and_keeps_the_expiry() {
    let server = Server::with(Options::default().module("presence.sweep-interval", "100000"));
    let mut sub = Subscriber::new(&server, 0);
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s", "DATA", ADA]);
    c.int(&["PRESENCE.JOIN", "r", "v", "t"]);
    sub.take(2);
    let expiry = c.int(&["PEXPIRETIME", &presence_key("r", "u")]);
    assert_eq!(c.int(&["PRESENCE.UPDATE", "r", "u", "s", BOB]), 1);
    assert_eq!(c.text(&["GET", &data_key("r", "u")]).as_deref(), Some(BOB));
    assert_eq!(c.int(&["PEXPIRETIME", &presence_key("r", "u")]), expiry);
    assert_eq!(c.int(&["PEXPIRETIME", &data_key("r", "u")]), expiry);
    assert_eq!(
        c.int(&["PRESENCE.UPDATE", "r", "u", "s", BOB]),
        1,
        "the same data"
    );
    assert_eq!(
        c.int(&["PRESENCE.UPDATE", "r", "v", "t", "true"]),
        1,
        "first data"
    );
    assert_eq!(
        c.text(&["GET", &data_key("r", "v")]).as_deref(),
        Some("true")
    );
    assert_data_follows_presences(&mut c);
    let events = sub.take(2);
    assert_eq!(
        events
            .iter()
            .map(|e| (e.channel.as_str(), e.payload.as_str()))
            .collect::<Vec<_>>(),
        [
            (
                "__presence@0__:update",
                r#"{"room":"r","user":"u","socket":"s","count":2,"data":{"name":"Bob"}}"#
            ),
            (
                "__presence@0__:update",
                r#"{"room":"r","user":"v","socket":"t","count":2,"data":true}"#
            ),
        ],
        "one update each, none for the same data"
    );
    assert_eq!(c.int(&["PRESENCE.UPDATE", "r", "u", "other", "1"]), 0);
    assert_eq!(c.int(&["PRESENCE.UPDATE", "r", "nobody", "s", "1"]), 0);
    assert_eq!(c.int(&["EXISTS", &data_key("r", "nobody")]), 0);
    assert_eq!(c.text(&["GET", &data_key("r", "u")]).as_deref(), Some(BOB));
    assert!(sub.drain(Duration::from_millis(200)).is_empty());
    // Stale after 1 s from now on; the sweeper does not tick: UPDATE finds it dead and removes
    // both keys.
    c.call(&["CONFIG", "SET", "presence.stale-after", "1"]);
    wait_for(Duration::from_secs(30), "u to go stale", || {
        (c.int(&["PRESENCE.COUNT", "r"]) == 0).then_some(())
    });
    assert_eq!(c.int(&["PRESENCE.UPDATE", "r", "u", "s", "2"]), 0);
    assert_eq!(c.int(&["EXISTS", &presence_key("r", "u")]), 0);
    assert_eq!(c.int(&["EXISTS", &data_key("r", "u")]), 0);
    let gone = sub.expect();
    assert_eq!(gone.channel, "__presence@0__:force-leave");
    assert!(gone.payload.contains(r#""user":"u""#), "{}", gone.payload);
    assert!(
        gone.payload.ends_with(r#""reason":"stale"}"#),
        "{}",
        gone.payload
    );
    assert_eq!(c.int(&["PRESENCE.BEAT", "r", "v", "t"]), 0);
    assert_eq!(
        c.int(&["EXISTS", &data_key("r", "v")]),
        0,
        "BEAT of a stale one"
    );
}

#[test]
fn beat_moves_the_data_key_with_the_presence() {
    let server = Server::start();
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s", "DATA", ADA]);
    let before = c.int(&["PEXPIRETIME", &data_key("r", "u")]);
    wait_for(Duration::from_secs(10), "the clock to move", || {
        c.call(&["PRESENCE.BEAT", "r", "u", "s"]);
        (c.int(&["PEXPIRETIME", &presence_key("r", "u")]) > before).then_some(())
    });
    assert_data_follows_presences(&mut c);
    assert_eq!(c.text(&["GET", &data_key("r", "u")]).as_deref(), Some(ADA));
    assert_eq!(c.int(&["PRESENCE.BEAT", "r", "u", "other"]), 0);
    assert_eq!(c.text(&["GET", &data_key("r", "u")]).as_deref(), Some(ADA));
}

#[test]
fn list_withdata_follows_each_user_with_its_data_or_null() {
    let server = Server::start();
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "a", "sa", "DATA", ADA]);
    c.int(&["PRESENCE.JOIN", "r", "b", "sb"]);
    c.int(&["PRESENCE.JOIN", "r", "c", "sc", "DATA", "[3]"]);
    let list = |c: &mut Conn, args: &[&str]| -> Vec<Option<String>> {
        let mut command = vec!["PRESENCE.LIST", "r"];
        command.extend_from_slice(args);
        match c.call(&command) {
            Reply::Array(Some(parts)) => parts.iter().map(Reply::text).collect(),
            other => panic!("{other:?}"),
        }
    };
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        list(&mut c, &["WITHDATA"]),
        [
            some("a"),
            some(ADA),
            some("b"),
            None,
            some("c"),
            some("[3]")
        ]
    );
    assert_eq!(
        list(&mut c, &["WITHDATA", "WITHSOCKETS", "LIMIT", "2"]),
        [
            some("a"),
            some("sa"),
            some(ADA),
            some("b"),
            some("sb"),
            None
        ]
    );
    assert_eq!(
        list(&mut c, &["AFTER", "b", "withdata"]),
        [some("c"), some("[3]")]
    );
    assert_eq!(list(&mut c, &[]), [some("a"), some("b"), some("c")]);
    assert_eq!(
        c.err(&["PRESENCE.LIST", "r", "WITHDATA", "WITHDATA"]),
        "ERR syntax error"
    );
    assert_eq!(list(&mut c, &["WITHDATA"]).len(), 6);
    c.call(&["SET", &data_key("r", "nobody"), "1", "EX", "100"]);
    assert_eq!(
        list(&mut c, &["WITHDATA"]).len(),
        6,
        "a data key without a presence is never listed"
    );
    let empty = c.call(&["PRESENCE.LIST", "empty", "WITHDATA"]);
    assert_eq!(empty, Reply::Array(Some(vec![])));
}

#[test]
fn join_events_carry_data_and_a_join_again_with_other_data_updates() {
    let server = Server::start();
    let mut sub = Subscriber::new(&server, 0);
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s", "DATA", ADA]);
    c.int(&["PRESENCE.JOIN", "r", "v", "t"]);
    c.int(&["PRESENCE.JOIN", "r", "u", "s", "DATA", ADA]);
    c.int(&["PRESENCE.JOIN", "r", "u", "s", "DATA", BOB]);
    c.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    c.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    let events: Vec<(String, String)> = sub
        .take(4)
        .into_iter()
        .map(|e| (e.channel, e.payload))
        .collect();
    let event = |name: &str, payload: &str| (format!("__presence@0__:{name}"), payload.to_string());
    assert_eq!(
        events,
        [
            event(
                "join",
                r#"{"room":"r","user":"u","socket":"s","count":1,"data":{"name":"Ada","role":"host"}}"#
            ),
            event("join", r#"{"room":"r","user":"v","socket":"t","count":2}"#),
            event(
                "update",
                r#"{"room":"r","user":"u","socket":"s","count":2,"data":{"name":"Bob"}}"#
            ),
            event(
                "update",
                r#"{"room":"r","user":"u","socket":"s","count":2,"data":null}"#
            ),
        ]
    );
    assert_eq!(c.int(&["EXISTS", &data_key("r", "u")]), 0);
}

#[test]
fn room_channels_carry_data_too() {
    let server = Server::with(Options::default().module("presence.events", "room"));
    let mut sub = Subscriber::rooms(&server, 0, &["r"]);
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s", "DATA", "[1]"]);
    c.int(&["PRESENCE.UPDATE", "r", "u", "s", "[2]"]);
    let events: Vec<String> = sub.take(2).into_iter().map(|e| e.payload).collect();
    assert_eq!(
        events,
        [
            r#"{"room":"r","user":"u","socket":"s","count":1,"data":[1],"event":"join"}"#,
            r#"{"room":"r","user":"u","socket":"s","count":1,"data":[2],"event":"update"}"#,
        ]
    );
}

/// One way a presence ends, run on (room, user) = ("r", <user>) joined by socket "s" with data.
struct Path {
    name: &'static str,
    end: fn(&mut Conn, &str),
}

fn cmd(c: &mut Conn, args: &[&str]) {
    let reply = c.call(args);
    assert!(!matches!(reply, Reply::Error(_)), "{args:?}: {reply:?}");
}

#[test]
fn every_end_of_a_presence_removes_its_data_key() {
    let server = Server::with(ticking());
    let mut c = server.conn();
    let paths = [
        Path {
            name: "leave",
            end: |c, u| cmd(c, &["PRESENCE.LEAVE", "r", u, "s"]),
        },
        Path {
            name: "join without data",
            end: |c, u| cmd(c, &["PRESENCE.JOIN", "r", u, "s"]),
        },
        Path {
            name: "join by another socket",
            end: |c, u| cmd(c, &["PRESENCE.JOIN", "r", u, "other"]),
        },
        Path {
            name: "raw DEL",
            end: |c, u| cmd(c, &["DEL", &presence_key("r", u)]),
        },
        Path {
            name: "raw UNLINK",
            end: |c, u| cmd(c, &["UNLINK", &presence_key("r", u)]),
        },
        Path {
            name: "raw RENAME",
            end: |c, u| cmd(c, &["RENAME", &presence_key("r", u), "elsewhere"]),
        },
        Path {
            name: "raw SET by another socket",
            end: |c, u| cmd(c, &["SET", &presence_key("r", u), "raw", "EX", "21600"]),
        },
        Path {
            name: "raw SET by the same socket",
            end: |c, u| cmd(c, &["SET", &presence_key("r", u), "s", "EX", "21600"]),
        },
        Path {
            name: "raw SET of another type",
            end: |c, u| {
                cmd(c, &["DEL", &presence_key("r", u)]);
                cmd(c, &["SADD", &presence_key("r", u), "x"]);
            },
        },
        Path {
            name: "raw PERSIST",
            end: |c, u| cmd(c, &["PERSIST", &presence_key("r", u)]),
        },
        Path {
            name: "raw PEXPIRE to the past",
            end: |c, u| cmd(c, &["PEXPIRE", &presence_key("r", u), "1"]),
        },
        Path {
            name: "MOVE to another db",
            end: |c, u| cmd(c, &["MOVE", &presence_key("r", u), "3"]),
        },
    ];
    for (i, path) in paths.iter().enumerate() {
        let user = format!("u{i}");
        assert_eq!(
            c.int(&["PRESENCE.JOIN", "r", &user, "s", "DATA", ADA]),
            1,
            "{}",
            path.name
        );
        (path.end)(&mut c, &user);
        wait_data_gone(&mut c, "r", &user, path.name);
        assert_data_follows_presences(&mut c);
        c.call(&["DEL", &presence_key("r", &user), "elsewhere"]);
    }
    c.call(&["SELECT", "3"]);
    assert_eq!(data_keys(&mut c), Vec::<String>::new());
}

#[test]
fn the_sweeper_takes_the_data_of_stale_expired_and_node_down_presences() {
    let server = Server::with(Options::default().fast(1, 50));
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "stale", "s", "DATA", "1"]);
    wait_data_gone(&mut c, "r", "stale", "stale");
    assert_eq!(c.int(&["EXISTS", &presence_key("r", "stale")]), 0);

    c.int(&["PRESENCE.LEASE", "web-1", "100000"]);
    c.int(&["PRESENCE.JOIN", "r", "held", "web-1/s", "DATA", "2"]);
    c.int(&["PRESENCE.LEASE", "web-1", "0"]);
    wait_data_gone(&mut c, "r", "held", "node-down");
    assert_eq!(c.int(&["EXISTS", &presence_key("r", "held")]), 0);
    assert_data_follows_presences(&mut c);
}

#[test]
fn expiry_takes_both_keys() {
    let server = Server::with(Options::default().module("presence.ttl", "1").fast(0, 50));
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s", "DATA", "1"]);
    wait_data_gone(&mut c, "r", "u", "expiry");
    wait_for(Duration::from_secs(30), "the presence to expire", || {
        (c.int(&["EXISTS", &presence_key("r", "u")]) == 0).then_some(())
    });
}

#[test]
fn flushdb_and_swapdb_take_or_move_both_keys() {
    let server = Server::with(ticking());
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s", "DATA", ADA]);
    c.call(&["SWAPDB", "0", "1"]);
    assert_eq!(data_keys(&mut c), Vec::<String>::new());
    c.call(&["SELECT", "1"]);
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r", "WITHDATA"]),
        ["u", ADA],
        "the data moved with its presence"
    );
    assert_eq!(c.int(&["PRESENCE.UPDATE", "r", "u", "s", BOB]), 1);
    assert_eq!(c.int(&["PRESENCE.LEAVE", "r", "u", "s"]), 1);
    assert_eq!(data_keys(&mut c), Vec::<String>::new());
    c.int(&["PRESENCE.JOIN", "r", "v", "s", "DATA", ADA]);
    c.call(&["FLUSHDB"]);
    assert_eq!(c.int(&["DBSIZE"]), 0);
    c.int(&["PRESENCE.JOIN", "r", "v", "s"]);
    assert_eq!(
        c.call(&["PRESENCE.LIST", "r", "WITHDATA"]),
        Reply::Array(Some(vec![
            Reply::Bulk(Some(b"v".to_vec())),
            Reply::Bulk(None)
        ]))
    );
}

#[test]
fn eviction_leaves_no_data_key_without_its_presence() {
    let server = Server::with(ticking().config("maxmemory-policy", "allkeys-random"));
    let mut c = server.conn();
    for i in 0..200 {
        c.int(&["PRESENCE.JOIN", "r", &format!("u{i}"), "s", "DATA", ADA]);
    }
    let used: u64 = c.info_field("memory", "used_memory").parse().unwrap();
    c.call(&["CONFIG", "SET", "maxmemory", &(used + 200_000).to_string()]);
    let big = "x".repeat(10_000);
    for i in 0..100 {
        c.call(&["SET", &format!("filler{i}"), big.as_str()]);
    }
    c.call(&["CONFIG", "SET", "maxmemory", "0"]);
    let live = c.int(&["PRESENCE.COUNT", "r"]);
    assert!(live < 200, "no presence evicted");
    wait_for(Duration::from_secs(30), "orphaned data keys to go", || {
        let orphans = data_keys(&mut c)
            .into_iter()
            .filter(|key| {
                let presence = key.replacen("room:presence-data:", "room:presence:", 1);
                c.int(&["EXISTS", &presence]) == 0
            })
            .count();
        (orphans == 0).then_some(())
    });
    assert_data_follows_presences(&mut c);
}

#[test]
fn a_reload_keeps_the_data_listed_and_drops_data_without_a_presence() {
    let server = Server::with(ticking());
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "a", "sa", "DATA", ADA]);
    c.int(&["PRESENCE.JOIN", "r", "b", "sb"]);
    c.int(&["PRESENCE.JOIN", "r", "c", "sc", "DATA", BOB]);
    c.call(&["SET", &data_key("r", "ghost"), "1", "EX", "1000"]);
    let before = c.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS", "WITHDATA"]);
    wait_data_gone(&mut c, "r", "ghost", "a raw data key without a presence");
    // No tick before the reload: the data key without a presence is saved and loaded.
    c.call(&["CONFIG", "SET", "presence.sweep-interval", "3600000"]);
    c.call(&["SET", &data_key("r", "ghost"), "1", "EX", "1000"]);
    assert_eq!(c.text(&["DEBUG", "RELOAD"]).as_deref(), Some("OK"));
    assert_eq!(c.int(&["EXISTS", &data_key("r", "ghost")]), 1);
    c.call(&["CONFIG", "SET", "presence.sweep-interval", "50"]);
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS", "WITHDATA"]),
        before
    );
    wait_data_gone(&mut c, "r", "ghost", "loaded without a presence");
    assert_data_follows_presences(&mut c);
    assert_eq!(c.int(&["PRESENCE.LEAVE", "r", "a", "sa"]), 1);
    assert_eq!(
        data_keys(&mut c),
        [data_key("r", "c")],
        "the loaded data keys are known"
    );
}

#[test]
fn module_load_into_a_server_with_data_keys_knows_them() {
    let server = Server::with(Options {
        without_module: true,
        ..Options::default()
    });
    let mut c = server.conn();
    let at = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 21_600_000)
        .to_string();
    c.call(&["SET", &presence_key("r", "a"), "sa", "PXAT", &at]);
    c.call(&["SET", &data_key("r", "a"), ADA, "PXAT", &at]);
    c.call(&["SET", &presence_key("r", "b"), "sb", "PXAT", &at]);
    c.call(&["SET", &data_key("r", "ghost"), "1", "PXAT", &at]);
    let module = test_support::module_path();
    let path = module.to_string_lossy();
    assert_eq!(
        c.text(&[
            "MODULE",
            "LOADEX",
            &path,
            "CONFIG",
            "presence.sweep-interval",
            "50"
        ])
        .as_deref(),
        Some("OK")
    );
    assert_eq!(
        c.call(&["PRESENCE.LIST", "r", "WITHDATA"]),
        Reply::Array(Some(vec![
            Reply::Bulk(Some(b"a".to_vec())),
            Reply::Bulk(Some(ADA.as_bytes().to_vec())),
            Reply::Bulk(Some(b"b".to_vec())),
            Reply::Bulk(None),
        ]))
    );
    wait_data_gone(&mut c, "r", "ghost", "no presence at MODULE LOAD");
    assert_eq!(c.int(&["PRESENCE.LEAVE", "r", "a", "sa"]), 1);
    assert_eq!(
        data_keys(&mut c),
        Vec::<String>::new(),
        "a's data was known"
    );
}

#[test]
fn a_raw_expire_of_the_presence_moves_its_data_key_at_the_next_tick() {
    let server = Server::with(ticking());
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s", "DATA", ADA]);
    for (command, ttl) in [("EXPIRE", "30000"), ("PEXPIRE", "25000000")] {
        assert_eq!(c.int(&[command, &presence_key("r", "u"), ttl]), 1);
        let presence_at = c.int(&["PEXPIRETIME", &presence_key("r", "u")]);
        wait_for(
            Duration::from_secs(30),
            &format!("the data key to follow {command}"),
            || (c.int(&["PEXPIRETIME", &data_key("r", "u")]) == presence_at).then_some(()),
        );
    }
    assert_eq!(c.text(&["GET", &data_key("r", "u")]).as_deref(), Some(ADA));
    c.call(&["EXPIRE", &presence_key("r", "u"), "5"]);
    wait_data_gone(&mut c, "r", "u", "a raw EXPIRE that made it stale");
}

#[test]
fn a_join_by_another_socket_with_data_replaces_the_data_and_keeps_it() {
    let server = Server::with(ticking());
    let mut sub = Subscriber::new(&server, 0);
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "old", "DATA", ADA]);
    c.call(&["DEL", &presence_key("r", "u")]);
    c.int(&["PRESENCE.JOIN", "r", "u", "new", "DATA", BOB]);
    c.int(&["PRESENCE.JOIN", "r", "u", "newer", "DATA", "[2]"]);
    let payloads: Vec<String> = sub.take(5).into_iter().map(|e| e.payload).collect();
    assert_eq!(
        payloads,
        [
            r#"{"room":"r","user":"u","socket":"old","count":1,"data":{"name":"Ada","role":"host"}}"#,
            r#"{"room":"r","user":"u","socket":"old","count":0,"reason":"deleted"}"#,
            r#"{"room":"r","user":"u","socket":"new","count":1,"data":{"name":"Bob"}}"#,
            r#"{"room":"r","user":"u","socket":"new","count":1,"reason":"replaced"}"#,
            r#"{"room":"r","user":"u","socket":"newer","count":1,"data":[2]}"#,
        ]
    );
    wait_for(Duration::from_secs(30), "the checks to run", || {
        (c.info_field("presence", "presence_data_checks") == "0").then_some(())
    });
    c.call(&["PRESENCE.SWEEP"]);
    assert_eq!(
        c.text(&["GET", &data_key("r", "u")]).as_deref(),
        Some("[2]")
    );
    assert_data_follows_presences(&mut c);
}

/// A JOIN without data after a raw DEL of a presence with data: the new presence has no data,
/// at once, before any tick removes the key the DEL left behind.
#[test]
fn a_join_without_data_after_a_raw_del_lists_no_data() {
    let server = Server::with(Options::default().module("presence.sweep-interval", "3600000"));
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "ada", "s1", "DATA", ADA]);
    c.int(&["DEL", &presence_key("r", "ada")]);
    c.int(&["PRESENCE.JOIN", "r", "ada", "s2"]);
    let listed = c.call(&["PRESENCE.LIST", "r", "WITHDATA"]);
    assert_eq!(
        listed,
        Reply::Array(Some(vec![
            Reply::Bulk(Some(b"ada".to_vec())),
            Reply::Bulk(None)
        ])),
        "the old presence's data is not the new one's"
    );
    assert_eq!(c.int(&["EXISTS", &data_key("r", "ada")]), 0);
}

/// Data written over data of the same length or longer (in place) and over shorter data: the
/// key holds exactly the new data, with the presence's expiry, each time.
#[test]
fn updates_of_every_length_leave_exactly_the_new_data() {
    let server = Server::with(Options::default().module("presence.sweep-interval", "3600000"));
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "ada", "s1", "DATA", ADA]);
    let key = data_key("r", "ada");
    let expiry = c.int(&["PEXPIRETIME", &presence_key("r", "ada")]);
    let longer = r#"{"name":"Ada Lovelace","role":"host","status":"away"}"#;
    let same_length = r#"{"name":"Ada Lovelace","role":"host","status":"here"}"#;
    for data in [BOB, ADA, longer, same_length, "1", longer] {
        assert_eq!(c.int(&["PRESENCE.UPDATE", "r", "ada", "s1", data]), 1);
        assert_eq!(c.text(&["GET", &key]).as_deref(), Some(data));
        assert_eq!(c.int(&["STRLEN", &key]), data.len() as i64);
        assert_eq!(c.int(&["PEXPIRETIME", &key]), expiry, "after {data}");
    }
    c.int(&["PRESENCE.JOIN", "r", "ada", "s1", "DATA", BOB]);
    assert_eq!(c.text(&["GET", &key]).as_deref(), Some(BOB));
    assert_eq!(
        c.int(&["PEXPIRETIME", &key]),
        c.int(&["PEXPIRETIME", &presence_key("r", "ada")])
    );
}
