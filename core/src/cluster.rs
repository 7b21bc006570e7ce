//! What a node of a Redis Cluster knows of itself, in plain Rust: the hash slot of a key, the
//! slots it owns and the ones it is migrating or importing (read from `CLUSTER NODES`), and
//! whether it has been a healthy slot owner long enough to sweep and publish on its own.
//!
//! A node sweeps only while it is a confirmed healthy owner: a master, with slots, with the
//! cluster up, seen so for [`CONFIRM_MS`] (a master restarted from old data stays one for a
//! moment before the cluster tells it it was failed over), and with no slot moving.

/// The number of hash slots.
pub const SLOTS: usize = 16384;

/// How long a node must be seen a healthy slot owner before it sweeps, in milliseconds.
pub const CONFIRM_MS: i64 = 2000;

/// The hash slot of a key, as Redis computes it: CRC16 (XMODEM) of the key, or of its hash tag
/// (the bytes between the first `{` and the next `}`, when not empty), modulo [`SLOTS`].
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16(hashed) % SLOTS as u16
}

/// CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with.
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

/// The node's own line of `CLUSTER NODES`, and the cluster's state from `CLUSTER INFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// True when the node is a master.
    pub master: bool,
    /// True when `CLUSTER INFO` says `cluster_state:ok`.
    pub cluster_ok: bool,
    /// One bit per slot the node owns.
    owned: Vec<u64>,
    /// The number of slots it owns.
    owned_count: usize,
    /// The slots it is migrating away or importing.
    moving: Vec<u16>,
}

impl View {
    /// Reads the line flagged `myself` of `CLUSTER NODES` output; `None` when there is none.
    pub fn parse(nodes: &str, cluster_ok: bool) -> Option<View> {
        let line = nodes.lines().find(|line| {
            line.split(' ')
                .nth(2)
                .is_some_and(|flags| flags.split(',').any(|f| f == "myself"))
        })?;
        let fields: Vec<&str> = line.split(' ').collect();
        let master = fields[2].split(',').any(|f| f == "master");
        let mut view = View {
            master,
            cluster_ok,
            owned: vec![0; SLOTS / 64],
            owned_count: 0,
            moving: Vec::new(),
        };
        for field in fields.iter().skip(8) {
            if let Some(moving) = field.strip_prefix('[') {
                let slot = moving.split('-').next().and_then(|s| s.parse::<u16>().ok());
                if let Some(slot) = slot.filter(|&s| (s as usize) < SLOTS) {
                    view.moving.push(slot);
                }
                continue;
            }
            let (first, last) = match field.split_once('-') {
                Some((first, last)) => (first.parse::<usize>(), last.parse::<usize>()),
                None => (field.parse::<usize>(), field.parse::<usize>()),
            };
            if let (Ok(first), Ok(last)) = (first, last) {
                for slot in first..=last.min(SLOTS - 1) {
                    view.own(slot);
                }
            }
        }
        Some(view)
    }

    fn own(&mut self, slot: usize) {
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        if self.owned[word] & bit == 0 {
            self.owned[word] |= bit;
            self.owned_count += 1;
        }
    }

    /// True when the node owns `slot`.
    pub fn owns(&self, slot: u16) -> bool {
        let slot = slot as usize % SLOTS;
        self.owned[slot / 64] & (1u64 << (slot % 64)) != 0
    }

    /// True when `slot` is migrating away from the node or being imported into it.
    pub fn is_moving(&self, slot: u16) -> bool {
        self.moving.contains(&slot)
    }

    /// True when the node owns the same slots as in `other`.
    pub fn same_slots(&self, other: &View) -> bool {
        self.owned == other.owned
    }

    /// True when a slot of the node is migrating or importing.
    pub fn any_moving(&self) -> bool {
        !self.moving.is_empty()
    }

    /// True when the node is a master that owns slots while the cluster is up.
    pub fn healthy_owner(&self) -> bool {
        self.master && self.cluster_ok && self.owned_count > 0
    }
}

/// Whether a node has been a healthy slot owner for long enough, from what it saw over time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Since when (Unix ms) it has been seen a healthy owner without a break.
    since: Option<i64>,
}

impl Health {
    /// Nothing seen yet.
    pub const fn new() -> Health {
        Health { since: None }
    }

    /// What the node saw at `now`: a healthy owner, or not.
    pub fn observe(&mut self, healthy: bool, now: i64) {
        if !healthy {
            self.since = None;
        } else if self.since.is_none() {
            self.since = Some(now);
        }
    }

    /// Forgets what was seen (the node loaded data or changed role): it must be seen healthy
    /// for [`CONFIRM_MS`] again.
    pub fn reset(&mut self) {
        self.since = None;
    }

    /// True when the node has been a healthy owner for [`CONFIRM_MS`] at `now`.
    pub fn confirmed(&self, now: i64) -> bool {
        self.since.is_some_and(|since| now - since >= CONFIRM_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 10923 [5461-<-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1] [93->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
";

    #[test]
    fn slots_follow_redis() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
        assert_eq!(key_slot(b"room:presence:{7}:u"), key_slot(b"7"));
        assert_eq!(key_slot(b"presence:node:{t}n"), key_slot(b"t"));
    }

    #[test]
    fn reads_its_own_line() {
        let view = View::parse(NODES, true).expect("myself");
        assert!(view.master && view.healthy_owner());
        assert!(view.owns(0) && view.owns(5460) && view.owns(10923));
        assert!(!view.owns(5461) && !view.owns(10924));
        assert!(view.is_moving(5461) && view.is_moving(93));
        assert!(!view.is_moving(94));
        assert!(view.any_moving());
        assert_eq!(view.owned_count, 5462);
        let fewer = View::parse(&NODES.replace(" 10923 ", " "), true).unwrap();
        assert!(!view.same_slots(&fewer) && view.same_slots(&view.clone()));
    }

    #[test]
    fn replicas_slotless_masters_and_a_down_cluster_are_not_healthy_owners() {
        let replica = NODES.replace("myself,master", "master").replace(
            "127.0.0.1:30004@31004 slave",
            "127.0.0.1:30004@31004 myself,slave",
        );
        assert!(!View::parse(&replica, true).unwrap().healthy_owner());
        let slotless = "abc 127.0.0.1:1@2 myself,master - 0 0 1 connected\n";
        assert!(!View::parse(slotless, true).unwrap().healthy_owner());
        assert!(!View::parse(NODES, false).unwrap().healthy_owner());
        assert_eq!(View::parse("", true), None);
        assert_eq!(View::parse("garbage\n", true), None);
    }

    #[test]
    fn health_is_confirmed_after_a_while_without_a_break() {
        let mut health = Health::default();
        health.observe(true, 1000);
        assert!(!health.confirmed(1000 + CONFIRM_MS - 1));
        health.observe(true, 2000);
        assert!(health.confirmed(1000 + CONFIRM_MS));
        health.observe(false, 3500);
        health.observe(true, 3600);
        assert!(!health.confirmed(3600 + CONFIRM_MS - 1));
        assert!(health.confirmed(3600 + CONFIRM_MS));
        health.reset();
        assert!(!health.confirmed(i64::MAX));
    }
}
