//! Node leases against a real server: `PRESENCE.LEASE`, joins through a node, every way a
//! lease ends (expired, deleted, released, evicted, persisted, overwritten), reads right after
//! the end and before any sweep, the `node-down` events, a random mix checked against the keys,
//! and leases across a replica and restarts from RDB and AOF.

use std::time::Duration;
use test_support::{wait_for, Conn, Options, Received, Reply, Rng, Server, Subscriber};

const QUIET: Duration = Duration::from_millis(300);
const NOLEASE: &str = "NOLEASE node web-1 holds no live lease";
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const BAD_MS: &str = "ERR the lease must be an integer of milliseconds from 0 to 86400000";
const BAD_NODE: &str = "ERR invalid node id: use 1 to 128 bytes of A-Z a-z 0-9 - _ . @ + = ~";

fn slow_sweeps() -> Options {
    Options::default().module("presence.sweep-interval", "3600000")
}

fn event(channel: &str, payload: &str) -> Received {
    Received {
        channel: channel.to_string(),
        payload: payload.to_string(),
    }
}

/// Joins `a` and `b` to room `r` through node `web-1` (leased for 100 s) and `c` without one.
fn two_through_a_node(c: &mut Conn) {
    assert_eq!(c.int(&["PRESENCE.LEASE", "web-1", "100000"]), 0);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "a", "web-1/sa"]), 1);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "b", "web-1/sb"]), 2);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "c", "sc"]), 3);
}

#[test]
fn lease_writes_a_plain_key_and_says_whether_one_was_live() {
    let server = Server::start();
    let mut c = server.conn();
    assert_eq!(c.int(&["PRESENCE.LEASE", "web-1", "10000"]), 0);
    assert_eq!(
        c.text(&["GET", "presence:node:web-1"]).as_deref(),
        Some("web-1")
    );
    let pttl = c.int(&["PTTL", "presence:node:web-1"]);
    assert!((5_000..=10_000).contains(&pttl), "{pttl}");
    assert_eq!(c.int(&["PRESENCE.LEASE", "web-1", "20000"]), 1);
    assert!(c.int(&["PTTL", "presence:node:web-1"]) > 10000);
    c.call(&["SET", "presence:node:web-1", "host-a pid 42", "KEEPTTL"]);
    assert_eq!(c.int(&["PRESENCE.LEASE", "web-1", "5000"]), 1);
    assert_eq!(
        c.text(&["GET", "presence:node:web-1"]).as_deref(),
        Some("host-a pid 42"),
        "the value is kept"
    );
    assert_eq!(c.int(&["PRESENCE.LEASE", "web-1", "0"]), 1);
    assert_eq!(c.int(&["EXISTS", "presence:node:web-1"]), 0);
    assert_eq!(c.int(&["PRESENCE.LEASE", "web-1", "0"]), 0);
    assert_eq!(c.int(&["EXISTS", "presence:node:web-1"]), 0);
    c.call(&["SET", "presence:node:web-1", "no ttl"]);
    assert_eq!(
        c.int(&["PRESENCE.LEASE", "web-1", "5000"]),
        0,
        "no TTL: no lease"
    );
    assert!(c.int(&["PTTL", "presence:node:web-1"]) > 0);
    assert_eq!(c.info_field("presence", "presence_leases"), "1");
}

#[test]
fn lease_refuses_bad_input_and_writes_nothing() {
    let server = Server::start();
    let mut c = server.conn();
    for ms in ["-1", "x", "", "1.5", "86400001", "+1"] {
        assert_eq!(c.err(&["PRESENCE.LEASE", "web-1", ms]), BAD_MS, "{ms:?}");
    }
    for node in ["", "a/b", "a:b", "a b"] {
        assert_eq!(
            c.err(&["PRESENCE.LEASE", node, "1000"]),
            BAD_NODE,
            "{node:?}"
        );
    }
    assert!(c
        .err(&["PRESENCE.LEASE", "web-1"])
        .starts_with("ERR wrong number of arguments"));
    c.call(&["RPUSH", "presence:node:web-2", "x"]);
    assert_eq!(c.err(&["PRESENCE.LEASE", "web-2", "1000"]), WRONGTYPE);
    assert_eq!(c.int(&["DBSIZE"]), 1);
}

