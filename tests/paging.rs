//! `PRESENCE.LIST room LIMIT n AFTER user`: reading a room in pages of bounded cost, checked
//! against full listings while other clients join and leave.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use test_support::{Conn, Reply, Rng, Server};

fn join_many(c: &mut Conn, room: &str, users: impl Iterator<Item = String>) {
    let mut sent = 0;
    for user in users {
        c.send(&["PRESENCE.JOIN", room, user.as_str(), "s"]);
        sent += 1;
    }
    for _ in 0..sent {
        c.read().expect("join reply").int();
    }
}

/// The users after `after` in `full`, at most `limit`: what a page must hold.
fn slice<'a>(full: &'a [String], after: Option<&str>, limit: usize) -> &'a [String] {
    let start = after.map_or(0, |a| full.partition_point(|u| u.as_str() <= a));
    &full[start..(start + limit).min(full.len())]
}

#[test]
fn after_starts_past_the_named_user_in_byte_order() {
    let server = Server::start();
    let mut c = server.conn();
    for user in ["0", "Bob", "alice", "carol"] {
        c.int(&["PRESENCE.JOIN", "r", user, "s"]);
    }
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r", "AFTER", "Bob"]),
        ["alice", "carol"]
    );
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r", "AFTER", "B", "LIMIT", "1"]),
        ["Bob"]
    );
    assert_eq!(
        c.strings(&["PRESENCE.LIST", "r", "after", "alice", "withsockets"]),
        ["carol", "s"]
    );
    assert!(c.strings(&["PRESENCE.LIST", "r", "AFTER", "zz"]).is_empty());
    assert!(c
        .strings(&["PRESENCE.LIST", "none", "AFTER", "a"])
        .is_empty());
    assert_eq!(
        c.err(&["PRESENCE.LIST", "r", "AFTER"]),
        "ERR AFTER must be followed by a user id"
    );
    assert_eq!(
        c.err(&["PRESENCE.LIST", "r", "AFTER", "a:b"]),
        "ERR invalid user id: use 1 to 128 bytes of A-Z a-z 0-9 - _ . @ + = ~"
    );
    assert_eq!(
        c.err(&["PRESENCE.LIST", "r", "AFTER", "a", "AFTER", "b"]),
        "ERR syntax error"
    );
}

#[test]
fn pages_equal_slices_of_a_full_listing_while_others_join_and_leave() {
    let server = Server::start();
    let mut c = server.conn();
    join_many(&mut c, "r", (0..3000).map(|i| format!("stable{i:05}")));
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        let mut w = server.conn();
        thread::spawn(move || {
            let mut rng = Rng::new(7);
            let mut writes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let user = format!("u{:05}", rng.below(5000));
                let command = if rng.below(2) == 0 {
                    "PRESENCE.JOIN"
                } else {
                    "PRESENCE.LEAVE"
                };
                w.call(&[command, "r", user.as_str(), "s"]);
                writes += 1;
            }
            writes
        })
    };
    let mut rng = Rng::new(11);
    for _ in 0..200 {
        let limit = 1 + rng.below(300) as usize;
        let after = match rng.below(4) {
            0 => None,
            1 => Some(format!("stable{:05}", rng.below(3000))),
            2 => Some(format!("u{:05}", rng.below(5000))),
            _ => Some(format!("t{}", rng.below(100))),
        };
        let limit_arg = limit.to_string();
        let mut page: Vec<&str> = vec!["PRESENCE.LIST", "r", "LIMIT", limit_arg.as_str()];
        if let Some(after) = after.as_deref() {
            page.extend(["AFTER", after]);
        }
        c.call(&["MULTI"]);
        c.call(&["PRESENCE.LIST", "r"]);
        c.call(&page);
        let Reply::Array(Some(replies)) = c.call(&["EXEC"]) else {
            panic!("EXEC failed");
        };
        let full = replies[0].strings();
        let got = replies[1].strings();
        assert_eq!(got, slice(&full, after.as_deref(), limit), "{page:?}");
    }
    let mut after: Option<String> = None;
    let mut walked = Vec::new();
    loop {
        let mut page = vec!["PRESENCE.LIST", "r", "LIMIT", "97"];
        if let Some(after) = after.as_deref() {
            page.extend(["AFTER", after]);
        }
        let users = c.strings(&page);
        let Some(last) = users.last().cloned() else {
            break;
        };
        walked.extend(users);
        after = Some(last);
    }
    stop.store(true, Ordering::Relaxed);
    assert!(churn.join().expect("churn") > 0);
    assert!(walked.windows(2).all(|w| w[0] < w[1]), "pages out of order");
    let stable: Vec<&String> = walked.iter().filter(|u| u.starts_with("stable")).collect();
    assert_eq!(stable.len(), 3000, "a user present all along was skipped");
}
