//! Slot migration (resharding) of a room under load, on a cluster of 3 masters and 3 replicas:
//! the slot that holds the room moves key by key (`SETSLOT IMPORTING`/`MIGRATING`, `MIGRATE …
//! KEYS` in batches, `SETSLOT NODE`, as `redis-cli --cluster reshard` does it) while a cluster
//! client keeps beating and some users join again. Nothing may be lost or falsely announced:
//! no `join`/`leave`/`force-leave` but those of the re-joins, no `PRESENCE.BEAT` answered 0,
//! every presence on the new owner afterwards (keys and index), and while the room is split
//! `PRESENCE.COUNT`/`LIST` answer the whole room or `TRYAGAIN`, never a part of it. A migration
//! left half-done answers `TRYAGAIN` (or, for a `BEAT` whose key already moved, 1), sweeps
//! nobody, and `redis-cli --cluster fix` finishes it.
//!
//! Events are heard on the room's sharded channel (`SSUBSCRIBE __presence@0__:{<room>}`, on the
//! owner and on the target) and on the global channels of every master (`PSUBSCRIBE
//! __presence@0__:*`), so that an event published anywhere is seen.
//!
//! Nothing depends on how fast the machine is: the load threads are waited for by the work they
//! did, not by time; a presence goes stale only when a test lowers `stale-after` on purpose; and
//! an event lost while a listener was unsubscribed is told apart from one lost for good by the
//! order of things (it went out after the migration's end began), not by timestamps.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use test_support::cluster::{
    cluster_fix, describe, events_in, heard_events, join_numbered, key_slot, keys_in_slot,
    presence_stat, room_channel, socket, stop_listeners, unsubscribed_spans, user, Cluster,
    ClusterClient, Listener, Migration, PresenceEvent,
};
use test_support::{wait_for, Checks, Options, Reply, Server};

/// How long a cluster client retries one command before it gives up.
const DEADLINE: Duration = Duration::from_secs(30);

/// A load thread's controls: told to stop, and how many commands it has had answered.
#[derive(Default)]
struct Running {
    stop: AtomicBool,
    commands: AtomicU64,
}

