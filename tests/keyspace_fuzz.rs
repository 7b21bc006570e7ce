//! Thousands of random commands of every type class on a small set of presence keys (strings
//! and other types, TTLs, renames, copies, moves, restores, stores, swaps and flushes, and the
//! module's own commands, with and without presence data), with the sweeper running; a fifth of
//! the raw commands touch the data keys instead. Where the server has them (and Redis 8
//! must: see [`Features::of`]), vector sets and hashes whose fields expire join the mix. After
//! every few commands one `MULTI` reads every room's listing and every key's type, value and
//! TTL at the same instant: the listing must be exactly what the liveness rule makes of the
//! keys, each listed user's data what its data key holds. Once the commands stop, every data key
//! left has a live presence beside it, with the same expiry.

use std::collections::BTreeMap;
use test_support::{Conn, Features, Options, Reply, Rng, Server};

const ROOMS: u64 = 3;
const USERS: u64 = 8;
const TTL_S: i64 = 21600;
/// Far above the test's running time, so that no key written with the full TTL turns stale
/// while the fuzz runs, however slow the machine: the keys are live (written with `TTL_S`) or
/// not (1000 s, 5 s) from the start, never at the edge where the listing and the `PTTL` read
/// a moment apart could disagree.
const STALE_AFTER_S: i64 = 3600;

fn name(rng: &mut Rng) -> String {
    let prefix = if rng.below(5) == 0 {
        "room:presence-data"
    } else {
        "room:presence"
    };
    format!("{prefix}:r{}:u{}", rng.below(ROOMS), rng.below(USERS))
}

/// Presence data to join or update with.
fn data(rng: &mut Rng) -> String {
    pick(rng, &[r#"{"name":"Ada"}"#, "[1,2]", "null", r#""away""#]).to_string()
}

fn socket(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => "bad:value".to_string(),
        1 => "with space".to_string(),
        _ => format!("s{}", rng.below(4)),
    }
}

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len() as u64) as usize]
}

/// The commands of the newer types this server runs in the mix.
fn newer_commands(features: &Features) -> Vec<&'static str> {
    let mut names = Vec::new();
    if features.vector_sets {
        names.extend(["VADD", "VREM"]);
    }
    if features.field_expiry {
        names.push("HPEXPIRE");
    }
    if features.hash_ex {
        names.extend(["HSETEX", "HGETEX", "HGETDEL"]);
    }
    names
}

/// Dumps of one value of each type, to RESTORE over presence keys; with hash field expiry, also
/// a hash whose field expires in an hour and one whose only field will have expired (Redis
/// deletes it as soon as it is restored).
fn dumps(c: &mut Conn, features: Features) -> Vec<Vec<u8>> {
    c.call(&["SET", "src:string", "s9"]);
    c.int(&["SADD", "src:set", "x"]);
    c.int(&["ZADD", "src:zset", "1", "x"]);
    c.int(&["RPUSH", "src:list", "2", "1"]);
    c.int(&["HSET", "src:hash", "f", "v"]);
    let mut sources = vec!["src:string", "src:set", "src:zset", "src:list", "src:hash"];
    if features.vector_sets {
        c.int(&["VADD", "src:vset", "VALUES", "2", "1", "2", "e"]);
        sources.push("src:vset");
    }
    if features.field_expiry {
        c.int(&["HSET", "src:hfe", "f", "v", "g", "w"]);
        c.call(&["HEXPIRE", "src:hfe", "3600", "FIELDS", "1", "f"]);
        sources.push("src:hfe");
    }
    let mut dumps: Vec<Vec<u8>> = sources
        .iter()
        .map(|key| match c.call(&["DUMP", key]) {
            Reply::Bulk(Some(payload)) => payload,
            other => panic!("DUMP {key}: {other:?}"),
        })
        .collect();
    if features.field_expiry {
        // In one transaction, so that the field cannot expire before the `DUMP`.
        c.call(&["MULTI"]);
        c.call(&["HSET", "src:gone", "f", "v"]);
        c.call(&["HPEXPIRE", "src:gone", "1", "FIELDS", "1", "f"]);
        c.call(&["DUMP", "src:gone"]);
        match c.call(&["EXEC"]) {
            Reply::Array(Some(mut replies)) => match replies.pop() {
                Some(Reply::Bulk(Some(payload))) => dumps.push(payload),
                other => panic!("DUMP src:gone: {other:?}"),
            },
            other => panic!("EXEC: {other:?}"),
        }
    }
    dumps
}

