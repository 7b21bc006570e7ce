//! Every command against a real server: replies, the keys they leave, and every bad input.

use test_support::{Reply, Server};

const INVALID_ROOM: &str = "ERR invalid room id: use 1 to 128 bytes of A-Z a-z 0-9 - _ . @ + = ~";
const INVALID_USER: &str = "ERR invalid user id: use 1 to 128 bytes of A-Z a-z 0-9 - _ . @ + = ~";
const INVALID_SOCKET: &str =
    "ERR invalid socket id: use 1 to 128 bytes of A-Z a-z 0-9 - _ . @ + = ~, or <node>/<socket>";
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn join_writes_the_documented_key_format_value_and_ttl() {
    let server = Server::start();
    let mut c = server.conn();
    assert_eq!(c.int(&["PRESENCE.JOIN", "123", "45", "sockA"]), 1);
    assert_eq!(
        c.text(&["GET", "room:presence:123:45"]).as_deref(),
        Some("sockA")
    );
    let ttl = c.int(&["TTL", "room:presence:123:45"]);
    assert!((21_500..=21_600).contains(&ttl), "ttl {ttl}");
    assert_eq!(
        c.text(&["TYPE", "room:presence:123:45"]).as_deref(),
        Some("string")
    );
    assert_eq!(c.int(&["PRESENCE.JOIN", "123", "46", "sockB"]), 2);
    assert_eq!(c.int(&["PRESENCE.COUNT", "123"]), 2);
    assert_eq!(c.int(&["PRESENCE.COUNT", "999"]), 0);
}

#[test]
fn join_again_refreshes_or_replaces() {
    let server = Server::start();
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s1"]);
    c.int(&["EXPIRE", "room:presence:r:u", "21000"]);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "u", "s1"]), 1);
    assert!(c.int(&["TTL", "room:presence:r:u"]) > 21500);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "u", "s2"]), 1);
    assert_eq!(c.text(&["GET", "room:presence:r:u"]).as_deref(), Some("s2"));
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS"]),
        ["u", "s2"]
    );
}

#[test]
fn beat_refreshes_only_the_holding_socket() {
    let server = Server::start();
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s1"]);
    // Beaten 40 s ago (stale after 90 s); the beat brings the TTL back to 21600 s.
    c.int(&["EXPIRE", "room:presence:r:u", "21560"]);
    assert_eq!(c.int(&["PRESENCE.BEAT", "r", "u", "s1"]), 1);
    assert!(c.int(&["PTTL", "room:presence:r:u"]) > 21_580_000);
    assert_eq!(c.int(&["PRESENCE.BEAT", "r", "u", "other"]), 0);
    assert_eq!(c.int(&["PRESENCE.BEAT", "r", "nobody", "s1"]), 0);
    assert_eq!(c.int(&["PRESENCE.BEAT", "nowhere", "u", "s1"]), 0);
    assert_eq!(c.text(&["GET", "room:presence:r:u"]).as_deref(), Some("s1"));
}

#[test]
fn beat_on_a_stale_presence_removes_it() {
    let server = Server::start();
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s1"]);
    c.int(&["EXPIRE", "room:presence:r:u", "100"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
    assert_eq!(c.int(&["PRESENCE.BEAT", "r", "u", "s1"]), 0);
    assert_eq!(c.int(&["EXISTS", "room:presence:r:u"]), 0);
}

#[test]
fn leave_deletes_only_the_holding_socket() {
    let server = Server::start();
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s1"]);
    assert_eq!(c.int(&["PRESENCE.LEAVE", "r", "u", "other"]), 0);
    assert_eq!(c.int(&["EXISTS", "room:presence:r:u"]), 1);
    assert_eq!(c.int(&["PRESENCE.LEAVE", "r", "u", "s1"]), 1);
    assert_eq!(c.int(&["EXISTS", "room:presence:r:u"]), 0);
    assert_eq!(c.int(&["PRESENCE.LEAVE", "r", "u", "s1"]), 0);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
}

#[test]
fn list_orders_by_user_and_takes_options() {
    let server = Server::start();
    let mut c = server.conn();
    for (user, socket) in [("carol", "s3"), ("alice", "s1"), ("Bob", "s2"), ("0", "s0")] {
        c.int(&["PRESENCE.JOIN", "r", user, socket]);
    }
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r"]),
        ["0", "Bob", "alice", "carol"]
    );
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r", "LIMIT", "2"]),
        ["0", "Bob"]
    );
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r", "limit", "1", "withsockets"]),
        ["0", "s0"]
    );
    assert!(c.strings(&["PRESENCE.LIST", "r", "LIMIT", "0"]).is_empty());
    assert!(c.strings(&["PRESENCE.LIST", "empty"]).is_empty());
}

