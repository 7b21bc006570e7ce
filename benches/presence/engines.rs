//! `--only engines`: the script engine (the Redis Functions library `presence_v1`,
//! `integrations/socketio/lua/presence.lua`) against the module and against the seed's plan
//! (`SET … EX` and `SCAN MATCH`), in the same run, on servers of the same binary.

use super::{cpu_seconds, pipelined, user};
use std::time::{Duration, Instant};
use test_support::script::Library;
use test_support::{Conn, Options, Reply, Server};

/// The settings of both engines: the integration's defaults, in seconds.
const TTL: &str = "21600";
const STALE_AFTER: &str = "90";

/// What the library's sweep removes at most in one call.
const SWEEP_LIMIT: i64 = 1000;

/// Every presence's socket.
const SOCKET: &str = "sock-0123456789abcd";

/// The room that COUNT, LIST, BEAT and JOIN go to.
const ROOM: &str = "room0";

/// Presences of the stale backlog, in rooms of 1000.
const STALE: usize = 100_000;

/// The sizes of one run.
struct Sizes {
    /// Presences in the database, the room's included.
    keys: usize,
    /// Presences in [`ROOM`].
    room: usize,
    /// Calls of each COUNT and LIST measurement of the module and the script engine.
    reads: usize,
    /// Full `SCAN`s of each COUNT and LIST measurement of the seed's plan.
    scans: usize,
    /// Writes of each JOIN and BEAT measurement.
    writes: usize,
}

/// The three ways compared.
#[derive(Clone, Copy)]
enum Engine {
    /// `PRESENCE.*` on a server with the module.
    Module,
    /// The library's `FCALL`s on a server without it.
    Script,
    /// `SET … EX` and `SCAN MATCH` on a server without it.
    Scan,
}

const ENGINES: [Engine; 3] = [Engine::Module, Engine::Script, Engine::Scan];

/// The room of the `i`-th presence of the database: [`ROOM`] for the first `room`, then rooms
/// of 100.
fn room_of(i: usize, room: usize) -> String {
    if i < room {
        ROOM.to_string()
    } else {
        format!("r{}", (i - room) / 100)
    }
}

/// How an engine is called: plain commands, or the library's calls.
enum Client {
    /// Commands sent as they are.
    Plain(Conn),
    /// Calls of the library.
    Script(Library),
}

/// One engine's server and connection.
struct Side {
    engine: Engine,
    server: Server,
    client: Client,
}

impl Side {
    fn start(engine: Engine) -> Side {
        let server = match engine {
            Engine::Module => Server::with(module_options()),
            Engine::Script | Engine::Scan => plain_server(),
        };
        let client = match engine {
            Engine::Script => {
                let mut lib = Library::load(server.conn());
                lib.ttl = TTL.into();
                lib.stale_after = STALE_AFTER.into();
                lib.sweep_limit = SWEEP_LIMIT;
                Client::Script(lib)
            }
            Engine::Module | Engine::Scan => Client::Plain(server.conn()),
        };
        Side {
            engine,
            server,
            client,
        }
    }

    fn conn(&mut self) -> &mut Conn {
        match &mut self.client {
            Client::Plain(conn) => conn,
            Client::Script(lib) => &mut lib.conn,
        }
    }

    /// A new connection in place of the one the writes went through (whose buffers grew).
    fn reconnect(&mut self) {
        *self.conn() = self.server.conn();
    }

    fn lib(&mut self) -> &mut Library {
        match &mut self.client {
            Client::Script(lib) => lib,
            Client::Plain(_) => panic!("not the script engine"),
        }
    }

    /// The command that joins `user` to `room` (a `BEAT` when `beat`; the seed's plan writes
    /// the key again either way).
    fn write(&self, beat: bool, room: &str, user: &str) -> Vec<String> {
        let op = if beat { "beat" } else { "join" };
        match self.engine {
            Engine::Module => vec![
                format!("PRESENCE.{}", op.to_uppercase()),
                room.into(),
                user.into(),
                SOCKET.into(),
            ],
            Engine::Script => {
                let Client::Script(lib) = &self.client else {
                    panic!("not the script engine");
                };
                let args = [room, user, SOCKET];
                lib.command(op, &lib.keys(op, &args), &args)
            }
            Engine::Scan => vec![
                "SET".into(),
                format!("room:presence:{room}:{user}"),
                SOCKET.into(),
                "EX".into(),
                TTL.into(),
            ],
        }
    }

