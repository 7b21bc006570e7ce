//! Redis Cluster: three masters and three replicas with the module. Each room lives on the shard
//! of its hash slot (keys `room:presence:{<room>}:<user>`), the commands route by the room, each
//! shard counts, lists and sweeps its own rooms, every event reaches its room's sharded channel
//! once (and nothing goes to the global channels), and the replicas neither sweep nor publish.
//! The presences go stale when the test lowers `stale-after`, not by how long the joins took.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::cluster::{key_slot, Cluster};
use test_support::{module_path, wait_for, Conn, Options, Reply, Subscriber};

const ROOMS: usize = 60;
const USERS: usize = 5;

fn room(i: usize) -> String {
    format!("room{i}")
}

#[test]
fn each_shard_holds_counts_and_sweeps_its_own_rooms_and_replicas_stay_silent() {
    let cluster = Cluster::start(
        3,
        Options::default().module("presence.sweep-interval", "50"),
    );
    let names: Vec<String> = (0..ROOMS).map(room).collect();
    let mut subs: Vec<Subscriber> = (0..cluster.masters.len())
        .map(|i| {
            let owned: Vec<&str> = names
                .iter()
                .filter(|name| cluster.owner_of(name.as_bytes()) == i)
                .map(String::as_str)
                .collect();
            Subscriber::rooms(&cluster.masters[i], 0, &owned)
        })
        .collect();
    let mut global = Subscriber::new(&cluster.masters[0], 0);
    let mut per_shard = vec![0i64; cluster.masters.len()];
    for r in 0..ROOMS {
        let name = room(r);
        let owner = cluster.owner_of(name.as_bytes());
        per_shard[owner] += USERS as i64;
        let mut c = cluster.masters[owner].conn();
        for u in 0..USERS {
            let joined = c.int(&[
                "PRESENCE.JOIN",
                &name,
                &format!("u{u}"),
                &format!("s{r}.{u}"),
            ]);
            assert_eq!(joined, u as i64 + 1);
        }
        let key = format!("room:presence:{{{name}}}:u0");
        assert_eq!(key_slot(key.as_bytes()), key_slot(name.as_bytes()));
        assert_eq!(c.int(&["EXISTS", key.as_str()]), 1, "the hash-tag form");
        let other = (owner + 1) % cluster.masters.len();
        let moved = cluster.masters[other]
            .conn()
            .err(&["PRESENCE.COUNT", name.as_str()]);
        assert!(
            moved.starts_with(&format!("MOVED {} ", key_slot(name.as_bytes()))),
            "{moved}"
        );
    }
    for (i, master) in cluster.masters.iter().enumerate() {
        assert_eq!(master.conn().int(&["DBSIZE"]), per_shard[i], "shard {i}");
    }
    for (i, replica) in cluster.replicas.iter().enumerate() {
        let mut c = replica.conn();
        c.call(&["READONLY"]);
        wait_for(Duration::from_secs(30), "the replica to follow", || {
            (c.int(&["DBSIZE"]) == per_shard[i]).then_some(())
        });
        for r in (0..ROOMS).filter(|r| cluster.owner_of(room(*r).as_bytes()) == i) {
            assert_eq!(c.int(&["PRESENCE.COUNT", &room(r)]), USERS as i64);
            assert_eq!(c.strings(&["PRESENCE.LIST", &room(r)]).len(), USERS);
        }
    }
    // Each shard's own events: as many as it holds presences, and nothing more.
    let mut heard = || -> Vec<_> {
        subs.iter_mut()
            .zip(&per_shard)
            .flat_map(|(sub, &n)| sub.take(n as usize))
            .collect()
    };
    let joins = heard();
    assert_eq!(joins.len(), ROOMS * USERS, "each join once");
    for join in &joins {
        let name = join.channel.trim_start_matches("__presence@0__:{");
        let name = name.trim_end_matches('}');
        assert!(
            join.payload.starts_with(&format!(r#"{{"room":"{name}","#))
                && join.payload.ends_with(r#""event":"join"}"#),
            "{join:?}"
        );
    }
    // No heartbeat: with a stale-after of 1 s every presence goes stale, and its shard's
    // sweeper removes it.
    for node in cluster.nodes() {
        let reply = node
            .conn()
            .call(&["CONFIG", "SET", "presence.stale-after", "1"]);
        assert_eq!(reply.text().as_deref(), Some("OK"));
    }
    wait_for(Duration::from_secs(60), "every shard to sweep", || {
        cluster
            .masters
            .iter()
            .all(|m| m.conn().int(&["DBSIZE"]) == 0)
            .then_some(())
    });
    let mut ended: BTreeMap<String, usize> = BTreeMap::new();
    for event in heard() {
        assert!(
            event
                .payload
                .ends_with(r#""reason":"stale","event":"force-leave"}"#),
            "{event:?}"
        );
        *ended.entry(event.payload).or_default() += 1;
    }
    assert_eq!(ended.len(), ROOMS * USERS);
    assert!(ended.values().all(|&n| n == 1), "each end announced once");
    assert_eq!(
        global.drain(Duration::from_millis(100)),
        [],
        "nothing global"
    );
    for (i, master) in cluster.masters.iter().enumerate() {
        let swept: i64 = master
            .conn()
            .info_field("presence", "presence_swept")
            .parse()
            .unwrap();
        assert_eq!(swept, per_shard[i], "shard {i} swept its own");
    }
    for replica in &cluster.replicas {
        let mut c = replica.conn();
        wait_for(
            Duration::from_secs(30),
            "the replica to apply the sweep",
            || (c.int(&["DBSIZE"]) == 0).then_some(()),
        );
        assert_eq!(c.info_field("presence", "presence_swept"), "0");
        assert_eq!(c.info_field("presence", "presence_events"), "0");
    }
}

/// `scripts/cluster` running, stopped with SIGTERM when dropped (a test that fails half-way
/// leaves no node behind).
struct Script(std::process::Child);

impl Script {
    fn terminate(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        self.terminate();
        let _ = self.0.wait();
    }
}

/// `scripts/cluster` forms a cluster of 3 masters and 3 replicas with the module, prints where
/// they are, serves presence commands, and stops every node on SIGTERM.
#[test]
fn scripts_cluster_starts_a_cluster_and_stops_it() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut script = Script(
        Command::new("bash")
            .arg(root.join("scripts/cluster"))
            .env("PRESENCE_MODULE", module_path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start scripts/cluster"),
    );
    let mut lines = BufReader::new(script.0.stdout.take().expect("stdout")).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut ports = Vec::new();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        printed.push(line.clone());
        if let Some(urls) = line.strip_prefix("REDIS_CLUSTER=") {
            ports = urls
                .split(',')
                .map(|url| url.rsplit(':').next().unwrap().parse::<u16>().unwrap())
                .collect();
        }
        if line.starts_with("Cluster ready") {
            break;
        }
        assert!(Instant::now() < deadline, "no cluster in time: {printed:?}");
    }
    assert_eq!(ports.len(), 6, "{printed:?}");
    let roles: Vec<&str> = printed
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|role| *role == "master" || *role == "replica")
        .collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "master").count(),
        3,
        "{printed:?}"
    );
    assert_eq!(
        roles.iter().filter(|r| **r == "replica").count(),
        3,
        "{printed:?}"
    );
    let owner = ports
        .iter()
        .copied()
        .find(|&port| {
            let mut c = Conn::connect(port).expect("connect");
            !matches!(c.call(&["PRESENCE.COUNT", "r"]), Reply::Error(_))
        })
        .expect("a node that owns room r");
    let mut c = Conn::connect(owner).expect("connect");
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "u", "s"]), 1);
    assert_eq!(
        c.text(&["GET", "room:presence:{r}:u"]).as_deref(),
        Some("s")
    );
    let ids: Vec<Option<String>> = ports.iter().map(|&port| node_id(port)).collect();
    assert!(ids.iter().all(Option::is_some), "{ids:?}");
    script.terminate();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "Stopped."), "{rest:?}");
    // Another server may take a freed port at once: only the script's own nodes must be gone.
    let after: Vec<Option<String>> = ports.iter().map(|&port| node_id(port)).collect();
    assert!(
        ids.iter().zip(&after).all(|(id, now)| id != now),
        "nodes still up: {after:?}"
    );
}