/// One random command of the newer types, among `names` (see [`newer_commands`]), on the
/// presence key `a`.
fn newer_command(rng: &mut Rng, names: &[&str], a: String) -> Vec<String> {
    let ms = pick(rng, &["1", "50", "3600000"]).to_string();
    match pick(rng, names) {
        "VADD" => vec![
            "VADD".into(),
            a,
            "VALUES".into(),
            "2".into(),
            "1".into(),
            "2".into(),
            pick(rng, &["e", "f"]).into(),
        ],
        "VREM" => vec!["VREM".into(), a, "e".into()],
        "HPEXPIRE" => vec![
            "HPEXPIRE".into(),
            a,
            ms,
            "FIELDS".into(),
            "1".into(),
            "f".into(),
        ],
        "HSETEX" => vec![
            "HSETEX".into(),
            a,
            "PX".into(),
            ms,
            "FIELDS".into(),
            "1".into(),
            "f".into(),
            "v".into(),
        ],
        "HGETEX" => vec![
            "HGETEX".into(),
            a,
            "PX".into(),
            ms,
            "FIELDS".into(),
            "1".into(),
            "f".into(),
        ],
        _ => vec!["HGETDEL".into(), a, "FIELDS".into(), "1".into(), "f".into()],
    }
}

/// One random command on the presence keys; `newer` names the commands of the newer types the
/// server has (none on Redis 7.0: the mix is then what it always was).
fn random_command(rng: &mut Rng, dumps: &[Vec<u8>], newer: &[&str]) -> Vec<Vec<u8>> {
    let a = name(rng);
    let b = name(rng);
    let v = socket(rng);
    let room = format!("r{}", rng.below(ROOMS));
    let user = format!("u{}", rng.below(USERS));
    let ttl = pick(rng, &["21600", "21600", "1000", "5"]).to_string();
    let choices = if newer.is_empty() { 40 } else { 44 };
    let words: Vec<String> = match rng.below(choices) {
        0..=3 => vec!["SET".into(), a, v, "EX".into(), ttl],
        4 => vec!["SET".into(), a, v],
        5 => vec!["SET".into(), a, v, "KEEPTTL".into()],
        6 => vec!["SETEX".into(), a, ttl, v],
        7 => vec!["MSET".into(), a, v.clone(), b, v],
        8 => vec![
            "SET".into(),
            a,
            v,
            "GET".into(),
            "PX".into(),
            "21600000".into(),
        ],
        9 => vec!["SETNX".into(), a, v],
        10 | 11 => vec!["EXPIRE".into(), a, ttl],
        12 => vec!["PEXPIREAT".into(), a, "1".into()],
        13 => vec!["PERSIST".into(), a],
        14 => vec!["GETEX".into(), a, "EX".into(), ttl],
        15 => vec!["DEL".into(), a],
        16 => vec!["UNLINK".into(), a, b],
        17 => vec!["GETDEL".into(), a],
        18 => vec!["RENAME".into(), a, b],
        19 => vec!["COPY".into(), a, b, "REPLACE".into()],
        20 => vec!["MOVE".into(), a, "1".into()],
        21 => vec!["APPEND".into(), a, "x".into()],
        22 => vec![
            "SETRANGE".into(),
            a,
            "0".into(),
            pick(rng, &["s", ":"]).into(),
        ],
        23 => vec!["SUNIONSTORE".into(), a, "src:set".into()],
        24 => vec!["ZUNIONSTORE".into(), a, "1".into(), "src:zset".into()],
        25 => vec!["SORT".into(), "src:list".into(), "STORE".into(), a],
        26 => vec!["LPUSH".into(), a, "x".into()],
        27 => vec!["HSET".into(), a, "f".into(), "v".into()],
        28 => {
            let dump = &dumps[rng.below(dumps.len() as u64) as usize];
            let mut words = vec![b"RESTORE".to_vec(), a.into_bytes()];
            words.push(pick(rng, &["0", "21600000", "5000"]).as_bytes().to_vec());
            words.push(dump.clone());
            words.push(b"REPLACE".to_vec());
            return words;
        }
        29 => vec!["SWAPDB".into(), "0".into(), "1".into()],
        30 if rng.below(10) == 0 => vec!["FLUSHDB".into()],
        31 | 32 => vec!["PRESENCE.JOIN".into(), room, user, socket(rng)],
        33 | 34 => vec![
            "PRESENCE.JOIN".into(),
            room,
            user,
            socket(rng),
            "DATA".into(),
            data(rng),
        ],
        35 | 36 => vec!["PRESENCE.BEAT".into(), room, user, socket(rng)],
        37 => vec!["PRESENCE.LEAVE".into(), room, user, socket(rng)],
        38 => vec!["INCR".into(), a],
        39 if rng.below(2) == 0 => {
            vec!["PRESENCE.UPDATE".into(), room, user, socket(rng), data(rng)]
        }
        40..=43 => newer_command(rng, newer, a),
        _ => vec!["PRESENCE.COUNT".into(), room],
    };
    words.into_iter().map(String::into_bytes).collect()
}

fn valid_socket(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@+=~".contains(b))
}

