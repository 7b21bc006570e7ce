//! `scripts/bench`: figures for the module against the ways a user would otherwise do the same
//! work, each measured in the same run on a private server. Prints Markdown tables.
//!
//! `--quick` measures smaller keyspaces and fewer repetitions; `--only <section>` runs one
//! section (`scan`, `throughput`, `backlog`, `memory`, `big-rooms`, `node-down`, `events`,
//! `restart`, `data`, `engines`).

#[path = "presence/data.rs"]
mod data;
#[path = "presence/engines.rs"]
mod engines;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::cluster::Cluster;
use test_support::{wait_for, Conn, Options, Server, Subscriber};

struct Settings {
    keyspaces: Vec<usize>,
    repeats: usize,
    /// Requests per redis-benchmark run.
    requests: usize,
    /// Alternating runs of each side of a throughput comparison.
    rounds: usize,
    /// Presences in the memory comparison.
    memory_presences: usize,
    /// Room sizes of the big-room comparison.
    big_rooms: Vec<usize>,
    /// JOIN and LEAVE pairs of each setup of the events comparison.
    event_pairs: usize,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let settings = if quick {
        Settings {
            keyspaces: vec![10_000, 100_000],
            repeats: 200,
            requests: 100_000,
            rounds: 1,
            memory_presences: 100_000,
            big_rooms: vec![100_000],
            event_pairs: 20_000,
        }
    } else {
        Settings {
            keyspaces: vec![10_000, 100_000, 1_000_000],
            repeats: 2000,
            requests: 300_000,
            rounds: 3,
            memory_presences: 1_000_000,
            big_rooms: vec![100_000, 1_000_000],
            event_pairs: 100_000,
        }
    };
    println!(
        "# presence benchmarks{}\n",
        if quick { " (--quick)" } else { "" }
    );
    println!(
        "server: {} · module: {}\n",
        test_support::server_binary(),
        test_support::module_path().display()
    );
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|at| args.get(at + 1));
    let sections: [(&str, &dyn Fn()); 10] = [
        ("scan", &|| rooms_against_scan(&settings)),
        ("throughput", &|| throughput(&settings)),
        ("backlog", &backlog),
        ("memory", &|| memory(&settings)),
        ("big-rooms", &|| big_rooms(&settings)),
        ("node-down", &node_down),
        ("events", &|| events(&settings)),
        ("restart", &|| {
            restart(if quick { 100_000 } else { 1_000_000 })
        }),
        ("data", &|| data::data_section(&settings)),
        ("engines", &|| engines::engines(quick)),
    ];
    for (name, run) in sections {
        if only.is_none_or(|only| only == name) {
            run();
        }
    }
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
        let test_support::Reply::Array(Some(parts)) = reply else {
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

/// Users `000000000000` … in the form redis-benchmark's `__rand_int__` takes with `-r`.
const USERS: usize = 100_000;

fn user(i: usize) -> String {
    format!("{i:012}")
}

/// Requests per second of one redis-benchmark run of `command`.
fn rps(port: u16, settings: &Settings, pipeline: usize, command: &[&str]) -> f64 {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "-c", "50"])
        .args([
            "-n",
            &settings.requests.to_string(),
            "-r",
            &USERS.to_string(),
        ])
        .args(["-P", &pipeline.to_string()])
        .args(command)
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .rsplit('\r')
        .find(|l| l.contains("requests per second"))
        .unwrap_or_else(|| panic!("no figure from redis-benchmark: {text}"));
    line.split(" requests per second")
        .next()
        .and_then(|before| before.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {line}"))
}

/// Median of alternating runs of `a` and `b` (each a server port and a command).
fn compare(
    settings: &Settings,
    pipeline: usize,
    a: (u16, &[&str]),
    b: (u16, &[&str]),
) -> (f64, f64) {
    let mut ra = Vec::new();
    let mut rb = Vec::new();
    for _ in 0..settings.rounds {
        ra.push(rps(a.0, settings, pipeline, a.1));
        rb.push(rps(b.0, settings, pipeline, b.1));
    }
    (median(&mut ra), median(&mut rb))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|x, y| x.total_cmp(y));
    values[values.len() / 2]
}

/// Pipelined writes of `commands`.
fn pipelined(c: &mut Conn, commands: impl Iterator<Item = Vec<String>>) {
    let mut pending = 0;
    for command in commands {
        c.send(&command);
        pending += 1;
        if pending == 5000 {
            for _ in 0..pending {
                c.read().expect("reply");
            }
            pending = 0;
        }
    }
    for _ in 0..pending {
        c.read().expect("reply");
    }
}

const LUA_JOIN: &str = "local old = redis.call('GET', KEYS[1]) \
redis.call('SET', KEYS[1], ARGV[1], 'EX', 21600) \
if old ~= ARGV[1] then redis.call('PUBLISH', '__presence@0__:join', ARGV[1]) end \
return 1";
const LUA_BEAT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
return redis.call('EXPIRE', KEYS[1], 21600) end return 0";

/// One throughput comparison: name, command, baseline name, baseline server port, baseline
/// command, target ratio.
type Row<'a> = (&'a str, &'a [&'a str], &'a str, u16, &'a [&'a str], &'a str);

