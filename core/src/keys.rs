//! Presence key names: `room:presence:<room>:<user>`, or `room:presence:{<room>}:<user>` in
//! cluster mode so that a room lives on one shard.

use super::ids;

/// The prefix every presence key starts with.
pub const PREFIX: &[u8] = b"room:presence:";

/// The prefix every data key starts with (§12): `room:presence-data:<room>:<user>`. A
/// `SCAN room:presence:*` does not match it.
pub const DATA_PREFIX: &[u8] = b"room:presence-data:";

/// The prefix of every lease key: `presence:node:<node>`, or `presence:node:{<tag>}<node>`.
pub const LEASE_PREFIX: &[u8] = b"presence:node:";

/// A lease key's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseKey<'a> {
    /// The node whose lease it is.
    pub node: &'a str,
    /// The hash tag it was written under (in a cluster, one per shard), `""` for none.
    pub tag: &'a str,
}

impl<'a> From<&'a str> for LeaseKey<'a> {
    /// The untagged lease key of `node`.
    fn from(node: &'a str) -> LeaseKey<'a> {
        LeaseKey { node, tag: "" }
    }
}

/// The key name of a node's lease: `presence:node:<node>`, or `presence:node:{<tag>}<node>`
/// under a hash tag. The ids must already be valid.
pub fn lease_key(lease: LeaseKey<'_>) -> String {
    if lease.tag.is_empty() {
        format!("presence:node:{}", lease.node)
    } else {
        format!("presence:node:{{{}}}{}", lease.tag, lease.node)
    }
}

/// The parts of a lease key name, when it is one with a valid node id (and tag).
pub fn parse_lease(key: &[u8]) -> Option<LeaseKey<'_>> {
    let rest = key.strip_prefix(LEASE_PREFIX)?;
    let (tag, node) = match rest.strip_prefix(b"{") {
        Some(tagged) => {
            let close = tagged.iter().position(|&b| b == b'}')?;
            (ids::parse(&tagged[..close])?, &tagged[close + 1..])
        }
        None => ("", rest),
    };
    Some(LeaseKey {
        node: ids::parse(node)?,
        tag,
    })
}

/// True when a key name starts like a presence key, a data key or a lease key (a cheap first
/// filter).
pub fn is_followed(key: &[u8]) -> bool {
    KeyFormat::has_prefix(key) || key.starts_with(LEASE_PREFIX) || key.starts_with(DATA_PREFIX)
}

/// Which form of key name the module writes and indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// `room:presence:<room>:<user>`.
    Standalone,
    /// `room:presence:{<room>}:<user>`: the room is a hash tag.
    Cluster,
}

/// The longest presence or data key name: the longer prefix, two ids of [`ids::MAX_ID_LEN`] bytes, braces and
/// the separator.
const MAX_KEY_LEN: usize = DATA_PREFIX.len() + 2 * ids::MAX_ID_LEN + 3;

/// A presence or data key name, built on the stack.
#[derive(Clone, Copy)]
pub struct KeyName {
    bytes: [u8; MAX_KEY_LEN],
    len: usize,
}

