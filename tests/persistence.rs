//! AOF and RDB: the module's writes replay to the same presences (and their data), and the dead
//! ones still go.

use std::collections::BTreeMap;
use std::time::Duration;
use test_support::{wait_for, Options, Server};

/// Rewrites the AOF (`BGREWRITEAOF`) and waits until it is done.
fn rewrite_aof(c: &mut test_support::Conn) {
    c.call(&["BGREWRITEAOF"]);
    wait_for(Duration::from_secs(20), "the AOF rewrite", || {
        (c.info_field("persistence", "aof_rewrite_in_progress") == "0"
            && c.info_field("persistence", "aof_rewrite_scheduled") == "0")
            .then_some(())
    });
}

#[test]
fn aof_rewrite_and_restart_bring_back_the_same_presences() {
    let server = Server::with(
        Options::default()
            .module("presence.sweep-interval", "3600000")
            .config("appendonly", "yes"),
    );
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "a", "sa"]);
    c.int(&["PRESENCE.JOIN", "r", "b", "sb"]);
    c.int(&["PRESENCE.JOIN", "r", "gone", "sg"]);
    c.int(&["PRESENCE.LEAVE", "r", "gone", "sg"]);
    c.int(&["PRESENCE.JOIN", "r", "stale", "ss"]);
    c.int(&["EXPIRE", "room:presence:r:stale", "1000"]);
    rewrite_aof(&mut c);
    c.int(&["PRESENCE.JOIN", "q", "c", "sc"]);
    c.int(&["PRESENCE.JOIN", "r", "b", "sb2"]);
    c.int(&["PRESENCE.BEAT", "r", "a", "sa"]);
    let before = c.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS"]);
    assert_eq!(before, ["a", "sa", "b", "sb2"]);
    let ttl_before = c.int(&["PTTL", "room:presence:r:a"]);
    let server = server.restart();
    let mut c = server.conn();
    assert_eq!(c.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS"]), before);
    assert_eq!(c.strings(&["PRESENCE.LIST", "q"]), ["c"]);
    let ttl_after = c.int(&["PTTL", "room:presence:r:a"]);
    assert!(ttl_after <= ttl_before && ttl_before - ttl_after < 30_000);
    assert_eq!(c.int(&["PRESENCE.SWEEP"]), 1);
    assert_eq!(c.int(&["EXISTS", "room:presence:r:stale"]), 0);
}

/// The node of the presences held through one in [`a_load_indexes_every_key_it_brings`].
const NODE: &str = "web-1.4242.k3f9";

/// Every room with presence keys in the server, with its keys' users and values (users in
/// order); each key has a TTL.
fn rooms_from_keys(c: &mut test_support::Conn) -> BTreeMap<String, Vec<(String, String)>> {
    test_support::presence_keys(c)
        .into_iter()
        .map(|(room, users)| {
            let users = users
                .into_iter()
                .map(|(user, value, pttl)| {
                    assert!(pttl > 0, "room:presence:{room}:{user} has a TTL");
                    (user, value)
                })
                .collect();
            (room, users)
        })
        .collect()
}

/// The index agrees with the keys: every room's `LIST … WITHSOCKETS` and `COUNT` against its
/// keys, and a room without keys is empty.
fn assert_index_is_the_keys(c: &mut test_support::Conn, want_rooms: usize, when: &str) {
    let rooms = rooms_from_keys(c);
    assert_eq!(rooms.len(), want_rooms, "{when}: rooms");
    for (room, users) in &rooms {
        let listed = c.strings(&["PRESENCE.LIST", room, "WITHSOCKETS"]);
        let want: Vec<String> = users
            .iter()
            .flat_map(|(user, socket)| [user.clone(), socket.clone()])
            .collect();
        assert_eq!(listed, want, "{when}: room {room}");
        assert_eq!(
            c.int(&["PRESENCE.COUNT", room]) as usize,
            users.len(),
            "{when}: count of {room}"
        );
    }
    assert_eq!(c.int(&["PRESENCE.COUNT", "never"]), 0);
}

/// A 20-character socket id.
fn socket(i: usize) -> String {
    format!("sock{i:016}")
}

/// A UUID-shaped user id.
fn uuid(i: usize) -> String {
    format!("{i:08x}-9c4e-4b1a-8f3d-{:012x}", i * 7919)
}