#[test]
fn a_join_through_a_node_without_a_lease_is_refused_and_writes_nothing() {
    let server = Server::with(slow_sweeps());
    let mut sub = Subscriber::new(&server, 0);
    let mut c = server.conn();
    assert_eq!(c.err(&["PRESENCE.JOIN", "r", "a", "web-1/s"]), NOLEASE);
    c.int(&["PRESENCE.LEASE", "web-1", "30"]);
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(c.err(&["PRESENCE.JOIN", "r", "a", "web-1/s"]), NOLEASE);
    c.call(&["SET", "presence:node:web-1", "no ttl"]);
    assert_eq!(c.err(&["PRESENCE.JOIN", "r", "a", "web-1/s"]), NOLEASE);
    assert_eq!(c.int(&["EXISTS", "room:presence:r:a"]), 0);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
    assert!(sub.drain(QUIET).is_empty());
}

#[test]
fn a_raw_set_px_is_a_lease() {
    let server = Server::with(slow_sweeps());
    let mut c = server.conn();
    c.call(&["SET", "presence:node:web-1", "host-a", "PX", "10000"]);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "a", "web-1/s"]), 1);
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS"]),
        ["a", "web-1/s"]
    );
    assert_eq!(
        c.text(&["GET", "room:presence:r:a"]).as_deref(),
        Some("web-1/s")
    );
    assert_eq!(c.int(&["PRESENCE.LEASE", "web-1", "10000"]), 1);
    c.call(&["SET", "room:presence:r:b", "web-1/t", "EX", "21600"]);
    assert_eq!(
        c.int(&["PRESENCE.COUNT", "r"]),
        2,
        "a raw join through the node"
    );
}

/// Every way a lease can end, each leaving the lists and counts at once, before any sweep.
#[test]
fn every_end_of_a_lease_leaves_lists_and_counts_at_once() {
    let server = Server::with(slow_sweeps());
    let mut c = server.conn();
    let ends: [(&str, &[&[&str]]); 6] = [
        ("expired", &[&["PEXPIRE", "presence:node:web-1", "20"]]),
        ("deleted", &[&["DEL", "presence:node:web-1"]]),
        ("released", &[&["PRESENCE.LEASE", "web-1", "0"]]),
        ("persisted", &[&["PERSIST", "presence:node:web-1"]]),
        ("overwritten", &[&["SET", "presence:node:web-1", "x"]]),
        ("renamed", &[&["RENAME", "presence:node:web-1", "other"]]),
    ];
    for (end, commands) in ends {
        c.call(&["FLUSHALL"]);
        two_through_a_node(&mut c);
        for command in commands {
            assert!(!matches!(c.call(command), Reply::Error(_)), "{end}");
        }
        if end == "expired" {
            std::thread::sleep(Duration::from_millis(40));
        }
        assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 1, "{end}");
        assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["c"], "{end}");
        assert_eq!(
            c.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS", "LIMIT", "1"]),
            ["c", "sc"],
            "{end}"
        );
        assert_eq!(
            c.strings(&["PRESENCE.LIST", "r", "AFTER", "a"]),
            ["c"],
            "{end}"
        );
        assert_eq!(
            c.int(&["EXISTS", "room:presence:r:a"]),
            1,
            "{end}: not swept yet"
        );
        assert_eq!(c.int(&["PRESENCE.BEAT", "r", "a", "web-1/sa"]), 0, "{end}");
        assert_eq!(
            c.int(&["EXISTS", "room:presence:r:a"]),
            0,
            "{end}: removed by the beat"
        );
        assert_eq!(
            c.err(&["PRESENCE.JOIN", "r", "d", "web-1/sd"]),
            NOLEASE,
            "{end}"
        );
        assert_eq!(c.int(&["PRESENCE.SWEEP"]), 1, "{end}: b");
        assert_eq!(c.int(&["EXISTS", "room:presence:r:b"]), 0, "{end}");
        assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 1, "{end}");
        assert_eq!(c.info_field("presence", "presence_leases"), "0", "{end}");
    }
}

