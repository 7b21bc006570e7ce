//! Test harness: a real `redis-server` (or `valkey-server`) with the module loaded, on a free
//! port, in a temporary directory; and a small RESP client that shows replies and errors exactly
//! as a client sees them.
//!
//! `REDIS_SERVER` names the server binary (default `redis-server`), `PRESENCE_MODULE` the module
//! (default `target/release/libredis_presence.so`).

pub mod cluster;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to start or stop.
const STARTUP: Duration = Duration::from_secs(20);

/// A reply as sent by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as an integer; panics with the reply otherwise.
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(n) => *n,
            other => panic!("expected an integer, got {other:?}"),
        }
    }

    /// The error message; panics with the reply otherwise.
    pub fn error(&self) -> String {
        match self {
            Reply::Error(e) => e.clone(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// A bulk string as text (`None` for a null bulk).
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(None) => None,
            other => panic!("expected a string, got {other:?}"),
        }
    }

    /// An array of strings.
    pub fn strings(&self) -> Vec<String> {
        match self {
            Reply::Array(Some(items)) => {
                items.iter().map(|i| i.text().unwrap_or_default()).collect()
            }
            other => panic!("expected an array, got {other:?}"),
        }
    }
}

/// A command in RESP.
fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A RESP2 connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects to 127.0.0.1:`port`.
    pub fn connect(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Conn {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Sends a command without reading its reply.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.writer
            .write_all(&encode(args))
            .expect("write to server");
    }

    /// Sends a command and reads its reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        self.send(args);
        self.read().expect("read reply")
    }

    /// `call` that reports a broken connection (a killed server) instead of panicking.
    pub fn try_call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> std::io::Result<Reply> {
        self.writer.write_all(&encode(args))?;
        self.read()
    }

    /// A handle on the connection's socket: shutting it down ends a blocked [`Conn::read`]
    /// (with an error) from another thread.
    pub fn closer(&self) -> TcpStream {
        self.writer.try_clone().expect("clone the socket")
    }

    /// Reads one reply.
    pub fn read(&mut self) -> std::io::Result<Reply> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if line.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let body = line.trim_end_matches("\r\n");
        let (kind, rest) = body.split_at(1);
        Ok(match kind {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(rest.parse().expect("integer reply")),
            "$" => {
                let len: i64 = rest.parse().expect("bulk length");
                if len < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut buf = vec![0; len as usize + 2];
                    self.reader.read_exact(&mut buf)?;
                    buf.truncate(len as usize);
                    Reply::Bulk(Some(buf))
                }
            }
            "*" => {
                let len: i64 = rest.parse().expect("array length");
                if len < 0 {
                    Reply::Array(None)
                } else {
                    let mut items = Vec::with_capacity(len as usize);
                    for _ in 0..len {
                        items.push(self.read()?);
                    }
                    Reply::Array(Some(items))
                }
            }
            other => panic!("unknown reply type {other:?} in {line:?}"),
        })
    }

    /// Reads one reply, or `None` when nothing comes within `timeout`.
    pub fn read_within(&mut self, timeout: Duration) -> Option<Reply> {
        self.writer.set_read_timeout(Some(timeout)).ok()?;
        let reply = self.read().ok();
        self.writer
            .set_read_timeout(Some(Duration::from_secs(60)))
            .ok();
        reply
    }

    /// `call` for a command that answers an integer.
    pub fn int<A: AsRef<[u8]>>(&mut self, args: &[A]) -> i64 {
        self.call(args).int()
    }

    /// `call` for a command that answers an error; returns its message.
    pub fn err<A: AsRef<[u8]>>(&mut self, args: &[A]) -> String {
        self.call(args).error()
    }

    /// `call` for a command that answers an array of strings.
    pub fn strings<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<String> {
        self.call(args).strings()
    }

    /// `call` for a command that answers a string.
    pub fn text<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Option<String> {
        self.call(args).text()
    }

    /// One field of `INFO <section>`.
    pub fn info_field(&mut self, section: &str, field: &str) -> String {
        let info = self.text(&["INFO", section]).unwrap_or_default();
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{info}"))
            .to_string()
    }
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A private temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "presence-test-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> TempDir {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The module's path.
pub fn module_path() -> PathBuf {
    match std::env::var_os("PRESENCE_MODULE") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace")
            .join("target/release/libredis_presence.so"),
    }
}