/// Reads every room's listing (with sockets and data) and every presence and data key's type,
/// value and TTL in one transaction, and checks the listings against the keys.
fn check(c: &mut Conn, step: usize) {
    c.call(&["MULTI"]);
    for room in 0..ROOMS {
        let room = format!("r{room}");
        c.call(&["PRESENCE.LIST", room.as_str(), "WITHSOCKETS", "WITHDATA"]);
    }
    let mut names = Vec::new();
    for room in 0..ROOMS {
        for user in 0..USERS {
            for prefix in ["room:presence", "room:presence-data"] {
                let key = format!("{prefix}:r{room}:u{user}");
                c.call(&["TYPE", key.as_str()]);
                c.call(&["GET", key.as_str()]);
                c.call(&["PTTL", key.as_str()]);
            }
            names.push((room, user));
        }
    }
    let Reply::Array(Some(replies)) = c.call(&["EXEC"]) else {
        panic!("EXEC failed");
    };
    let (listings, keys) = replies.split_at(ROOMS as usize);
    let live_above_ms = (TTL_S - STALE_AFTER_S) * 1000;
    for (room, listing) in listings.iter().enumerate() {
        let mut expected = Vec::new();
        for (at, (key_room, user)) in names.iter().enumerate() {
            if *key_room != room as u64 {
                continue;
            }
            let kind = keys[6 * at].text().unwrap_or_default();
            let Reply::Bulk(Some(value)) = &keys[6 * at + 1] else {
                continue;
            };
            let pttl = keys[6 * at + 2].int();
            if kind == "string" && valid_socket(value) && pttl > live_above_ms {
                expected.push(Some(format!("u{user}")));
                expected.push(Some(String::from_utf8_lossy(value).into_owned()));
                // A data key without a TTL is not the data of a presence (whose key has one).
                let data_kind = keys[6 * at + 3].text().unwrap_or_default();
                let data_pttl = keys[6 * at + 5].int();
                expected.push(match &keys[6 * at + 4] {
                    Reply::Bulk(Some(data)) if data_kind == "string" && data_pttl > 0 => {
                        Some(String::from_utf8_lossy(data).into_owned())
                    }
                    _ => None,
                });
            }
        }
        let Reply::Array(Some(listed)) = listing else {
            panic!("room r{room} after step {step}: {listing:?}");
        };
        let listed: Vec<Option<String>> = listed.iter().map(Reply::text).collect();
        assert_eq!(listed, expected, "room r{room} after step {step}");
    }
}

/// The string data keys of databases 0 and 1 that have no live presence beside them, or not
/// its exact expiry (once the commands have stopped and the sweeper has had its ticks, there
/// is none).
fn data_keys_without_a_live_presence(c: &mut Conn) -> Vec<String> {
    let live_above_ms = (TTL_S - STALE_AFTER_S) * 1000;
    let mut orphans = Vec::new();
    for db in ["0", "1"] {
        c.call(&["SELECT", db]);
        for room in 0..ROOMS {
            for user in 0..USERS {
                let data = format!("room:presence-data:r{room}:u{user}");
                // A data key of another type is no presence's data: the module leaves it be.
                if c.text(&["TYPE", data.as_str()]).as_deref() != Some("string") {
                    continue;
                }
                let presence = format!("room:presence:r{room}:u{user}");
                let live = c.text(&["TYPE", presence.as_str()]).as_deref() == Some("string")
                    && c.text(&["GET", presence.as_str()])
                        .is_some_and(|v| valid_socket(v.as_bytes()))
                    && c.int(&["PTTL", presence.as_str()]) > live_above_ms;
                let same_expiry = c.int(&["PEXPIRETIME", data.as_str()])
                    == c.int(&["PEXPIRETIME", presence.as_str()]);
                if !live || !same_expiry {
                    let kind = c.text(&["TYPE", presence.as_str()]);
                    let pttl = c.int(&["PTTL", presence.as_str()]);
                    let data_pttl = c.int(&["PTTL", data.as_str()]);
                    orphans.push(format!(
                        "db {db} {data} (PTTL {data_pttl}) beside a presence key of type {kind:?}, PTTL {pttl}"
                    ));
                }
            }
        }
    }
    c.call(&["SELECT", "0"]);
    orphans
}

#[test]
fn random_commands_of_every_type_keep_the_index_equal_to_the_keys() {
    let server = Server::with(Options::default().fast(STALE_AFTER_S as u32, 20));
    let mut c = server.conn();
    let features = Features::of(&mut c);
    let newer = newer_commands(&features);
    let dumps = dumps(&mut c, features);
    let mut rng = Rng::new(20261130);
    let mut ran: BTreeMap<String, usize> = BTreeMap::new();
    for step in 0..4000 {
        let command = random_command(&mut rng, &dumps, &newer);
        let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
        if !matches!(c.call(&args), Reply::Error(_)) {
            let name = String::from_utf8_lossy(&command[0]).into_owned();
            *ran.entry(name).or_default() += 1;
        }
        if step % 4 == 3 {
            check(&mut c, step);
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let orphans = data_keys_without_a_live_presence(&mut c);
        if orphans.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "data keys without a live presence: {orphans:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for name in ["PRESENCE.UPDATE", "PRESENCE.JOIN"] {
        assert!(ran.get(name).is_some_and(|n| *n >= 5), "{name}: {ran:?}");
    }
    for name in newer {
        assert!(
            ran.get(name).is_some_and(|n| *n >= 5),
            "{name} hardly ever ran without an error: {ran:?}"
        );
    }
    assert_eq!(c.call(&["PING"]).text().as_deref(), Some("PONG"));
}