#[test]
fn list_and_count_hide_presences_that_are_not_live_before_any_sweep() {
    let server =
        Server::with(test_support::Options::default().module("presence.sweep-interval", "3600000"));
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "live", "s"]);
    c.int(&["PRESENCE.JOIN", "r", "stale", "s"]);
    c.int(&["PRESENCE.JOIN", "r", "nottl", "s"]);
    c.int(&["EXPIRE", "room:presence:r:stale", "21000"]);
    c.int(&["PERSIST", "room:presence:r:nottl"]);
    assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["live"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 1);
    assert_eq!(
        c.int(&["EXISTS", "room:presence:r:stale", "room:presence:r:nottl"]),
        2
    );
}

#[test]
fn every_invalid_id_is_refused_and_writes_nothing() {
    let server = Server::start();
    let mut c = server.conn();
    let long = "a".repeat(129);
    let bad: Vec<&[u8]> = vec![
        b"",
        b"a:b",
        b"{a}",
        b"a*",
        b"a?",
        b"[a]",
        b"a\\b",
        b"a/b/c",
        b"n/",
        b"/s",
        b"\"a\"",
        b"a b",
        b"a\r\nb",
        b"a\0b",
        b"\xff\xfe",
        long.as_bytes(),
    ];
    for id in &bad {
        for (cmd, position, message) in [
            ("PRESENCE.JOIN", 0, INVALID_ROOM),
            ("PRESENCE.JOIN", 1, INVALID_USER),
            ("PRESENCE.JOIN", 2, INVALID_SOCKET),
            ("PRESENCE.BEAT", 0, INVALID_ROOM),
            ("PRESENCE.BEAT", 1, INVALID_USER),
            ("PRESENCE.BEAT", 2, INVALID_SOCKET),
            ("PRESENCE.LEAVE", 0, INVALID_ROOM),
            ("PRESENCE.LEAVE", 1, INVALID_USER),
            ("PRESENCE.LEAVE", 2, INVALID_SOCKET),
        ] {
            let mut args: Vec<&[u8]> = vec![cmd.as_bytes(), b"room", b"user", b"socket"];
            args[position + 1] = id;
            assert_eq!(c.err(&args), message, "{cmd} with {id:?} at {position}");
        }
        assert_eq!(c.err(&[&b"PRESENCE.LIST"[..], id]), INVALID_ROOM);
        assert_eq!(c.err(&[&b"PRESENCE.COUNT"[..], id]), INVALID_ROOM);
    }
    assert_eq!(c.int(&["DBSIZE"]), 0);
}

#[test]
fn the_longest_valid_ids_work() {
    let server = Server::start();
    let mut c = server.conn();
    let id = "x".repeat(128);
    assert_eq!(
        c.int(&["PRESENCE.JOIN", id.as_str(), id.as_str(), id.as_str()]),
        1
    );
    assert_eq!(c.strings(&["PRESENCE.LIST", id.as_str()]), vec![id.clone()]);
}

