//! Operator commands around the module: `CLIENT PAUSE`, `FAILOVER`, and `MODULE LOADEX` with
//! refused arguments. The module stands still while writes are paused, catches up afterwards,
//! and a refused load leaves nothing behind.
//!
//! No outcome depends on timing: the presences go stale only once the pause holds (a short
//! `stale-after` is set then), a pause lasts until the test lifts it, and the replica that a
//! failover waits for is stopped (`SIGSTOP`) until the test checks what the master did meanwhile.

use std::thread;
use std::time::Duration;
use test_support::{module_path, wait_for, Conn, Options, Reply, Server, Subscriber};

const SYNC: Duration = Duration::from_secs(30);
const USERS: usize = 200;

fn replica_of(master: &Server, options: Options) -> Server {
    let replica = Server::with(options);
    let mut r = replica.conn();
    let port = master.port.to_string();
    r.call(&["REPLICAOF", "127.0.0.1", port.as_str()]);
    wait_for(SYNC, "the replica to sync", || {
        (r.info_field("replication", "master_link_status") == "up").then_some(())
    });
    replica
}

fn persistent(options: Options) -> Options {
    options
        .config("appendonly", "yes")
        .config("repl-diskless-sync-delay", "0")
}

fn join_all(c: &mut Conn) {
    for i in 0..USERS {
        let user = format!("u{i}");
        c.send(&["PRESENCE.JOIN", "r", user.as_str(), "s"]);
    }
    for _ in 0..USERS {
        c.read().expect("join reply").int();
    }
}

/// Waits until the server of `c` holds `keys` keys and its index no presence.
fn index_emptied(c: &mut Conn, keys: usize) {
    wait_for(SYNC, "the index and the keys to empty", || {
        let held = c.int(&["DBSIZE"]) as usize;
        let indexed = c.info_field("presence", "presence_indexed");
        (held == keys && indexed == "0").then_some(())
    });
}

/// Sets `presence.stale-after` on the server of `c`.
fn stale_after(c: &mut Conn, seconds: &str) {
    let reply = c.call(&["CONFIG", "SET", "presence.stale-after", seconds]);
    assert_eq!(reply.text().as_deref(), Some("OK"));
}

