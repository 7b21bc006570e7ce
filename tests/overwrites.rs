//! Every command that overwrites a presence key with a value of another type, whatever its type
//! class: the index follows at once and announces `leave` with reason `deleted`. Also the types
//! and commands Redis 7.4 and 8 added, on the servers that have them (asked, not guessed: Redis
//! 8 must have them all, see [`Features::of`]): vector sets, and hashes whose fields expire
//! (the last field to expire deletes the hash) at presence and lease key names.

use std::time::Duration;
use test_support::{wait_for, Conn, Features, Options, Reply, Server, Subscriber};

const KEY: &str = "room:presence:r:alice";

/// How long a hash field's expiry may take to delete its hash on a busy machine.
const FIELD_EXPIRY: Duration = Duration::from_secs(30);

/// One field of `INFO presence`.
fn presence_info(c: &mut Conn, field: &str) -> String {
    let info = c.text(&["INFO", "presence"]).unwrap_or_default();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("presence_{field}:")))
        .unwrap_or_else(|| panic!("no presence_{field} in INFO presence:\n{info}"))
        .to_string()
}

/// A server with the module and its default configs.
fn server() -> Server {
    Server::with(Options::default())
}

/// Source keys of every type the server has, for the overwriting commands: `src:vset` a vector
/// set, `src:hfe` a hash whose field expires in an hour.
fn sources(c: &mut Conn) {
    c.int(&["SADD", "src:set", "x"]);
    c.int(&["ZADD", "src:zset", "1", "x"]);
    c.int(&["RPUSH", "src:list", "3", "1", "2"]);
    c.int(&["GEOADD", "src:geo", "13.361389", "38.115556", "Palermo"]);
    c.int(&["HSET", "src:hash", "f", "v"]);
    c.text(&["XADD", "src:stream", "*", "f", "v"]);
    let features = Features::of(c);
    if features.vector_sets {
        c.int(&["VADD", "src:vset", "VALUES", "2", "1", "2", "e1"]);
    }
    if features.field_expiry {
        c.int(&["HSET", "src:hfe", "f", "v", "g", "w"]);
        c.call(&["HEXPIRE", "src:hfe", "3600", "FIELDS", "1", "f"]);
    }
}

/// The source keys [`sources`] made on this server.
fn source_names(c: &mut Conn) -> Vec<&'static str> {
    let features = Features::of(c);
    let mut names = vec!["src:set", "src:zset", "src:list", "src:hash", "src:stream"];
    if features.vector_sets {
        names.push("src:vset");
    }
    if features.field_expiry {
        names.push("src:hfe");
    }
    names
}

/// The `leave` of alice's presence held by `socket`, deleted, which empties the room.
fn deleted(socket: &str) -> String {
    format!(r#"{{"room":"r","user":"alice","socket":"{socket}","count":0,"reason":"deleted"}}"#)
}

/// The `join` of alice with `socket`, alone in the room.
fn joined(socket: &str) -> String {
    format!(r#"{{"room":"r","user":"alice","socket":"{socket}","count":1}}"#)
}

/// `command` as words for messages, a long argument (a `DUMP` payload) as its length.
fn shown(command: &[&[u8]]) -> String {
    let words: Vec<String> = command
        .iter()
        .map(|word| match word.len() {
            0..=40 => String::from_utf8_lossy(word).into_owned(),
            n => format!("<{n} bytes>"),
        })
        .collect();
    words.join(" ")
}

/// Joins alice, runs `command`, and checks that the key changed type, that the room no longer
/// lists her, and that `leave` with reason `deleted` was announced.
fn overwritten_by(server: &Server, command: &[&[u8]]) {
    let mut c = server.conn();
    c.call(&["FLUSHALL"]);
    sources(&mut c);
    let mut events = Subscriber::new(server, 0);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "alice", "sockA"]), 1);
    assert!(events.expect().channel.ends_with(":join"));
    let shown = shown(command);
    let reply = c.call(command);
    assert!(!matches!(reply, Reply::Error(_)), "{shown}: {reply:?}");
    let kind = c.text(&["TYPE", KEY]).unwrap_or_default();
    assert_ne!(kind, "string", "{shown} left a string");
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r"]),
        Vec::<String>::new(),
        "{shown}"
    );
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0, "{shown}");
    let event = events.expect();
    assert_eq!(event.channel, "__presence@0__:leave", "{shown}");
    assert_eq!(event.payload, deleted("sockA"), "{shown}");
    assert_eq!(presence_info(&mut c, "indexed"), "0", "{shown}");
}