#[test]
fn huge_arguments_are_refused() {
    let server = Server::start();
    let mut c = server.conn();
    let huge = vec![b'a'; 1 << 20];
    assert_eq!(
        c.err(&[&b"PRESENCE.JOIN"[..], &huge, b"u", b"s"]),
        INVALID_ROOM
    );
    assert_eq!(
        c.err(&[&b"PRESENCE.LIST"[..], b"r", b"LIMIT", &huge]),
        "ERR LIMIT must be followed by a non-negative integer"
    );
    assert_eq!(c.int(&["DBSIZE"]), 0);
}

#[test]
fn wrong_arity_answers_the_standard_error() {
    let server = Server::start();
    let mut c = server.conn();
    for (args, name) in [
        (vec!["PRESENCE.JOIN", "r", "u"], "presence.join"),
        (vec!["PRESENCE.UPDATE", "r", "u", "s"], "presence.update"),
        (
            vec!["PRESENCE.UPDATE", "r", "u", "s", "1", "2"],
            "presence.update",
        ),
        (vec!["PRESENCE.BEAT", "r"], "presence.beat"),
        (vec!["PRESENCE.LEAVE"], "presence.leave"),
        (vec!["PRESENCE.LIST"], "presence.list"),
        (vec!["PRESENCE.COUNT"], "presence.count"),
        (vec!["PRESENCE.COUNT", "r", "x"], "presence.count"),
        (vec!["PRESENCE.SWEEP", "x"], "presence.sweep"),
    ] {
        assert_eq!(
            c.err(&args),
            format!("ERR wrong number of arguments for '{name}' command"),
            "{args:?}"
        );
    }
    assert_eq!(
        c.err(&["PRESENCE.JOIN", "r", "u", "s", "x"]),
        "ERR syntax error",
        "JOIN takes an optional DATA json"
    );
}

#[test]
fn list_options_are_checked() {
    let server = Server::start();
    let mut c = server.conn();
    for args in [
        vec!["PRESENCE.LIST", "r", "FOO"],
        vec!["PRESENCE.LIST", "r", "WITHSOCKETS", "WITHSOCKETS"],
        vec!["PRESENCE.LIST", "r", "LIMIT", "1", "LIMIT", "1"],
    ] {
        assert_eq!(c.err(&args), "ERR syntax error", "{args:?}");
    }
    for args in [
        vec!["PRESENCE.LIST", "r", "LIMIT"],
        vec!["PRESENCE.LIST", "r", "LIMIT", "-1"],
        vec!["PRESENCE.LIST", "r", "LIMIT", "1.5"],
    ] {
        assert_eq!(
            c.err(&args),
            "ERR LIMIT must be followed by a non-negative integer",
            "{args:?}"
        );
    }
}

#[test]
fn a_presence_key_of_another_type_is_wrongtype_and_kept() {
    let server = Server::start();
    let mut c = server.conn();
    c.int(&["RPUSH", "room:presence:r:u", "x"]);
    for cmd in ["PRESENCE.JOIN", "PRESENCE.BEAT", "PRESENCE.LEAVE"] {
        assert_eq!(c.err(&[cmd, "r", "u", "s"]), WRONGTYPE, "{cmd}");
    }
    assert_eq!(
        c.strings(&["LRANGE", "room:presence:r:u", "0", "-1"]),
        ["x"]
    );
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
}