    /// The top-level commands whose time `INFO commandstats` gives for this engine.
    fn commands(&self) -> &'static [&'static str] {
        match self.engine {
            Engine::Module => &[
                "presence.join",
                "presence.beat",
                "presence.count",
                "presence.list",
            ],
            Engine::Script => &["fcall"],
            Engine::Scan => &["set", "scan"],
        }
    }

    /// The room's live count.
    fn count(&mut self) -> usize {
        match self.engine {
            Engine::Module => self.conn().int(&["PRESENCE.COUNT", ROOM]) as usize,
            Engine::Script => self.lib().run("count", &[ROOM]).int() as usize,
            Engine::Scan => scan_room(self.conn()).len(),
        }
    }

    /// The room's first 200 users in byte order.
    fn list(&mut self) -> Vec<String> {
        match self.engine {
            Engine::Module => self
                .conn()
                .strings(&["PRESENCE.LIST", ROOM, "LIMIT", "200"]),
            Engine::Script => self.lib().run("list", &[ROOM, "LIMIT", "200"]).strings(),
            Engine::Scan => {
                let mut users = scan_room(self.conn());
                users.sort_unstable();
                users.truncate(200);
                users
            }
        }
    }
}

fn module_options() -> Options {
    Options::default()
        .module("presence.ttl", TTL)
        .module("presence.stale-after", STALE_AFTER)
        .module("presence.sweep-interval", "3600000")
}

fn plain_server() -> Server {
    Server::with(Options {
        without_module: true,
        ..Options::default()
    })
}

/// The users of [`ROOM`], by `SCAN 0 MATCH room:presence:room0:* COUNT 1000` to the end.
fn scan_room(c: &mut Conn) -> Vec<String> {
    let pattern = format!("room:presence:{ROOM}:*");
    let mut cursor = "0".to_string();
    let mut users = Vec::new();
    loop {
        let reply = c.call(&["SCAN", &cursor, "MATCH", &pattern, "COUNT", "1000"]);
        let Reply::Array(Some(parts)) = reply else {
            panic!("SCAN answered {reply:?}");
        };
        cursor = parts[0].text().unwrap_or_default();
        users.extend(
            parts[1]
                .strings()
                .into_iter()
                .map(|key| key[pattern.len() - 1..].to_string()),
        );
        if cursor == "0" {
            return users;
        }
    }
}

/// The microseconds `INFO commandstats` counts for `commands` so far.
fn command_usec(c: &mut Conn, commands: &[&str]) -> f64 {
    let info = c.text(&["INFO", "commandstats"]).unwrap_or_default();
    info.lines()
        .filter_map(|line| line.strip_prefix("cmdstat_")?.split_once(':'))
        .filter(|(name, _)| commands.contains(name))
        .filter_map(|(_, stats)| {
            stats
                .split(',')
                .find_map(|field| field.strip_prefix("usec="))?
                .parse::<f64>()
                .ok()
        })
        .sum()
}

/// One measurement: server time and wall time per operation, in µs.
#[derive(Clone, Copy, Default)]
struct Cost {
    server: f64,
    wall: f64,
}

/// Runs `work`, which does `n` operations on `side`; their cost.
fn measure(side: &mut Side, n: usize, work: impl FnOnce(&mut Side)) -> Cost {
    let commands = side.commands();
    let before = command_usec(side.conn(), commands);
    let started = Instant::now();
    work(side);
    let wall = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let server = (command_usec(side.conn(), commands) - before) / n as f64;
    Cost { server, wall }
}

/// Runs `op` for 200 ms, at least once: after a run of writes a server answers even a `PING`
/// slower for a while, which the measurement that follows must not count.
fn warm_up(side: &mut Side, mut op: impl FnMut(&mut Side)) {
    let started = Instant::now();
    op(side);
    while started.elapsed() < Duration::from_millis(200) {
        op(side);
    }
}