fn throughput(settings: &Settings) {
    println!("## 2. Writes against plain SET / EXPIRE and a Lua script\n");
    println!(
        "redis-benchmark, 50 clients, {} requests a run, {USERS} random users, median of {} \
         alternating runs. JOIN and BEAT go to one room of {USERS} presences; SET, EXPIRE and the \
         Lua scripts to keys outside the presence prefix. The last rows compare the plain \
         `SET room:presence:… EX 21600` on a server with the module against the same on one without.\n",
        settings.requests, settings.rounds
    );
    let with = Server::with(Options::default().module("presence.sweep-interval", "1000"));
    let without = Server::with(Options {
        without_module: true,
        ..Options::default()
    });
    let mut c = with.conn();
    pipelined(
        &mut c,
        (0..USERS).map(|i| {
            vec![
                "PRESENCE.JOIN".into(),
                "bench".into(),
                user(i),
                "sock-0123456789abcd".into(),
            ]
        }),
    );
    pipelined(
        &mut c,
        (0..USERS).map(|i| {
            vec![
                "SET".into(),
                format!("plain:{}", user(i)),
                "sock-0123456789abcd".into(),
                "EX".into(),
                "21600".into(),
            ]
        }),
    );
    pipelined(
        &mut c,
        (0..USERS).map(|i| {
            vec![
                "SET".into(),
                format!("lua:{}", user(i)),
                "sock-0123456789abcd".into(),
                "EX".into(),
                "21600".into(),
            ]
        }),
    );
    let join_sha = c.text(&["SCRIPT", "LOAD", LUA_JOIN]).unwrap_or_default();
    let beat_sha = c.text(&["SCRIPT", "LOAD", LUA_BEAT]).unwrap_or_default();
    let port = with.port;
    let join: &[&str] = &[
        "PRESENCE.JOIN",
        "bench",
        "__rand_int__",
        "sock-0123456789abcd",
    ];
    let set: &[&str] = &[
        "SET",
        "plain:__rand_int__",
        "sock-0123456789abcd",
        "EX",
        "21600",
    ];
    let lua_join: &[&str] = &[
        "EVALSHA",
        &join_sha,
        "1",
        "lua:__rand_int__",
        "sock-0123456789abcd",
    ];
    let beat: &[&str] = &[
        "PRESENCE.BEAT",
        "bench",
        "__rand_int__",
        "sock-0123456789abcd",
    ];
    let expire: &[&str] = &["EXPIRE", "plain:__rand_int__", "21600"];
    let lua_beat: &[&str] = &[
        "EVALSHA",
        &beat_sha,
        "1",
        "lua:__rand_int__",
        "sock-0123456789abcd",
    ];
    let raw: &[&str] = &[
        "SET",
        "room:presence:raw:__rand_int__",
        "sock-0123456789abcd",
        "EX",
        "21600",
    ];
    println!("| pipeline | command | req/s | baseline | req/s | ratio | target |");
    println!("|---:|---|---:|---|---:|---:|---:|");
    for pipeline in [1, 16] {
        let target = if pipeline == 1 { "≥ 0.85" } else { "≥ 0.7" };
        let rows: [Row; 5] = [
            ("PRESENCE.JOIN", join, "SET … EX 21600", port, set, target),
            (
                "PRESENCE.JOIN",
                join,
                "Lua: GET, SET EX, PUBLISH",
                port,
                lua_join,
                "≥ 1.5",
            ),
            (
                "PRESENCE.BEAT",
                beat,
                "EXPIRE … 21600",
                port,
                expire,
                target,
            ),
            (
                "PRESENCE.BEAT",
                beat,
                "Lua: GET, EXPIRE",
                port,
                lua_beat,
                "≥ 1.5",
            ),
            (
                "SET room:presence:… EX (module loaded)",
                raw,
                "the same SET, no module",
                without.port,
                raw,
                "≥ 0.8",
            ),
        ];
        for (name, command, base_name, base_port, base, target) in rows {
            let (ours, theirs) = compare(settings, pipeline, (port, command), (base_port, base));
            println!(
                "| {pipeline} | {name} | {ours:.0} | {base_name} | {theirs:.0} | {:.2} | {target} |",
                ours / theirs
            );
        }
    }
    let mut pings = (0..settings.rounds)
        .map(|_| rps(port, settings, 1, &["PING"]))
        .collect::<Vec<_>>();
    println!(
        "\nThe round trip alone: `PING` at pipeline 1 runs at {:.0} req/s on the same server.\n",
        median(&mut pings)
    );
}

fn backlog() {
    println!("## 3. A backlog of 100k presences going stale at once\n");
    let sweeper = drain(
        true,
        |c| {
            pipelined(
                c,
                (0..100_000).map(|i| {
                    vec![
                        "PRESENCE.JOIN".into(),
                        format!("room{}", i % 100),
                        user(i),
                        format!("s{i}"),
                    ]
                }),
            );
            c.call(&["CONFIG", "SET", "presence.stale-after", "1"]);
            std::thread::sleep(Duration::from_millis(1100));
        },
        |c| {
            c.call(&["CONFIG", "SET", "presence.sweep-interval", "100"]);
        },
    );
    let since_epoch = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
    };
    let expire_at = std::cell::Cell::new(Duration::ZERO);
    let expiry = drain(
        false,
        |c| {
            expire_at.set(since_epoch() + Duration::from_secs(3));
            let at = expire_at.get().as_millis().to_string();
            pipelined(
                c,
                (0..100_000).map(|i| {
                    vec![
                        "SET".into(),
                        format!("plain:{}", user(i)),
                        format!("s{i}"),
                        "PXAT".into(),
                        at.clone(),
                    ]
                }),
            );
            assert_eq!(
                c.int(&["DBSIZE"]),
                100_000,
                "keys expired before the PINGs began"
            );
        },
        |_| std::thread::sleep(expire_at.get().saturating_sub(since_epoch())),
    );
    println!(
        "A second client sends PINGs back to back while the backlog drains, and again for as long \
         on the same server once it is empty (the machine's own noise). The baseline is Redis's \
         own expiry of 100k plain keys that expire in the same millisecond, on a server without \
         the module. {}\n",
        if sweeper.pinned && expiry.pinned {
            "The server runs on CPU 0, the clients on the other CPUs (`taskset`)."
        } else {
            "Server and clients share the CPUs (`taskset` or a second CPU missing)."
        }
    );
    println!(
        "| 100k at once | cleared in | longest sweep tick | worst PING, draining | worst PING, idle | PINGs |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| presences, the module's sweeper | {:.2} s | {} µs (target ≤ 1000) | {:.2} ms (target ≤ 2) | {:.2} ms | {} |",
        sweeper.cleared.as_secs_f64(),
        sweeper.tick_us,
        sweeper.worst.as_secs_f64() * 1e3,
        sweeper.idle_worst.as_secs_f64() * 1e3,
        sweeper.pings
    );
    println!(
        "| plain keys, Redis's own expiry | {:.2} s | – | {:.2} ms | {:.2} ms | {} |\n",
        expiry.cleared.as_secs_f64(),
        expiry.worst.as_secs_f64() * 1e3,
        expiry.idle_worst.as_secs_f64() * 1e3,
        expiry.pings
    );
}

/// What one backlog run measured.
struct Drained {
    cleared: Duration,
    worst: Duration,
    idle_worst: Duration,
    pings: u64,
    tick_us: String,
    pinned: bool,
}