#[test]
fn the_sweeper_announces_the_end_once_and_force_leaves_each_presence() {
    let server = Server::with(Options::default().module("presence.sweep-interval", "50"));
    let mut c = server.conn();
    two_through_a_node(&mut c);
    c.int(&["PRESENCE.JOIN", "q", "a", "web-1/sq"]);
    let mut sub = Subscriber::new(&server, 0);
    c.int(&["PRESENCE.LEASE", "web-1", "0"]);
    let events = sub.take(4);
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(
        events[0],
        event(
            "__presence@0__:node-down",
            r#"{"node":"web-1","presences":3}"#
        )
    );
    let mut ends: Vec<String> = events[1..].iter().map(|e| e.payload.clone()).collect();
    ends.sort();
    assert_eq!(
        ends,
        [
            r#"{"room":"q","user":"a","socket":"web-1/sq","count":0,"reason":"node-down"}"#,
            r#"{"room":"r","user":"a","socket":"web-1/sa","count":1,"reason":"node-down"}"#,
            r#"{"room":"r","user":"b","socket":"web-1/sb","count":1,"reason":"node-down"}"#,
        ]
    );
    assert!(events[1..]
        .iter()
        .all(|e| e.channel == "__presence@0__:force-leave"));
    assert_eq!(c.info_field("presence", "presence_swept_node_down"), "3");
    assert_eq!(c.int(&["DBSIZE"]), 1, "only c is left");
    // A lease that comes back and ends again is announced again; one that ends with nothing
    // held says so.
    c.int(&["PRESENCE.LEASE", "web-1", "30"]);
    let next = sub.expect();
    assert_eq!(
        next,
        event(
            "__presence@0__:node-down",
            r#"{"node":"web-1","presences":0}"#
        )
    );
    assert!(sub.drain(QUIET).is_empty());
}