/// Writes the database of `sizes` on `side`: [`ROOM`] and rooms of 100 around it.
fn populate(side: &mut Side, sizes: &Sizes) {
    let commands: Vec<Vec<String>> = (0..sizes.keys)
        .map(|i| side.write(false, &room_of(i, sizes.room), &user(i)))
        .collect();
    pipelined(side.conn(), commands.into_iter());
}

/// `n` writes of `beat` (else `JOIN`s of new users) to [`ROOM`], pipelined.
fn writes(side: &mut Side, sizes: &Sizes, beat: bool) -> Cost {
    let commands: Vec<Vec<String>> = (0..sizes.writes)
        .map(|i| {
            let user = if beat {
                user(i % sizes.room)
            } else {
                format!("new{i:09}")
            };
            side.write(beat, ROOM, &user)
        })
        .collect();
    measure(side, sizes.writes, |side| {
        pipelined(side.conn(), commands.into_iter());
    })
}

/// The server's CPU time and the wall time to clear [`STALE`] stale presences, in µs per
/// presence.
fn sweep(engine: Engine) -> Cost {
    let users = (0..STALE).map(user).collect::<Vec<_>>();
    let room = |i: usize| format!("room{}", i / 1000);
    let mut side = Side::start(engine);
    let (cpu, wall) = match engine {
        Engine::Module => {
            let commands = (0..STALE).map(|i| side.write(false, &room(i), &users[i]));
            let commands: Vec<_> = commands.collect();
            pipelined(side.conn(), commands.into_iter());
            side.conn()
                .call(&["CONFIG", "SET", "presence.stale-after", "1"]);
            std::thread::sleep(Duration::from_millis(1100));
            let before = cpu_seconds(side.conn());
            let started = Instant::now();
            side.conn()
                .call(&["CONFIG", "SET", "presence.sweep-interval", "100"]);
            while side.conn().int(&["DBSIZE"]) > 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
            (cpu_seconds(side.conn()) - before, started.elapsed())
        }
        Engine::Script => {
            // Written live for one second: the index holds each presence's live-until.
            side.lib().stale_after = "1".into();
            let commands = (0..STALE).map(|i| side.write(false, &room(i), &users[i]));
            let commands: Vec<_> = commands.collect();
            pipelined(side.conn(), commands.into_iter());
            std::thread::sleep(Duration::from_millis(1100));
            let before = cpu_seconds(side.conn());
            let started = Instant::now();
            let removed = side.lib().sweep_all("bench", "0");
            assert_eq!(removed as usize, STALE, "the library swept every presence");
            (cpu_seconds(side.conn()) - before, started.elapsed())
        }
        Engine::Scan => {
            let expire_at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                + Duration::from_secs(3);
            let at = expire_at.as_millis().to_string();
            pipelined(
                side.conn(),
                (0..STALE).map(|i| {
                    vec![
                        "SET".into(),
                        format!("room:presence:{}:{}", room(i), users[i]),
                        SOCKET.into(),
                        "PXAT".into(),
                        at.clone(),
                    ]
                }),
            );
            assert_eq!(side.conn().int(&["DBSIZE"]) as usize, STALE);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock");
            std::thread::sleep(expire_at.saturating_sub(now));
            let before = cpu_seconds(side.conn());
            let started = Instant::now();
            while side.conn().int(&["DBSIZE"]) > 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
            (cpu_seconds(side.conn()) - before, started.elapsed())
        }
    };
    Cost {
        server: cpu * 1e6 / STALE as f64,
        wall: wall.as_secs_f64() * 1e6 / STALE as f64,
    }
}

/// A figure in µs, with the precision it needs.
fn us(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0} µs")
    } else {
        format!("{v:.2} µs")
    }
}

/// A ratio, with the precision it needs.
fn ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