/// [`overwritten_by`] for a command of words.
fn overwritten_by_words(server: &Server, command: &[&str]) {
    let words: Vec<&[u8]> = command.iter().map(|w| w.as_bytes()).collect();
    overwritten_by(server, &words);
}

/// `RESTORE KEY ttl_ms <dump of source> REPLACE`.
fn restore_over_key(c: &mut Conn, source: &str, ttl_ms: &str) -> Vec<Vec<u8>> {
    let dump = c.call(&["DUMP", source]);
    let Reply::Bulk(Some(payload)) = dump else {
        panic!("DUMP {source}: {dump:?}");
    };
    vec![
        b"RESTORE".to_vec(),
        KEY.as_bytes().to_vec(),
        ttl_ms.as_bytes().to_vec(),
        payload,
        b"REPLACE".to_vec(),
    ]
}

#[test]
fn set_commands_that_store() {
    let server = server();
    overwritten_by_words(&server, &["SUNIONSTORE", KEY, "src:set"]);
    overwritten_by_words(&server, &["SINTERSTORE", KEY, "src:set"]);
    overwritten_by_words(&server, &["SDIFFSTORE", KEY, "src:set"]);
}

#[test]
fn sorted_set_and_geo_commands_that_store() {
    let server = server();
    overwritten_by_words(&server, &["ZUNIONSTORE", KEY, "1", "src:zset"]);
    overwritten_by_words(&server, &["ZINTERSTORE", KEY, "1", "src:zset"]);
    overwritten_by_words(&server, &["ZDIFFSTORE", KEY, "1", "src:zset"]);
    overwritten_by_words(&server, &["ZRANGESTORE", KEY, "src:zset", "0", "-1"]);
    overwritten_by_words(
        &server,
        &[
            "GEOSEARCHSTORE",
            KEY,
            "src:geo",
            "FROMLONLAT",
            "15",
            "37",
            "BYRADIUS",
            "200",
            "km",
        ],
    );
    overwritten_by_words(
        &server,
        &[
            "GEORADIUS",
            "src:geo",
            "15",
            "37",
            "200",
            "km",
            "STORE",
            KEY,
        ],
    );
}

#[test]
fn list_commands_that_store() {
    let server = server();
    overwritten_by_words(&server, &["SORT", "src:list", "STORE", KEY]);
}

/// `COPY`, `RENAME` and `RESTORE` of every type the server has, vector sets and hashes with an
/// expiring field included. Redis 8.2 cannot `COPY` a vector set (the type has no copy
/// callback): the refused `COPY` must leave the presence as it was.
#[test]
fn generic_commands_that_replace() {
    let server = server();
    let mut c = server.conn();
    sources(&mut c);
    for source in source_names(&mut c) {
        let copy = ["COPY", source, KEY, "REPLACE"];
        if source == "src:vset" {
            c.call(&["FLUSHALL"]);
            sources(&mut c);
            c.int(&["PRESENCE.JOIN", "r", "alice", "sockA"]);
            if let Reply::Error(refused) = c.call(&copy) {
                assert!(refused.starts_with("ERR"), "{refused}");
                assert_eq!(c.text(&["TYPE", KEY]).as_deref(), Some("string"));
                assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["alice"]);
                assert_eq!(presence_info(&mut c, "indexed"), "1");
            } else {
                assert_eq!(c.text(&["TYPE", KEY]).as_deref(), Some("vectorset"));
                assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
            }
        } else {
            overwritten_by_words(&server, &copy);
        }
        overwritten_by_words(&server, &["RENAME", source, KEY]);
        sources(&mut c);
        let restore = restore_over_key(&mut c, source, "0");
        let words: Vec<&[u8]> = restore.iter().map(Vec::as_slice).collect();
        overwritten_by(&server, &words);
    }
}

#[test]
fn scripts_that_replace_the_key() {
    let server = server();
    overwritten_by_words(
        &server,
        &[
            "EVAL",
            "redis.call('SUNIONSTORE', KEYS[1], KEYS[2]) return 1",
            "2",
            KEY,
            "src:set",
        ],
    );
}

