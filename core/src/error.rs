//! Every error the commands answer, each a constructor whose message starts with its code.

use super::ids::{IdKind, MAX_ID_LEN};
use super::leases::MAX_LEASE_MS;
use std::fmt;

/// An error answered to a client. Nothing was written when one is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceError {
    /// The wrong number of arguments (answered with Redis's standard message).
    WrongArity,
    /// An id that breaks the id rules.
    InvalidId(IdKind),
    /// The presence key holds a value that is not a string.
    WrongType,
    /// An option that the command does not know, or one given twice.
    Syntax,
    /// `LIMIT` without a non-negative integer.
    InvalidLimit,
    /// `AFTER` as the last argument.
    MissingAfter,
    /// A lease length that is not an integer of milliseconds in range.
    InvalidLeaseMs,
    /// A join through a node that holds no live lease.
    NoLease(String),
    /// Presence data that is not exactly one JSON value.
    InvalidData,
    /// Presence data longer than `presence.max-data` (or any data when it is 0).
    DataTooLarge {
        /// The data's length in bytes.
        len: usize,
        /// `presence.max-data`.
        max: usize,
    },
}

impl fmt::Display for PresenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresenceError::WrongArity => write!(f, "ERR wrong number of arguments"),
            PresenceError::InvalidId(kind) => {
                write!(
                    f,
                    "ERR invalid {} id: use 1 to {MAX_ID_LEN} bytes of A-Z a-z 0-9 - _ . @ + = ~",
                    kind.name()
                )?;
                if *kind == IdKind::Socket {
                    write!(f, ", or <node>/<socket>")?;
                }
                Ok(())
            }
            PresenceError::WrongType => write!(
                f,
                "WRONGTYPE Operation against a key holding the wrong kind of value"
            ),
            PresenceError::Syntax => write!(f, "ERR syntax error"),
            PresenceError::InvalidLimit => {
                write!(f, "ERR LIMIT must be followed by a non-negative integer")
            }
            PresenceError::MissingAfter => write!(f, "ERR AFTER must be followed by a user id"),
            PresenceError::InvalidLeaseMs => write!(
                f,
                "ERR the lease must be an integer of milliseconds from 0 to {MAX_LEASE_MS}"
            ),
            PresenceError::NoLease(node) => {
                write!(f, "NOLEASE node {node} holds no live lease")
            }
            PresenceError::InvalidData => write!(f, "ERR data must be one JSON value"),
            PresenceError::DataTooLarge { len, max } => write!(
                f,
                "ERR data too large: {len} bytes, presence.max-data is {max}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_start_with_their_code() {
        assert_eq!(
            PresenceError::InvalidId(IdKind::Room).to_string(),
            "ERR invalid room id: use 1 to 128 bytes of A-Z a-z 0-9 - _ . @ + = ~"
        );
        assert_eq!(
            PresenceError::WrongType.to_string(),
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        );
        assert_eq!(PresenceError::Syntax.to_string(), "ERR syntax error");
        assert_eq!(
            PresenceError::InvalidLimit.to_string(),
            "ERR LIMIT must be followed by a non-negative integer"
        );
        assert_eq!(
            PresenceError::MissingAfter.to_string(),
            "ERR AFTER must be followed by a user id"
        );
        assert_eq!(
            PresenceError::InvalidId(IdKind::Socket).to_string(),
            "ERR invalid socket id: use 1 to 128 bytes of A-Z a-z 0-9 - _ . @ + = ~, or <node>/<socket>"
        );
        assert_eq!(
            PresenceError::InvalidLeaseMs.to_string(),
            "ERR the lease must be an integer of milliseconds from 0 to 86400000"
        );
        assert_eq!(
            PresenceError::NoLease("web-1".into()).to_string(),
            "NOLEASE node web-1 holds no live lease"
        );
        assert_eq!(
            PresenceError::InvalidData.to_string(),
            "ERR data must be one JSON value"
        );
        assert_eq!(
            PresenceError::DataTooLarge {
                len: 2000,
                max: 1024
            }
            .to_string(),
            "ERR data too large: 2000 bytes, presence.max-data is 1024"
        );
    }
}
