//! Room, user and socket ids: 1 to 128 bytes of `A-Z a-z 0-9 - _ . @ + = ~`.
//!
//! Everything else (`:` `{` `}` glob characters, `/`, quotes, spaces, control bytes) is refused,
//! so that an id can never change the shape of a key name, a hash tag or a JSON payload.

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Which id an argument is, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// The room id.
    Room,
    /// The user id.
    User,
    /// The socket id held by a presence: an id, or `<node>/<socket>` (see [`parse_socket`]).
    Socket,
    /// The id of a node (an app server process) that holds a lease.
    Node,
}

impl IdKind {
    /// The name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            IdKind::Room => "room",
            IdKind::User => "user",
            IdKind::Socket => "socket",
            IdKind::Node => "node",
        }
    }
}

/// For each byte, whether an id may contain it: one table read per byte.
const ID_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'_' | b'.' | b'@' | b'+' | b'=' | b'~');
        b += 1;
    }
    table
};

/// True when `bytes` is a valid id.
pub fn is_valid(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.len() <= MAX_ID_LEN && bytes.iter().all(|&b| ID_BYTES[b as usize])
}

/// Returns the id as `&str` when it is valid (a valid id is always ASCII).
pub fn parse(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|id| is_valid(id.as_bytes()))
}

/// A valid socket id, with the node it is held through split off once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Socket<'a> {
    /// The whole id, the key's value: `<node>/<socket>` or `<socket>`.
    pub full: &'a str,
    /// The node, if any.
    pub node: Option<&'a str>,
    /// The socket id after the node.
    pub id: &'a str,
}

impl<'a> From<&'a str> for Socket<'a> {
    /// Splits a socket id that is known to be valid.
    fn from(full: &'a str) -> Self {
        match full.bytes().position(|b| b == b'/') {
            Some(slash) => Socket {
                full,
                node: full.get(..slash),
                id: full.get(slash + 1..).unwrap_or_default(),
            },
            None => Socket {
                full,
                node: None,
                id: full,
            },
        }
    }
}

/// Returns a socket id when it is valid: an id, or a node-qualified socket `<node>/<socket>`
/// (exactly one `/`, each part a valid id).
pub fn parse_socket(bytes: &[u8]) -> Option<Socket<'_>> {
    let full = std::str::from_utf8(bytes).ok()?;
    match full.split_once('/') {
        None => is_valid(bytes).then_some(Socket {
            full,
            node: None,
            id: full,
        }),
        Some((node, id)) => {
            (is_valid(node.as_bytes()) && is_valid(id.as_bytes())).then_some(Socket {
                full,
                node: Some(node),
                id,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_allowed_byte() {
        assert!(is_valid(b"abcXYZ019-_.@+=~"));
        assert_eq!(parse(b"45"), Some("45"));
    }

    #[test]
    fn refuses_empty_and_too_long() {
        assert!(!is_valid(b""));
        assert!(is_valid(&[b'a'; MAX_ID_LEN]));
        assert!(!is_valid(&[b'a'; MAX_ID_LEN + 1]));
    }

    #[test]
    fn refuses_reserved_and_binary_bytes() {
        for bad in [
            &b"a:b"[..],
            b"{a}",
            b"a*",
            b"a?",
            b"[a]",
            b"a\\b",
            b"a/b",
            b"\"a\"",
            b"'a'",
            b"a b",
            b"a\tb",
            b"a\nb",
            b"a\0b",
            b"\xff",
            "é".as_bytes(),
        ] {
            assert!(!is_valid(bad), "{bad:?} must be refused");
            assert_eq!(parse(bad), None);
        }
    }

    #[test]
    fn the_table_admits_ascii_only() {
        for b in 0..=255u8 {
            assert_eq!(
                ID_BYTES[b as usize],
                b.is_ascii_alphanumeric() || b"-_.@+=~".contains(&b),
                "byte {b}"
            );
        }
    }

    #[test]
    fn sockets_may_name_their_node() {
        assert_eq!(parse_socket(b"s1"), Some(Socket::from("s1")));
        let held = parse_socket(b"web-1.42/s1").unwrap();
        assert_eq!(held, Socket::from("web-1.42/s1"));
        assert_eq!(
            (held.full, held.node, held.id),
            ("web-1.42/s1", Some("web-1.42"), "s1")
        );
        let alone = Socket::from("s1");
        assert_eq!((alone.full, alone.node, alone.id), ("s1", None, "s1"));
        let longest = [&[b'n'; MAX_ID_LEN][..], b"/", &[b's'; MAX_ID_LEN]].concat();
        assert!(parse_socket(&longest).is_some());
        for bad in [
            &b"/s"[..],
            b"n/",
            b"/",
            b"n//s",
            b"a/b/c",
            b"n/s:x",
            b"n:x/s",
            b"",
        ] {
            assert_eq!(parse_socket(bad), None, "{bad:?} must be refused");
        }
        let too_long = [&[b'n'; MAX_ID_LEN + 1][..], b"/s"].concat();
        assert_eq!(parse_socket(&too_long), None);
    }

    #[test]
    fn kind_names() {
        assert_eq!(IdKind::Room.name(), "room");
        assert_eq!(IdKind::User.name(), "user");
        assert_eq!(IdKind::Socket.name(), "socket");
        assert_eq!(IdKind::Node.name(), "node");
    }
}
