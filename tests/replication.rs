//! Master and replica: the replica's rooms follow the master's effects, the replica never
//! sweeps or announces, and a promoted replica takes over.

use std::time::Duration;
use test_support::{wait_for, Conn, Options, Reply, Server, Subscriber};

const SYNC: Duration = Duration::from_secs(30);

fn replica_of(master: &Server, options: Options) -> Server {
    let replica = Server::with(options);
    let mut r = replica.conn();
    let port = master.port.to_string();
    assert_eq!(
        r.text(&["REPLICAOF", "127.0.0.1", port.as_str()])
            .as_deref(),
        Some("OK")
    );
    wait_for(SYNC, "the replica to sync", || {
        (r.info_field("replication", "master_link_status") == "up").then_some(())
    });
    replica
}

fn master_options(stale_after: u32, sweep_ms: u32) -> Options {
    Options::default()
        .fast(stale_after, sweep_ms)
        .config("repl-diskless-sync-delay", "0")
}

fn listing(c: &mut Conn, room: &str) -> Vec<String> {
    c.strings(&["PRESENCE.LIST", room, "WITHSOCKETS"])
}

fn wait_same(master: &mut Conn, replica: &mut Conn, room: &str) -> Vec<String> {
    wait_for(SYNC, "the replica to match the master", || {
        let m = listing(master, room);
        (listing(replica, room) == m && replica.int(&["DBSIZE"]) == master.int(&["DBSIZE"]))
            .then_some(m)
    })
}

#[test]
fn the_replica_lists_what_the_master_lists() {
    let master = Server::with(master_options(90, 100));
    let mut m = master.conn();
    m.int(&["PRESENCE.JOIN", "r", "before-sync", "s0"]);
    let replica = replica_of(&master, Options::default());
    let mut r = replica.conn();
    assert_eq!(wait_same(&mut m, &mut r, "r"), ["before-sync", "s0"]);
    m.int(&["PRESENCE.JOIN", "r", "a", "sa"]);
    m.int(&["PRESENCE.JOIN", "r", "b", "sb"]);
    m.int(&["PRESENCE.JOIN", "r", "b", "sb2"]);
    m.int(&["PRESENCE.BEAT", "r", "a", "sa"]);
    m.call(&["SET", "room:presence:r:raw", "sr", "EX", "21600"]);
    m.int(&["PRESENCE.LEAVE", "r", "before-sync", "s0"]);
    assert_eq!(
        wait_same(&mut m, &mut r, "r"),
        ["a", "sa", "b", "sb2", "raw", "sr"]
    );
    assert_eq!(r.int(&["PRESENCE.COUNT", "r"]), 3);
    let pttl_m = m.int(&["PTTL", "room:presence:r:a"]);
    let pttl_r = r.int(&["PTTL", "room:presence:r:a"]);
    assert!((pttl_m - pttl_r).abs() < 5_000, "{pttl_m} vs {pttl_r}");
    assert!(r
        .err(&["PRESENCE.JOIN", "r", "x", "s"])
        .starts_with("READONLY"));
    assert!(r.err(&["PRESENCE.SWEEP"]).starts_with("READONLY"));
}

