//! The script engine (`integrations/socketio/lua/presence.lua`, SPEC §13) as its tests and the
//! bench drive it: [`Library`] turns a module argument vector (`PRESENCE.<op> args…`) into the
//! library's call (its keys, its settings, its entry point), and loads the library again when
//! the server lost it.

use crate::{Conn, Reply};

/// The library, as `FUNCTION LOAD` takes it.
pub const LIBRARY: &str = include_str!("../../integrations/socketio/lua/presence.lua");

/// The `ttl` setting a [`Library`] starts with, in seconds (the module's `presence.ttl` in the
/// tests).
pub const TTL: &str = "3600";

/// The `staleAfter` setting a [`Library`] starts with, in seconds.
pub const STALE_AFTER: &str = "3";

/// The `maxData` setting of every call, in bytes.
pub const MAX_DATA: &str = "1024";

/// How many presences one call of the library's sweep removes at most, unless
/// [`Library::sweep_limit`] says otherwise.
pub const SWEEP_LIMIT: i64 = 100;

/// The EVAL form of the library: the same file with its first line replaced (`build.sh`).
pub fn eval_source() -> String {
    let (_, body) = LIBRARY.split_once('\n').expect("a first line");
    format!("#!lua flags=allow-cross-slot-keys\n{body}")
}

/// How the library is called.
pub enum Mode {
    /// `FCALL presence_v1_<op>`.
    Function,
    /// `EVALSHA <sha> … <op> …`.
    Eval(String),
}

/// A client of the script engine on one connection.
pub struct Library {
    /// The connection the calls go through.
    pub conn: Conn,
    /// `FCALL` or `EVALSHA`, as the server allowed at [`Library::load`].
    pub mode: Mode,
    /// Whether calls use the cluster form of the keys and the `cluster` format.
    pub cluster: bool,
    /// The `tag` setting: the hash tag of the shard's own keys in cluster form.
    pub tag: String,
    /// The `ttl` setting, in seconds.
    pub ttl: String,
    /// The `staleAfter` setting, in seconds.
    pub stale_after: String,
    /// The `limit` of each call of [`Library::sweep_all`].
    pub sweep_limit: i64,
}

impl Library {
    /// Loads the library with `FUNCTION LOAD REPLACE`, or, where `FUNCTION` is refused, its
    /// EVAL form with `SCRIPT LOAD`.
    pub fn load(mut conn: Conn) -> Library {
        let mode = match conn.call(&["FUNCTION", "LOAD", "REPLACE", LIBRARY]) {
            Reply::Bulk(Some(name)) => {
                assert_eq!(name, b"presence_v1");
                Mode::Function
            }
            Reply::Error(_) => Mode::Eval(script_load(&mut conn)),
            other => panic!("FUNCTION LOAD answered {other:?}"),
        };
        Library {
            conn,
            mode,
            cluster: false,
            tag: String::new(),
            ttl: TTL.into(),
            stale_after: STALE_AFTER.into(),
            sweep_limit: SWEEP_LIMIT,
        }
    }

    /// The room part of the key names in this library's form (`{room}` in cluster form).
    pub fn room_part(&self, room: &str) -> String {
        if self.cluster {
            format!("{{{room}}}")
        } else {
            room.to_string()
        }
    }

    fn shard(&self, name: &str) -> String {
        if self.cluster {
            format!("presence:{name}:{{{}}}", self.tag)
        } else {
            format!("presence:{name}")
        }
    }

    /// The keys a call of `op` with the module's arguments `args` declares.
    pub fn keys(&self, op: &str, args: &[&str]) -> Vec<String> {
        let arg = |i: usize| args.get(i).copied().unwrap_or("");
        let index = format!("room:presence-index:{}", self.room_part(arg(0)));
        let room = vec![
            index.clone(),
            format!("{index}:order"),
            format!("{index}:nodes"),
        ];
        match op {
            "join" | "beat" | "leave" | "update" => {
                let part = self.room_part(arg(0));
                let mut keys = vec![
                    format!("room:presence:{part}:{}", arg(1)),
                    format!("room:presence-data:{part}:{}", arg(1)),
                ];
                keys.extend(room);
                keys
            }
            "lease" => {
                let (tag, node) = match arg(0).strip_prefix('{').and_then(|t| t.split_once('}')) {
                    Some((tag, node)) => (tag, node),
                    None => (arg(0), arg(0)),
                };
                if self.cluster {
                    vec![
                        format!("presence:node:{{{tag}}}{node}"),
                        format!("presence:nodes:{{{tag}}}"),
                    ]
                } else {
                    vec![format!("presence:node:{}", arg(0)), self.shard("nodes")]
                }
            }
            "sweep" => vec![
                self.shard("rooms"),
                self.shard("nodes"),
                self.shard("sweep-lease"),
            ],
            "reconcile_all" => vec![self.shard("rooms")],
            _ => room,
        }
    }