#[test]
fn keys_of_other_types_under_the_prefix_are_never_presences() {
    let server = server();
    let mut c = server.conn();
    c.int(&["HSET", "room:presence:r:h", "f", "v"]);
    c.int(&["LPUSH", "room:presence:r:l", "v"]);
    c.int(&["SADD", "room:presence:r:s", "v"]);
    c.int(&["ZADD", "room:presence:r:z", "1", "v"]);
    c.text(&["XADD", "room:presence:r:x", "*", "f", "v"]);
    let mut users = vec!["h", "l", "s", "z", "x"];
    let features = Features::of(&mut c);
    if features.vector_sets {
        c.int(&["VADD", "room:presence:r:v", "VALUES", "2", "1", "2", "e"]);
        users.push("v");
    }
    if features.hash_ex {
        let set = [
            "HSETEX",
            "room:presence:r:e",
            "EX",
            "3600",
            "FIELDS",
            "1",
            "f",
            "v",
        ];
        c.int(&set);
        users.push("e");
    }
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
    assert_eq!(c.int(&["PRESENCE.SWEEP"]), 0);
    assert_eq!(c.int(&["DBSIZE"]), users.len() as i64);
    for user in users {
        let join = c.err(&["PRESENCE.JOIN", "r", user, "s"]);
        assert!(join.starts_with("WRONGTYPE"), "{user}: {join}");
    }
}

/// `RESTORE` writes the key before it has finished with it (Redis 8 still reads the key's object
/// after the notification): the module must not re-encode the value there (reading a short
/// string through the module API makes a new object in place of the one Redis holds). So right
/// after `RESTORE` the value is encoded as Redis wrote it, as for any other key; the presence is
/// read once the command is done, before the next module command.
#[test]
fn restore_leaves_the_value_alone_until_it_is_done() {
    let server = Server::with(Options::default().module("presence.sweep-interval", "3600000"));
    let mut c = server.conn();
    let mut events = Subscriber::new(&server, 0);
    c.int(&["PRESENCE.JOIN", "r", "alice", "sockA"]);
    assert_eq!(events.expect().payload, joined("sockA"));
    c.call(&["SET", "src:string", "sockB"]);
    let restore = restore_over_key(&mut c, "src:string", "21600000");
    let mut plain = restore.clone();
    plain[1] = b"src:restored".to_vec();
    assert_eq!(c.call(&plain).text().as_deref(), Some("OK"));
    let encoding = c.text(&["OBJECT", "ENCODING", "src:restored"]);
    assert_eq!(c.call(&restore).text().as_deref(), Some("OK"));
    assert_eq!(c.text(&["OBJECT", "ENCODING", KEY]), encoding);
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS"]),
        ["alice", "sockB"]
    );
    let replaced = events.expect();
    assert_eq!(replaced.channel, "__presence@0__:force-leave");
    assert_eq!(
        replaced.payload,
        r#"{"room":"r","user":"alice","socket":"sockA","count":1,"reason":"replaced"}"#
    );
    assert_eq!(events.expect().payload, joined("sockB"));
}

