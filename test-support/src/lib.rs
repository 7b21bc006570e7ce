//! Test harness: a real `redis-server` (or `valkey-server`) with the module loaded, in a
//! temporary directory, listening on a Unix socket there (which [`Server::conn`] uses, so a
//! test only ever talks to its own server) and on a free TCP port (for `REPLICAOF`, `MIGRATE`,
//! `redis-cli` and the cluster); and a small RESP client that shows replies and errors exactly
//! as a client sees them.
//!
//! `REDIS_SERVER` names the server binary (default `redis-server`), `PRESENCE_MODULE` the module
//! (default `target/release/libredis_presence.so`).

pub mod cluster;
pub mod script;

use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to start or stop.
const STARTUP: Duration = Duration::from_secs(20);

/// How many times a server is started on a new port when the one it was given was taken.
const START_ATTEMPTS: usize = 5;

/// The first port [`free_port`] hands out.
const FIRST_PORT: u16 = 10_000;

/// How long a reply may take.
const REPLY_WAIT: Duration = Duration::from_secs(60);

/// How long [`Subscriber::expect`] and [`Subscriber::take`] wait for one event.
const EVENT_WAIT: Duration = Duration::from_secs(30);

/// How long [`Subscriber::take`] listens for an event beyond those it was asked for.
const QUIET: Duration = Duration::from_millis(300);

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
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The socket of a connection: TCP or Unix.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(timeout),
            Stream::Unix(s) => s.set_read_timeout(timeout),
        }
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// A handle on a connection's socket ([`Conn::closer`]).
pub struct Closer(Stream);

impl Closer {
    /// Shuts the socket down: `Shutdown::Both` ends a blocked [`Conn::read`] at once (with an
    /// error); `Shutdown::Write` makes the server close the connection, so that a blocked
    /// read returns what the server sent before and then ends.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown(how)
    }
}

/// A RESP2 connection, over TCP or a Unix socket.
pub struct Conn {
    reader: BufReader<Stream>,
    writer: Stream,
}

impl Conn {
    /// Connects to 127.0.0.1:`port`.
    pub fn connect(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        Conn::over(Stream::Tcp(stream))
    }

    /// Connects to the Unix socket at `path`.
    pub fn unix(path: &Path) -> io::Result<Conn> {
        Conn::over(Stream::Unix(UnixStream::connect(path)?))
    }