#[test]
fn a_string_that_is_not_a_presence_is_neither_listed_nor_beaten() {
    let server = Server::start();
    let mut c = server.conn();
    c.call(&["SET", "room:presence:r:u", "not a socket", "EX", "21600"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
    assert_eq!(c.int(&["PRESENCE.BEAT", "r", "u", "s"]), 0);
    assert_eq!(c.int(&["PRESENCE.LEAVE", "r", "u", "s"]), 0);
    assert_eq!(c.int(&["PRESENCE.JOIN", "r", "u", "s"]), 1);
    assert_eq!(c.text(&["GET", "room:presence:r:u"]).as_deref(), Some("s"));
}

#[test]
fn multi_exec_runs_the_commands_atomically() {
    let server = Server::start();
    let mut c = server.conn();
    c.call(&["MULTI"]);
    for args in [
        vec!["PRESENCE.JOIN", "r", "a", "sa"],
        vec!["PRESENCE.JOIN", "r", "b", "sb"],
        vec!["PRESENCE.LEAVE", "r", "a", "sa"],
        vec!["PRESENCE.COUNT", "r"],
        vec!["PRESENCE.LIST", "r"],
    ] {
        assert_eq!(c.call(&args), Reply::Status("QUEUED".into()));
    }
    let Reply::Array(Some(replies)) = c.call(&["EXEC"]) else {
        panic!("EXEC did not answer an array");
    };
    assert_eq!(
        replies,
        vec![
            Reply::Int(1),
            Reply::Int(2),
            Reply::Int(1),
            Reply::Int(1),
            Reply::Array(Some(vec![Reply::Bulk(Some(b"b".to_vec()))])),
        ]
    );
}

#[test]
fn lua_scripts_can_call_the_commands() {
    let server = Server::start();
    let mut c = server.conn();
    let script = "redis.call('PRESENCE.JOIN', KEYS[1], 'u1', 's1'); \
                  redis.call('PRESENCE.JOIN', KEYS[1], 'u2', 's2'); \
                  return {redis.call('PRESENCE.COUNT', KEYS[1]), redis.call('PRESENCE.LIST', KEYS[1])}";
    let reply = c.call(&["EVAL", script, "1", "r"]);
    assert_eq!(
        reply,
        Reply::Array(Some(vec![
            Reply::Int(2),
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"u1".to_vec())),
                Reply::Bulk(Some(b"u2".to_vec())),
            ])),
        ]))
    );
    let error = c.err(&[
        "EVAL",
        "return redis.pcall('PRESENCE.JOIN', 'a:b', 'u', 's')",
        "0",
    ]);
    assert_eq!(error, INVALID_ROOM);
}

#[test]
fn commands_work_in_every_database() {
    let server = Server::start();
    let mut c = server.conn();
    c.call(&["SELECT", "3"]);
    c.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 1);
    c.call(&["SELECT", "0"]);
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 0);
    assert_eq!(c.int(&["EXISTS", "room:presence:r:u"]), 0);
}

#[test]
fn sweep_removes_what_is_not_live_and_counts_it() {
    let server =
        Server::with(test_support::Options::default().module("presence.sweep-interval", "3600000"));
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "a", "s"]);
    c.int(&["PRESENCE.JOIN", "r", "b", "s"]);
    c.int(&["PRESENCE.JOIN", "r", "c", "s"]);
    c.int(&["EXPIRE", "room:presence:r:a", "60"]);
    c.int(&["PERSIST", "room:presence:r:b"]);
    assert_eq!(c.int(&["PRESENCE.SWEEP"]), 2);
    assert_eq!(c.int(&["PRESENCE.SWEEP"]), 0);
    assert_eq!(c.strings(&["KEYS", "*"]), ["room:presence:r:c"]);
}

#[test]
fn info_reports_the_index() {
    let server = Server::start();
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r1", "a", "s"]);
    c.int(&["PRESENCE.JOIN", "r1", "b", "s"]);
    c.int(&["PRESENCE.JOIN", "r2", "a", "s"]);
    c.int(&["EXPIRE", "room:presence:r2:a", "10"]);
    assert_eq!(c.info_field("presence", "presence_live"), "2");
    assert_eq!(c.info_field("presence", "presence_rooms"), "2");
    assert_eq!(c.info_field("presence", "presence_indexed"), "3");
    for field in [
        "presence_backlog",
        "presence_sweeps",
        "presence_swept",
        "presence_events",
        "presence_sweep_tick_max_us",
        "presence_sweep_tick_max_cpu_us",
        "presence_ticks_over_5ms_cpu",
        "presence_command_max_cpu_us",
        "presence_commands_over_5ms_cpu",
    ] {
        c.info_field("presence", field);
    }
}