impl Running {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn answered(&self) {
        self.commands.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits until the load has had `more` commands answered from now.
    fn wait_for(&self, more: u64) {
        let target = self.commands.load(Ordering::Relaxed) + more;
        wait_for(DEADLINE * 4, "the load to go on", || {
            (self.commands.load(Ordering::Relaxed) >= target).then_some(())
        });
    }
}

/// Sets `presence.stale-after` to `seconds` on every node of `cluster`.
fn stale_after(cluster: &Cluster, seconds: &str) {
    for node in cluster.nodes() {
        let reply = node
            .conn()
            .call(&["CONFIG", "SET", "presence.stale-after", seconds]);
        assert_eq!(reply, Reply::Status("OK".into()), "stale-after {seconds}");
    }
}

/// The room's sharded channel on `owner`, and the global channels on every master.
fn listen(cluster: &Cluster, owner: &Server, room: &str) -> Vec<Listener> {
    let mut listeners = vec![Listener::sharded(
        owner,
        &room_channel(room),
        false,
        &format!("room channel on {}", owner.port),
    )];
    for master in &cluster.masters {
        let name = format!("global channels on {}", master.port);
        listeners.push(Listener::pattern(master, "__presence@0__:*", &name));
    }
    listeners
}

/// Joins `n` numbered users to `room` on `source`, checks that each join was announced once on
/// the room's channel, and starts listening again for what follows.
fn populate(
    checks: &mut Checks,
    cluster: &Cluster,
    source: &Server,
    room: &str,
    n: usize,
) -> Vec<Listener> {
    let listeners = listen(cluster, source, room);
    join_numbered(source, room, n);
    check_joins_announced_once(checks, &heard_events(listeners), n);
    listen(cluster, source, room)
}

/// Opens the migration of `slot` from `source` to `target`, and listens to the room's channel
/// on the target too.
fn begin_move(
    source: &Server,
    target: &Server,
    slot: u16,
    room: &str,
    listeners: &mut Vec<Listener>,
) -> Migration {
    let migration = Migration::begin(source, target, slot);
    listeners.push(Listener::sharded(
        target,
        &room_channel(room),
        true,
        &format!("room channel on {} (the target)", target.port),
    ));
    migration
}

/// Checks that the join phase announced each of the `n` joins once on the room's channel.
fn check_joins_announced_once(checks: &mut Checks, events: &[PresenceEvent], n: usize) {
    let on_room: Vec<&PresenceEvent> = events
        .iter()
        .filter(|e| e.heard.kind == "smessage")
        .collect();
    let users: BTreeSet<&str> = on_room.iter().map(|e| e.user.as_str()).collect();
    let global = events.iter().filter(|e| e.heard.kind == "pmessage").count();
    checks.check(
        on_room.len() == n && users.len() == n && on_room.iter().all(|e| e.event == "join"),
        || {
            format!(
                "each of the {n} joins once on the room's channel: {} heard there ({} users), \
                 {global} on the global channels of the masters",
                on_room.len(),
                users.len()
            )
        },
    );
}

/// What a load thread saw.
#[derive(Debug, Default)]
struct Load {
    beats: u64,
    /// Users whose `PRESENCE.BEAT` answered 0.
    zero: Vec<String>,
    /// Answers that were neither 1 nor 0 (beats) nor the room's count (joins).
    odd: Vec<String>,
    /// Each re-join: the user, the old and the new socket.
    rejoins: Vec<(String, String, String)>,
    /// When each re-join (in the same order) was sent and when it was answered: its events
    /// went out in between.
    rejoined: Vec<(Instant, Instant)>,
    tryagain: u64,
    ask: u64,
}

/// Beats users of `room` round-robin through a cluster client until told to stop; every 97th
/// command is a re-join of the user with a new socket (at most `max_rejoins`), whose answer
/// must be `n`.
fn beat_load(
    ports: Vec<u16>,
    room: String,
    n: usize,
    max_rejoins: usize,
    running: Arc<Running>,
) -> thread::JoinHandle<Load> {
    thread::spawn(move || {
        let mut client = ClusterClient::new(ports, DEADLINE);
        let mut sockets: Vec<String> = (0..n).map(socket).collect();
        let mut load = Load::default();
        let mut i = 0;
        let mut step = 0u64;
        while !running.stopped() {
            i = (i + 7919) % n;
            step += 1;
            if step.is_multiple_of(97) && load.rejoins.len() < max_rejoins {
                let new = format!("{}r{step}", socket(i));
                let sent = Instant::now();
                let reply = client.call(&["PRESENCE.JOIN", &room, &user(i), &new]);
                load.rejoined.push((sent, Instant::now()));
                running.answered();
                if reply != Reply::Int(n as i64) {
                    load.odd.push(format!("JOIN {}: {reply:?}", user(i)));
                }
                let old = std::mem::replace(&mut sockets[i], new.clone());
                load.rejoins.push((user(i), old, new));
                continue;
            }
            match client.call(&["PRESENCE.BEAT", &room, &user(i), &sockets[i]]) {
                Reply::Int(1) => {}
                Reply::Int(0) => load.zero.push(user(i)),
                other => load.odd.push(format!("BEAT {}: {other:?}", user(i))),
            }
            running.answered();
            load.beats += 1;
        }
        load.tryagain = client.redirections.tryagain;
        load.ask = client.redirections.ask;
        load
    })
}

/// The key of user `i` of `room`.
fn presence_key(room: &str, i: usize) -> String {
    format!("room:presence:{{{room}}}:{}", user(i))
}

/// Raw heartbeats (the seed's `EXPIRE key 21600`) of the users `beating` of `room` in turn
/// through a cluster client, until told to stop; returns the number sent and the keys it found
/// missing.
fn raw_beat_load(
    ports: Vec<u16>,
    room: String,
    beating: Vec<usize>,
    running: Arc<Running>,
) -> thread::JoinHandle<(u64, Vec<String>)> {
    thread::spawn(move || {
        let mut client = ClusterClient::new(ports, DEADLINE);
        let mut sent = 0u64;
        let mut missing = Vec::new();
        while !running.stopped() {
            let key = presence_key(&room, beating[sent as usize % beating.len()]);
            if client.call(&["EXPIRE", &key, "21600"]) != Reply::Int(1) {
                missing.push(key);
            }
            running.answered();
            sent += 1;
        }
        (sent, missing)
    })
}

/// The events published by all masters so far (`INFO presence`).
fn masters_events(cluster: &Cluster) -> i64 {
    cluster
        .masters
        .iter()
        .map(|m| presence_stat(m, "presence_events"))
        .sum()
}

/// One attempt of `PRESENCE.COUNT` and of `PRESENCE.LIST … LIMIT 50` while the room is split:
/// each answers the whole room (`n`, the first 50 users) or `TRYAGAIN`. Returns the answers
/// that were neither.
fn partial_answers(client: &mut ClusterClient, room: &str, n: usize) -> Vec<String> {
    let first: Vec<String> = (0..50).map(user).collect();
    let mut wrong = Vec::new();
    let tryagain = |reply: &Reply| matches!(reply, Reply::Error(e) if e.starts_with("TRYAGAIN"));
    let count = client.attempt(&["PRESENCE.COUNT", room]);
    if count != Reply::Int(n as i64) && !tryagain(&count) {
        wrong.push(format!("COUNT: {count:?}"));
    }
    let list = client.attempt(&["PRESENCE.LIST", room, "LIMIT", "50"]);
    if !tryagain(&list) && !matches!(&list, Reply::Array(Some(_)) if list.strings() == first) {
        let shown = match &list {
            Reply::Array(Some(items)) => {
                format!("{} users, first {:?}", items.len(), list.strings().first())
            }
            other => format!("{other:?}"),
        };
        wrong.push(format!("LIST LIMIT 50: {shown}"));
    }
    wrong
}

/// After the move: the new owner holds every presence (keys, COUNT, LIST WITHSOCKETS equal to
/// `sockets`), the source none of the slot's keys and none in its index.
fn check_moved_whole(
    checks: &mut Checks,
    cluster: &Cluster,
    (source, target): (&Server, &Server),
    room: &str,
    sockets: &BTreeMap<String, String>,
) {
    let slot = key_slot(room.as_bytes());
    let n = sockets.len() as i64;
    let mut client = ClusterClient::new(cluster.ports(), DEADLINE);
    checks.equal(
        keys_in_slot(source, slot),
        0,
        "keys of the slot left on the source",
    );
    checks.equal(keys_in_slot(target, slot), n, "presence keys on the target");
    checks.equal(
        client.call(&["PRESENCE.COUNT", room]),
        Reply::Int(n),
        "PRESENCE.COUNT after the move",
    );
    let listed = client
        .call(&["PRESENCE.LIST", room, "WITHSOCKETS"])
        .strings();
    let listed: BTreeMap<String, String> = listed
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    let differ = sockets
        .iter()
        .filter(|(u, s)| listed.get(*u) != Some(s))
        .count();
    checks.check(listed.len() == sockets.len() && differ == 0, || {
        format!(
            "LIST WITHSOCKETS after the move: {} users listed, {differ} of the {} missing or \
             with another socket",
            listed.len(),
            sockets.len()
        )
    });
    checks.equal(
        presence_stat(target, "presence_indexed"),
        n,
        "the target's presence_indexed",
    );
    checks.equal(
        presence_stat(source, "presence_indexed"),
        0,
        "the source's presence_indexed",
    );
}

/// Shows at most 10 items.
fn some<T: std::fmt::Debug>(items: &[T]) -> String {
    format!("{:?}", &items[..items.len().min(10)])
}

#[test]
fn a_room_of_20000_moves_between_shards_under_load_without_a_false_event_or_a_lost_presence() {
    const N: usize = 20_000;
    let started = Instant::now();
    let mut checks = Checks::default();
    // Every user is beaten once in 20000 commands: stale-after 600 s leaves the load ample time
    // however slow the machine.
    let cluster = Cluster::start(
        3,
        Options::default()
            .module("presence.sweep-interval", "100")
            .module("presence.stale-after", "600"),
    );
    let room = cluster.room_on(0, "big");
    let slot = key_slot(room.as_bytes());
    let (source, target) = (&cluster.masters[0], &cluster.masters[1]);

    let mut listeners = populate(&mut checks, &cluster, source, &room, N);
    let events_before = masters_events(&cluster);

    let running = Arc::new(Running::default());
    let load = beat_load(cluster.ports(), room.clone(), N, 300, running.clone());
    running.wait_for(500);

    let migration = begin_move(source, target, slot, &room, &mut listeners);
    let mut client = ClusterClient::new(cluster.ports(), DEADLINE);
    let mut partial = Vec::new();
    let moving = Instant::now();
    let (mut moved, mut busy) = (0, Vec::new());
    loop {
        partial.extend(partial_answers(&mut client, &room, N));
        let (batch, error) = migration.move_batch(100);
        if batch == 0 {
            break;
        }
        moved += batch;
        busy.extend(error);
        thread::sleep(Duration::from_millis(2));
    }
    // The servers drop the sharded subscriptions from here on, not before.
    let finishing = Instant::now();
    migration.finish(&cluster.masters.iter().collect::<Vec<_>>());
    let move_ms = moving.elapsed().as_millis();
    cluster.wait_owner(slot, target.port);
    running.wait_for(1000);
    running.stop.store(true, Ordering::Relaxed);
    let load = load.join().expect("the load thread");
    let all = stop_listeners(listeners);
    let spans = unsubscribed_spans(&all, Instant::now());
    let events = events_in(&all);
    println!(
        "moved {moved} keys in {move_ms} ms; {} beats, {} re-joins, {} TRYAGAIN and {} ASK on \
         the way; {} events heard; sharded subscriptions dropped by the server {} times (for \
         {:?} in all); {} ms in all",
        load.beats,
        load.rejoins.len(),
        load.tryagain,
        load.ask,
        events.len(),
        spans.len(),
        spans.iter().map(|(from, to)| *to - *from).sum::<Duration>(),
        started.elapsed().as_millis()
    );

    checks.equal(moved, N, "keys moved");
    checks.check(busy.is_empty(), || {
        format!(
            "{} batches found keys of the room already on the target (a write there while the \
             source still held the user): {}",
            busy.len(),
            some(&busy)
        )
    });
    checks.check(partial.is_empty(), || {
        format!(
            "while the room was split, COUNT/LIST answered a part of it ({} times): {}",
            partial.len(),
            some(&partial)
        )
    });
    checks.check(load.zero.is_empty(), || {
        format!(
            "PRESENCE.BEAT answered 0 for {} live users (of {} beats), e.g. {}",
            load.zero.len(),
            load.beats,
            some(&load.zero)
        )
    });
    checks.check(load.odd.is_empty(), || {
        format!("{} odd answers: {}", load.odd.len(), some(&load.odd))
    });
    checks.check(load.beats > 1000 && !load.rejoins.is_empty(), || {
        format!(
            "too little load: {} beats, {} re-joins",
            load.beats,
            load.rejoins.len()
        )
    });

    let answered: BTreeMap<(String, String, String), (Instant, Instant)> = load
        .rejoins
        .iter()
        .zip(&load.rejoined)
        .flat_map(|((u, old, new), at)| {
            [
                (("force-leave".to_string(), u.clone(), old.clone()), *at),
                (("join".to_string(), u.clone(), new.clone()), *at),
            ]
        })
        .collect();
    let expected: BTreeSet<(String, String, String)> = answered.keys().cloned().collect();
    let false_events: Vec<&PresenceEvent> = events
        .iter()
        .filter(|e| !expected.contains(&(e.event.clone(), e.user.clone(), e.socket.clone())))
        .collect();
    checks.check(false_events.is_empty(), || {
        format!(
            "{} false events (besides the re-joins' own), {}",
            false_events.len(),
            describe(&false_events)
        )
    });
    // Each listener hears each event at most once; each event is heard, unless it was published
    // while the server had dropped the sharded subscriptions (Valkey drops even those of the
    // new owner at SETSLOT NODE) and before the listeners subscribed again: pub/sub delivers
    // at most once. A server drops them once the migration's end has begun, and a listener is
    // subscribed again when its new subscription was confirmed: an event that went out (between
    // the re-join's sending and its answer) inside that span may be lost.
    let mut per_listener: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut heard: BTreeSet<(String, String, String)> = BTreeSet::new();
    for e in events.iter().filter(|e| e.heard.kind == "smessage") {
        *per_listener
            .entry((e.heard.listener.as_str(), e.heard.payload.as_str()))
            .or_default() += 1;
        heard.insert((e.event.clone(), e.user.clone(), e.socket.clone()));
    }
    let twice: Vec<_> = per_listener.iter().filter(|(_, n)| **n > 1).collect();
    checks.check(twice.is_empty(), || {
        format!(
            "{} events heard twice by a listener: {}",
            twice.len(),
            some(&twice)
        )
    });
    let (mut unheard, mut dropped) = (Vec::new(), 0);
    for (key, (sent, at)) in answered.iter().filter(|(k, _)| !heard.contains(*k)) {
        if spans.iter().any(|(_, to)| finishing <= *at && sent <= to) {
            dropped += 1;
        } else {
            unheard.push(key);
        }
    }
    checks.check(unheard.is_empty(), || {
        format!(
            "the re-joins' events on the room's channel: {} of {} not heard ({dropped} more \
             published while unsubscribed), e.g. {:?}",
            unheard.len(),
            expected.len(),
            unheard.first()
        )
    });
    let published = masters_events(&cluster) - events_before;
    checks.equal(
        published,
        expected.len() as i64,
        "events published by the masters (INFO presence_events) since the joins",
    );

    let mut sockets: BTreeMap<String, String> = (0..N).map(|i| (user(i), socket(i))).collect();
    for (u, _, new) in &load.rejoins {
        sockets.insert(u.clone(), new.clone());
    }
    check_moved_whole(&mut checks, &cluster, (source, target), &room, &sockets);
    checks.finish();
}

#[test]
fn a_migration_left_half_done_answers_tryagain_sweeps_nobody_and_cluster_fix_finishes_it() {
    const N: usize = 2_000;
    let started = Instant::now();
    let mut checks = Checks::default();
    let cluster = Cluster::start(
        3,
        Options::default().module("presence.sweep-interval", "50"),
    );
    let room = cluster.room_on(1, "half");
    let slot = key_slot(room.as_bytes());
    let (source, target) = (&cluster.masters[1], &cluster.masters[2]);

    let mut listeners = populate(&mut checks, &cluster, source, &room, N);
    let swept_before = (
        presence_stat(source, "presence_swept"),
        presence_stat(target, "presence_swept"),
    );

    // One user in ten keeps beating with the raw heartbeat, which the node holding each key
    // serves (following ASK once it moved): PRESENCE.BEAT cannot land while the room is split.
    // The others stop, so that they go stale while the slot is half-moved and nobody may sweep
    // them.
    let beating: Vec<usize> = (0..N).step_by(10).collect();
    let running = Arc::new(Running::default());
    let load = raw_beat_load(
        cluster.ports(),
        room.clone(),
        beating.clone(),
        running.clone(),
    );
    running.wait_for(100);

    let migration = begin_move(source, target, slot, &room, &mut listeners);
    let (mut moved, mut busy) = (0, Vec::new());
    while moved < N / 2 {
        let (batch, error) = migration.move_batch(100);
        moved += batch;
        busy.extend(error);
    }
    // Left half-done for twice the stale-after (3 s from now: whatever the raw heartbeats do
    // not reach in time is stale) while the sweepers tick every 50 ms. COUNT and LIST answer
    // TRYAGAIN (never half the room); a BEAT answers TRYAGAIN, or 1 when its key has already
    // moved, never 0: the probed users get a raw heartbeat before each probe, so they stay
    // live.
    stale_after(&cluster, "3");
    let probed = [0, 999, 1999];
    let mut client = ClusterClient::new(cluster.ports(), DEADLINE);
    let mut wrong = Vec::new();
    let mut probes = 0;
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(6) {
        for i in probed {
            let key = presence_key(&room, i);
            let reply = client.call(&["EXPIRE", &key, "21600"]);
            if reply != Reply::Int(1) {
                wrong.push(format!("EXPIRE {key}: {reply:?}"));
            }
        }
        for args in [
            vec!["PRESENCE.COUNT", room.as_str()],
            vec!["PRESENCE.LIST", room.as_str(), "LIMIT", "50"],
            vec!["PRESENCE.BEAT", room.as_str(), "u00000", "s0"],
            vec!["PRESENCE.BEAT", room.as_str(), "u00999", "s999"],
            vec!["PRESENCE.BEAT", room.as_str(), "u01999", "s1999"],
        ] {
            probes += 1;
            match client.attempt(&args) {
                Reply::Error(e) if e.starts_with("TRYAGAIN") => {}
                Reply::Int(1) if args[0] == "PRESENCE.BEAT" => {}
                Reply::Array(Some(items)) => {
                    wrong.push(format!("{}: {} users", args[0], items.len()))
                }
                other => wrong.push(format!("{}: {other:?}", args.join(" "))),
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
    let half = (keys_in_slot(source, slot), keys_in_slot(target, slot));
    let swept_half = (
        presence_stat(source, "presence_swept"),
        presence_stat(target, "presence_swept"),
    );
    let during = listeners.iter().map(|l| l.heard().len()).sum::<usize>();

    // redis-cli's fix moves the rest without opening the slot (a "cold" move, during which a
    // key is on neither side for an instant): the heartbeats stop for it, and every presence
    // is live again (stale-after 600 s) so that the new owner has nobody to sweep.
    running.stop.store(true, Ordering::Relaxed);
    let (raw_beats, missing) = load.join().expect("the raw beat thread");
    stale_after(&cluster, "600");
    let fixing = Instant::now();
    let fix = cluster_fix(source.port);
    let fix_ms = fixing.elapsed().as_millis();
    // With as many keys on each side, redis-cli may pick either node as the owner.
    let owner = cluster.node_on(cluster.agreed_owner(slot));
    let other = if owner.port == source.port {
        target
    } else {
        source
    };
    let mut not_one = Vec::new();
    for i in 0..N {
        let reply = client.call(&["PRESENCE.BEAT", &room, &user(i), &socket(i)]);
        if reply != Reply::Int(1) {
            not_one.push(format!("{}: {reply:?}", user(i)));
        }
    }
    let events = heard_events(listeners);
    println!(
        "half-done: {} keys on the source, {} on the target, {probes} probes; fix in {fix_ms} ms \
         ({}); {raw_beats} raw beats; {} events heard ({during} while half-done); {} ms in all",
        half.0,
        half.1,
        fix.lines()
            .find_map(|l| l.find("Moving all the").map(|at| &l[at..]))
            .unwrap_or("no keys moved"),
        events.len(),
        started.elapsed().as_millis()
    );

    checks.check(wrong.is_empty(), || {
        format!(
            "while half-done, {} of {probes} PRESENCE commands answered neither TRYAGAIN nor \
             (BEAT) 1: {}",
            wrong.len(),
            some(&wrong)
        )
    });
    checks.equal(
        half.0 + half.1,
        N as i64,
        "keys while half-done (source + target)",
    );
    checks.equal(
        swept_half,
        swept_before,
        "presence_swept (source, target) after 6 s half-done",
    );
    checks.check(missing.is_empty(), || {
        format!(
            "raw heartbeats (EXPIRE) found {} keys missing while half-done, e.g. {}",
            missing.len(),
            some(&missing)
        )
    });
    // A raw heartbeat that comes after its key went stale (a beating user whose turn came more
    // than stale-after late on a busy machine) revives it, announced as a `join` by design:
    // such joins of beating or probed users are no false event. Any other event is.
    let beaten: BTreeSet<String> = beating.iter().chain(&probed).map(|&i| user(i)).collect();
    let revivals = |e: &&PresenceEvent| e.event == "join" && beaten.contains(&e.user);
    let revived = events.iter().filter(revivals).count();
    let all: Vec<&PresenceEvent> = events.iter().filter(|e| !revivals(e)).collect();
    checks.check(all.is_empty(), || {
        format!(
            "{} false events (and {revived} revivals by a late raw heartbeat), {}",
            all.len(),
            describe(&all)
        )
    });
    checks.check(not_one.is_empty(), || {
        format!(
            "PRESENCE.BEAT after the fix did not answer 1 for {} users: {}",
            not_one.len(),
            some(&not_one)
        )
    });
    let sockets: BTreeMap<String, String> = (0..N).map(|i| (user(i), socket(i))).collect();
    check_moved_whole(&mut checks, &cluster, (other, owner), &room, &sockets);
    checks.finish();
}
