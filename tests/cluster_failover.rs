//! Who sweeps and publishes in a cluster of 3 masters and 3 replicas, across failovers: after
//! `CLUSTER FAILOVER` under beating load the promoted replica sweeps and publishes and the old
//! master is silent, with nothing lost and each event once; after a `kill -9` of a master its
//! replica takes over with nothing lost, and the killed node, started again on its old RDB and
//! `nodes.conf` (alone for 1.5 s: the other nodes are stopped), comes back as a replica that
//! sweeps and publishes nothing, even though its old data is stale by its own short
//! stale-after; and a master that holds presence keys of slots
//! it does not own (owning no slot, or another one only), or that sees the cluster down, sweeps
//! and publishes nothing.
//!
//! Events are heard on the room's sharded channel (`SSUBSCRIBE __presence@0__:{<room>}`) on
//! both nodes of its shard, and on the global channels (`PSUBSCRIBE __presence@0__:*`) of every
//! node; the `INFO presence` counters of each node tell who swept and published.
//!
//! Presences go stale when a test lowers `stale-after` at the moment it has chosen, never
//! because the machine was slow; beating users beat far more often than they would go stale.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use test_support::cluster::{
    describe, heard_events, join_numbered, key_slot, keys_in_slot, presence_stat, role,
    room_channel, socket, user, Cluster, ClusterClient, Listener, PresenceEvent,
};
use test_support::{wait_for, Checks, Conn, Options, Reply, Server};

/// How long a cluster client retries one command before it gives up (a failover after a kill
/// takes the node timeout, 3 s, and an election).
const DEADLINE: Duration = Duration::from_secs(30);

/// Sets `presence.stale-after` to `seconds` on every node of `nodes`.
fn stale_after<'a>(nodes: impl IntoIterator<Item = &'a Server>, seconds: &str) {
    for node in nodes {
        let reply = node
            .conn()
            .call(&["CONFIG", "SET", "presence.stale-after", seconds]);
        assert_eq!(reply, Reply::Status("OK".into()), "stale-after {seconds}");
    }
}

/// The room's sharded channel on `shard`'s nodes, and the global channels of every node.
fn listen(cluster: &Cluster, shard: &[&Server], room: &str) -> Vec<Listener> {
    let mut listeners: Vec<Listener> = shard
        .iter()
        .map(|s| {
            Listener::sharded(
                s,
                &room_channel(room),
                false,
                &format!("room on {}", s.port),
            )
        })
        .collect();
    for node in cluster.nodes() {
        let name = format!("global on {}", node.port);
        listeners.push(Listener::pattern(node, "__presence@0__:*", &name));
    }
    listeners
}

/// What the beating load saw.
#[derive(Debug, Default)]
struct Load {
    beats: u64,
    /// `PRESENCE.BEAT` answers other than 1, with the user.
    not_one: Vec<String>,
}