#[test]
fn the_documented_acl_rule_grants_the_commands_by_room_id() {
    let server = Server::start();
    let mut admin = server.conn();
    let rule = [
        "ACL",
        "SETUSER",
        "app",
        "on",
        ">secret",
        "+presence.join",
        "+presence.beat",
        "+presence.leave",
        "+presence.list",
        "+presence.count",
        "+psubscribe",
        "~live-*",
        "&__presence@*",
    ];
    assert_eq!(admin.call(&rule), Reply::Status("OK".into()));
    let mut app = server.conn();
    assert_eq!(
        app.call(&["AUTH", "app", "secret"]),
        Reply::Status("OK".into())
    );
    assert_eq!(app.int(&["PRESENCE.JOIN", "live-1", "u", "s"]), 1);
    assert_eq!(app.int(&["PRESENCE.BEAT", "live-1", "u", "s"]), 1);
    assert_eq!(app.strings(&["PRESENCE.LIST", "live-1"]), ["u"]);
    assert_eq!(app.int(&["PRESENCE.LEAVE", "live-1", "u", "s"]), 1);
    assert!(app
        .err(&["PRESENCE.JOIN", "other", "u", "s"])
        .starts_with("NOPERM"));
    assert!(app.err(&["PRESENCE.SWEEP"]).starts_with("NOPERM"));
    assert!(app
        .err(&["GET", "room:presence:live-1:u"])
        .starts_with("NOPERM"));
}

#[test]
fn watch_sees_the_module_writes() {
    let server = Server::start();
    let mut watcher = server.conn();
    let mut other = server.conn();
    for write in [
        vec!["PRESENCE.JOIN", "r", "u", "s"],
        vec!["PRESENCE.BEAT", "r", "u", "s"],
        vec!["PRESENCE.LEAVE", "r", "u", "s"],
    ] {
        watcher.call(&["WATCH", "room:presence:r:u"]);
        watcher.call(&["MULTI"]);
        watcher.call(&["PING"]);
        assert_eq!(other.call(&write).int(), 1, "{write:?}");
        assert_eq!(watcher.call(&["EXEC"]), Reply::Array(None), "{write:?}");
    }
}

#[test]
fn random_arguments_never_bring_the_server_down() {
    let server = Server::start();
    let mut c = server.conn();
    let mut rng = test_support::Rng::new(0xdead_beef);
    let words: [&[u8]; 10] = [
        b"r",
        b"u",
        b"s",
        b"WITHSOCKETS",
        b"LIMIT",
        b"0",
        b"-1",
        b"18446744073709551616",
        b"",
        b"\0\xff:{}*",
    ];
    let commands = [
        "PRESENCE.JOIN",
        "PRESENCE.BEAT",
        "PRESENCE.LEAVE",
        "PRESENCE.LIST",
        "PRESENCE.COUNT",
        "PRESENCE.SWEEP",
    ];
    for _ in 0..3000 {
        let mut args: Vec<Vec<u8>> = vec![commands[rng.below(6) as usize].as_bytes().to_vec()];
        for _ in 0..rng.below(12) {
            let arg = if rng.below(3) == 0 {
                (0..rng.below(40)).map(|_| rng.below(256) as u8).collect()
            } else {
                words[rng.below(10) as usize].to_vec()
            };
            args.push(arg);
        }
        match c.call(&args) {
            Reply::Error(e) => assert!(e.starts_with("ERR ") || e.starts_with("WRONGTYPE "), "{e}"),
            Reply::Int(_) | Reply::Array(Some(_)) => {}
            other => panic!("unexpected reply {other:?} to {args:?}"),
        }
    }
    assert_eq!(c.call(&["PING"]), Reply::Status("PONG".into()));
}