#[test]
fn client_pause_write_holds_the_sweeper_then_it_catches_up() {
    let master = Server::with(persistent(Options::default().fast(90, 20)));
    let replica = replica_of(&master, Options::default().fast(90, 20));
    let mut m = master.conn();
    let mut r = replica.conn();
    let mut events = Subscriber::new(&master, 0);
    join_all(&mut m);
    assert_eq!(events.take(USERS).len(), USERS);
    m.call(&["CLIENT", "PAUSE", "600000", "WRITE"]);
    // Stale a second after the joins, while the pause holds: the sweeper must wait for its end.
    stale_after(&mut m, "1");
    thread::sleep(Duration::from_millis(1800));
    assert_eq!(m.call(&["PING"]).text().as_deref(), Some("PONG"));
    assert_eq!(m.int(&["DBSIZE"]), USERS as i64, "swept during the pause");
    assert_eq!(m.int(&["PRESENCE.COUNT", "r"]), 0, "stale presences listed");
    assert_eq!(r.int(&["DBSIZE"]), USERS as i64);
    assert!(events.drain(Duration::from_millis(100)).is_empty());
    m.call(&["CLIENT", "UNPAUSE"]);
    index_emptied(&mut m, 0);
    index_emptied(&mut r, 0);
    let swept = events.take(USERS);
    assert_eq!(swept.len(), USERS);
    assert!(swept
        .iter()
        .all(|e| e.channel == "__presence@0__:force-leave"
            && e.payload.ends_with(r#""reason":"stale"}"#)));
    assert_eq!(m.call(&["PING"]).text().as_deref(), Some("PONG"));
    assert_eq!(r.call(&["PING"]).text().as_deref(), Some("PONG"));
}

#[test]
fn failover_while_the_sweeper_has_work_keeps_both_servers_alive() {
    let master = Server::with(persistent(Options::default().fast(1, 3_600_000)));
    let replica = replica_of(&master, persistent(Options::default().fast(1, 20)));
    let mut m = master.conn();
    let mut r = replica.conn();
    join_all(&mut m);
    wait_for(SYNC, "the joins on the replica", || {
        (r.int(&["DBSIZE"]) == USERS as i64).then_some(())
    });
    thread::sleep(Duration::from_millis(1200));
    let mut new_master_events = Subscriber::new(&replica, 0);
    // The replica is stopped, so the master stays paused while it waits for the replica's
    // offset; meanwhile its sweeper is armed with work to do.
    replica.signal("STOP");
    // A write the stopped replica cannot acknowledge yet: FAILOVER waits for it, paused.
    m.call(&["SET", "unrelated", "1"]);
    let target = replica.port.to_string();
    let reply = m.call(&[
        "FAILOVER",
        "TO",
        "127.0.0.1",
        target.as_str(),
        "TIMEOUT",
        "600000",
    ]);
    assert_eq!(reply.text().as_deref(), Some("OK"));
    m.call(&["CONFIG", "SET", "presence.sweep-interval", "10"]);
    thread::sleep(Duration::from_millis(300));
    let during = m.int(&["DBSIZE"]);
    replica.signal("CONT");
    assert_eq!(during, USERS as i64 + 1, "swept during the failover");
    wait_for(SYNC, "the failover", || {
        (r.info_field("replication", "role") == "master"
            && m.info_field("replication", "role") == "slave")
            .then_some(())
    });
    index_emptied(&mut r, 1);
    index_emptied(&mut m, 1);
    let swept = new_master_events.take(USERS);
    assert_eq!(
        swept.len(),
        USERS,
        "the new master announces each removal once"
    );
    assert_eq!(m.call(&["PING"]).text().as_deref(), Some("PONG"));
    assert_eq!(r.call(&["PING"]).text().as_deref(), Some("PONG"));
}

/// A server without the module, so that tests can load it at run time.
fn bare() -> Server {
    Server::with(Options {
        without_module: true,
        ..Options::default()
    })
}

/// How many modules named `presence` the server has loaded (Redis 8 lists its built-in
/// `vectorset` too).
fn modules(c: &mut Conn) -> usize {
    match c.call(&["MODULE", "LIST"]) {
        Reply::Array(Some(items)) => items
            .iter()
            .filter(|item| {
                matches!(item, Reply::Array(Some(fields))
                    if fields.get(1).and_then(Reply::text).as_deref() == Some("presence"))
            })
            .count(),
        other => panic!("MODULE LIST: {other:?}"),
    }
}

#[test]
fn a_refused_load_leaves_nothing_behind() {
    let server = bare();
    let mut c = server.conn();
    let so = module_path().display().to_string();
    let refused: [&[&str]; 4] = [
        &["MODULE", "LOADEX", &so, "CONFIG", "presence.ttl", "0"],
        &["MODULE", "LOADEX", &so, "CONFIG", "presence.nope", "1"],
        &["MODULE", "LOADEX", &so, "ARGS", "ttl", "0"],
        &["MODULE", "LOAD", &so, "colour", "blue"],
    ];
    for load in refused {
        assert!(c.err(load).starts_with("ERR"), "{load:?}");
        assert_eq!(modules(&mut c), 0, "{load:?} left the module loaded");
        assert!(c
            .err(&["PRESENCE.JOIN", "r", "u", "s"])
            .starts_with("ERR unknown command"));
    }
    let ok = ["MODULE", "LOADEX", &so, "CONFIG", "presence.ttl", "100"];
    assert_eq!(c.call(&ok).text().as_deref(), Some("OK"));
    assert_eq!(modules(&mut c), 1);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "u", "s"]), 1);
    let ttl = c.int(&["TTL", "room:presence:r:u"]);
    assert!((50..=100).contains(&ttl), "{ttl}");
    assert_eq!(
        c.strings(&["CONFIG", "GET", "presence.ttl"]),
        ["presence.ttl", "100"]
    );
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 1);
    assert_eq!(c.call(&["PING"]).text().as_deref(), Some("PONG"));
}