/// Beats users `0..n` of `room` in rounds (one every 100 ms) through a cluster client of
/// `seeds` until `stop`.
fn beat_load(
    seeds: Vec<u16>,
    room: String,
    n: usize,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Load> {
    thread::spawn(move || {
        let mut client = ClusterClient::new(seeds, DEADLINE);
        let mut load = Load::default();
        while !stop.load(Ordering::Relaxed) {
            for i in 0..n {
                let reply = client.call(&["PRESENCE.BEAT", &room, &user(i), &socket(i)]);
                if reply != Reply::Int(1) {
                    load.not_one.push(format!("{}: {reply:?}", user(i)));
                }
                load.beats += 1;
            }
            thread::sleep(Duration::from_millis(100));
        }
        load
    })
}

/// Checks the answers of the load.
fn check_load(checks: &mut Checks, load: &Load) {
    checks.check(load.not_one.is_empty(), || {
        format!(
            "{} of {} PRESENCE.BEAT of live users did not answer 1: {:?}",
            load.not_one.len(),
            load.beats,
            &load.not_one[..load.not_one.len().min(10)]
        )
    });
}

/// An expected event: its name, room and user.
type Expected = (&'static str, String, String);

/// Checks that every event heard is one of `expected`, that each of them was heard on the
/// room's channel, and that no listener heard one twice.
fn check_events(checks: &mut Checks, events: &[PresenceEvent], expected: &[Expected]) {
    let is = |e: &PresenceEvent, (event, room, u): &Expected| {
        e.event == *event && e.room == *room && e.user == *u
    };
    let unexpected: Vec<&PresenceEvent> = events
        .iter()
        .filter(|e| !expected.iter().any(|x| is(e, x)))
        .collect();
    checks.check(unexpected.is_empty(), || {
        format!(
            "{} false events: {}",
            unexpected.len(),
            describe(&unexpected)
        )
    });
    let mut per_listener: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for e in events {
        *per_listener
            .entry((e.heard.listener.as_str(), e.heard.payload.as_str()))
            .or_default() += 1;
    }
    let twice: Vec<_> = per_listener.iter().filter(|(_, n)| **n > 1).collect();
    checks.check(twice.is_empty(), || {
        format!(
            "{} events heard more than once by one listener, e.g. {:?}",
            twice.len(),
            &twice[..twice.len().min(4)]
        )
    });
    let unheard: Vec<_> = expected
        .iter()
        .filter(|x| {
            !events
                .iter()
                .any(|e| e.heard.kind == "smessage" && is(e, x))
        })
        .collect();
    checks.check(unheard.is_empty(), || {
        let global = events.iter().filter(|e| e.heard.kind == "pmessage").count();
        format!(
            "{} of the {} expected events not heard on the room's channel, e.g. {:?}; {global} \
             events heard on global channels",
            unheard.len(),
            expected.len(),
            unheard.iter().take(4).collect::<Vec<_>>()
        )
    });
}

#[test]
fn a_manual_failover_under_load_loses_nothing_and_the_promoted_replica_sweeps_alone() {
    const N: usize = 300;
    let started = Instant::now();
    let mut checks = Checks::default();
    let cluster = Cluster::start(
        3,
        Options::default().module("presence.sweep-interval", "50"),
    );
    let room = cluster.room_on(0, "fo");
    let (master, replica) = (&cluster.masters[0], &cluster.replicas[0]);
    let listeners = listen(&cluster, &[master, replica], &room);
    join_numbered(master, &room, N);

    let stop = Arc::new(AtomicBool::new(false));
    let load = beat_load(cluster.ports(), room.clone(), N, stop.clone());
    thread::sleep(Duration::from_millis(500));
    // A user who stops beating at once: stale once the failover is done and the stale-after
    // is 5 s (50 times the beating users' period).
    assert_eq!(
        master
            .conn()
            .int(&["PRESENCE.JOIN", &room, "quitter", "sq"]),
        N as i64 + 1
    );
    assert_eq!(master.conn().int(&["WAIT", "1", "60000"]), 1, "replicated");
    let failing_over = Instant::now();
    assert_eq!(
        replica.conn().call(&["CLUSTER", "FAILOVER"]),
        Reply::Status("OK".into())
    );
    wait_for(Duration::from_secs(60), "the replica to take over", || {
        (role(replica) == "master" && role(master) == "slave").then_some(())
    });
    let failover_ms = failing_over.elapsed().as_millis();
    cluster.wait_owner(key_slot(room.as_bytes()), replica.port);
    let old_master = (
        presence_stat(master, "presence_swept"),
        presence_stat(master, "presence_events"),
    );
    stale_after(cluster.nodes(), "5");
    let swept = wait_for(Duration::from_secs(60), "the quitter to be swept", || {
        let keys = replica.conn().int(&["DBSIZE"]);
        (keys == N as i64).then_some(keys)
    });
    thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    let load = load.join().expect("the load thread");
    let events = heard_events(listeners);
    println!(
        "failover in {failover_ms} ms; {} beats; {} events heard; {} ms in all",
        load.beats,
        events.len(),
        started.elapsed().as_millis()
    );

    check_load(&mut checks, &load);
    checks.equal(swept, N as i64, "keys on the new master");
    let mut client = ClusterClient::new(cluster.ports(), DEADLINE);
    checks.equal(
        client.call(&["PRESENCE.COUNT", &room]),
        Reply::Int(N as i64),
        "PRESENCE.COUNT after the failover",
    );
    let mut expected: Vec<Expected> = (0..N).map(|i| ("join", room.clone(), user(i))).collect();
    expected.push(("join", room.clone(), "quitter".into()));
    expected.push(("force-leave", room.clone(), "quitter".into()));
    check_events(&mut checks, &events, &expected);
    let quitter: Vec<&PresenceEvent> = events
        .iter()
        .filter(|e| e.user == "quitter" && e.event == "force-leave")
        .collect();
    checks.check(quitter.iter().all(|e| e.reason == "stale"), || {
        format!("the quitter's end: {}", describe(&quitter))
    });
    checks.equal(
        presence_stat(replica, "presence_swept"),
        1,
        "presences swept by the promoted replica",
    );
    checks.equal(
        (
            presence_stat(master, "presence_swept"),
            presence_stat(master, "presence_events"),
        ),
        old_master,
        "(swept, events) of the old master since it became a replica",
    );
    checks.finish();
}

#[test]
fn a_killed_master_is_replaced_and_comes_back_as_a_replica_that_sweeps_and_publishes_nothing() {
    const N: usize = 300;
    let started = Instant::now();
    let mut checks = Checks::default();
    let options = Options::default().module("presence.sweep-interval", "50");
    let mut cluster = Cluster::start(3, options);
    let room = cluster.room_on(0, "kill");
    let slot = key_slot(room.as_bytes());
    let listeners = listen(
        &cluster,
        &[&cluster.masters[0], &cluster.replicas[0]],
        &room,
    );
    join_numbered(&cluster.masters[0], &room, N);
    let mut conn = cluster.masters[0].conn();
    assert_eq!(conn.int(&["WAIT", "1", "60000"]), 1, "replicated");
    cluster.masters[0].save();

    // The client knows the killed node last, as a client whose seeds are the other nodes.
    let mut seeds = cluster.ports();
    seeds.rotate_left(1);
    let stop = Arc::new(AtomicBool::new(false));
    let load = beat_load(seeds.clone(), room.clone(), N, stop.clone());
    thread::sleep(Duration::from_millis(500));

    let killed = Instant::now();
    cluster.masters[0].kill();
    let promoted = cluster.replicas[0].port;
    wait_for(Duration::from_secs(30), "the replica to take over", || {
        (role(&cluster.replicas[0]) == "master").then_some(())
    });
    cluster.wait_owner(slot, promoted);
    let failover_ms = killed.elapsed().as_millis();
    thread::sleep(Duration::from_millis(1000));

    // Back on its own dir and port, on data in which every presence is stale (1 s), sweeping
    // every 20 ms: it is a master of the room's slot in its own eyes until the cluster tells
    // it otherwise, which it cannot for 1.5 s while the other nodes are stopped (SIGSTOP).
    let options = cluster.masters[0]
        .options()
        .clone()
        .module("presence.stale-after", "1")
        .module("presence.sweep-interval", "20");
    cluster.nodes().skip(1).for_each(|s| s.signal("STOP"));
    cluster.masters[0].start_again(options);
    let back = &cluster.masters[0];
    let name = format!("global on {}", back.port);
    let revived = Listener::pattern(back, "__presence@0__:*", &name);
    thread::sleep(Duration::from_millis(1500));
    let alone = (
        role(back),
        back.conn().int(&["DBSIZE"]),
        presence_stat(back, "presence_swept"),
        presence_stat(back, "presence_events"),
    );
    cluster.nodes().skip(1).for_each(|s| s.signal("CONT"));
    wait_for(Duration::from_secs(60), "the old master to follow", || {
        let mut c = back.conn();
        (role(back) == "slave"
            && c.info_field("replication", "master_link_status") == "up"
            && c.int(&["DBSIZE"]) == N as i64)
            .then_some(())
    });
    let rejoined_ms = killed.elapsed().as_millis();
    thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    let load = load.join().expect("the load thread");
    let mut listeners = listeners;
    listeners.push(revived);
    let events = heard_events(listeners);
    println!(
        "failover {failover_ms} ms after the kill; restarted alone: (role, keys, swept, events) \
         {alone:?}; a replica {rejoined_ms} ms after the kill; {} beats; {} events heard; {} ms \
         in all",
        load.beats,
        events.len(),
        started.elapsed().as_millis()
    );

    check_load(&mut checks, &load);
    let mut client = ClusterClient::new(seeds, DEADLINE);
    checks.equal(
        client.call(&["PRESENCE.COUNT", &room]),
        Reply::Int(N as i64),
        "PRESENCE.COUNT after the failover",
    );
    checks.equal(
        keys_in_slot(&cluster.replicas[0], slot),
        N as i64,
        "keys on the promoted replica",
    );
    let expected: Vec<Expected> = (0..N).map(|i| ("join", room.clone(), user(i))).collect();
    check_events(&mut checks, &events, &expected);
    checks.equal(
        alone,
        ("master".to_string(), N as i64, 0, 0),
        "(role, keys, swept, events) of the old master 1.5 s after its restart, alone",
    );
    checks.equal(
        (
            presence_stat(back, "presence_swept"),
            presence_stat(back, "presence_events"),
        ),
        (0, 0),
        "(swept, events) of the old master since its restart",
    );
    checks.equal(
        presence_stat(&cluster.replicas[0], "presence_swept"),
        0,
        "presences swept by the promoted replica",
    );
    checks.finish();
}

#[test]
fn a_master_without_the_slots_of_its_keys_or_that_sees_the_cluster_down_sweeps_and_publishes_nothing(
) {
    const N: usize = 20;
    let started = Instant::now();
    let mut checks = Checks::default();
    let cluster = Cluster::start(
        3,
        Options::default().module("presence.sweep-interval", "50"),
    );
    let master = &cluster.masters[0];
    let rooms: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|prefix| cluster.room_on(0, prefix))
        .collect();
    let slots: Vec<u16> = rooms.iter().map(|r| key_slot(r.as_bytes())).collect();
    let mut listeners: Vec<Listener> = rooms
        .iter()
        .map(|r| Listener::sharded(master, &room_channel(r), false, &format!("room {r}")))
        .collect();
    for node in cluster.nodes() {
        let name = format!("global on {}", node.port);
        listeners.push(Listener::pattern(node, "__presence@0__:*", &name));
    }
    let mut conn = master.conn();
    let state = |conn: &mut Conn| {
        let info = conn.text(&["CLUSTER", "INFO"]).unwrap_or_default();
        info.lines()
            .find_map(|l| l.strip_prefix("cluster_state:"))
            .unwrap_or_default()
            .to_string()
    };
    let stats = || {
        (
            keys_in_slot(master, slots[0]),
            keys_in_slot(master, slots[1]),
            keys_in_slot(master, slots[2]),
            presence_stat(master, "presence_swept"),
            presence_stat(master, "presence_events"),
        )
    };
    let ok = Reply::Status("OK".into());
    let (first, last) = (0.to_string(), 5461.to_string());

    // Rooms a and b join; then every slot leaves the master (CLUSTER DELSLOTSRANGE), their keys
    // stay, and they go stale (stale-after 1 s). With cluster-require-full-coverage off it still
    // sees the cluster up.
    conn.call(&["CONFIG", "SET", "cluster-require-full-coverage", "no"]);
    join_numbered(master, &rooms[0], N);
    join_numbered(master, &rooms[1], N);
    assert_eq!(conn.call(&["CLUSTER", "DELSLOTSRANGE", &first, &last]), ok);
    stale_after([master], "1");
    thread::sleep(Duration::from_secs(3));
    let no_slot = (state(&mut conn), stats());

    // One empty slot comes back: the master owns a slot again, not those of rooms a and b.
    let empty = (1..)
        .find(|s| !slots.contains(s) && keys_in_slot(master, *s) == 0)
        .expect("an empty slot");
    assert_eq!(conn.call(&["CLUSTER", "ADDSLOTS", &empty.to_string()]), ok);
    thread::sleep(Duration::from_secs(3));
    let other_slot = (state(&mut conn), stats());

    // The other slots come back, and the rooms' listeners (dropped when the slots left)
    // subscribe again: rooms a and b, stale for seconds, are swept. They are live again
    // (stale-after 90 s) until the listeners are back, which on a busy machine can take longer
    // than the 2 s after which the master, confirmed the owner of its slots, sweeps.
    stale_after([master], "90");
    let (before, after) = ((empty - 1).to_string(), (empty + 1).to_string());
    assert_eq!(
        conn.call(&["CLUSTER", "ADDSLOTSRANGE", &first, &before]),
        ok
    );
    assert_eq!(conn.call(&["CLUSTER", "ADDSLOTSRANGE", &after, &last]), ok);
    wait_for(
        Duration::from_secs(30),
        "the rooms' listeners to subscribe again",
        || {
            listeners[..rooms.len()]
                .iter()
                .all(Listener::is_subscribed)
                .then_some(())
        },
    );
    stale_after([master], "1");
    wait_for(Duration::from_secs(30), "rooms a and b to be swept", || {
        (presence_stat(master, "presence_swept") >= 2 * N as i64).then_some(())
    });

    // Room c joins (live while stale-after is 90 s); then the master sees the cluster down:
    // with cluster-require-full-coverage on, a slot without owner (one that holds no key
    // leaves the master); then room c goes stale.
    stale_after([master], "90");
    join_numbered(master, &rooms[2], N);
    conn.call(&["CONFIG", "SET", "cluster-require-full-coverage", "yes"]);
    let empty = empty.to_string();
    assert_eq!(conn.call(&["CLUSTER", "DELSLOTS", &empty]), ok);
    wait_for(
        Duration::from_secs(30),
        "the master to see the cluster down",
        || (state(&mut conn) == "fail").then_some(()),
    );
    stale_after([master], "1");
    thread::sleep(Duration::from_secs(3));
    let down = stats();

    // The cluster is up again: room c is swept.
    assert_eq!(conn.call(&["CLUSTER", "ADDSLOTS", &empty]), ok);
    wait_for(Duration::from_secs(30), "room c to be swept", || {
        (presence_stat(master, "presence_swept") >= 3 * N as i64).then_some(())
    });
    let events = heard_events(listeners);
    println!(
        "(cluster_state, (keys of rooms a, b, c, swept, events)) without slots: {no_slot:?}; \
         with another slot only: {other_slot:?}; with the cluster down: {down:?}; {} events \
         heard; {} ms in all",
        events.len(),
        started.elapsed().as_millis()
    );

    let n = N as i64;
    checks.equal(
        no_slot,
        ("ok".to_string(), (n, n, 0, 0, 2 * n)),
        "(cluster_state, (keys of rooms a, b, c, swept, events)) 3 s after the master's slots \
         left it (rooms a and b joined, stale after 1 s)",
    );
    checks.equal(
        other_slot,
        ("ok".to_string(), (n, n, 0, 0, 2 * n)),
        "(cluster_state, (keys of rooms a, b, c, swept, events)) 3 s after an empty slot came \
         back to the master (rooms a and b still in slots it does not own)",
    );
    checks.equal(
        down,
        (0, 0, n, 2 * n, 5 * n),
        "(keys of rooms a, b, c, swept, events) 3 s with the cluster down (room c joined, stale \
         after 1 s; rooms a and b swept before)",
    );
    let expected: Vec<Expected> = rooms
        .iter()
        .flat_map(|r| {
            (0..N).flat_map(move |i| {
                [
                    ("join", r.clone(), user(i)),
                    ("force-leave", r.clone(), user(i)),
                ]
            })
        })
        .collect();
    check_events(&mut checks, &events, &expected);
    let ends: Vec<&PresenceEvent> = events.iter().filter(|e| e.event != "join").collect();
    checks.check(ends.iter().all(|e| e.reason == "stale"), || {
        format!("each presence ends as stale: {}", describe(&ends))
    });
    checks.equal(master.conn().int(&["DBSIZE"]), 0, "keys left at the end");
    checks.finish();
}