    /// The whole command of a call of entry point `op` with `keys` and `args` after the
    /// settings, as sent (for a caller that pipelines calls on [`Library::conn`]).
    pub fn command(&self, op: &str, keys: &[String], args: &[&str]) -> Vec<String> {
        let format = if self.cluster {
            "cluster"
        } else {
            "standalone"
        };
        let mut argv: Vec<String> = match &self.mode {
            Mode::Function => vec!["FCALL".into(), format!("presence_v1_{op}")],
            Mode::Eval(sha) => vec!["EVALSHA".into(), sha.clone()],
        };
        argv.push(keys.len().to_string());
        argv.extend(keys.iter().cloned());
        if let Mode::Eval(_) = self.mode {
            argv.push(op.to_string());
        }
        for setting in [&self.ttl, &self.stale_after, MAX_DATA, format, &self.tag] {
            argv.push(setting.to_string());
        }
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    }

    /// Calls entry point `op` with `keys` and `args` after the settings; loads the library
    /// again when the server lost it (`FUNCTION FLUSH`, `SCRIPT FLUSH`, a restart).
    pub fn call_with_keys(&mut self, op: &str, keys: &[String], args: &[&str]) -> Reply {
        let reply = self.conn.call(&self.command(op, keys, args));
        let lost = match &reply {
            Reply::Error(e) => e.starts_with("NOSCRIPT") || e.contains("Function not found"),
            _ => false,
        };
        if !lost {
            return reply;
        }
        match &mut self.mode {
            Mode::Function => {
                let loaded = self.conn.call(&["FUNCTION", "LOAD", "REPLACE", LIBRARY]);
                assert_eq!(loaded, Reply::Bulk(Some(b"presence_v1".to_vec())));
            }
            Mode::Eval(sha) => *sha = script_load(&mut self.conn),
        }
        self.conn.call(&self.command(op, keys, args))
    }

    /// Entry point `op` with the module's arguments; a sweep runs until nothing is left, as
    /// `PRESENCE.SWEEP` does, and answers the number removed.
    pub fn run(&mut self, op: &str, args: &[&str]) -> Reply {
        if op == "sweep" {
            return Reply::Int(self.sweep_all("operator", "0"));
        }
        let keys = self.keys(op, args);
        self.call_with_keys(op, &keys, args)
    }

    /// Sweeps as `owner` holding the sweep lease for `lease_ms`, until a call removes less than
    /// its limit ([`Library::sweep_limit`]).
    pub fn sweep_all(&mut self, owner: &str, lease_ms: &str) -> i64 {
        let keys = self.keys("sweep", &[]);
        let limit = self.sweep_limit.to_string();
        let mut removed = 0;
        loop {
            let n = self
                .call_with_keys("sweep", &keys, &[owner, lease_ms, &limit])
                .int();
            removed += n;
            if n < self.sweep_limit {
                return removed;
            }
        }
    }

    /// Reconciles `room` to the end, in steps of `count`; the presences changed.
    pub fn reconcile(&mut self, room: &str, count: &str) -> i64 {
        let keys = self.keys("reconcile", &[room]);
        let mut cursor = "0".to_string();
        let mut changed = 0;
        loop {
            let reply = self.call_with_keys("reconcile", &keys, &[room, &cursor, count]);
            let Reply::Array(Some(parts)) = reply else {
                panic!("reconcile answered {reply:?}");
            };
            cursor = parts[0].text().expect("a cursor");
            changed += parts[1].int();
            if cursor == "0" {
                return changed;
            }
        }
    }

    /// Reconciles every presence key of the server, in steps of `count`; the presences changed.
    pub fn reconcile_all(&mut self, count: &str) -> i64 {
        let keys = self.keys("reconcile_all", &[]);
        let mut cursor = "0".to_string();
        let mut changed = 0;
        loop {
            let reply = self.call_with_keys("reconcile_all", &keys, &[&cursor, count]);
            let Reply::Array(Some(parts)) = reply else {
                panic!("reconcile_all answered {reply:?}");
            };
            cursor = parts[0].text().expect("a cursor");
            changed += parts[1].int();
            if cursor == "0" {
                return changed;
            }
        }
    }
}

/// Loads the EVAL form with `SCRIPT LOAD`; its sha.
fn script_load(conn: &mut Conn) -> String {
    conn.text(&["SCRIPT", "LOAD", &eval_source()])
        .expect("a script sha")
}
