//! A local Redis Cluster of servers with the module: masters and one replica each, on free
//! ports (client and bus), each in its own temp dir, killed on drop.

use crate::{wait_for, Conn, Options, Reply, Server};
use std::time::Duration;

/// The number of hash slots of Redis Cluster.
pub const SLOTS: u16 = 16384;

/// How long the cluster may take to agree on its shape.
const FORMING: Duration = Duration::from_secs(60);

/// The hash slot of a key: CRC16 (XModem) of its hash tag when it has one, of the whole key
/// otherwise, modulo [`SLOTS`].
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16(tagged) % SLOTS
}

/// CRC16 as Redis Cluster computes it (XModem: polynomial 0x1021, initial value 0).
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

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
            let bus = crate::free_port().to_string();
            Server::with(
                options
                    .clone()
                    .config("cluster-enabled", "yes")
                    .config("cluster-port", &bus)
                    .config("cluster-node-timeout", "3000"),
            )
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
    fn slots_follow_redis() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"room:presence:{7}:u"), key_slot(b"7"));
    }

    #[test]
    fn ranges_cover_every_slot_once() {
        assert_eq!(slot_range(0, 3), (0, 5461));
        assert_eq!(slot_range(1, 3), (5462, 10923));
        assert_eq!(slot_range(2, 3), (10924, 16383));
    }
}