/// Vector sets only ever come to a presence key name from another key (`VADD` on a string
/// answers WRONGTYPE): through `MOVE` and `SWAPDB` too, both ways.
#[test]
fn vector_sets_moved_and_swapped_between_databases() {
    let server = server();
    let mut c = server.conn();
    if !Features::of(&mut c).vector_sets {
        return;
    }
    let mut other = server.conn();
    other.call(&["SELECT", "1"]);
    c.int(&["PRESENCE.JOIN", "r", "alice", "sockA"]);
    let vadd = ["VADD", KEY, "VALUES", "2", "1", "2", "e"];
    assert!(c.err(&vadd).starts_with("WRONGTYPE"));
    assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["alice"]);
    other.int(&vadd);
    c.call(&["SWAPDB", "0", "1"]);
    assert_eq!(c.text(&["TYPE", KEY]).as_deref(), Some("vectorset"));
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
    assert_eq!(other.strings(&["PRESENCE.LIST", "r"]), ["alice"]);
    assert_eq!(c.int(&["MOVE", KEY, "1"]), 0, "db 1 holds the presence");
    assert_eq!(other.int(&["MOVE", KEY, "0"]), 0, "db 0 holds the set");
    other.int(&["DEL", KEY]);
    assert_eq!(c.int(&["MOVE", KEY, "1"]), 1);
    assert_eq!(other.int(&["PRESENCE.COUNT", "r"]), 0);
    assert!(other
        .err(&["PRESENCE.JOIN", "r", "alice", "sockB"])
        .starts_with("WRONGTYPE"));
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "alice", "sockC"]), 1);
    assert_eq!(other.int(&["MOVE", KEY, "0"]), 0, "db 0 holds a presence");
    c.call(&["SWAPDB", "0", "1"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
    assert_eq!(
        other.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS"]),
        ["alice", "sockC"]
    );
    assert_eq!(presence_info(&mut c, "indexed"), "1");
}

/// Hash field expiry never touches a presence (`HSETEX`, `HGETEX` and `HGETDEL` answer WRONGTYPE
/// on a string); a hash at a presence key name is no presence, and once its last field has
/// expired or been taken (which deletes the hash) the name is free for a presence again.
#[test]
fn hashes_whose_fields_expire_at_presence_key_names() {
    let server = server();
    let mut c = server.conn();
    let features = Features::of(&mut c);
    if !features.field_expiry {
        return;
    }
    let mut events = Subscriber::new(&server, 0);
    c.int(&["PRESENCE.JOIN", "r", "alice", "sockA"]);
    assert_eq!(events.expect().payload, joined("sockA"));
    let hexpire = ["HEXPIRE", KEY, "1", "FIELDS", "1", "f"];
    assert!(c.err(&hexpire).starts_with("WRONGTYPE"));
    if features.hash_ex {
        for command in [
            &["HSETEX", KEY, "PX", "100", "FIELDS", "1", "f", "v"][..],
            &["HGETEX", KEY, "PX", "1", "FIELDS", "1", "f"],
            &["HGETDEL", KEY, "FIELDS", "1", "f"],
        ] {
            let refused = c.err(command);
            assert!(refused.starts_with("WRONGTYPE"), "{command:?}: {refused}");
        }
    }
    assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["alice"]);
    // A hash whose last field expires replaces the presence, then goes.
    c.call(&["HSET", "src:h", "f", "v"]);
    c.call(&["RENAME", "src:h", KEY]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
    assert_eq!(events.expect().payload, deleted("sockA"));
    c.call(&["HPEXPIRE", KEY, "50", "FIELDS", "1", "f"]);
    wait_for(FIELD_EXPIRY, "the emptied hash to go", || {
        (c.int(&["EXISTS", KEY]) == 0).then_some(())
    });
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "alice", "sockB"]), 1);
    assert_eq!(events.expect().payload, joined("sockB"));
    if !features.hash_ex {
        return;
    }
    // `HGETDEL` and `HGETEX` that take the last field delete the hash at once.
    c.int(&["DEL", KEY]);
    assert_eq!(events.expect().payload, deleted("sockB"));
    let make = ["HSETEX", KEY, "EX", "3600", "FIELDS", "1", "f", "v"];
    c.int(&make);
    assert!(c
        .err(&["PRESENCE.JOIN", "r", "alice", "sockC"])
        .starts_with("WRONGTYPE"));
    c.call(&["HGETDEL", KEY, "FIELDS", "1", "f"]);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "alice", "sockC"]), 1);
    assert_eq!(events.expect().payload, joined("sockC"));
    c.int(&["DEL", KEY]);
    assert_eq!(events.expect().payload, deleted("sockC"));
    c.int(&make);
    c.call(&["HGETEX", KEY, "PXAT", "1", "FIELDS", "1", "f"]);
    assert_eq!(c.int(&["EXISTS", KEY]), 0);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "alice", "sockD"]), 1);
    assert_eq!(events.expect().payload, joined("sockD"));
}

