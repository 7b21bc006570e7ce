//! `--only data`: presence data (SPEC §12) against the plain-Redis commands it replaces.

use super::{median, pipelined, used_memory, user, Settings, USERS};
use std::time::Instant;
use test_support::{encode, Conn, Options, Server};

/// Connections of each throughput run, each on its own thread.
const CLIENTS: usize = 4;

/// A member's data of exactly 100 bytes, different for every `i` (its name and avatar).
fn data(i: usize) -> String {
    let prefix = format!(
        "{{\"name\":\"Ana María {i:06}\",\"color\":\"#3b82f6\",\"status\":\"online\",\"avatar\":\"/a/"
    );
    let suffix = ".png\"}";
    let width = 100 - prefix.len() - suffix.len();
    format!("{prefix}{i:0width$}{suffix}")
}

/// One request of a throughput run: the commands it sends for the `i`-th user in its
/// `round`-th version (0 or 1: a user's data changes between the two) (a MULTI … EXEC is one
/// request of four commands).
type Request = dyn Fn(usize, usize) -> Vec<Vec<String>> + Sync;

/// Requests per second of [`CLIENTS`] connections sending `pipeline` requests at a time,
/// `requests` in all, each batch encoded once beforehand and sent in one write.
fn drive(port: u16, requests: usize, pipeline: usize, request: &Request) -> f64 {
    let per_client = requests / CLIENTS / pipeline;
    let batches: Vec<Vec<(Vec<u8>, usize)>> = (0..CLIENTS)
        .map(|client| {
            // 64 batches of users, each sent in two versions, the second after all the firsts.
            (0..128)
                .map(|b| {
                    let mut bytes = Vec::new();
                    let mut replies = 0;
                    for k in 0..pipeline {
                        let i = (client * 7919 + b % 64 * pipeline + k) * 104_729 % USERS;
                        for command in request(i, b / 64) {
                            bytes.extend(encode(&command));
                            replies += 1;
                        }
                    }
                    (bytes, replies)
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for batches in &batches {
            scope.spawn(move || {
                let mut c = Conn::connect(port).expect("connect");
                for round in 0..per_client {
                    let (bytes, replies) = &batches[round % batches.len()];
                    c.send_encoded(bytes);
                    for _ in 0..*replies {
                        let reply = c.read().expect("reply");
                        assert!(!matches!(reply, test_support::Reply::Error(_)), "{reply:?}");
                    }
                }
            });
        }
    });
    (per_client * CLIENTS * pipeline) as f64 / started.elapsed().as_secs_f64()
}

/// The median requests per second of `a` and of `b`, in alternating runs.
fn compare(
    settings: &Settings,
    port: u16,
    pipeline: usize,
    a: &Request,
    b: &Request,
) -> (f64, f64) {
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    for _ in 0..settings.rounds {
        ra.push(drive(port, settings.requests, pipeline, a));
        rb.push(drive(port, settings.requests, pipeline, b));
    }
    (median(&mut ra), median(&mut rb))
}

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// The key the data of `user` in the room `bench` lives in.
fn data_key(user: &str) -> String {
    format!("room:presence-data:bench:{user}")
}

/// The section: throughput against the plain commands, then memory.
pub fn data_section(settings: &Settings) {
    println!("## 11. Presence data\n");
    println!(
        "{CLIENTS} connections, each on a thread of the bench, sending a pipeline of requests in \
         one write and reading the replies; {} requests a run, median of {} alternating runs, \
         {USERS} users in one room. A member's data is 100 bytes of JSON. The baselines are what \
         an application without the module writes: the presence key and a data key with \
         `SET … EX` in one `MULTI`, the data alone with `SET … KEEPTTL`, and `MGET` of the data \
         keys of a page.\n",
        settings.requests, settings.rounds
    );
    let server = Server::with(Options::default().module("presence.sweep-interval", "1000"));
    let mut c = server.conn();
    let socket = "sock-0123456789abcd";
    pipelined(
        &mut c,
        (0..USERS)
            .map(|i| strings(&["PRESENCE.JOIN", "bench", &user(i), socket, "DATA", &data(i)])),
    );
    let join: &Request = &|i, round| {
        vec![strings(&[
            "PRESENCE.JOIN",
            "bench",
            &user(i),
            socket,
            "DATA",
            &data(i + round),
        ])]
    };
    let set_pair: &Request = &|i, round| {
        vec![
            strings(&["MULTI"]),
            strings(&[
                "SET",
                &format!("plain:presence:{}", user(i)),
                socket,
                "EX",
                "21600",
            ]),
            strings(&[
                "SET",
                &format!("plain:data:{}", user(i)),
                &data(i + round),
                "EX",
                "21600",
            ]),
            strings(&["EXEC"]),
        ]
    };
    let update: &Request = &|i, round| {
        vec![strings(&[
            "PRESENCE.UPDATE",
            "bench",
            &user(i),
            socket,
            &data(i + 2 + round),
        ])]
    };
    let keepttl: &Request = &|i, round| {
        vec![strings(&[
            "SET",
            &format!("plain:data:{}", user(i)),
            &data(i + 2 + round),
            "KEEPTTL",
        ])]
    };
    let list: &Request = &|i, _| {
        let after = user(i % (USERS - 200));
        vec![strings(&[
            "PRESENCE.LIST",
            "bench",
            "WITHDATA",
            "LIMIT",
            "200",
            "AFTER",
            &after,
        ])]
    };
    let mget: &Request = &|i, _| {
        let first = i % (USERS - 200);
        let mut command = vec!["MGET".to_string()];
        command.extend((first + 1..=first + 200).map(|k| data_key(&user(k))));
        vec![command]
    };
    // The first LIST of a room sorts it once; the runs measure the pages after.
    c.call(&["PRESENCE.LIST", "bench", "LIMIT", "1"]);
    println!("| pipeline | request | req/s | baseline | req/s | ratio | target |");
    println!("|---:|---|---:|---|---:|---:|---:|");
    let rows: [(usize, &str, &Request, &str, &Request, &str); 5] = [
        (
            16,
            "`PRESENCE.JOIN … DATA <100 B>`",
            join,
            "`MULTI`, `SET` presence `EX`, `SET` data `EX`, `EXEC`",
            set_pair,
            "≥ 0.8",
        ),
        (
            1,
            "`PRESENCE.JOIN … DATA <100 B>`",
            join,
            "`MULTI`, `SET` presence `EX`, `SET` data `EX`, `EXEC`",
            set_pair,
            "",
        ),
        (
            16,
            "`PRESENCE.UPDATE … <100 B>`",
            update,
            "`SET` data `KEEPTTL`",
            keepttl,
            "≥ 0.9",
        ),
        (
            1,
            "`PRESENCE.UPDATE … <100 B>`",
            update,
            "`SET` data `KEEPTTL`",
            keepttl,
            "",
        ),
        (
            1,
            "`PRESENCE.LIST … WITHDATA LIMIT 200`",
            list,
            "`MGET` of 200 data keys",
            mget,
            "",
        ),
    ];
    for (pipeline, name, ours, base_name, base, target) in rows {
        let (a, b) = compare(settings, server.port, pipeline, ours, base);
        println!(
            "| {pipeline} | {name} | {a:.0} | {base_name} | {b:.0} | {:.2} | {target} |",
            a / b
        );
    }
    println!();
    memory(settings.memory_presences);
}

/// `used_memory` of `n` presences in rooms of 100, with and without 100 bytes of data each,
/// against the same keys written with `SET … EX` on a server without the module.
fn memory(n: usize) {
    println!(
        "Memory: `used_memory` after writing {n} presences in rooms of 100 (20-byte sockets), \
         minus the empty server's; without the module, the same keys written with `SET … EX \
         21600`.\n"
    );
    println!("| data | with the module | without | per presence, with | per presence, without |");
    println!("|---|---:|---:|---:|---:|");
    for with_data in [false, true] {
        let mut figures = Vec::new();
        for with_module in [true, false] {
            let server = Server::with(Options {
                without_module: !with_module,
                ..Options::default()
            });
            let mut c = server.conn();
            let empty = used_memory(&mut c);
            let writes = (0..n).flat_map(|i| {
                let (room, user, socket) =
                    (format!("room{}", i / 100), user(i), format!("s{i:019}"));
                let mut writes = Vec::new();
                if with_module {
                    let mut join = strings(&["PRESENCE.JOIN", &room, &user, &socket]);
                    if with_data {
                        join.extend(strings(&["DATA", &data(i)]));
                    }
                    writes.push(join);
                } else {
                    writes.push(strings(&[
                        "SET",
                        &format!("room:presence:{room}:{user}"),
                        &socket,
                        "EX",
                        "21600",
                    ]));
                    if with_data {
                        writes.push(strings(&[
                            "SET",
                            &format!("room:presence-data:{room}:{user}"),
                            &data(i),
                            "EX",
                            "21600",
                        ]));
                    }
                }
                writes
            });
            pipelined(&mut c, writes);
            figures.push(used_memory(&mut c) - empty);
        }
        let (with, without) = (figures[0], figures[1]);
        println!(
            "| {} | {:.1} MB | {:.1} MB | {:.0} bytes | {:.0} bytes |",
            if with_data { "100 bytes" } else { "none" },
            with as f64 / 1e6,
            without as f64 / 1e6,
            with as f64 / n as f64,
            without as f64 / n as f64
        );
    }
    println!();
}