/// The server binary.
pub fn server_binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string())
}

/// True when the server under test is Valkey.
pub fn is_valkey() -> bool {
    server_binary().contains("valkey")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// How to start a server.
#[derive(Clone, Default)]
pub struct Options {
    /// Module arguments, as `name value` pairs (`presence.stale-after 3`).
    pub module_args: Vec<String>,
    /// Server configs, as `name value` pairs (`appendonly yes`).
    pub config: Vec<String>,
    /// Start without the module.
    pub without_module: bool,
}

impl Options {
    /// Sets a module argument; a later value of the same name replaces the earlier one.
    pub fn module(mut self, name: &str, value: &str) -> Options {
        match self.module_args.chunks(2).position(|pair| pair[0] == name) {
            Some(i) => self.module_args[2 * i + 1] = value.to_string(),
            None => {
                self.module_args.push(name.to_string());
                self.module_args.push(value.to_string());
            }
        }
        self
    }

    pub fn config(mut self, name: &str, value: &str) -> Options {
        self.config.push(name.to_string());
        self.config.push(value.to_string());
        self
    }

    /// Short staleness and sweeps, for tests that wait for them.
    pub fn fast(self, stale_after_s: u32, sweep_ms: u32) -> Options {
        self.module("presence.stale-after", &stale_after_s.to_string())
            .module("presence.sweep-interval", &sweep_ms.to_string())
    }
}

/// A running server, killed on drop (its log is printed when the test failed).
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    dir: std::sync::Arc<TempDir>,
    options: Options,
}

