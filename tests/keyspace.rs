//! The room index follows every way the keys can change, not only the module's commands:
//! raw clients doing plain `SET … EX`/`EXPIRE`/`DEL` and more, flushes, SWAPDB, reloads and restarts.

use std::collections::BTreeMap;
use test_support::{Conn, Options, Rng, Server};

/// What a full SCAN of the keys says: room → sorted (user, socket) of the live presences,
/// by the liveness rule with the default configs (live while PTTL > 21600 s − 90 s).
fn truth(c: &mut Conn) -> BTreeMap<String, Vec<(String, String)>> {
    test_support::presence_keys(c)
        .into_iter()
        .map(|(room, users)| {
            let live = users
                .into_iter()
                .filter(|(_, _, pttl)| *pttl > (21600 - 90) * 1000)
                .map(|(user, socket, _)| (user, socket))
                .collect::<Vec<_>>();
            (room, live)
        })
        .filter(|(_, live)| !live.is_empty())
        .collect()
}

/// What the module says about `rooms`.
fn module_view(c: &mut Conn, rooms: &[String]) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    for room in rooms {
        let flat = c.strings(&["PRESENCE.LIST", room.as_str(), "WITHSOCKETS"]);
        let users: Vec<(String, String)> = flat
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        assert_eq!(
            c.int(&["PRESENCE.COUNT", room.as_str()]) as usize,
            users.len(),
            "COUNT and LIST of {room} disagree"
        );
        if !users.is_empty() {
            out.insert(room.clone(), users);
        }
    }
    out
}

fn rooms(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("r{i}")).collect()
}

fn assert_module_matches_scan(c: &mut Conn, room_names: &[String]) {
    assert_eq!(module_view(c, room_names), truth(c));
}

#[test]
fn plain_set_expire_del_clients_are_followed() {
    let server = Server::start();
    let mut c = server.conn();
    c.call(&["SET", "room:presence:123:45", "sockA", "EX", "21600"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "123"]), 1);
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "123", "WITHSOCKETS"]),
        ["45", "sockA"]
    );
    assert_eq!(c.int(&["EXPIRE", "room:presence:123:45", "21600"]), 1);
    assert_eq!(c.int(&["PRESENCE.BEAT", "123", "45", "sockA"]), 1);
    c.int(&["DEL", "room:presence:123:45"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "123"]), 0);
    assert!(c.strings(&["PRESENCE.LIST", "123"]).is_empty());
}

#[test]
fn raw_commands_of_every_kind_are_followed() {
    let server = Server::with(Options::default().module("presence.sweep-interval", "3600000"));
    let mut c = server.conn();
    let all = rooms(3);
    let steps: Vec<Vec<&str>> = vec![
        vec!["SET", "room:presence:r0:a", "s1", "EX", "21600"],
        vec!["SET", "room:presence:r0:b", "s2", "PX", "21600000"],
        vec!["SET", "room:presence:r0:c", "s3"],
        vec!["EXPIRE", "room:presence:r0:c", "21600"],
        vec!["SETEX", "room:presence:r1:a", "21600", "s4"],
        vec!["PSETEX", "room:presence:r1:b", "21600000", "s5"],
        vec!["PERSIST", "room:presence:r1:b"],
        vec!["GETEX", "room:presence:r1:b", "EX", "21600"],
        vec!["SETRANGE", "room:presence:r1:b", "0", "x"],
        vec!["APPEND", "room:presence:r1:a", "-more"],
        vec!["RENAME", "room:presence:r0:a", "room:presence:r2:a"],
        vec!["RENAME", "room:presence:r0:b", "elsewhere"],
        vec!["RENAME", "elsewhere", "room:presence:r0:z"],
        vec!["UNLINK", "room:presence:r2:a"],
        vec!["SET", "room:presence:r2:q", "s9", "EX", "10"],
        vec!["GETEX", "room:presence:r2:q", "PERSIST"],
        vec!["COPY", "room:presence:r1:a", "room:presence:r2:copy"],
        vec!["EXPIRE", "room:presence:r2:copy", "21600"],
        vec!["GETDEL", "room:presence:r1:a"],
        vec![
            "MSET",
            "room:presence:r0:m1",
            "s",
            "room:presence:r0:m2",
            "t",
        ],
        vec!["INCR", "room:presence:r0:m1"],
    ];
    for step in steps {
        c.call(&step);
        assert_module_matches_scan(&mut c, &all);
    }
    let now_ms = c.strings(&["TIME"])[0].parse::<i64>().unwrap() * 1000;
    let at = (now_ms + 21_600_000).to_string();
    c.int(&["PEXPIREAT", "room:presence:r0:m2", at.as_str()]);
    assert_module_matches_scan(&mut c, &all);
    assert!(c
        .strings(&["PRESENCE.LIST", "r0"])
        .contains(&"m2".to_string()));
}

#[test]
fn move_and_swapdb_carry_presences_between_databases() {
    let server = Server::start();
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "a", "s"]);
    c.int(&["PRESENCE.JOIN", "r", "b", "s"]);
    c.int(&["MOVE", "room:presence:r:a", "1"]);
    let client = c.text(&["CLIENT", "INFO"]).unwrap_or_default();
    assert!(
        client.contains(" db=0 "),
        "MOVE changed the client's db: {client}"
    );
    assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["b"]);
    c.call(&["SELECT", "1"]);
    assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["a"]);
    c.call(&["SWAPDB", "0", "1"]);
    assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["b"]);
    c.call(&["SELECT", "0"]);
    assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["a"]);
}