/// The cluster node id of the server on `port`, if one answers there.
fn node_id(port: u16) -> Option<String> {
    match Conn::connect(port)
        .ok()?
        .try_call(&["CLUSTER", "MYID"])
        .ok()?
    {
        id @ Reply::Bulk(Some(_)) => id.text(),
        _ => None,
    }
}

/// A room whose users carry data moves to another shard while a client keeps updating their
/// data: the data keys live on the room's shard (its hash tag), move with it (the updates wait
/// with `TRYAGAIN` while the slot moves), none is lost or left behind, and the only events are
/// the updates.
#[test]
fn a_room_moved_under_updates_keeps_its_data_and_announces_only_the_updates() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use test_support::cluster::{keys_in_slot, room_channel, Listener, Migration, PresenceEvent};
    const N: usize = 100;
    let cluster = Cluster::start(
        3,
        Options::default().module("presence.sweep-interval", "50"),
    );
    let room = cluster.room_on(0, "data");
    let slot = key_slot(room.as_bytes());
    let (source, target) = (&cluster.masters[0], &cluster.masters[1]);
    let mut c = source.conn();
    for u in 0..N {
        let joined = c.int(&[
            "PRESENCE.JOIN",
            &room,
            &format!("u{u}"),
            &format!("s{u}"),
            "DATA",
            "[0]",
        ]);
        assert_eq!(joined, u as i64 + 1);
    }
    let key = format!("room:presence-data:{{{room}}}:u0");
    assert_eq!(
        key_slot(key.as_bytes()),
        slot,
        "the data key is in the room's slot"
    );
    assert_eq!(c.text(&["GET", key.as_str()]).as_deref(), Some("[0]"));
    assert_eq!(keys_in_slot(source, slot), 2 * N as i64);
    let mut listeners = vec![Listener::sharded(
        source,
        &room_channel(&room),
        false,
        "room channel on the source",
    )];
    let migration = Migration::begin(source, target, slot);
    listeners.push(Listener::sharded(
        target,
        &room_channel(&room),
        true,
        "room channel on the target",
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let updates = {
        let (ports, room, stop) = (cluster.ports(), room.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut client =
                test_support::cluster::ClusterClient::new(ports, Duration::from_secs(120));
            let mut last = vec!["[0]".to_string(); N];
            let mut step = 0usize;
            while !stop.load(Ordering::Relaxed) || step < 2 * N {
                let u = step * 37 % N;
                let data = format!("[{step}]");
                let reply = client.call(&[
                    "PRESENCE.UPDATE",
                    &room,
                    &format!("u{u}"),
                    &format!("s{u}"),
                    &data,
                ]);
                assert_eq!(reply, Reply::Int(1), "UPDATE u{u}");
                last[u] = data;
                step += 1;
            }
            (last, step, client.redirections.tryagain)
        })
    };
    while migration.move_batch(7).0 > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let masters: Vec<&test_support::Server> = cluster.masters.iter().collect();
    migration.finish(&masters);
    stop.store(true, Ordering::Relaxed);
    let (last, steps, tryagain) = updates.join().expect("the updates");
    println!("{steps} updates, {tryagain} TRYAGAIN answers waited out");
    assert_eq!(keys_in_slot(source, slot), 0, "nothing left behind");
    assert_eq!(keys_in_slot(target, slot), 2 * N as i64);
    let mut t = target.conn();
    let mut want: Vec<(String, String)> =
        (0..N).map(|u| (format!("u{u}"), last[u].clone())).collect();
    want.sort();
    let listed = t.strings(&["PRESENCE.LIST", &room, "WITHDATA"]);
    let listed: Vec<(String, String)> = listed
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    assert_eq!(listed, want, "no update lost");
    for u in 0..N {
        let data = format!("room:presence-data:{{{room}}}:u{u}");
        let presence = format!("room:presence:{{{room}}}:u{u}");
        assert_eq!(
            t.int(&["PEXPIRETIME", data.as_str()]),
            t.int(&["PEXPIRETIME", presence.as_str()]),
            "u{u}"
        );
    }
    let heard = test_support::cluster::stop_listeners(listeners);
    let events: Vec<PresenceEvent> = heard.iter().filter_map(PresenceEvent::parse).collect();
    assert!(
        events.iter().all(|e| e.event == "update"),
        "only updates: {:?}",
        events
            .iter()
            .filter(|e| e.event != "update")
            .take(5)
            .collect::<Vec<_>>()
    );
}