#[test]
fn the_replica_never_sweeps_or_announces_and_follows_the_master_sweep() {
    let master = Server::with(master_options(1, 3_600_000));
    let replica = replica_of(&master, Options::default().fast(1, 50));
    let mut m = master.conn();
    let mut r = replica.conn();
    let mut replica_sub = Subscriber::new(&replica, 0);
    m.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    wait_for(SYNC, "the join on the replica", || {
        (r.int(&["EXISTS", "room:presence:r:u"]) == 1).then_some(())
    });
    wait_for(SYNC, "staleness on the replica", || {
        (r.int(&["PRESENCE.COUNT", "r"]) == 0).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(r.int(&["EXISTS", "room:presence:r:u"]), 1);
    assert_eq!(m.int(&["PRESENCE.SWEEP"]), 1);
    wait_for(SYNC, "the master's DEL on the replica", || {
        (r.int(&["EXISTS", "room:presence:r:u"]) == 0).then_some(())
    });
    assert!(replica_sub.drain(Duration::from_millis(300)).is_empty());
    assert_eq!(r.info_field("presence", "presence_indexed"), "0");
}

#[test]
fn a_promoted_replica_sweeps_and_announces() {
    let mut master = Server::with(master_options(1, 3_600_000));
    let replica = replica_of(&master, Options::default().fast(1, 50));
    let mut m = master.conn();
    let mut r = replica.conn();
    m.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    wait_for(SYNC, "the join on the replica", || {
        (r.int(&["EXISTS", "room:presence:r:u"]) == 1).then_some(())
    });
    master.kill();
    let mut sub = Subscriber::new(&replica, 0);
    assert_eq!(r.text(&["REPLICAOF", "NO", "ONE"]).as_deref(), Some("OK"));
    wait_for(SYNC, "the promoted replica to sweep", || {
        (r.int(&["EXISTS", "room:presence:r:u"]) == 0).then_some(())
    });
    let event = sub.expect();
    assert_eq!(event.channel, "__presence@0__:force-leave");
    assert!(
        event.payload.ends_with(r#""reason":"stale"}"#),
        "{}",
        event.payload
    );
}

/// The listing of `room`, or `None` while the server answers an error (`LOADING`).
fn listing_when_ready(c: &mut Conn, room: &str) -> Option<Vec<String>> {
    match c.call(&["PRESENCE.LIST", room, "WITHSOCKETS"]) {
        reply @ Reply::Array(Some(_)) => Some(reply.strings()),
        _ => None,
    }
}

/// The listing and the count of `room`, read between two `INFO persistence` that both show an
/// asynchronous load in progress (all four commands sent at once): `None` when either does not.
fn reads_while_loading(c: &mut Conn, room: &str) -> Option<(Vec<String>, i64)> {
    let loading = |reply: Reply| {
        reply
            .text()
            .is_some_and(|info| info.lines().any(|l| l == "async_loading:1"))
    };
    c.send(&["INFO", "persistence"]);
    c.send(&["PRESENCE.LIST", room, "WITHSOCKETS"]);
    c.send(&["PRESENCE.COUNT", room]);
    c.send(&["INFO", "persistence"]);
    let mut read = || c.read().expect("a reply");
    let (first, listed, count, last) = (read(), read(), read(), read());
    match (listed, count) {
        (listed @ Reply::Array(Some(_)), Reply::Int(count)) if loading(first) && loading(last) => {
            Some((listed.strings(), count))
        }
        _ => None,
    }
}

/// Waits until the replica lists what the master lists, its index holding as many presences.
fn wait_rebuilt(m: &mut Conn, r: &mut Conn, room: &str) -> Vec<String> {
    wait_for(SYNC, "the replica's index to match the master's", || {
        let want = listing(m, room);
        let got = listing_when_ready(r, room)?;
        (got == want && r.info_field("presence", "presence_rebuilding") == "0").then_some(got)
    })
}

#[test]
fn a_replica_with_swapdb_loads_from_the_socket_and_serves_the_old_index_meanwhile() {
    let master = Server::with(
        master_options(90, 100)
            .config("repl-diskless-sync", "yes")
            .config("rdbcompression", "no"),
    );
    let mut m = master.conn();
    m.int(&["PRESENCE.JOIN", "r", "old", "s0"]);
    let replica = Server::with(
        Options::default()
            .config("repl-diskless-load", "swapdb")
            .config("loading-process-events-interval-bytes", "1024"),
    );
    let mut r = replica.conn();
    r.call(&["SET", "room:presence:r:gone", "stale-socket", "EX", "21600"]);
    let port = master.port.to_string();
    r.call(&["REPLICAOF", "127.0.0.1", port.as_str()]);
    assert_eq!(wait_rebuilt(&mut m, &mut r, "r"), ["old", "s0"]);

    // A second full sync with the same replication id: the replica loads asynchronously and
    // keeps serving the old data, and the old index with it.
    for i in 0..200 {
        let user = format!("u{i:03}");
        m.int(&["PRESENCE.JOIN", "r", user.as_str(), "s"]);
    }
    wait_rebuilt(&mut m, &mut r, "r");
    let before = listing(&mut r, "r");
    r.call(&["CONFIG", "SET", "key-load-delay", "20000"]);
    m.call(&["MULTI"]);
    m.call(&["CLIENT", "KILL", "TYPE", "replica"]);
    m.call(&["CONFIG", "SET", "repl-backlog-size", "16384"]);
    for i in 0..10 {
        let key = format!("filler{i}");
        m.call(&["SET", key.as_str(), &"A".repeat(16384)]);
    }
    m.call(&["PRESENCE.JOIN", "r", "new", "s1"]);
    m.call(&["PRESENCE.LEAVE", "r", "old", "s0"]);
    m.call(&["EXEC"]);
    let (listed, count) = wait_for(SYNC, "reads during the asynchronous load", || {
        reads_while_loading(&mut r, "r")
    });
    assert_eq!(listed, before, "the old index while loading");
    assert_eq!(count, 201);
    let after = wait_rebuilt(&mut m, &mut r, "r");
    assert_eq!(after.len(), 2 * 201);
    assert!(after.contains(&"new".to_string()) && !after.contains(&"old".to_string()));
    assert_eq!(r.info_field("presence", "presence_indexed"), "201");
    assert!(!replica.log().contains("Skipping diskless-load"));
}

/// Joins `users` presences over 100 rooms, pipelined.
fn join_pipelined(c: &mut Conn, users: usize) {
    for batch in (0..users).collect::<Vec<_>>().chunks(1000) {
        for &i in batch {
            let (room, user) = (format!("r{}", i % 100), format!("u{i}"));
            c.send(&["PRESENCE.JOIN", room.as_str(), user.as_str(), "s"]);
        }
        for _ in batch {
            assert!(matches!(c.read().expect("reply"), Reply::Int(_)));
        }
    }
}

#[test]
fn the_rebuild_after_a_swapdb_sync_works_in_slices_however_many_presences() {
    // 200k presences: an index built in one go would take a tick of 100 ms or more of CPU.
    const USERS: usize = 200_000;
    let master = Server::with(master_options(3600, 1000).config("repl-diskless-sync", "yes"));
    let mut m = master.conn();
    join_pipelined(&mut m, USERS);
    let replica = Server::with(Options::default().config("repl-diskless-load", "swapdb"));
    let mut r = replica.conn();
    let port = master.port.to_string();
    r.call(&["REPLICAOF", "127.0.0.1", port.as_str()]);
    // The load goes to a temporary database that is then swapped in: the index is rebuilt
    // from the keys, in slices of the timer, while the replica serves clients.
    wait_for(SYNC, "the replica's index to hold every presence", || {
        (r.info_field("replication", "master_link_status") == "up"
            && r.info_field("presence", "presence_rebuilding") == "0"
            && r.info_field("presence", "presence_indexed") == USERS.to_string())
        .then_some(())
    });
    assert!(replica.log().contains("Swapping active DB with loaded DB"));
    assert_eq!(r.int(&["PRESENCE.COUNT", "r7"]), (USERS / 100) as i64);
    // CPU time of the server thread, which scheduling does not inflate; the kernel may bill a
    // tick a few ms of interrupt work (tests/big_room.rs), far below what a build in one go
    // takes.
    let max_cpu: u64 = r
        .info_field("presence", "presence_timer_tick_max_cpu_us")
        .parse()
        .expect("a number");
    assert!(
        max_cpu < 50_000,
        "the longest timer tick of the rebuilds used {max_cpu} µs of CPU"
    );
}

/// Every data key of a connection's database with its value and absolute expiry.
fn data_keys(c: &mut Conn) -> Vec<(String, Option<String>, i64)> {
    let Reply::Array(Some(parts)) = c.call(&[
        "SCAN",
        "0",
        "MATCH",
        "room:presence-data:*",
        "COUNT",
        "10000",
    ]) else {
        panic!("SCAN");
    };
    let mut keys: Vec<(String, Option<String>, i64)> = parts[1]
        .strings()
        .into_iter()
        .map(|key| {
            let value = c.text(&["GET", key.as_str()]);
            let at = c.int(&["PEXPIRETIME", key.as_str()]);
            (key, value, at)
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn data_keys_are_the_same_on_the_replica_and_go_with_their_presence() {
    let master = Server::with(master_options(90, 50));
    let mut m = master.conn();
    m.int(&["PRESENCE.JOIN", "r", "before-sync", "s0", "DATA", "[0]"]);
    let replica = replica_of(&master, Options::default());
    let mut r = replica.conn();
    m.int(&["PRESENCE.JOIN", "r", "a", "sa", "DATA", r#"{"name":"Ada"}"#]);
    m.int(&["PRESENCE.JOIN", "r", "b", "sb", "DATA", "1"]);
    m.int(&["PRESENCE.UPDATE", "r", "b", "sb", "2"]);
    m.int(&["PRESENCE.JOIN", "r", "c", "sc", "DATA", "3"]);
    m.int(&["PRESENCE.BEAT", "r", "a", "sa"]);
    m.int(&["PRESENCE.LEAVE", "r", "before-sync", "s0"]);
    m.int(&["PRESENCE.JOIN", "r", "c", "sc"]);
    m.int(&["PRESENCE.JOIN", "r", "d", "sd", "DATA", "4"]);
    m.call(&["DEL", "room:presence:r:d"]);
    let withdata = |c: &mut Conn| c.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS", "WITHDATA"]);
    let want = vec![
        "a",
        "sa",
        r#"{"name":"Ada"}"#,
        "b",
        "sb",
        "2",
        "c",
        "sc",
        "",
    ];
    wait_for(SYNC, "the master to drop d's data", || {
        (m.int(&["EXISTS", "room:presence-data:r:d"]) == 0).then_some(())
    });
    let on_master = data_keys(&mut m);
    assert_eq!(
        on_master
            .iter()
            .map(|(k, _, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["room:presence-data:r:a", "room:presence-data:r:b"]
    );
    wait_for(SYNC, "the replica's data keys to be the master's", || {
        (data_keys(&mut r) == on_master).then_some(())
    });
    for c in [&mut m, &mut r] {
        let listed: Vec<String> = withdata(c);
        assert_eq!(listed, want);
    }
    for (key, _, at) in &on_master {
        let presence = key.replacen("room:presence-data:", "room:presence:", 1);
        assert_eq!(r.int(&["PEXPIRETIME", presence.as_str()]), *at, "{key}");
    }
}

/// A replica (synced from the socket, `repl-diskless-load swapdb`) learns the data keys from
/// the sync as its index: promoted, its commands and its ticks remove the data of the
/// presences that end.
#[test]
fn a_replica_knows_the_data_keys_and_removes_them_once_promoted() {
    let master = Server::with(
        master_options(90, 100)
            .config("repl-diskless-sync", "yes")
            .config("rdbcompression", "no"),
    );
    let mut m = master.conn();
    for user in ["a", "b", "c"] {
        m.int(&[
            "PRESENCE.JOIN",
            "r",
            user,
            "s",
            "DATA",
            &format!("[\"{user}\"]"),
        ]);
    }
    m.int(&["PRESENCE.JOIN", "r", "d", "s"]);
    let replica = Server::with(
        Options::default()
            .module("presence.sweep-interval", "50")
            .config("repl-diskless-load", "swapdb"),
    );
    let mut r = replica.conn();
    let port = master.port.to_string();
    r.call(&["REPLICAOF", "127.0.0.1", port.as_str()]);
    let want = m.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS", "WITHDATA"]);
    // One read per try: a second one could meet the rebuild that the sync starts (`LOADING`).
    wait_for(SYNC, "the replica to list the master's data", || {
        match r.call(&["PRESENCE.LIST", "r", "WITHSOCKETS", "WITHDATA"]) {
            reply @ Reply::Array(Some(_)) => (reply.strings() == want).then_some(()),
            _ => None,
        }
    });
    assert_eq!(r.info_field("presence", "presence_data_keys"), "3");
    assert_eq!(r.text(&["REPLICAOF", "NO", "ONE"]).as_deref(), Some("OK"));
    assert_eq!(r.int(&["PRESENCE.LEAVE", "r", "a", "s"]), 1);
    assert_eq!(r.int(&["EXISTS", "room:presence-data:r:a"]), 0);
    r.call(&["DEL", "room:presence:r:b"]);
    wait_for(
        SYNC,
        "the promoted replica's tick to remove b's data",
        || (r.int(&["EXISTS", "room:presence-data:r:b"]) == 0).then_some(()),
    );
    assert_eq!(data_keys(&mut r).len(), 1, "c's data stays");
}
