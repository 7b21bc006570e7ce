//! The script engine (`integrations/socketio/lua/presence.lua`, SPEC §13) on plain servers:
//! its replies, errors and events against the module's, call by call (the module is the
//! reference), a seeded random run of both side by side, the EVALSHA form where `FUNCTION` is
//! refused, and its own parts (reconcile, the sweep's lease, the cluster key form).
//!
//! Both engines are driven with the module's argument vectors: [`Library`] turns one into the
//! library's call (its keys, its settings, its entry point).

use std::thread;
use std::time::{Duration, Instant};
use test_support::cluster::Cluster;
use test_support::script::{eval_source, Library, Mode, MAX_DATA, STALE_AFTER, TTL};
use test_support::{Conn, Options, Reply, Rng, Server, Subscriber};

/// The module's settings, its timer's sweeps out of the way (`PRESENCE.SWEEP` sweeps).
fn module_options() -> Options {
    Options::default()
        .module("presence.ttl", TTL)
        .module("presence.stale-after", STALE_AFTER)
        .module("presence.max-data", MAX_DATA)
        .module("presence.sweep-interval", "3600000")
}

fn module_server() -> Server {
    Server::with(module_options())
}

fn plain_server() -> Server {
    Server::with(Options {
        without_module: true,
        ..Options::default()
    })
}

/// The module's side: `PRESENCE.<op> args…`.
fn module_run(conn: &mut Conn, op: &str, args: &[&str]) -> Reply {
    let mut argv = vec![format!("PRESENCE.{}", op.to_uppercase())];
    argv.extend(args.iter().map(|a| a.to_string()));
    conn.call(&argv)
}

/// A subscriber to every global presence channel (and to some rooms' sharded channels), read up
/// to a marker of its own.
struct Events {
    listener: Conn,
    conn: Conn,
    markers: u64,
}

impl Events {
    fn new(server: &Server) -> Events {
        Events::with_rooms(server, &[])
    }

    /// Also subscribed (`SSUBSCRIBE`) to the channels of `rooms`, as a cluster's events go.
    fn with_rooms(server: &Server, rooms: &[&str]) -> Events {
        let mut listener = server.conn();
        let mut subscribe = vec![["PSUBSCRIBE".to_string(), "__presence@0__:*".to_string()]];
        for room in rooms {
            subscribe.push(["SSUBSCRIBE".into(), format!("__presence@0__:{{{room}}}")]);
        }
        for command in subscribe {
            let reply = listener.call(&command);
            assert!(matches!(reply, Reply::Array(Some(_))), "{reply:?}");
        }
        Events {
            listener,
            conn: server.conn(),
            markers: 0,
        }
    }

    /// The next message, as `channel payload`.
    fn next(&mut self) -> String {
        let reply = self.listener.read_within(Duration::from_secs(30));
        let parts = reply.expect("an event within 30 s").strings();
        match parts[0].as_str() {
            "pmessage" => format!("{} {}", parts[2], parts[3]),
            "smessage" => format!("{} {}", parts[1], parts[2]),
            _ => panic!("not an event: {parts:?}"),
        }
    }

    /// Every event published since the last call, as `channel payload`, in order: a marker is
    /// published and the events are read up to it.
    fn take(&mut self) -> Vec<String> {
        self.markers += 1;
        let marker = format!("marker-{}", self.markers);
        self.conn
            .int(&["PUBLISH", "__presence@0__:test-marker", &marker]);
        let end = format!("__presence@0__:test-marker {marker}");
        let mut out = Vec::new();
        loop {
            let event = self.next();
            if event == end {
                return out;
            }
            out.push(event);
        }
    }
}

/// What a [`Pair`] runs on, kept until the pair is dropped.
enum Servers {
    Single {
        _module: Server,
        _plain: Server,
    },
    Cluster {
        _module: Box<Cluster>,
        _plain: Box<Cluster>,
    },
}

/// Waits until the module's sweeper, on a cluster node, has read the node's slots (at a timer
/// tick; until then `PRESENCE.SWEEP` removes nothing, not knowing which rooms are the node's),
/// then puts its timer out of the way, as on a single server.
fn sweeper_knows_its_slots(c: &mut Conn) {
    c.int(&["PRESENCE.LEASE", "{probe}probe", "60000"]);
    c.int(&["PRESENCE.JOIN", "probe", "u", "probe/s"]);
    c.int(&["PRESENCE.LEASE", "{probe}probe", "0"]);
    test_support::wait_for(Duration::from_secs(30), "the probe's sweep", || {
        c.int(&["PRESENCE.SWEEP"]);
        (c.int(&["EXISTS", "room:presence:{probe}:u"]) == 0).then_some(())
    });
    let set = c.call(&["CONFIG", "SET", "presence.sweep-interval", "3600000"]);
    assert_eq!(set, Reply::Status("OK".into()));
}

/// The module's server and a plain one with the library, side by side, each with its events.
struct Pair {
    _servers: Servers,
    module: Conn,
    library: Library,
    module_events: Events,
    library_events: Events,
    /// What comes before a node id in `PRESENCE.LEASE`: `{<tag>}` on a cluster.
    lease_tag: String,
    /// Every event compared so far.
    seen: Vec<String>,
}

impl Pair {
    fn start() -> Pair {
        let module_server = module_server();
        let plain_server = plain_server();
        Pair {
            module: module_server.conn(),
            library: Library::load(plain_server.conn()),
            module_events: Events::new(&module_server),
            library_events: Events::new(&plain_server),
            lease_tag: String::new(),
            seen: Vec::new(),
            _servers: Servers::Single {
                _module: module_server,
                _plain: plain_server,
            },
        }
    }