/// `RESTORE … REPLACE` of a hash whose fields have all expired since its `DUMP`: Redis writes
/// the hash over the presence and deletes it at once. The presence ends once, and the name is
/// free again.
#[test]
fn restoring_a_hash_whose_fields_all_expired() {
    let server = server();
    let mut c = server.conn();
    if !Features::of(&mut c).field_expiry {
        return;
    }
    // In one transaction, so that the field cannot expire before the `DUMP`.
    c.call(&["MULTI"]);
    c.call(&["HSET", "src:h", "f", "v"]);
    c.call(&["HPEXPIRE", "src:h", "1", "FIELDS", "1", "f"]);
    c.call(&["DUMP", "src:h"]);
    let Reply::Array(Some(mut replies)) = c.call(&["EXEC"]) else {
        panic!("EXEC failed");
    };
    let Some(Reply::Bulk(Some(payload))) = replies.pop() else {
        panic!("DUMP src:h: {replies:?}");
    };
    wait_for(FIELD_EXPIRY, "the dumped field to expire", || {
        (c.int(&["EXISTS", "src:h"]) == 0).then_some(())
    });
    let restore: [&[u8]; 5] = [b"RESTORE", KEY.as_bytes(), b"0", &payload, b"REPLACE"];
    let mut events = Subscriber::new(&server, 0);
    c.int(&["PRESENCE.JOIN", "r", "alice", "sockA"]);
    assert_eq!(events.expect().payload, joined("sockA"));
    assert_eq!(c.call(&restore).text().as_deref(), Some("OK"));
    wait_for(FIELD_EXPIRY, "the restored hash to go", || {
        (c.int(&["EXISTS", KEY]) == 0).then_some(())
    });
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "alice", "sockB"]), 1);
    let event = events.expect();
    assert_eq!(event.channel, "__presence@0__:leave");
    assert_eq!(event.payload, deleted("sockA"));
    assert_eq!(events.expect().payload, joined("sockB"));
    assert_eq!(presence_info(&mut c, "indexed"), "1");
}

/// A lease key holding a hash is no lease (`PRESENCE.LEASE` answers WRONGTYPE, a join through
/// the node is refused); a string lease replaced by a hash ends the node at once, and the hash
/// that goes when its field expires changes nothing more.
#[test]
fn hashes_with_expiring_fields_at_lease_key_names() {
    let server = Server::with(Options::default().module("presence.sweep-interval", "50"));
    let mut c = server.conn();
    let features = Features::of(&mut c);
    if !features.field_expiry {
        return;
    }
    let lease = "presence:node:web-1";
    c.int(&["HSET", lease, "host", "a"]);
    c.call(&["HEXPIRE", lease, "3600", "FIELDS", "1", "host"]);
    assert!(c
        .err(&["PRESENCE.LEASE", "web-1", "10000"])
        .starts_with("WRONGTYPE"));
    assert!(c
        .err(&["PRESENCE.JOIN", "r", "alice", "web-1/sockA"])
        .starts_with("NOLEASE"));
    c.int(&["DEL", lease]);
    assert_eq!(c.int(&["PRESENCE.LEASE", "web-1", "60000"]), 0);
    let mut events = Subscriber::new(&server, 0);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "alice", "web-1/sockA"]), 1);
    assert_eq!(events.expect().payload, joined("web-1/sockA"));
    c.int(&["HSET", "src:h", "host", "b"]);
    c.call(&["RENAME", "src:h", lease]);
    assert_eq!(
        c.int(&["PRESENCE.COUNT", "r"]),
        0,
        "the node is down at once"
    );
    c.call(&["HPEXPIRE", lease, "50", "FIELDS", "1", "host"]);
    let ended = [events.expect(), events.expect()];
    assert_eq!(ended[0].channel, "__presence@0__:node-down");
    assert_eq!(ended[0].payload, r#"{"node":"web-1","presences":1}"#);
    assert_eq!(ended[1].channel, "__presence@0__:force-leave");
    assert_eq!(
        ended[1].payload,
        r#"{"room":"r","user":"alice","socket":"web-1/sockA","count":0,"reason":"node-down"}"#
    );
    wait_for(FIELD_EXPIRY, "the hash at the lease name to go", || {
        (c.int(&["EXISTS", lease]) == 0).then_some(())
    });
    assert_eq!(c.int(&["PRESENCE.LEASE", "web-1", "60000"]), 0);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "alice", "web-1/sockB"]), 1);
    assert_eq!(events.expect().payload, joined("web-1/sockB"));
    assert_eq!(presence_info(&mut c, "leases"), "1");
}