impl KeyName {
    fn push(&mut self, part: &[u8]) {
        let end = (self.len + part.len()).min(MAX_KEY_LEN);
        let take = end - self.len;
        self.bytes[self.len..end].copy_from_slice(&part[..take]);
        self.len = end;
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Debug for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl KeyFormat {
    /// The key name of a (room, user) presence. Both ids must already be valid (longer ids
    /// would be cut to fit).
    pub fn key(self, room: &str, user: &str) -> KeyName {
        self.named(PREFIX, room, user)
    }

    /// The data key name of a (room, user) presence (§12): `room:presence-data:<room>:<user>`,
    /// or `room:presence-data:{<room>}:<user>` in cluster mode (the presence key's slot). Both
    /// ids must already be valid.
    pub fn data_key(self, room: &str, user: &str) -> KeyName {
        self.named(DATA_PREFIX, room, user)
    }

    /// `prefix`, the room in this form, `:`, the user.
    fn named(self, prefix: &[u8], room: &str, user: &str) -> KeyName {
        let mut key = KeyName {
            bytes: [0; MAX_KEY_LEN],
            len: 0,
        };
        key.push(prefix);
        match self {
            KeyFormat::Standalone => key.push(room.as_bytes()),
            KeyFormat::Cluster => {
                key.push(b"{");
                key.push(room.as_bytes());
                key.push(b"}");
            }
        }
        key.push(b":");
        key.push(user.as_bytes());
        key
    }

    /// Splits a key name into (room, user) when it is a presence key of this form with valid
    /// ids; any other key name gives `None`.
    pub fn parse(self, key: &[u8]) -> Option<(&str, &str)> {
        self.parse_after(PREFIX, key)
    }

    /// Splits a data key name into (room, user) when it is a data key of this form with valid
    /// ids.
    pub fn parse_data(self, key: &[u8]) -> Option<(&str, &str)> {
        self.parse_after(DATA_PREFIX, key)
    }

    /// (room, user) of a key name made of `prefix`, the room in this form, `:`, the user.
    fn parse_after<'a>(self, prefix: &[u8], key: &'a [u8]) -> Option<(&'a str, &'a str)> {
        let rest = key.strip_prefix(prefix)?;
        let (room, user) = match self {
            KeyFormat::Standalone => {
                let colon = rest.iter().position(|&b| b == b':')?;
                (&rest[..colon], &rest[colon + 1..])
            }
            KeyFormat::Cluster => {
                let rest = rest.strip_prefix(b"{")?;
                let close = rest.iter().position(|&b| b == b'}')?;
                let user = rest[close + 1..].strip_prefix(b":")?;
                (&rest[..close], user)
            }
        };
        Some((ids::parse(room)?, ids::parse(user)?))
    }

    /// True when the key name starts like a presence key (a cheap first filter).
    pub fn has_prefix(key: &[u8]) -> bool {
        key.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keys_share_the_room_and_slot_form() {
        assert_eq!(
            KeyFormat::Standalone.data_key("123", "45").as_bytes(),
            b"room:presence-data:123:45"
        );
        assert_eq!(
            KeyFormat::Cluster.data_key("123", "45").as_bytes(),
            b"room:presence-data:{123}:45"
        );
        assert_eq!(
            KeyFormat::Cluster.parse_data(b"room:presence-data:{123}:45"),
            Some(("123", "45"))
        );
        assert_eq!(KeyFormat::Standalone.parse_data(b"room:presence:1:2"), None);
        assert_eq!(KeyFormat::Standalone.parse(b"room:presence-data:1:2"), None);
        assert!(!KeyFormat::has_prefix(b"room:presence-data:1:2"));
        assert!(is_followed(b"room:presence-data:1:2"));
        let long = "a".repeat(ids::MAX_ID_LEN);
        let name = KeyFormat::Cluster.data_key(&long, &long);
        assert_eq!(
            KeyFormat::Cluster.parse_data(name.as_bytes()),
            Some((&long[..], &long[..]))
        );
    }

    #[test]
    fn standalone_key_is_room_presence_room_user() {
        assert_eq!(
            KeyFormat::Standalone.key("123", "45").as_bytes(),
            b"room:presence:123:45"
        );
        assert_eq!(
            KeyFormat::Standalone.parse(b"room:presence:123:45"),
            Some(("123", "45"))
        );
    }

    #[test]
    fn cluster_key_puts_the_room_in_a_hash_tag() {
        assert_eq!(
            KeyFormat::Cluster.key("123", "45").as_bytes(),
            b"room:presence:{123}:45"
        );
        assert_eq!(
            KeyFormat::Cluster.parse(b"room:presence:{123}:45"),
            Some(("123", "45"))
        );
    }

    #[test]
    fn each_mode_ignores_the_other_form() {
        assert_eq!(KeyFormat::Standalone.parse(b"room:presence:{123}:45"), None);
        assert_eq!(KeyFormat::Cluster.parse(b"room:presence:123:45"), None);
    }

    #[test]
    fn round_trips() {
        for format in [KeyFormat::Standalone, KeyFormat::Cluster] {
            let key = format.key("r.1-a", "u@x=~+_");
            assert_eq!(format.parse(key.as_bytes()), Some(("r.1-a", "u@x=~+_")));
        }
    }

    #[test]
    fn refuses_malformed_names() {
        for bad in [
            &b"room:presence:"[..],
            b"room:presence:123",
            b"room:presence:123:",
            b"room:presence::45",
            b"room:presence:1:2:3",
            b"room:presence:12 3:45",
            b"room:presence:123:4*",
            b"other:123:45",
            b"Room:presence:123:45",
        ] {
            assert_eq!(KeyFormat::Standalone.parse(bad), None, "{bad:?}");
        }
        for bad in [
            &b"room:presence:{123:45"[..],
            b"room:presence:{123}45",
            b"room:presence:{}:45",
            b"room:presence:{123}:",
            b"room:presence:{1{2}:45",
        ] {
            assert_eq!(KeyFormat::Cluster.parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_longest_ids_fit() {
        let id = "i".repeat(ids::MAX_ID_LEN);
        for format in [KeyFormat::Standalone, KeyFormat::Cluster] {
            let key = format.key(&id, &id);
            assert_eq!(format.parse(key.as_bytes()), Some((&*id, &*id)));
        }
    }

    #[test]
    fn prefix_filter() {
        assert!(KeyFormat::has_prefix(b"room:presence:1:2"));
        assert!(!KeyFormat::has_prefix(b"room:other"));
        assert!(is_followed(b"room:presence:1:2"));
        assert!(is_followed(b"presence:node:web-1"));
        assert!(!is_followed(b"presence:other"));
    }

    #[test]
    fn lease_keys() {
        let plain = LeaseKey {
            node: "web-1.42",
            tag: "",
        };
        assert_eq!(lease_key(plain), "presence:node:web-1.42");
        assert_eq!(parse_lease(b"presence:node:web-1.42"), Some(plain));
        let tagged = LeaseKey {
            node: "web-1.42",
            tag: "7",
        };
        assert_eq!(lease_key(tagged), "presence:node:{7}web-1.42");
        assert_eq!(parse_lease(b"presence:node:{7}web-1.42"), Some(tagged));
        assert_eq!(parse_lease(b"presence:node:{}web-1"), None);
        assert_eq!(parse_lease(b"presence:node:{7web-1"), None);
        assert_eq!(parse_lease(b"presence:node:{7}"), None);
        assert_eq!(parse_lease(b"presence:node:"), None);
        assert_eq!(parse_lease(b"presence:node:a/b"), None);
        assert_eq!(parse_lease(b"room:presence:1:2"), None);
    }
}
