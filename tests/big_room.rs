//! One room of 500k presences: joins, leaves, reads in pages, a `stale-after` change that makes
//! the whole room stale at once, and the sweeper's drain. The module never stalls the server,
//! whatever the room size: Redis's slow log, at 2 ms, holds no presence command but the few a
//! busy machine stretches, and the sweeper's ticks stay within their budget (at most one in
//! twenty over 1 ms, twice the budget, where a tick that grows with the room would make every
//! tick of the drain slow, and none uses 10 ms of CPU).
//!
//! The slow log measures wall-clock time, which on a shared virtual machine includes the time
//! the server was not running at all: a join logged at 1.6 ms used 59 µs of the server's CPU.
//! So the test tolerates [`NOISE`] such entries, none over [`NEVER_US`], and prints them all; and
//! when a run breaks a limit it runs the whole sequence once more, failing only when both do (a
//! busy machine preempts the server for whole 4 ms scheduler ticks). A step that grows with the
//! room (a rehash, a copy, a sort of 500k entries) costs tens of ms and recurs at every growth
//! or listing, in every run, which the limits catch.

use std::time::Duration;
use test_support::{wait_for, Conn, Options, Reply, Server};

const ROOM_SIZE: usize = 500_000;
const BATCH: usize = 5_000;
const SLOW_US: &str = "2000";
/// The most presence commands the slow log may hold (scheduling noise).
const NOISE: usize = 12;
/// No presence command may take this long, noise or not.
const NEVER_US: i64 = 20_000;

fn user(i: usize) -> String {
    format!("user{i:07}")
}

/// Sends `command room user socket` for every user of `users`, pipelined, and reads the replies.
fn each(c: &mut Conn, command: &str, users: impl Iterator<Item = usize>) {
    let users: Vec<usize> = users.collect();
    for chunk in users.chunks(BATCH) {
        for &i in chunk {
            let name = user(i);
            c.send(&[command, "big", name.as_str(), "s"]);
        }
        for _ in chunk {
            let reply = c.read().expect("reply");
            assert!(matches!(reply, Reply::Int(_)), "{command}: {reply:?}");
        }
        // A page and a count between batches: reads right after the room changed.
        assert_eq!(
            c.strings(&["PRESENCE.LIST", "big", "LIMIT", "100"]).len(),
            100
        );
        c.int(&["PRESENCE.COUNT", "big"]);
    }
}

/// The presence commands in the slow log, with their durations in µs.
fn slow_presence_commands(c: &mut Conn) -> Vec<(i64, String)> {
    let Reply::Array(Some(entries)) = c.call(&["SLOWLOG", "GET", "-1"]) else {
        panic!("SLOWLOG GET");
    };
    entries
        .iter()
        .filter_map(|entry| {
            let Reply::Array(Some(fields)) = entry else {
                return None;
            };
            let micros = fields[2].int();
            let command = fields[3].strings();
            command[0]
                .to_ascii_lowercase()
                .starts_with("presence.")
                .then(|| (micros, format!("{command:?} took {micros} µs")))
        })
        .collect()
}

/// One run of the whole sequence on a new server: what went wrong, if anything. The room's
/// contents are checked at once; the timings are returned.
fn run_once() -> Result<(), String> {
    let server = Server::with(
        Options::default()
            .fast(600, 100)
            .config("slowlog-log-slower-than", SLOW_US)
            .config("slowlog-max-len", "10000"),
    );
    let mut c = server.conn();
    each(&mut c, "PRESENCE.JOIN", 0..ROOM_SIZE);
    assert_eq!(c.int(&["PRESENCE.COUNT", "big"]), ROOM_SIZE as i64);
    each(
        &mut c,
        "PRESENCE.LEAVE",
        (0..ROOM_SIZE).filter(|i| i % 4 != 0),
    );
    each(
        &mut c,
        "PRESENCE.JOIN",
        (0..ROOM_SIZE).filter(|i| i % 4 != 0),
    );
    each(&mut c, "PRESENCE.BEAT", (0..ROOM_SIZE).step_by(3));
    let middle = user(ROOM_SIZE / 2);
    let page = c.strings(&["PRESENCE.LIST", "big", "LIMIT", "100", "AFTER", &middle]);
    assert_eq!(page.first(), Some(&user(ROOM_SIZE / 2 + 1)));
    c.call(&["CONFIG", "SET", "presence.stale-after", "1"]);
    for _ in 0..20 {
        c.int(&["PRESENCE.COUNT", "big"]);
        c.strings(&["PRESENCE.LIST", "big", "LIMIT", "100"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for(
        Duration::from_secs(60),
        "the sweeper to drain the room",
        || (c.int(&["DBSIZE"]) == 0).then_some(()),
    );
    assert_eq!(c.int(&["PRESENCE.COUNT", "big"]), 0);
    assert_eq!(c.info_field("presence", "presence_indexed"), "0");
    let slow = slow_presence_commands(&mut c);
    for (_, entry) in &slow {
        println!("slow log: {entry}");
    }
    let field = |c: &mut Conn, name: &str| -> u64 {
        c.info_field("presence", name)
            .parse()
            .expect("INFO presence field")
    };
    let (ticks, slow_ticks) = (
        field(&mut c, "presence_sweeps"),
        field(&mut c, "presence_sweep_ticks_slow"),
    );
    let tick_cpu = field(&mut c, "presence_sweep_tick_max_cpu_us");
    println!(
        "sweep ticks: {ticks}, over 1 ms: {slow_ticks}; the longest {} µs of wall clock, \
         {tick_cpu} µs of CPU",
        field(&mut c, "presence_sweep_tick_max_us"),
    );
    if slow.len() > NOISE {
        return Err(format!("{} slow presence commands", slow.len()));
    }
    if slow.iter().any(|(micros, _)| *micros >= NEVER_US) {
        return Err(format!("a presence command took {NEVER_US} µs or more"));
    }
    if slow_ticks * 20 > ticks {
        return Err(format!(
            "{slow_ticks} of {ticks} sweep ticks took over 1 ms"
        ));
    }
    if tick_cpu >= 10_000 {
        return Err(format!("a sweep tick used {tick_cpu} µs of CPU"));
    }
    Ok(())
}

#[test]
fn a_room_of_500k_never_stalls_the_server() {
    let first = run_once();
    if let Err(why) = &first {
        println!("first run: {why}; running the sequence once more");
        if let Err(again) = run_once() {
            panic!("both runs: {why}; then {again}");
        }
    }
}
