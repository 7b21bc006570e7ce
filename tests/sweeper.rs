//! The sweeper: dead presences leave by themselves, live ones are never touched, a backlog
//! drains in small ticks.
//!
//! Nothing here depends on how fast the machine is: a test waits for what it expects with a
//! generous deadline, and a presence that must stay live beats far more often than it would go
//! stale.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use test_support::{wait_for, Conn, Options, Server, Subscriber};

#[test]
fn a_presence_that_stops_beating_is_hidden_then_swept_and_announced() {
    let server = Server::with(Options::default().fast(1, 100));
    let mut sub = Subscriber::new(&server, 0);
    let mut c = server.conn();
    assert_eq!(
        c.int(&["PRESENCE.JOIN", "r", "u", "s"]),
        1,
        "live at the join"
    );
    assert_eq!(sub.expect().channel, "__presence@0__:join");
    wait_for(Duration::from_secs(30), "the presence to be hidden", || {
        (c.int(&["PRESENCE.COUNT", "r"]) == 0).then_some(())
    });
    wait_for(Duration::from_secs(30), "the key to be deleted", || {
        (c.int(&["EXISTS", "room:presence:r:u"]) == 0).then_some(())
    });
    let gone = sub.expect();
    assert_eq!(gone.channel, "__presence@0__:force-leave");
    assert!(
        gone.payload.ends_with(r#""reason":"stale"}"#),
        "{}",
        gone.payload
    );
    assert_eq!(c.int(&["PRESENCE.BEAT", "r", "u", "s"]), 0);
}

/// Presences that beat every 100 ms, 30 times as often as they would go stale (3 s), for twice
/// the stale-after, while the sweeper ticks every 20 ms.
#[test]
fn presences_that_keep_beating_are_never_touched() {
    let server = Server::with(Options::default().fast(3, 20));
    let mut sub = Subscriber::new(&server, 0);
    let mut c = server.conn();
    for user in ["a", "b", "c"] {
        c.int(&["PRESENCE.JOIN", "r", user, "s"]);
    }
    let started = Instant::now();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(6) {
        for user in ["a", "b", "c"] {
            assert_eq!(c.int(&["PRESENCE.BEAT", "r", user, "s"]), 1, "{user} lost");
        }
        assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 3);
        rounds += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("{rounds} rounds of heartbeats in {:?}", started.elapsed());
    let events = sub.drain(Duration::from_millis(300));
    assert!(
        events.iter().all(|e| e.channel == "__presence@0__:join"),
        "{events:?}"
    );
}

#[test]
fn with_every_app_server_gone_redis_alone_empties_the_room_and_announces_each_once() {
    let server = Server::with(Options::default().fast(2, 200));
    let mut sub = Subscriber::new(&server, 0);
    let mut c = server.conn();
    for i in 0..50 {
        c.int(&["PRESENCE.JOIN", "live", &format!("u{i}"), &format!("s{i}")]);
    }
    let joined = Instant::now();
    wait_for(Duration::from_secs(60), "the room to empty", || {
        (c.int(&["PRESENCE.COUNT", "live"]) == 0 && c.int(&["DBSIZE"]) == 0).then_some(())
    });
    let took = joined.elapsed();
    println!("room of 50 emptied {took:?} after the last join (stale-after 2 s, interval 200 ms)");
    let events = sub.take(100);
    assert_eq!(events.len(), 100, "50 joins and 50 ends: {events:?}");
    let left: Vec<&test_support::Received> = events
        .iter()
        .filter(|e| e.channel == "__presence@0__:force-leave")
        .collect();
    assert_eq!(left.len(), 50, "{events:?}");
    let users: BTreeSet<&str> = left.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(users.len(), 50);
    assert!(left
        .iter()
        .all(|e| e.payload.ends_with(r#""reason":"stale"}"#)));
}

#[test]
fn a_new_sweep_interval_takes_effect_at_once() {
    let server = Server::with(Options::default().fast(1, 3_600_000));
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    c.int(&["EXPIRE", "room:presence:r:u", "100"]);
    assert_eq!(
        c.text(&["CONFIG", "SET", "presence.sweep-interval", "50"])
            .as_deref(),
        Some("OK")
    );
    // Far less than the former interval of an hour.
    wait_for(Duration::from_secs(60), "the sweep", || {
        (c.int(&["EXISTS", "room:presence:r:u"]) == 0).then_some(())
    });
}

/// Joins `n` presences in `rooms` rooms, pipelined.
fn join_many(c: &mut Conn, n: usize, rooms: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        for i in chunk {
            c.send(&[
                "PRESENCE.JOIN",
                &format!("room{}", i % rooms),
                &format!("user{i}"),
                &format!("socket{i}"),
            ]);
        }
        for _ in chunk {
            c.read().expect("join reply").int();
        }
    }
}

#[test]
fn a_backlog_of_100k_stale_presences_drains_in_small_ticks() {
    let server = Server::with(Options::default().module("presence.sweep-interval", "3600000"));
    let mut c = server.conn();
    join_many(&mut c, 100_000, 100);
    c.call(&["CONFIG", "SET", "presence.stale-after", "1"]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        c.info_field("presence", "presence_backlog"),
        "0",
        "not looked at yet"
    );
    for room in 0..100 {
        assert_eq!(c.int(&["PRESENCE.COUNT", &format!("room{room}")]), 0);
    }
    assert_eq!(c.info_field("presence", "presence_backlog"), "100000");
    let (cleared, worst_ping, pings) = test_support::pinging(server.port, || {
        let started = Instant::now();
        c.call(&["CONFIG", "SET", "presence.sweep-interval", "100"]);
        wait_for(Duration::from_secs(120), "the backlog to drain", || {
            (c.int(&["DBSIZE"]) == 0).then_some(())
        });
        started.elapsed()
    });
    assert_eq!(c.info_field("presence", "presence_swept"), "100000");
    assert_eq!(c.info_field("presence", "presence_backlog"), "0");
    println!(
        "backlog of 100000: cleared in {:.2} s, longest sweep tick {} us, worst PING {:.2} ms over {pings} pings",
        cleared.as_secs_f64(),
        c.info_field("presence", "presence_sweep_tick_max_us"),
        worst_ping.as_secs_f64() * 1000.0
    );
}