    fn over(stream: Stream) -> io::Result<Conn> {
        stream.set_read_timeout(Some(REPLY_WAIT))?;
        Ok(Conn {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Makes [`Conn::read`] wait as long as it takes (a listener's connection, which a quiet
    /// minute must not end).
    pub(crate) fn wait_forever(&self) {
        self.writer
            .set_read_timeout(None)
            .expect("clear the read timeout");
    }

    /// Sends a command without reading its reply.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.writer
            .write_all(&encode(args))
            .expect("write to server");
    }

    /// Sends commands already encoded with [`encode`] in one write, without reading their
    /// replies (a pipeline that costs the client one system call).
    pub fn send_encoded(&mut self, commands: &[u8]) {
        self.writer.write_all(commands).expect("write to server");
    }

    /// Sends a command and reads its reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        self.send(args);
        self.read().expect("read reply")
    }

    /// `call` that reports a broken connection (a killed server) instead of panicking.
    pub fn try_call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Reply> {
        self.writer.write_all(&encode(args))?;
        self.read()
    }

    /// A handle on the connection's socket, to end a blocked [`Conn::read`] from another
    /// thread ([`Closer::shutdown`]).
    pub fn closer(&self) -> Closer {
        Closer(self.writer.try_clone().expect("clone the socket"))
    }

    /// Reads one reply.
    pub fn read(&mut self) -> io::Result<Reply> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if line.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
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
        self.writer.set_read_timeout(Some(REPLY_WAIT)).ok();
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

/// A TCP port of 127.0.0.1 that was free a moment ago: a random one from 10000 up to the
/// start of the ephemeral range, where the kernel does not pick the local ports of outgoing
/// connections (one of those could take a port the kernel chose as free before the server binds
/// it). Another process may still take it first: [`Server`] then starts again on a new port.
pub fn free_port() -> u16 {
    let end = ephemeral_start().max(FIRST_PORT + 1000);
    let mut random = std::collections::hash_map::RandomState::new().build_hasher();
    random.write_u32(std::process::id());
    let mut seed = random.finish() | 1;
    loop {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = FIRST_PORT + (seed % u64::from(end - FIRST_PORT)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_start() -> u16 {
    fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
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
    /// The server's TCP port on 127.0.0.1 (for `REPLICAOF`, `MIGRATE`, the cluster bus
    /// handshake, `redis-cli`); [`Server::conn`] uses its Unix socket instead.
    pub port: u16,
    dir: std::sync::Arc<TempDir>,
    options: Options,
}

/// Why a server did not start.
enum Failed {
    /// Its TCP port (or its cluster bus port) was taken: it logged "Address already in use".
    PortTaken,
    /// It exited at start for another reason; its log says why.
    Exited(String),
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
        Server::with_options_from(|| options.clone())
    }

    /// Starts a server with the options `make` returns, on a free port; when a port was taken
    /// (by another process, between the check that it was free and the server's bind), starts
    /// it again on a new port with the options `make` returns then, so that a port they name
    /// (`cluster-port`) is picked afresh too.
    pub fn with_options_from(make: impl FnMut() -> Options) -> Server {
        Server::start_on_free_port(std::sync::Arc::new(TempDir::new()), make)
    }

    /// Starts a server in `dir` on a free port, and again on a new one when it was taken.
    fn start_on_free_port(
        dir: std::sync::Arc<TempDir>,
        mut make: impl FnMut() -> Options,
    ) -> Server {
        let mut taken = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            match Server::start_in(dir.clone(), port, make()) {
                Ok(server) => return server,
                Err(Failed::PortTaken) => taken.push(port),
                Err(Failed::Exited(log)) => panic!("server exited at start:\n{log}"),
            }
        }
        panic!(
            "no free port for the server: {taken:?} were taken:\n{}",
            server_log(dir.path())
        );
    }

    /// The options the server was started with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Starts the server again after a [`Server::kill`], in its own directory (it loads what it
    /// saved there: RDB, AOF, a cluster node's `nodes.conf`) on its own port, with `options`.
    /// When another process took the port meanwhile, tries again a few times, a second apart.
    pub fn start_again(&mut self, options: Options) {
        assert!(self.child.is_none(), "the server still runs");
        let dir = self.dir.clone();
        for _ in 0..START_ATTEMPTS {
            match Server::start_in(dir.clone(), self.port, options.clone()) {
                Ok(again) => {
                    *self = again;
                    return;
                }
                Err(Failed::PortTaken) => thread::sleep(Duration::from_secs(1)),
                Err(Failed::Exited(log)) => panic!("server exited at start:\n{log}"),
            }
        }
        panic!(
            "port {} stayed taken:\n{}",
            self.port,
            server_log(dir.path())
        );
    }

    /// Starts the server in `dir` on `port`, and waits until it answers `PING` on its Unix
    /// socket.
    fn start_in(
        dir: std::sync::Arc<TempDir>,
        port: u16,
        options: Options,
    ) -> Result<Server, Failed> {
        let module = module_path();
        assert!(
            options.without_module || module.exists(),
            "module not built: {} (run cargo build --release)",
            module.display()
        );
        let socket = socket_path(dir.path());
        assert!(
            socket.as_os_str().len() < 100,
            "the Unix socket path is too long for the kernel: {}",
            socket.display()
        );
        let _ = fs::remove_file(&socket);
        let log_start = server_log(dir.path()).len();
        let mut command = Command::new(server_binary());
        command
            .arg("--port")
            .arg(port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--unixsocketperm")
            .arg("700")
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
        server.wait_ready(log_start)?;
        Ok(server)
    }

    /// Waits until the server answers `PING` on its Unix socket; [`Failed`] when it exited
    /// first (`log_start`: where this start's lines begin in its log). Panics with the log when
    /// it neither answers nor exits in time.
    fn wait_ready(&mut self, log_start: usize) -> Result<(), Failed> {
        let deadline = Instant::now() + STARTUP;
        let socket = self.socket();
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                let log = self.log();
                let this_start = log.get(log_start..).unwrap_or(&log);
                return Err(if this_start.contains("Address already in use") {
                    Failed::PortTaken
                } else {
                    Failed::Exited(format!("({status})\n{log}"))
                });
            }
            let pong = Conn::unix(&socket)
                .ok()
                .and_then(|mut conn| conn.read_ping())
                .is_some_and(|reply| reply == Reply::Status("PONG".into()));
            if pong {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "server not ready in time:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The path of the server's Unix socket.
    pub fn socket(&self) -> PathBuf {
        socket_path(self.dir.path())
    }

    /// A new connection, on the server's Unix socket.
    pub fn conn(&self) -> Conn {
        Conn::unix(&self.socket()).expect("connect to server")
    }

    /// The server's log.
    pub fn log(&self) -> String {
        server_log(self.dir.path())
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

    /// Writes the RDB file with `SAVE`, once no child process saves (a replica's full sync
    /// forks one: Redis 8 may still be sending the RDB to it after `WAIT` returns, and refuses
    /// `SAVE` meanwhile with "Background save already in progress").
    pub fn save(&self) {
        let mut conn = self.conn();
        wait_for(STARTUP, "SAVE to be accepted", || {
            match conn.call(&["SAVE"]) {
                Reply::Status(ok) if ok == "OK" => Some(()),
                Reply::Error(e) if e.contains("already in progress") => {
                    thread::sleep(Duration::from_millis(20));
                    None
                }
                other => panic!("SAVE: {other:?}"),
            }
        });
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
        Server::start_on_free_port(dir, || options.clone())
    }
}

/// The path of the Unix socket of the server in `dir`.
fn socket_path(dir: &Path) -> PathBuf {
    dir.join("redis.sock")
}

/// The log of the server in `dir`.
fn server_log(dir: &Path) -> String {
    fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

impl Conn {
    /// Sends `PING` and reads the answer within 2 s; `None` when the connection broke or
    /// nothing came.
    fn read_ping(&mut self) -> Option<Reply> {
        self.writer
            .set_read_timeout(Some(Duration::from_secs(2)))
            .ok()?;
        self.try_call(&["PING"]).ok()
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
            let reply = conn.read_within(REPLY_WAIT).expect("SSUBSCRIBE");
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

    /// Every event that arrives until `quiet` passes without one: for checking that nothing
    /// (more) came, where nothing may come later legitimately. Events a test waits for call for
    /// [`Subscriber::take`] or [`Subscriber::expect`], which do not depend on how soon they come.
    pub fn drain(&mut self, quiet: Duration) -> Vec<Received> {
        let mut out = Vec::new();
        while let Some(event) = self.next(quiet) {
            out.push(event);
        }
        out
    }

    /// The next `n` events, each of which may take 30 s, then any other that arrives before
    /// 300 ms pass without one: compared with the `n` events a test expects, the result shows a
    /// missing event (it is shorter) and an extra one (it is longer) alike.
    pub fn take(&mut self, n: usize) -> Vec<Received> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.next(EVENT_WAIT) {
                Some(event) => out.push(event),
                None => return out,
            }
        }
        out.extend(self.drain(QUIET));
        out
    }

    /// The next event, which must come within 30 s.
    pub fn expect(&mut self) -> Received {
        self.next(EVENT_WAIT).expect("an event within 30 s")
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

/// What the server under test has among the types and commands that came after Redis 7.0.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    /// Vector sets (`VADD`, Redis 8.0).
    pub vector_sets: bool,
    /// Hash field expiry (`HEXPIRE`, Redis 7.4).
    pub field_expiry: bool,
    /// `HSETEX`, `HGETEX` and `HGETDEL` (Redis 8.0).
    pub hash_ex: bool,
}

impl Features {
    /// Asks the server. A Redis of version 8 or later must have them all, so that a test never
    /// passes there by skipping what it is for.
    pub fn of(c: &mut Conn) -> Features {
        let features = Features {
            vector_sets: has_command(c, "VADD"),
            field_expiry: has_command(c, "HEXPIRE"),
            hash_ex: ["HSETEX", "HGETEX", "HGETDEL"]
                .iter()
                .all(|name| has_command(c, name)),
        };
        if !is_valkey() && major_version(c) >= 8 {
            assert!(
                features.vector_sets && features.field_expiry && features.hash_ex,
                "Redis 8 without its new commands: {features:?}"
            );
        }
        features
    }
}

/// True when the server knows the command `name`.
pub fn has_command(c: &mut Conn, name: &str) -> bool {
    match c.call(&["COMMAND", "INFO", name]) {
        Reply::Array(Some(items)) => matches!(items.first(), Some(Reply::Array(Some(_)))),
        other => panic!("COMMAND INFO {name}: {other:?}"),
    }
}

/// The major version `INFO server` reports (Valkey reports 7.2.4 there).
pub fn major_version(c: &mut Conn) -> u32 {
    let info = c.text(&["INFO", "server"]).unwrap_or_default();
    info.lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .and_then(|version| version.split('.').next())
        .and_then(|major| major.parse().ok())
        .unwrap_or_else(|| panic!("no redis_version in INFO server:\n{info}"))
}

/// Every presence key of the selected database holding a string, read with `SCAN`, `GET` and
/// `PTTL`: room → (user, value, PTTL in ms) sorted by user.
pub fn presence_keys(
    c: &mut Conn,
) -> std::collections::BTreeMap<String, Vec<(String, String, i64)>> {
    let mut rooms: std::collections::BTreeMap<String, Vec<(String, String, i64)>> =
        std::collections::BTreeMap::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = c.call(&["SCAN", &cursor, "MATCH", "room:presence:*", "COUNT", "1000"]);
        let Reply::Array(Some(parts)) = reply else {
            panic!("SCAN reply: {reply:?}");
        };
        cursor = parts[0].text().unwrap_or_default();
        for key in parts[1].strings() {
            let rest = key.trim_start_matches("room:presence:");
            let Some((room, user)) = rest.split_once(':') else {
                continue;
            };
            let pttl = c.int(&["PTTL", key.as_str()]);
            let Some(value) = c.text(&["GET", key.as_str()]) else {
                continue;
            };
            rooms
                .entry(room.to_string())
                .or_default()
                .push((user.to_string(), value, pttl));
        }
        if cursor == "0" {
            break;
        }
    }
    for users in rooms.values_mut() {
        users.sort();
    }
    rooms
}
