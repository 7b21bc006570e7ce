//! Command arguments parsed into typed requests. Arguments arrive without the command name.

use super::changes::PresenceRef;
use super::error::PresenceError;
use super::ids::{self, IdKind, Socket};
use super::json;
use super::leases::MAX_LEASE_MS;

/// The (room, user, socket) of `PRESENCE.JOIN`, `BEAT` and `LEAVE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// The room id.
    pub room: &'a str,
    /// The user id.
    pub user: &'a str,
    /// The socket id.
    pub socket: Socket<'a>,
}

impl<'a> Target<'a> {
    /// The presence the target names in database `db`.
    pub fn at(&self, db: i32) -> PresenceRef<'a> {
        PresenceRef {
            db,
            room: self.room,
            user: self.user,
        }
    }
}

/// `PRESENCE.JOIN room user socket [DATA json]` and `PRESENCE.UPDATE room user socket json`:
/// a target and the presence's data (checked: one JSON value within `presence.max-data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRequest<'a> {
    /// The presence and the socket.
    pub target: Target<'a>,
    /// The data, `None` for a JOIN without it.
    pub data: Option<&'a [u8]>,
}

/// `PRESENCE.LIST room [WITHSOCKETS] [WITHDATA] [LIMIT n] [AFTER user]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListRequest<'a> {
    /// The room id.
    pub room: &'a str,
    /// Reply `user, socket, …` instead of users only.
    pub with_sockets: bool,
    /// Follow each user (and its socket) with its data, or a null reply.
    pub with_data: bool,
    /// At most this many users.
    pub limit: usize,
    /// Only the users after this one, in byte order (the last user of the previous page).
    pub after: Option<&'a str>,
}

fn id(bytes: &[u8], kind: IdKind) -> Result<&str, PresenceError> {
    ids::parse(bytes).ok_or(PresenceError::InvalidId(kind))
}

/// Parses `room user socket`.
pub fn target<'a>(args: &[&'a [u8]]) -> Result<Target<'a>, PresenceError> {
    let [room, user, socket] = args else {
        return Err(PresenceError::WrongArity);
    };
    target_of(room, user, socket)
}

/// The target named by three arguments.
#[inline(always)]
fn target_of<'a>(
    room: &'a [u8],
    user: &'a [u8],
    socket: &'a [u8],
) -> Result<Target<'a>, PresenceError> {
    Ok(Target {
        room: id(room, IdKind::Room)?,
        user: id(user, IdKind::User)?,
        socket: ids::parse_socket(socket).ok_or(PresenceError::InvalidId(IdKind::Socket))?,
    })
}

/// Checks presence data against `max_data` (`presence.max-data`; 0 refuses any data): its size
/// first, then that it is one JSON value.
pub fn check_data(data: &[u8], max_data: usize) -> Result<(), PresenceError> {
    if max_data == 0 || data.len() > max_data {
        return Err(PresenceError::DataTooLarge {
            len: data.len(),
            max: max_data,
        });
    }
    if !json::is_one_value(data) {
        return Err(PresenceError::InvalidData);
    }
    Ok(())
}

/// Parses `room user socket [DATA json]`, the data checked against `max_data`.
pub fn join<'a>(args: &[&'a [u8]], max_data: usize) -> Result<DataRequest<'a>, PresenceError> {
    match args {
        [room, user, socket] => Ok(DataRequest {
            target: target_of(room, user, socket)?,
            data: None,
        }),
        [room, user, socket, option, data] if option.eq_ignore_ascii_case(b"DATA") => {
            let target = target_of(room, user, socket)?;
            check_data(data, max_data)?;
            Ok(DataRequest {
                target,
                data: Some(*data),
            })
        }
        [_, _, _, ..] => Err(PresenceError::Syntax),
        _ => Err(PresenceError::WrongArity),
    }
}

/// Parses `room user socket json`, the data checked against `max_data`.
pub fn update<'a>(args: &[&'a [u8]], max_data: usize) -> Result<DataRequest<'a>, PresenceError> {
    let [room, user, socket, data] = args else {
        return Err(PresenceError::WrongArity);
    };
    let target = target_of(room, user, socket)?;
    check_data(data, max_data)?;
    Ok(DataRequest {
        target,
        data: Some(*data),
    })
}

/// `PRESENCE.LEASE [{tag}]node ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRequest<'a> {
    /// The node id.
    pub node: &'a str,
    /// The hash tag the lease key is written under, `""` for none (in a cluster, the tag
    /// chooses the shard).
    pub tag: &'a str,
    /// The lease's length in milliseconds; 0 releases it.
    pub ms: i64,
}

/// Parses `node ms` or `{tag}node ms`.
pub fn lease<'a>(args: &[&'a [u8]]) -> Result<LeaseRequest<'a>, PresenceError> {
    let [node, ms] = args else {
        return Err(PresenceError::WrongArity);
    };
    let (tag, node) = match node.strip_prefix(b"{") {
        Some(tagged) => {
            let close = tagged
                .iter()
                .position(|&b| b == b'}')
                .ok_or(PresenceError::InvalidId(IdKind::Node))?;
            (id(&tagged[..close], IdKind::Node)?, &tagged[close + 1..])
        }
        None => ("", *node),
    };
    let node = id(node, IdKind::Node)?;
    let ms = std::str::from_utf8(ms)
        .ok()
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<i64>().ok())
        .filter(|ms| (0..=MAX_LEASE_MS).contains(ms))
        .ok_or(PresenceError::InvalidLeaseMs)?;
    Ok(LeaseRequest { node, tag, ms })
}

