//! A local Redis Cluster of servers with the module: masters and one replica each, on free
//! ports (client and bus; a node whose port was taken starts again on new ones), each in its
//! own temp dir, killed on drop. Beside it, what the cluster
//! tests drive it with: a slot migration done step by step, `redis-cli --cluster fix`, a small
//! cluster client that follows `MOVED`/`ASK` and retries `TRYAGAIN` as real clients do, and
//! listeners that collect pub/sub and sharded pub/sub messages in the background.

use crate::{wait_for, Closer, Conn, Options, Reply, Server};
use std::collections::hash_map::{Entry, HashMap};
use std::collections::BTreeMap;
use std::net::Shutdown;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use presence_core::cluster::key_slot;

/// The number of hash slots of Redis Cluster.
pub const SLOTS: u16 = presence_core::cluster::SLOTS as u16;

/// How long the cluster may take to agree on its shape.
const FORMING: Duration = Duration::from_secs(60);

/// How long a stopped listener's server may take to close its connection.
const CLOSING: Duration = Duration::from_secs(10);

/// A running cluster: `masters[i]` owns the i-th equal range of slots, `replicas[i]` replicates
/// it.
pub struct Cluster {
    pub masters: Vec<Server>,
    pub replicas: Vec<Server>,
}

/// The first and last slot of master `i` of `n`.
fn slot_range(i: usize, n: usize) -> (u16, u16) {
    let per = usize::from(SLOTS).div_ceil(n);
    let first = i * per;
    let last = ((i + 1) * per).min(usize::from(SLOTS)) - 1;
    (first as u16, last as u16)
}

impl Cluster {
    /// Starts `masters` masters and as many replicas with `options` (and cluster configs), gives
    /// each master its range of slots, joins them and waits until every node sees the cluster
    /// up and every replica's link to its master is up.
    pub fn start(masters: usize, options: Options) -> Cluster {
        let node = |options: &Options| {
            Server::with_options_from(|| {
                options
                    .clone()
                    .config("cluster-enabled", "yes")
                    .config("cluster-port", &crate::free_port().to_string())
                    .config("cluster-node-timeout", "3000")
            })
        };
        let masters: Vec<Server> = (0..masters).map(|_| node(&options)).collect();
        let replicas: Vec<Server> = (0..masters.len()).map(|_| node(&options)).collect();
        let cluster = Cluster { masters, replicas };
        let n = cluster.masters.len();
        for (i, master) in cluster.masters.iter().enumerate() {
            let (first, last) = slot_range(i, n);
            let reply = master.conn().call(&[
                "CLUSTER",
                "ADDSLOTSRANGE",
                &first.to_string(),
                &last.to_string(),
            ]);
            assert_eq!(reply, Reply::Status("OK".into()), "ADDSLOTSRANGE");
        }
        let first = &cluster.masters[0];
        let first_bus = bus_port(first);
        for server in cluster.nodes().skip(1) {
            let reply = server.conn().call(&[
                "CLUSTER",
                "MEET",
                "127.0.0.1",
                &first.port.to_string(),
                &first_bus.to_string(),
            ]);
            assert_eq!(reply, Reply::Status("OK".into()), "CLUSTER MEET");
        }
        let total = 2 * n;
        wait_for(FORMING, "every node to know every other", || {
            cluster
                .nodes()
                .all(|s| known_nodes(&mut s.conn()) == total)
                .then_some(())
        });
        for (master, replica) in cluster.masters.iter().zip(&cluster.replicas) {
            let id = master.conn().text(&["CLUSTER", "MYID"]).expect("MYID");
            wait_for(FORMING, "the replica to accept its master", || {
                let reply = replica.conn().call(&["CLUSTER", "REPLICATE", &id]);
                (reply == Reply::Status("OK".into())).then_some(())
            });
        }
        wait_for(FORMING, "the cluster to be up and replicated", || {
            let up = cluster.nodes().all(|s| {
                s.conn()
                    .text(&["CLUSTER", "INFO"])
                    .is_some_and(|info| info.contains("cluster_state:ok"))
            });
            let linked = cluster
                .replicas
                .iter()
                .all(|s| s.conn().info_field("replication", "master_link_status") == "up");
            (up && linked).then_some(())
        });
        cluster
    }