/// The section.
pub fn engines(quick: bool) {
    let sizes = if quick {
        Sizes {
            keys: 20_000,
            room: 2_000,
            reads: 300,
            scans: 5,
            writes: 10_000,
        }
    } else {
        Sizes {
            keys: 100_000,
            room: 10_000,
            reads: 2000,
            scans: 20,
            writes: 50_000,
        }
    };
    println!("## 12. The script engine against the module and SCAN\n");
    println!(
        "Three servers of the same binary: the module loaded; the library `presence_v1` \
         (`FCALL`) on a server without the module; the seed's plan (`SET room:presence:<room>:\
         <user> <socket> EX {TTL}`, counts and lists by `SCAN 0 MATCH room:presence:<room>:* \
         COUNT 1000` to the end) on another. Each holds {} presences, {} of them in the room \
         measured, the rest in rooms of 100; ttl {TTL} s, staleAfter {STALE_AFTER} s. One \
         client. COUNT and LIST: {} calls one after the other ({} full SCANs); LIST is `LIMIT \
         200` (SCAN: the whole room, sorted, the first 200). BEAT: {} beats of the room's users, \
         JOIN: {} new users joining it, pipelined (SCAN plan: the same `SET … EX` for both). \
         Sweep: {STALE} presences in rooms of 1000 gone stale at once on a fresh server: the \
         module's sweeper (every 100 ms, as section 3), the library's `sweep` with a limit of \
         {SWEEP_LIMIT} called until it answers less, and for the seed's plan Redis's own expiry \
         of as many keys given the same `PXAT`.\n",
        sizes.keys, sizes.room, sizes.reads, sizes.scans, sizes.writes, sizes.writes
    );
    let mut sides: Vec<Side> = ENGINES.into_iter().map(Side::start).collect();
    let mut rows: Vec<(&str, [Cost; 3])> = Vec::new();
    for side in &mut sides {
        populate(side, &sizes);
        assert_eq!(side.count(), sizes.room, "the room holds every presence");
    }
    let mut row = |name: &'static str, cost: &mut dyn FnMut(&mut Side) -> Cost| {
        let mut costs = [Cost::default(); 3];
        for (k, side) in sides.iter_mut().enumerate() {
            costs[k] = cost(side);
        }
        rows.push((name, costs));
    };
    let reads = |side: &Side| match side.engine {
        Engine::Scan => sizes.scans,
        Engine::Module | Engine::Script => sizes.reads,
    };
    row("JOIN (a new user)", &mut |side| writes(side, &sizes, false));
    row("BEAT", &mut |side| writes(side, &sizes, true));
    row("COUNT", &mut |side| {
        let n = reads(side);
        let room = sizes.room + sizes.writes;
        side.reconnect();
        warm_up(side, |side| assert_eq!(side.count(), room));
        measure(side, n, |side| {
            for _ in 0..n {
                assert_eq!(side.count(), room);
            }
        })
    });
    let first: Vec<String> = (0..200).map(user).collect();
    row("LIST … LIMIT 200", &mut |side| {
        let n = reads(side);
        // The module sorts a room at its first listing; the calls measure the listings after.
        warm_up(side, |side| assert_eq!(side.list(), first));
        measure(side, n, |side| {
            for _ in 0..n {
                assert_eq!(side.list(), first);
            }
        })
    });
    let module = &mut sides[0];
    warm_up(module, |side| {
        side.conn().call(&["PING"]);
    });
    let started = Instant::now();
    for _ in 0..sizes.reads {
        module.conn().call(&["PING"]);
    }
    let ping = started.elapsed().as_secs_f64() * 1e6 / sizes.reads as f64;
    drop(sides);
    let swept = ENGINES.map(sweep);
    rows.push(("sweep of 100k stale, per presence", swept));
    for (title, wall) in [
        (
            "Server time per operation: the command's own time in `INFO commandstats` (SCAN: \
             all the `SCAN` calls of one count or list); for the sweep, the server's CPU time \
             (`INFO cpu`, user + sys) from the start of the sweep until the keys are gone, per \
             presence.",
            false,
        ),
        (
            "Wall time per operation at the client, round trip included (JOIN and BEAT \
             pipelined; the sweep: the time until the last key is gone, per presence).",
            true,
        ),
    ] {
        println!("{title}\n");
        println!("| operation | module | script | SCAN plan | script ÷ module | SCAN ÷ script |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (name, costs) in &rows {
            let [m, s, p] = costs.map(|c| if wall { c.wall } else { c.server });
            println!(
                "| {name} | {} | {} | {} | {} | {} |",
                us(m),
                us(s),
                us(p),
                ratio(s / m),
                ratio(p / s)
            );
        }
        println!();
    }
    println!(
        "The round trip alone: a `PING` on the module's server takes {} at the client.\n",
        us(ping)
    );
}