/// Parses `room`.
pub fn room<'a>(args: &[&'a [u8]]) -> Result<&'a str, PresenceError> {
    let [room] = args else {
        return Err(PresenceError::WrongArity);
    };
    id(room, IdKind::Room)
}

/// Parses `room [WITHSOCKETS] [WITHDATA] [LIMIT n] [AFTER user]` (options in any order, each
/// at most once).
pub fn list<'a>(args: &[&'a [u8]]) -> Result<ListRequest<'a>, PresenceError> {
    let Some((room, mut options)) = args.split_first() else {
        return Err(PresenceError::WrongArity);
    };
    let mut request = ListRequest {
        room: id(room, IdKind::Room)?,
        with_sockets: false,
        with_data: false,
        limit: usize::MAX,
        after: None,
    };
    let mut seen_limit = false;
    while let Some((option, rest)) = options.split_first() {
        if option.eq_ignore_ascii_case(b"WITHSOCKETS") && !request.with_sockets {
            request.with_sockets = true;
            options = rest;
        } else if option.eq_ignore_ascii_case(b"WITHDATA") && !request.with_data {
            request.with_data = true;
            options = rest;
        } else if option.eq_ignore_ascii_case(b"LIMIT") && !seen_limit {
            let (value, rest) = rest.split_first().ok_or(PresenceError::InvalidLimit)?;
            request.limit = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(PresenceError::InvalidLimit)?
                .try_into()
                .unwrap_or(usize::MAX);
            seen_limit = true;
            options = rest;
        } else if option.eq_ignore_ascii_case(b"AFTER") && request.after.is_none() {
            let (user, rest) = rest.split_first().ok_or(PresenceError::MissingAfter)?;
            request.after = Some(id(user, IdKind::User)?);
            options = rest;
        } else {
            return Err(PresenceError::Syntax);
        }
    }
    Ok(request)
}