    /// Two one-master clusters, one with the module, one with the library in cluster form;
    /// events are heard on the global channels and those of `rooms`.
    fn start_cluster(rooms: &[&str]) -> Pair {
        let module = Cluster::start(1, module_options().module("presence.sweep-interval", "50"));
        sweeper_knows_its_slots(&mut module.masters[0].conn());
        let plain = Cluster::start(
            1,
            Options {
                without_module: true,
                ..Options::default()
            },
        );
        let mut library = Library::load(plain.masters[0].conn());
        library.cluster = true;
        library.tag = "shard".into();
        Pair {
            module: module.masters[0].conn(),
            library,
            module_events: Events::with_rooms(&module.masters[0], rooms),
            library_events: Events::with_rooms(&plain.masters[0], rooms),
            lease_tag: "{shard}".into(),
            seen: Vec::new(),
            _servers: Servers::Cluster {
                _module: Box::new(module),
                _plain: Box::new(plain),
            },
        }
    }

    /// Runs one call on both engines; returns the module's reply after checking the library's.
    fn same(&mut self, op: &str, args: &[&str]) -> Reply {
        let want = module_run(&mut self.module, op, args);
        let got = self.library.run(op, args);
        assert_eq!(got, want, "{op} {args:?}");
        want
    }

    /// The same raw command on both servers.
    fn raw(&mut self, args: &[&str]) {
        let want = self.module.call(args);
        assert_eq!(self.library.conn.call(args), want, "{args:?}");
    }

    /// Checks that both servers hold the same presence, data and lease keys, with the same
    /// values, each with a TTL (the index's keys are the library's own).
    fn same_keys(&mut self, what: &str) {
        let want = key_state(&mut self.module);
        assert_eq!(key_state(&mut self.library.conn), want, "keys after {what}");
    }

    /// Checks that both published the same events since the last look, in the same order, or
    /// in any order when `any_order` (a sweep removes in an order of its own).
    fn same_events(&mut self, any_order: bool, what: &str) {
        let mut want = self.module_events.take();
        let mut got = self.library_events.take();
        if any_order {
            want.sort();
            got.sort();
        }
        assert_eq!(got, want, "events of {what}");
        self.seen.extend(want);
    }
}