impl Server {
    /// Starts a server with the module and default configs.
    pub fn start() -> Server {
        Server::with(Options::default())
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts a server with `options`.
    pub fn with(options: Options) -> Server {
        Server::start_in(std::sync::Arc::new(TempDir::new()), free_port(), options)
    }

    /// The options the server was started with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Starts the server again after a [`Server::kill`], in its own directory (it loads what it
    /// saved there: RDB, AOF, a cluster node's `nodes.conf`) on its own port, with `options`.
    pub fn start_again(&mut self, options: Options) {
        assert!(self.child.is_none(), "the server still runs");
        let dir = self.dir.clone();
        let again = Server::start_in(dir, self.port, options);
        *self = again;
    }

    fn start_in(dir: std::sync::Arc<TempDir>, port: u16, options: Options) -> Server {
        let module = module_path();
        assert!(
            options.without_module || module.exists(),
            "module not built: {} (run cargo build --release)",
            module.display()
        );
        let mut command = Command::new(server_binary());
        command
            .arg("--port")
            .arg(port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg("server.log")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--enable-debug-command")
            .arg("yes")
            .arg("--enable-module-command")
            .arg("yes");
        for pair in options.config.chunks(2) {
            command.arg(format!("--{}", pair[0]));
            command.arg(&pair[1]);
        }
        if !options.without_module {
            command.arg("--loadmodule").arg(&module);
            command.args(&options.module_args);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server_binary()));
        let mut server = Server {
            child: Some(child),
            port,
            dir,
            options,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("server exited at start ({status}):\n{}", self.log());
                }
            }
            if let Ok(mut conn) = Conn::connect(self.port) {
                if let Some(Reply::Status(s)) = conn.read_ping() {
                    if s == "PONG" {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "server not ready in time:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// A new connection.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port).expect("connect to server")
    }

    /// The server's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the server's process.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().expect("a running server").to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Kills the server at once (no save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the server to shut down (saving when it is configured to) and waits for it.
    pub fn shutdown(&mut self, save: bool) {
        let mut conn = self.conn();
        conn.send(&["SHUTDOWN", if save { "SAVE" } else { "NOSAVE" }]);
        let _ = conn.read_within(Duration::from_secs(10));
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + STARTUP;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new server in the same directory with the same options (loads its RDB/AOF).
    pub fn restart(mut self) -> Server {
        if self.child.is_some() {
            self.shutdown(true);
        }
        let dir = self.dir.clone();
        let options = self.options.clone();
        drop(self);
        Server::start_in(dir, free_port(), options)
    }
}

impl Conn {
    fn read_ping(&mut self) -> Option<Reply> {
        self.send(&["PING"]);
        self.read_within(Duration::from_secs(2))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("---- server log (port {}) ----\n{}", self.port, self.log());
        }
        self.kill();
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A pub/sub subscriber on `__presence@<db>__:*`.
pub struct Subscriber {
    conn: Conn,
}

/// One received event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub channel: String,
    pub payload: String,
}

impl Subscriber {
    pub fn new(server: &Server, db: u32) -> Subscriber {
        let mut conn = server.conn();
        let pattern = format!("__presence@{db}__:*");
        let reply = conn.call(&["PSUBSCRIBE", pattern.as_str()]);
        assert!(matches!(reply, Reply::Array(Some(_))), "{reply:?}");
        Subscriber { conn }
    }

    /// Subscribes (`SSUBSCRIBE`, one room at a time since a cluster refuses channels of
    /// several slots at once) to the rooms' own channels `__presence@<db>__:{<room>}`, which
    /// must all live on `server`'s shard.
    pub fn rooms(server: &Server, db: u32, rooms: &[&str]) -> Subscriber {
        let mut conn = server.conn();
        for room in rooms {
            conn.send(&["SSUBSCRIBE", &format!("__presence@{db}__:{{{room}}}")]);
            let reply = conn
                .read_within(Duration::from_secs(10))
                .expect("SSUBSCRIBE");
            let confirmed = matches!(&reply, Reply::Array(Some(parts))
                if parts.first().and_then(Reply::text).as_deref() == Some("ssubscribe"));
            assert!(confirmed, "{reply:?}");
        }
        Subscriber { conn }
    }

    /// The next event within `timeout` (a `pmessage` or an `smessage`).
    pub fn next(&mut self, timeout: Duration) -> Option<Received> {
        let reply = self.conn.read_within(timeout)?;
        let parts = reply.strings();
        match parts[0].as_str() {
            "pmessage" => Some(Received {
                channel: parts[2].clone(),
                payload: parts[3].clone(),
            }),
            "smessage" => Some(Received {
                channel: parts[1].clone(),
                payload: parts[2].clone(),
            }),
            _ => panic!("not an event: {parts:?}"),
        }
    }

    /// Every event that arrives until `quiet` passes without one.
    pub fn drain(&mut self, quiet: Duration) -> Vec<Received> {
        let mut out = Vec::new();
        while let Some(event) = self.next(quiet) {
            out.push(event);
        }
        out
    }

    /// The next event, which must come within 10 s.
    pub fn expect(&mut self) -> Received {
        self.next(Duration::from_secs(10))
            .expect("an event within 10 s")
    }
}

/// A small deterministic random generator for randomised tests.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Runs `work` while a second client sends PINGs back to back to `port`; returns what `work`
/// returned, the worst round trip and the number of PINGs.
pub fn pinging<T>(port: u16, work: impl FnOnce() -> T) -> (T, Duration, u64) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pinger = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut p = Conn::connect(port).expect("connect");
            let mut worst = Duration::ZERO;
            let mut pings = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                p.call(&["PING"]);
                worst = worst.max(t.elapsed());
                pings += 1;
            }
            (worst, pings)
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let result = work();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (worst, pings) = pinger.join().expect("pinger");
    (result, worst, pings)
}

/// The failed checks of a test, gathered so that it reports every one of them at its end
/// instead of only the first.
#[derive(Debug, Default)]
pub struct Checks(Vec<String>);

impl Checks {
    /// Records `what` when `ok` is false.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    /// Records a mismatch when `got` is not `want`.
    pub fn equal<T: PartialEq + std::fmt::Debug>(&mut self, got: T, want: T, what: &str) {
        self.check(got == want, || {
            format!("{what}: got {got:?}, expected {want:?}")
        });
    }

    /// Panics with every failed check, if any.
    pub fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} failed checks:\n- {}",
            self.0.len(),
            self.0.join("\n- ")
        );
    }
}
