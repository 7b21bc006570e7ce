//! Ids of real applications against a real server: UUID user ids (kept as their 16 bytes
//! when canonical), Socket.IO socket ids held through a node, and ids that look like them but
//! are kept as they are. Every reply and every event gives back the exact strings, and lists
//! are in the byte order of the strings.

use std::time::Duration;
use test_support::{Options, Server, Subscriber};

const ROOM: &str = "stream-2026-12-06-8841";
const NODE: &str = "web-17.4242.k3f9a8b7c6d5";

/// (user, socket after the node or alone, held through [`NODE`]): canonical UUIDs in lowercase,
/// uppercase and digits only, a mixed-case one, ids that are prefixes of them or one character
/// off, and short ids.
const PRESENCES: &[(&str, &str, bool)] = &[
    (
        "0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b7",
        "Ab3_xY-9kLmN0pQrStUv",
        true,
    ),
    (
        "0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b8",
        "-_-_-_-_-_-_-_-_-_-_",
        true,
    ),
    (
        "0F8E2C1A-9B7D-4E5F-A6B3-C2D1E0F9A8B7",
        "ZZZZZZZZZZZZZZZZZZZZ",
        true,
    ),
    (
        "0f8e2c1a-9b7d-4e5f-A6B3-c2d1e0f9a8b7",
        "aaaaaaaaaaaaaaaaaaa_",
        true,
    ),
    (
        "12345678-1234-1234-1234-123456789012",
        "0123456789abcdefABCD",
        true,
    ),
    ("0f8e2c1a", "Ab3_xY-9kLmN0pQrStU-", true),
    (
        "0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b",
        "AAAAAAAAAAAAAAAAAAAA",
        true,
    ),
    ("0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b7-x", "s1", true),
    ("0f8e2c1a_9b7d_4e5f_a6b3_c2d1e0f9a8b7", "s2", false),
    (
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "9c1d0e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f",
        false,
    ),
    ("000000000042", "s3", false),
    ("alice", "s4", false),
    ("Bob", "s5", true),
];

/// The key's value of a presence: `<node>/<socket>` or the socket.
fn held(socket: &str, through_node: bool) -> String {
    if through_node {
        format!("{NODE}/{socket}")
    } else {
        socket.to_string()
    }
}

/// The presences as LIST WITHSOCKETS gives them: by user id, in byte order.
fn sorted() -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = PRESENCES
        .iter()
        .map(|&(user, socket, node)| (user.to_string(), held(socket, node)))
        .collect();
    all.sort();
    all
}

fn join_all(c: &mut test_support::Conn) {
    assert_eq!(c.int(&["PRESENCE.LEASE", NODE, "100000"]), 0);
    for (n, &(user, socket, node)) in PRESENCES.iter().enumerate() {
        let value = held(socket, node);
        assert_eq!(c.int(&["PRESENCE.JOIN", ROOM, user, &value]), n as i64 + 1);
        let key = format!("room:presence:{ROOM}:{user}");
        assert_eq!(c.text(&["GET", &key]).as_deref(), Some(value.as_str()));
    }
}

#[test]
fn lists_pages_and_counts_with_the_exact_ids_in_byte_order() {
    let server = Server::start();
    let mut c = server.conn();
    join_all(&mut c);
    let want = sorted();
    let users: Vec<String> = want.iter().map(|(u, _)| u.clone()).collect();
    assert_eq!(c.strings(&["PRESENCE.LIST", ROOM]), users);
    let pairs: Vec<String> = want
        .iter()
        .flat_map(|(u, s)| [u.clone(), s.clone()])
        .collect();
    assert_eq!(c.strings(&["PRESENCE.LIST", ROOM, "WITHSOCKETS"]), pairs);
    assert_eq!(c.int(&["PRESENCE.COUNT", ROOM]), PRESENCES.len() as i64);
    for limit in 1..=3 {
        let mut paged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let limit = limit.to_string();
            let mut args = vec!["PRESENCE.LIST", ROOM, "WITHSOCKETS", "LIMIT", &limit];
            if let Some(after) = &after {
                args.extend(["AFTER", after.as_str()]);
            }
            let page = c.strings(&args);
            if page.is_empty() {
                break;
            }
            after = page.get(page.len() - 2).cloned();
            paged.extend(page);
        }
        assert_eq!(paged, pairs, "pages of {limit}");
    }
    // AFTER ids that are not in the room, of every kind.
    for after in [
        "0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b6",
        "0F8E2C1A-9B7D-4E5F-A6B3-C2D1E0F9A8B8",
        "0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b7a",
        "0f8e2c1a-",
        "1",
        "0",
        "Z",
    ] {
        let want: Vec<String> = users
            .iter()
            .filter(|u| u.as_str() > after)
            .cloned()
            .collect();
        assert_eq!(
            c.strings(&["PRESENCE.LIST", ROOM, "AFTER", after]),
            want,
            "after {after}"
        );
    }
    // A heartbeat needs the exact socket: another case is another socket.
    let (user, socket, _) = PRESENCES[0];
    assert_eq!(
        c.int(&["PRESENCE.BEAT", ROOM, user, &held(socket, true)]),
        1
    );
    let upper = held(&socket.to_uppercase(), true);
    assert_eq!(c.int(&["PRESENCE.BEAT", ROOM, user, &upper]), 0);
    assert_eq!(
        c.int(&[
            "PRESENCE.BEAT",
            ROOM,
            &user.to_uppercase(),
            &held(socket, true)
        ]),
        0
    );
}

#[test]
fn events_carry_the_exact_ids() {
    let server = Server::with(Options::default().module("presence.sweep-interval", "50"));
    let mut c = server.conn();
    join_all(&mut c);
    let mut sub = Subscriber::new(&server, 0);
    let (user, socket, _) = PRESENCES[9];
    assert_eq!(c.int(&["PRESENCE.LEAVE", ROOM, user, socket]), 1);
    let left = sub.expect();
    assert_eq!(left.channel, "__presence@0__:leave");
    assert!(
        left.payload
            .contains(&format!(r#""user":"{user}","socket":"{socket}""#)),
        "{}",
        left.payload
    );
    c.int(&["PRESENCE.LEASE", NODE, "0"]);
    let through: Vec<&(&str, &str, bool)> = PRESENCES.iter().filter(|p| p.2).collect();
    let events = sub.take(through.len() + 1);
    assert_eq!(events.len(), through.len() + 1, "{events:?}");
    assert_eq!(events[0].channel, "__presence@0__:node-down");
    let mut ends: Vec<String> = events[1..]
        .iter()
        .map(|e| {
            assert_eq!(e.channel, "__presence@0__:force-leave");
            let count = e.payload.find(r#","count":"#).unwrap_or(e.payload.len());
            e.payload[..count].to_string()
        })
        .collect();
    ends.sort();
    let mut want: Vec<String> = through
        .iter()
        .map(|&&(user, socket, _)| {
            format!(
                r#"{{"room":"{ROOM}","user":"{user}","socket":"{}""#,
                held(socket, true)
            )
        })
        .collect();
    want.sort();
    assert_eq!(ends, want);
    let rest = PRESENCES.len() - through.len() - 1;
    assert_eq!(c.int(&["PRESENCE.COUNT", ROOM]), rest as i64);
    assert!(sub.drain(Duration::from_millis(300)).is_empty());
}