/// Checks that a command takes no arguments.
pub fn none(args: &[&[u8]]) -> Result<(), PresenceError> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(PresenceError::WrongArity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parses_three_valid_ids() {
        assert_eq!(
            target(&[b"123", b"45", b"sock-1"]),
            Ok(Target {
                room: "123",
                user: "45",
                socket: "sock-1".into()
            })
        );
        assert_eq!(target(&[b"123", b"45"]), Err(PresenceError::WrongArity));
        assert_eq!(
            target(&[b"1:2", b"45", b"s"]),
            Err(PresenceError::InvalidId(IdKind::Room))
        );
        assert_eq!(
            target(&[b"1", b"", b"s"]),
            Err(PresenceError::InvalidId(IdKind::User))
        );
        assert_eq!(
            target(&[b"1", b"2", b"a/b/c"]),
            Err(PresenceError::InvalidId(IdKind::Socket))
        );
        assert_eq!(
            target(&[b"1", b"2", b"web-1/s"]).unwrap().socket.node,
            Some("web-1")
        );
    }

    #[test]
    fn lease_parses_a_node_and_milliseconds() {
        assert_eq!(
            lease(&[b"web-1", b"10000"]),
            Ok(LeaseRequest {
                node: "web-1",
                tag: "",
                ms: 10000
            })
        );
        assert_eq!(
            lease(&[b"{t7}web-1", b"5"]),
            Ok(LeaseRequest {
                node: "web-1",
                tag: "t7",
                ms: 5
            })
        );
        for bad in [&b"{t7web-1"[..], b"{}web-1", b"{t7}", b"{a:b}n"] {
            assert_eq!(
                lease(&[bad, b"5"]),
                Err(PresenceError::InvalidId(IdKind::Node)),
                "{bad:?}"
            );
        }
        assert_eq!(lease(&[b"web-1", b"0"]).unwrap().ms, 0);
        assert_eq!(lease(&[b"web-1", b"86400000"]).unwrap().ms, MAX_LEASE_MS);
        assert_eq!(lease(&[b"web-1"]), Err(PresenceError::WrongArity));
        assert_eq!(
            lease(&[b"a/b", b"1"]),
            Err(PresenceError::InvalidId(IdKind::Node))
        );
        for bad in [
            &b"-1"[..],
            b"+5",
            b"",
            b"1.5",
            b"86400001",
            b"99999999999999999999",
        ] {
            assert_eq!(
                lease(&[b"n", bad]),
                Err(PresenceError::InvalidLeaseMs),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn list_options() {
        let plain = list(&[b"r"]).unwrap();
        assert!(!plain.with_sockets);
        assert_eq!(plain.limit, usize::MAX);
        let both = list(&[b"r", b"limit", b"10", b"WithSockets"]).unwrap();
        assert!(both.with_sockets);
        assert_eq!(both.limit, 10);
        assert_eq!(list(&[b"r", b"LIMIT", b"0"]).unwrap().limit, 0);
        assert_eq!(list(&[]), Err(PresenceError::WrongArity));
        assert_eq!(list(&[b"r", b"LIMIT"]), Err(PresenceError::InvalidLimit));
        assert_eq!(
            list(&[b"r", b"LIMIT", b"-1"]),
            Err(PresenceError::InvalidLimit)
        );
        assert_eq!(
            list(&[b"r", b"LIMIT", b"x"]),
            Err(PresenceError::InvalidLimit)
        );
        assert_eq!(list(&[b"r", b"FOO"]), Err(PresenceError::Syntax));
        assert_eq!(
            list(&[b"r", b"WITHSOCKETS", b"WITHSOCKETS"]),
            Err(PresenceError::Syntax)
        );
        assert_eq!(
            list(&[b"r", b"LIMIT", b"1", b"LIMIT", b"2"]),
            Err(PresenceError::Syntax)
        );
        assert_eq!(list(&[b"*"]), Err(PresenceError::InvalidId(IdKind::Room)));
    }

    #[test]
    fn list_after() {
        assert_eq!(list(&[b"r"]).unwrap().after, None);
        let page = list(&[b"r", b"after", b"u7", b"LIMIT", b"2"]).unwrap();
        assert_eq!(page.after, Some("u7"));
        assert_eq!(page.limit, 2);
        assert_eq!(list(&[b"r", b"AFTER"]), Err(PresenceError::MissingAfter));
        assert_eq!(
            list(&[b"r", b"AFTER", b"a:b"]),
            Err(PresenceError::InvalidId(IdKind::User))
        );
        assert_eq!(
            list(&[b"r", b"AFTER", b"a", b"AFTER", b"b"]),
            Err(PresenceError::Syntax)
        );
    }

    #[test]
    fn join_takes_data_after_its_token() {
        let plain = join(&[b"r", b"u", b"s"], 1024).unwrap();
        assert_eq!(plain.data, None);
        assert_eq!(plain.target.user, "u");
        let with = join(&[b"r", b"u", b"s", b"data", br#"{"a":1}"#], 1024).unwrap();
        assert_eq!(with.data, Some(&br#"{"a":1}"#[..]));
        assert_eq!(join(&[b"r", b"u"], 1024), Err(PresenceError::WrongArity));
        assert_eq!(
            join(&[b"r", b"u", b"s", b"DATA"], 1024),
            Err(PresenceError::Syntax)
        );
        assert_eq!(
            join(&[b"r", b"u", b"s", b"NOPE", b"1"], 1024),
            Err(PresenceError::Syntax)
        );
        assert_eq!(
            join(&[b"r", b"u", b"s", b"DATA", b"1", b"x"], 1024),
            Err(PresenceError::Syntax)
        );
        assert_eq!(
            join(&[b"r:", b"u", b"s", b"DATA", b"{"], 1024),
            Err(PresenceError::InvalidId(IdKind::Room))
        );
        assert_eq!(
            join(&[b"r", b"u", b"s", b"DATA", b"{"], 1024),
            Err(PresenceError::InvalidData)
        );
        assert_eq!(
            join(&[b"r", b"u", b"s", b"DATA", b"[1,2]"], 4),
            Err(PresenceError::DataTooLarge { len: 5, max: 4 })
        );
        assert_eq!(
            join(&[b"r", b"u", b"s", b"DATA", b""], 0),
            Err(PresenceError::DataTooLarge { len: 0, max: 0 })
        );
        assert!(join(&[b"r", b"u", b"s", b"DATA", b"[1,2]"], 5).is_ok());
    }

    #[test]
    fn update_takes_exactly_the_data() {
        let update_request = update(&[b"r", b"u", b"s", b"null"], 1024).unwrap();
        assert_eq!(update_request.data, Some(&b"null"[..]));
        assert_eq!(
            update(&[b"r", b"u", b"s"], 1024),
            Err(PresenceError::WrongArity)
        );
        assert_eq!(
            update(&[b"r", b"u", b"s", b"nul"], 1024),
            Err(PresenceError::InvalidData)
        );
        assert_eq!(
            update(&[b"r", b"u", b"s", b"1"], 0),
            Err(PresenceError::DataTooLarge { len: 1, max: 0 })
        );
    }

    #[test]
    fn list_with_data() {
        assert!(!list(&[b"r"]).unwrap().with_data);
        let both = list(&[b"r", b"WITHDATA", b"withsockets"]).unwrap();
        assert!(both.with_data && both.with_sockets);
        assert_eq!(
            list(&[b"r", b"WITHDATA", b"WITHDATA"]),
            Err(PresenceError::Syntax)
        );
    }

    #[test]
    fn room_and_none() {
        assert_eq!(room(&[b"r"]), Ok("r"));
        assert_eq!(room(&[b"r", b"x"]), Err(PresenceError::WrongArity));
        assert_eq!(none(&[]), Ok(()));
        assert_eq!(none(&[b"x"]), Err(PresenceError::WrongArity));
    }
}