/// Starts a server (with the module sweeping once an hour, or without it), lets `fill` write
/// the keys, then measures PINGs from `begin` until the keyspace is empty, and again as long on
/// the idle server.
fn drain(
    with_module: bool,
    fill: impl FnOnce(&mut Conn),
    begin: impl FnOnce(&mut Conn),
) -> Drained {
    let server = Server::with(Options {
        without_module: !with_module,
        ..Options::default().module("presence.sweep-interval", "3600000")
    });
    let mut c = server.conn();
    fill(&mut c);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = pin_apart(&server, cpus);
    let (cleared, worst, pings) = test_support::pinging(server.port, || {
        begin(&mut c);
        let started = Instant::now();
        test_support::wait_for(Duration::from_secs(300), "the backlog to drain", || {
            (c.int(&["DBSIZE"]) == 0).then_some(())
        });
        started.elapsed()
    });
    let tick_us = if with_module {
        c.info_field("presence", "presence_sweep_tick_max_us")
    } else {
        String::new()
    };
    let (_, idle_worst, _) = test_support::pinging(server.port, || {
        let started = Instant::now();
        while started.elapsed() < cleared {
            c.int(&["DBSIZE"]);
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    if pinned {
        pin(std::process::id(), &format!("0-{}", cpus - 1));
    }
    Drained {
        cleared,
        worst,
        idle_worst,
        pings,
        tick_us,
        pinned,
    }
}

/// Sets the CPUs of every thread of process `pid` with `taskset`; true when it could.
fn pin(pid: u32, cpus: &str) -> bool {
    Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Runs the server on the first of `cpus` CPUs and this process (the clients) on the others, so
/// that the PINGs measure the server rather than the clients competing with it for a core. True
/// when it could (`taskset` and at least two CPUs).
fn pin_apart(server: &Server, cpus: usize) -> bool {
    match server.pid() {
        Some(pid) if cpus >= 2 => {
            pin(pid, "0") && pin(std::process::id(), &format!("1-{}", cpus - 1))
        }
        _ => false,
    }
}

fn used_memory(c: &mut Conn) -> i64 {
    c.info_field("memory", "used_memory")
        .parse()
        .expect("used_memory")
}

/// One row of the memory comparison: its label, the room size, whether user ids are UUIDs,
/// and the node the sockets are held through (by a lease), if any.
type MemoryRow = (&'static str, usize, bool, Option<&'static str>);

/// A 64-bit mix of `i` (splitmix64's finaliser), for ids that look random.
fn mix(i: usize) -> u64 {
    let mut z = (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A version 4 UUID made from `i`, lowercase, as applications use for user ids.
fn uuid_user(i: usize) -> String {
    let (a, b) = (mix(i), mix(i ^ 0x5555_5555));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// A Socket.IO socket id made from `i`: 20 characters of base64url (15 bytes).
fn socket_io_id(i: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = u128::from(mix(i)) << 64 | u128::from(mix(!i));
    (0..20)
        .map(|k| char::from(ALPHABET[(bits >> (6 * k)) as usize & 63]))
        .collect()
}

fn memory(settings: &Settings) {
    let n = settings.memory_presences;
    println!("## 4. Memory of {n} presences\n");
    println!(
        "`used_memory` after writing {n} presences, minus `used_memory` of the empty server: \
         with the module (PRESENCE.JOIN) against the same keys written with `SET … EX 21600` on \
         a server without it. User ids of 12 digits or UUIDs (36 bytes); socket ids of 20 \
         bytes, alone or held through a node (`<node>/<socket>`, the node holding a lease).\n"
    );
    println!(
        "| user ids | sockets | room size | with the module | without | index per presence | \
         key per presence | target |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let rows: [MemoryRow; 5] = [
        ("12 digits", 100, false, None),
        ("12 digits", 100, false, Some("web-1.4242.k3f9")),
        ("UUID", 10, true, Some("web-17.4242.k3f9a8b7c6d5")),
        ("UUID", 100, true, Some("web-17.4242.k3f9a8b7c6d5")),
        ("UUID", 10_000, true, Some("web-17.4242.k3f9a8b7c6d5")),
    ];
    for (label, room_size, uuids, node) in rows {
        let mut figures = Vec::new();
        for with_module in [true, false] {
            let server = Server::with(Options {
                without_module: !with_module,
                ..Options::default()
            });
            let mut c = server.conn();
            let empty = used_memory(&mut c);
            if let Some(node) = node.filter(|_| with_module) {
                c.int(&["PRESENCE.LEASE", node, "3600000"]);
            }
            pipelined(
                &mut c,
                (0..n).map(|i| {
                    let id = if uuids {
                        socket_io_id(i)
                    } else {
                        format!("s{i:019}")
                    };
                    let socket = match node {
                        Some(node) => format!("{node}/{id}"),
                        None => id,
                    };
                    let (room, user) = if uuids {
                        (
                            format!("stream-2026-12-06-{:06}", i / room_size),
                            uuid_user(i),
                        )
                    } else {
                        (format!("room{}", i / room_size), user(i))
                    };
                    if with_module {
                        vec!["PRESENCE.JOIN".into(), room, user, socket]
                    } else {
                        vec![
                            "SET".into(),
                            format!("room:presence:{room}:{user}"),
                            socket,
                            "EX".into(),
                            "21600".into(),
                        ]
                    }
                }),
            );
            assert!(c.int(&["DBSIZE"]) as usize >= n);
            figures.push(used_memory(&mut c) - empty);
        }
        let (with, without) = (figures[0], figures[1]);
        println!(
            "| {label} | {} | {room_size} | {:.1} MB | {:.1} MB | {:.0} bytes | {:.0} bytes | ≤ 100 bytes |",
            if node.is_some() {
                "through a node"
            } else {
                "alone"
            },
            with as f64 / 1e6,
            without as f64 / 1e6,
            (with - without) as f64 / n as f64,
            without as f64 / n as f64
        );
    }
    println!();
}

/// The slow log's threshold in the big-room comparison, in µs: commands below it are not
/// recorded, so their worst is reported as "< 50 µs".
const BIG_ROOM_SLOWLOG_US: i64 = 50;

/// A server that records every command slower than [`BIG_ROOM_SLOWLOG_US`].
fn recording(with_module: bool) -> Server {
    Server::with(Options {
        without_module: !with_module,
        ..Options::default()
            .module("presence.sweep-interval", "100")
            .config("slowlog-log-slower-than", &BIG_ROOM_SLOWLOG_US.to_string())
            .config("slowlog-max-len", "1000000")
    })
}

/// What the slow log holds for one command: its worst server time in µs, and how many of its
/// calls took over 1 ms.
#[derive(Clone, Copy, Default)]
struct Worst {
    micros: i64,
    over_1ms: usize,
}

/// The worst server time of each command in the slow log, then empties it.
fn worst_by_command(c: &mut Conn) -> std::collections::BTreeMap<String, Worst> {
    let mut worst = std::collections::BTreeMap::new();
    let test_support::Reply::Array(Some(entries)) = c.call(&["SLOWLOG", "GET", "-1"]) else {
        panic!("SLOWLOG GET");
    };
    for entry in entries {
        let test_support::Reply::Array(Some(fields)) = entry else {
            continue;
        };
        let mut command = fields[3].strings();
        let name = command.remove(0).to_ascii_uppercase();
        let name = match command.get(1).map(String::as_str) {
            Some("LIMIT") if name == "PRESENCE.LIST" => format!("{name} … LIMIT"),
            _ => name,
        };
        let micros = fields[2].int();
        let at: &mut Worst = worst.entry(name).or_default();
        at.micros = at.micros.max(micros);
        at.over_1ms += usize::from(micros > 1000);
    }
    c.call(&["SLOWLOG", "RESET"]);
    worst
}

/// Keeps the worse of `more` and `into`, command by command.
fn merge_worst(
    into: &mut std::collections::BTreeMap<String, Worst>,
    more: std::collections::BTreeMap<String, Worst>,
) {
    for (command, w) in more {
        let at = into.entry(command).or_default();
        at.micros = at.micros.max(w.micros);
        at.over_1ms += w.over_1ms;
    }
}

fn worst_cell(worst: &std::collections::BTreeMap<String, Worst>, command: &str) -> String {
    match worst.get(command) {
        Some(w) if w.over_1ms > 0 => format!("{} µs ({} over 1 ms)", w.micros, w.over_1ms),
        Some(w) => format!("{} µs", w.micros),
        None => format!("< {BIG_ROOM_SLOWLOG_US} µs"),
    }
}

/// Sends `make(i)` for every `i` of `range`, pipelined.
fn pipelined_each(
    c: &mut Conn,
    range: impl Iterator<Item = usize>,
    make: impl Fn(usize) -> Vec<String>,
) {
    pipelined(c, range.map(make));
}

fn big_rooms(settings: &Settings) {
    println!("## 7. One big room: the worst single command\n");
    println!(
        "One room of N presences, against one set of N members on a server without the module. \
         Server time per command from the slow log (threshold {BIG_ROOM_SLOWLOG_US} µs; a command \
         never recorded shows as below it): every join, a leave of every other user, their \
         joins again, a heartbeat of every third, 1000 `LIST … LIMIT 100 AFTER <random>` pages, \
         and a `stale-after` change to 1 s that leaves the whole room to the sweeper (its \
         longest tick from `INFO presence`, with its CPU time and the ticks over 1 ms). The \
         same keys written with plain `SET … EX`, `DEL` and `EXPIRE` on a server without the \
         module show what Redis's own keyspace costs at that size (its hash tables grow and \
         shrink at once too). Target: nothing over 1 ms but a full listing (which is O(N), like \
         SMEMBERS), `LIST … LIMIT 100` under 0.1 ms at 1M.\n"
    );
    println!("| N | JOIN | SET (same keys) | LEAVE | DEL | BEAT | EXPIRE | COUNT | LIST … LIMIT 100 | full LIST | sweep tick | SADD | SREM | SCARD | SMEMBERS |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &settings.big_rooms {
        let server = recording(true);
        let mut c = server.conn();
        let name = |i: usize| format!("u{i:08}");
        let presence = |command: &str, i: usize| {
            vec![
                command.to_string(),
                "big".into(),
                name(i),
                format!("s{i:019}"),
            ]
        };
        pipelined_each(&mut c, 0..n, |i| presence("PRESENCE.JOIN", i));
        pipelined_each(&mut c, (0..n).step_by(2), |i| presence("PRESENCE.LEAVE", i));
        pipelined_each(&mut c, (0..n).step_by(2), |i| presence("PRESENCE.JOIN", i));
        pipelined_each(&mut c, (0..n).step_by(3), |i| presence("PRESENCE.BEAT", i));
        pipelined_each(&mut c, 0..1000, |i| {
            vec![
                "PRESENCE.LIST".into(),
                "big".into(),
                "LIMIT".into(),
                "100".into(),
                "AFTER".into(),
                name(i * 7919 % n),
            ]
        });
        pipelined_each(&mut c, 0..100, |_| {
            vec!["PRESENCE.COUNT".into(), "big".into()]
        });
        c.call(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        let full = c.strings(&["PRESENCE.LIST", "big"]).len();
        assert_eq!(full, n);
        c.call(&[
            "CONFIG",
            "SET",
            "slowlog-log-slower-than",
            &BIG_ROOM_SLOWLOG_US.to_string(),
        ]);
        let mut module = worst_by_command(&mut c);
        c.call(&["CONFIG", "SET", "presence.stale-after", "1"]);
        let started = Instant::now();
        while c.int(&["DBSIZE"]) > 0 {
            c.int(&["PRESENCE.COUNT", "big"]);
            std::thread::sleep(Duration::from_millis(20));
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "sweep too slow"
            );
        }
        merge_worst(&mut module, worst_by_command(&mut c));
        let tick = format!(
            "{} µs (CPU {} µs; {} of {} ticks over 1 ms)",
            c.info_field("presence", "presence_sweep_tick_max_us"),
            c.info_field("presence", "presence_sweep_tick_max_cpu_us"),
            c.info_field("presence", "presence_sweep_ticks_slow"),
            c.info_field("presence", "presence_sweeps"),
        );
        drop(c);
        drop(server);

        let keys = recording(false);
        let mut k = keys.conn();
        let key = |i: usize| format!("room:presence:big:{}", name(i));
        let set = |i: usize| {
            vec![
                "SET".into(),
                key(i),
                format!("s{i:019}"),
                "EX".into(),
                "21600".into(),
            ]
        };
        pipelined_each(&mut k, 0..n, set);
        pipelined_each(&mut k, (0..n).step_by(2), |i| vec!["DEL".into(), key(i)]);
        pipelined_each(&mut k, (0..n).step_by(2), set);
        pipelined_each(&mut k, (0..n).step_by(3), |i| {
            vec!["EXPIRE".into(), key(i), "21600".into()]
        });
        let plain = worst_by_command(&mut k);
        drop(k);
        drop(keys);

        let baseline = recording(false);
        let mut b = baseline.conn();
        pipelined_each(&mut b, 0..n, |i| vec!["SADD".into(), "big".into(), name(i)]);
        pipelined_each(&mut b, (0..n).step_by(2), |i| {
            vec!["SREM".into(), "big".into(), name(i)]
        });
        pipelined_each(&mut b, (0..n).step_by(2), |i| {
            vec!["SADD".into(), "big".into(), name(i)]
        });
        pipelined_each(&mut b, 0..100, |_| vec!["SCARD".into(), "big".into()]);
        b.call(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        assert_eq!(b.strings(&["SMEMBERS", "big"]).len(), n);
        let set = worst_by_command(&mut b);
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {tick} | {} | {} | {} | {} |",
            worst_cell(&module, "PRESENCE.JOIN"),
            worst_cell(&plain, "SET"),
            worst_cell(&module, "PRESENCE.LEAVE"),
            worst_cell(&plain, "DEL"),
            worst_cell(&module, "PRESENCE.BEAT"),
            worst_cell(&plain, "EXPIRE"),
            worst_cell(&module, "PRESENCE.COUNT"),
            worst_cell(&module, "PRESENCE.LIST … LIMIT"),
            worst_cell(&module, "PRESENCE.LIST"),
            worst_cell(&set, "SADD"),
            worst_cell(&set, "SREM"),
            worst_cell(&set, "SCARD"),
            worst_cell(&set, "SMEMBERS"),
        );
    }
    println!();
}

/// Sends `PRESENCE.COUNT` of room `room{i % rooms}` back to back, `i` counting up, until `done`
/// says so; checks each reply against `expected`. Returns the calls and the worst round trip.
fn counting(
    c: &mut Conn,
    rooms: usize,
    expected: i64,
    mut done: impl FnMut() -> bool,
) -> (u64, Duration) {
    let mut calls = 0u64;
    let mut worst = Duration::ZERO;
    while !done() {
        let room = format!("room{}", calls as usize % rooms);
        let started = Instant::now();
        let count = c.int(&["PRESENCE.COUNT", room.as_str()]);
        worst = worst.max(started.elapsed());
        assert_eq!(count, expected, "COUNT {room}");
        calls += 1;
    }
    (calls, worst)
}

/// A counter of `INFO presence`.
fn presence_figure(c: &mut Conn, field: &str) -> u64 {
    c.info_field("presence", field).parse().unwrap_or(0)
}

/// The mean server time of `PRESENCE.COUNT` since the last `CONFIG RESETSTAT`, in µs.
fn count_usec_per_call(c: &mut Conn) -> String {
    let stats = c.text(&["INFO", "commandstats"]).unwrap_or_default();
    stats
        .lines()
        .find(|line| line.starts_with("cmdstat_presence.count:"))
        .and_then(|line| {
            line.split(',')
                .find_map(|f| f.strip_prefix("usec_per_call="))
        })
        .unwrap_or("–")
        .to_string()
}

fn node_down() {
    const PRESENCES: usize = 100_000;
    const ROOMS: usize = 10_000;
    println!(
        "## 8. A node with 100k presences in 10k rooms goes down
"
    );
    println!(
        "Node `web-1` holds 100k presences, 10 in each of 10k rooms, and node `web-2` 100k more \
         in the same rooms. `PRESENCE.LEASE web-1 0` ends web-1's lease (a crash ends it the \
         same way when its TTL runs out). A second client sends `PRESENCE.COUNT` of room after \
         room back to back, for a second before and then until the sweeper has removed web-1's \
         presences; every reply is checked: 20 before, 10 from the first one after. Sweeper at \
         its default interval (1000 ms). Server time per COUNT from `INFO commandstats`, round \
         trips from the client; the ticks from `INFO presence`.\n"
    );
    let server = Server::with(
        Options::default()
            .config("slowlog-log-slower-than", &BIG_ROOM_SLOWLOG_US.to_string())
            .config("slowlog-max-len", "1000000"),
    );
    let mut c = server.conn();
    c.int(&["PRESENCE.LEASE", "web-1", "600000"]);
    c.int(&["PRESENCE.LEASE", "web-2", "600000"]);
    for node in ["web-1", "web-2"] {
        pipelined_each(&mut c, 0..PRESENCES, |i| {
            vec![
                "PRESENCE.JOIN".into(),
                format!("room{}", i % ROOMS),
                format!("{node}-user{i}"),
                format!("{node}/s{i}"),
            ]
        });
    }
    let per_room = (2 * PRESENCES / ROOMS) as i64;
    let mut counter = server.conn();
    c.call(&["CONFIG", "RESETSTAT"]);
    let started = Instant::now();
    let (idle_calls, idle_worst) = counting(&mut counter, ROOMS, per_room, || {
        started.elapsed() >= Duration::from_secs(1)
    });
    let idle_usec = count_usec_per_call(&mut c);
    c.call(&["CONFIG", "RESETSTAT"]);
    worst_by_command(&mut c);
    let sweeps_before = presence_figure(&mut c, "presence_sweeps");
    let slow_before = presence_figure(&mut c, "presence_sweep_ticks_slow");
    assert_eq!(c.int(&["PRESENCE.LEASE", "web-1", "0"]), 1);
    let ended = Instant::now();
    let left = (PRESENCES + 1) as i64;
    let mut polled = Instant::now();
    let mut watcher = server.conn();
    let (calls, worst) = counting(&mut counter, ROOMS, per_room / 2, || {
        if polled.elapsed() < Duration::from_millis(20) {
            return false;
        }
        polled = Instant::now();
        assert!(ended.elapsed() < Duration::from_secs(300), "sweep too slow");
        watcher.int(&["DBSIZE"]) == left
    });
    let cleared = ended.elapsed();
    let usec = count_usec_per_call(&mut c);
    let slow_counts = worst_by_command(&mut c);
    let sweeps = presence_figure(&mut c, "presence_sweeps");
    let slow = presence_figure(&mut c, "presence_sweep_ticks_slow");
    println!("| | COUNT calls | COUNT server time, mean | COUNT worst (server) | COUNT worst round trip |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| before the lease ends | {idle_calls} | {idle_usec} µs | – | {:.2} ms |",
        idle_worst.as_secs_f64() * 1e3
    );
    println!(
        "| from the end until web-1's presences are gone | {calls} | {usec} µs | {} | {:.2} ms |\n",
        worst_cell(&slow_counts, "PRESENCE.COUNT"),
        worst.as_secs_f64() * 1e3
    );
    println!(
        "web-1's 100k presences removed {:.2} s after the lease ended (a `node-down` event, \
         then a `force-leave` each), in {} sweep ticks, {} of them over 1 ms; the longest tick \
         {} µs of wall clock, {} µs of CPU. `INFO presence`: `presence_swept_node_down:{}`.\n",
        cleared.as_secs_f64(),
        sweeps - sweeps_before,
        slow - slow_before,
        c.info_field("presence", "presence_sweep_tick_max_us"),
        c.info_field("presence", "presence_sweep_tick_max_cpu_us"),
        c.info_field("presence", "presence_swept_node_down"),
    );
}

/// Rooms of the events comparison.
const EVENT_ROOMS: usize = 1000;

/// The name of room `r` of the events comparison.
fn event_room(r: usize) -> String {
    format!("room{r}")
}

/// A subscriber read in a thread of its own, as an application reads it, so that its output
/// buffer on the server stays small; counts the events it receives.
struct Draining {
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Draining {
    /// Starts reading `subscriber`.
    fn start(mut subscriber: Subscriber) -> Draining {
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || loop {
                if subscriber.next(Duration::from_millis(200)).is_some() {
                    received.fetch_add(1, Ordering::Relaxed);
                } else if stop.load(Ordering::Relaxed) {
                    return;
                }
            })
        };
        Draining {
            received,
            stop,
            thread,
        }
    }

    /// Stops reading once nothing more comes, and closes the connection.
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("subscriber thread");
    }
}

/// The CPU time the server has used, user and system, in seconds (`INFO cpu`).
fn cpu_seconds(c: &mut Conn) -> f64 {
    let info = c.text(&["INFO", "cpu"]).unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            line.strip_prefix("used_cpu_sys:")
                .or_else(|| line.strip_prefix("used_cpu_user:"))
        })
        .map(|value| value.trim().parse::<f64>().expect("used_cpu_* of INFO cpu"))
        .sum()
}

/// The PUBLISH and SPUBLISH messages the server has received over the cluster bus
/// (`cluster_stats_messages_publish_received` and `…_publishshard_received` of `CLUSTER INFO`,
/// absent while 0); `None` outside a cluster.
fn bus_publishes_received(c: &mut Conn) -> Option<u64> {
    let test_support::Reply::Bulk(Some(info)) = c.call(&["CLUSTER", "INFO"]) else {
        return None;
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    Some(
        info.lines()
            .filter_map(|line| {
                line.strip_prefix("cluster_stats_messages_publish_received:")
                    .or_else(|| line.strip_prefix("cluster_stats_messages_publishshard_received:"))
            })
            .map(|value| value.trim().parse::<u64>().expect("a CLUSTER INFO counter"))
            .sum(),
    )
}

/// The servers of one setup of the events comparison: `masters[i]` owns the rooms `owner`
/// gives `i`; `replicas[i]`, when there are replicas, replicates it.
struct Shape<'a> {
    masters: Vec<&'a Server>,
    replicas: Vec<&'a Server>,
    owner: &'a dyn Fn(&str) -> usize,
}

/// What one setup of the events comparison used; CPU times in seconds.
#[derive(Default)]
struct EventCost {
    /// Events the masters published (`presence_events`).
    events: u64,
    /// Time spent sending the commands and reading their replies.
    wall: Duration,
    /// Each room's master, while its rooms' commands ran.
    room_node: f64,
    /// Every other node meanwhile, the room's replica included.
    others: f64,
    /// The room's replica meanwhile, when there are replicas.
    replica: Option<f64>,
    /// PUBLISH and SPUBLISH messages the nodes received over the cluster bus, in a cluster.
    bus: Option<u64>,
}

/// Sends `pairs` JOIN and LEAVE pairs over [`EVENT_ROOMS`] rooms, pipelined, each to its room's
/// master, one master's share after the other, while `subscribers` are read in threads. Around
/// each share, reads every node's CPU time; before the second reading, waits until the
/// subscribers have received every event published so far.
fn event_run(shape: &Shape, subscribers: Vec<Subscriber>, pairs: usize) -> EventCost {
    let masters = shape.masters.len();
    let mut info: Vec<Conn> = shape
        .masters
        .iter()
        .chain(&shape.replicas)
        .map(|server| server.conn())
        .collect();
    let published = |info: &mut [Conn]| -> u64 {
        info[..masters]
            .iter_mut()
            .map(|c| presence_figure(c, "presence_events"))
            .sum()
    };
    let owners: Vec<usize> = (0..EVENT_ROOMS)
        .map(|r| (shape.owner)(&event_room(r)))
        .collect();
    let readers: Vec<Draining> = subscribers.into_iter().map(Draining::start).collect();
    let received = || -> u64 {
        readers
            .iter()
            .map(|r| r.received.load(Ordering::Relaxed))
            .sum()
    };
    let bus =
        |info: &mut [Conn]| -> Option<u64> { info.iter_mut().map(bus_publishes_received).sum() };
    let first = published(&mut info);
    let bus_before = bus(&mut info);
    let mut cost = EventCost::default();
    for (m, master) in shape.masters.iter().enumerate() {
        let mut c = master.conn();
        let before: Vec<f64> = info.iter_mut().map(cpu_seconds).collect();
        let started = Instant::now();
        pipelined(
            &mut c,
            (0..pairs)
                .filter(|i| owners[i % EVENT_ROOMS] == m)
                .flat_map(|i| {
                    let (room, user, socket) = (
                        event_room(i % EVENT_ROOMS),
                        format!("u{i}"),
                        format!("s{i}"),
                    );
                    ["PRESENCE.JOIN", "PRESENCE.LEAVE"].map(|command| {
                        vec![command.into(), room.clone(), user.clone(), socket.clone()]
                    })
                }),
        );
        cost.wall += started.elapsed();
        if !readers.is_empty() {
            let so_far = published(&mut info) - first;
            test_support::wait_for(Duration::from_secs(60), "every event received", || {
                (received() >= so_far).then_some(())
            });
        }
        let after: Vec<f64> = info.iter_mut().map(cpu_seconds).collect();
        for (n, used) in after.iter().zip(&before).map(|(a, b)| a - b).enumerate() {
            if n == m {
                cost.room_node += used;
            } else {
                cost.others += used;
            }
            if n == masters + m {
                *cost.replica.get_or_insert(0.0) += used;
            }
        }
    }
    cost.events = published(&mut info) - first;
    cost.bus = bus(&mut info)
        .zip(bus_before)
        .map(|(after, before)| after - before);
    assert_eq!(cost.events, 2 * pairs as u64, "an event per command");
    if !readers.is_empty() {
        assert_eq!(received(), cost.events, "every event received once");
    }
    for reader in readers {
        reader.stop();
    }
    cost
}

/// One connection to `server` that SSUBSCRIBEs the channel of each room that `owns` says lives
/// there.
fn room_subscriber(server: &Server, owns: impl Fn(&str) -> bool) -> Vec<Subscriber> {
    let rooms: Vec<String> = (0..EVENT_ROOMS)
        .map(event_room)
        .filter(|room| owns(room))
        .collect();
    let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
    vec![Subscriber::rooms(server, 0, &rooms)]
}

/// Sets `presence.events` on every node of `cluster`.
fn set_events(cluster: &Cluster, events: &str) {
    for node in cluster.nodes() {
        let reply = node
            .conn()
            .call(&["CONFIG", "SET", "presence.events", events]);
        assert_eq!(reply, test_support::Reply::Status("OK".into()), "{events}");
    }
}

/// Section 9: what events cost each node, PUBLISH (`global`) against each room's sharded channel
/// (`room`), on one server and in a cluster of 3 masters and 3 replicas.
fn events(settings: &Settings) {
    let pairs = settings.event_pairs;
    println!("## 9. Events: PUBLISH against sharded per-room channels\n");
    println!(
        "{pairs} JOIN and LEAVE pairs ({} events) over {EVENT_ROOMS} rooms, pipelined, each \
         command sent to its room's master. `global` publishes on `__presence@0__:<event>` \
         (PUBLISH; a subscriber PSUBSCRIBEs `__presence@0__:*`, on one master in the cluster); \
         `room` on `__presence@0__:{{<room>}}` (SPUBLISH; a subscriber SSUBSCRIBEs each room's \
         channel on the room's master). Subscribers are read in threads of their own. CPU \
         from `INFO cpu` (used_cpu_sys + used_cpu_user) of every node, read around each \
         master's share of the commands once its subscribers have every event; \"room's \
         master\" is the CPU of the master whose rooms the commands went to, \"other nodes\" \
         that of every other node meanwhile, the room's replica included. Wall time: sending \
         the commands and reading the replies. Bus messages: the PUBLISH and SPUBLISH messages \
         all nodes received over the cluster bus (`CLUSTER INFO`).\n",
        2 * pairs
    );
    let alone = |events: &str, subscribe: &dyn Fn(&Server) -> Vec<Subscriber>| {
        let server = Server::with(Options::default().module("presence.events", events));
        let shape = Shape {
            masters: vec![&server],
            replicas: Vec::new(),
            owner: &|_: &str| 0,
        };
        event_run(&shape, subscribe(&server), pairs)
    };
    let a = alone("global", &|server| vec![Subscriber::new(server, 0)]);
    let b = alone("room", &|server| room_subscriber(server, |_| true));
    let e = alone("global", &|_| Vec::new());
    let cluster = Cluster::start(3, Options::default());
    let owner = |room: &str| cluster.owner_of(room.as_bytes());
    let shape = Shape {
        masters: cluster.masters.iter().collect(),
        replicas: cluster.replicas.iter().collect(),
        owner: &owner,
    };
    let mut idle: Vec<Conn> = cluster.nodes().map(Server::conn).collect();
    let before: Vec<f64> = idle.iter_mut().map(cpu_seconds).collect();
    std::thread::sleep(Duration::from_secs(1));
    let idle_us: f64 = idle
        .iter_mut()
        .map(cpu_seconds)
        .zip(&before)
        .map(|(after, before)| (after - before) * 1e6)
        .sum::<f64>()
        / before.len() as f64;
    set_events(&cluster, "global");
    let c = event_run(&shape, vec![Subscriber::new(&cluster.masters[0], 0)], pairs);
    set_events(&cluster, "room");
    let subscribers = (0..cluster.masters.len())
        .flat_map(|m| room_subscriber(&cluster.masters[m], |room| owner(room) == m))
        .collect();
    let d = event_run(&shape, subscribers, pairs);
    set_events(&cluster, "global");
    let f = event_run(&shape, Vec::new(), pairs);
    let rows = [
        ("(a) one server, `global`, PSUBSCRIBE", a),
        ("(b) one server, `room`, SSUBSCRIBE of each room", b),
        (
            "(c) 3 masters + 3 replicas, `global`, PSUBSCRIBE on one master",
            c,
        ),
        (
            "(d) 3 masters + 3 replicas, `room`, SSUBSCRIBE of each room on its master",
            d,
        ),
        ("(e) one server, `global`, no subscriber", e),
        ("(f) 3 masters + 3 replicas, `global`, no subscriber", f),
    ];
    println!("| setup | events | wall | CPU per event: room's master | other nodes | of which the room's replica | all nodes | all nodes / (a) | bus messages per event |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let per_event = |cost: &EventCost, seconds: f64| seconds * 1e6 / cost.events as f64;
    let reference = per_event(&rows[0].1, rows[0].1.room_node + rows[0].1.others);
    for (setup, cost) in &rows {
        let total = per_event(cost, cost.room_node + cost.others);
        println!(
            "| {setup} | {} | {:.2} s | {:.2} µs | {:.2} µs | {} | {total:.2} µs | {:.2} | {} |",
            cost.events,
            cost.wall.as_secs_f64(),
            per_event(cost, cost.room_node),
            per_event(cost, cost.others),
            cost.replica.map_or("–".to_string(), |replica| format!(
                "{:.2} µs",
                per_event(cost, replica)
            )),
            total / reference,
            cost.bus.map_or("–".to_string(), |bus| format!(
                "{:.2}",
                bus as f64 / cost.events as f64
            )),
        );
    }
    println!(
        "\nAn idle node of the cluster used {idle_us:.0} µs of CPU a second (mean of the {} \
         nodes over 1 s).\n",
        before.len()
    );
}

/// Copies the RDB (`rdb`) or the AOF directory (not `rdb`) of the server directory `from`
/// into `to`.
fn copy_saved(from: &std::path::Path, to: &std::path::Path, rdb: bool) {
    if rdb {
        std::fs::copy(from.join("dump.rdb"), to.join("dump.rdb")).expect("copy the RDB");
        return;
    }
    let aof = to.join("appendonlydir");
    std::fs::create_dir_all(&aof).expect("create appendonlydir");
    for file in std::fs::read_dir(from.join("appendonlydir")).expect("the AOF directory") {
        let file = file.expect("an AOF file");
        std::fs::copy(file.path(), aof.join(file.file_name())).expect("copy an AOF file");
    }
}

/// The options of a server that loads saved presences: with the module or without, from the
/// AOF (`aof`) or the RDB; staleness off, so that every loaded presence counts.
fn loading_options(with_module: bool, aof: bool) -> Options {
    Options {
        without_module: !with_module,
        ..Options::default()
            .module("presence.stale-after", "0")
            .module("presence.sweep-interval", "3600000")
            .config("appendonly", if aof { "yes" } else { "no" })
    }
}

/// Starts a server on the RDB (or AOF) saved in `saved`; the seconds its log gives for the
/// load ("DB loaded from …: x seconds"; the wall time to the first `PONG` without one).
fn loaded_server(saved: &std::path::Path, with_module: bool, aof: bool) -> (Server, f64) {
    let options = loading_options(with_module, aof);
    let mut server = Server::with(options.clone());
    server.kill();
    copy_saved(saved, server.dir(), !aof);
    let log_before = server.log().len();
    let started = Instant::now();
    server.start_again(options);
    let wall = started.elapsed().as_secs_f64();
    let log = server.log();
    let marker = if aof {
        "DB loaded from append only file: "
    } else {
        "DB loaded from disk: "
    };
    let logged = log
        .get(log_before..)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once(marker))
        .filter_map(|(_, rest)| rest.trim_end_matches(" seconds").trim().parse().ok())
        .next_back();
    (server, logged.unwrap_or(wall))
}

/// A replica (with the module or without, loading from disk or `swapdb`) syncs with a master
/// that loaded the RDB saved in `saved`: the wall time from `REPLICAOF` until it is up, loaded,
/// and (with the module) `PRESENCE.COUNT room0` answers, and the CPU time the replica used.
fn full_sync(saved: &std::path::Path, with_module: bool, swapdb: bool) -> (f64, f64) {
    let (master, _) = loaded_server(saved, with_module, false);
    master
        .conn()
        .call(&["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
    let mut options = loading_options(with_module, false);
    if swapdb {
        options = options.config("repl-diskless-load", "swapdb");
    }
    let replica = Server::with(options);
    let mut c = replica.conn();
    let cpu_before = cpu_seconds(&mut c);
    let started = Instant::now();
    c.call(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
    wait_for(Duration::from_secs(120), "the replica's full sync", || {
        let up = c.info_field("replication", "master_link_status") == "up"
            && c.info_field("persistence", "loading") == "0"
            && c.info_field("persistence", "async_loading") != "1";
        let answers = !with_module
            || matches!(
                c.call(&["PRESENCE.COUNT", "room0"]),
                test_support::Reply::Int(_)
            );
        if !(up && answers) {
            std::thread::sleep(Duration::from_millis(5));
        }
        (up && answers).then_some(())
    });
    let wall = started.elapsed().as_secs_f64();
    (wall, cpu_seconds(&mut c) - cpu_before)
}

/// Writes `n` presences in 1000 rooms with `PRESENCE.JOIN` (one socket in four held through a
/// node with a lease) on a server with the AOF on (commands, no RDB preamble), saves its RDB,
/// and keeps both in the directory returned: the files every load starts from.
fn saved_presences(n: usize) -> test_support::TempDir {
    let server = Server::with(
        Options::default()
            .config("appendonly", "yes")
            .config("aof-use-rdb-preamble", "no"),
    );
    let mut c = server.conn();
    c.int(&["PRESENCE.LEASE", "web-1.4242.k3f9", "86400000"]);
    let per_room = n.div_ceil(1000);
    pipelined(
        &mut c,
        (0..n).map(|i| {
            let socket = if i % 4 == 0 {
                format!("web-1.4242.k3f9/s{i:019}")
            } else {
                format!("s{i:019}")
            };
            let room = format!("room{}", i / per_room);
            vec!["PRESENCE.JOIN".into(), room, user(i), socket]
        }),
    );
    server.save();
    let saved = test_support::TempDir::new();
    copy_saved(server.dir(), saved.path(), true);
    copy_saved(server.dir(), saved.path(), false);
    saved
}

/// The median of `runs` runs of `f`, each figure on its own.
fn medians(runs: usize, f: impl Fn() -> (f64, f64)) -> (f64, f64) {
    let (mut firsts, mut seconds): (Vec<f64>, Vec<f64>) = (0..runs).map(|_| f()).unzip();
    (median(&mut firsts), median(&mut seconds))
}

/// `--only restart`: loading `n` presences at a restart (RDB, AOF) and in a replica's full
/// sync, with the module and without, from the same files, in the same run.
fn restart(n: usize) {
    println!("## 10. Loading {n} presences: restart and full sync\n");
    println!(
        "{n} presences in 1000 rooms written with `PRESENCE.JOIN` (one in four held through a \
         node with a lease), saved as an RDB and as an AOF of commands (no RDB preamble); each \
         load starts a server on the same files, with the module and without. Restart: the \
         seconds Redis logs for the load (\"DB loaded from …\"), which include the index built \
         at its end. Full sync: an empty replica's `REPLICAOF` of a master holding them, until \
         `master_link_status:up`, loading done and (with the module) `PRESENCE.COUNT` answers \
         (with `repl-diskless-load swapdb`: once the index is rebuilt); wall time, and the CPU \
         time the replica used. Median of 3 runs (1 with `--quick`). Memory: `used_memory_peak` \
         of the RDB load less the keys' `used_memory` (without the module), against the index \
         (`used_memory` with the module less without).\n"
    );
    let saved = saved_presences(n);
    let saved = saved.path();
    let runs = if n >= 1_000_000 { 3 } else { 1 };
    println!("| load | with the module | without | ratio | target |");
    println!("|---|---:|---:|---:|---:|");
    let mut memory = (0.0, 0.0, 0.0);
    for (name, aof) in [("restart, RDB", false), ("restart, AOF", true)] {
        let load = |with_module: bool| {
            medians(runs, || {
                let (server, seconds) = loaded_server(saved, with_module, aof);
                let mut c = server.conn();
                assert_eq!(c.int(&["DBSIZE"]) as usize, n + 1, "every key loaded");
                if with_module {
                    let count = c.int(&["PRESENCE.COUNT", "room0"]) as usize;
                    assert_eq!(count, n.div_ceil(1000), "the index is whole at once");
                }
                let peak: f64 = c
                    .info_field("memory", "used_memory_peak")
                    .parse()
                    .expect("used_memory_peak");
                (seconds, peak.max(used_memory(&mut c) as f64))
            })
        };
        let (with, with_peak) = load(true);
        let (without, without_peak) = load(false);
        if !aof {
            memory = (with_peak, without_peak, 0.0);
            let server = loaded_server(saved, true, false).0;
            memory.2 = used_memory(&mut server.conn()) as f64;
        }
        println!(
            "| {name} | {with:.2} s | {without:.2} s | {:.2}× | ≤ 1.3× |",
            with / without
        );
    }
    for (name, swapdb) in [("full sync, from disk", false), ("full sync, swapdb", true)] {
        let (with, with_cpu) = medians(runs, || full_sync(saved, true, swapdb));
        let (without, without_cpu) = medians(runs, || full_sync(saved, false, swapdb));
        let target = if swapdb {
            "≤ 1 s CPU more"
        } else {
            "≤ 1.3×"
        };
        println!(
            "| {name} | {with:.2} s ({with_cpu:.2} s CPU) | {without:.2} s ({without_cpu:.2} s \
             CPU) | {:.2}× | {target} |",
            with / without
        );
    }
    let (with_peak, keys, with_used) = memory;
    let index = with_used - keys;
    println!(
        "\nMemory of the RDB load: index {:.1} MB, peak over the keys {:.1} MB: {:.2}× the \
         index (target ≤ 1.5×).\n",
        index / 1e6,
        (with_peak - keys) / 1e6,
        (with_peak - keys) / index
    );
}