/// RDB, AOF (its RDB base, then its commands, some changing keys the base brought) and
/// `DEBUG RELOAD`: after each load the index is exactly the keys, with plain and UUID user ids,
/// sockets alone and held through a node with a lease.
#[test]
fn a_load_indexes_every_key_it_brings() {
    let options = Options::default()
        .module("presence.sweep-interval", "3600000")
        .module("presence.stale-after", "0")
        .config("appendonly", "yes");
    let mut server = Server::with(options.clone());
    let mut c = server.conn();
    assert_eq!(c.int(&["PRESENCE.LEASE", NODE, "3600000"]), 0);
    for i in 0..1200 {
        let room = format!("room{}", i % 23);
        let user = if i % 3 == 0 {
            uuid(i)
        } else {
            format!("user{i}")
        };
        let socket = if i % 4 == 0 {
            format!("{NODE}/{}", socket(i))
        } else {
            socket(i)
        };
        c.int(&["PRESENCE.JOIN", &room, &user, &socket]);
    }
    rewrite_aof(&mut c);
    // After the base: keys it holds change, go, and come, in the AOF's commands.
    c.int(&["PRESENCE.JOIN", "room1", "user1", "moved-to-another-sock"]);
    c.int(&[
        "PRESENCE.JOIN",
        "room4",
        &uuid(0),
        &format!("{NODE}/{}", socket(9999)),
    ]);
    c.int(&["PRESENCE.LEAVE", "room2", "user2", &socket(2)]);
    c.call(&[
        "SET",
        "room:presence:room5:user5",
        "raw-socket",
        "EX",
        "600",
    ]);
    c.call(&["DEL", "room:presence:room7:user7"]);
    c.call(&[
        "SET",
        "room:presence:room24:newcomer",
        "s-new",
        "PX",
        "900000",
    ]);
    c.int(&["PRESENCE.JOIN", "room7", "user7", "back-again"]);
    assert_index_is_the_keys(&mut c, 24, "before");

    server.kill();
    server.start_again(options.clone());
    let mut c = server.conn();
    assert!(c.int(&["DBSIZE"]) > 1200);
    assert_index_is_the_keys(&mut c, 24, "after the AOF load");
    let room1 = c.strings(&["PRESENCE.LIST", "room1", "WITHSOCKETS"]);
    let at = room1
        .iter()
        .position(|v| v == "user1")
        .expect("user1 listed");
    assert_eq!(room1[at + 1], "moved-to-another-sock");

    server.save();
    server.kill();
    server.start_again(options.clone().config("appendonly", "no"));
    let mut c = server.conn();
    assert_index_is_the_keys(&mut c, 24, "after the RDB load");

    c.call(&["DEBUG", "RELOAD"]);
    assert_index_is_the_keys(&mut c, 24, "after DEBUG RELOAD");
    // The node's lease came back with its key: releasing it takes its presences out.
    assert_eq!(c.int(&["PRESENCE.LEASE", NODE, "0"]), 1);
    let held = c.strings(&["PRESENCE.LIST", "room4", "WITHSOCKETS"]);
    assert!(
        held.iter().all(|value| !value.starts_with(NODE)),
        "{held:?}"
    );
}

/// `PRESENCE.LIST r WITHDATA` as the keys make it: each user with a presence key, followed by
/// its data key's value (empty for none).
fn withdata_from_keys(c: &mut test_support::Conn, room: &str) -> Vec<String> {
    let users: Vec<String> = test_support::presence_keys(c)
        .remove(room)
        .unwrap_or_default()
        .into_iter()
        .map(|(user, _, _)| user)
        .collect();
    users
        .into_iter()
        .flat_map(|user| {
            let data = c
                .text(&["GET", &format!("room:presence-data:{room}:{user}")])
                .unwrap_or_default();
            [user, data]
        })
        .collect()
}

/// RDB (`DEBUG RELOAD`, a restart) and AOF (a base, then commands after it): the data keys
/// come back with their presences, listed as the keys hold them; the data of a presence that
/// ended before the save stays gone, and a stale one's data goes with it at the first sweep.
#[test]
fn data_keys_come_back_with_their_presences_from_rdb_and_aof() {
    for appendonly in ["no", "yes"] {
        let server = Server::with(
            Options::default()
                .module("presence.sweep-interval", "3600000")
                .config("appendonly", appendonly),
        );
        let mut c = server.conn();
        c.int(&["PRESENCE.JOIN", "r", "a", "sa", "DATA", r#"{"name":"Ada"}"#]);
        c.int(&["PRESENCE.JOIN", "r", "b", "sb"]);
        c.int(&["PRESENCE.JOIN", "r", "gone", "sg", "DATA", "1"]);
        c.int(&["PRESENCE.LEAVE", "r", "gone", "sg"]);
        c.int(&["PRESENCE.JOIN", "r", "stale", "ss", "DATA", "2"]);
        c.int(&["EXPIRE", "room:presence:r:stale", "1000"]);
        if appendonly == "yes" {
            rewrite_aof(&mut c);
        }
        c.int(&["PRESENCE.JOIN", "r", "c", "sc", "DATA", "[3]"]);
        c.int(&["PRESENCE.UPDATE", "r", "a", "sa", r#"{"name":"Bob"}"#]);
        c.int(&["PRESENCE.JOIN", "r", "b", "sb", "DATA", "true"]);
        let want = ["a", r#"{"name":"Bob"}"#, "b", "true", "c", "[3]"];
        assert_eq!(c.strings(&["PRESENCE.LIST", "r", "WITHDATA"]), want);
        if appendonly == "no" {
            assert_eq!(c.text(&["DEBUG", "RELOAD"]).as_deref(), Some("OK"));
            assert_eq!(c.strings(&["PRESENCE.LIST", "r", "WITHDATA"]), want);
            c.call(&["SAVE"]);
        }
        let server = server.restart();
        let mut c = server.conn();
        let when = format!("appendonly {appendonly}");
        assert_eq!(
            c.strings(&["PRESENCE.LIST", "r", "WITHDATA"]),
            want,
            "{when}"
        );
        assert_eq!(c.int(&["EXISTS", "room:presence-data:r:gone"]), 0, "{when}");
        assert_eq!(c.int(&["PRESENCE.SWEEP"]), 1, "{when}");
        assert_eq!(
            c.int(&["EXISTS", "room:presence-data:r:stale"]),
            0,
            "{when}"
        );
        assert_eq!(withdata_from_keys(&mut c, "r"), want, "{when}");
    }
}