#[test]
fn flushdb_and_flushall_empty_the_rooms() {
    let server = Server::start();
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "a", "s"]);
    c.call(&["SELECT", "2"]);
    c.int(&["PRESENCE.JOIN", "r", "b", "s"]);
    c.call(&["FLUSHDB"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
    c.call(&["SELECT", "0"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 1);
    c.call(&["FLUSHALL"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "c", "s"]), 1);
    c.call(&["FLUSHALL", "ASYNC"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
}

#[test]
fn a_random_mix_of_module_and_raw_operations_matches_a_full_scan() {
    let server = Server::with(Options::default().module("presence.sweep-interval", "3600000"));
    let mut c = server.conn();
    let all = rooms(4);
    let mut rng = Rng::new(0x5eed_1234);
    for step in 0..3000 {
        let room = format!("r{}", rng.below(4));
        let user = format!("u{}", rng.below(12));
        let socket = format!("s{}", rng.below(3));
        let key = format!("room:presence:{room}:{user}");
        let args: Vec<String> = match rng.below(12) {
            0 | 1 => vec!["PRESENCE.JOIN".into(), room, user, socket],
            2 => vec!["PRESENCE.BEAT".into(), room, user, socket],
            3 => vec!["PRESENCE.LEAVE".into(), room, user, socket],
            4 => vec!["SET".into(), key, socket, "EX".into(), "21600".into()],
            5 => vec!["EXPIRE".into(), key, "21600".into()],
            6 => vec!["EXPIRE".into(), key, "100".into()],
            7 => vec!["DEL".into(), key],
            8 => vec!["PERSIST".into(), key],
            9 => {
                let other = format!("room:presence:r{}:u{}", rng.below(4), rng.below(12));
                vec!["RENAME".into(), key, other]
            }
            10 => vec!["SET".into(), key, socket],
            _ => vec!["PRESENCE.SWEEP".into()],
        };
        c.call(&args);
        if step % 25 == 0 {
            assert_module_matches_scan(&mut c, &all);
        }
    }
    assert_module_matches_scan(&mut c, &all);
}

fn populate(c: &mut Conn) {
    c.int(&["PRESENCE.JOIN", "r", "a", "sa"]);
    c.int(&["PRESENCE.JOIN", "r", "b", "sb"]);
    c.int(&["PRESENCE.JOIN", "q", "c", "sc"]);
    c.int(&["PRESENCE.JOIN", "r", "stale", "sd"]);
    c.int(&["EXPIRE", "room:presence:r:stale", "1000"]);
    c.call(&["SELECT", "5"]);
    c.int(&["PRESENCE.JOIN", "r", "five", "s5"]);
    c.call(&["SELECT", "0"]);
}

fn assert_populated(c: &mut Conn) {
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS"]),
        ["a", "sa", "b", "sb"]
    );
    assert_eq!(c.int(&["PRESENCE.COUNT", "q"]), 1);
    c.call(&["SELECT", "5"]);
    assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["five"]);
    c.call(&["SELECT", "0"]);
}

#[test]
fn debug_reload_rebuilds_the_index() {
    let server = Server::with(Options::default().module("presence.sweep-interval", "3600000"));
    let mut c = server.conn();
    populate(&mut c);
    assert_eq!(c.text(&["DEBUG", "RELOAD"]).as_deref(), Some("OK"));
    // Valkey 8 leaves the client that ran DEBUG RELOAD in the database of the last key loaded
    // when a module listens to `loaded` events.
    c.call(&["SELECT", "0"]);
    assert_populated(&mut c);
    assert_eq!(c.int(&["PRESENCE.SWEEP"]), 1);
}

#[test]
fn a_restart_from_rdb_rebuilds_the_index() {
    let server = Server::with(Options::default().module("presence.sweep-interval", "3600000"));
    let mut c = server.conn();
    populate(&mut c);
    let server = server.restart();
    let mut c = server.conn();
    assert_populated(&mut c);
    assert_eq!(c.info_field("presence", "presence_indexed"), "5");
}

#[test]
fn module_load_into_a_populated_server_indexes_its_keys() {
    let server = Server::with(Options {
        without_module: true,
        ..Options::default()
    });
    let mut c = server.conn();
    c.call(&["SET", "room:presence:r:a", "sa", "EX", "21600"]);
    c.call(&["SET", "room:presence:r:b", "sb", "EX", "21600"]);
    c.call(&["SET", "room:presence:r:old", "sc", "EX", "60"]);
    c.call(&["SELECT", "7"]);
    c.call(&["SET", "room:presence:r:z", "sz", "EX", "21600"]);
    c.call(&["SELECT", "0"]);
    let module = test_support::module_path();
    let path = module.to_string_lossy();
    assert_eq!(
        c.text(&[
            "MODULE",
            "LOADEX",
            &path,
            "CONFIG",
            "presence.sweep-interval",
            "3600000"
        ])
        .as_deref(),
        Some("OK")
    );
    assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["a", "b"]);
    c.call(&["SELECT", "7"]);
    assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["z"]);
}