/// `depth` arrays, one in the other.
fn deep(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Every presence, data and lease key with its value (its type when it is not a string) and
/// whether it has a TTL, sorted.
fn key_state(conn: &mut Conn) -> Vec<(String, String, bool)> {
    let mut keys = Vec::new();
    for pattern in ["room:presence:*", "room:presence-data:*", "presence:node:*"] {
        let mut cursor = "0".to_string();
        loop {
            let reply = conn.call(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"]);
            let Reply::Array(Some(parts)) = reply else {
                panic!("SCAN answered {reply:?}");
            };
            cursor = parts[0].text().expect("a cursor");
            keys.extend(parts[1].strings());
            if cursor == "0" {
                break;
            }
        }
    }
    let mut state: Vec<(String, String, bool)> = keys
        .into_iter()
        .map(|key| {
            let value = match conn.text(&["TYPE", &key]).as_deref() {
                Some("string") => conn.text(&["GET", &key]).unwrap_or_default(),
                other => format!("({})", other.unwrap_or_default()),
            };
            let has_ttl = conn.int(&["PTTL", &key]) > 0;
            (key, value, has_ttl)
        })
        .collect();
    state.sort();
    state
}

#[test]
fn replies_errors_and_events_match_the_module() {
    let mut pair = Pair::start();
    let big = format!("\"{}\"", "x".repeat(2000));
    let (longest, too_long) = ("i".repeat(128), "i".repeat(129));
    let calls: &[(&str, &[&str])] = &[
        ("join", &["r1", "u1", "s1"]),
        ("join", &["r1", "u2", "s2", "DATA", r#"{"name":"B"}"#]),
        ("join", &["r1", "u1", "s3"]),
        ("join", &["r1", "u1", "s3", "data", r#"{"x":1}"#]),
        ("join", &["r1", "u1", "s3", "DATA", r#"{"x":1}"#]),
        ("update", &["r1", "u1", "s3", r#"{"x":2}"#]),
        ("update", &["r1", "u1", "s3", r#"{"x":2}"#]),
        ("update", &["r1", "u1", "s1", r#"{"x":3}"#]),
        ("update", &["r1", "u9", "s1", "1"]),
        ("beat", &["r1", "u1", "s3"]),
        ("beat", &["r1", "u1", "s1"]),
        ("beat", &["r1", "u9", "s1"]),
        ("list", &["r1"]),
        ("list", &["r1", "WITHSOCKETS", "WITHDATA"]),
        ("list", &["r1", "withdata", "LIMIT", "1"]),
        ("list", &["r1", "AFTER", "u1", "WITHSOCKETS"]),
        ("list", &["r1", "LIMIT", "0"]),
        ("list", &["r2"]),
        ("count", &["r1"]),
        ("count", &["r2"]),
        ("leave", &["r1", "u1", "s1"]),
        ("leave", &["r1", "u1", "s3"]),
        ("leave", &["r1", "u1", "s3"]),
        ("lease", &["n1", "5000"]),
        ("lease", &["n1", "5000"]),
        ("lease", &["{t}n5", "5000"]),
        ("lease", &["{t}n5", "5000"]),
        ("lease", &["{t}n5", "0"]),
        ("join", &["r1", "u3", "n1/s4", "DATA", "[1,2]"]),
        ("join", &["r1", "u4", "n2/s5"]),
        ("join", &["r2", "u3", "n1/s4"]),
        ("list", &["r1", "WITHSOCKETS", "WITHDATA"]),
        ("count", &["r1"]),
        // Errors, each exactly as the module words it.
        ("join", &["r:1", "u", "s"]),
        (
            "join",
            &[&longest, &longest, &format!("{longest}/{longest}")],
        ),
        ("join", &[&too_long, "u", "s"]),
        ("join", &["r", &too_long, "s"]),
        ("join", &["r", "u", &too_long]),
        ("join", &["r", "u", &format!("{too_long}/s")]),
        ("join", &["r", "u", "/s"]),
        ("join", &["r", "u", "é"]),
        ("join", &["r", "u{", "s"]),
        ("join", &["r", "u", "s s"]),
        ("join", &["r", "u", "a/b/c"]),
        ("join", &["r", "u", "s", "x"]),
        ("join", &["r", "u", "s", "DATA"]),
        ("join", &["r", "u", "s", "NOTDATA", "1"]),
        ("join", &["r", "u"]),
        ("join", &["r", "u", "s", "DATA", "{"]),
        ("join", &["r", "u", "s", "DATA", "1 2"]),
        ("join", &["r", "u", "s", "DATA", &big]),
        ("join", &["r", "u", "s", "DATA", "NaN"]),
        ("join", &["r", "u", "s", "DATA", "-Infinity"]),
        ("join", &["r", "u", "s", "DATA", "0x1F"]),
        ("join", &["r", "u", "s", "DATA", "01"]),
        ("join", &["r", "u", "s", "DATA", "1."]),
        (
            "join",
            &["r", "u", "s", "DATA", "[1e5, -0.5, 0, 2E-3, -0e+1]"],
        ),
        ("join", &["r", "u", "s", "DATA", "[1e]"]),
        ("join", &["r", "u", "s", "DATA", "+1"]),
        (
            "join",
            &["r", "u", "s", "DATA", r#"{"a\"b":"1.","c":"01"}"#],
        ),
        ("join", &["r", "u", "s", "DATA", "1e999"]),
        ("join", &["r", "u", "s", "DATA", "\"a\tb\""]),
        ("join", &["r", "u", "s", "DATA", r#""a\u00e9""#]),
        ("join", &["r", "u", "s", "DATA", &deep(64)]),
        ("join", &["r", "u", "s", "DATA", &deep(65)]),
        ("join", &["r", "u", "s", "DATA", " [1, {\"k\": null}] "]),
        ("update", &["r", "u", "s"]),
        ("update", &["r", "u", "s", "nope"]),
        ("beat", &["r", "u"]),
        ("beat", &["r", "u", "s", "x"]),
        ("leave", &["r", "", "s"]),
        ("list", &[]),
        ("list", &["r1", "LIMIT"]),
        ("list", &["r1", "LIMIT", "-1"]),
        ("list", &["r1", "AFTER"]),
        ("list", &["r1", "AFTER", "a:b"]),
        ("list", &["r1", "BOGUS"]),
        ("list", &["r1", "WITHSOCKETS", "WITHSOCKETS"]),
        ("count", &[]),
        ("count", &["a", "b"]),
        ("count", &["a*"]),
        ("lease", &["n1", "x"]),
        ("lease", &["n1", "86400001"]),
        ("lease", &["n1", "-1"]),
        ("lease", &["{n1", "5"]),
        ("lease", &["n:1", "5"]),
        ("lease", &["n1"]),
    ];
    for (op, args) in calls {
        pair.same(op, args);
        pair.same_events(false, &format!("{op} {args:?}"));
    }
    // A presence key or a lease key of another type.
    pair.raw(&["RPUSH", "room:presence:r1:w", "x"]);
    pair.raw(&["RPUSH", "presence:node:n3", "x"]);
    for (op, args) in [
        ("join", &["r1", "w", "s"][..]),
        ("beat", &["r1", "w", "s"]),
        ("leave", &["r1", "w", "s"]),
        ("update", &["r1", "w", "s", "1"]),
        ("lease", &["n3", "100"]),
        ("count", &["r1"]),
    ] {
        pair.same(op, args);
    }
    // Raw writes the library meets at its next call on the presence: the same events as the
    // module announced when they happened. The data of a presence deleted raw is not the data
    // of the next JOIN without any.
    pair.same("join", &["r3", "u1", "s1", "DATA", r#"{"a":1}"#]);
    pair.raw(&["DEL", "room:presence:r3:u1"]);
    pair.same("join", &["r3", "u1", "s2"]);
    pair.same("join", &["r3", "u2", "s1"]);
    pair.raw(&["PERSIST", "room:presence:r3:u2"]);
    pair.same("beat", &["r3", "u2", "s1"]);
    pair.same("join", &["r3", "u3", "s1"]);
    pair.raw(&["PERSIST", "room:presence:r3:u3"]);
    pair.same("update", &["r3", "u3", "s1", "2"]);
    pair.same("list", &["r3", "WITHSOCKETS", "WITHDATA"]);
    pair.same_events(false, "raw writes");
    pair.same_keys("raw writes");
    // A room with more presences not live than live (a node's, down) is listed from its
    // expiry index: still in byte order, ids of every kind of byte.
    let mixed = ["B", "a", "_x", "~z", "-m", "Z9", "0", ".", "@h", "+p", "=q"];
    pair.same("lease", &["n6", "60000"]);
    for (i, user) in mixed.iter().enumerate() {
        pair.same("join", &["r5", user, &format!("s{i}")]);
        pair.same("join", &["r5", &format!("{user}n"), "n6/s"]);
        pair.same("join", &["r5", &format!("{user}m"), "n6/s"]);
    }
    pair.same("lease", &["n6", "0"]);
    for args in [
        &["r5", "WITHSOCKETS"][..],
        &["r5", "LIMIT", "3", "AFTER", "B"],
        &["r5", "AFTER", "_x", "WITHDATA"],
        &["r5", "LIMIT", "0"],
    ] {
        pair.same("list", args);
    }
    pair.same("count", &["r5"]);
    pair.same_events(false, "a room mostly down");
    // The lease ends: the node's presences leave lists and counts at once; the sweep announces.
    pair.same("lease", &["n1", "0"]);
    pair.same("list", &["r1", "WITHSOCKETS"]);
    pair.same("count", &["r1"]);
    pair.same("beat", &["r2", "u3", "n1/s4"]);
    pair.same_events(false, "the lease's end");
    pair.same("sweep", &[]);
    pair.same_events(true, "the sweep");
    pair.same("list", &["r1", "WITHSOCKETS", "WITHDATA"]);
    pair.same("count", &["r2"]);

    // A few of the exact texts, for the record.
    let mut lib = pair.library;
    assert_eq!(
        lib.run("join", &["r", "u", "n9/s"]).error(),
        "NOLEASE node n9 holds no live lease"
    );
    assert_eq!(
        lib.run("join", &["r", "u", "s", "DATA", &big]).error(),
        "ERR data too large: 2002 bytes, presence.max-data is 1024"
    );
    assert_eq!(
        lib.run("update", &["r", "u", "s", "{"]).error(),
        "ERR data must be one JSON value"
    );
    assert_eq!(
        lib.run("beat", &["r", "u"]).error(),
        "ERR wrong number of arguments for 'presence.beat' command"
    );
}

/// The phase of the random run: a presence beaten (or a lease written) in one phase is live in
/// the next (2 s later, staleness 3 s) and not live in the one after (4 s later), so that no
/// comparison happens within a second of a presence's or a lease's end.
const PHASE: Duration = Duration::from_secs(2);
const LEASE_MS: &str = "3000";

/// The seed of the random run, unless `SCRIPT_ENGINE_SEED` names another.
const DEFAULT_SEED: u64 = 0x5eed_2026;

#[test]
fn a_random_run_matches_the_module_step_by_step() {
    random_run(Pair::start());
}

#[test]
fn a_random_run_matches_the_module_on_a_cluster() {
    random_run(Pair::start_cluster(&["r1", "r2"]));
}

/// Drives both engines of `pair` with the same seeded random calls, in phases.
fn random_run(mut pair: Pair) {
    let chosen: Option<u64> = std::env::var("SCRIPT_ENGINE_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let seed = chosen.unwrap_or(DEFAULT_SEED);
    let mut rng = Rng::new(seed);
    let rooms = ["r1", "r2"];
    let users = ["u1", "u2", "u3", "u4", "u5"];
    let sockets = ["s1", "s2", "n1/s1", "n2/s2", "n1/s3"];
    let data = [
        None,
        Some(r#"{"a":1}"#),
        Some(r#"{"a":2}"#),
        Some("\"away\""),
    ];
    let pick = |rng: &mut Rng, from: &[&'static str]| from[rng.below(from.len() as u64) as usize];
    let start = Instant::now();
    for phase in 0..10u32 {
        let due = start + PHASE * phase;
        thread::sleep(due.saturating_duration_since(Instant::now()));
        for _ in 0..12 {
            let (room, user) = (pick(&mut rng, &rooms), pick(&mut rng, &users));
            // Mostly the socket that holds the presence, so that beats, leaves and updates
            // find it; else any.
            let key = format!("room:presence:{}:{user}", pair.library.room_part(room));
            let holder = pair.module.text(&["GET", &key]);
            let any = pick(&mut rng, &sockets);
            let socket = match holder {
                Some(held) if rng.below(4) != 0 => held,
                _ => any.to_string(),
            };
            let socket = socket.as_str();
            let step = rng.below(10);
            let datum = data[rng.below(data.len() as u64) as usize];
            let node = format!("{}{}", pair.lease_tag, pick(&mut rng, &["n1", "n2"]));
            let node = node.as_str();
            match step {
                0..=2 => match datum {
                    Some(json) => pair.same("join", &[room, user, any, "DATA", json]),
                    None => pair.same("join", &[room, user, any]),
                },
                3..=5 => pair.same("beat", &[room, user, socket]),
                6 => pair.same("leave", &[room, user, socket]),
                7 => pair.same("update", &[room, user, socket, datum.unwrap_or("null")]),
                8 => pair.same("lease", &[node, LEASE_MS]),
                _ => pair.same(
                    "lease",
                    &[node, if rng.below(4) == 0 { "0" } else { LEASE_MS }],
                ),
            };
        }
        pair.same_events(false, &format!("phase {phase}"));
        pair.same_keys(&format!("phase {phase}"));
        for room in rooms {
            pair.same("count", &[room]);
            pair.same("list", &[room, "WITHSOCKETS", "WITHDATA"]);
            let after = pick(&mut rng, &users);
            pair.same("list", &[room, "AFTER", after, "LIMIT", "2"]);
        }
        if rng.below(2) == 0 {
            pair.same("sweep", &[]);
            pair.same_events(true, &format!("the sweep of phase {phase}"));
            pair.same_keys(&format!("the sweep of phase {phase}"));
        }
    }
    pair.same("sweep", &[]);
    pair.same_events(true, "the last sweep");
    pair.same_keys("the last sweep");
    if chosen.is_some() {
        return;
    }
    // The default seed's run goes through every kind of change (SCRIPT_ENGINE_SEED runs others,
    // which may not).
    // An event's name is its channel's last part, or on a room's channel its "event" field.
    for kind in [
        [":join ", r#""event":"join""#],
        [r#""data":{"a":1}"#; 2],
        [":update ", r#""event":"update""#],
        [r#""reason":"leave""#; 2],
        [r#""reason":"replaced""#; 2],
        [r#""reason":"stale""#; 2],
        [r#""reason":"node-down""#; 2],
        [":node-down "; 2],
    ] {
        let n = pair
            .seen
            .iter()
            .filter(|e| kind.iter().any(|k| e.contains(k)))
            .count();
        assert!(n > 0, "no event {kind:?} in {:#?}", pair.seen);
    }
}

#[test]
fn build_sh_writes_the_eval_form_the_tests_use() {
    let out = std::env::temp_dir().join(format!("presence-eval-{}.lua", std::process::id()));
    let status = std::process::Command::new("sh")
        .arg("integrations/socketio/lua/build.sh")
        .arg(&out)
        .status()
        .expect("run build.sh");
    assert!(status.success());
    let built = std::fs::read_to_string(&out).expect("the EVAL form");
    std::fs::remove_file(&out).ok();
    assert_eq!(built, eval_source());
}

#[test]
fn evalsha_where_function_is_refused_and_recovery_after_flushes() {
    let server = plain_server();
    let mut admin = server.conn();
    assert_eq!(
        admin.call(&[
            "ACL",
            "SETUSER",
            "app",
            "on",
            "nopass",
            "+@all",
            "-function",
            "~*",
            "&*"
        ]),
        Reply::Status("OK".into())
    );
    let mut conn = server.conn();
    assert_eq!(
        conn.call(&["AUTH", "app", "anything"]),
        Reply::Status("OK".into())
    );
    let mut lib = Library::load(conn);
    assert!(matches!(lib.mode, Mode::Eval(_)), "FUNCTION is refused");
    let mut events = Events::new(&server);
    assert_eq!(lib.run("join", &["r1", "u1", "s1"]), Reply::Int(1));
    assert_eq!(lib.run("join", &["r1", "u2", "s2"]), Reply::Int(2));
    assert_eq!(
        events.take(),
        [
            r#"__presence@0__:join {"room":"r1","user":"u1","socket":"s1","count":1}"#,
            r#"__presence@0__:join {"room":"r1","user":"u2","socket":"s2","count":2}"#,
        ]
    );
    assert_eq!(admin.call(&["SCRIPT", "FLUSH"]), Reply::Status("OK".into()));
    assert_eq!(lib.run("count", &["r1"]), Reply::Int(2));
    assert_eq!(lib.run("list", &["r1"]).strings(), ["u1", "u2"]);
    assert_eq!(
        lib.run("bogus", &[]).error(),
        "ERR unknown presence operation: bogus"
    );

    // The function form recovers from FUNCTION FLUSH the same way.
    let mut lib = Library::load(server.conn());
    assert!(matches!(lib.mode, Mode::Function));
    assert_eq!(lib.run("beat", &["r1", "u1", "s1"]), Reply::Int(1));
    assert_eq!(
        admin.call(&["FUNCTION", "FLUSH"]),
        Reply::Status("OK".into())
    );
    assert_eq!(lib.run("leave", &["r1", "u1", "s1"]), Reply::Int(1));
    assert_eq!(
        events.take(),
        [
            r#"__presence@0__:leave {"room":"r1","user":"u1","socket":"s1","count":1,"reason":"leave"}"#
        ]
    );
}

#[test]
fn reconcile_indexes_raw_writes_and_forgets_raw_deletes() {
    let server = plain_server();
    let mut lib = Library::load(server.conn());
    let mut events = Events::new(&server);
    let mut raw = server.conn();
    lib.run("join", &["r1", "u0", "s0"]);
    for user in 1..=30 {
        let key = format!("room:presence:r1:u{user:02}");
        raw.call(&["SET", &key, &format!("s{user}"), "EX", TTL]);
    }
    raw.call(&["SET", "room:presence:r1:nottl", "s"]);
    raw.call(&["SET", "room:presence:r2:other", "s", "EX", TTL]);
    events.take();
    assert_eq!(lib.run("count", &["r1"]), Reply::Int(1), "raw writes wait");
    assert_eq!(lib.reconcile("r1", "7"), 31);
    assert_eq!(lib.run("count", &["r1"]), Reply::Int(31));
    assert_eq!(lib.run("count", &["r2"]), Reply::Int(0), "one room only");
    let seen = events.take();
    assert_eq!(seen.len(), 31, "{seen:?}");
    // A key without TTL is never live: removed and announced (its count is the room's at the
    // moment the scan met it).
    assert!(
        seen.iter().any(|e| e.starts_with(
            r#"__presence@0__:force-leave {"room":"r1","user":"nottl","socket":"s","count":"#
        ) && e.ends_with(r#","reason":"no-ttl"}"#)),
        "{seen:?}"
    );
    assert_eq!(raw.int(&["EXISTS", "room:presence:r1:nottl"]), 0);
    // Nothing changed since: a second pass changes nothing.
    assert_eq!(lib.reconcile("r1", "1000"), 0);
    raw.call(&["DEL", "room:presence:r1:u07"]);
    assert_eq!(lib.reconcile("r1", "5"), 1);
    assert_eq!(
        events.take(),
        [
            r#"__presence@0__:leave {"room":"r1","user":"u07","socket":"s7","count":30,"reason":"deleted"}"#
        ]
    );
    assert_eq!(lib.run("count", &["r1"]), Reply::Int(30));
}

#[test]
fn one_sweeper_per_shard_holds_the_sweep_lease() {
    let server = plain_server();
    let mut lib = Library::load(server.conn());
    let keys = lib.keys("sweep", &[]);
    let mut sweep = |owner: &str| {
        lib.call_with_keys("sweep", &keys, &[owner, "60000", "10"])
            .int()
    };
    assert_eq!(sweep("a"), 0);
    assert_eq!(sweep("b"), -1, "another sweeper holds the lease");
    assert_eq!(sweep("a"), 0, "its holder renews it");
    let mut c = server.conn();
    c.call(&["DEL", "presence:sweep-lease"]);
    assert_eq!(sweep("b"), 0, "taken over once it ended");
}

#[test]
fn the_cluster_form_uses_hash_tags_and_the_rooms_sharded_channels() {
    let server = plain_server();
    let mut lib = Library::load(server.conn());
    lib.cluster = true;
    lib.tag = "shard-a".into();
    let mut sub = Subscriber::rooms(&server, 0, &["r1"]);
    let mut c = server.conn();
    assert_eq!(lib.run("lease", &["{shard-a}n1", "60000"]), Reply::Int(0));
    assert_eq!(
        c.text(&["GET", "presence:node:{shard-a}n1"]).as_deref(),
        Some("n1")
    );
    assert_eq!(
        lib.run("join", &["r1", "u1", "n1/s1", "DATA", r#"{"k":true}"#]),
        Reply::Int(1)
    );
    assert_eq!(
        c.text(&["GET", "room:presence:{r1}:u1"]).as_deref(),
        Some("n1/s1")
    );
    assert_eq!(
        c.text(&["GET", "room:presence-data:{r1}:u1"]).as_deref(),
        Some(r#"{"k":true}"#)
    );
    let join = sub.expect();
    assert_eq!(join.channel, "__presence@0__:{r1}");
    assert_eq!(
        join.payload,
        r#"{"room":"r1","user":"u1","socket":"n1/s1","count":1,"data":{"k":true},"event":"join"}"#
    );
    assert_eq!(lib.run("leave", &["r1", "u1", "n1/s1"]), Reply::Int(1));
    assert_eq!(
        sub.expect().payload,
        r#"{"room":"r1","user":"u1","socket":"n1/s1","count":0,"reason":"leave","event":"leave"}"#
    );
    // A declared key that is not the call's own is refused: a cluster would misroute it.
    let wrong = vec!["room:presence-index:r1".to_string(); 3];
    assert!(lib
        .call_with_keys("count", &wrong, &["r1"])
        .error()
        .starts_with("ERR the keys of this call must be: room:presence-index:{r1} "));
}

#[test]
fn a_cluster_runs_each_room_with_the_shard_keys_of_its_master() {
    let cluster = Cluster::start(
        2,
        Options {
            without_module: true,
            ..Options::default()
        },
    );
    let room = cluster.room_on(0, "room-");
    let mut lib = Library::load(cluster.masters[0].conn());
    lib.cluster = true;
    lib.tag = cluster.room_on(0, "shard-");
    let lease_name = format!("{{{}}}web-1", lib.tag);
    assert_eq!(lib.run("lease", &[&lease_name, "60000"]), Reply::Int(0));
    assert_eq!(lib.run("join", &[&room, "u1", "web-1/s1"]), Reply::Int(1));
    assert_eq!(lib.run("join", &[&room, "u2", "s2"]), Reply::Int(2));
    assert_eq!(
        lib.run("list", &[&room, "WITHSOCKETS"]).strings(),
        ["u1", "web-1/s1", "u2", "s2"]
    );
    assert_eq!(lib.run("lease", &[&lease_name, "0"]), Reply::Int(1));
    assert_eq!(
        lib.run("count", &[&room]),
        Reply::Int(1),
        "the node is down"
    );
    assert_eq!(lib.run("sweep", &[]), Reply::Int(1));
    assert_eq!(lib.run("list", &[&room]).strings(), ["u2"]);
    // A room whose slot moved away since the shard's schedule named it is forgotten there.
    let gone = cluster.room_on(1, "room-");
    let schedule = format!("presence:rooms:{{{}}}", lib.tag);
    lib.conn.int(&["ZADD", &schedule, "0", &gone]);
    assert_eq!(lib.run("sweep", &[]), Reply::Int(0));
    assert_eq!(
        lib.conn.call(&["ZSCORE", &schedule, &gone]),
        Reply::Bulk(None)
    );
    // The shard's keys must live on the room's master: Redis refuses a call that reaches
    // another node's keys, before it wrote anything.
    lib.tag = cluster.room_on(1, "shard-");
    let refused = lib.run("join", &[&room, "u3", "s3"]).error();
    assert!(refused.contains("non local key"), "{refused}");
    let key = format!("room:presence:{{{room}}}:u3");
    assert_eq!(lib.conn.int(&["EXISTS", &key]), 0);
}

#[test]
fn a_replica_lists_and_counts_with_fcall_ro_and_publishes_nothing() {
    let master = plain_server();
    let replica = plain_server();
    let mut r = replica.conn();
    let port = master.port.to_string();
    assert_eq!(
        r.text(&["REPLICAOF", "127.0.0.1", &port]).as_deref(),
        Some("OK")
    );
    test_support::wait_for(Duration::from_secs(30), "the replica's link", || {
        (r.info_field("replication", "master_link_status") == "up").then_some(())
    });
    let mut replica_events = Events::new(&replica);
    let mut lib = Library::load(master.conn());
    lib.run("join", &["r1", "u1", "s1", "DATA", "{}"]);
    lib.run("join", &["r1", "u2", "s2"]);
    let keys = lib.keys("count", &["r1"]);
    let ro = |op: &str, args: &[&str]| -> Vec<String> {
        let mut argv = vec![
            "FCALL_RO".to_string(),
            format!("presence_v1_{op}"),
            "3".into(),
        ];
        argv.extend(keys.iter().cloned());
        argv.extend([TTL, STALE_AFTER, MAX_DATA, "standalone", ""].map(String::from));
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    };
    let listed = test_support::wait_for(Duration::from_secs(30), "the replica's copy", || {
        let reply = r.call(&ro("list", &["r1", "WITHDATA"]));
        // The library and the keys come through replication, in their time.
        matches!(&reply, Reply::Array(Some(items)) if !items.is_empty()).then_some(reply)
    });
    assert_eq!(
        listed,
        Reply::Array(Some(vec![
            Reply::Bulk(Some(b"u1".to_vec())),
            Reply::Bulk(Some(b"{}".to_vec())),
            Reply::Bulk(Some(b"u2".to_vec())),
            Reply::Bulk(None),
        ]))
    );
    assert_eq!(r.call(&ro("count", &["r1"])), Reply::Int(2));
    assert_eq!(
        replica_events.take(),
        Vec::<String>::new(),
        "events come from the master"
    );
}

#[test]
fn without_staleness_an_expired_key_is_found_by_the_sweep() {
    let server = plain_server();
    let mut lib = Library::load(server.conn());
    lib.ttl = "1".into();
    lib.stale_after = "0".into();
    let mut events = Events::new(&server);
    let mut c = server.conn();
    assert_eq!(
        lib.run("join", &["r1", "u1", "s1", "DATA", "1"]),
        Reply::Int(1)
    );
    assert_eq!(lib.run("join", &["r1", "u2", "s2"]), Reply::Int(2));
    events.take();
    test_support::wait_for(Duration::from_secs(30), "the keys to expire", || {
        (c.int(&["EXISTS", "room:presence:r1:u1", "room:presence:r1:u2"]) == 0).then_some(())
    });
    assert_eq!(lib.run("count", &["r1"]), Reply::Int(0), "hidden at once");
    assert_eq!(lib.run("beat", &["r1", "u1", "s1"]), Reply::Int(0));
    assert_eq!(lib.run("sweep", &[]), Reply::Int(1));
    assert_eq!(
        events.take(),
        [
            r#"__presence@0__:force-leave {"room":"r1","user":"u1","socket":"s1","count":0,"reason":"expired"}"#,
            r#"__presence@0__:force-leave {"room":"r1","user":"u2","socket":"s2","count":0,"reason":"expired"}"#,
        ]
    );
    assert_eq!(
        c.int(&["EXISTS", "room:presence-index:r1", "presence:rooms"]),
        0,
        "an empty room leaves no index behind"
    );
}

#[test]
fn pages_skip_presences_not_live_yet_unswept() {
    let server = plain_server();
    let mut lib = Library::load(server.conn());
    lib.stale_after = "1".into();
    let user = |i: usize| format!("u{i:03}");
    for i in (0..300).filter(|i| i % 3 != 0) {
        lib.run("join", &["r1", &user(i), "s"]);
    }
    let mut c = server.conn();
    test_support::wait_for(
        Duration::from_secs(30),
        "the first joins to go stale",
        || (lib.run("count", &["r1"]) == Reply::Int(0)).then_some(()),
    );
    let live: Vec<String> = (0..300).filter(|i| i % 3 == 0).map(user).collect();
    for name in &live {
        lib.run("join", &["r1", name, "s"]);
    }
    assert_eq!(c.int(&["ZCARD", "room:presence-index:r1"]), 300);
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut args = vec!["r1", "LIMIT", "7"];
        if let Some(after) = &after {
            args.extend(["AFTER", after]);
        }
        let page = lib.run("list", &args).strings();
        paged.extend(page.iter().cloned());
        match page.last() {
            Some(last) if page.len() == 7 => after = Some(last.clone()),
            _ => break,
        }
    }
    assert_eq!(paged, live);
    assert_eq!(lib.run("list", &["r1"]).strings(), live);
    assert_eq!(lib.run("count", &["r1"]), Reply::Int(100));
}

/// What an application user of the script engine needs (README's ACL section): the calls, the
/// commands the library runs, its keys and its channels.
const APP_ACL: &[&str] = &[
    "+fcall",
    "+fcall_ro",
    "+evalsha",
    "+script|load",
    "+function|load",
    "+psubscribe",
    "+ssubscribe",
    "+time",
    "+type",
    "+get",
    "+set",
    "+del",
    "+exists",
    "+pttl",
    "+pexpire",
    "+pexpireat",
    "+pexpiretime",
    "+zadd",
    "+zrem",
    "+zrange",
    "+zrangebylex",
    "+zrangebyscore",
    "+zscore",
    "+zcount",
    "+zcard",
    "+sadd",
    "+srem",
    "+smembers",
    "+hset",
    "+hsetnx",
    "+hincrby",
    "+hdel",
    "+hgetall",
    "+hvals",
    "+hscan",
    "+scan",
    "+publish",
    "+spublish",
    "~room:presence*",
    "~presence:*",
    "&__presence@*",
];

#[test]
fn an_app_user_needs_only_the_commands_keys_and_channels_the_readme_lists() {
    let server = plain_server();
    let mut admin = server.conn();
    let mut acl = vec!["ACL", "SETUSER", "app", "on", ">secret"];
    acl.extend(APP_ACL);
    assert_eq!(admin.call(&acl), Reply::Status("OK".into()));
    let mut conn = server.conn();
    assert_eq!(
        conn.call(&["AUTH", "app", "secret"]),
        Reply::Status("OK".into())
    );
    let mut lib = Library::load(conn);
    assert!(matches!(lib.mode, Mode::Function));
    assert_eq!(lib.run("lease", &["n1", "60000"]), Reply::Int(0));
    assert_eq!(
        lib.run("join", &["r1", "u1", "n1/s1", "DATA", "1"]),
        Reply::Int(1)
    );
    assert_eq!(lib.run("beat", &["r1", "u1", "n1/s1"]), Reply::Int(1));
    assert_eq!(
        lib.run("update", &["r1", "u1", "n1/s1", "2"]),
        Reply::Int(1)
    );
    assert_eq!(lib.run("list", &["r1", "WITHDATA"]).strings(), ["u1", "2"]);
    assert_eq!(lib.reconcile("r1", "10"), 0);
    assert_eq!(lib.run("lease", &["n1", "0"]), Reply::Int(1));
    assert_eq!(lib.sweep_all("app-1", "5000"), 1);
    assert_eq!(lib.run("count", &["r1"]), Reply::Int(0));
    assert!(lib.conn.err(&["FLUSHALL"]).starts_with("NOPERM"));
}

#[test]
fn a_node_down_in_many_rooms_is_swept_in_bounded_calls() {
    let server = plain_server();
    let mut lib = Library::load(server.conn());
    let mut events = Events::new(&server);
    assert_eq!(lib.run("lease", &["n1", "60000"]), Reply::Int(0));
    let rooms: Vec<String> = (0..300).map(|i| format!("room{i}")).collect();
    for room in &rooms {
        lib.run("join", &[room, "u1", "n1/s1"]);
        lib.run("join", &[room, "u2", "s2"]);
    }
    events.take();
    assert_eq!(lib.run("lease", &["n1", "0"]), Reply::Int(1));
    let keys = lib.keys("sweep", &[]);
    let mut calls = Vec::new();
    loop {
        let removed = lib
            .call_with_keys("sweep", &keys, &["app-1", "5000", "40"])
            .int();
        calls.push(removed);
        if removed < 40 {
            break;
        }
    }
    assert_eq!(calls.iter().sum::<i64>(), 300, "{calls:?}");
    assert!(calls.iter().all(|&n| n <= 40), "{calls:?}");
    let seen = events.take();
    assert_eq!(
        seen[0],
        r#"__presence@0__:node-down {"node":"n1","presences":300}"#
    );
    assert_eq!(seen.len(), 301);
    assert!(seen[1..]
        .iter()
        .all(|e| e.contains(r#""count":1,"reason":"node-down""#)));
    let mut c = server.conn();
    assert_eq!(
        c.int(&["EXISTS", "presence:node-rooms:n1", "presence:nodes"]),
        0,
        "the node is forgotten once its presences are gone"
    );
    assert_eq!(lib.run("count", &["room299"]), Reply::Int(1));
}

#[test]
fn the_sweep_meets_a_raw_overwrite_as_a_replace() {
    let server = plain_server();
    let mut lib = Library::load(server.conn());
    lib.ttl = "1".into();
    lib.stale_after = "0".into();
    let mut events = Events::new(&server);
    let mut raw = server.conn();
    lib.run("join", &["r1", "u1", "s1"]);
    // Whether s1's key expired before this SET or not, the key holds s2 for an hour.
    raw.call(&["SET", "room:presence:r1:u1", "s2", "EX", TTL]);
    events.take();
    test_support::wait_for(
        Duration::from_secs(30),
        "the index to find s1 expired",
        || (lib.run("count", &["r1"]) == Reply::Int(0)).then_some(()),
    );
    assert_eq!(lib.run("sweep", &[]), Reply::Int(1));
    assert_eq!(
        events.take(),
        [
            r#"__presence@0__:force-leave {"room":"r1","user":"u1","socket":"s1","count":1,"reason":"replaced"}"#,
            r#"__presence@0__:join {"room":"r1","user":"u1","socket":"s2","count":1}"#,
        ]
    );
    assert_eq!(
        lib.run("list", &["r1", "WITHSOCKETS"]).strings(),
        ["u1", "s2"]
    );
}

#[test]
fn reconcile_all_indexes_the_raw_writes_of_every_room() {
    let server = plain_server();
    let mut lib = Library::load(server.conn());
    let mut events = Events::new(&server);
    let mut raw = server.conn();
    for (room, users) in [("r1", 3), ("r2", 5), ("r3", 1)] {
        for user in 0..users {
            let key = format!("room:presence:{room}:u{user}");
            raw.call(&["SET", &key, "s", "EX", TTL]);
        }
    }
    raw.call(&["SET", "room:presence:bad", "s", "EX", TTL]);
    raw.call(&["SET", "room:presence:{r4}:u1", "s", "EX", TTL]);
    assert_eq!(lib.reconcile_all("2"), 9);
    for (room, count) in [("r1", 3), ("r2", 5), ("r3", 1)] {
        assert_eq!(lib.run("count", &[room]), Reply::Int(count), "{room}");
    }
    // The keys of another form, or none, are not presences here.
    assert_eq!(raw.int(&["ZCARD", "presence:rooms"]), 3);
    assert_eq!(events.take().len(), 9, "a join each");
    assert_eq!(lib.reconcile_all("100"), 0, "nothing left to change");
}