    /// Every node, masters first.
    pub fn nodes(&self) -> impl Iterator<Item = &Server> {
        self.masters.iter().chain(&self.replicas)
    }

    /// The index of the master that owns `key`.
    pub fn owner_of(&self, key: &[u8]) -> usize {
        let slot = key_slot(key);
        (0..self.masters.len())
            .find(|&i| {
                let (first, last) = slot_range(i, self.masters.len());
                (first..=last).contains(&slot)
            })
            .expect("every slot is owned")
    }
}

impl Cluster {
    /// The ports of every node, masters first.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes().map(|s| s.port).collect()
    }

    /// The node listening on `port`.
    pub fn node_on(&self, port: u16) -> &Server {
        self.nodes()
            .find(|s| s.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    /// The port of the master that owns `slot`, as the node on `asked` sees it.
    pub fn owner_port(asked: &Server, slot: u16) -> Option<u16> {
        slot_map(&mut asked.conn())?[usize::from(slot)]
    }

    /// A room (`<prefix><number>`) whose slot master `owner` serves.
    pub fn room_on(&self, owner: usize, prefix: &str) -> String {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .find(|r| self.owner_of(r.as_bytes()) == owner)
            .expect("a room")
    }

    /// Waits until every running node of the cluster agrees that `port` serves `slot`.
    pub fn wait_owner(&self, slot: u16, port: u16) {
        let agreed = self.agreed_owner(slot);
        assert_eq!(agreed, port, "the owner of slot {slot}");
    }

    /// Waits until every running node of the cluster names the same master for `slot`;
    /// returns its port.
    pub fn agreed_owner(&self, slot: u16) -> u16 {
        let deadline = Instant::now() + FORMING;
        loop {
            let views: Vec<(u16, Option<u16>)> = self
                .nodes()
                .filter(|s| s.pid().is_some())
                .map(|s| (s.port, Cluster::owner_port(s, slot)))
                .collect();
            if let Some(owner) = views[0].1 {
                if views.iter().all(|(_, o)| *o == Some(owner)) {
                    return owner;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the nodes do not agree on the owner of slot {slot}: (node, owner) {views:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A server's cluster node id.
pub fn node_id(server: &Server) -> String {
    server.conn().text(&["CLUSTER", "MYID"]).expect("MYID")
}

/// A server's role as `ROLE` names it (`master`, `slave`).
pub fn role(server: &Server) -> String {
    match server.conn().call(&["ROLE"]) {
        Reply::Array(Some(items)) => items[0].text().unwrap_or_default(),
        other => panic!("ROLE: {other:?}"),
    }
}

/// The owner's port of every slot, from `CLUSTER SLOTS` on `conn` (`None` for a slot nobody
/// serves); `None` when the node does not answer.
fn slot_map(conn: &mut Conn) -> Option<Vec<Option<u16>>> {
    let Ok(Reply::Array(Some(ranges))) = conn.try_call(&["CLUSTER", "SLOTS"]) else {
        return None;
    };
    let mut map = vec![None; usize::from(SLOTS)];
    for range in ranges {
        let Reply::Array(Some(fields)) = range else {
            continue;
        };
        let (first, last) = (fields[0].int() as usize, fields[1].int() as usize);
        let Reply::Array(Some(master)) = &fields[2] else {
            continue;
        };
        let port = master[1].int() as u16;
        map[first..=last].fill(Some(port));
    }
    Some(map)
}

/// A slot moved from one master to another step by step, as `redis-cli --cluster reshard` does
/// it: `SETSLOT IMPORTING` on the target, `SETSLOT MIGRATING` on the source, batches of keys with
/// `MIGRATE … KEYS`, then `SETSLOT NODE` on the target, the source and the other masters.
pub struct Migration {
    pub slot: u16,
    source: u16,
    target: u16,
    target_id: String,
}

impl Migration {
    /// Opens the slot on both sides.
    pub fn begin(source: &Server, target: &Server, slot: u16) -> Migration {
        let slot_arg = slot.to_string();
        let source_id = node_id(source);
        let target_id = node_id(target);
        let ok = Reply::Status("OK".into());
        let importing =
            target
                .conn()
                .call(&["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &source_id]);
        assert_eq!(importing, ok, "SETSLOT IMPORTING");
        let migrating =
            source
                .conn()
                .call(&["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &target_id]);
        assert_eq!(migrating, ok, "SETSLOT MIGRATING");
        Migration {
            slot,
            source: source.port,
            target: target.port,
            target_id,
        }
    }

    /// Moves one batch of up to `batch` keys of the slot with one `MIGRATE`; returns how many
    /// moved (0 when the source holds no key of the slot any more), and the error when some of
    /// them already existed on the target (`BUSYKEY`): they are then moved again with
    /// `REPLACE`, as `redis-cli --cluster fix` does.
    pub fn move_batch(&self, batch: usize) -> (usize, Option<String>) {
        let mut source = Conn::connect(self.source).expect("connect to the source");
        let keys = source.strings(&[
            "CLUSTER",
            "GETKEYSINSLOT",
            &self.slot.to_string(),
            &batch.to_string(),
        ]);
        if keys.is_empty() {
            return (0, None);
        }
        let target_port = self.target.to_string();
        let migrate = |source: &mut Conn, replace: bool| {
            let mut args = vec!["MIGRATE", "127.0.0.1", &target_port, "", "0", "10000"];
            if replace {
                args.push("REPLACE");
            }
            args.push("KEYS");
            args.extend(keys.iter().map(String::as_str));
            source.call(&args)
        };
        let ok = Reply::Status("OK".into());
        match migrate(&mut source, false) {
            reply if reply == ok => (keys.len(), None),
            Reply::Error(busy) if busy.contains("BUSYKEY") => {
                assert_eq!(migrate(&mut source, true), ok, "MIGRATE … REPLACE");
                (keys.len(), Some(busy))
            }
            other => panic!("MIGRATE: {other:?}"),
        }
    }

    /// Assigns the slot to the target on the target, the source and then every other master
    /// in `masters`.
    pub fn finish(self, masters: &[&Server]) {
        let slot = self.slot.to_string();
        let mut order = vec![self.target, self.source];
        order.extend(
            masters
                .iter()
                .map(|m| m.port)
                .filter(|p| *p != self.target && *p != self.source),
        );
        for port in order {
            let mut conn = Conn::connect(port).expect("connect to a master");
            let reply = conn.call(&["CLUSTER", "SETSLOT", &slot, "NODE", &self.target_id]);
            assert_eq!(reply, Reply::Status("OK".into()), "SETSLOT NODE on {port}");
        }
    }
}

/// Runs `redis-cli --cluster fix` against the node on `port`, answering yes to its questions;
/// returns its output, and panics with it when the fix failed.
pub fn cluster_fix(port: u16) -> String {
    let output = Command::new("redis-cli")
        .args([
            "--cluster",
            "fix",
            &format!("127.0.0.1:{port}"),
            "--cluster-yes",
        ])
        .output()
        .expect("run redis-cli --cluster fix");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "redis-cli --cluster fix failed:\n{text}"
    );
    text
}

/// How often a [`ClusterClient`] was redirected or told to retry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Redirections {
    /// `ASK` answers followed (with `ASKING`).
    pub ask: u64,
    /// `MOVED` answers followed.
    pub moved: u64,
    /// `TRYAGAIN` answers waited out.
    pub tryagain: u64,
    /// Retries after `CLUSTERDOWN`, `LOADING`, `MASTERDOWN` or a broken connection.
    pub down: u64,
}

/// A cluster client as Redis's clients are: it routes each command by the slot of its first
/// argument (the key; the room for `PRESENCE.*`), follows `MOVED` (and remembers it) and `ASK`
/// (`ASKING` then the command, once), waits 20 to 50 ms and retries on `TRYAGAIN`, and while a
/// node is down or the cluster is down reloads the slot map and retries, until its deadline.
pub struct ClusterClient {
    seeds: Vec<u16>,
    slots: Vec<Option<u16>>,
    conns: HashMap<u16, Conn>,
    deadline: Duration,
    pub redirections: Redirections,
    tries: u64,
}

impl ClusterClient {
    /// A client of the nodes on `seeds`, giving up on a command after `deadline`.
    pub fn new(seeds: Vec<u16>, deadline: Duration) -> ClusterClient {
        let mut client = ClusterClient {
            seeds,
            slots: vec![None; usize::from(SLOTS)],
            conns: HashMap::new(),
            deadline,
            redirections: Redirections::default(),
            tries: 0,
        };
        client.reload();
        client
    }

    /// Reloads the slot map from the first seed that answers.
    fn reload(&mut self) {
        for &port in &self.seeds {
            if let Some(map) = Conn::connect(port).ok().as_mut().and_then(slot_map) {
                self.slots = map;
                return;
            }
        }
    }

    /// Sends `args` to `port` (after `ASKING` when `asking`); `None` when the connection broke.
    fn send(&mut self, port: u16, args: &[&str], asking: bool) -> Option<Reply> {
        let conn = match self.conns.entry(port) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(none) => none.insert(Conn::connect(port).ok()?),
        };
        let reply = if asking {
            conn.try_call(&["ASKING"]).and_then(|_| conn.try_call(args))
        } else {
            conn.try_call(args)
        };
        if reply.is_err() {
            self.conns.remove(&port);
        }
        reply.ok()
    }

    /// Waits 20 to 50 ms.
    fn pause(&mut self) {
        self.tries += 1;
        thread::sleep(Duration::from_millis(20 + self.tries * 7 % 31));
    }

    /// Runs a command until it gets an answer that is not a redirection or a "retry"; panics
    /// past the deadline with the last answer.
    pub fn call(&mut self, args: &[&str]) -> Reply {
        let slot = key_slot(args[1].as_bytes());
        let start = Instant::now();
        let mut last = None;
        let mut ask: Option<u16> = None;
        while start.elapsed() < self.deadline {
            let port = match ask.take() {
                Some(port) => Some((port, true)),
                None => self.slots[usize::from(slot)].map(|p| (p, false)),
            };
            let Some((port, asking)) = port else {
                self.redirections.down += 1;
                self.pause();
                self.reload();
                continue;
            };
            let Some(reply) = self.send(port, args, asking) else {
                self.redirections.down += 1;
                self.pause();
                self.reload();
                continue;
            };
            let Reply::Error(error) = &reply else {
                return reply;
            };
            let code = error.split(' ').next().unwrap_or_default();
            match code {
                "MOVED" | "ASK" => {
                    let to: u16 = error
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .unwrap_or_else(|| panic!("a redirection without a port: {error}"));
                    if code == "MOVED" {
                        self.redirections.moved += 1;
                        self.slots[usize::from(slot)] = Some(to);
                    } else {
                        self.redirections.ask += 1;
                        ask = Some(to);
                    }
                }
                "TRYAGAIN" => {
                    self.redirections.tryagain += 1;
                    self.pause();
                }
                "CLUSTERDOWN" | "LOADING" | "MASTERDOWN" => {
                    self.redirections.down += 1;
                    self.pause();
                    self.reload();
                }
                _ => return reply,
            }
            last = Some(reply);
        }
        panic!(
            "{args:?}: no answer within {:?}, last: {last:?}",
            self.deadline
        );
    }

    /// Sends `args` once to the node that serves the room now, following `MOVED` and `ASK`
    /// but not retrying: what a single attempt answers (`TRYAGAIN` included).
    pub fn attempt(&mut self, args: &[&str]) -> Reply {
        let slot = key_slot(args[1].as_bytes());
        let mut ask = None;
        for _ in 0..5 {
            let (port, asking) = match ask.take() {
                Some(port) => (port, true),
                None => (self.slots[usize::from(slot)].expect("an owner"), false),
            };
            let reply = self.send(port, args, asking).expect("an answer");
            match &reply {
                Reply::Error(e) if e.starts_with("MOVED ") => {
                    self.redirections.moved += 1;
                    self.slots[usize::from(slot)] =
                        e.rsplit(':').next().and_then(|p| p.parse().ok());
                }
                Reply::Error(e) if e.starts_with("ASK ") => {
                    self.redirections.ask += 1;
                    ask = e.rsplit(':').next().and_then(|p| p.parse().ok());
                }
                _ => return reply,
            }
        }
        panic!("{args:?}: redirected in circles");
    }
}

/// A message a [`Listener`] heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    /// The name the listener was given (which node, which subscription).
    pub listener: String,
    /// `pmessage`, `smessage`, `sunsubscribe` (the server dropped the subscription, as it
    /// does when the slot leaves the node) or `ssubscribe` (the listener subscribed again, on
    /// the slot's owner).
    pub kind: String,
    pub channel: String,
    /// The message (empty for the notices).
    pub payload: String,
    /// When it was read.
    pub at: Instant,
}

/// The connection a listener's thread reads, which [`Listener::stop`] shuts down.
#[derive(Default)]
struct Reading {
    socket: Option<Closer>,
    stopped: bool,
}

/// A subscription whose messages a thread collects until it is stopped. A sharded one
/// follows its channel's slot as a cluster client does: when the server drops it
/// (`sunsubscribe`), it subscribes again on the master that owns the slot then.
pub struct Listener {
    reading: Arc<Mutex<Reading>>,
    heard: Arc<Mutex<Vec<Heard>>>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// `PSUBSCRIBE pattern` on `server`.
    pub fn pattern(server: &Server, pattern: &str, name: &str) -> Listener {
        Listener::start(server.port, &["PSUBSCRIBE", pattern], false, name)
    }

    /// `SSUBSCRIBE channel` on `server`, after `ASKING` when `asking` (a node importing the
    /// channel's slot serves it then).
    pub fn sharded(server: &Server, channel: &str, asking: bool, name: &str) -> Listener {
        Listener::start(server.port, &["SSUBSCRIBE", channel], asking, name)
    }

    fn start(port: u16, subscribe: &[&str], asking: bool, name: &str) -> Listener {
        let conn = subscribed(port, subscribe, asking)
            .unwrap_or_else(|reply| panic!("{subscribe:?} on {port}: {reply:?}"));
        let reading = Arc::new(Mutex::new(Reading {
            socket: Some(conn.closer()),
            stopped: false,
        }));
        let heard = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (reading, heard) = (reading.clone(), heard.clone());
            let name = name.to_string();
            thread::spawn(move || {
                let mut conn = conn;
                while let Ok(Reply::Array(Some(items))) = conn.read() {
                    let heard_now = parse_message(&items, &name);
                    let dropped = heard_now.kind == "sunsubscribe";
                    let channel = heard_now.channel.clone();
                    heard.lock().unwrap().push(heard_now);
                    if !dropped {
                        continue;
                    }
                    let Some(again) = follow(port, &channel, &reading) else {
                        return;
                    };
                    conn = again;
                    heard.lock().unwrap().push(Heard {
                        listener: name.clone(),
                        kind: "ssubscribe".into(),
                        channel,
                        payload: String::new(),
                        at: Instant::now(),
                    });
                }
            })
        };
        Listener {
            reading,
            heard,
            thread: Some(thread),
        }
    }

    /// False while the server has dropped the subscription and the listener has not yet
    /// subscribed again.
    pub fn is_subscribed(&self) -> bool {
        let heard = self.heard.lock().unwrap();
        heard
            .iter()
            .rev()
            .find(|h| h.kind == "sunsubscribe" || h.kind == "ssubscribe")
            .is_none_or(|h| h.kind == "ssubscribe")
    }

    /// What it heard so far.
    pub fn heard(&self) -> Vec<Heard> {
        self.heard.lock().unwrap().clone()
    }

    /// Closes the subscription and returns everything it heard: every message the server
    /// sent before it saw the connection closed.
    pub fn stop(mut self) -> Vec<Heard> {
        self.close();
        self.heard()
    }

    /// Closes the connection's sending side: the server closes the connection, and the thread
    /// reads what the server sent until then, whenever it gets the CPU. A server that does not
    /// close it within [`CLOSING`] (a stopped one) has the connection cut.
    fn close(&mut self) {
        let socket = {
            let mut reading = self.reading.lock().unwrap();
            reading.stopped = true;
            reading.socket.take()
        };
        if let Some(socket) = &socket {
            let _ = socket.shutdown(Shutdown::Write);
        }
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + CLOSING;
            while !thread.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            if let Some(socket) = &socket {
                let _ = socket.shutdown(Shutdown::Both);
            }
            let _ = thread.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.close();
    }
}

/// A connection to `port` that ran `subscribe` (after `ASKING` when `asking`), or the answer
/// that refused it.
fn subscribed(port: u16, subscribe: &[&str], asking: bool) -> Result<Conn, Reply> {
    let mut conn = Conn::connect(port).map_err(|e| Reply::Error(e.to_string()))?;
    if asking {
        conn.call(&["ASKING"]);
    }
    match conn.call(subscribe) {
        Reply::Array(Some(items)) if items[0].text().is_some_and(|k| k.ends_with("subscribe")) => {
            conn.wait_forever();
            Ok(conn)
        }
        other => Err(other),
    }
}

/// Subscribes to `channel` again on the master that owns its slot as the node on `port` sees
/// it, retrying until one accepts; `None` once the listener is stopped (or after a minute).
fn follow(port: u16, channel: &str, reading: &Mutex<Reading>) -> Option<Conn> {
    let slot = usize::from(key_slot(channel.as_bytes()));
    let deadline = Instant::now() + FORMING;
    while Instant::now() < deadline {
        let owner = Conn::connect(port)
            .ok()
            .as_mut()
            .and_then(slot_map)
            .and_then(|map| map[slot]);
        if let Some(conn) = owner.and_then(|o| subscribed(o, &["SSUBSCRIBE", channel], false).ok())
        {
            let mut reading = reading.lock().unwrap();
            if reading.stopped {
                return None;
            }
            reading.socket = Some(conn.closer());
            return Some(conn);
        }
        if reading.lock().unwrap().stopped {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
    None
}

/// A pub/sub message as strings (the count that ends a `sunsubscribe` included).
fn parse_message(items: &[Reply], listener: &str) -> Heard {
    let parts: Vec<String> = items
        .iter()
        .map(|item| match item {
            Reply::Int(n) => n.to_string(),
            other => other.text().unwrap_or_default(),
        })
        .collect();
    let (channel, payload) = match parts[0].as_str() {
        "pmessage" => (parts[2].clone(), parts[3].clone()),
        "smessage" => (parts[1].clone(), parts[2].clone()),
        _ => (parts[1].clone(), String::new()),
    };
    Heard {
        listener: listener.to_string(),
        kind: parts[0].clone(),
        channel,
        payload,
        at: Instant::now(),
    }
}

/// A presence event as a subscriber reads it, from either kind of channel: the global ones
/// (`__presence@0__:<event>`) or a room's (`__presence@0__:{<room>}`, with an `event` field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceEvent {
    pub event: String,
    pub room: String,
    pub user: String,
    pub socket: String,
    pub reason: String,
    /// Where it was heard.
    pub heard: Heard,
}

impl PresenceEvent {
    /// Reads a message; `None` for a `sunsubscribe` notice.
    pub fn parse(heard: &Heard) -> Option<PresenceEvent> {
        if heard.kind != "smessage" && heard.kind != "pmessage" {
            return None;
        }
        let field = |name: &str| {
            let start = format!("\"{name}\":\"");
            heard
                .payload
                .find(&start)
                .map(|at| {
                    let rest = &heard.payload[at + start.len()..];
                    rest[..rest.find('"').unwrap_or(rest.len())].to_string()
                })
                .unwrap_or_default()
        };
        let event = match field("event") {
            e if e.is_empty() => heard
                .channel
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_string(),
            e => e,
        };
        Some(PresenceEvent {
            event,
            room: field("room"),
            user: field("user"),
            socket: field("socket"),
            reason: field("reason"),
            heard: heard.clone(),
        })
    }
}

/// Everything the listeners heard, half a second from now (time for a false event to show),
/// up to the moment each server saw its listener's connection closed.
pub fn stop_listeners(listeners: Vec<Listener>) -> Vec<Heard> {
    thread::sleep(Duration::from_millis(500));
    listeners.into_iter().flat_map(Listener::stop).collect()
}

/// The events among messages.
pub fn events_in(heard: &[Heard]) -> Vec<PresenceEvent> {
    heard.iter().filter_map(PresenceEvent::parse).collect()
}

/// Everything the listeners heard, half a second from now ([`stop_listeners`]), as events.
pub fn heard_events(listeners: Vec<Listener>) -> Vec<PresenceEvent> {
    events_in(&stop_listeners(listeners))
}

/// The spans during which a sharded listener was not subscribed: from the server's
/// `sunsubscribe` to the listener's new subscription (or to `end`).
pub fn unsubscribed_spans(heard: &[Heard], end: Instant) -> Vec<(Instant, Instant)> {
    let mut spans = Vec::new();
    for (i, h) in heard.iter().enumerate() {
        if h.kind != "sunsubscribe" {
            continue;
        }
        let back = heard[i..]
            .iter()
            .find(|later| later.listener == h.listener && later.kind == "ssubscribe")
            .map_or(end, |later| later.at);
        spans.push((h.at, back));
    }
    spans
}

/// Events for an assertion message: how many of each kind, where (e.g. `leave/deleted on
/// global channels via global channels on 7001: 20000`), and the first few.
pub fn describe(events: &[&PresenceEvent]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in events {
        let channel = if e.heard.kind == "smessage" {
            "the room's channel"
        } else {
            "global channels"
        };
        let key = format!(
            "{}/{} on {channel} via {}",
            e.event, e.reason, e.heard.listener
        );
        *counts.entry(key).or_default() += 1;
    }
    let mut lines = vec![format!("{counts:?}:")];
    lines.extend(events.iter().take(4).map(|e| {
        format!(
            "{} on {} ({}): {}",
            e.heard.kind, e.heard.channel, e.heard.listener, e.heard.payload
        )
    }));
    if events.len() > 4 {
        lines.push(format!("… {} more", events.len() - 4));
    }
    lines.join("\n")
}

/// User `i` of the numbered users tests join: `u00000`, `u00001`, … (in byte order).
pub fn user(i: usize) -> String {
    format!("u{i:05}")
}

/// The socket user `i` joins with: `s0`, `s1`, …
pub fn socket(i: usize) -> String {
    format!("s{i}")
}

/// Joins users `0..n` ([`user`], [`socket`]) to `room` on `owner`, pipelined, checking that
/// each reply is the count so far.
pub fn join_numbered(owner: &Server, room: &str, n: usize) {
    let mut conn = owner.conn();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        for &i in chunk {
            conn.send(&["PRESENCE.JOIN", room, &user(i), &socket(i)]);
        }
        for &i in chunk {
            assert_eq!(conn.read().expect("a reply"), Reply::Int(i as i64 + 1));
        }
    }
}

/// The number of keys of `slot` on `server`.
pub fn keys_in_slot(server: &Server, slot: u16) -> i64 {
    server
        .conn()
        .int(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])
}

/// A number of `INFO presence` on `server` (`presence_swept`, …).
pub fn presence_stat(server: &Server, field: &str) -> i64 {
    server
        .conn()
        .info_field("presence", field)
        .parse()
        .expect("a number")
}

/// The channel of a room's events in cluster mode.
pub fn room_channel(room: &str) -> String {
    format!("__presence@0__:{{{room}}}")
}

/// The bus port a server was started with.
fn bus_port(server: &Server) -> u16 {
    let reply = server.conn().call(&["CONFIG", "GET", "cluster-port"]);
    reply.strings()[1].parse().expect("cluster-port")
}

/// The number of nodes `CLUSTER NODES` lists on this connection's server.
fn known_nodes(conn: &mut Conn) -> usize {
    conn.text(&["CLUSTER", "NODES"])
        .map_or(0, |nodes| nodes.lines().filter(|l| !l.is_empty()).count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_slot_once() {
        assert_eq!(slot_range(0, 3), (0, 5461));
        assert_eq!(slot_range(1, 3), (5462, 10923));
        assert_eq!(slot_range(2, 3), (10924, 16383));
    }
}
