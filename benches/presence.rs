//! `scripts/bench`: figures for the module against the ways a user would otherwise do the same
//! work, each measured in the same run on a private server. Prints Markdown tables.
//!
//! `--quick` measures smaller keyspaces and fewer repetitions.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Conn, Options, Server};
use std::time::{Duration, Instant};

struct Settings {
    keyspaces: Vec<usize>,
    repeats: usize,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let settings = if quick {
        Settings {
            keyspaces: vec![10_000, 100_000],
            repeats: 200,
        }
    } else {
        Settings {
            keyspaces: vec![10_000, 100_000, 1_000_000],
            repeats: 2000,
        }
    };
    println!(
        "# presence benchmarks{}\n",
        if quick { " (--quick)" } else { "" }
    );
    println!(
        "server: {} · module: {}\n",
        common::server_binary(),
        common::module_path().display()
    );
    rooms_against_scan(&settings);
}

/// Mean time of `f` over `n` runs.
fn mean(n: usize, mut f: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed() / n as u32
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// Joins `total` presences in rooms of `room_size` users, pipelined.
fn populate(c: &mut Conn, total: usize, room_size: usize) {
    let mut sent = 0;
    while sent < total {
        let batch = (total - sent).min(5000);
        for i in sent..sent + batch {
            c.send(&[
                "PRESENCE.JOIN",
                &format!("room{}", i / room_size),
                &format!("user{i}"),
                &format!("socket-{i}-abcdefghij"),
            ]);
        }
        for _ in 0..batch {
            c.read().expect("join reply");
        }
        sent += batch;
    }
}

/// The plain-Redis way: `SCAN MATCH room:presence:<room>:*`, counting the keys.
fn scan_count(c: &mut Conn, room: &str) -> usize {
    let pattern = format!("room:presence:{room}:*");
    let mut cursor = "0".to_string();
    let mut found = 0;
    loop {
        let reply = c.call(&[
            "SCAN",
            cursor.as_str(),
            "MATCH",
            pattern.as_str(),
            "COUNT",
            "1000",
        ]);
        let common::Reply::Array(Some(parts)) = reply else {
            panic!("SCAN reply");
        };
        cursor = parts[0].text().unwrap_or_default();
        found += parts[1].strings().len();
        if cursor == "0" {
            return found;
        }
    }
}

fn rooms_against_scan(settings: &Settings) {
    println!("## 1. Viewer count and participant list against a SCAN of the keys\n");
    println!("One client, round trip included; each figure is a mean over repeated calls.\n");
    println!("| presence keys | room size | PRESENCE.COUNT | PRESENCE.LIST | SCAN MATCH count | SCAN / COUNT | SCAN / LIST |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for &total in &settings.keyspaces {
        for room_size in [100usize, 1000] {
            let server =
                Server::with(Options::default().module("presence.sweep-interval", "3600000"));
            let mut c = server.conn();
            populate(&mut c, total, room_size);
            let room = "room0";
            assert_eq!(c.int(&["PRESENCE.COUNT", room]) as usize, room_size);
            let count = mean(settings.repeats, || {
                c.int(&["PRESENCE.COUNT", room]);
            });
            let list = mean(settings.repeats, || {
                c.call(&["PRESENCE.LIST", room]);
            });
            let scan_runs = (settings.repeats / 100).max(3);
            let scan = mean(scan_runs, || {
                assert_eq!(scan_count(&mut c, room), room_size);
            });
            println!(
                "| {total} | {room_size} | {} | {} | {:.2} ms | {:.0}× | {:.0}× |",
                micros(count),
                micros(list),
                scan.as_secs_f64() * 1e3,
                scan.as_secs_f64() / count.as_secs_f64(),
                scan.as_secs_f64() / list.as_secs_f64(),
            );
        }
    }
    let server = Server::start();
    let mut c = server.conn();
    populate(&mut c, 1000, 1000);
    for i in 0..1000 {
        c.send(&["SADD", "plain-set", &format!("user{i}")]);
    }
    for _ in 0..1000 {
        c.read().expect("sadd reply");
    }
    let list = mean(settings.repeats, || {
        c.call(&["PRESENCE.LIST", "room0"]);
    });
    let smembers = mean(settings.repeats, || {
        c.call(&["SMEMBERS", "plain-set"]);
    });
    println!(
        "\n| LIST of 1000 | SMEMBERS of 1000 | LIST / SMEMBERS |\n|---:|---:|---:|\n| {} | {} | {:.2} |\n",
        micros(list),
        micros(smembers),
        list.as_secs_f64() / smembers.as_secs_f64()
    );
}