#[test]
fn writes_that_change_nothing_leave_watch_alone() {
    let server = Server::start();
    let mut watcher = server.conn();
    let mut other = server.conn();
    other.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    for write in [
        vec!["PRESENCE.BEAT", "r", "u", "wrong"],
        vec!["PRESENCE.LEAVE", "r", "u", "wrong"],
        vec!["PRESENCE.BEAT", "r", "nobody", "s"],
        vec!["PRESENCE.LEAVE", "r", "nobody", "s"],
    ] {
        let key = format!("room:presence:r:{}", write[2]);
        watcher.call(&["WATCH", key.as_str()]);
        watcher.call(&["MULTI"]);
        watcher.call(&["PING"]);
        assert_eq!(other.call(&write).int(), 0, "{write:?}");
        assert_eq!(
            watcher.call(&["EXEC"]).strings(),
            ["PONG"],
            "{write:?} aborted a WATCH"
        );
    }
}

/// Every string of a nested reply, in order, for searching.
fn flatten(reply: &Reply) -> String {
    match reply {
        Reply::Array(Some(items)) => items.iter().map(flatten).collect::<Vec<_>>().join(" "),
        Reply::Bulk(Some(_)) | Reply::Status(_) => reply.text().unwrap_or_default(),
        Reply::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn command_docs_describe_every_command() {
    let server = Server::start();
    let mut c = server.conn();
    let docs = c.call(&["COMMAND", "DOCS", "presence.list"]);
    let text = flatten(&docs);
    for expected in [
        "Lists the live users of a room in user id order",
        "complexity",
        "WITHSOCKETS",
        "WITHDATA",
        "LIMIT",
        "AFTER",
        "pure-token",
        "optional",
    ] {
        assert!(
            text.contains(expected),
            "COMMAND DOCS lacks {expected}: {text}"
        );
    }
    for (command, arity) in [
        ("presence.join", -4),
        ("presence.update", 5),
        ("presence.beat", 4),
        ("presence.leave", 4),
        ("presence.list", -2),
        ("presence.count", 2),
        ("presence.sweep", 1),
        ("presence.lease", 3),
    ] {
        let Reply::Array(Some(infos)) = c.call(&["COMMAND", "INFO", command]) else {
            panic!("COMMAND INFO {command}");
        };
        let Reply::Array(Some(info)) = &infos[0] else {
            panic!("no COMMAND INFO for {command}");
        };
        assert_eq!(info[1].int(), arity, "{command}");
        let docs = flatten(&c.call(&["COMMAND", "DOCS", command]));
        assert!(docs.contains("summary") && docs.contains("0.1.0"), "{docs}");
    }
    assert_eq!(
        c.strings(&["COMMAND", "GETKEYS", "presence.join", "r1", "u", "s"]),
        ["r1"]
    );
    assert_eq!(
        c.strings(&[
            "COMMAND",
            "GETKEYS",
            "presence.join",
            "r1",
            "u",
            "s",
            "DATA",
            "1"
        ]),
        ["r1"]
    );
    assert_eq!(
        c.strings(&[
            "COMMAND",
            "GETKEYS",
            "presence.update",
            "r3",
            "u",
            "s",
            "{}"
        ]),
        ["r3"]
    );
    let join_docs = flatten(&c.call(&["COMMAND", "DOCS", "presence.join"]));
    assert!(
        join_docs.contains("DATA") && join_docs.contains("json"),
        "{join_docs}"
    );
    assert_eq!(
        c.strings(&["COMMAND", "GETKEYS", "presence.list", "r2", "LIMIT", "5"]),
        ["r2"]
    );
    assert_eq!(
        c.strings(&["COMMAND", "GETKEYS", "presence.lease", "web-1", "10000"]),
        ["web-1"]
    );
    if test_support::is_valkey() {
        let mut listed = c.strings(&["ACL", "CAT", "presence"]);
        listed.sort();
        assert_eq!(
            listed,
            [
                "presence.beat",
                "presence.count",
                "presence.join",
                "presence.lease",
                "presence.leave",
                "presence.list",
                "presence.sweep",
                "presence.update"
            ]
        );
    }
}
