//! Every command that overwrites a presence key with a value of another type, whatever its type
//! class: the index follows at once and announces `leave` with reason `deleted`.

use test_support::{Conn, Options, Reply, Server, Subscriber};

const KEY: &str = "room:presence:r:alice";

/// Source keys of every type for the overwriting commands.
fn sources(c: &mut Conn) {
    c.int(&["SADD", "src:set", "x"]);
    c.int(&["ZADD", "src:zset", "1", "x"]);
    c.int(&["RPUSH", "src:list", "3", "1", "2"]);
    c.int(&["GEOADD", "src:geo", "13.361389", "38.115556", "Palermo"]);
    c.int(&["HSET", "src:hash", "f", "v"]);
    c.text(&["XADD", "src:stream", "*", "f", "v"]);
}

/// Joins alice, runs `command`, and checks that the key changed type, that the room no longer
/// lists her, and that `leave` with reason `deleted` was announced.
fn overwritten_by(server: &Server, command: &[&str]) {
    let mut c = server.conn();
    c.call(&["FLUSHALL"]);
    sources(&mut c);
    let mut events = Subscriber::new(server, 0);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "alice", "sockA"]), 1);
    assert!(events.expect().channel.ends_with(":join"));
    let reply = c.call(command);
    assert!(!matches!(reply, Reply::Error(_)), "{command:?}: {reply:?}");
    let kind = c.text(&["TYPE", KEY]).unwrap_or_default();
    assert_ne!(kind, "string", "{command:?} left a string");
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r"]),
        Vec::<String>::new(),
        "{command:?}"
    );
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0, "{command:?}");
    let event = events.expect();
    assert_eq!(event.channel, "__presence@0__:leave", "{command:?}");
    assert_eq!(
        event.payload,
        r#"{"room":"r","user":"alice","socket":"sockA","count":0,"reason":"deleted"}"#,
        "{command:?}"
    );
    assert_eq!(
        c.info_field("presence", "presence_indexed"),
        "0",
        "{command:?}"
    );
}

#[test]
fn set_commands_that_store() {
    let server = Server::start();
    overwritten_by(&server, &["SUNIONSTORE", KEY, "src:set"]);
    overwritten_by(&server, &["SINTERSTORE", KEY, "src:set"]);
    overwritten_by(&server, &["SDIFFSTORE", KEY, "src:set"]);
}

#[test]
fn sorted_set_and_geo_commands_that_store() {
    let server = Server::start();
    overwritten_by(&server, &["ZUNIONSTORE", KEY, "1", "src:zset"]);
    overwritten_by(&server, &["ZINTERSTORE", KEY, "1", "src:zset"]);
    overwritten_by(&server, &["ZDIFFSTORE", KEY, "1", "src:zset"]);
    overwritten_by(&server, &["ZRANGESTORE", KEY, "src:zset", "0", "-1"]);
    overwritten_by(
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
    overwritten_by(
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
    let server = Server::start();
    overwritten_by(&server, &["SORT", "src:list", "STORE", KEY]);
}

#[test]
fn generic_commands_that_replace() {
    let server = Server::start();
    for source in ["src:set", "src:zset", "src:list", "src:hash", "src:stream"] {
        overwritten_by(&server, &["COPY", source, KEY, "REPLACE"]);
        overwritten_by(&server, &["RENAME", source, KEY]);
    }
    let mut c = server.conn();
    sources(&mut c);
    for source in ["src:set", "src:zset", "src:list", "src:hash", "src:stream"] {
        let dump = c.call(&["DUMP", source]);
        let Reply::Bulk(Some(payload)) = dump else {
            panic!("DUMP {source}: {dump:?}");
        };
        let mut args: Vec<Vec<u8>> = ["RESTORE", KEY, "0"]
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect();
        args.push(payload);
        args.push(b"REPLACE".to_vec());
        let restore: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let mut check = server.conn();
        check.call(&["FLUSHALL"]);
        sources(&mut check);
        let mut events = Subscriber::new(&server, 0);
        check.int(&["PRESENCE.JOIN", "r", "alice", "sockA"]);
        events.expect();
        assert_eq!(check.call(&restore).text().as_deref(), Some("OK"));
        assert_eq!(check.strings(&["PRESENCE.LIST", "r"]), Vec::<String>::new());
        let event = events.expect();
        assert!(
            event.payload.ends_with(r#""reason":"deleted"}"#),
            "{event:?}"
        );
    }
}

#[test]
fn scripts_that_replace_the_key() {
    let server = Server::start();
    overwritten_by(
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
    let server = Server::start();
    let mut c = server.conn();
    c.int(&["HSET", "room:presence:r:h", "f", "v"]);
    c.int(&["LPUSH", "room:presence:r:l", "v"]);
    c.int(&["SADD", "room:presence:r:s", "v"]);
    c.int(&["ZADD", "room:presence:r:z", "1", "v"]);
    c.text(&["XADD", "room:presence:r:x", "*", "f", "v"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
    assert_eq!(c.int(&["PRESENCE.SWEEP"]), 0);
    assert_eq!(c.int(&["DBSIZE"]), 5);
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
    events.expect();
    c.call(&["SET", "src:string", "sockB"]);
    let Reply::Bulk(Some(payload)) = c.call(&["DUMP", "src:string"]) else {
        panic!("DUMP src:string");
    };
    let restore = |key: &str| -> Vec<Vec<u8>> {
        vec![
            b"RESTORE".to_vec(),
            key.as_bytes().to_vec(),
            b"21600000".to_vec(),
            payload.clone(),
            b"REPLACE".to_vec(),
        ]
    };
    assert_eq!(
        c.call(&restore("src:restored")).text().as_deref(),
        Some("OK")
    );
    let encoding = c.text(&["OBJECT", "ENCODING", "src:restored"]);
    assert_eq!(c.call(&restore(KEY)).text().as_deref(), Some("OK"));
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
    assert_eq!(
        events.expect().payload,
        r#"{"room":"r","user":"alice","socket":"sockB","count":1}"#
    );
}