#[test]
fn an_evicted_lease_ends_the_presences_held_through_it() {
    let server = Server::with(slow_sweeps().config("maxmemory-policy", "volatile-ttl"));
    let mut c = server.conn();
    two_through_a_node(&mut c);
    let mut sub = Subscriber::new(&server, 0);
    let used: u64 = c.info_field("memory", "used_memory").parse().unwrap();
    c.call(&["CONFIG", "SET", "maxmemory", &(used + 50_000).to_string()]);
    let big = "x".repeat(60_000);
    c.call(&["SET", "filler", big.as_str()]);
    c.call(&["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(
        c.int(&["EXISTS", "presence:node:web-1"]),
        0,
        "the shortest TTL goes first"
    );
    let kept = c.int(&[
        "EXISTS",
        "room:presence:r:a",
        "room:presence:r:b",
        "room:presence:r:c",
    ]);
    let evicted: Vec<String> = sub
        .take(3 - kept as usize)
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert!(
        evicted.len() == 3 - kept as usize
            && evicted.iter().all(|p| p.contains(r#""reason":"evicted""#)),
        "one event per evicted presence: {evicted:?}"
    );
    let through_node = 2 - evicted.iter().filter(|p| p.contains("web-1/")).count() as i64;
    let c_left = c.int(&["EXISTS", "room:presence:r:c"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), c_left);
    assert_eq!(c.int(&["PRESENCE.SWEEP"]), through_node);
}

/// The liveness rule applied to what a snapshot of the keys says.
struct Snapshot {
    /// Per room, the live (user, socket) pairs in user order.
    rooms: Vec<Vec<(String, String)>>,
}

const ROOMS: usize = 5;
const USERS: usize = 24;
const NODES: usize = 6;

fn room(i: usize) -> String {
    format!("r{i}")
}

fn user(i: usize) -> String {
    format!("u{i:02}")
}

fn node(i: usize) -> String {
    format!("web-{i}")
}

/// Reads, in one MULTI, every room's listing and count, and the type, value and PTTL of every
/// presence and lease key the test may have written; checks that the listings and counts are
/// the liveness rule applied to those keys (a presence key is live when its TTL is above
/// `ttl - stale-after`, and, when it names a node, that node's lease exists with a TTL).
fn check_against_the_keys(c: &mut Conn, step: usize) {
    let mut commands: Vec<Vec<String>> = Vec::new();
    for r in 0..ROOMS {
        commands.push(vec!["PRESENCE.LIST".into(), room(r), "WITHSOCKETS".into()]);
        commands.push(vec!["PRESENCE.COUNT".into(), room(r)]);
    }
    for n in 0..NODES {
        commands.push(vec!["PTTL".into(), format!("presence:node:{}", node(n))]);
    }
    for r in 0..ROOMS {
        for u in 0..USERS {
            let key = format!("room:presence:{}:{}", room(r), user(u));
            commands.push(vec!["GET".into(), key.clone()]);
            commands.push(vec!["PTTL".into(), key]);
        }
    }
    c.call(&["MULTI"]);
    for command in &commands {
        c.call(command.as_slice());
    }
    let Reply::Array(Some(replies)) = c.call(&["EXEC"]) else {
        panic!("EXEC failed");
    };
    let (reads, keys) = replies.split_at(ROOMS * 2);
    let (leases, presences) = keys.split_at(NODES);
    let lease_live = |name: &str| {
        (0..NODES)
            .find(|&n| node(n) == name)
            .is_some_and(|n| leases[n].int() > 0)
    };
    let stale_pttl = (21600 - 90) * 1000;
    let mut expected = Snapshot { rooms: Vec::new() };
    for r in 0..ROOMS {
        let mut live = Vec::new();
        for u in 0..USERS {
            let at = (r * USERS + u) * 2;
            let Some(socket) = presences[at].text() else {
                continue;
            };
            let pttl = presences[at + 1].int();
            let node_ok = socket
                .split_once('/')
                .is_none_or(|(node, _)| lease_live(node));
            if pttl > stale_pttl && node_ok {
                live.push((user(u), socket));
            }
        }
        expected.rooms.push(live);
    }
    for r in 0..ROOMS {
        let listed: Vec<String> = reads[r * 2].strings();
        let flat: Vec<String> = expected.rooms[r]
            .iter()
            .flat_map(|(u, s)| [u.clone(), s.clone()])
            .collect();
        assert_eq!(listed, flat, "step {step}: room {r}");
        assert_eq!(
            reads[r * 2 + 1].int() as usize,
            expected.rooms[r].len(),
            "step {step}: count of room {r}"
        );
    }
}

/// Many nodes and rooms, leases that end every way and come back, joins, beats and leaves
/// through the nodes and without one, raw writes, and the sweeper running: after every few
/// commands the listings and counts equal the liveness rule applied to a snapshot of the keys.
#[test]
fn a_random_mix_of_lease_ends_and_renewals_matches_the_keys() {
    let server = Server::with(Options::default().module("presence.sweep-interval", "20"));
    let mut c = server.conn();
    let mut rng = Rng::new(0x1ea5e);
    for step in 0..2500 {
        let n = node(rng.below(NODES as u64) as usize);
        let r = room(rng.below(ROOMS as u64) as usize);
        let u = user(rng.below(USERS as u64) as usize);
        let socket = match rng.below(4) {
            0 => format!("s{}", rng.below(3)),
            _ => format!("{n}/s{}", rng.below(3)),
        };
        let lease_key = format!("presence:node:{n}");
        let presence_key = format!("room:presence:{r}:{u}");
        let command: Vec<String> = match rng.below(16) {
            0..=2 => vec!["PRESENCE.LEASE".into(), n, "60000".into()],
            3 => vec!["PRESENCE.LEASE".into(), n, "0".into()],
            4 => vec!["DEL".into(), lease_key],
            5 => vec!["PERSIST".into(), lease_key],
            6 => vec!["PEXPIRE".into(), lease_key, "1".into()],
            7 => vec![
                "SET".into(),
                lease_key,
                "raw".into(),
                "PX".into(),
                "60000".into(),
            ],
            8..=10 => vec!["PRESENCE.JOIN".into(), r, u, socket],
            11 => vec!["PRESENCE.BEAT".into(), r, u, socket],
            12 => vec!["PRESENCE.LEAVE".into(), r, u, socket],
            13 => vec![
                "SET".into(),
                presence_key,
                socket,
                "EX".into(),
                "21600".into(),
            ],
            14 => vec!["DEL".into(), presence_key],
            _ => vec!["PRESENCE.SWEEP".into()],
        };
        let reply = c.call(command.as_slice());
        if let Reply::Error(e) = &reply {
            assert!(e.starts_with("NOLEASE"), "step {step}: {command:?}: {e}");
        }
        if step % 5 == 0 {
            std::thread::sleep(Duration::from_millis(2));
            check_against_the_keys(&mut c, step);
        }
    }
    c.int(&["PRESENCE.SWEEP"]);
    check_against_the_keys(&mut c, 2500);
}

fn lease_and_join(c: &mut Conn) {
    c.int(&["PRESENCE.LEASE", "web-1", "100000"]);
    c.int(&["PRESENCE.LEASE", "web-2", "100000"]);
    c.int(&["PRESENCE.JOIN", "r", "a", "web-1/sa"]);
    c.int(&["PRESENCE.JOIN", "r", "b", "web-2/sb"]);
    c.int(&["PRESENCE.JOIN", "r", "c", "sc"]);
}

#[test]
fn a_replica_follows_the_leases_and_leaves_the_ends_to_its_master() {
    let master = Server::with(
        Options::default()
            .module("presence.sweep-interval", "3600000")
            .config("repl-diskless-sync-delay", "0"),
    );
    let mut m = master.conn();
    lease_and_join(&mut m);
    let replica = Server::with(Options::default());
    let mut r = replica.conn();
    r.call(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
    wait_for(Duration::from_secs(30), "the replica to sync", || {
        (r.int(&["PRESENCE.COUNT", "r"]) == 3).then_some(())
    });
    m.call(&["DEL", "presence:node:web-1"]);
    wait_for(
        Duration::from_secs(30),
        "the replica to see the lease end",
        || (r.strings(&["PRESENCE.LIST", "r"]) == ["b", "c"]).then_some(()),
    );
    m.int(&["PRESENCE.LEASE", "web-2", "300"]);
    // web-2's lease runs out by the clock: both leave it out, the master before it deletes it.
    wait_for(Duration::from_secs(30), "web-2's lease to run out", || {
        (r.int(&["PRESENCE.COUNT", "r"]) == 1 && m.int(&["PRESENCE.COUNT", "r"]) == 1).then_some(())
    });
    let presences = [
        "room:presence:r:a",
        "room:presence:r:b",
        "room:presence:r:c",
    ];
    for (server, conn) in [("replica", &mut r), ("master", &mut m)] {
        let mut exists = vec!["EXISTS"];
        exists.extend(presences);
        assert_eq!(conn.int(&exists), 3, "nothing swept yet on the {server}");
    }
    assert_eq!(m.int(&["PRESENCE.SWEEP"]), 2);
    wait_for(
        Duration::from_secs(30),
        "the replica to apply the sweep",
        || (r.int(&["DBSIZE"]) == 1).then_some(()),
    );
    assert_eq!(r.strings(&["PRESENCE.LIST", "r"]), ["c"]);
    assert_eq!(r.info_field("presence", "presence_swept_node_down"), "0");
}

#[test]
fn leases_come_back_from_rdb_and_aof() {
    for persistence in ["rdb", "aof"] {
        let mut options = slow_sweeps();
        if persistence == "aof" {
            options = options.config("appendonly", "yes");
        }
        let server = Server::with(options);
        let mut c = server.conn();
        lease_and_join(&mut c);
        if persistence == "rdb" {
            server.save();
        }
        let server = server.restart();
        let mut c = server.conn();
        let mut sub = Subscriber::new(&server, 0);
        assert_eq!(
            c.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS"]),
            ["a", "web-1/sa", "b", "web-2/sb", "c", "sc"],
            "{persistence}"
        );
        assert_eq!(
            c.int(&["PRESENCE.LEASE", "web-2", "300"]),
            1,
            "{persistence}"
        );
        wait_for(Duration::from_secs(30), "web-2's lease to run out", || {
            (c.int(&["PRESENCE.COUNT", "r"]) == 2).then_some(())
        });
        assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["a", "c"]);
        assert_eq!(c.int(&["PRESENCE.SWEEP"]), 1, "{persistence}");
        let events: Vec<String> = sub.take(2).into_iter().map(|e| e.payload).collect();
        assert_eq!(
            events,
            [
                r#"{"node":"web-2","presences":1}"#,
                r#"{"room":"r","user":"b","socket":"web-2/sb","count":2,"reason":"node-down"}"#,
            ],
            "{persistence}"
        );
        assert_eq!(
            c.int(&["PRESENCE.LEASE", "web-1", "100000"]),
            1,
            "{persistence}"
        );
    }
}
